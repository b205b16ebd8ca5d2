"""A stress scenario (TOML): the venue, its prices, who trades, what to vary and what to aim for.

```toml
[scenario]
name = "BTC: a day of jumps"
hours = 24                 # simulated time, after a warm-up on prices alone
block_seconds = 1          # block cadence; publishers report every block
paths = 20                 # Monte Carlo paths (seeds seed, seed+1, ...), --paths overrides
seed = 1

[venue]
preset = "clearhouse"      # clearhouse | dydx-like | hyperliquid-like
# genesis = "venue.toml"   # or a venue's genesis file (clearhouse init writes one): the
# genesis_market = "BTC-PERP"  # stress market is that perpetual (default: the first one)
[venue.market.margin]      # any MarketParams field, nested tables by name
initial_margin_ppm = 20_000

[prices]
model = "merton"           # gbm | merton | garch | regimes | csv
start_price = 60_000       # USD
annual_vol = 0.8
jumps_per_year = 50
jump_mean = -0.04
jump_std = 0.06
venues = 3                 # publishers, each a venue's view of the path
# or real candles, each file a publisher (docs/STRESS.md, "Real candles"):
# model = "csv"
# files = ["binance/spot_1h/BTCUSDT_1h_2018_2026.csv", "kraken/XBTUSD_1h_to_2020-09.csv"]
# start = "2020-03-12T00:00:00Z"
# end = "2020-03-13T00:00:00Z"
# quotes = ["USDT", "USD"]  # each file's quote currency; else its name's (BTCUSDT: USDT), or USD
# [prices.rates]            # USDC per unit of a quote currency; USD and USDC are 1, USDT,
# USDT = 1.0                # BUSD, FDUSD, DAI at par (noted); or a candle file ("USDTUSD_1h.csv")

[population]               # clearhouse.sim.stress.scenario.Population's fields
traders = 40

[grid]                     # parameters to sweep: every combination runs every path
"margin.initial_margin_ppm" = [10_000, 20_000, 50_000]

[targets]                  # what the recommender keeps to
var_usdc = 0               # p95 of insolvent debt across paths, at most
coverage = 0.99            # margin backtest coverage, at least

[[attack]]                 # attackers (sim.stress.attacks): a kind and its parameters
kind = "oracle_push"
push = 0.10

[options]                  # an option series, surfaces, the options AMM and its takers
amm_usdc = 2_000_000       # (sim.stress.options.OptionsSettings; absent: no options)
[options.vault]            # OptionsVaultParams overrides
vega_cap_nav_ppm = 20_000
```

Every mistake is refused with one line naming the key (``ConfigError``), before anything runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from clearhouse.app.toml_file import read_toml
from clearhouse.core.codec import MalformedCommand, decode_plain, to_plain
from clearhouse.core.errors import ConfigError, InvalidArgument
from clearhouse.core.ids import OracleId
from clearhouse.core.params import MarketKind, MarketParams, is_quote_currency
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.backtest import large_cap_market, parse_utc_ns
from clearhouse.sim.candles import PAR_QUOTES, PEGGED_QUOTES, layout_of, quote_of_name
from clearhouse.sim.stress.attacks import parse_attacks
from clearhouse.sim.stress.options import OptionsSettings, vault_params

SECTIONS = ("scenario", "venue", "prices", "population", "grid", "targets", "attack", "options")
MODELS = ("gbm", "merton", "garch", "regimes", "csv")
QUOTING = ("quotes", "rates")  # [prices] keys of csv's quote currencies
HOURS_MAX = 24 * 31  # a month of simulated time per path
PATHS_MAX = 100_000
GRID_POINTS_MAX = 1_000
BLOCK_SECONDS_MIN = 0.1
VALIDATION_INDEX = 10**6  # an index to check [options.vault] with before any price exists
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Settings:
    """The ``[scenario]`` table."""

    name: str = "stress"
    hours: float = 24.0
    warmup_hours: float = 2.0  # prices alone, before anyone trades: the oracle and margins settle
    block_seconds: float = 1.0
    paths: int = 20
    seed: int = 1
    market: str = "BTC"  # BTC or ETH: the perpetual on <market>-USD
    sample_seconds: float = 60.0  # the time series' resolution in the report
    # The margin backtest's period, the margin period of risk: on a venue that liquidates
    # within minutes, minutes (a CCP margining daily uses one or two days)
    period_seconds: float = 300.0

    @property
    def block_ns(self) -> int:
        return round(self.block_seconds * NS_PER_SECOND)

    @property
    def warm_block_ns(self) -> int:
        """A warm-up block: as the scenario's, and at least a minute (hours of prices alone)."""
        return max(self.block_ns, 60 * NS_PER_SECOND)

    @property
    def warmup_ns(self) -> int:
        """The warm-up run: ``warmup_hours``, and at least two blocks, however small it is set
        (the first block's reports make the index, the next block's prologue the mark that
        the agents' funding and leverage are sized on)."""
        return max(round(self.warmup_hours * NS_PER_HOUR), 2 * self.warm_block_ns)

    @property
    def oracle_id(self) -> OracleId:
        return OracleId(f"{self.market}-USD")


