"""Margin backtest as central counterparties run it (EMIR RTS 153/2013 Art. 49, CPMI-IOSCO PFMI
3.6.6): does the margin held at the start of each margin period of risk cover the loss over it?

The engine itself is driven block by block at the data's cadence: each venue's candles are one
publisher, whose closes are signed ``ReportPrices`` commands; the engine aggregates them into its
index (median, band, quorum, breaker), marks the market, updates its EWMA volatility and the
volatility multiplier, and ``core.margin.requirements`` gives the initial and maintenance margin
of a representative position from the engine's own ``MarketRisk`` after each block's prologue.
So the backtest measures what the engine does, not a re-implementation of it.

Per period [t, t + MPOR) and per account, a long and a short of one whole unit opened at the
maximum leverage the IM allows (equity = IM at t): a *breach* is a loss over the period above the
maintenance margin held at t; a *deficit* is a loss above the equity (the IM). The margin period
of risk is one step of the data (5 min or 1 h): the engine closes a liquidatable account out
within ``keeper_grace_blocks + auction_blocks + 2`` blocks (about a minute at 1–2 s blocks), but
a candle series cannot see inside a step, so one step is the shortest MPOR it resolves, and an
upper bound on the real one.

Statistics: coverage = 1 − breaches / observations; breaches per 250 observations (the Basel
traffic-light unit: 2.5 expected at 99%); Kupiec's proportion-of-failures test against 1%, and
Christoffersen's independence test on the sequence "some account breached in period t"
(clustered breaches mean margins that react late). Both are likelihood ratios, χ²(1).

Not in ``clearhouse.core``: it reads files and uses floats for the statistics.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from clearhouse.core.engine import Engine
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import AssetId, MarketId, OracleId
from clearhouse.core.margin import requirements
from clearhouse.core.messages import (
    Command,
    ListAsset,
    ListMarket,
    ListOracle,
    PriceReport,
    ReportPrices,
)
from clearhouse.core.params import (
    AssetParams,
    MarginParams,
    MarketParams,
    OracleParams,
    Publisher,
    VenueParams,
)
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MS, NS_PER_SECOND
from clearhouse.sim.candles import PAR, cadence_ns, in_quantums, read_candle_file, unique_names
from clearhouse.sim.stress import stats
from clearhouse.sim.venue import USDC, address_of, btc_perp, eth_perp

COVERAGE_TARGET = 0.99  # CCPs' confidence level for futures margins (EMIR: at least 99%)
NS_PER_DAY = 24 * NS_PER_HOUR
READ_BEFORE_NS = 31 * NS_PER_DAY  # candles read before a range: a step of the data, or weeks


@dataclass(frozen=True, slots=True)
class Candles:
    """One venue's closes: (close time in ns, close price in quote quantums), in time order."""

    name: str
    cadence_ns: int
    closes: tuple[tuple[int, int], ...]
    skipped_rows: int = 0  # rows of the file without usable prices (``sim.candles``)


