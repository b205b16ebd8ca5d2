"""oracle: weighted median, index aggregation (staleness, band, quorum, breaker), EWMA
volatility, TWAP windows, mark price and premium (SPEC §5)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core import oracle as oracle_module
from clearhouse.core.ids import Address, OracleId
from clearhouse.core.oracle import (
    RETURN_SCALE,
    Aggregate,
    PriceStatus,
    Report,
    aggregate,
    annual_volatility_ppm,
    basis_ema_step,
    decay_power_e18,
    ewma_variance_e18,
    initial_variance_e18,
    mark_price,
    premium_ppb,
    twap,
    twap_window,
    weighted_median,
)
from clearhouse.core.params import OracleParams, Publisher
from clearhouse.core.units import (
    NS_PER_HOUR,
    NS_PER_MINUTE,
    NS_PER_SECOND,
    NS_PER_YEAR,
    PPB_ONE,
    PPM_ONE,
)

FAST = settings(max_examples=100, deadline=None)
NOW = 1_767_225_600 * NS_PER_SECOND
STALENESS = 10 * NS_PER_SECOND


def _address(n: int) -> Address:
    return Address(f"0x{n:040x}")


def _params(*weights: int, **overrides: int) -> OracleParams:
    publishers = tuple(Publisher(address=_address(i + 1), weight=w) for i, w in enumerate(weights))
    return OracleParams(oracle_id=OracleId("BTC-USD"), publishers=publishers, **overrides)


def _report(n: int, price: int, timestamp_ns: int = NOW) -> Report:
    return Report(_address(n), price, 0, timestamp_ns)


# ── Weighted median ──────────────────────────────────────────────────────────────────────


def _reference_median(entries: list[tuple[int, int]]) -> int:
    """The smallest price at which the weight at or below it reaches half the total."""
    total = sum(weight for _, weight in entries)
    for candidate in sorted({price for price, _ in entries}):
        at_or_below = sum(weight for price, weight in entries if price <= candidate)
        if 2 * at_or_below >= total:
            return candidate
    raise AssertionError("unreachable")


entries_strategy = st.lists(
    st.tuples(st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=1_000)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(entries_strategy, st.data())
def test_weighted_median_matches_brute_force(
    entries: list[tuple[int, int]], data: st.DataObject
) -> None:
    median = weighted_median(entries)
    assert median == _reference_median(entries)
    total = sum(w for _, w in entries)
    assert 2 * sum(w for p, w in entries if p < median) < total
    assert 2 * sum(w for p, w in entries if p > median) <= total
    assert weighted_median(data.draw(st.permutations(entries))) == median


def test_weighted_median_examples() -> None:
    assert weighted_median([(100, 1)]) == 100
    assert weighted_median([(100, 1), (200, 1)]) == 100  # the lower median
    assert weighted_median([(100, 1), (200, 2)]) == 200
    assert weighted_median([(300, 1), (100, 1), (200, 1)]) == 200
    assert weighted_median([(100, 5), (200, 1), (300, 1)]) == 100
    with pytest.raises(AssertionError):
        weighted_median([])


# ── Aggregation ──────────────────────────────────────────────────────────────────────────


def test_report_exactly_staleness_old_is_fresh_and_one_ns_older_is_not() -> None:
    params = _params(1, 1, 1)
    at_boundary = [_report(1, 100), _report(2, 100), _report(3, 100, NOW - STALENESS)]
    result = aggregate(at_boundary, params, now_ns=NOW, previous_price=0)
    assert result == Aggregate(PriceStatus.FRESH, 100, 3, 3)
    past_boundary = [_report(1, 100), _report(2, 100), _report(3, 100, NOW - STALENESS - 1)]
    result = aggregate(past_boundary, params, now_ns=NOW, previous_price=0)
    assert result == Aggregate(PriceStatus.FRESH, 100, 2, 3)


def test_reports_from_the_future_or_unknown_publishers_are_ignored() -> None:
    params = _params(1, 1, 1)
    reports = [_report(1, 100), _report(2, 100, NOW + 1), _report(9, 100)]
    result = aggregate(reports, params, now_ns=NOW, previous_price=0)
    assert result == Aggregate(PriceStatus.STALE, 0, 1, 3)  # 1 of 3 is below quorum


def test_nothing_fresh_is_stale() -> None:
    params = _params(1, 1, 1)
    old = [_report(n, 100, NOW - STALENESS - 1) for n in (1, 2, 3)]
    assert aggregate(old, params, now_ns=NOW, previous_price=100) == Aggregate(
        PriceStatus.STALE, 0, 0, 3
    )
    assert aggregate([], params, now_ns=NOW, previous_price=0).status is PriceStatus.STALE


def test_outliers_beyond_the_band_are_excluded() -> None:
    params = _params(1, 1, 1, 1)  # band 5% around the median of fresh reports
    reports = [_report(1, 1_000), _report(2, 1_010), _report(3, 1_050), _report(4, 1_200)]
    result = aggregate(reports, params, now_ns=NOW, previous_price=0)
    # median 1_010: 1_050 is 3.96% away (in), 1_200 is 18.8% away (out)
    assert result == Aggregate(PriceStatus.FRESH, 1_010, 3, 4)


def test_band_edge_is_inclusive() -> None:
    params = _params(1, 1, 1)
    # median 1_000; 1_050 is exactly 5% away: kept; 1_051 is not.
    kept = aggregate(
        [_report(1, 1_000), _report(2, 1_000), _report(3, 1_050)],
        params,
        now_ns=NOW,
        previous_price=0,
    )
    assert kept.included_weight == 3
    dropped = aggregate(
        [_report(1, 1_000), _report(2, 1_000), _report(3, 1_051)],
        params,
        now_ns=NOW,
        previous_price=0,
    )
    assert dropped.included_weight == 2


def test_quorum_counts_weight_not_publishers() -> None:
    params = _params(5, 1, 1)
    heavy_alone = aggregate([_report(1, 100)], params, now_ns=NOW, previous_price=0)
    assert heavy_alone == Aggregate(PriceStatus.FRESH, 100, 5, 7)  # 5/7 >= 2/3
    light_pair = aggregate([_report(2, 100), _report(3, 100)], params, now_ns=NOW, previous_price=0)
    assert light_pair == Aggregate(PriceStatus.STALE, 0, 2, 7)  # 2/7 < 2/3
    # The heavy publisher also decides the median.
    mixed = aggregate(
        [_report(1, 100), _report(2, 102), _report(3, 102)], params, now_ns=NOW, previous_price=0
    )
    assert mixed.price_quantums == 100


def test_quorum_boundary() -> None:
    params = _params(1, 1, 1, quorum_ppm=PPM_ONE * 2 // 3)  # 666_666: exactly 2 of 3 passes
    two = aggregate([_report(1, 100), _report(2, 100)], params, now_ns=NOW, previous_price=0)
    assert two.status is PriceStatus.FRESH
    strict = _params(1, 1, 1, quorum_ppm=666_667)
    two = aggregate([_report(1, 100), _report(2, 100)], strict, now_ns=NOW, previous_price=0)
    assert two.status is PriceStatus.STALE
    # Exactly the quorum is enough: half of two equal publishers at a 50% quorum.
    half = _params(1, 1, quorum_ppm=PPM_ONE // 2)
    one = aggregate([_report(1, 100)], half, now_ns=NOW, previous_price=0)
    assert one == Aggregate(PriceStatus.FRESH, 100, 1, 2)


def test_a_large_move_with_a_supermajority_trips_the_breaker() -> None:
    params = _params(1, 1, 1, 1)  # supermajority 75%: 3 of 4
    reports = [_report(n, 120) for n in (1, 2, 3)]
    result = aggregate(reports, params, now_ns=NOW, previous_price=100)
    assert result == Aggregate(PriceStatus.FRESH, 120, 3, 4, breaker_tripped=True)


def test_a_large_move_without_a_supermajority_is_held() -> None:
    params = _params(1, 1, 1)  # 2 of 3 makes quorum but not 75%
    reports = [_report(1, 120), _report(2, 121)]
    result = aggregate(reports, params, now_ns=NOW, previous_price=100)
    assert result == Aggregate(PriceStatus.BREAKER_HELD, 0, 2, 3, held_price_quantums=120)
    # Downward moves too.
    down = aggregate([_report(1, 80), _report(2, 80)], params, now_ns=NOW, previous_price=100)
    assert down.status is PriceStatus.BREAKER_HELD
    assert down.held_price_quantums == 80


def test_a_move_of_exactly_the_breaker_threshold_is_not_a_trip() -> None:
    params = _params(1, 1, 1)  # breaker at 10%
    at = aggregate([_report(1, 110), _report(2, 110)], params, now_ns=NOW, previous_price=100)
    assert at == Aggregate(PriceStatus.FRESH, 110, 2, 3)
    beyond = aggregate([_report(1, 111), _report(2, 111)], params, now_ns=NOW, previous_price=100)
    assert beyond.status is PriceStatus.BREAKER_HELD


def test_no_previous_price_never_trips() -> None:
    params = _params(1, 1, 1)
    result = aggregate([_report(1, 10**9), _report(2, 10**9)], params, now_ns=NOW, previous_price=0)
    assert result == Aggregate(PriceStatus.FRESH, 10**9, 2, 3)


@FAST
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=5),  # weight
            st.integers(min_value=900, max_value=1_100),  # price
            st.integers(min_value=0, max_value=2 * STALENESS),  # age
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(min_value=0, max_value=2_000),
)
def test_aggregate_properties(publishers: list[tuple[int, int, int]], previous_price: int) -> None:
    params = _params(*(w for w, _, _ in publishers))
    reports = [_report(i + 1, p, NOW - age) for i, (_, p, age) in enumerate(publishers)]
    result = aggregate(reports, params, now_ns=NOW, previous_price=previous_price)
    total = sum(w for w, _, _ in publishers)
    fresh = [(p, w) for w, p, age in publishers if age <= STALENESS]
    assert result.total_weight == total
    assert result.included_weight <= sum(w for _, w in fresh)
    if result.status is PriceStatus.FRESH:
        assert result.price_quantums > 0
        assert result.included_weight * PPM_ONE >= params.quorum_ppm * total
        center = weighted_median(fresh)
        in_band = [(p, w) for p, w in fresh if abs(p - center) * 20 <= center]
        assert result.price_quantums == weighted_median(in_band)
        assert result.held_price_quantums == 0
        moved = previous_price > 0 and abs(result.price_quantums - previous_price) * 10 > (
            previous_price
        )  # the breaker is at 10%
        assert result.breaker_tripped == moved
    elif result.status is PriceStatus.BREAKER_HELD:
        assert result.price_quantums == 0
        assert result.held_price_quantums > 0
        assert previous_price > 0
        assert result.included_weight * PPM_ONE < params.breaker_supermajority_ppm * total
    else:
        assert result.status is PriceStatus.STALE
        assert result.price_quantums == 0
        assert result.included_weight * PPM_ONE < params.quorum_ppm * total


# ── EWMA volatility ──────────────────────────────────────────────────────────────────────

LAMBDA = 940_000


def _ewma(
    variance: int,
    previous: int,
    price: int,
    *,
    elapsed_ns: int = 0,
    interval_ns: int = 0,
    lambda_ppm: int = LAMBDA,
) -> int:
    return ewma_variance_e18(
        variance,
        previous_price=previous,
        price=price,
        lambda_ppm=lambda_ppm,
        elapsed_ns=elapsed_ns,
        sample_interval_ns=interval_ns,
    )


prices = st.integers(min_value=1, max_value=10**12)
variances = st.integers(min_value=0, max_value=10**17)


@FAST
@given(variances, prices, st.integers(min_value=0, max_value=10**12), st.data())
def test_ewma_variance_grows_with_the_size_of_the_return(
    variance: int, previous: int, move: int, data: st.DataObject
) -> None:
    larger = data.draw(st.integers(min_value=move, max_value=move + 10**12))
    up_small = _ewma(variance, previous, previous + move)
    up_large = _ewma(variance, previous, previous + larger)
    assert up_small <= up_large
    if move < previous:  # a fall of the same size reads the same
        assert _ewma(variance, previous, previous - move) == up_small


@FAST
@given(variances, prices, prices, st.integers(min_value=1, max_value=PPM_ONE - 1))
def test_ewma_variance_rounds_up_from_the_exact_value(
    variance: int, previous: int, price: int, lambda_ppm: int
) -> None:
    result = _ewma(variance, previous, price, lambda_ppm=lambda_ppm)
    exact_return = Fraction(abs(price - previous) * RETURN_SCALE, previous)
    exact = (lambda_ppm * variance + (PPM_ONE - lambda_ppm) * exact_return**2) / PPM_ONE
    assert result >= exact
    assert result == math.ceil(
        Fraction(lambda_ppm * variance + (PPM_ONE - lambda_ppm) * math.ceil(exact_return) ** 2)
        / PPM_ONE
    )


def test_ewma_variance_examples() -> None:
    # A 1% return (10**7 ppb) into zero variance: (1 − 0.94) × 10**14.
    assert _ewma(0, 100, 101) == 6 * 10**12
    assert _ewma(0, 100, 99) == 6 * 10**12
    # No move decays the variance by lambda.
    assert _ewma(10**12, 100, 100) == 94 * 10**10
    assert _ewma(10**12, 100, 101) > _ewma(10**12, 100, 100)


@FAST
@given(
    variances,
    prices,
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=1, max_value=NS_PER_HOUR),
    st.integers(min_value=2, max_value=1_000),
)
def test_a_gap_scales_the_return_down_to_one_interval(
    variance: int, previous: int, move: int, interval: int, intervals: int
) -> None:
    """Over k intervals the old variance decays by λ^k and the squared return counts per
    interval (r²/k): the result lies between the two, never above either."""
    price = previous + move
    one_interval = _ewma(variance, previous, price, elapsed_ns=interval, interval_ns=interval)
    assert one_interval == _ewma(variance, previous, price)  # on time: no scaling
    early = _ewma(variance, previous, price, elapsed_ns=interval // 2, interval_ns=interval)
    assert early == one_interval  # never scaled up
    gap = _ewma(variance, previous, price, elapsed_ns=interval * intervals, interval_ns=interval)
    return_e9 = -(-move * RETURN_SCALE // previous)
    per_interval = -(-(return_e9**2) // intervals)
    assert min(variance, per_interval) <= gap <= max(variance, per_interval) + 1


def test_a_gap_example() -> None:
    interval = NS_PER_MINUTE
    on_time = _ewma(0, 100, 110, elapsed_ns=interval, interval_ns=interval)
    after_ten = _ewma(0, 100, 110, elapsed_ns=10 * interval, interval_ns=interval)
    assert on_time == 6 * 10**14  # 10% return: (10**8)**2 × 0.06
    # The squared return spread over ten intervals (10**15), weighted as ten minutes'
    # samples would weigh it: 1 − 0.94**10 (0.94**10 rounded down in parts per 10**18).
    decay = decay_power_e18(LAMBDA, 10)
    assert decay == 538_615_114_094_899_701  # 0.94**10 = 0.53861511409489970...
    assert Fraction(decay, 10**18) <= Fraction(94, 100) ** 10
    assert after_ten == -(-(10**18 - decay) * 10**15 // 10**18)
    # A calm hour forgets a 10% minute as fast in one sample as in sixty.
    shock = _ewma(0, 100, 110)
    minute_by_minute = shock
    for _ in range(60):
        minute_by_minute = _ewma(minute_by_minute, 100, 100)
    at_once = _ewma(shock, 100, 100, elapsed_ns=60 * interval, interval_ns=interval)
    assert abs(at_once - minute_by_minute) * 10**6 <= minute_by_minute


@FAST
@given(st.integers(min_value=1, max_value=PPM_ONE - 1), st.integers(min_value=1, max_value=2000))
def test_decay_power_is_lambda_to_the_k_rounded_down(lambda_ppm: int, intervals: int) -> None:
    exact = Fraction(lambda_ppm, PPM_ONE) ** intervals
    found = Fraction(decay_power_e18(lambda_ppm, intervals), 10**18)
    assert found <= exact
    assert exact - found <= Fraction(intervals, 10**18)  # one unit lost per product at most
    if intervals == 1:
        assert found == exact


def test_ewma_refuses_non_positive_prices() -> None:
    with pytest.raises(AssertionError):
        _ewma(0, 0, 100)
    with pytest.raises(AssertionError):
        _ewma(0, 100, 0)


@FAST
@given(
    st.integers(min_value=1_000, max_value=10 * PPM_ONE),
    st.sampled_from([NS_PER_SECOND, 5 * NS_PER_SECOND, NS_PER_MINUTE, NS_PER_HOUR]),
)
def test_initial_variance_reads_back_as_the_configured_volatility(
    vol_ppm: int, interval: int
) -> None:
    params = _params(1, vol_initial_annual_ppm=vol_ppm, vol_sample_interval_ns=interval)
    variance = initial_variance_e18(params)
    assert vol_ppm <= annual_volatility_ppm(variance, interval) <= vol_ppm + 1
    # The per-sample variance is the annual one spread over a year's samples, rounded up.
    sigma_e9 = vol_ppm * (RETURN_SCALE // PPM_ONE)
    per_year = NS_PER_YEAR // interval
    assert variance == math.ceil(Fraction(sigma_e9 * sigma_e9, per_year))


def test_default_initial_volatility_round_trips() -> None:
    params = _params(1)
    variance = initial_variance_e18(params)
    assert annual_volatility_ppm(variance, params.vol_sample_interval_ns) in (600_000, 600_001)
    assert annual_volatility_ppm(0, NS_PER_MINUTE) == 0


# ── TWAP ─────────────────────────────────────────────────────────────────────────────────


def _reference_twap(
    samples: list[tuple[int, int]], start: int, end: int, max_hold: int
) -> tuple[int, int, int]:
    """(price, samples, covered) by walking the window one nanosecond at a time."""
    weighted = covered = 0
    for t in range(start, end):
        holding = [(ts, price) for ts, price in samples if ts <= t]
        if not holding:
            continue
        ts, price = holding[-1]
        if max_hold and t >= ts + max_hold:
            continue
        weighted += price
        covered += 1
    count = sum(1 for ts, _ in samples if start <= ts < end)
    if covered == 0:
        return 0, 0, 0
    return weighted // covered, count, covered


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-20, max_value=120), st.integers(min_value=1, max_value=10**6)
        ),
        max_size=8,
    ),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=30),
)
def test_twap_window_matches_a_nanosecond_walk(
    samples: list[tuple[int, int]], start: int, length: int, max_hold: int
) -> None:
    ordered = sorted(samples, key=lambda s: s[0])  # samples arrive in time order
    result = twap_window(ordered, start_ns=start, end_ns=start + length, max_hold_ns=max_hold)
    expected = _reference_twap(ordered, start, start + length, max_hold)
    assert (result.price_quantums, result.samples, result.covered_ns) == expected
    assert 0 <= result.covered_ns <= length
    if result.covered_ns:
        in_play = [p for _, p in ordered]
        assert min(in_play) <= result.price_quantums <= max(in_play)


def test_a_gap_longer_than_max_hold_leaves_time_uncovered() -> None:
    samples = [(0, 100), (10, 200)]
    held = twap_window(samples, start_ns=0, end_ns=30)
    assert (held.price_quantums, held.samples, held.covered_ns) == (5_000 // 30, 2, 30)
    bounded = twap_window(samples, start_ns=0, end_ns=30, max_hold_ns=5)
    # [0, 5) at 100 and [10, 15) at 200: ten nanoseconds covered, twenty not.
    assert (bounded.price_quantums, bounded.samples, bounded.covered_ns) == (150, 2, 10)


def test_time_before_the_first_sample_is_held_from_the_one_before_the_window() -> None:
    samples = [(-3, 50), (4, 100)]
    result = twap_window(samples, start_ns=0, end_ns=10, max_hold_ns=5)
    # [0, 2) at 50 (held from -3 for at most 5), [4, 9) at 100: 7 ns covered, one sample inside.
    assert (result.price_quantums, result.samples, result.covered_ns) == (600 // 7, 1, 7)
    assert twap(samples, start_ns=0, end_ns=10) == ((4 * 50 + 6 * 100) // 10, 1)


def test_twap_of_nothing_is_zero() -> None:
    result = twap_window([], start_ns=0, end_ns=10)
    assert (result.price_quantums, result.samples, result.covered_ns) == (0, 0, 0)
    after = twap_window([(10, 5)], start_ns=0, end_ns=10)
    assert (after.price_quantums, after.samples, after.covered_ns) == (0, 0, 0)
    with pytest.raises(AssertionError):
        twap_window([], start_ns=5, end_ns=5)


# ── Mark and premium ─────────────────────────────────────────────────────────────────────


@FAST
@given(
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=-(10**11), max_value=10**11),
    st.one_of(st.none(), st.integers(min_value=1, max_value=10**12)),
    st.integers(min_value=0, max_value=999_999),
)
def test_mark_price_is_the_median_of_three_within_the_band(
    index: int, basis: int, impact: int | None, band: int
) -> None:
    mark = mark_price(index_price=index, ema_basis=basis, impact_mid=impact, band_ppm=band)
    candidates = sorted([index + basis, index if impact is None else impact, index])
    room = index * band // 1_000_000
    assert mark == max(min(candidates[1], index + room), index - room, 1)
    assert abs(mark - index) * 1_000_000 <= band * index or mark == 1
    if impact is None:  # a missing impact mid counts as the index: the mark is the index
        assert mark == index


def test_mark_price_examples() -> None:
    wide = 100_000  # 10%
    assert mark_price(index_price=100, ema_basis=5, impact_mid=110, band_ppm=wide) == 105
    assert mark_price(index_price=100, ema_basis=5, impact_mid=90, band_ppm=wide) == 100
    assert mark_price(index_price=100, ema_basis=-5, impact_mid=90, band_ppm=wide) == 95
    assert mark_price(index_price=100, ema_basis=50, impact_mid=None, band_ppm=wide) == 100
    # A book 10% below the index for long enough: the mark stays within 1% of the index.
    assert mark_price(index_price=121_000, ema_basis=-12_100, impact_mid=108_900,
                      band_ppm=10_000) == 119_790  # fmt: skip
    assert mark_price(index_price=100, ema_basis=5, impact_mid=110, band_ppm=0) == 100


@FAST
@given(
    st.integers(min_value=1, max_value=10**12),
    st.one_of(st.none(), st.integers(min_value=1, max_value=2 * 10**12)),
)
def test_premium_sign_and_truncation(index: int, impact: int | None) -> None:
    premium = premium_ppb(impact_mid=impact, index_price=index)
    if impact is None:
        assert premium == 0
        return
    exact = Fraction((impact - index) * PPB_ONE, index)
    assert premium == math.trunc(exact)
    assert (premium > 0) <= (impact > index)
    assert (premium < 0) <= (impact < index)
    mirrored = 2 * index - impact  # as far below the index as impact is above it
    if mirrored > 0:
        assert premium_ppb(impact_mid=mirrored, index_price=index) == -premium


def test_premium_examples() -> None:
    assert premium_ppb(impact_mid=101, index_price=100) == 10_000_000
    assert premium_ppb(impact_mid=99, index_price=100) == -10_000_000
    assert premium_ppb(impact_mid=100, index_price=300) == -666_666_666  # toward zero
    assert premium_ppb(impact_mid=None, index_price=100) == 0


@FAST
@given(
    st.integers(-(10**12), 10**12),
    st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(-(10**12), 10**12)), min_size=1, max_size=60
    ),
    st.integers(10**9, 10**14),
)
def test_the_basis_ema_moves_with_time_never_with_the_number_of_blocks(
    start: int, samples: list[tuple[int, int]], tau: int
) -> None:
    """However Δt is cut into blocks, the EMA moves at most Δt/τ of the largest gap between a
    sample and where it started (and never past the samples)."""
    ema = start
    for elapsed, basis in samples:
        ema = basis_ema_step(ema_basis=ema, basis=basis, elapsed_ns=elapsed, time_constant_ns=tau)
    total = sum(elapsed for elapsed, _ in samples)
    gap = max(abs(basis - start) for _, basis in samples)
    assert abs(ema - start) * tau <= gap * total
    assert abs(ema - start) <= gap


def test_a_sample_that_stood_for_no_time_has_no_weight() -> None:
    step = basis_ema_step(ema_basis=5, basis=10**9, elapsed_ns=0, time_constant_ns=10**9)
    assert step == 5


# ── Quote currencies: reports converted to USD before the median ─────────────────────────────


def _quoted(publisher: int, price: int, quote: str, confidence: int = 0) -> oracle_module.Report:
    return oracle_module.Report(Address(f"0x{publisher:040x}"), price, confidence, 1, quote)


def test_in_usd_converts_at_the_rate_and_leaves_out_quotes_without_one() -> None:
    reports = [
        _quoted(1, 60_000_000_000, "USD"),
        _quoted(2, 68_965_517_241, "USDT", confidence=3),  # BTC/USDT with USDT at 0.87
        _quoted(3, 60_000_000_000, "USDC"),  # USDC's rate feed is stale: no rate
    ]
    converted = oracle_module.in_usd(reports, {"USDT": 870_000})
    assert [r.publisher for r in converted] == [reports[0].publisher, reports[1].publisher]
    assert converted[1].price_quantums == 68_965_517_241 * 870_000 // 1_000_000  # rounded down
    assert converted[1].confidence_quantums == 3  # 2.61 rounded up
    assert all(r.quote == "USD" for r in converted)


@settings(max_examples=300, deadline=None)
@given(
    usd_price=st.integers(1_000, 10**12),
    rate=st.integers(500_000, 1_500_000),
    in_quote=st.integers(0, 7),
)
def test_a_depegging_quote_cannot_move_the_median(usd_price: int, rate: int, in_quote: int) -> None:
    """Seven publishers, any number of them quoting in a stablecoin at any rate: when each
    reports the same USD price in its own currency (rounded to the nearest quantum), the
    converted median is that price within the rounding (one quantum of the quote currency,
    worth at most ``rate / RATE_ONE`` USD quantums, plus the floor)."""
    quoted = (2 * usd_price * oracle_module.RATE_ONE + rate) // (2 * rate)
    reports = [
        _quoted(i, quoted, "USDT") if i < in_quote else _quoted(i, usd_price, "USD")
        for i in range(7)
    ]
    converted = oracle_module.in_usd(reports, {"USDT": rate})
    assert len(converted) == 7
    median = oracle_module.weighted_median([(r.price_quantums, 1) for r in converted])
    assert abs(median - usd_price) <= 1 + rate // oracle_module.RATE_ONE