@dataclass(frozen=True, slots=True)
class Population:
    """Who trades. The leveraged traders, the maker, the keeper, the vault and the fund are
    ``sim.solvency``'s (see ``solvency.Population``); the rest are the stress lab's."""

    traders: int = 40  # leveraged position takers, long and short alternately
    trader_usdc: int = 10_000
    leverage_low_share: float = 0.25  # of the most leverage the initial margin allows
    leverage_high_share: float = 0.98
    reentry_hours: float = 1.0
    maker_usdc: int = 200_000_000
    maker_level_usdc: int = 400_000
    maker_pull_move: float = 0.01  # a move this large in 5 minutes: the maker quotes a fifth
    keeper_usdc: int = 1_000_000
    keeper_bid_share: float = 0.5  # of each auction
    keeper_latency_seconds: float = 0.0  # the keeper acts on what it saw this long ago
    vault_usdc: int = 2_000_000
    vault_takes_through_quotes: bool = True  # trades with orders resting through its quote
    fund_share_of_oi: float = 0.01
    noise_traders: int = 20  # random market orders
    noise_usdc: int = 50_000
    noise_order_usdc: int = 2_000
    noise_orders_per_hour: float = 30.0  # each
    trend_traders: int = 5  # follow the last 15 minutes' move
    trend_usdc: int = 100_000
    trend_leverage: float = 5.0
    trend_threshold: float = 0.01  # a 1% move in 15 minutes opens a position
    arbitrageurs: int = 1  # trade the mark back toward the index
    arbitrage_usdc: int = 1_000_000
    arbitrage_threshold: float = 0.002
    arbitrage_order_usdc: int = 50_000
    whales: int = 0  # one large leveraged position each
    whale_usdc: int = 5_000_000
    whale_leverage_share: float = 0.5

    def problems(self) -> tuple[str, ...]:
        found = []
        counts = (self.traders, self.noise_traders, self.trend_traders, self.arbitrageurs,
                  self.whales)  # fmt: skip
        if min(counts) < 0 or max(counts) > 10_000:
            found.append("agent counts in [0, 10000]")
        if not 0 < self.leverage_low_share <= self.leverage_high_share <= 1:
            found.append("0 < leverage_low_share <= leverage_high_share <= 1")
        if not 0 <= self.keeper_bid_share <= 1 or not 0 < self.whale_leverage_share <= 1:
            found.append("keeper_bid_share in [0, 1] and whale_leverage_share in (0, 1]")
        amounts = (self.trader_usdc, self.maker_usdc, self.keeper_usdc, self.noise_usdc,
                   self.trend_usdc, self.arbitrage_usdc, self.whale_usdc)  # fmt: skip
        if min(amounts) <= 0 or max(amounts) > 10**12:
            found.append("USDC amounts in (0, 1e12]")
        if self.keeper_latency_seconds < 0 or self.reentry_hours < 0:
            found.append("keeper_latency_seconds and reentry_hours >= 0")
        return tuple(found)


