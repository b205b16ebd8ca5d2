"""Default option series (SPEC §2): the core's own calendar agrees with Python's, expiries are the
next Fridays and last Fridays of a month at the expiry hour, strikes sit around the index, and
every listed market is valid."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.ids import MarketId
from clearhouse.core.params import MarketKind, OptionSeriesParams
from clearhouse.core.payoffs import call, put
from clearhouse.core.series import (
    FRIDAY,
    NS_PER_DAY,
    civil_from_days,
    market_id,
    series_markets,
    standard_expiries,
    strikes_around,
    weekday,
)
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.venue import btc_option_series

EPOCH = date(1970, 1, 1)
DAYS_1970_2400 = st.integers(0, (date(2400, 12, 31) - EPOCH).days)
NOW_2020_2100 = st.integers(
    int(datetime(2020, 1, 1, tzinfo=UTC).timestamp()) * NS_PER_SECOND,
    int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()) * NS_PER_SECOND,
)
BTC = btc_option_series()
USDC = 1_000_000


def as_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS_PER_SECOND, tz=UTC) + timedelta(
        microseconds=(ns % NS_PER_SECOND) // 1_000
    )


# ── The calendar ─────────────────────────────────────────────────────────────────────────


@settings(max_examples=500, deadline=None)
@given(days=DAYS_1970_2400)
def test_civil_from_days_agrees_with_datetime(days: int) -> None:
    expected = EPOCH + timedelta(days=days)
    assert civil_from_days(days) == (expected.year, expected.month, expected.day)


@settings(max_examples=500, deadline=None)
@given(days=DAYS_1970_2400)
def test_weekday_agrees_with_datetime(days: int) -> None:
    assert weekday(days) == (EPOCH + timedelta(days=days)).weekday()


@pytest.mark.parametrize(
    "day", [date(1970, 1, 1), date(2000, 2, 29), date(2100, 3, 1), date(2400, 2, 29)]
)
def test_civil_from_days_across_leap_rules(day: date) -> None:
    assert civil_from_days((day - EPOCH).days) == (day.year, day.month, day.day)


# ── Expiries ─────────────────────────────────────────────────────────────────────────────


def is_last_friday(moment: datetime) -> bool:
    return moment.weekday() == 4 and (moment + timedelta(days=7)).month != moment.month


def reference_expiries(now_ns: int, params: OptionSeriesParams) -> list[int]:
    """Walk every Friday at the expiry hour after now with datetime: the first ``monthly``
    last-Fridays are the monthlies, the first ``weekly`` of the other Fridays the weeklies."""
    now = as_datetime(now_ns)
    friday = datetime(now.year, now.month, now.day, params.expiry_hour_utc, tzinfo=UTC)
    friday -= timedelta(days=1)
    while friday.weekday() != 4 or friday <= now:
        friday += timedelta(days=1)
    monthlies: list[datetime] = []
    weeklies: list[datetime] = []
    while len(monthlies) < params.monthly_expiries or len(weeklies) < params.weekly_expiries:
        if is_last_friday(friday) and len(monthlies) < params.monthly_expiries:
            monthlies.append(friday)
        elif len(weeklies) < params.weekly_expiries:
            weeklies.append(friday)
        friday += timedelta(days=7)
    return sorted(int(d.timestamp()) * NS_PER_SECOND for d in (*monthlies, *weeklies))


@st.composite
def series_params(draw: st.DrawFn) -> OptionSeriesParams:
    weekly = draw(st.integers(0, 2))
    monthly = draw(st.integers(0 if weekly else 1, 2))
    hour = draw(st.integers(0, 23))
    return dataclasses.replace(
        BTC, weekly_expiries=weekly, monthly_expiries=monthly, expiry_hour_utc=hour
    )


@settings(max_examples=300, deadline=None)
@given(now_ns=NOW_2020_2100, params=series_params())
def test_standard_expiries_are_fridays_after_now(now_ns: int, params: OptionSeriesParams) -> None:
    assert params.problems() == ()
    expiries = standard_expiries(now_ns, params)
    assert len(expiries) == params.weekly_expiries + params.monthly_expiries
    assert expiries == sorted(set(expiries))
    assert expiries[0] > now_ns
    for expiry_ns in expiries:
        moment = as_datetime(expiry_ns)
        assert moment.weekday() == 4
        assert (moment.hour, moment.minute, moment.second) == (params.expiry_hour_utc, 0, 0)
        assert expiry_ns % NS_PER_SECOND == 0
        assert weekday(expiry_ns // NS_PER_DAY) == FRIDAY
    last_fridays = [e for e in expiries if is_last_friday(as_datetime(e))]
    assert len(last_fridays) >= params.monthly_expiries
    months = {(as_datetime(e).year, as_datetime(e).month) for e in last_fridays}
    assert len(months) == len(last_fridays)  # one monthly per month


@settings(max_examples=300, deadline=None)
@given(now_ns=NOW_2020_2100, params=series_params())
def test_standard_expiries_are_the_next_weeklies_and_monthlies(
    now_ns: int, params: OptionSeriesParams
) -> None:
    assert standard_expiries(now_ns, params) == reference_expiries(now_ns, params)


@settings(max_examples=200, deadline=None)
@given(now_ns=NOW_2020_2100, params=series_params())
def test_an_expiry_moment_itself_is_not_listed(now_ns: int, params: OptionSeriesParams) -> None:
    first = standard_expiries(now_ns, params)[0]
    assert standard_expiries(first - 1, params)[0] == first
    assert standard_expiries(first, params)[0] > first


def test_standard_expiries_on_a_known_date() -> None:
    # Thursday 2026-11-26 12:00 UTC: the 27th is November's last Friday (a monthly), then two
    # weeklies, then December's last Friday.
    now_ns = int(datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp()) * NS_PER_SECOND
    expiries = [as_datetime(e) for e in standard_expiries(now_ns, BTC)]
    assert [e.date() for e in expiries] == [
        date(2026, 11, 27), date(2026, 12, 4), date(2026, 12, 11), date(2026, 12, 25)
    ]  # fmt: skip
    assert {e.hour for e in expiries} == {BTC.expiry_hour_utc}


# ── Strikes ──────────────────────────────────────────────────────────────────────────────


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(1, 10**12),
    each_side=st.integers(0, 7),
    step_usdc=st.integers(1, 10_000),
)
def test_strikes_are_centred_on_the_nearest_strike(
    index: int, each_side: int, step_usdc: int
) -> None:
    params = dataclasses.replace(
        BTC, strikes_each_side=each_side, strike_step_quantums=step_usdc * USDC
    )
    step = params.strike_step_quantums
    strikes = strikes_around(index, params)
    assert all(s > 0 for s in strikes)
    assert all(s % step == 0 for s in strikes)
    assert all(later - earlier == step for earlier, later in itertools.pairwise(strikes))
    # The positive multiple of the step nearest the index (ties go up), found by search.
    nearest = min(range(max(index // step - 1, 1), index // step + 3),
                  key=lambda n: (abs(n * step - index), -n)) * step  # fmt: skip
    assert nearest in strikes
    if index >= (each_side + 1) * step:  # far enough from zero: symmetric, 2n + 1 strikes
        assert len(strikes) == 2 * each_side + 1
        assert strikes[each_side] == nearest
    else:
        assert strikes[0] in (step, nearest - each_side * step)
        assert strikes[-1] == nearest + each_side * step


def test_strikes_around_a_known_index() -> None:
    expected = [s * USDC for s in (56_000, 58_000, 60_000, 62_000, 64_000, 66_000, 68_000)]
    assert strikes_around(61_234 * USDC, BTC) == expected
    assert strikes_around(60_999 * USDC, BTC) == [s - 2_000 * USDC for s in expected]
    # Near zero the strikes below the first step are dropped, never zero or negative.
    assert strikes_around(1, BTC) == [s * USDC for s in (2_000, 4_000, 6_000, 8_000)]
    assert strikes_around(3_000 * USDC, BTC)[0] == 2_000 * USDC


# ── Market ids and markets ───────────────────────────────────────────────────────────────


def test_market_id_reads_prefix_date_strike_and_kind() -> None:
    expiry_ns = int(datetime(2026, 11, 27, 8, tzinfo=UTC).timestamp()) * NS_PER_SECOND
    assert market_id(BTC, expiry_ns, 60_000 * USDC, True) == MarketId("BTC-20261127-60000-C")
    assert market_id(BTC, expiry_ns, 60_000 * USDC, False) == MarketId("BTC-20261127-60000-P")
    eth = dataclasses.replace(BTC, prefix="ETH")
    assert market_id(eth, expiry_ns + 7 * NS_PER_DAY, 3_250 * USDC, True) == MarketId(
        "ETH-20261204-3250-C"
    )


@pytest.mark.parametrize(
    ("strike", "text"),
    [
        (60_000_500_000, "60000.5"),
        (3_250_250_000, "3250.25"),
        (1_000_001, "1.000001"),
        (500_000, "0.5"),
        (120_000, "0.12"),
        (1, "0.000001"),
    ],
)
def test_market_id_writes_fractional_strikes_without_trailing_zeros(strike: int, text: str) -> None:
    expiry_ns = int(datetime(2027, 1, 29, 8, tzinfo=UTC).timestamp()) * NS_PER_SECOND
    assert market_id(BTC, expiry_ns, strike, False) == MarketId(f"BTC-20270129-{text}-P")


@settings(max_examples=200, deadline=None)
@given(days=DAYS_1970_2400, hour=st.integers(0, 23), strike=st.integers(1, 10**13),
       is_call=st.booleans())  # fmt: skip
def test_market_id_round_trips_date_and_strike(days: int, hour: int, strike: int,
                                               is_call: bool) -> None:  # fmt: skip
    found = market_id(BTC, days * NS_PER_DAY + hour * NS_PER_HOUR, strike, is_call)
    prefix, ymd, strike_text, kind = found.split("-")
    assert prefix == BTC.prefix
    assert datetime.strptime(ymd, "%Y%m%d").replace(tzinfo=UTC).date() == EPOCH + timedelta(days)
    whole, _, fraction = strike_text.partition(".")
    assert int(whole) * USDC + (int(fraction.ljust(6, "0")) if fraction else 0) == strike
    assert not fraction.endswith("0")
    assert kind == ("C" if is_call else "P")


@settings(max_examples=60, deadline=None)
@given(now_ns=NOW_2020_2100, index_usdc=st.integers(1, 500_000), each_side=st.integers(0, 7))
def test_series_markets_are_valid_calls_and_puts(now_ns: int, index_usdc: int,
                                                 each_side: int) -> None:  # fmt: skip
    params = dataclasses.replace(BTC, strikes_each_side=each_side)
    expiry_ns = standard_expiries(now_ns, params)[0]
    index = index_usdc * USDC
    markets = series_markets(params, expiry_ns, index)
    strikes = strikes_around(index, params)
    assert len(markets) == 2 * len(strikes)
    assert len({m.market_id for m in markets}) == len(markets)
    for market, (strike, is_call) in zip(
        markets, [(s, c) for s in strikes for c in (True, False)], strict=True
    ):
        assert market.problems() == ()
        assert market.kind is MarketKind.OPTION
        assert market.expiry_ns == expiry_ns
        assert market.oracle_id == params.oracle_id
        assert market.payoff == (call(strike) if is_call else put(strike))
        assert market.market_id == market_id(params, expiry_ns, strike, is_call)
        assert market.market_id.endswith("-C" if is_call else "-P")
        assert (market.tick_quantums, market.step_base_quantums) == (
            params.tick_quantums, params.step_base_quantums
        )  # fmt: skip
        assert market.liquidation == params.liquidation
        assert (market.taker_fee_ppm, market.maker_fee_ppm) == (
            params.taker_fee_ppm, params.maker_fee_ppm
        )  # fmt: skip
