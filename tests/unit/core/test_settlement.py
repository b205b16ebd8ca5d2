"""settlement: fills into positions, funding rates and plans, expiry values (SPEC §8).

Every rounding is checked against exact ``Fraction`` arithmetic: it must go against the account
and leave the protocol a non-negative residue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.params import FundingParams, MarginParams
from clearhouse.core.settlement import (
    PositionChange,
    apply_fill,
    expiry_value,
    funding_index_step_e9,
    funding_on_open_interest,
    funding_owed,
    hourly_funding_rate_ppb,
)
from clearhouse.core.units import NS_PER_HOUR, PPB_ONE, PPM_ONE

FAST = settings(max_examples=60, deadline=None)
MORE = settings(max_examples=150, deadline=None)


# ── Fills ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Grid:
    """A market grid where one step at one tick is a whole number of quote quantums."""

    base_quantums_per_unit: int
    step: int
    tick: int

    def notional(self, size: int, price: int) -> int:
        product = abs(size) * price
        assert product % self.base_quantums_per_unit == 0
        return product // self.base_quantums_per_unit


@st.composite
def grids(draw: st.DrawFn) -> Grid:
    per_unit_exp = draw(st.integers(min_value=0, max_value=9))
    step_exp = draw(st.integers(min_value=0, max_value=per_unit_exp))
    tick_exp = draw(st.integers(min_value=per_unit_exp - step_exp, max_value=per_unit_exp + 2))
    return Grid(10**per_unit_exp, 10**step_exp, 10**tick_exp)


def _sizes(grid: Grid) -> st.SearchStrategy[int]:
    steps = st.integers(min_value=1, max_value=10**6)
    return st.builds(lambda k, sign: sign * k * grid.step, steps, st.sampled_from([1, -1]))


def _prices(grid: Grid) -> st.SearchStrategy[int]:
    return st.integers(min_value=1, max_value=10**6).map(lambda m: m * grid.tick)


def _fill(size: int, cost: int, fill: int, notional: int) -> PositionChange:
    return apply_fill(
        size_base_quantums=size,
        cost_quote_quantums=cost,
        fill_base_quantums=fill,
        fill_notional_quote_quantums=notional,
    )


@st.composite
def positions(draw: st.DrawFn, grid: Grid) -> tuple[int, int]:
    """(size, cost) reached from flat by a few grid fills, so the cost is one the engine makes."""
    size, cost = 0, 0
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        fill = draw(_sizes(grid))
        change = _fill(size, cost, fill, grid.notional(fill, draw(_prices(grid))))
        size, cost = change.size_base_quantums, change.cost_quote_quantums
    return size, cost


@st.composite
def arbitrary_positions(draw: st.DrawFn, grid: Grid) -> tuple[int, int]:
    """(size, cost) with any cost of the position's sign: every rounding case of the release."""
    size = draw(st.one_of(st.just(0), _sizes(grid)))
    if size == 0:
        return 0, 0
    magnitude = draw(st.integers(min_value=0, max_value=10**15))
    return size, magnitude if size > 0 else -magnitude


@st.composite
def fill_cases(draw: st.DrawFn, *, realistic: bool) -> tuple[int, int, int, int]:
    grid = draw(grids())
    size, cost = draw(positions(grid) if realistic else arbitrary_positions(grid))
    fill = draw(_sizes(grid))
    return size, cost, fill, grid.notional(fill, draw(_prices(grid)))


def _closing(size: int, fill: int) -> int:
    if size == 0 or (size > 0) == (fill > 0):
        return 0
    return min(abs(size), abs(fill))


@FAST
@given(grids(), st.data())
def test_open_then_close_at_the_same_price_realizes_nothing(
    grid: Grid, data: st.DataObject
) -> None:
    size = data.draw(_sizes(grid))
    notional = grid.notional(size, data.draw(_prices(grid)))
    opened = _fill(0, 0, size, notional)
    assert opened == PositionChange(size, notional if size > 0 else -notional, 0)
    closed = _fill(opened.size_base_quantums, opened.cost_quote_quantums, -size, notional)
    assert closed == PositionChange(0, 0, 0)