@dataclass(frozen=True, slots=True)
class Prices:
    """The ``[prices]`` table: a model and its parameters, or candle files (``csv``)."""

    model: str
    parameters: Mapping[str, object]  # the model's own, passed to ``paths``
    start_price: float = 60_000.0
    venues: int = 3
    basis_ppm_std: float = 200.0
    noise_ppm_std: float = 50.0
    files: tuple[Path, ...] = ()  # csv: one venue per file
    start: str = ""  # csv: the window, ISO UTC
    end: str = ""
    quotes: tuple[str, ...] = ()  # csv: each file's quote currency (given, or from its name)
    # csv: USDC per unit of each quote currency the files use: a number, or a candle file of it
    rates: Mapping[str, float | Path] = field(default_factory=dict)
    # csv: what was assumed where the scenario did not say (printed, and in summary.json)
    notes: tuple[str, ...] = ()

    def venue_files(self) -> list[tuple[Path, str]]:
        """Each candle file with its quote currency. (A variant of a scenario may keep only its
        first files, as an attack on one thin venue does: their quotes are the first ones.)"""
        return list(zip(self.files, self.quotes[: len(self.files)], strict=True))


Grid = tuple[tuple[str, tuple[object, ...]], ...]  # (dotted MarketParams field, its values)


@dataclass(frozen=True, slots=True)
class Targets:
    var_usdc: float = 0.0
    coverage: float = 0.99


@dataclass(frozen=True, slots=True)
class Scenario:
    settings: Settings
    preset: str
    market: MarketParams  # the preset's perpetual with the scenario's overrides
    overrides: Mapping[str, Any]  # [venue.market]: applied to whichever preset a point names
    prices: Prices
    population: Population
    grid: Grid = ()
    targets: Targets = field(default_factory=Targets)
    attacks: tuple[Mapping[str, object], ...] = ()
    source: Path | None = None
    genesis_market: MarketParams | None = None  # [venue] genesis: preset "genesis" is it
    options: OptionsSettings | None = None  # [options]: None, a path without options

    def grid_points(self) -> list[dict[str, object]]:
        """Every combination of the grid's values ([{}] without a grid)."""
        names = [name for name, _ in self.grid]
        return [dict(zip(names, combo, strict=True))
                for combo in itertools.product(*(values for _, values in self.grid))]  # fmt: skip

    def market_at(self, point: Mapping[str, object]) -> MarketParams:
        """The market at one grid point: its preset (``preset`` in the grid, or the venue's),
        the scenario's overrides, then the point's values."""
        preset = point.get("preset", self.preset)
        assert isinstance(preset, str), preset
        fields = {k: v for k, v in point.items() if k != "preset"}
        start = self.genesis_market if preset == GENESIS else None
        start = start or preset_market(preset, self.settings.oracle_id)
        base = with_overrides(start, self.overrides, "")
        return with_overrides(base, _nest(fields), "grid")


# ── Presets ──────────────────────────────────────────────────────────────────────────────────


def preset_market(preset: str, oracle_id: OracleId) -> MarketParams:
    """The perpetual as each venue style margins it. Clearhouse: 2% IM, MM 75% of it, margins
    that rise with realized volatility, the mark held within 1% of the index. dYdX v4-like:
    5% IM, 3% MM (BTC's tier), margin on the oracle price, nothing volatility-dependent.
    Hyperliquid-like: 40× (2.5% IM), MM half of IM, no volatility multiplier."""
    base = large_cap_market(oracle_id)
    if preset == "clearhouse":
        return base
    flat = dataclasses.replace(base.margin, vol_multiplier_max_ppm=1_000_000)
    if preset == "dydx-like":
        margin = dataclasses.replace(flat, initial_margin_ppm=50_000, maintenance_share_ppm=600_000)
        return dataclasses.replace(base, margin=margin, mark_band_ppm=0)
    if preset == "hyperliquid-like":
        margin = dataclasses.replace(flat, initial_margin_ppm=25_000, maintenance_share_ppm=500_000)
        return dataclasses.replace(base, margin=margin)
    raise ConfigError("scenario venue.preset: one of clearhouse, dydx-like, hyperliquid-like")


GENESIS = "genesis"  # the preset of a scenario whose venue is a genesis file's


GenesisMarkets = Callable[[Path], Sequence[MarketParams]]
"""Reads a venue's genesis file into its markets (the node reads genesis files: ``clearhouse
stress`` passes its reader in, so that the stress lab below it needs no node code)."""


