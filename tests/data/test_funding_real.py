"""Funding (SPEC §8) against Binance's BTCUSDT funding history (8h rates, 2019-09 onwards).

Binance's 8h rate is used as if it were Clearhouse's premium over eight hours: the hourly rate
must follow it (with the interest clamp), stay within the cap 0.75·(IMF − MMF), and the payments
made at that rate must net to a small non-negative residue.
"""

from __future__ import annotations

import bisect
import itertools
import random
from fractions import Fraction

import pytest

from clearhouse.core.params import FundingParams, MarginParams
from clearhouse.core.settlement import (
    funding_index_step_e9,
    funding_owed,
    hourly_funding_rate_ppb,
)
from clearhouse.core.units import NS_PER_HOUR, PPB_ONE, PPM_ONE

from .loaders import (
    BINANCE_BTC_FUNDING_8H,
    BINANCE_BTC_SPOT_1H,
    load_closes,
    load_funding,
    requires_data,
)

pytestmark = requires_data(BINANCE_BTC_FUNDING_8H, BINANCE_BTC_SPOT_1H)

FUNDING = FundingParams()
MARGIN = MarginParams()
BINANCE_INTEREST_PPB_PER_8H = 100_000  # Binance's 0.01% per 8h, as Clearhouse's default
BTC_BASE_QUANTUMS = 10**8
# Liquidity tiers of initial margin (SPEC §6: large cap 2%, mid 5%, small 10%) and a 1% tier.
TIERS_IMF_PPM = (10_000, 20_000, 50_000, 100_000)


@pytest.fixture(scope="module")
def history() -> list[tuple[int, int]]:
    rates = load_funding(BINANCE_BTC_FUNDING_8H)
    assert len(rates) > 7_000
    assert all(b[0] > a[0] for a, b in itertools.pairwise(rates))
    assert all(t % (8 * NS_PER_HOUR) == 0 for t, _ in rates)  # settles at 00, 08, 16 UTC
    return rates


def cap_ppb(margin: MarginParams, funding: FundingParams = FUNDING) -> Fraction:
    """0.75 × (IMF − MMF) per hour, in ppb, from the parameters' definitions (exact)."""
    imf = Fraction(margin.initial_margin_ppm, PPM_ONE)
    mmf = imf * Fraction(margin.maintenance_share_ppm, PPM_ONE)
    return (imf - mmf) * Fraction(funding.cap_share_of_margin_gap_ppm, PPM_ONE) * PPB_ONE


def expected_hourly(premium_8h: int, margin: MarginParams) -> int:
    """Premium + clamp(interest − premium, ±0.05%), an eighth of it per hour toward zero, capped.

    Spelled out case by case: inside the clamp the premium cancels and only interest is paid.
    """
    interest, band = FUNDING.interest_ppb_per_8h, FUNDING.premium_clamp_ppb
    if abs(interest - premium_8h) <= band:
        rate_8h = interest
    elif premium_8h > interest:
        rate_8h = premium_8h - band
    else:
        rate_8h = premium_8h + band
    hourly = Fraction(rate_8h, 8)
    whole = int(hourly)  # toward zero
    cap = cap_ppb(margin)
    if abs(whole) > cap:
        whole = int(cap) if whole > 0 else -int(cap)
    return whole


def hourly_of(premium_8h: int, margin: MarginParams = MARGIN, samples: int = 1) -> int:
    return hourly_funding_rate_ppb(
        premium_time_ppb_ns=premium_8h * samples,
        premium_time_ns=samples,
        funding=FUNDING,
        margin=margin,
    )


def test_hourly_rate_follows_the_historical_premium(history: list[tuple[int, int]]) -> None:
    assert FUNDING.interest_ppb_per_8h == BINANCE_INTEREST_PPB_PER_8H
    distinct = sorted({rate for _, rate in history})
    hourly = [hourly_of(rate) for rate in distinct]
    for rate, result in zip(distinct, hourly, strict=True):
        assert result == expected_hourly(rate, MARGIN), rate
        # The same premium seen as 8 hourly samples gives the same rate.
        assert hourly_of(rate, samples=8) == result
    # Monotone in the premium, and (uncapped) eight hours pay the 8h rate to within 8 ppb.
    assert hourly == sorted(hourly)
    for rate, result in zip(distinct, hourly, strict=True):
        if abs(rate - FUNDING.interest_ppb_per_8h) <= FUNDING.premium_clamp_ppb:
            assert result == FUNDING.interest_ppb_per_8h // 8
        else:
            clamped = (
                rate - FUNDING.premium_clamp_ppb if rate > 0 else rate + FUNDING.premium_clamp_ppb
            )
            assert abs(8 * result - clamped) < 8

    at_interest = sum(rate == BINANCE_INTEREST_PPB_PER_8H for _, rate in history) / len(history)
    inside = sum(
        abs(rate - FUNDING.interest_ppb_per_8h) <= FUNDING.premium_clamp_ppb for _, rate in history
    ) / len(history)
    print(
        f"Binance 8h rates: {len(history)}, range {min(distinct) / 1e7:.4f}%.."
        f"{max(distinct) / 1e7:.4f}%; exactly 0.01%: {at_interest:.1%}; "
        f"inside the ±0.05% clamp (hourly = interest/8 = {FUNDING.interest_ppb_per_8h // 8} ppb): "
        f"{inside:.1%}"
    )
    assert inside > 0.5  # most of the time funding is just the interest