def parse_utc_ns(text: str) -> int:
    """``2020-03-12T00:00:00Z`` → ns since the epoch (exact: whole seconds); an
    ``InvalidArgument`` (a ``ValueError``) for a time without a zone or no time at all."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"{text!r}: not an ISO-8601 time, 2020-03-12T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise InvalidArgument(f"{text}: a time needs its zone (UTC), 2020-03-12T00:00:00Z")
    return int(parsed.timestamp()) * NS_PER_SECOND


def read_candles(path: Path, *, start_ns: int = 0, end_ns: int = 2**62) -> Candles:
    """A candle file (any layout ``sim.candles`` reads) → closes stamped at the candle's close
    time, ``start_ns <= close time <= end_ns``, at par (the margin backtest measures moves, which
    a stable quote currency leaves as they are). The cadence is the most common spacing of the
    candles read: those that open from ``READ_BEFORE_NS`` before ``start_ns`` (a close stamped
    in the range opens a step before it) to ``end_ns`` (years of minute candles are not parsed
    for a window of days)."""
    found = read_candle_file(path, start_ns=max(start_ns - READ_BEFORE_NS, 0), end_ns=end_ns)
    opens = in_quantums(found, PAR)
    if len(opens) < 2:
        raise InvalidArgument(f"{path}: fewer than two candles in the window and its warm-up")
    cadence = cadence_ns(list(opens))
    closes = tuple(
        (opened + cadence, bar[3])
        for opened, bar in opens.items()
        if start_ns <= opened + cadence <= end_ns
    )
    skipped = found.skipped_rows + len(found.candles) - len(opens)
    return Candles(name=found.name, cadence_ns=cadence, closes=closes, skipped_rows=skipped)


@dataclass(frozen=True, slots=True)
class Sample:
    """The engine's market after one block's prologue."""

    timestamp_ns: int
    usable: bool  # fresh index: a period starting or ending here counts
    mark_quantums: int  # per whole unit
    initial_quantums: int  # IM of one whole unit
    maintenance_quantums: int  # MM of one whole unit
    vol_multiplier_ppm: int


def large_cap_market(oracle_id: OracleId, margin: MarginParams | None = None) -> MarketParams:
    """The venue's perpetual on this oracle at the large-cap tier (BTC-PERP's margin: 2% IM,
    as dYdX's large-cap tier), or with ``margin`` in its place."""
    base = btc_perp() if oracle_id == "BTC-USD" else eth_perp()
    tier = btc_perp().margin if margin is None else margin
    return replace(base, oracle_id=oracle_id, margin=tier)


def replay(
    venues: Sequence[Candles],
    market: MarketParams,
    *,
    on_block: Callable[[int, int], None] | None = None,
) -> list[Sample]:
    """Run the engine through the venues' closes, one block per distinct close time: each
    venue with a close at that time signs a report of it; the block's prologue aggregates the
    reports of the block before (so the index at block k is the close of block k − 1)."""
    cadence = max(v.cadence_ns for v in venues)
    names = unique_names([v.name for v in venues])
    publishers = tuple(address_of(f"backtest-{name}") for name in names)
    times = sorted({t for v in venues for t, _ in v.closes})
    if len(times) < 2:
        raise InvalidArgument(
            f"{', '.join(v.name for v in venues)}: fewer than two candles in the window and its "
            "warm-up"
        )
    operator = address_of("backtest-operator")
    engine = Engine(VenueParams(operator=operator, custody_relayer=address_of("backtest-relay")))
    oracle = OracleParams(
        oracle_id=market.oracle_id,
        publishers=tuple(Publisher(address=a) for a in publishers),
        # Publishers report once per candle: a report stays fresh for one step of the data,
        # and only a missing candle (a venue's gap) leaves it out.
        staleness_ns=cadence + 10 * NS_PER_SECOND,
        outage_ns=2 * cadence,
    )
    start = times[0] - NS_PER_SECOND
    bodies: list[tuple[type[ListOracle | ListAsset | ListMarket], object]] = [
        (ListOracle, oracle),
        (ListAsset, AssetParams(asset_id=AssetId("USDC"), quantums_per_unit=USDC)),
        (ListMarket, market),
    ]
    genesis: list[Command] = [
        kind(signer=operator, nonce=start // NS_PER_MS + offset, expiry_ns=start + NS_PER_HOUR,
             params=params)  # type: ignore[arg-type]
        for offset, (kind, params) in enumerate(bodies)
    ]  # fmt: skip
    _block(engine, start, genesis)
    by_time = [dict(v.closes) for v in venues]
    samples: list[Sample] = []
    for done, timestamp in enumerate(times):
        reports: list[Command] = [
            ReportPrices(
                signer=publisher, nonce=timestamp // NS_PER_MS, expiry_ns=timestamp + NS_PER_HOUR,
                reports=(PriceReport(
                    oracle_id=market.oracle_id, price_quantums=closes[timestamp],
                    confidence_quantums=0, timestamp_ns=timestamp,
                ),),
            )
            for publisher, closes in zip(publishers, by_time, strict=True)
            if timestamp in closes
        ]  # fmt: skip
        samples.append(_block(engine, timestamp, reports, market.market_id))
        if on_block is not None:
            on_block(done + 1, len(times))
    return samples