def genesis_market(
    path: Path, name: str | None, oracle_id: OracleId, read: GenesisMarkets | None
) -> MarketParams:
    """The perpetual named ``name`` (else the first) of a venue's genesis file, on the
    scenario's oracle: a venue's own parameters stressed as they are listed."""
    if read is None:
        raise ConfigError("scenario venue.genesis: genesis files are read by clearhouse stress")
    perpetuals = [m for m in read(path) if m.kind is MarketKind.PERPETUAL]
    found = [m for m in perpetuals if name is None or m.market_id == name]
    if not found:
        what = f"no perpetual {name}" if name else "no perpetual"
        raise ConfigError(f"scenario venue.genesis: {path} lists {what}")
    return dataclasses.replace(found[0], oracle_id=oracle_id)


def with_overrides(market: MarketParams, overrides: Mapping[str, Any], where: str) -> MarketParams:
    """``market`` with nested fields replaced (``{"margin": {"initial_margin_ppm": 1}}``),
    decoded as strictly as a genesis file's; refused naming the key."""
    plain = _merge(to_plain(market), overrides)
    try:
        found = decode_plain(MarketParams, plain)
    except MalformedCommand as error:
        raise ConfigError(f"scenario {where}{str(error).removeprefix('MarketParams')}") from None
    assert isinstance(found, MarketParams)
    problems = found.problems()
    if problems:
        raise ConfigError(f"scenario {where}: {problems[0]}")
    return found


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _nest(point: Mapping[str, object]) -> dict[str, Any]:
    """``{"margin.initial_margin_ppm": 1}`` → ``{"margin": {"initial_margin_ppm": 1}}``."""
    nested: dict[str, Any] = {}
    for dotted, value in point.items():
        *parents, leaf = dotted.split(".")
        table = nested
        for parent in parents:
            table = table.setdefault(parent, {})
        table[leaf] = value
    return nested


# ── Reading a file ───────────────────────────────────────────────────────────────────────────


BUNDLED_DIR = Path(__file__).parent / "scenarios"


def bundled_scenarios() -> list[str]:
    """The names of the scenarios that ship with Clearhouse (``scenarios/<name>.toml``)."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.toml"))


def find_scenario(name_or_path: str) -> Path:
    """A scenario file: a path to one, or the name of a bundled one."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = BUNDLED_DIR / f"{name_or_path}.toml"
    if bundled.is_file():
        return bundled
    raise ConfigError(f"no scenario file {name_or_path}, and no bundled scenario of that name "
                      f"(bundled: {', '.join(bundled_scenarios())})")  # fmt: skip


def load_scenario(
    path: Path, data_dir: Path | None = None, genesis_markets: GenesisMarkets | None = None
) -> Scenario:
    """Read and check a scenario file; candle files are found in ``data_dir`` (the data
    folder a user gives), else beside the file; a genesis file it names, beside it."""
    document = read_toml(path, "scenario")
    return parse_scenario(
        document, base_dir=data_dir or path.parent, source=path, genesis_markets=genesis_markets
    )


def parse_scenario(
    document: Mapping[str, Any], *, base_dir: Path = Path(), source: Path | None = None,
    genesis_markets: GenesisMarkets | None = None,
) -> Scenario:  # fmt: skip
    _known(document, SECTIONS, "")
    settings = _decode(Settings, _table(document, "scenario"), "scenario")
    _check_settings(settings)
    venue = _table(document, "venue")
    _known(venue, ("preset", "market", "genesis", "genesis_market"), "venue.")
    genesis_dir = source.parent if source else base_dir
    from_genesis = _venue_genesis(venue, genesis_dir, settings, genesis_markets)
    preset = venue.get("preset", GENESIS if from_genesis else "clearhouse")
    if not isinstance(preset, str) or (preset == GENESIS) != (from_genesis is not None):
        raise ConfigError(
            'scenario venue.preset: a string; "genesis" exactly when venue.genesis is given'
        )
    overrides = _table(venue, "market")
    start = from_genesis or preset_market(preset, settings.oracle_id)
    market = with_overrides(start, overrides, "venue.market")
    population = _decode(Population, _table(document, "population"), "population")
    if population.problems():
        raise ConfigError(f"scenario population: {population.problems()[0]}")
    prices = _prices(_table(document, "prices", required=True), base_dir)
    if prices.model == "csv":
        _check_window(settings, prices)
    grid = _grid(_table(document, "grid"), market, settings.oracle_id, from_genesis)
    targets = _decode(Targets, _table(document, "targets"), "targets")
    if not 0 < targets.coverage < 1 or targets.var_usdc < 0:
        raise ConfigError("scenario targets: coverage in (0, 1) and var_usdc >= 0")
    attacks = tuple(document.get("attack", ()))
    if not isinstance(document.get("attack", []), list):
        raise ConfigError("scenario attack: expected tables [[attack]]")
    parse_attacks(attacks)  # refused here, before anything runs
    options = _options(_table(document, "options"), market) if "options" in document else None
    return Scenario(settings, preset, market, overrides, prices, population, grid, targets,
                    attacks, source, from_genesis, options)  # fmt: skip


