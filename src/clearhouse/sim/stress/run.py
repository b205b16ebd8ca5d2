"""One path of a scenario through the real engine: the venue, its publishers' prices, the
agents, block by block; what the path did, as plain numbers (``PathResult``).

A path is a pure function of (scenario, grid point, seed): run it again, anywhere (another
process, a Ray worker), and it gives the same result. ``sim.solvency.VenueReplay`` supplies
the leveraged traders, the maker, the keeper, the vault and the fund; this adds the noise and
trend traders, the arbitrageur, whales, keeper latency, and the measurements of a risk firm
(time series for the report, margin backtest periods, liquidation slippage, leverage allowed).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clearhouse.app.ports import Journal
from clearhouse.core.ids import Address, Side, SubaccountId
from clearhouse.core.margin import requirements
from clearhouse.core.messages import (
    Command,
    Event,
    LiquidationReceipt,
)
from clearhouse.core.params import MarketParams
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.backtest import parse_utc_ns
from clearhouse.sim.candles import iso_utc, rate_of, unique_names
from clearhouse.sim.signer import Signer
from clearhouse.sim.solvency import (
    PPM,
    Bars,
    PricePath,
    VenueReplay,
    read_at_blocks,
    read_bars,
)
from clearhouse.sim.solvency import Population as ReplayPopulation
from clearhouse.sim.stress.amm_watch import AmmWatch, OptionsResult
from clearhouse.sim.stress.attacks import parse_attacks
from clearhouse.sim.stress.options import OptionsDesk
from clearhouse.sim.stress.scenario import Population, Prices, Scenario
from clearhouse.sim.venue import USDC, address_of

SYNTHETIC_START_NS = parse_utc_ns("2026-01-05T00:00:00Z")  # a Monday: no weekly expiry today


@dataclass(slots=True)
class PathResult:
    """What one path did (quote amounts in quantums, times in seconds of block time)."""

    seed: int
    point: dict[str, object]
    blocks: int = 0
    account_blocks: int = 0  # blocks × agents' accounts: the simulated work
    cpu_seconds: float = 0.0
    state_root: str = ""  # at the end: what ``clearhouse verify`` of its journal must print
    insolvent_debt: int = 0  # losses beyond accounts' equity (Gauntlet's insolvent debt)
    liquidated_notional: int = 0
    steps: dict[str, int] = field(default_factory=dict)  # liquidation steps by stage
    fund_start: int = 0
    fund_low: int = 0
    fund_end: int = 0
    vault_start: int = 0
    vault_low: int = 0
    vault_end: int = 0
    adl_events: int = 0
    adl_overshoot: int = 0  # what ADL's counterparties gave up beyond the mark
    liquidatable_accounts: int = 0  # distinct subaccounts liquidatable after some block
    socialized: int = 0
    deficit: int = 0
    hidden_debt: int = 0
    seconds_to_safe: list[float] = field(default_factory=list)
    slippage_notional_ppm: int = 0  # Σ notional × slippage (ppm), against the liquidated
    slippage_notional: int = 0  # Σ notional of the steps above
    leverage_allowed: list[float] = field(default_factory=list)  # per sample: mark / IM
    margins: list[int] = field(default_factory=list)  # per account-period: IM at its start
    notionals: list[int] = field(default_factory=list)  # ... the position's notional then
    losses: list[int] = field(default_factory=list)  # ... and the loss over it
    attacker_pnl: dict[str, int] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)  # sampled for the report
    options: OptionsResult | None = None  # the options AMM, on a path with [options]


# ── Prices ──────────────────────────────────────────────────────────────────────────────────


def price_feeds(scenario: Scenario, seed: int) -> tuple[list[PricePath], list[str], int]:
    """The publishers' prices (one path per venue), their names, and the window's start."""
    prices = scenario.prices
    if prices.model == "csv":
        start_ns = parse_utc_ns(prices.start)
        warm_ns = scenario.settings.warmup_ns
        end_ns = parse_utc_ns(prices.end)
        bars = csv_bars(prices, start_ns=start_ns - warm_ns - NS_PER_HOUR, end_ns=end_ns)
        # Read by the scenario's blocks from the start (1-minute candles at 30 s blocks see
        # their highs and lows: ``Bars.block_ns``); the warm-up reads the walk.
        block_ns = scenario.settings.block_ns
        read: list[PricePath] = [read_at_blocks(b, block_ns, start_ns) for b in bars]
        return read, unique_names([b.name for b in bars]), start_ns
    from clearhouse.sim.stress import models  # numpy: only for synthetic paths

    feeds = models.synthetic_feeds(scenario, seed, SYNTHETIC_START_NS)
    return feeds, [f"venue-{i}" for i in range(len(feeds))], SYNTHETIC_START_NS


def csv_bars(prices: Prices, *, start_ns: int, end_ns: int) -> list[Bars]:
    """Each venue's candles that open in [start_ns, end_ns), in USDC: the one place a file's
    quote currency becomes USDC (each bar at its currency's rate at its open time)."""
    files = prices.venue_files()
    used = sorted({quote for _, quote in files})
    rates = {quote: rate_of(quote, prices.rates[quote]) for quote in used}  # a file read once
    return [read_bars(path, start_ns=start_ns, end_ns=end_ns, rate=rates[quote])
            for path, quote in files]  # fmt: skip


def data_notes(scenario: Scenario) -> list[str]:
    """What each candle file lacks over the measured window, for the run's notes: rows skipped
    (no positive price, or a high below a low) and candles missing (gaps, outages), with the
    longest gap. A silent publisher can leave the oracle without a quorum, and a market without
    an index neither trades nor liquidates: the run measures a market that stood still."""
    prices = scenario.prices
    if prices.model != "csv":
        return []
    start_ns, read_end_ns = parse_utc_ns(prices.start), parse_utc_ns(prices.end)
    end_ns = min(read_end_ns, start_ns + round(scenario.settings.hours * NS_PER_HOUR))
    warm_ns = scenario.settings.warmup_ns
    notes = []
    for bars in csv_bars(prices, start_ns=start_ns - warm_ns - NS_PER_HOUR, end_ns=read_end_ns):
        step = bars.cadence_ns
        expected = range(start_ns + (-start_ns) % step, end_ns, step)
        missing = longest = run = 0
        longest_from = run_from = 0
        for opened in expected:
            if opened in bars.bars:
                run = 0
                continue
            missing += 1
            run_from = opened if run == 0 else run_from
            run += 1
            if run > longest:
                longest, longest_from = run, run_from
        if bars.skipped_rows:
            notes.append(f"{bars.name}: {bars.skipped_rows} rows skipped (no positive price, or "
                         "prices that cannot be: a high below the open, close or low)")  # fmt: skip
        if missing:
            notes.append(
                f"{bars.name}: {missing} of {len(expected)} candles missing in the window, the "
                f"longest gap {_duration(longest * step)} from {iso_utc(longest_from)}: its "
                "publisher is silent then (with too few others for the oracle's quorum, the "
                "market has no index: nothing trades or is liquidated)"
            )
    return notes


def _duration(ns: int) -> str:
    return f"{ns / NS_PER_HOUR:g} h" if ns >= NS_PER_HOUR else f"{ns / NS_PER_MINUTE:g} min"


# ── The agents ──────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class _Noise:
    signer: Signer


@dataclass(slots=True)
class _Trend:
    signer: Signer
    opened_ns: int = 0
    held: int = 0  # its position, read again after each block that names it


class StressReplay(VenueReplay):
    """``VenueReplay`` with the stress lab's agents and measurements."""

    def __init__(
        self,
        scenario: Scenario,
        market: MarketParams,
        feeds: Sequence[PricePath],
        names: Sequence[str],
        seed: int,
        journal: Journal | None = None,
    ) -> None:
        self.scenario = scenario
        self.stress_population = scenario.population
        self.attacks = parse_attacks(scenario.attacks)
        for attack in self.attacks:  # an attack may move what a publisher reports
            feeds = attack.feeds(feeds)
        super().__init__(
            scenario.settings.name, feeds, market, _replay_population(scenario.population, seed),
            block_ns=scenario.settings.block_ns, names=names, journal=journal,
        )  # fmt: skip
        p = scenario.population
        self.rng = random.Random(seed)
        self.noise = [_Noise(_agent("noise", i)) for i in range(p.noise_traders)]
        self.trend = [_Trend(_agent("trend", i)) for i in range(p.trend_traders)]
        self.trend_of = {t.signer.address: t for t in self.trend}
        self.arbitrageurs = [_agent("arb", i) for i in range(p.arbitrageurs)]
        self.whales = [_agent("whale", i) for i in range(p.whales)]
        self.whales_opened = False
        self.seen: deque[tuple[int, list[SubaccountId]]] = deque()  # the keeper's view, delayed
        self.ever_liquidatable: set[SubaccountId] = set()  # what a proposal would make unsafe
        self.history: deque[tuple[int, int]] = deque()  # (time, index): the last 15 minutes
        self.result = PathResult(seed=seed, point={})
        self.series: dict[str, list[float]] = {
            k: [] for k in ("t_hours", "index", "mark", "fund", "vault", "open_interest",
                            "liquidated", "im_fraction")
        }  # fmt: skip
        self.next_sample_ns = 0
        self.period: tuple[int, int, dict[SubaccountId, tuple[int, int]]] | None = None
        self.desk: OptionsDesk | None = None
        self.watch: AmmWatch | None = None
        if scenario.options is not None:
            self.desk = OptionsDesk(scenario.options, self, seed)
            sample_ns = round(scenario.settings.sample_seconds * NS_PER_SECOND)
            self.watch = AmmWatch(self, sample_ns)
            self.after_prologue = self.watch.after_prologue

    # ── Accounts ────────────────────────────────────────────────────────────────────────────

    def extra_funding(self) -> list[tuple[Address, int]]:
        p = self.stress_population
        return [
            *((n.signer.address, p.noise_usdc) for n in self.noise),
            *((t.signer.address, p.trend_usdc) for t in self.trend),
            *((a.address, p.arbitrage_usdc) for a in self.arbitrageurs),
            *((w.address, p.whale_usdc) for w in self.whales),
            *(deposit for attack in self.attacks for deposit in attack.funding()),
            *(self.desk.funding() if self.desk is not None else ()),
        ]

    def agent_accounts(self) -> int:
        attackers = {owner for attack in self.attacks for owner, _ in attack.funding()}
        agents = len(self.noise) + len(self.trend) + len(self.arbitrageurs) + len(self.whales)
        agents += self.desk.accounts() if self.desk is not None else 0
        return len(self.traders) + agents + len(attackers) + 3  # maker, keeper, vault depositor

    def warm_commands(self, timestamp_ns: int) -> list[Command]:
        """A warm-up block's: the publishers' prices, and with options their listing and
        surfaces (so that the surface is fresh when the agents arrive)."""
        commands = self.reports(timestamp_ns)
        if self.desk is not None:
            commands += self.desk.commands(timestamp_ns)
        return commands

    # ── A block ─────────────────────────────────────────────────────────────────────────────

    def step(self, timestamp_ns: int) -> None:
        engine = self.engine
        self._remember_price(timestamp_ns)
        self._remember_trend(timestamp_ns)
        commands = self.reports(timestamp_ns)
        commands += self._maker_quotes(timestamp_ns)
        commands += self.keeper.commands(engine, timestamp_ns, self._keeper_view(timestamp_ns))
        commands += self._keeper_unwind(timestamp_ns)
        first_open = len(commands)
        opening = self._trader_orders(timestamp_ns)
        others = [
            *self._noise_orders(timestamp_ns), *self._trend_orders(timestamp_ns),
            *self._arbitrage_orders(timestamp_ns), *self._whale_orders(timestamp_ns),
        ]  # fmt: skip
        if self.desk is not None:
            others += self.desk.commands(timestamp_ns, falling_ppm=self._fall_ppm())
        others += [c for attack in self.attacks for c in attack.commands(self, timestamp_ns)]
        events = self.block(timestamp_ns, commands + opening + others)
        for attack in self.attacks:
            attack.observe(events)
        self._count(events, first_open=first_open, opens=len(opening))
        self.recheck_traders(events, opening)
        self._measure_slippage(events)
        self.liquidatable = engine.liquidatable()
        self.ever_liquidatable.update(self.liquidatable)
        self.seen.append((timestamp_ns, self.liquidatable))
        self._watch(timestamp_ns, set(self.liquidatable))
        if self.watch is not None:
            self.watch.after_block(events, self.liquidatable or [])
        self.result.account_blocks += self.agent_accounts()
        self._sample(timestamp_ns)
        self._backtest(timestamp_ns)
        self._stuff(timestamp_ns)
        if self.chain is not None and self.chain.height % 2_000 == 0:
            self.chain.flush()

    def _stuff(self, timestamp_ns: int) -> None:
        """The blocks an attacker makes of its own commands before the next block of the
        cadence, evenly spaced in the time between: nobody else sends anything in them (the
        publishers' reports of this block stay fresh), but the engine runs every block's
        prologue, liquidations included."""
        for attack in self.attacks:
            count = attack.stuffing(self, timestamp_ns)
            for k in range(1, count + 1):
                at_ns = timestamp_ns + k * self.block_ns // (count + 1)
                sent = attack.commands(self, at_ns)
                events = self.block(at_ns, sent)
                attack.observe(events)
                self._count(events, first_open=len(sent), opens=0)
                self.recheck_traders(events, [])
                self._measure_slippage(events)
            if count:
                self.liquidatable = self.engine.liquidatable()
                self.ever_liquidatable.update(self.liquidatable)

    def recheck_accounts(self, names: set[str]) -> None:
        """Also the trend traders' positions: each looks at its own every block, and only a
        block that names it can change it."""
        super().recheck_accounts(names)
        for name in names:
            trend = self.trend_of.get(Address(name))
            if trend is not None:
                trend.held = self._position(trend.signer.address)

    def _keeper_view(self, timestamp_ns: int) -> list[SubaccountId] | None:
        """What the keeper saw ``keeper_latency_seconds`` ago (nothing before its first look)."""
        latency_ns = round(self.stress_population.keeper_latency_seconds * NS_PER_SECOND)
        cutoff_ns = timestamp_ns - latency_ns - self.block_ns
        while len(self.seen) > 1 and self.seen[1][0] <= cutoff_ns:  # keep the latest one seen
            self.seen.popleft()
        if latency_ns == 0:
            return self.liquidatable
        return self.seen[0][1] if self.seen and self.seen[0][0] <= cutoff_ns else []

    def _remember_trend(self, timestamp_ns: int) -> None:
        self.history.append((timestamp_ns, self._fair_price()))
        while self.history[0][0] < timestamp_ns - 15 * NS_PER_MINUTE:
            self.history.popleft()

    def _fall_ppm(self) -> int:
        """How far the index is below its highest of the last 15 minutes, ppm."""
        peak = max(price for _, price in self.history)
        return (peak - self.history[-1][1]) * PPM // max(peak, 1)

    def _order_size(self, quote: int) -> int:
        params = self.market
        size = quote * params.base_quantums_per_unit // max(self._fair_price(), 1)
        return max(size - size % params.step_base_quantums, params.min_order_base_quantums)

    def _noise_orders(self, timestamp_ns: int) -> list[Command]:
        p = self.stress_population
        chance = p.noise_orders_per_hour * self.block_ns / NS_PER_HOUR
        commands: list[Command] = []
        size = self._order_size(p.noise_order_usdc * USDC)  # the same for all: one price
        draw = self.rng.random  # one draw per noise trader a block: the loop is the cost
        for trader in self.noise:
            if draw() >= chance:
                continue
            held = self._position(trader.signer.address)
            if abs(held) >= 5 * size:  # keeps its inventory small: trades back toward flat
                side = Side.SELL if held > 0 else Side.BUY
            else:
                side = Side.BUY if draw() < 0.5 else Side.SELL
            commands.append(self._market_order(trader.signer, side, size, timestamp_ns,
                                               reduce_only=False))  # fmt: skip
        return commands

    def _trend_orders(self, timestamp_ns: int) -> list[Command]:
        """Open with the last 15 minutes' move when it passes the threshold; close when it
        turns or after two hours."""
        p = self.stress_population
        first, now = self.history[0][1], self.history[-1][1]
        move_ppm = (now - first) * PPM // max(first, 1)
        threshold_ppm = round(p.trend_threshold * PPM)
        commands: list[Command] = []
        for trader in self.trend:
            owner = trader.signer.address
            held = trader.held
            turned = (held > 0 and move_ppm < -threshold_ppm // 2) or (
                held < 0 and move_ppm > threshold_ppm // 2
            )
            if held and (turned or timestamp_ns - trader.opened_ns > 2 * NS_PER_HOUR):
                side = Side.SELL if held > 0 else Side.BUY
                commands.append(self._market_order(trader.signer, side, abs(held), timestamp_ns,
                                                   reduce_only=True))  # fmt: skip
            elif not held and abs(move_ppm) >= threshold_ppm:
                equity = self._balance(owner)
                size = self._order_size(round(equity * p.trend_leverage))
                side = Side.BUY if move_ppm > 0 else Side.SELL
                trader.opened_ns = timestamp_ns
                commands.append(self._market_order(trader.signer, side, size, timestamp_ns,
                                                   reduce_only=False))  # fmt: skip
        return commands

    def _arbitrage_orders(self, timestamp_ns: int) -> list[Command]:
        """Trade the book back toward the index when the mark strays past the threshold, up
        to a position of three times the account's USDC."""
        p = self.stress_population
        index, mark = self._fair_price(), self._mark()
        if index <= 0 or mark <= 0:
            return []
        basis_ppm = (mark - index) * PPM // index
        if abs(basis_ppm) < round(p.arbitrage_threshold * PPM):
            return []
        side = Side.SELL if basis_ppm > 0 else Side.BUY
        size = self._order_size(p.arbitrage_order_usdc * USDC)
        limit = self._order_size(3 * p.arbitrage_usdc * USDC)
        commands: list[Command] = []
        for signer in self.arbitrageurs:
            held = self._position(signer.address)
            if held * side + size > limit:  # Side is +1 (buy) or -1 (sell)
                continue
            commands.append(self._market_order(signer, side, size, timestamp_ns,
                                               reduce_only=False))  # fmt: skip
        return commands

    def _whale_orders(self, timestamp_ns: int) -> list[Command]:
        if self.whales_opened or not self.whales:
            return []
        self.whales_opened = True
        p = self.stress_population
        initial, _ = requirements(self.market.base_quantums_per_unit,
                                  self.engine.market_risk(self.market.market_id))  # fmt: skip
        commands: list[Command] = []
        for i, signer in enumerate(self.whales):
            size = p.whale_usdc * USDC * round(p.whale_leverage_share * PPM) // PPM
            size = size * self.market.base_quantums_per_unit // max(initial, 1)
            size -= size % self.market.step_base_quantums
            side = Side.BUY if i % 2 == 0 else Side.SELL
            commands.append(self._market_order(signer, side, size, timestamp_ns,
                                               reduce_only=False))  # fmt: skip
        return commands

    # ── Measuring ───────────────────────────────────────────────────────────────────────────

    def _measure_slippage(self, events: list[Event]) -> None:
        """Each liquidation step's average fill against the mark, against the account."""
        unit = self.market.base_quantums_per_unit
        for event in events:
            if not isinstance(event, LiquidationReceipt) or event.size_base_quantums == 0:
                continue
            fill = event.notional_quote_quantums * unit // event.size_base_quantums
            mark = event.mark_price_quantums
            worse = mark - fill if event.side is Side.SELL else fill - mark
            self.result.slippage_notional_ppm += event.notional_quote_quantums * worse * PPM // mark
            self.result.slippage_notional += event.notional_quote_quantums

    def _sample(self, timestamp_ns: int) -> None:
        if timestamp_ns < self.next_sample_ns:
            return
        every_ns = round(self.scenario.settings.sample_seconds * NS_PER_SECOND)
        self.next_sample_ns = timestamp_ns + every_ns
        market = self.engine.state.markets[self.market.market_id]
        unit = self.market.base_quantums_per_unit
        initial, _ = requirements(unit, self.engine.market_risk(self.market.market_id))
        mark = self._mark()
        series = self.series
        series["t_hours"].append((timestamp_ns - self.start_ns) / NS_PER_HOUR)
        series["index"].append(self._fair_price() / USDC)
        series["mark"].append(mark / USDC)
        series["fund"].append(self._fund() / USDC)
        series["vault"].append(self._vault() / USDC)
        series["open_interest"].append(market.open_interest_base_quantums * mark / unit / USDC)
        series["liquidated"].append(self.outcome.liquidated_notional / USDC)
        series["im_fraction"].append(initial / mark if mark else 0.0)
        if initial > 0:
            self.result.leverage_allowed.append(mark / initial)

    def _backtest(self, timestamp_ns: int) -> None:
        """Margin backtesting as a CCP does it: at the start of each period, every account
        holding a position and the initial margin it must hold; at its end, the loss the same
        position made over the period at the index (no trading, no liquidation: the loss the
        margin had to cover)."""
        period_ns = round(self.scenario.settings.period_seconds * NS_PER_SECOND)
        if self.period is not None and timestamp_ns < self.period[0] + period_ns:
            return
        index = self._fair_price()
        if self.period is not None:
            _, start_index, held = self.period
            unit = self.market.base_quantums_per_unit
            for size, margin in held.values():
                self.result.margins.append(margin)
                self.result.notionals.append(abs(size) * start_index // unit)
                self.result.losses.append(-size * (index - start_index) // unit)
        self.period = (timestamp_ns, index, self._positions_and_margins())

    def _positions_and_margins(self) -> dict[SubaccountId, tuple[int, int]]:
        risk = self.engine.market_risk(self.market.market_id)
        found = {}
        owners = [t.signer.address for t in self.traders] + [t.signer.address for t in self.trend]
        for owner in [*owners, *(w.address for w in self.whales)]:
            size = self._position(owner)
            if size:
                found[SubaccountId(owner, 0)] = (size, requirements(abs(size), risk)[0])
        return found

    def finish_path(self, cpu_seconds: float) -> PathResult:
        outcome = self.finish()
        result = self.result
        result.blocks = outcome.blocks
        result.cpu_seconds = cpu_seconds
        result.insolvent_debt = outcome.bad_debt
        result.liquidated_notional = outcome.liquidated_notional
        result.steps = dict(sorted(outcome.steps.items()))
        result.fund_start, result.fund_low, result.fund_end = (
            outcome.fund_start, outcome.fund_low, outcome.fund_end)  # fmt: skip
        result.vault_start, result.vault_low, result.vault_end = (
            outcome.vault_start, outcome.vault_low, outcome.vault_end)  # fmt: skip
        result.adl_events = outcome.adl_events
        result.adl_overshoot = outcome.adl_shortfall
        result.liquidatable_accounts = len(self.ever_liquidatable)
        result.socialized = outcome.socialized
        result.deficit = outcome.deficit
        result.hidden_debt = outcome.hidden_debt
        result.seconds_to_safe = list(outcome.seconds_to_safe)
        result.series = self.series
        result.attacker_pnl = {attack.name: attack.pnl(self) for attack in self.attacks}
        result.state_root = "0x" + self.engine.state_root().hex()
        result.options = None if self.watch is None else self.watch.finish()
        return result


def _agent(kind: str, i: int) -> Signer:
    return Signer(address_of(f"stress-{kind}-{i}"))


def _replay_population(p: Population, seed: int) -> ReplayPopulation:
    return ReplayPopulation(
        traders=p.traders, trader_usdc=p.trader_usdc,
        leverage_low_share_ppm=round(p.leverage_low_share * PPM),
        leverage_high_share_ppm=round(p.leverage_high_share * PPM),
        reentry_ns=round(p.reentry_hours * NS_PER_HOUR), maker_usdc=p.maker_usdc,
        maker_level_usdc=p.maker_level_usdc, maker_pull_move_ppm=round(p.maker_pull_move * PPM),
        keeper_usdc=p.keeper_usdc, keeper_bid_share_ppm=round(p.keeper_bid_share * PPM),
        vault_usdc=p.vault_usdc, vault_takes_through_quotes=p.vault_takes_through_quotes,
        fund_share_of_oi_ppm=round(p.fund_share_of_oi * PPM), seed=seed,
    )  # fmt: skip


# ── A path ──────────────────────────────────────────────────────────────────────────────────


def run_path(
    scenario: Scenario, point: Mapping[str, object], seed: int, journal: Journal | None = None
) -> PathResult:
    """One path: warm the oracle and the margins up on prices alone, fund everyone, then
    ``hours`` of blocks. Deterministic in (scenario, point, seed); with ``journal``, every
    block is written to it (``clearhouse verify`` replays the path)."""
    started = time.process_time()
    settings = scenario.settings
    feeds, names, start_ns = price_feeds(scenario, seed)
    replay = StressReplay(scenario, scenario.market_at(point), feeds, names, seed, journal)
    replay.result.point = dict(point)
    block_ns = settings.block_ns
    warmup_ns = settings.warmup_ns
    warm_block_ns = settings.warm_block_ns
    replay.list_market(start_ns - warmup_ns - NS_PER_SECOND, warm_block_ns)
    for timestamp in range(start_ns - warmup_ns, start_ns, warm_block_ns):
        replay.block(timestamp, replay.warm_commands(timestamp))
    replay.start_ns = start_ns
    replay.fund_everyone(start_ns)
    end_ns = start_ns + round(settings.hours * NS_PER_HOUR)
    for timestamp in range(start_ns + 2 * block_ns, end_ns, block_ns):
        replay.step(timestamp)
    if replay.chain is not None:
        replay.chain.flush()
    return replay.finish_path(time.process_time() - started)