def _block(
    engine: Engine, timestamp_ns: int, commands: list[Command], market_id: MarketId | None = None
) -> Sample:
    engine.begin_block(engine.state.height + 1, timestamp_ns)
    sample = Sample(timestamp_ns, usable=False, mark_quantums=0, initial_quantums=0,
                    maintenance_quantums=0, vol_multiplier_ppm=0)  # fmt: skip
    if market_id is not None:
        risk = engine.market_risk(market_id)
        unit = risk.base_quantums_per_unit
        initial, maintenance = requirements(unit, risk)
        market = engine.state.markets[market_id]
        sample = Sample(
            timestamp_ns, usable=risk.usable, mark_quantums=risk.mark_price_quantums,
            initial_quantums=initial, maintenance_quantums=maintenance,
            vol_multiplier_ppm=market.vol_multiplier_ppm,
        )  # fmt: skip
    for index, command in enumerate(commands):
        events = engine.apply(index, command)
        assert not any(type(e).__name__ == "CommandRejected" for e in events), events
    engine.end_block()
    return sample


@dataclass(frozen=True, slots=True)
class Period:
    start_ns: int
    mark_start_quantums: int
    mark_end_quantums: int
    initial_quantums: int
    maintenance_quantums: int

    @property
    def long_loss(self) -> int:
        return self.mark_start_quantums - self.mark_end_quantums

    @property
    def breaches(self) -> tuple[bool, bool]:
        """(long breached, short breached): loss over the period above the MM at its start."""
        return (self.long_loss > self.maintenance_quantums,
                -self.long_loss > self.maintenance_quantums)  # fmt: skip

    @property
    def deficit_quantums(self) -> int:
        """Loss beyond the equity of an account at maximum leverage (equity = IM)."""
        return max(abs(self.long_loss) - self.initial_quantums, 0)


def periods(
    samples: Sequence[Sample], *, start_ns: int, end_ns: int, step_ns: int,
    starts: Collection[int] | None = None,
) -> list[Period]:  # fmt: skip
    """Periods from each usable sample in [start_ns, end_ns) (of those at ``starts``, when
    given) to the sample ``step_ns`` later, when there is one and it is usable too (a stale end
    is an outage: no price, no loss measured)."""
    assert step_ns > 0, step_ns
    at = {sample.timestamp_ns: sample for sample in samples}
    found: list[Period] = []
    for sample in samples:
        end = at.get(sample.timestamp_ns + step_ns)
        if end is None or not start_ns <= sample.timestamp_ns < end_ns:
            continue
        if not (sample.usable and end.usable):
            continue
        if starts is not None and sample.timestamp_ns not in starts:
            continue
        found.append(Period(
            sample.timestamp_ns, sample.mark_quantums, end.mark_quantums,
            sample.initial_quantums, sample.maintenance_quantums,
        ))  # fmt: skip
    return found


def kupiec_pof(breaches: int, observations: int, p: float = 1 - COVERAGE_TARGET) -> float:
    """p-value of Kupiec's proportion-of-failures LR test (χ²(1)): is the breach rate p?
    (The stress lab's test, ``stats.kupiec_pof``, as a p-value.)"""
    return stats.kupiec_pof(breaches, observations, 1 - p).p_value


def christoffersen_independence(sequence: Iterable[bool]) -> float:
    """p-value of Christoffersen's independence LR test (χ²(1)): does a breach today make one
    tomorrow likelier? 1.0 when there are no breaches (nothing can cluster)."""
    return stats.christoffersen_independence(list(sequence)).p_value


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    cadence_ns: int
    periods: int
    observations: int  # periods × 2 accounts (long, short)
    breaches: int
    deficit_quantums: int  # summed loss beyond equity (IM) over every account and period
    kupiec_p: float
    christoffersen_p: float
    im_fraction_min: float  # the lowest IM fraction: the maximum leverage offered is 1/this
    im_fraction_max: float
    im_fraction_median: float  # the leverage the margin leaves in a typical period of the window
    mm_fraction_min: float
    mm_fraction_max: float
    worst_loss_fraction: float  # the largest single-period loss as a fraction of notional

    @property
    def coverage(self) -> float:
        return 1.0 - self.breaches / self.observations

    @property
    def breaches_per_250(self) -> float:
        return 250.0 * self.breaches / self.observations

    @property
    def max_leverage(self) -> float:
        return 1.0 / self.im_fraction_min

    def as_row(self) -> dict[str, object]:
        return {
            "window": self.name, "cadence_min": self.cadence_ns // (60 * NS_PER_SECOND),
            "periods": self.periods, "observations": self.observations,
            "breaches": self.breaches, "coverage": self.coverage,
            "breaches_per_250": self.breaches_per_250, "kupiec_p": self.kupiec_p,
            "christoffersen_p": self.christoffersen_p, "max_leverage": self.max_leverage,
            "im_fraction_range": [self.im_fraction_min, self.im_fraction_max],
            "im_fraction_median": self.im_fraction_median,
            "mm_fraction_range": [self.mm_fraction_min, self.mm_fraction_max],
            "worst_loss_fraction": self.worst_loss_fraction,
            "deficit_usdc": self.deficit_quantums / USDC,
        }  # fmt: skip