def _options(table: dict[str, Any], market: MarketParams) -> OptionsSettings | None:
    """[options] and its [options.vault] (OptionsVaultParams fields); None when
    ``enabled = false``."""
    vault = _table(table, "vault")
    settings = _decode(OptionsSettings, {k: v for k, v in table.items() if k != "vault"}, "options")
    settings = dataclasses.replace(settings, vault=vault)
    if settings.problems():
        raise ConfigError(f"scenario options: {settings.problems()[0]}")
    vault_params(settings, market, VALIDATION_INDEX)  # overrides refused before anything runs
    return settings if settings.enabled else None


def with_options(scenario: Scenario, settings: OptionsSettings | None = None) -> Scenario:
    """The scenario with options on (``clearhouse stress --options``): its own ``[options]``
    table if it has one, else ``settings`` (the defaults)."""
    if scenario.options is not None:
        return scenario
    found = settings or OptionsSettings()
    vault_params(found, scenario.market, VALIDATION_INDEX)
    return dataclasses.replace(scenario, options=found)


def _venue_genesis(
    venue: Mapping[str, Any], base_dir: Path, settings: Settings, read: GenesisMarkets | None
) -> MarketParams | None:
    """[venue] genesis (a path beside the scenario file) and genesis_market, if given."""
    path, name = venue.get("genesis"), venue.get("genesis_market")
    if path is None:
        if name is not None:
            raise ConfigError("scenario venue.genesis_market: needs venue.genesis")
        return None
    if not isinstance(path, str) or not (name is None or isinstance(name, str)):
        raise ConfigError("scenario venue.genesis and venue.genesis_market: strings")
    return genesis_market(base_dir / path, name, settings.oracle_id, read)


def _check_settings(settings: Settings) -> None:
    if not 0 < settings.hours <= HOURS_MAX:
        raise ConfigError(f"scenario scenario.hours: in (0, {HOURS_MAX}]")
    if not 0 <= settings.warmup_hours <= 48:
        raise ConfigError("scenario scenario.warmup_hours: in [0, 48]")
    if not BLOCK_SECONDS_MIN <= settings.block_seconds <= 3_600:
        raise ConfigError(f"scenario scenario.block_seconds: in [{BLOCK_SECONDS_MIN}, 3600]")
    if not 1 <= settings.paths <= PATHS_MAX:
        raise ConfigError(f"scenario scenario.paths: in [1, {PATHS_MAX}]")
    if settings.market not in ("BTC", "ETH"):
        raise ConfigError("scenario scenario.market: BTC or ETH")
    if settings.sample_seconds < settings.block_seconds or settings.period_seconds <= 0:
        raise ConfigError("scenario scenario.sample_seconds >= block_seconds, period_seconds > 0")


def _prices(table: dict[str, Any], base_dir: Path) -> Prices:
    model = table.get("model")
    if model not in MODELS:
        raise ConfigError(f"scenario prices.model: one of {', '.join(MODELS)}")
    # quotes and rates are csv's alone: for a model they are unknown keys, as its own are here
    common = {f.name for f in dataclasses.fields(Prices)} - {"model", "parameters", *QUOTING}
    shared = {k: v for k, v in table.items() if k in common}
    parameters = {k: v for k, v in table.items() if k not in common and k != "model"}
    prices = _decode(Prices, {**shared, "model": model, "parameters": {}}, "prices")
    if not 1 <= prices.venues <= 32 or prices.start_price <= 0:
        raise ConfigError("scenario prices: venues in [1, 32] and start_price > 0")
    files = tuple(f if f.is_absolute() else base_dir / f for f in prices.files)
    if model == "csv":
        quoting = {k: parameters.pop(k) for k in QUOTING if k in parameters}
        if parameters:
            raise ConfigError(f"scenario prices.{sorted(parameters)[0]}: unknown key")
        return _csv_prices(dataclasses.replace(prices, files=files), quoting, base_dir)
    prices = dataclasses.replace(prices, files=files, parameters=parameters)
    from clearhouse.sim.stress import models  # numpy and scipy: only for synthetic prices

    models.check(prices)
    return prices


