"""Default option series (SPEC §2): which expiries and strikes a venue lists without a vote.

Expiries follow the crypto options convention (Deribit): weeklies on the next Fridays and
monthlies on the last Friday of a month, at a fixed hour UTC. Calendar arithmetic is done on
days since 1970-01-01 (Howard Hinnant's civil-from-days), because the core reads no clock and
imports no ``datetime``: the block's timestamp is the only time there is.
"""

from __future__ import annotations

from clearhouse.core.ids import MarketId
from clearhouse.core.params import MarketKind, MarketParams, OptionSeriesParams
from clearhouse.core.payoffs import call, put
from clearhouse.core.units import NS_PER_HOUR

NS_PER_DAY = 24 * NS_PER_HOUR
THURSDAY_EPOCH_OFFSET = 3  # 1970-01-01 was a Thursday: (days + 3) % 7 == 0 on Mondays
FRIDAY = 4  # Monday = 0


def weekday(days: int) -> int:
    return (days + THURSDAY_EPOCH_OFFSET) % 7


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01, proleptic Gregorian."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _is_last_friday(days: int) -> bool:
    return weekday(days) == FRIDAY and civil_from_days(days + 7)[1] != civil_from_days(days)[1]


def standard_expiries(now_ns: int, params: OptionSeriesParams) -> list[int]:
    """The next weekly and monthly expiries strictly after ``now_ns``, in increasing order."""
    hour_ns = params.expiry_hour_utc * NS_PER_HOUR
    day = (now_ns - hour_ns) // NS_PER_DAY + 1  # the first day whose expiry is after now
    day += (FRIDAY - weekday(day)) % 7
    weeklies: list[int] = []
    monthlies: list[int] = []
    while len(weeklies) < params.weekly_expiries or len(monthlies) < params.monthly_expiries:
        if _is_last_friday(day) and len(monthlies) < params.monthly_expiries:
            monthlies.append(day)
        elif len(weeklies) < params.weekly_expiries:
            weeklies.append(day)
        day += 7
    return sorted(d * NS_PER_DAY + hour_ns for d in {*weeklies, *monthlies})


def strikes_around(index_price_quantums: int, params: OptionSeriesParams) -> list[int]:
    """The strike nearest the index and ``strikes_each_side`` steps either side (all > 0)."""
    step = params.strike_step_quantums
    middle = max((index_price_quantums + step // 2) // step, 1) * step
    span = range(-params.strikes_each_side, params.strikes_each_side + 1)
    return [middle + i * step for i in span if middle + i * step > 0]


def market_id(params: OptionSeriesParams, expiry_ns: int, strike: int, is_call: bool) -> MarketId:
    year, month, day = civil_from_days(expiry_ns // NS_PER_DAY)
    whole, fraction = divmod(strike, 1_000_000)  # strikes in whole quote units where they are
    strike_text = str(whole) if fraction == 0 else f"{whole}.{fraction:06d}".rstrip("0")
    return MarketId(
        f"{params.prefix}-{year:04d}{month:02d}{day:02d}-{strike_text}-{'C' if is_call else 'P'}"
    )


def series_markets(
    params: OptionSeriesParams, expiry_ns: int, index_price_quantums: int
) -> list[MarketParams]:
    """A call and a put at every strike around the index, for one expiry."""
    markets = []
    for strike in strikes_around(index_price_quantums, params):
        for is_call in (True, False):
            markets.append(MarketParams(
                market_id=market_id(params, expiry_ns, strike, is_call), kind=MarketKind.OPTION,
                oracle_id=params.oracle_id, base_quantums_per_unit=params.base_quantums_per_unit,
                tick_quantums=params.tick_quantums, step_base_quantums=params.step_base_quantums,
                min_order_base_quantums=params.min_order_base_quantums,
                taker_fee_ppm=params.taker_fee_ppm, maker_fee_ppm=params.maker_fee_ppm,
                liquidation=params.liquidation, expiry_ns=expiry_ns,
                payoff=call(strike) if is_call else put(strike),
            ))  # fmt: skip
    return markets