@FAST
@given(grids(), st.data())
def test_several_opens_then_a_full_close_at_one_price_realize_nothing(
    grid: Grid, data: st.DataObject
) -> None:
    price = data.draw(_prices(grid))
    sign = data.draw(st.sampled_from([1, -1]))
    pieces = data.draw(st.lists(_sizes(grid).map(abs), min_size=1, max_size=5))
    size, cost = 0, 0
    for piece in pieces:
        change = _fill(size, cost, sign * piece, grid.notional(piece, price))
        assert change.realized_pnl_quote_quantums == 0
        size, cost = change.size_base_quantums, change.cost_quote_quantums
    assert size == sign * sum(pieces)
    assert cost == sign * grid.notional(sum(pieces), price)
    closed = _fill(size, cost, -size, grid.notional(size, price))
    assert closed == PositionChange(0, 0, 0)


@MORE
@given(st.one_of(fill_cases(realistic=True), fill_cases(realistic=False)))
def test_value_is_conserved_by_every_fill(case: tuple[int, int, int, int]) -> None:
    """Δcost − realized == fill_sign × notional: what the fill moves either becomes cost basis
    or is realized, nothing appears or vanishes (the clearing account holds −Σ cost)."""
    size, cost, fill, notional = case
    change = _fill(size, cost, fill, notional)
    fill_sign = 1 if fill > 0 else -1
    delta_cost = change.cost_quote_quantums - cost
    assert delta_cost - change.realized_pnl_quote_quantums == fill_sign * notional
    assert change.size_base_quantums == size + fill


@MORE
@given(st.one_of(fill_cases(realistic=True), fill_cases(realistic=False)))
def test_realized_pnl_rounds_against_the_account(case: tuple[int, int, int, int]) -> None:
    size, cost, fill, notional = case
    change = _fill(size, cost, fill, notional)
    closing = _closing(size, fill)
    if closing == 0:
        assert change.realized_pnl_quote_quantums == 0
        return
    fill_sign = 1 if fill > 0 else -1
    closing_notional = Fraction(notional * closing, abs(fill))
    assert closing_notional.denominator == 1  # the grid splits the notional exactly
    exact = -fill_sign * closing_notional - Fraction(cost * closing, abs(size))
    assert change.realized_pnl_quote_quantums <= exact
    assert exact - change.realized_pnl_quote_quantums < 1
    if closing == abs(size):  # a full close releases the whole cost: nothing to round
        assert change.realized_pnl_quote_quantums == exact


@MORE
@given(st.one_of(fill_cases(realistic=True), fill_cases(realistic=False)))
def test_cost_keeps_the_sign_of_the_position(case: tuple[int, int, int, int]) -> None:
    size, cost, fill, notional = case
    change = _fill(size, cost, fill, notional)
    new_size, new_cost = change.size_base_quantums, change.cost_quote_quantums
    if new_size == 0:
        assert new_cost == 0
    elif new_size > 0:
        assert new_cost >= 0
    else:
        assert new_cost <= 0


@FAST
@given(grids(), st.data())
def test_adding_to_a_position_realizes_nothing_and_adds_the_notional(
    grid: Grid, data: st.DataObject
) -> None:
    size, cost = data.draw(positions(grid))
    fill = data.draw(_sizes(grid))
    if size != 0 and (size > 0) != (fill > 0):
        fill = -fill
    notional = grid.notional(fill, data.draw(_prices(grid)))
    change = _fill(size, cost, fill, notional)
    sign = 1 if fill > 0 else -1
    assert change == PositionChange(size + fill, cost + sign * notional, 0)


