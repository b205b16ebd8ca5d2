"""The oracle's pure functions on real prices: Black Thursday (2020-03-12/13) at three venues.

Three publishers, one per venue's 1h BTC/USD(T) closes: Binance spot BTCUSDT, FTX BTCUSD and
Kraken XBTUSD. Each hour every venue reports its candle's close, timestamped at the candle's
close time; the index is aggregated at that time against the previous hour's index. Every
expectation (band, breaker, quorum) is computed from the data, never typed in.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping

import pytest

from clearhouse.core.ids import Address, OracleId
from clearhouse.core.oracle import (
    Aggregate,
    PriceStatus,
    Report,
    aggregate,
    annual_volatility_ppm,
    ewma_variance_e18,
    initial_variance_e18,
    twap,
)
from clearhouse.core.params import OracleParams, Publisher
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, PPM_ONE

from .loaders import (
    BINANCE_BTC_SPOT_1H,
    FTX_BTC_SPOT_1H,
    KRAKEN_BTC_SPOT_1H,
    load_closes,
    parse_utc_ns,
    requires_data,
)

pytestmark = requires_data(BINANCE_BTC_SPOT_1H, FTX_BTC_SPOT_1H, KRAKEN_BTC_SPOT_1H)

BINANCE = Address("0x" + "b1" * 20)
FTX = Address("0x" + "f7" * 20)
KRAKEN = Address("0x" + "4b" * 20)
VENUES = {BINANCE: BINANCE_BTC_SPOT_1H, FTX: FTX_BTC_SPOT_1H, KRAKEN: KRAKEN_BTC_SPOT_1H}

# Open times [start, end): 2020-03-11 00:00 to 2020-03-14 23:00 UTC, the days around the crash.
CRASH_START, CRASH_END = "2020-03-11T00:00:00Z", "2020-03-15T00:00:00Z"

# Hourly data: a report is fresh for two hours. The quorum is two thirds of the weight, rounded
# DOWN (666_666): the default 666_667 needs strictly more than 2/3, which with three
# equal publishers is all three, so it would not let two of three make a price.
PARAMS = OracleParams(
    oracle_id=OracleId("BTC-USD"),
    publishers=tuple(Publisher(address=address) for address in VENUES),
    staleness_ns=2 * NS_PER_HOUR,
    quorum_ppm=666_666,
    breaker_move_ppm=100_000,
)
OUTLIER_FACTOR = 1_000  # a report in the wrong unit (sKRW-style), 1000x the real price

Hourly = dict[int, dict[Address, int]]  # close time ns -> publisher -> close price


@pytest.fixture(scope="module")
def hourly() -> Hourly:
    """Every hour of the window at which at least one venue has a candle."""
    table: Hourly = {}
    for address, path in VENUES.items():
        for close_ns, price in load_closes(path, start=CRASH_START, end=CRASH_END):
            table.setdefault(close_ns, {})[address] = price
    return dict(sorted(table.items()))


@pytest.fixture(scope="module")
def full_index(hourly: Hourly) -> dict[int, Aggregate]:
    """The index with every venue reporting, hour by hour (previous = the last good index)."""
    result: dict[int, Aggregate] = {}
    previous = 0
    for now_ns, prices in hourly.items():
        agg = aggregate(reports_at(now_ns, prices), PARAMS, now_ns=now_ns, previous_price=previous)
        result[now_ns] = agg
        if agg.status is PriceStatus.FRESH:
            previous = agg.price_quantums
    return result


def reports_at(now_ns: int, prices: Mapping[Address, int]) -> list[Report]:
    return [Report(address, price, 0, now_ns) for address, price in prices.items()]


def in_band(price: int, center: int) -> bool:
    return abs(price - center) * PPM_ONE <= PARAMS.band_ppm * center


def moved_beyond_breaker(price: int, previous: int) -> bool:
    return previous > 0 and abs(price - previous) * PPM_ONE > PARAMS.breaker_move_ppm * previous


def previous_of(full_index: dict[int, Aggregate]) -> dict[int, int]:
    """For each hour, the index the aggregation of that hour compares against."""
    result: dict[int, int] = {}
    previous = 0
    for now_ns, agg in full_index.items():
        result[now_ns] = previous
        if agg.status is PriceStatus.FRESH:
            previous = agg.price_quantums
    return result


def test_the_window_has_three_venues_in_almost_every_hour(hourly: Hourly) -> None:
    assert len(hourly) >= 90  # four days of hourly candles, gaps allowed
    complete = sum(len(prices) == len(VENUES) for prices in hourly.values())
    assert complete >= 0.95 * len(hourly)


def test_index_stays_within_the_venues_and_tracks_their_median(
    hourly: Hourly, full_index: dict[int, Aggregate]
) -> None:
    for now_ns, prices in hourly.items():
        agg = full_index[now_ns]
        ordered = sorted(prices.values())
        median = ordered[(len(ordered) - 1) // 2]  # the lower median, as weighted_median
        if len(prices) < 2 or not all(in_band(p, median) for p in ordered):
            continue  # covered by the quorum tests below
        assert agg.status is PriceStatus.FRESH, (now_ns, prices, agg)
        assert agg.included_weight == len(prices)
        assert ordered[0] <= agg.price_quantums <= ordered[-1]
        assert abs(agg.price_quantums - median) * 100 <= median  # within 1% of the median
        if len(prices) == 3:
            assert agg.price_quantums == median  # equal weights: the index IS the median


def test_breaker_trips_exactly_on_the_hours_that_moved_more_than_ten_percent(
    hourly: Hourly, full_index: dict[int, Aggregate]
) -> None:
    # From the data alone: the hour-on-hour move of the three venues' median close.
    medians = {t: sorted(p.values())[1] for t, p in hourly.items() if len(p) == 3}
    times = list(medians)
    moves_ppm = {
        now: (medians[now] - medians[before]) * PPM_ONE // medians[before]
        for before, now in itertools.pairwise(times)
        if now - before == NS_PER_HOUR
    }
    big = {t for t, move in moves_ppm.items() if abs(move) > PARAMS.breaker_move_ppm}
    tripped = {t for t, agg in full_index.items() if agg.breaker_tripped}
    worst_drop_at = min(moves_ppm, key=moves_ppm.__getitem__)
    print(
        f"largest hourly drop of the median: {moves_ppm[worst_drop_at] / 1e4:.2f}% "
        f"(close {worst_drop_at}); largest rise {max(moves_ppm.values()) / 1e4:.2f}%; "
        f"hours beyond the 10% breaker: {len(big)}"
    )
    assert tripped == big
    if moves_ppm[worst_drop_at] < -PARAMS.breaker_move_ppm:
        assert worst_drop_at in tripped
    for t in tripped:
        # Three of three agree: a supermajority, so the move is let through, not held.
        assert full_index[t].status is PriceStatus.FRESH
        assert full_index[t].included_weight * PPM_ONE >= (
            PARAMS.breaker_supermajority_ppm * full_index[t].total_weight
        )


def expected_two_publisher_status(pair: list[int], previous: int) -> tuple[PriceStatus, int]:
    """Two equal publishers of three: lower median; quorum iff both in band; a move beyond the
    breaker is held, since two of three is below the supermajority."""
    low, high = sorted(pair)
    if not in_band(high, low):
        return PriceStatus.STALE, 0
    if moved_beyond_breaker(low, previous):
        assert PARAMS.breaker_supermajority_ppm * 3 > 2 * PPM_ONE
        return PriceStatus.BREAKER_HELD, 0
    return PriceStatus.FRESH, low


@pytest.mark.parametrize("silent", list(VENUES), ids=["binance", "ftx", "kraken"])
def test_one_publisher_missing_two_still_make_a_quorum(
    hourly: Hourly, full_index: dict[int, Aggregate], silent: Address
) -> None:
    previous = previous_of(full_index)
    fresh_hours = 0
    for now_ns, prices in hourly.items():
        honest = {a: p for a, p in prices.items() if a != silent}
        if len(honest) != 2:
            continue
        # The silent venue's last report is three hours old: past staleness, so ignored.
        reports = reports_at(now_ns, honest)
        if silent in prices:
            reports.append(Report(silent, prices[silent], 0, now_ns - 3 * NS_PER_HOUR))
        agg = aggregate(reports, PARAMS, now_ns=now_ns, previous_price=previous[now_ns])
        status, price = expected_two_publisher_status(list(honest.values()), previous[now_ns])
        assert (agg.status, agg.price_quantums) == (status, price), (now_ns, honest, agg)
        if agg.status is PriceStatus.FRESH:
            fresh_hours += 1
            assert min(honest.values()) <= agg.price_quantums <= max(honest.values())
            assert agg.included_weight == 2
    assert fresh_hours >= 0.9 * len(hourly)  # the quorum holds through the crash


@pytest.mark.parametrize("liar", list(VENUES), ids=["binance", "ftx", "kraken"])
def test_a_thousandfold_outlier_is_excluded(
    hourly: Hourly, full_index: dict[int, Aggregate], liar: Address
) -> None:
    previous = previous_of(full_index)
    for now_ns, prices in hourly.items():
        if len(prices) != 3:
            continue
        honest = {a: p for a, p in prices.items() if a != liar}
        lying = {**honest, liar: prices[liar] * OUTLIER_FACTOR}
        agg = aggregate(
            reports_at(now_ns, lying), PARAMS, now_ns=now_ns, previous_price=previous[now_ns]
        )
        without = aggregate(
            reports_at(now_ns, honest), PARAMS, now_ns=now_ns, previous_price=previous[now_ns]
        )
        # The outlier is out of band: the result is what the two honest venues make alone.
        assert agg == without, (now_ns, lying)
        assert agg.included_weight == 2
        if agg.status is PriceStatus.FRESH:
            assert min(honest.values()) <= agg.price_quantums <= max(honest.values())


def test_two_of_three_missing_is_stale(hourly: Hourly, full_index: dict[int, Aggregate]) -> None:
    previous = previous_of(full_index)
    checked = 0
    for now_ns, prices in hourly.items():
        for survivor, price in prices.items():
            fresh = Report(survivor, price, 0, now_ns)
            # The others either sent nothing or last reported three hours ago (stale).
            stale = [
                Report(a, p, 0, now_ns - 3 * NS_PER_HOUR)
                for a, p in prices.items()
                if a != survivor
            ]
            for reports in ([fresh], [fresh, *stale]):
                agg = aggregate(reports, PARAMS, now_ns=now_ns, previous_price=previous[now_ns])
                assert agg.status is PriceStatus.STALE, (now_ns, survivor, agg)
                assert agg.price_quantums == 0
                assert agg.included_weight == 1
                checked += 1
    assert checked >= 2 * len(hourly)


# --- EWMA volatility on hourly returns ---------------------------------------------------------

VOL_PARAMS = dataclasses.replace(PARAMS, vol_sample_interval_ns=NS_PER_HOUR)


def test_ewma_volatility_of_black_thursday() -> None:
    closes = load_closes(
        BINANCE_BTC_SPOT_1H, start="2020-02-01T00:00:00Z", end="2020-04-01T00:00:00Z"
    )
    lam = VOL_PARAMS.vol_lambda_ppm
    variance = initial_variance_e18(VOL_PARAMS)
    reference = (VOL_PARAMS.vol_initial_annual_ppm / PPM_ONE) ** 2 / (365 * 24)  # float check
    annual: list[tuple[int, int]] = []  # (close ns, annualized vol ppm)
    gaps = 0
    for (before_ns, before), (now_ns, price) in itertools.pairwise(closes):
        if now_ns - before_ns != NS_PER_HOUR:
            gaps += 1  # a gap is not a one-hour return: keep the variance, restart the returns
            continue
        variance = ewma_variance_e18(variance, previous_price=before, price=price, lambda_ppm=lam)
        reference = (
            lam / PPM_ONE * reference + (1 - lam / PPM_ONE) * ((price - before) / before) ** 2
        )
        vol = annual_volatility_ppm(variance, VOL_PARAMS.vol_sample_interval_ns)
        # The integer EWMA rounds up but stays within 0.1% of the float recurrence.
        expected = math.sqrt(reference * 365 * 24) * PPM_ONE
        assert expected <= vol + 1 and vol <= expected * 1.001 + 2, (now_ns, vol, expected)
        annual.append((now_ns, vol))

    assert gaps == sum(b[0] - a[0] != NS_PER_HOUR for a, b in itertools.pairwise(closes))
    assert gaps * 100 < len(closes)  # gaps are rare: under 1% of the hours
    march, crash_start, crash_end = (
        parse_utc_ns(t)
        for t in ("2020-03-01T00:00:00Z", "2020-03-12T00:00:00Z", "2020-03-14T00:00:00Z")
    )
    february = [v for t, v in annual if t < march]
    crash = [v for t, v in annual if crash_start <= t < crash_end]
    february_mean = sum(february) / len(february)
    crash_mean = sum(crash) / len(crash)
    peak_at, peak = max(annual, key=lambda item: item[1])
    print(
        f"annualized EWMA vol: February mean {february_mean / 1e4:.1f}%, "
        f"2020-03-12..13 mean {crash_mean / 1e4:.1f}% (x{crash_mean / february_mean:.1f}), "
        f"peak {peak / 1e4:.1f}%, range {min(v for _, v in annual) / 1e4:.1f}%.."
        f"{peak / 1e4:.1f}%, gaps skipped {gaps}"
    )
    assert len(february) >= 24 * 28 - 5 and len(crash) >= 47
    assert crash_mean >= 2 * february_mean
    assert crash_start <= peak_at < crash_end  # the peak of two months is on the crash days
    assert all(100_000 <= v <= 10 * PPM_ONE for _, v in annual)  # 10%..1000% a year
    assert 200_000 <= february_mean <= 1_500_000  # a calm month of BTC: 20%..150%


# --- TWAP over hourly samples -------------------------------------------------------------------


def test_twap_over_hourly_closes_matches_a_hand_computation() -> None:
    samples = load_closes(
        BINANCE_BTC_SPOT_1H, start="2020-03-12T00:00:00Z", end="2020-03-13T00:00:00Z"
    )
    assert [t for t, _ in samples] == [samples[0][0] + h * NS_PER_HOUR for h in range(24)]
    at = dict(samples)
    base = parse_utc_ns("2020-03-12T10:00:00Z")  # close of the 09:00 candle, before the drop
    half = 30 * NS_PER_MINUTE

    # A 30-minute window inside one hour: the last sample before it holds throughout.
    assert twap(samples, start_ns=base + half, end_ns=base + 2 * half) == (at[base], 0)

    # 10:30 to 16:30: half an hour at the 10:00 sample, an hour at each of 11:00..15:00, and
    # half an hour at 16:00; samples in the window: 11:00..16:00.
    hour = [at[base + h * NS_PER_HOUR] for h in range(7)]
    by_hand = (hour[0] * 30 + sum(hour[1:6]) * 60 + hour[6] * 30) // (6 * 60)
    assert twap(samples, start_ns=base + half, end_ns=base + 6 * NS_PER_HOUR + half) == (by_hand, 6)
    assert min(hour) <= by_hand <= max(hour)

    # The whole day, each sample holding one hour: the plain mean of the 24 closes, rounded down.
    day = twap(samples, start_ns=samples[0][0], end_ns=samples[-1][0] + NS_PER_HOUR)
    assert day == (sum(p for _, p in samples) // 24, 24)