def _csv_prices(prices: Prices, quoting: Mapping[str, Any], base_dir: Path) -> Prices:
    if not prices.files:
        raise ConfigError("scenario prices.files: candle files, one per venue")
    for key in ("start", "end"):
        try:
            parse_utc_ns(getattr(prices, key))
        except ValueError:
            raise ConfigError(f"scenario prices.{key}: a UTC time, 2022-11-08T00:00:00") from None
    missing = [f for f in prices.files if not f.is_file()]
    if missing:
        raise ConfigError(f"scenario prices.files: no file {missing[0]}")
    for path in prices.files:
        _check_layout(path, "scenario prices.files")
    notes: list[str] = []
    quotes = _quotes(quoting.get("quotes"), prices.files, notes)
    rates = _rates(quoting.get("rates", {}), prices.files, quotes, base_dir, notes)
    return dataclasses.replace(prices, quotes=quotes, rates=rates, notes=tuple(notes))


def _check_window(settings: Settings, prices: Prices) -> None:
    """Candles for every hour the run measures: a run past ``end`` would measure hours of an
    oracle left without reports, as if the market had gone quiet."""
    start_ns, end_ns = parse_utc_ns(prices.start), parse_utc_ns(prices.end)
    if end_ns <= start_ns:
        raise ConfigError(f"scenario prices.end: after prices.start ({prices.start})")
    window_hours = (end_ns - start_ns) / NS_PER_HOUR
    if round(settings.hours * NS_PER_HOUR) > end_ns - start_ns:
        raise ConfigError(
            f"scenario scenario.hours: {settings.hours:g} hours run past prices.end "
            f"({window_hours:g} hours after prices.start)"
        )


def _check_layout(path: Path, where: str) -> None:
    """A candle file's layout, read from its first row before anything runs."""
    try:
        layout_of(path)
    except InvalidArgument as error:
        raise ConfigError(f"{where}: {error}") from None


def _quotes(given: object, files: Sequence[Path], notes: list[str]) -> tuple[str, ...]:
    """Each file's quote currency: ``quotes`` as given, else what each file's name says, else
    USD (noted: most exports of a USD pair do not say so)."""
    if given is None:
        found = []
        for path in files:
            quote = quote_of_name(path.name)
            if quote is None:
                quote = "USD"
                notes.append(f"{path.name}: its name states no quote currency, read as USD "
                             f'(prices.quotes = ["USDT", ...] says otherwise)')  # fmt: skip
            found.append(quote)
        return tuple(found)
    # A currency's name as the engine's oracles take one (1-8 capitals or digits: USDT)
    if not isinstance(given, list) or not all(is_quote_currency(q) for q in given):
        raise ConfigError('scenario prices.quotes: a list of currency codes ("USDT", "USD")')
    if len(given) != len(files):
        raise ConfigError(f"scenario prices.quotes: {len(given)} for {len(files)} files, "
                          f"one per file")  # fmt: skip
    return tuple(given)