@FAST
@given(grids(), st.data())
def test_flipping_through_zero_closes_then_opens(grid: Grid, data: st.DataObject) -> None:
    size, cost = data.draw(arbitrary_positions(grid).filter(lambda p: p[0] != 0))
    extra = data.draw(_sizes(grid).map(abs))
    fill_sign = -1 if size > 0 else 1
    fill = fill_sign * (abs(size) + extra)
    price = data.draw(_prices(grid))
    change = _fill(size, cost, fill, grid.notional(fill, price))
    assert change.size_base_quantums == fill_sign * extra
    # The opening part is the new position's whole cost, at the fill price.
    assert change.cost_quote_quantums == fill_sign * grid.notional(extra, price)
    # The closing part released the old cost in full.
    closing_notional = grid.notional(size, price)
    assert change.realized_pnl_quote_quantums == -fill_sign * closing_notional - cost


@pytest.mark.parametrize(
    ("size", "cost", "fill", "notional", "expected"),
    [
        # long 2 @ 100 (cost 200), sell 3 @ 120: realize +40 on 2, open short 1 @ 120
        (2, 200, -3, 360, PositionChange(-1, -120, 40)),
        # short 2 @ 100 (cost −200), buy 3 @ 90: realize +20 on 2, open long 1 @ 90
        (-2, -200, 3, 270, PositionChange(1, 90, 20)),
        # long 3 with cost 100, sell 1 @ 30: releases ceil(100/3) = 34, realizes 30 − 34 = −4
        (3, 100, -1, 30, PositionChange(2, 66, -4)),
        # short 3 with cost −100, buy 1 @ 30: releases ceil(−100/3) = −33, realizes −30 + 33 = 3
        (-3, -100, 1, 30, PositionChange(-2, -67, 3)),
    ],
)
def test_fill_examples(
    size: int, cost: int, fill: int, notional: int, expected: PositionChange
) -> None:
    assert _fill(size, cost, fill, notional) == expected


@pytest.mark.parametrize(("fill", "notional"), [(0, 100), (1, 0), (-1, -5)])
def test_apply_fill_refuses_empty_fills(fill: int, notional: int) -> None:
    with pytest.raises(AssertionError):
        _fill(0, 0, fill, notional)


# ── Funding rate ─────────────────────────────────────────────────────────────────────────

DEFAULT_FUNDING = FundingParams()
DEFAULT_MARGIN = MarginParams()
EIGHT_HOURS = 8 * NS_PER_HOUR


def _rate(
    premium_sum: int,
    samples: int,
    funding: FundingParams = DEFAULT_FUNDING,
    margin: MarginParams = DEFAULT_MARGIN,
) -> int:
    return hourly_funding_rate_ppb(
        premium_time_ppb_ns=premium_sum, premium_time_ns=samples, funding=funding, margin=margin
    )