def evaluate(name: str, cadence_ns: int, found: Sequence[Period]) -> Result:
    """Coverage and tests over periods (each a long and a short account)."""
    if not found:
        raise InvalidArgument(
            f"{name}: no period with fresh prices at both ends (the window is empty, or its "
            "publishers' closes never made an index: too few for the quorum, or too far apart)"
        )
    flags = [p.breaches for p in found]
    breaches = sum(long + short for long, short in flags)
    observations = 2 * len(found)
    im = [p.initial_quantums / p.mark_start_quantums for p in found]
    mm = [p.maintenance_quantums / p.mark_start_quantums for p in found]
    return Result(
        name=name, cadence_ns=cadence_ns, periods=len(found), observations=observations,
        breaches=breaches, deficit_quantums=sum(p.deficit_quantums for p in found),
        kupiec_p=kupiec_pof(breaches, observations),
        christoffersen_p=christoffersen_independence(long or short for long, short in flags),
        im_fraction_min=min(im), im_fraction_max=max(im), im_fraction_median=statistics.median(im),
        mm_fraction_min=min(mm),
        mm_fraction_max=max(mm),
        worst_loss_fraction=max(abs(p.long_loss) / p.mark_start_quantums for p in found),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Window:
    """A crash window: the venues' candle files (one publisher each), the index they make, the
    period measured and a warm-up before it (so the EWMA starts from the market, not a prior)."""

    name: str
    oracle_id: OracleId
    files: tuple[str, ...]
    start: str  # ISO-8601 UTC, inclusive
    end: str  # exclusive
    warmup_days: int = 7
    crash_day: str = ""  # the start of the window's steepest 24 hours (ISO-8601 UTC)


CRASH_WINDOWS: tuple[Window, ...] = (
    Window(
        "LUNA/UST 2022-05 BTC 5m", OracleId("BTC-USD"),
        ("binance/spot_5m/BTCUSDT_5m_2021-11_2022-05.csv",
         "ftx/BTCUSDT_spot_5m_2021-11_2022-05.csv"),
        "2022-05-05T00:00:00Z", "2022-05-16T00:00:00Z", crash_day="2022-05-09T00:00:00Z",
    ),
    Window(
        "FTX collapse 2022-11 ETH 5m", OracleId("ETH-USD"),
        ("binance/spot_5m/ETHUSDT_5m_2022-10_2023-01.csv",),
        "2022-11-05T00:00:00Z", "2022-11-16T00:00:00Z", crash_day="2022-11-08T12:00:00Z",
    ),
    Window(
        "Black Thursday 2020-03 BTC 1h", OracleId("BTC-USD"),
        ("binance/spot_1h/BTCUSDT_1h_2018_2026.csv", "binance/usdm_perp_1h/BTCUSDT_PERP_1h.csv",
         "ftx/BTCUSD_spot_1h_2019_2022.csv", "kraken/XBTUSD_1h_to_2020-09.csv"),
        "2020-03-09T00:00:00Z", "2020-03-17T00:00:00Z", warmup_days=14,
        crash_day="2020-03-12T00:00:00Z",
    ),
    Window(
        "Black Thursday 2020-03 ETH 1h", OracleId("ETH-USD"),
        ("binance/spot_1h/ETHUSDT_1h_2018_2026.csv", "binance/usdm_perp_1h/ETHUSDT_PERP_1h.csv",
         "ftx/ETHUSD_spot_1h_2019_2022.csv", "kraken/ETHUSD_1h_to_2020-09.csv"),
        "2020-03-09T00:00:00Z", "2020-03-17T00:00:00Z", warmup_days=14,
        crash_day="2020-03-12T00:00:00Z",
    ),
    Window(
        "2021-05-19 BTC 1h", OracleId("BTC-USD"),
        ("binance/spot_1h/BTCUSDT_1h_2018_2026.csv", "binance/usdm_perp_1h/BTCUSDT_PERP_1h.csv",
         "ftx/BTCUSD_spot_1h_2019_2022.csv"),
        "2021-05-16T00:00:00Z", "2021-05-24T00:00:00Z", warmup_days=14,
        crash_day="2021-05-19T00:00:00Z",
    ),
    Window(
        "2021-05-19 ETH 1h", OracleId("ETH-USD"),
        ("binance/spot_1h/ETHUSDT_1h_2018_2026.csv", "binance/usdm_perp_1h/ETHUSDT_PERP_1h.csv",
         "ftx/ETHUSD_spot_1h_2019_2022.csv"),
        "2021-05-16T00:00:00Z", "2021-05-24T00:00:00Z", warmup_days=14,
        crash_day="2021-05-19T00:00:00Z",
    ),
    Window(
        "2025-10-10 BTC 1h", OracleId("BTC-USD"),
        ("binance/spot_1h/BTCUSDT_1h_2018_2026.csv", "binance/usdm_perp_1h/BTCUSDT_PERP_1h.csv"),
        "2025-10-08T00:00:00Z", "2025-10-14T00:00:00Z", warmup_days=14,
        crash_day="2025-10-10T12:00:00Z",
    ),
)  # fmt: skip


def backtest_files(
    name: str,
    paths: Sequence[Path],
    *,
    oracle_id: OracleId,
    start_ns: int,
    end_ns: int,
    warmup_ns: int,
    margin: MarginParams | None = None,
    mpor_steps: int = 1,
    on_block: Callable[[int, int], None] | None = None,
) -> Result:
    """Read the venues' candles, replay the engine from ``start_ns − warmup_ns`` and measure
    the periods that start in [start_ns, end_ns)."""
    # Two hours past the end: the last period's end, and the block after it (the index lags
    # its reports by one block).
    venues = [read_candles(p, start_ns=start_ns - warmup_ns, end_ns=end_ns + 2 * NS_PER_HOUR)
              for p in paths]  # fmt: skip
    return backtest_candles(
        name, venues, oracle_id=oracle_id, start_ns=start_ns, end_ns=end_ns, margin=margin,
        mpor_steps=mpor_steps, on_block=on_block,
    )  # fmt: skip


def backtest_candles(
    name: str,
    venues: Sequence[Candles],
    *,
    oracle_id: OracleId,
    start_ns: int,
    end_ns: int,
    margin: MarginParams | None = None,
    mpor_steps: int = 1,
    on_block: Callable[[int, int], None] | None = None,
) -> Result:
    """The engine replayed over these venues' closes; coverage of the periods in the window."""
    samples = replay(venues, large_cap_market(oracle_id, margin), on_block=on_block)
    # A step of the data is the coarsest venue's: periods start at its closes (at every close
    # when all venues share a cadence), each ``mpor_steps`` of that step long.
    cadence = max(v.cadence_ns for v in venues)
    starts = {t for v in venues if v.cadence_ns == cadence for t, _ in v.closes}
    found = periods(samples, start_ns=start_ns, end_ns=end_ns, step_ns=cadence * mpor_steps,
                    starts=starts)  # fmt: skip
    return evaluate(name, cadence * mpor_steps, found)


def backtest_window(
    window: Window,
    data_dir: Path,
    *,
    margin: MarginParams | None = None,
    on_block: Callable[[int, int], None] | None = None,
) -> Result:
    start, end = parse_utc_ns(window.start), parse_utc_ns(window.end)
    return backtest_files(
        window.name, [data_dir / f for f in window.files], oracle_id=window.oracle_id,
        start_ns=start, end_ns=end, warmup_ns=window.warmup_days * NS_PER_DAY, margin=margin,
        on_block=on_block,
    )  # fmt: skip