def _rates(
    table: object, files: Sequence[Path], quotes: Sequence[str], base_dir: Path,
    notes: list[str],
) -> dict[str, float | Path]:  # fmt: skip
    """[prices.rates]: each quote currency the files use → USDC per unit (USD and USDC at
    par unless it says otherwise, a dollar stablecoin at par and noted); any other currency
    without a rate is refused, naming it."""
    if not isinstance(table, dict):
        raise ConfigError("scenario prices.rates: expected a table [prices.rates]")
    rates: dict[str, float | Path] = dict.fromkeys(PAR_QUOTES, 1.0)
    for currency, value in sorted(table.items()):
        where = f"scenario prices.rates.{currency}"
        if currency not in quotes:
            raise ConfigError(f"{where}: no file is quoted in {currency} (the files': "
                              f"{', '.join(sorted(set(quotes)))})")  # fmt: skip
        rates[currency] = _rate(value, where, base_dir)
    for quote in sorted((set(quotes) - set(rates)) & set(PEGGED_QUOTES)):
        rates[quote] = 1.0
        notes.append(f"{quote} read at par, 1 USDC (no [prices.rates] {quote}: give a number "
                     f"or a candle file of its price to follow a depeg)")  # fmt: skip
    for path, quote in zip(files, quotes, strict=True):
        if quote not in rates:
            raise ConfigError(
                f"scenario prices.rates.{quote}: no rate for {quote}, the quote currency of "
                f"{path.name}: give its value in USDC, a number (USDC per {quote}) or a "
                f"candle file of its price"
            )
    return {quote: rates[quote] for quote in sorted(set(quotes))}


def _rate(value: object, where: str, base_dir: Path) -> float | Path:
    if type(value) in (int, float):
        number = float(value)  # type: ignore[arg-type]
        if not (math.isfinite(number) and number > 0):
            raise ConfigError(f"{where}: a rate above 0, USDC per unit")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a number (USDC per unit) or a candle file")
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    if not path.is_file():
        raise ConfigError(f"{where}: no file {path}")
    _check_layout(path, where)
    return path


def _grid(
    table: dict[str, Any], market: MarketParams, oracle_id: OracleId,
    from_genesis: MarketParams | None,
) -> Grid:  # fmt: skip
    """Dotted MarketParams fields (``margin.initial_margin_ppm``), or ``preset``: venue
    styles side by side (``genesis`` among them when the venue is a genesis file's)."""
    grid = []
    points = 1
    for name, values in sorted(table.items()):
        if not isinstance(values, list) or not values:
            raise ConfigError(f"scenario grid.{name}: a list of values")
        for value in values:
            if name == "preset":
                if not (value == GENESIS and from_genesis is not None):
                    preset_market(str(value), oracle_id)
            else:
                with_overrides(market, _nest({name: value}), f"grid.{name}")
        points *= len(values)
        grid.append((name, tuple(values)))
    if points > GRID_POINTS_MAX:
        raise ConfigError(f"scenario grid: {points} combinations, at most {GRID_POINTS_MAX}")
    return tuple(grid)


# ── Strict decoding of flat tables ───────────────────────────────────────────────────────────


def _decode(kind: type[_T], table: Mapping[str, Any], where: str) -> _T:
    hints = typing.get_type_hints(kind)
    names = [f.name for f in dataclasses.fields(kind)]  # type: ignore[arg-type]
    _known(table, names, f"{where}.")
    values = {name: _value(hints[name], table[name], f"{where}.{name}") for name in table}
    return kind(**values)


def _value(hint: Any, value: object, where: str) -> object:
    if hint is float:
        if type(value) not in (int, float):
            raise ConfigError(f"scenario {where}: expected a number")
        return float(value)  # type: ignore[arg-type]
    if hint is int or hint is str or hint is bool:
        if type(value) is not hint:
            raise ConfigError(f"scenario {where}: expected {hint.__name__}")
        return value
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"scenario {where}: expected a list of strings")
        return tuple(Path(v) for v in value)
    if origin in (Mapping, dict) or isinstance(hint, types.GenericAlias):
        return value
    raise AssertionError(f"no decoding for {hint}")


def _table(document: Mapping[str, Any], key: str, *, required: bool = False) -> dict[str, Any]:
    if key not in document:
        if required:
            raise ConfigError(f"scenario [{key}]: missing")
        return {}
    value = document[key]
    if not isinstance(value, dict):
        raise ConfigError(f"scenario {key}: expected a table [{key}]")
    return value


def _known(table: Mapping[str, Any], names: Sequence[str], prefix: str) -> None:
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(f"scenario {prefix}{unknown[0]}: unknown key")


def window_ns(scenario: Scenario, start_ns: int) -> tuple[int, int]:
    """The measured window: [start, end) of block time."""
    return start_ns, start_ns + round(scenario.settings.hours * NS_PER_HOUR)
