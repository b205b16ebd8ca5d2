"""A venue through a real crash: does it stay solvent? (SPEC §7, §11, §16)

The margin backtest (``sim.backtest``) asks whether the margin held at the start of a period
covers the loss over it. This asks the venue's question: with leveraged traders at up to the
leverage the margin allows, a market maker that widens and thins out as the market moves, a
keeper with finite capital, the market-making vault and an insurance fund of about 1% of open
interest, does any loss end up in the ``deficit`` account?

The real engine is driven block by block through a window's candles, each venue's file one
publisher. Inside a candle each publisher's price walks open → high → low → close (or open →
low → high → close for a rising candle: the order that makes the close the last word), linearly
between those points at a third of the candle each, sampled once per block. That is the
cheapest path consistent with the candle's range and no smoother than it; the real path is
rougher, so this is a lower bound on how fast prices moved, not on how far.

Reported per window: liquidation steps by stage, time from liquidatable to flat, the loss
beyond an account's equity (bad debt; Gauntlet's insolvent debt) and who paid it (the fund,
ADL's counterparties, socialization), debt left hidden on any account, the fund's and the vault's
drawdown, and the deficit. The venue is solvent when the deficit is zero.

Not in ``clearhouse.core``: it reads files and chooses agents' behaviour.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from clearhouse.app.chain import Chain
from clearhouse.app.ports import Journal
from clearhouse.core.engine import Engine
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import (
    QUOTE_ASSET,
    Address,
    AssetId,
    OracleId,
    Side,
    SubaccountId,
)
from clearhouse.core.ledger import DEFICIT, FUND_BOOK, INSURANCE, VAULT
from clearhouse.core.liquidation import to_tick
from clearhouse.core.margin import requirements
from clearhouse.core.messages import (
    CancelAll,
    Command,
    CommandRejected,
    Deleveraged,
    DepositInsurance,
    DepositVault,
    Event,
    LiquidationReceipt,
    LiquidationStage,
    ListAsset,
    ListMarket,
    ListOracle,
    LossSocialized,
    OrderType,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
)
from clearhouse.core.params import (
    AssetParams,
    MarketParams,
    OracleParams,
    Publisher,
    VaultMarketParams,
    VaultParams,
    VenueParams,
)
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.backtest import NS_PER_DAY, Window, large_cap_market, parse_utc_ns
from clearhouse.sim.candles import (
    PAR,
    Rate,
    cadence_ns,
    in_quantums,
    iso_utc,
    read_candle_file,
    unique_names,
)
from clearhouse.sim.keeper import Keeper
from clearhouse.sim.signer import Signer, usdc_deposit
from clearhouse.sim.venue import USDC, address_of

COMMAND_TTL_NS = 60 * NS_PER_SECOND
PPM = 1_000_000
# Blocks in a candle from which the walk through its knots (a third of a candle apart) is read
# at block times; fewer, and each block takes a knot (``Bars.block_ns``).
SAMPLES_FOR_THE_WALK = 4


# ── Candles as a price path ─────────────────────────────────────────────────────────────────


class PricePath(Protocol):
    """One publisher's prices: the price at a block time, or None when it has none (a gap in
    its data, or before it starts)."""

    def price_at(self, timestamp_ns: int) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Bars:
    """One venue's candles: open time (ns) → (open, high, low, close) in quote quantums."""

    name: str
    cadence_ns: int
    bars: dict[int, tuple[int, int, int, int]]
    skipped_rows: int = 0  # rows in the range read without usable prices (``sim.candles``)
    # The block interval the path is read at from ``blocks_from_ns`` (0: any time; the warm-up
    # before it reads candles' opens). Where a candle holds fewer than ``SAMPLES_FOR_THE_WALK``
    # blocks (1-minute candles at 30 s blocks: two), the blocks see the candle's extremes
    # themselves, in the walk's order, instead of the walk at their times.
    block_ns: int = 0
    blocks_from_ns: int = 0

    def price_at(self, timestamp_ns: int) -> int | None:
        """The path's price at this time, or None inside a gap of the venue's data."""
        opened = timestamp_ns - timestamp_ns % self.cadence_ns
        bar = self.bars.get(opened)
        if bar is None:
            return None
        start, high, low, close = bar
        first, second = (high, low) if close < start else (low, high)
        at_blocks = self.block_ns and timestamp_ns >= self.blocks_from_ns
        samples = self.cadence_ns // self.block_ns if at_blocks else 0
        if 2 <= samples < SAMPLES_FOR_THE_WALK:
            # The walk's knots are a third of a candle apart: blocks of more than a third of a
            # candle fall between them. 1-minute candles at 30 s blocks were read at their open
            # and half-way from the high to the low, 36% of the candles' ranges over the
            # LUNA and FTX-collapse days, less smooth than their 5-minute twins (95%). The
            # candle's blocks take its extremes (and, with three, then the close) in order.
            seen = (first, second) if samples == 2 else (first, second, close)
            return seen[min((timestamp_ns - opened) // self.block_ns, samples - 1)]
        knots = (start, first, second, close)
        # Position within the candle in thirds, exactly: (elapsed × 3) / cadence.
        scaled = (timestamp_ns - opened) * 3
        segment = min(scaled // self.cadence_ns, 2)
        into = scaled - segment * self.cadence_ns  # of cadence_ns per segment
        left, right = knots[segment], knots[segment + 1]
        return left + (right - left) * into // self.cadence_ns


def read_bars(path: Path, *, start_ns: int, end_ns: int, rate: Rate = PAR) -> Bars:
    """A candle file (any layout ``sim.candles`` reads) → the bars that open in
    [start_ns, end_ns), in USDC quantums at its quote currency's ``rate`` (par: a USD file).
    Candles must be aligned to their cadence (exchanges' are)."""
    found = read_candle_file(path, start_ns=start_ns, end_ns=end_ns)
    rows = in_quantums(found, rate)
    if len(rows) < 2:
        raise InvalidArgument(f"{path}: fewer than two candles between {iso_utc(start_ns)} "
                              f"and {iso_utc(end_ns)}")  # fmt: skip
    times = sorted(rows)
    cadence = cadence_ns(times)
    if any(t % cadence for t in times):
        raise InvalidArgument(
            f"{path}: candles are not aligned to their {cadence // NS_PER_SECOND} s"
        )
    skipped = found.skipped_rows + len(found.candles) - len(rows)
    return Bars(name=found.name, cadence_ns=cadence, bars=rows, skipped_rows=skipped)


def read_at_blocks(bars: Bars, block_ns: int, from_ns: int) -> Bars:
    """The same candles, read by blocks of ``block_ns`` from ``from_ns`` (``Bars.block_ns``)."""
    return dataclasses.replace(bars, block_ns=block_ns, blocks_from_ns=from_ns)


# ── The population ──────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Population:
    """Who trades through the window. Traders alternate long and short; trader i opens at
    a leverage spread evenly between ``leverage_low_share`` and ``leverage_high_share`` of the
    most the initial margin allows at that moment, holds until liquidated, and opens again
    (re-funded if it lost most of its equity) after ``reentry_ns``."""

    traders: int = 40
    trader_usdc: int = 10_000
    leverage_low_share_ppm: int = 250_000
    leverage_high_share_ppm: int = 980_000
    reentry_ns: int = NS_PER_HOUR
    maker_usdc: int = 200_000_000
    maker_level_usdc: int = 400_000  # per level and side at rest
    maker_pull_move_ppm: int = 10_000  # a 1% move in 5 minutes: the maker quotes a fifth
    keeper_usdc: int = 1_000_000
    keeper_bid_share_ppm: int = 500_000
    vault_usdc: int = 2_000_000
    vault_takes_through_quotes: bool = True  # VaultParams.takes_through_quotes
    fund_share_of_oi_ppm: int = 10_000  # 1% of the open interest at full leverage
    seed: int = 1


@dataclass(slots=True)
class _Trader:
    signer: Signer
    side: Side
    leverage_share_ppm: int
    next_open_ns: int = 0
    liquidatable_since_ns: int | None = None


@dataclass(slots=True)
class Outcome:
    """What the window did to the venue (quote amounts in quantums)."""

    name: str
    blocks: int = 0
    opens: int = 0
    refused_opens: int = 0
    steps: Counter[str] = field(default_factory=Counter)  # liquidation steps by stage
    liquidated_notional: int = 0
    bankrupt_steps: int = 0  # steps that found the account under water at the mark
    fund_paid: int = 0
    adl_events: int = 0
    adl_shortfall: int = 0  # what ADL's counterparties absorbed beyond the mark
    socialized: int = 0
    deficit: int = 0  # the deficit account at the end
    hidden_debt: int = 0  # negative quote balances left on agents' accounts at the end
    fund_start: int = 0
    fund_low: int = 0
    fund_end: int = 0
    vault_start: int = 0
    vault_low: int = 0
    vault_end: int = 0
    open_interest_peak: int = 0  # quote quantums, at the mark, one side
    seconds_to_safe: list[float] = field(default_factory=list)

    @property
    def bad_debt(self) -> int:
        """Losses beyond accounts' equity, as paid: by the fund, by ADL's counterparties
        beyond the mark, or socialized. (A step that finds an account under water at the mark
        may still close it without bad debt, on bids above the mark.)"""
        return self.fund_paid + self.adl_shortfall + self.socialized

    @property
    def solvent(self) -> bool:
        return self.deficit == 0 and self.socialized == 0 and self.hidden_debt == 0

    def as_row(self) -> dict[str, object]:
        to_safe = self.seconds_to_safe or [0.0]
        return {
            "window": self.name, "blocks": self.blocks, "opens": self.opens,
            "refused_opens": self.refused_opens, "steps": dict(sorted(self.steps.items())),
            "liquidated_usdc": self.liquidated_notional / USDC,
            "bankrupt_steps": self.bankrupt_steps,
            "bad_debt_usdc": self.bad_debt / USDC, "hidden_debt_usdc": self.hidden_debt / USDC,
            "fund_paid_usdc": self.fund_paid / USDC, "adl_events": self.adl_events,
            "adl_shortfall_usdc": self.adl_shortfall / USDC,
            "socialized_usdc": self.socialized / USDC, "deficit_usdc": self.deficit / USDC,
            "fund_usdc": [self.fund_start / USDC, self.fund_low / USDC, self.fund_end / USDC],
            "vault_usdc": [self.vault_start / USDC, self.vault_low / USDC, self.vault_end / USDC],
            "open_interest_peak_usdc": self.open_interest_peak / USDC,
            "seconds_to_safe_median": statistics.median(to_safe),
            "seconds_to_safe_max": max(to_safe), "solvent": self.solvent,
        }  # fmt: skip


# ── The replay ──────────────────────────────────────────────────────────────────────────────


class VenueReplay:
    """One venue (one perpetual, its oracle, the vault, the fund) and its agents, stepped
    through the publishers' price paths."""

    def __init__(
        self,
        name: str,
        venues: Sequence[PricePath],
        market: MarketParams,
        population: Population,
        *,
        block_ns: int,
        names: Sequence[str] | None = None,  # one per venue (default: the candle files')
        journal: Journal | None = None,  # where to write every block, for ``verify``
    ) -> None:
        self.market = market
        self.population = population
        self.venues = venues
        self.block_ns = block_ns
        self.rng = random.Random(population.seed)
        self.operator = Signer(address_of("solvency-operator"))
        self.relayer = Signer(address_of("solvency-relayer"))
        names = names or [v.name for v in venues]  # type: ignore[attr-defined]
        self.venue_names = unique_names(names)
        self.publishers = [Signer(address_of(f"solvency-{name}")) for name in self.venue_names]
        self.maker = Signer(address_of("solvency-maker"))
        self.keeper = Keeper(
            Signer(address_of("solvency-keeper")), bid_share_ppm=population.keeper_bid_share_ppm
        )
        self.lp = Signer(address_of("solvency-vault-lp"))
        self.traders = [self._trader(i) for i in range(population.traders)]
        # Per block, only the traders that may act are looked at (the cost of a block follows
        # what moved, not the population): those known flat, and those an event named.
        self.trader_index = {
            SubaccountId(t.signer.address, 0): i for i, t in enumerate(self.traders)
        }
        self.trader_of = {t.signer.address: i for i, t in enumerate(self.traders)}  # by account
        self.flat: set[int] = set(range(len(self.traders)))  # no position (or not yet known)
        # Of the flat, those past ``next_open_ns`` (the only ones that may open); the others
        # wait in a heap by the time they wake, so that a block looks at none of them.
        self.ready: set[int] = set(self.flat)
        self.waiting: list[tuple[int, int]] = []  # (next_open_ns, trader)
        self.waiting_set: set[int] = set()
        self.subaccount_ids: dict[Address, SubaccountId] = {}  # each agent's subaccount 0
        self.flagged: set[int] = set()  # liquidatable since ``liquidatable_since_ns``
        self.chain = None if journal is None else Chain(self._venue_params(), journal)
        self.engine = Engine(self._venue_params()) if self.chain is None else self.chain.engine
        self.outcome = Outcome(name)
        self.next_deposit_id = 1
        self.quoted: tuple[int, int] | None = None  # (fair price, time) of the maker's ladder
        self.recent_prices: list[tuple[int, int]] = []  # (time, fair price), the last 5 min
        self.liquidatable: list[SubaccountId] | None = None  # after the last block
        self.start_ns = 0  # when the agents were funded
        # Reads the engine between each block's prologue and its first command (the stress
        # lab's options vault watch); never changes anything.
        self.after_prologue: Callable[[Sequence[Event]], None] | None = None

    def _trader(self, i: int) -> _Trader:
        low, high = self.population.leverage_low_share_ppm, self.population.leverage_high_share_ppm
        half = max(self.population.traders // 2 - 1, 1)
        share = low + (high - low) * (i // 2) // half
        side = Side.BUY if i % 2 == 0 else Side.SELL
        return _Trader(Signer(address_of(f"solvency-trader-{i}")), side, share)

    def _venue_params(self) -> VenueParams:
        vault = VaultParams(
            markets=(VaultMarketParams(
                market_id=self.market.market_id,
                size_per_level_quote_quantums=self.population.vault_usdc * USDC // 100,
                cap_quote_quantums=self.population.vault_usdc * USDC // 4,
            ),),
            lockup_ns=NS_PER_HOUR, takes_through_quotes=self.population.vault_takes_through_quotes,
        )  # fmt: skip
        return VenueParams(
            operator=self.operator.address, custody_relayer=self.relayer.address, vault=vault
        )

    # ── Blocks ──────────────────────────────────────────────────────────────────────────────

    def list_market(self, timestamp_ns: int, report_every_ns: int) -> None:
        oracle = OracleParams(
            oracle_id=self.market.oracle_id,
            publishers=tuple(Publisher(address=p.address) for p in self.publishers),
            # Publishers report every block; a report stays fresh for two of the slowest
            # blocks, so a venue's missing candle (a gap in its data) leaves it out.
            staleness_ns=2 * report_every_ns + 10 * NS_PER_SECOND,
            outage_ns=4 * report_every_ns,
        )
        bodies = (
            (ListOracle, oracle),
            (ListAsset, AssetParams(asset_id=AssetId("USDC"), quantums_per_unit=USDC)),
            (ListMarket, self.market),
        )
        commands: list[Command] = [
            kind(signer=self.operator.address, nonce=self.operator.nonce(timestamp_ns),
                 expiry_ns=timestamp_ns + NS_PER_HOUR, params=params)  # type: ignore[arg-type]
            for kind, params in bodies
        ]  # fmt: skip
        self.block(timestamp_ns, commands)

    def block(self, timestamp_ns: int, commands: list[Command]) -> list[Event]:
        if self.chain is not None:  # through the journal: the same engine steps, recorded
            self.outcome.blocks += 1
            executed = self.chain.produce(
                timestamp_ns, commands, after_prologue=self.after_prologue
            )
            return list(executed.events)
        engine = self.engine
        events = engine.begin_block(engine.state.height + 1, timestamp_ns)
        if self.after_prologue is not None:
            self.after_prologue(events)
        for index, command in enumerate(commands):
            events += engine.apply(index, command)
        engine.close_block()  # no root a block: nothing here commits to one (``state_root``)
        self.outcome.blocks += 1
        return events

    def reports(self, timestamp_ns: int) -> list[Command]:
        commands: list[Command] = []
        for publisher, venue in zip(self.publishers, self.venues, strict=True):
            price = venue.price_at(timestamp_ns)
            if price is None:
                continue
            commands.append(ReportPrices(
                signer=publisher.address, nonce=publisher.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS,
                reports=(PriceReport(
                    oracle_id=self.market.oracle_id, price_quantums=price,
                    confidence_quantums=0, timestamp_ns=timestamp_ns,
                ),),
            ))  # fmt: skip
        return commands

    def fund_everyone(self, timestamp_ns: int) -> None:
        """Deposits for every agent, then the vault's deposit and the fund's."""
        p = self.population
        mark = self._mark()
        if mark == 0:  # nobody can be margined, nor the fund sized, without a price
            raise InvalidArgument(
                f"no index price at {iso_utc(timestamp_ns)}, the end of the warm-up: the "
                f"publishers' candles ({', '.join(self.venue_names)}) gave the oracle none it "
                "accepts (no candles in the warm-up, too few publishers for its quorum, or prices "
                "further apart than its outlier band); start the window later or give files "
                "that agree"
            )
        unit = self.market.base_quantums_per_unit
        initial, _ = requirements(unit, self.engine.market_risk(self.market.market_id))
        # The open interest if every trader opened at its leverage share now (one side).
        full = sum(p.trader_usdc * USDC * t.leverage_share_ppm // PPM for t in self.traders)
        open_interest = full * mark // initial // 2
        fund_usdc = max(open_interest * p.fund_share_of_oi_ppm // PPM // USDC, 1)
        funded = [
            (self.maker.address, p.maker_usdc), (self.keeper.signer.address, p.keeper_usdc),
            (self.lp.address, p.vault_usdc + fund_usdc),
            *((t.signer.address, p.trader_usdc) for t in self.traders),
            *self.extra_funding(),
        ]  # fmt: skip
        self.block(timestamp_ns, [*self.reports(timestamp_ns), *(
            self._deposit(owner, amount * USDC, timestamp_ns) for owner, amount in funded
        )])  # fmt: skip
        timestamp_ns += self.block_ns
        self.block(timestamp_ns, [
            *self.reports(timestamp_ns),
            DepositVault(signer=self.lp.address, nonce=self.lp.nonce(timestamp_ns),
                         expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                         amount_quantums=p.vault_usdc * USDC),
            DepositInsurance(signer=self.lp.address, nonce=self.lp.nonce(timestamp_ns),
                             expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                             amount_quantums=fund_usdc * USDC),
        ])  # fmt: skip
        self.outcome.fund_start = self.outcome.fund_low = self._fund()
        self.outcome.vault_start = self.outcome.vault_low = self._vault()

    def extra_funding(self) -> list[tuple[Address, int]]:
        """Other agents' deposits (whole USDC) in the funding block: none here."""
        return []

    def step(self, timestamp_ns: int) -> None:
        """One block of the measured window: reports, the maker, the keeper, the traders."""
        engine = self.engine
        self._remember_price(timestamp_ns)
        commands = self.reports(timestamp_ns)
        commands += self._maker_quotes(timestamp_ns)
        # Nothing changes between blocks: what the last block left liquidatable is what the
        # keeper sees now (computed once, not again for the keeper).
        commands += self.keeper.commands(engine, timestamp_ns, self.liquidatable)
        commands += self._keeper_unwind(timestamp_ns)
        opening = self._trader_orders(timestamp_ns)
        events = self.block(timestamp_ns, commands + opening)
        self._count(events, first_open=len(commands), opens=len(opening))
        self.recheck_traders(events, opening)
        self.liquidatable = engine.liquidatable()
        self._watch(timestamp_ns, set(self.liquidatable))

    def recheck_traders(self, events: list[Event], sent: list[Command]) -> None:
        """After a block: which traders are flat, from the positions of those whose orders
        went in or whom an event names (a fill, a liquidation step, a deleveraging)."""
        names: set[str] = {c.signer for c in sent}
        for event in events:  # every subaccount an event names (fills, steps, auctions, ADL)
            for field_name in _naming_fields(type(event)):
                named = getattr(event, field_name)
                if isinstance(named, str) and "/" in named:
                    names.add(_owner(named))
        self.recheck_accounts(names)

    def recheck_accounts(self, names: set[str]) -> None:
        """The accounts named, whose positions may have changed: which traders are flat."""
        for name in names:
            index = self.trader_of.get(Address(name))
            if index is None:
                continue
            if self._position(self.traders[index].signer.address) == 0:
                self.flat.add(index)
                if index not in self.waiting_set:
                    self.ready.add(index)
            else:
                self.flat.discard(index)
                self.ready.discard(index)

    # ── Agents ──────────────────────────────────────────────────────────────────────────────

    def _deposit(self, owner: Address, amount: int, timestamp_ns: int) -> Command:
        command = usdc_deposit(self.relayer, self.next_deposit_id, owner, amount, timestamp_ns,
                               ttl_ns=COMMAND_TTL_NS)  # fmt: skip
        self.next_deposit_id += 1
        return command

    def _mark(self) -> int:
        return self.engine.state.markets[self.market.market_id].mark_price_quantums

    def _subaccount_id(self, owner: Address) -> SubaccountId:
        """The agent's subaccount 0, made once: the agents look at theirs every block."""
        found = self.subaccount_ids.get(owner)
        if found is None:
            found = self.subaccount_ids[owner] = SubaccountId(owner, 0)
        return found

    def _position(self, owner: Address) -> int:
        sub = self.engine.state.ledger.subaccounts.get(self._subaccount_id(owner))
        return 0 if sub is None else sub.position_size(self.market.market_id)

    def _balance(self, owner: Address) -> int:
        return self.engine.state.ledger.balance(self._subaccount_id(owner), QUOTE_ASSET)

    def _fair_price(self) -> int:
        """What the maker quotes around: the index."""
        return self.engine.state.oracles[self.market.oracle_id].index_price_quantums

    def _remember_price(self, timestamp_ns: int) -> None:
        self.recent_prices.append((timestamp_ns, self._fair_price()))
        while self.recent_prices[0][0] < timestamp_ns - 5 * 60 * NS_PER_SECOND:
            self.recent_prices.pop(0)

    def _move_ppm(self) -> int:
        """The largest distance of the fair price from its value at any time in the last 5
        minutes."""
        now = self.recent_prices[-1][1]
        return max(abs(now - m) * PPM // m for _, m in self.recent_prices)

    def _maker_quotes(self, timestamp_ns: int) -> list[Command]:
        """A ladder of five levels a side around the index (the maker hedges on the venues the
        index comes from, so their price is its fair value); wider by the recent move, a fifth
        of the size once the market moved 1% in 5 minutes, skewed against the maker's
        inventory. Requoted when the index moved 5 bp or a minute passed."""
        fair = self._fair_price()
        if self.quoted is not None:
            last_fair, last_ns = self.quoted
            if abs(fair - last_fair) * 10_000 < 5 * last_fair and (
                timestamp_ns - last_ns < 60 * NS_PER_SECOND
            ):
                return []
        self.quoted = (fair, timestamp_ns)
        p, params = self.population, self.market
        move = self._move_ppm()
        level_quote = p.maker_level_usdc * USDC // (5 if move >= p.maker_pull_move_ppm else 1)
        size = level_quote * params.base_quantums_per_unit // fair
        size = max(size - size % params.step_base_quantums, params.min_order_base_quantums)
        inventory = self._position(self.maker.address)
        skew_ppm = max(-2_000, min(2_000, -inventory * fair // params.base_quantums_per_unit
                                   * 100 // max(level_quote, 1)))  # fmt: skip
        commands: list[Command] = [CancelAll(
            signer=self.maker.address, nonce=self.maker.nonce(timestamp_ns),
            expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
            market_id=params.market_id,
        )]  # fmt: skip
        for level in range(5):
            half_spread_ppm = 300 + 500 * level + move // 4
            for side in (Side.BUY, Side.SELL):
                raw = fair * (PPM + skew_ppm - side * half_spread_ppm) // PPM
                price = to_tick(raw, params.tick_quantums, side)
                commands.append(PlaceOrder(
                    signer=self.maker.address, nonce=self.maker.nonce(timestamp_ns),
                    expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                    market_id=params.market_id, side=side, size_base_quantums=size,
                    price_quantums=price, time_in_force=TimeInForce.POST_ONLY,
                ))  # fmt: skip
        return commands

    def _keeper_unwind(self, timestamp_ns: int) -> list[Command]:
        """The keeper sells what its auction bids bought, into the book, reduce-only."""
        signer = self.keeper.signer
        held = self._position(signer.address)
        if held == 0:
            return []
        return [self._market_order(signer, Side.SELL if held > 0 else Side.BUY, abs(held),
                                   timestamp_ns, reduce_only=True)]  # fmt: skip

    def _market_order(
        self, signer: Signer, side: Side, size: int, timestamp_ns: int, *, reduce_only: bool
    ) -> Command:
        return PlaceOrder(
            signer=signer.address, nonce=signer.nonce(timestamp_ns),
            expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
            market_id=self.market.market_id, side=side, size_base_quantums=size,
            order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC, slippage_ppm=20_000,
            reduce_only=reduce_only,
        )  # fmt: skip

    def _trader_orders(self, timestamp_ns: int) -> list[Command]:
        commands: list[Command] = []
        params = self.market
        initial, _ = requirements(
            params.base_quantums_per_unit, self.engine.market_risk(params.market_id)
        )
        self._wake(timestamp_ns)
        for index in sorted(self.ready):
            trader = self.traders[index]
            owner = trader.signer.address
            if self._position(owner) != 0:
                continue
            equity = self._balance(owner)
            if equity < self.population.trader_usdc * USDC // 5:  # wiped out: funds again
                commands.append(self._deposit(owner, self.population.trader_usdc * USDC,
                                              timestamp_ns))  # fmt: skip
                continue
            # Notional = equity × leverage, leverage = share × (mark / IM per unit).
            size = equity * trader.leverage_share_ppm // PPM * params.base_quantums_per_unit
            size //= initial
            size -= size % params.step_base_quantums
            if size < params.min_order_base_quantums:
                continue
            self._sleep(index, timestamp_ns + self.population.reentry_ns)
            commands.append(self._market_order(trader.signer, trader.side, size, timestamp_ns,
                                               reduce_only=False))  # fmt: skip
        return commands

    def _sleep(self, index: int, until_ns: int) -> None:
        self.traders[index].next_open_ns = until_ns
        heapq.heappush(self.waiting, (until_ns, index))
        self.waiting_set.add(index)
        self.ready.discard(index)

    def _wake(self, timestamp_ns: int) -> None:
        """The traders whose ``next_open_ns`` has come: ready again if flat."""
        while self.waiting and self.waiting[0][0] <= timestamp_ns:
            _, index = heapq.heappop(self.waiting)
            self.waiting_set.discard(index)
            if index in self.flat:
                self.ready.add(index)

    # ── Measuring ───────────────────────────────────────────────────────────────────────────

    def _count(self, events: list[Event], *, first_open: int, opens: int) -> None:
        outcome = self.outcome
        for event in events:
            if isinstance(event, CommandRejected):
                # A keeper's command may come a block late (the pass got there first); the
                # traders' refused opens are counted.
                outcome.refused_opens += event.index >= first_open
            elif isinstance(event, LiquidationReceipt):
                outcome.steps[LiquidationStage(event.stage).name] += 1
                outcome.liquidated_notional += event.notional_quote_quantums
                outcome.fund_paid += event.fund_paid_quote_quantums
                outcome.bankrupt_steps += event.equity_quote_quantums < 0
            elif isinstance(event, Deleveraged):
                outcome.adl_events += 1
                outcome.adl_shortfall += event.shortfall_share_quote_quantums
            elif isinstance(event, LossSocialized):
                outcome.socialized += event.amount_quote_quantums
        outcome.opens += opens

    def _watch(self, timestamp_ns: int, liquidatable: set[SubaccountId]) -> None:
        """After the block: the traders the liquidation made healthy or flat (with the time
        since they became liquidatable), the backstops' lows, the open interest."""
        outcome = self.outcome
        named = {self.trader_index[s] for s in liquidatable if s in self.trader_index}
        for index in sorted(named | self.flagged):
            trader = self.traders[index]
            if index in named:
                if trader.liquidatable_since_ns is None:
                    trader.liquidatable_since_ns = timestamp_ns
                    self.flagged.add(index)
            elif trader.liquidatable_since_ns is not None:
                waited = timestamp_ns - trader.liquidatable_since_ns
                outcome.seconds_to_safe.append(waited / NS_PER_SECOND)
                trader.liquidatable_since_ns = None
                self.flagged.discard(index)
        fund, vault = self._fund(), self._vault()
        outcome.fund_low = min(outcome.fund_low, fund)
        outcome.vault_low = min(outcome.vault_low, vault)
        market = self.engine.state.markets[self.market.market_id]
        open_interest = market.open_interest_base_quantums * self._mark()
        open_interest //= self.market.base_quantums_per_unit
        outcome.open_interest_peak = max(outcome.open_interest_peak, open_interest)

    def _fund(self) -> int:
        """The insurance fund's cash and the equity of its trading book."""
        ledger = self.engine.state.ledger
        book = ledger.subaccounts.get(FUND_BOOK)
        held = 0 if book is None else self.engine.equity_of(book)
        return ledger.balance(INSURANCE, QUOTE_ASSET) + held

    def _vault(self) -> int:
        sub = self.engine.state.ledger.subaccounts.get(VAULT)
        return 0 if sub is None else self.engine.equity_of(sub)

    def finish(self) -> Outcome:
        outcome = self.outcome
        outcome.fund_end, outcome.vault_end = self._fund(), self._vault()
        outcome.deficit = self.engine.state.ledger.balance(DEFICIT, QUOTE_ASSET)
        ledger = self.engine.state.ledger
        for owner in (self.maker.address, self.keeper.signer.address,
                      *(t.signer.address for t in self.traders)):  # fmt: skip
            outcome.hidden_debt += max(-ledger.balance(SubaccountId(owner, 0), QUOTE_ASSET), 0)
        return outcome


_NAMING_FIELDS = ("subaccount", "counterparty", "maker", "taker", "source", "target")


_NAMING_BY_TYPE: dict[type[Event], tuple[str, ...]] = {}


def _naming_fields(kind: type[Event]) -> tuple[str, ...]:
    """The fields of an event type that may name a subaccount, found once per type: a block's
    dozens of events are read without asking each for six fields most of them lack."""
    found = _NAMING_BY_TYPE.get(kind)
    if found is None:
        names = {f.name for f in dataclasses.fields(kind)}
        found = _NAMING_BY_TYPE[kind] = tuple(f for f in _NAMING_FIELDS if f in names)
    return found


def _owner(subaccount: str) -> str:
    """The account of a subaccount as events name it (``0xabc…/0``)."""
    return subaccount.split("/", 1)[0]


def replay_venue(
    name: str,
    venues: Sequence[Bars],
    *,
    oracle_id: OracleId,
    start_ns: int,
    end_ns: int,
    warmup_ns: int,
    population: Population | None = None,
    block_ns: int = 30 * NS_PER_SECOND,
    warmup_block_ns: int = 15 * 60 * NS_PER_SECOND,
    on_block: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Warm the oracle and the margin up on prices alone (blocks of ``warmup_block_ns``), then
    fund the agents at ``start_ns`` and run blocks of ``block_ns`` until ``end_ns``."""
    venues = [read_at_blocks(v, block_ns, start_ns) for v in venues]
    replay = VenueReplay(name, venues, large_cap_market(oracle_id), population or Population(),
                         block_ns=block_ns)  # fmt: skip
    warm_start = start_ns - warmup_ns
    replay.list_market(warm_start - NS_PER_SECOND, max(block_ns, warmup_block_ns))
    warm_times = range(warm_start, start_ns, warmup_block_ns)
    times = range(start_ns + 2 * block_ns, end_ns, block_ns)
    total = len(warm_times) + len(times)
    for done, timestamp in enumerate(warm_times):
        replay.block(timestamp, replay.reports(timestamp))
        if on_block is not None:
            on_block(done + 1, total)
    replay.fund_everyone(start_ns)
    for done, timestamp in enumerate(times):
        replay.step(timestamp)
        if on_block is not None:
            on_block(len(warm_times) + done + 1, total)
    return replay.finish()


def replay_window(
    window: Window,
    data_dir: Path,
    *,
    crash_day: bool = False,
    population: Population | None = None,
    block_ns: int = 30 * NS_PER_SECOND,
    on_block: Callable[[int, int], None] | None = None,
) -> Outcome:
    """A crash window of ``sim.backtest``, or only its steepest 24 hours (``crash_day``)."""
    start_ns, end_ns = parse_utc_ns(window.start), parse_utc_ns(window.end)
    name = window.name
    if crash_day:
        assert window.crash_day, window
        start_ns = parse_utc_ns(window.crash_day)
        end_ns = start_ns + NS_PER_DAY
        name += f", {window.crash_day[:13]}h +24 h"
    warmup_ns = window.warmup_days * NS_PER_DAY
    venues = [read_bars(data_dir / f, start_ns=start_ns - warmup_ns - NS_PER_HOUR,
                        end_ns=end_ns + NS_PER_HOUR) for f in window.files]  # fmt: skip
    return replay_venue(
        name, venues, oracle_id=window.oracle_id, start_ns=start_ns, end_ns=end_ns,
        warmup_ns=warmup_ns, population=population, block_ns=block_ns, on_block=on_block,
    )  # fmt: skip