def _cap(funding: FundingParams, margin: MarginParams) -> int:
    maintenance = math.ceil(
        Fraction(margin.initial_margin_ppm * margin.maintenance_share_ppm, PPM_ONE)
    )
    gap_ppb = (margin.initial_margin_ppm - maintenance) * (PPB_ONE // PPM_ONE)
    return gap_ppb * funding.cap_share_of_margin_gap_ppm // PPM_ONE


def test_default_cap_is_three_quarters_of_the_margin_gap() -> None:
    # IMF 5%, MMF 75% of it = 3.75%: gap 1.25% = 12_500_000 ppb; 75% of it.
    assert _cap(DEFAULT_FUNDING, DEFAULT_MARGIN) == 9_375_000
    assert _rate(10**15, 1) == 9_375_000
    assert _rate(-(10**15), 1) == -9_375_000


def test_no_premium_samples_pays_the_interest_share_of_the_interval() -> None:
    # 0.01% per 8 hours, paid hourly: 100_000 / 8
    assert _rate(0, 0) == 12_500


@FAST
@given(
    st.integers(min_value=-500_000, max_value=500_000),
    st.integers(min_value=1, max_value=1_000),
)
def test_premium_within_the_clamp_pays_interest_only(offset: int, samples: int) -> None:
    premium = DEFAULT_FUNDING.interest_ppb_per_8h + offset  # |interest − premium| <= clamp
    assert abs(offset) <= DEFAULT_FUNDING.premium_clamp_ppb
    assert _rate(premium * samples, samples) == 12_500


@FAST
@given(st.integers(min_value=1, max_value=10**8), st.integers(min_value=1, max_value=100))
def test_premium_beyond_the_clamp_moves_the_rate(beyond: int, samples: int) -> None:
    interest = DEFAULT_FUNDING.interest_ppb_per_8h
    clamp_ppb = DEFAULT_FUNDING.premium_clamp_ppb
    cap = _cap(DEFAULT_FUNDING, DEFAULT_MARGIN)
    high = interest + clamp_ppb + beyond  # the 8h rate is premium − clamp = interest + beyond
    assert _rate(high * samples, samples) == min((interest + beyond) // 8, cap)
    low = interest - clamp_ppb - beyond  # the 8h rate is premium + clamp = interest − beyond
    expected_low = math.trunc(Fraction(interest - beyond, 8))
    assert _rate(low * samples, samples) == max(expected_low, -cap)


@FAST
@given(st.integers(min_value=-(10**10), max_value=10**10), st.integers(min_value=1, max_value=50))
def test_premium_average_and_rate_truncate_toward_zero(premium_sum: int, samples: int) -> None:
    """With no interest, no clamp and an 8h interval, the rate is the average premium itself."""
    funding = FundingParams(interval_ns=EIGHT_HOURS, interest_ppb_per_8h=0, premium_clamp_ppb=0)
    cap = _cap(funding, DEFAULT_MARGIN)
    average = math.trunc(Fraction(premium_sum, samples))
    assert _rate(premium_sum, samples, funding) == max(-cap, min(cap, average))


@FAST
@given(
    st.integers(min_value=-(10**10), max_value=10**10),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=0, max_value=10**6),
)
def test_funding_rate_sign_follows_the_premium_and_is_antisymmetric(
    premium_sum: int, samples: int, clamp_ppb: int
) -> None:
    funding = FundingParams(interest_ppb_per_8h=0, premium_clamp_ppb=clamp_ppb)
    rate = _rate(premium_sum, samples, funding)
    assert _rate(-premium_sum, samples, funding) == -rate  # neither side favoured
    if rate != 0:
        assert (rate > 0) == (premium_sum > 0)
    if abs(premium_sum) <= clamp_ppb * samples:  # the clamp absorbs the premium entirely
        assert rate == 0


@FAST
@given(
    st.integers(min_value=-(10**10), max_value=10**10),
    st.integers(min_value=-(10**10), max_value=10**10),
    st.integers(min_value=1, max_value=50),
)
def test_funding_rate_is_monotone_in_the_premium(a: int, b: int, samples: int) -> None:
    low, high = min(a, b), max(a, b)
    assert _rate(low, samples) <= _rate(high, samples)


@FAST
@given(
    st.integers(min_value=1, max_value=PPM_ONE),
    st.integers(min_value=1, max_value=PPM_ONE - 1),
    st.integers(min_value=1, max_value=PPM_ONE),
    st.integers(min_value=-(10**12), max_value=10**12),
)
def test_funding_rate_never_exceeds_the_cap(
    initial_ppm: int, share_ppm: int, cap_share_ppm: int, premium: int
) -> None:
    margin = MarginParams(initial_margin_ppm=initial_ppm, maintenance_share_ppm=share_ppm)
    funding = FundingParams(cap_share_of_margin_gap_ppm=cap_share_ppm)
    cap = _cap(funding, margin)
    rate = _rate(premium, 1, funding, margin)
    assert -cap <= rate <= cap
    assert abs(_rate(10**15, 1, funding, margin)) == cap


def test_funding_rate_scales_with_the_interval() -> None:
    four_hours = FundingParams(interval_ns=4 * NS_PER_HOUR, interest_ppb_per_8h=400_000)
    eight_hours = FundingParams(interval_ns=EIGHT_HOURS, interest_ppb_per_8h=400_000)
    assert _rate(0, 0, four_hours) == 200_000
    assert _rate(0, 0, eight_hours) == 400_000


# ── Funding plan ─────────────────────────────────────────────────────────────────────────


@st.composite
def balanced_sizes(draw: st.DrawFn) -> list[int]:
    """Signed sizes whose sum is zero (long open interest equals short open interest)."""
    sizes = draw(
        st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=8)
    )
    balance = -sum(sizes)
    at = draw(st.integers(min_value=0, max_value=len(sizes)))
    return [*sizes[:at], balance, *sizes[at:]]


