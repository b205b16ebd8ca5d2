"""liquidation: the ladder's pure arithmetic (fillable price, cover bound, tick grid, close cap,
fee, Dutch auction, ADL ranking and exact allocation), checked against exact fractions."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clearhouse.core import liquidation as liq
from clearhouse.core.ids import Address, Side, SubaccountId
from clearhouse.core.params import LiquidationParams
from clearhouse.core.units import NS_PER_SECOND, PPM_ONE

FAST = settings(max_examples=150, deadline=None)
sides = st.sampled_from([Side.SELL, Side.BUY])
marks = st.integers(min_value=1, max_value=10**13)
fractions_ppm = st.integers(min_value=0, max_value=PPM_ONE)
per_units = st.sampled_from([1, 10**6, 10**8, 10**18])


def _sid(owner_byte: int, number: int = 0) -> SubaccountId:
    return SubaccountId(Address("0x" + f"{owner_byte:02x}" * 20), number)


def _fillable(mark: int, side: Side, mmf: int, equity: int, maintenance: int) -> int:
    return liq.fillable_price(
        mark_price_quantums=mark, side=side, maintenance_fraction_ppm=mmf, equity=equity,
        maintenance=maintenance,
    )  # fmt: skip


def test_closing_side_sells_a_long_and_buys_back_a_short() -> None:
    assert liq.closing_side(5) is Side.SELL
    assert liq.closing_side(-5) is Side.BUY
    with pytest.raises(AssertionError):
        liq.closing_side(0)


def test_fillable_price_example_halfway_to_bankruptcy() -> None:
    # equity / MM = 1/2: half of the 5% MM fraction, 2.5% through the mark.
    assert _fillable(100_000, Side.SELL, 50_000, 500, 1_000) == 97_500
    assert _fillable(100_000, Side.BUY, 50_000, 500, 1_000) == 102_500
    assert _fillable(100_000, Side.SELL, 50_000, -7, 1_000) == 95_000
    assert _fillable(3, Side.SELL, PPM_ONE, 0, 1) == 1  # never below one quantum
    assert _fillable(10**6, Side.SELL, 50_000, 1, 3) == 966_667  # deviation 33_333.3 floored


@FAST
@given(marks, fractions_ppm, st.integers(1, 10**15), st.data())
def test_fillable_price_moves_monotonically_from_mark_to_the_floor(
    mark: int, mmf: int, maintenance: int, data: st.DataObject
) -> None:
    equities = st.one_of(st.integers(-2 * maintenance, 2 * maintenance), st.integers(0, 10**16))
    low, high = sorted((data.draw(equities), data.draw(equities)))
    sell_floor = max(1, math.floor(Fraction(mark * (PPM_ONE - mmf), PPM_ONE)))
    buy_ceiling = math.ceil(Fraction(mark * (PPM_ONE + mmf), PPM_ONE))
    sell_low, sell_high = (_fillable(mark, Side.SELL, mmf, e, maintenance) for e in (low, high))
    buy_low, buy_high = (_fillable(mark, Side.BUY, mmf, e, maintenance) for e in (low, high))
    assert 1 <= sell_floor <= sell_low <= sell_high <= mark
    assert mark <= buy_high <= buy_low <= buy_ceiling
    if low <= 0:  # nothing left: the full MM fraction through the mark
        assert (sell_low, buy_low) == (sell_floor, buy_ceiling)
    if high >= maintenance:  # at or above maintenance: the mark itself
        assert sell_high == buy_high == mark


def _loss(side: Side, size: int, mark: int, price: int, per_unit: int) -> Fraction:
    """Exact quote lost against the mark by closing ``size`` at ``price``."""
    return Fraction(size * (mark - price) * (1 if side is Side.SELL else -1), per_unit)


@FAST
@given(
    marks, sides, st.integers(1, 10**12), per_units, st.integers(-(10**15), 10**15),
    st.integers(0, 10**15),
)  # fmt: skip
def test_cover_bound_is_the_last_price_within_equity_plus_cover(
    mark: int, side: Side, size: int, per_unit: int, equity: int, cover: int
) -> None:
    price = liq.cover_bound_price(
        mark_price_quantums=mark, side=side, size_base_quantums=size,
        base_quantums_per_unit=per_unit, equity=equity, cover=cover,
    )  # fmt: skip
    room = equity + cover
    assert _loss(side, size, mark, price, per_unit) <= room
    if side is Side.SELL:
        assert price >= 1
        if price > 1:  # one quantum lower already loses more than the room
            assert _loss(side, size, mark, price - 1, per_unit) > room
    else:
        assert _loss(side, size, mark, price + 1, per_unit) > room


def test_cover_bound_example() -> None:
    # 2 BTC at $100, $20 + 10 quantums of room: $10 + 5 quantums per BTC, not a quantum more.
    kw = {"mark_price_quantums": 10**8, "size_base_quantums": 2 * 10**8, "equity": 2 * 10**7}
    kw |= {"base_quantums_per_unit": 10**8, "cover": 10}
    assert liq.cover_bound_price(side=Side.SELL, **kw) == 9 * 10**7 - 5
    assert liq.cover_bound_price(side=Side.BUY, **kw) == 11 * 10**7 + 5


@FAST
@given(sides, st.integers(1, 10**15), st.integers(1, 10**15))
def test_more_conservative_fills_less(side: Side, first: int, second: int) -> None:
    expected = max(first, second) if side is Side.SELL else min(first, second)
    assert liq.more_conservative(side, first, second) == expected
    assert (liq.more_conservative(Side.SELL, 3, 7), liq.more_conservative(Side.BUY, 3, 7)) == (7, 3)


@FAST
@given(st.integers(1, 10**9), st.integers(0, 10**15))
def test_to_tick_rounds_onto_the_grid_never_worse_within_one_tick(tick: int, offset: int) -> None:
    price = tick + offset  # at least one tick
    sell, buy = liq.to_tick(price, tick, Side.SELL), liq.to_tick(price, tick, Side.BUY)
    assert sell % tick == 0 and buy % tick == 0
    assert price - tick < buy <= price <= sell < price + tick
    assert liq.to_tick(offset % tick + 1, tick, Side.SELL) == tick  # below one tick: one tick
    assert (liq.to_tick(1_234, 100, Side.BUY), liq.to_tick(1_234, 100, Side.SELL)) == (1_200, 1_300)
    assert liq.to_tick(1_234, 100, Side.BUY) == 1_200
    assert liq.to_tick(1_234, 100, Side.SELL) == 1_300


def test_to_tick_buy_never_goes_above_a_bound_below_one_tick() -> None:
    # A short with equity -5 and no insurance cover: the buy-back must gain 5 against the mark.
    bound = liq.cover_bound_price(
        mark_price_quantums=10, side=Side.BUY, size_base_quantums=1, base_quantums_per_unit=1,
        equity=-5, cover=0,
    )  # fmt: skip
    assert bound == 5
    assert liq.to_tick(bound, 10, Side.BUY) == 0  # no grid price is good enough: nothing fills


@st.composite
def close_params(draw: st.DrawFn) -> LiquidationParams:
    return LiquidationParams(
        close_fraction_ppm=draw(st.integers(1, PPM_ONE)),
        close_notional_max_quote_quantums=draw(st.integers(1, 10**16)),
        full_close_equity_ppm=draw(st.integers(1, PPM_ONE)),
    )


@FAST
@given(
    close_params(), st.integers(-(10**13), 10**13), marks, per_units,
    st.sampled_from([1, 7, 1_000, 10**6]), st.integers(-(10**15), 10**15), st.integers(0, 10**15),
)  # fmt: skip
def test_close_size_cap_is_bounded_by_fraction_notional_and_size(
    params: LiquidationParams, position: int, mark: int, per_unit: int, step: int, equity: int,
    maintenance: int,
) -> None:  # fmt: skip
    assume(position != 0)
    cap = liq.close_size_cap(
        params, position_base_quantums=position, mark_price_quantums=mark,
        base_quantums_per_unit=per_unit, step_base_quantums=step, equity=equity,
        maintenance=maintenance,
    )  # fmt: skip
    size = abs(position)
    assert 0 < cap <= size
    assert cap == size or cap % step == 0
    if equity * PPM_ONE < params.full_close_equity_ppm * maintenance:
        assert cap == size
        return
    by_fraction = math.ceil(Fraction(size * params.close_fraction_ppm, PPM_ONE))
    assert cap <= math.ceil(Fraction(max(by_fraction, step), step)) * step
    # Rounded up to the step, the notional cap is exceeded by less than one step.
    assert (cap - step) * mark < params.close_notional_max_quote_quantums * per_unit


def test_close_size_cap_examples() -> None:
    params = LiquidationParams(close_fraction_ppm=200_000, close_notional_max_quote_quantums=150,
                               full_close_equity_ppm=666_667)  # fmt: skip
    common = {"mark_price_quantums": 1, "base_quantums_per_unit": 1, "maintenance": 3_000}
    kw = {"position_base_quantums": -10_000, "step_base_quantums": 100, **common}
    assert liq.close_size_cap(params, equity=1_999, **kw) == 10_000  # below 2/3 of MM: all of it
    assert liq.close_size_cap(params, equity=2_001, **kw) == 200  # notional 150, up to the step
    half = LiquidationParams(close_notional_max_quote_quantums=150, full_close_equity_ppm=500_000)
    assert liq.close_size_cap(half, equity=1_500, **kw) == 200  # exactly at the line: not all
    assert liq.close_size_cap(half, equity=1_499, **kw) == 10_000
    wide = LiquidationParams(close_fraction_ppm=200_000, close_notional_max_quote_quantums=10**9)
    assert liq.close_size_cap(wide, equity=3_000, **kw) == 2_000  # 20% of the position
    tiny = {**kw, "position_base_quantums": 150}
    assert liq.close_size_cap(wide, equity=3_000, **tiny) == 100  # one step at least
    assert liq.close_size_cap(wide, equity=3_000, **{**tiny, "step_base_quantums": 1_000}) == 150


fee_params = st.builds(
    LiquidationParams, fee_ppm=st.integers(0, 10**5), keeper_share_ppm=fractions_ppm
)


@FAST
@given(fee_params, st.integers(0, 10**18), st.integers(-(10**18), 10**18))
def test_liquidation_fee_is_capped_by_equity_and_keeper_takes_a_part(
    params: LiquidationParams, notional: int, equity: int
) -> None:
    fee = liq.liquidation_fee(params, notional_quote_quantums=notional, equity=equity)
    full = math.ceil(Fraction(notional * params.fee_ppm, PPM_ONE))
    assert 0 <= fee <= max(equity, 0)
    assert fee == (full if equity >= full else max(equity, 0))
    share = liq.keeper_share(params, fee)
    assert 0 <= share <= fee
    assert share == math.floor(Fraction(fee * params.keeper_share_ppm, PPM_ONE))


def test_liquidation_fee_examples() -> None:
    params = LiquidationParams(fee_ppm=15_000, keeper_share_ppm=500_000)
    assert liq.liquidation_fee(params, notional_quote_quantums=1_000_001, equity=10**9) == 15_001
    assert liq.liquidation_fee(params, notional_quote_quantums=1_000_001, equity=100) == 100
    assert liq.liquidation_fee(params, notional_quote_quantums=1_000_001, equity=-100) == 0
    assert liq.keeper_share(params, 15_001) == 7_500  # the fund gets the odd quantum


@st.composite
def auction_params(draw: st.DrawFn) -> LiquidationParams:
    start = draw(st.integers(0, PPM_ONE - 1))
    return LiquidationParams(
        auction_start_discount_ppm=start,
        auction_end_discount_ppm=draw(st.integers(start, PPM_ONE - 1)),
        auction_duration_ns=draw(st.integers(NS_PER_SECOND, 24 * 3_600 * NS_PER_SECOND)),
    )


@FAST
@given(auction_params(), st.integers(-100, 10**14), st.integers(1, 10**14))
def test_auction_discount_ramps_monotonically_and_clamps(
    params: LiquidationParams, elapsed: int, later: int
) -> None:
    start, end = params.auction_start_discount_ppm, params.auction_end_discount_ppm
    assert liq.auction_discount_ppm(params, 0) == start
    assert liq.auction_discount_ppm(params, -later) == start
    assert liq.auction_discount_ppm(params, params.auction_duration_ns) == end
    assert liq.auction_discount_ppm(params, params.auction_duration_ns + later) == end
    now = liq.auction_discount_ppm(params, elapsed)
    assert start <= now <= liq.auction_discount_ppm(params, elapsed + later) <= end
    assert liq.auction_discount_ppm(params, elapsed + 1) >= now


def test_auction_discount_default_schedule() -> None:
    params = LiquidationParams()  # 5% to 30% over 30 seconds
    seconds = (0, 1, 15, 29, 30, 31)
    assert [liq.auction_discount_ppm(params, t * NS_PER_SECOND) for t in seconds] == [
        50_000, 58_333, 175_000, 291_666, 300_000, 300_000,
    ]  # fmt: skip


@FAST
@given(marks, st.integers(0, PPM_ONE - 1))
def test_auction_price_gives_the_discount_to_the_bidder(mark: int, discount: int) -> None:
    sell = liq.auction_price(mark, Side.SELL, discount)
    buy = liq.auction_price(mark, Side.BUY, discount)
    assert 1 <= sell <= mark <= buy
    assert sell == max(1, math.floor(Fraction(mark * (PPM_ONE - discount), PPM_ONE)))
    assert buy == math.ceil(Fraction(mark * (PPM_ONE + discount), PPM_ONE))
    assert liq.auction_price(1_000, Side.SELL, 50_000) == 950
    assert liq.auction_price(1_001, Side.BUY, 50_000) == 1_052  # 1051.05 up


amounts = st.integers(1, 10**15)


def _score(pnl: int, cost: int, notional: int, equity: int) -> int:
    return liq.adl_score(unrealized_pnl=pnl, cost_quote_quantums=cost,
                         notional_quote_quantums=notional, equity=equity)  # fmt: skip


@FAST
@given(amounts, amounts, amounts, amounts, st.integers(-(10**15), 10**15), amounts)
def test_adl_score_ranks_profit_then_leverage(
    profit: int, loss: int, cost: int, notional: int, equity: int, more_equity: int
) -> None:
    def score(pnl: int, eq: int) -> int:
        return _score(pnl, cost, notional, eq)

    assert score(profit, equity) >= 0 > score(-loss, equity)
    assert score(profit, equity) >= score(profit, equity + more_equity)  # lower equity: higher
    assert score(profit, min(equity, 0)) == score(profit, 1)  # no equity counts as one quantum
    assert score(profit, 2) * 2 <= score(profit, 1) <= score(profit, 2) * 2 + 1


def test_adl_score_examples() -> None:
    assert _score(10, -100, 200, 50) == 4 * 10**11  # 10% profit × 4× leverage, |cost|
    assert _score(-1, 3, 1, 1) == -333_333_333_334  # floored: a loss ranks a quantum lower
    assert _score(1, 0, 1, -5) == liq.ADL_SCORE_SCALE  # zero cost and no equity count as one


@st.composite
def candidates(draw: st.DrawFn, *, min_size: int = 0) -> list[liq.AdlCandidate]:
    keys = draw(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 12)), unique=True,
                         min_size=min_size, max_size=12))  # fmt: skip
    sizes, scores = st.integers(-(10**9), 10**9).filter(bool), st.integers(-2, 2)
    return [liq.AdlCandidate(_sid(o, n), draw(sizes), draw(scores)) for o, n in keys]


@FAST
@given(candidates(), st.data())
def test_adl_order_is_total_and_deterministic(
    queue: list[liq.AdlCandidate], data: st.DataObject
) -> None:
    ordered = liq.adl_order(queue)
    assert len(ordered) == len(queue) and set(ordered) == set(queue)
    assert liq.adl_order(data.draw(st.permutations(queue))) == ordered
    for first, second in itertools.pairwise(ordered):
        assert first.score > second.score or (
            first.score == second.score and str(first.subaccount_id) < str(second.subaccount_id)
        )


def test_adl_order_breaks_ties_by_id_string() -> None:
    two, ten = liq.AdlCandidate(_sid(1, 2), 1, 5), liq.AdlCandidate(_sid(1, 10), 1, 5)
    top = liq.AdlCandidate(_sid(2), 1, 7)
    assert liq.adl_order([two, ten, top]) == [top, ten, two]  # "…/10" < "…/2" as strings


@FAST
@given(candidates(min_size=1), st.data())
def test_take_from_queue_takes_exactly_the_size_from_the_top(
    queue: list[liq.AdlCandidate], data: st.DataObject
) -> None:
    available = sum(abs(c.size_base_quantums) for c in queue)
    size = data.draw(st.integers(0, available))
    taken = liq.take_from_queue(queue, size)
    assert sum(part for _, part in taken) == size
    assert [c for c, _ in taken] == queue[: len(taken)]  # a prefix, in queue order
    for index, (candidate, part) in enumerate(taken):
        assert 0 < part <= abs(candidate.size_base_quantums)
        if index < len(taken) - 1:  # everyone above the last gives up the whole position
            assert part == abs(candidate.size_base_quantums)
    with pytest.raises(AssertionError):
        liq.take_from_queue(queue, available + 1)


@FAST
@given(st.integers(0, 10**18), st.lists(st.integers(1, 10**12), min_size=1, max_size=20))
def test_allocate_is_exact_and_within_one_of_proportional(total: int, weights: list[int]) -> None:
    parts = liq.allocate(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, weight_sum)
        assert part >= 0
        assert math.floor(exact) <= part <= math.floor(exact) + 1
        assert abs(part - exact) < 1
    assert liq.allocate(total, list(weights)) == parts


def test_allocate_examples_and_rejections() -> None:
    assert liq.allocate(10, [1, 1, 1]) == [4, 3, 3]  # ties to the earlier weight
    assert liq.allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert liq.allocate(5, [1, 3]) == [1, 4]  # 1.25, 3.75: the larger remainder gets the quantum
    assert liq.allocate(0, [7, 9]) == [0, 0]
    for total, weights in ((1, []), (1, [0]), (1, [2, -1]), (-1, [1])):
        with pytest.raises(AssertionError):
            liq.allocate(total, weights)