def test_cap_bounds_every_rate() -> None:
    for imf in TIERS_IMF_PPM:
        margin = MarginParams(initial_margin_ppm=imf)
        cap = cap_ppb(margin)
        assert cap.denominator == 1
        for premium in (PPB_ONE, 10 * PPB_ONE, 10**15):
            assert hourly_of(premium, margin) == cap
            assert hourly_of(-premium, margin) == -cap
    # Default: IMF 5%, MMF 75% of it = 3.75%, so the hourly cap is 0.75 × 1.25% = 0.9375%.
    assert cap_ppb(MARGIN) == 9_375_000


def test_fraction_of_history_beyond_the_clearhouse_cap(history: list[tuple[int, int]]) -> None:
    report = []
    for imf in TIERS_IMF_PPM:
        margin = MarginParams(initial_margin_ppm=imf)
        cap_8h = 8 * cap_ppb(margin)
        beyond = sum(abs(rate) > cap_8h for _, rate in history) / len(history)
        capped = sum(abs(hourly_of(rate, margin)) == cap_ppb(margin) for _, rate in history)
        report.append(f"IMF {imf / 1e4:g}%: 8h cap {cap_8h / 1e7:.2f}%, beyond {beyond:.3%}")
        assert beyond < 0.05
        assert capped / len(history) <= beyond + 1e-12  # only premiums beyond the cap hit it
        for _, rate in history:
            assert abs(hourly_of(rate, margin)) <= cap_ppb(margin)
    worst = max(abs(rate) for _, rate in history)
    print(f"largest |Binance 8h rate| {worst / 1e7:.4f}%; " + "; ".join(report))


def index_at(closes: list[tuple[int, int]], times: list[int], now_ns: int) -> int:
    """The last Binance spot close at or before ``now_ns`` (the data has gaps)."""
    position = bisect.bisect_right(times, now_ns) - 1
    assert position >= 0 and now_ns - times[position] <= 24 * NS_PER_HOUR, now_ns
    return closes[position][1]


def balanced_sizes(rng: random.Random, count: int) -> list[int]:
    """Positions in satoshis that net to zero (every long has a short), up to ±50 BTC each."""
    sizes = [rng.choice((-1, 1)) * rng.randint(1, 50 * BTC_BASE_QUANTUMS) for _ in range(count - 1)]
    return [*sizes, -sum(sizes)]


def test_funding_by_index_is_zero_sum_at_historical_rates(history: list[tuple[int, int]]) -> None:
    """Real BTC funding rates on a real index, through the funding index: positions that open
    and settle at random hours owe exactly what they are owed, less a residue the venue keeps
    of under a quantum per settlement."""
    closes = load_closes(BINANCE_BTC_SPOT_1H)
    times = [t for t, _ in closes]
    rng = random.Random(20200312)
    sizes = balanced_sizes(rng, 16)
    settled_at = [0] * len(sizes)  # each position's index at its last settlement
    index_e9 = settled = settlements = 0
    for funding_ns, rate_8h in history:
        index = index_at(closes, times, funding_ns)
        index_e9 += funding_index_step_e9(index_price_quantums=index, rate_ppb=hourly_of(rate_8h))
        for holder in rng.sample(range(len(sizes)), 3):  # a few positions change this hour
            settled += funding_owed(sizes[holder], index_e9 - settled_at[holder], BTC_BASE_QUANTUMS)
            settled_at[holder] = index_e9
            settlements += 1
    for holder, size in enumerate(sizes):  # everyone settles at the end
        settled += funding_owed(size, index_e9 - settled_at[holder], BTC_BASE_QUANTUMS)
        settlements += 1
    exact = sum(Fraction(size * index_e9, BTC_BASE_QUANTUMS * PPB_ONE) for size in sizes)
    assert exact == 0
    print(f"funding hours: {len(history)}, settlements {settlements}, residue {settled} quantums")
    assert 0 <= settled < settlements