@MORE
@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-(10**24), max_value=10**24),
    st.sampled_from([1, 10**6, 10**8, 10**9, 10**18]),
)
def test_funding_owed_rounds_against_the_account(size: int, delta_e9: int, per_unit: int) -> None:
    """A payer pays the quantum it owes in part, a receiver forgoes it: owed rounds up."""
    owed = funding_owed(size, delta_e9, per_unit)
    exact = Fraction(size * delta_e9, per_unit * PPB_ONE)
    assert owed == math.ceil(exact)
    assert 0 <= owed - exact < 1


@MORE
@given(
    balanced_sizes(),
    st.lists(
        st.tuples(st.integers(1, 10**14), st.integers(-(10**8), 10**8)), min_size=1, max_size=5
    ),
    st.sampled_from([1, 10**6, 10**8, 10**9, 10**18]),
)
def test_funding_by_index_is_zero_sum_with_a_residue_under_a_quantum_each(
    sizes: list[int], steps: list[tuple[int, int]], per_unit: int
) -> None:
    """Over any run of hours, what balanced positions owe sums to zero exactly; each one's
    settlement rounds up by less than a quantum, so the venue keeps a residue in [0, holders)."""
    index_e9 = sum(
        funding_index_step_e9(index_price_quantums=price, rate_ppb=rate) for price, rate in steps
    )
    exact = sum(Fraction(size * index_e9, per_unit * PPB_ONE) for size in sizes)
    assert exact == 0
    residue = sum(funding_owed(size, index_e9, per_unit) for size in sizes)
    holders = sum(size != 0 for size in sizes)
    assert 0 <= residue < max(holders, 1)


def test_funding_direction() -> None:
    """Rate > 0: longs pay shorts; rate < 0: shorts pay longs; rate 0: nothing moves."""
    longs_pay = funding_index_step_e9(index_price_quantums=100, rate_ppb=PPB_ONE // 10)
    assert (funding_owed(10, longs_pay, 1), funding_owed(-10, longs_pay, 1)) == (100, -100)
    shorts_pay = funding_index_step_e9(index_price_quantums=100, rate_ppb=-PPB_ONE // 10)
    assert (funding_owed(10, shorts_pay, 1), funding_owed(-10, shorts_pay, 1)) == (-100, 100)
    assert funding_owed(10, 0, 1) == 0


@given(st.integers(0, 10**12), st.integers(1, 10**14), st.integers(-(10**8), 10**8))
def test_funding_on_open_interest_reports_the_hour_rounded_both_ways(
    open_interest: int, price: int, rate: int
) -> None:
    paid, received = funding_on_open_interest(
        open_interest, index_price_quantums=price, rate_ppb=rate, base_quantums_per_unit=10**8
    )
    exact = Fraction(open_interest * price * abs(rate), 10**8 * PPB_ONE)
    assert paid == math.ceil(exact) and received == math.floor(exact)


# ── Expiry ───────────────────────────────────────────────────────────────────────────────


@FAST
@given(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=1, max_value=10**18),
    st.sampled_from([1, 3, 10**6, 10**8, 10**9, 10**18]),
)
def test_expiry_value_rounds_down(size: int, price: int, per_unit: int) -> None:
    value = expiry_value(size, price, per_unit)
    exact = Fraction(size * price, per_unit)
    assert value == math.floor(exact)
    assert value <= exact
    # A long and a short of the same size together are never worth more than nothing: the
    # clearing account keeps a non-negative residue at settlement.
    assert value + expiry_value(-size, price, per_unit) in (0, -1)


def test_expiry_value_examples() -> None:
    assert expiry_value(1, 5, 2) == 2
    assert expiry_value(-1, 5, 2) == -3
    assert expiry_value(0, 5, 2) == 0
