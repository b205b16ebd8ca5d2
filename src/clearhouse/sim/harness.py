"""The deterministic simulation harness (TigerBeetle's VOPR, FoundationDB's simulation).

Each seed builds a venue and drives the real engine through a random workload with injected
faults: oracle outages, a publisher reporting a 1000× outlier, a lagging publisher, crashes with
recovery from the journal at any block, and a torn last write (a block produced but never made
durable). The venue is governed: now and then its risk steward moves a parameter a step and its
guardian tightens one (margins then phase in), so the watch and recovery see parameters move.
After every block it checks the state invariants (``core.invariants``) and a reference
auditor that re-derives balances and positions from events; after every recovery, that the
replayed state root equals the one before the crash. A failure names its seed and block, so
``clearhouse simulate --seed N`` reproduces it exactly.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from typing import Any

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain
from clearhouse.core import invariants
from clearhouse.core.engine import Engine
from clearhouse.core.errors import InvariantViolation
from clearhouse.core.governance import REGISTRY, read_field
from clearhouse.core.ids import QUOTE_ASSET, Address, AssetId, OracleId, Side, SubaccountId
from clearhouse.core.messages import (
    ActionKind,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    CommandRejected,
    Deleveraged,
    Deposit,
    DepositVault,
    GovAction,
    GuardianAct,
    Liquidated,
    LiquidationReceipt,
    MarketSettled,
    OrderFilled,
    OrderType,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    SetMarginMode,
    SetupGovernance,
    StewardUpdate,
    TimeInForce,
    TransferCollateral,
    Withdraw,
    WithdrawVault,
)
from clearhouse.core.params import USD, GovernanceParams, MarketKind, MarketParams
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.sim.auditor import AuditFailure, Auditor
from clearhouse.sim.keeper import Keeper
from clearhouse.sim.signer import Signer
from clearhouse.sim.venue import (
    BTC_SATS,
    ETH_GWEI,
    GENESIS_NS,
    USDC,
    USDT_QUOTE,
    USDT_USD,
    VenueSpec,
    address_of,
    default_venue,
    genesis_commands,
    market_params,
    report_surface,
    synthetic_surface,
)

TTL_NS = 120 * NS_PER_SECOND
GOVERNED = (  # what the harness's steward and guardian move
    "market.margin.initial_margin_ppm",
    "market.margin.maintenance_share_ppm",
    "market.taker_fee_ppm",
    "market.price_band_ppm",
    "market.mark_band_ppm",
    "market.liquidation.open_interest_cap_base_quantums",
    "market.funding.interest_ppb_per_8h",
)


@dataclass(frozen=True, slots=True)
class Violation:
    seed: int
    height: int
    what: str


@dataclass(frozen=True, slots=True)
class SeedResult:
    seed: int
    blocks: int
    commands: int
    rejected: int
    crashes: int
    violation: Violation | None
    liquidations: int = 0  # ladder steps (book, auction, deleveraging) the seed went through
    deleveraged: int = 0  # ADL fills
    option_fills: int = 0  # fills in option markets
    settlements: int = 0  # markets settled at expiry (options and the future)
    head_hash: bytes = b""  # the last block's hash: pins every command, event and root of the run
    receipts: int = 0  # liquidation receipts, each rechecked by the auditor


USDT_PUBLISHER = 2  # the publisher that quotes BTC and ETH in USDT


class _Workload:
    """Random commands for one seed; it reads the engine's state only to pick plausible ones."""

    def __init__(self, rng: random.Random, chain: Chain, spec: VenueSpec) -> None:
        self.rng = rng
        self.chain = chain
        self.prices = {OracleId("BTC-USD"): 60_000.0, OracleId("ETH-USD"): 3_000.0}
        self.usdt_rate = 1.0  # USD per USDT: near par; one publisher quotes in USDT
        self.markets = market_params(spec)
        self.listed = {m.market_id for m in self.markets}
        self.traders = [Signer(address_of(f"sim-trader-{i}")) for i in range(5)]
        self.maker = Signer(address_of("sim-maker"))
        self.degens = [Signer(address_of(f"sim-degen-{i}")) for i in range(3)]
        self.keepers = [
            Keeper(Signer(address_of("sim-keeper-0")), bid_share_ppm=250_000),
            Keeper(Signer(address_of("sim-keeper-1")), subaccount_number=3),
        ]
        self.vault_lp = Signer(address_of("sim-vault-lp"))  # funds the market-making vault
        self.steward = Signer(address_of("sim-steward"))
        self.guardian = Signer(address_of("sim-guardian"))
        self.deposit_id = 0
        self.outage_blocks = 0
        self.surface_ns = 0  # when the last volatility surface was published

    def block_commands(self, publishers: list[Signer], relayer: Signer, now: int) -> list[Command]:
        """One block's commands: reports, random users, the maker, the degens, the keepers."""
        engine = self.chain.engine
        batch = self.reports(publishers, now) + self.user_commands(relayer, now)
        batch += self.maker_quotes(engine, now) + self.degen_orders(now)
        for keeper in self.keepers:
            batch += keeper.commands(engine, now)
        return batch + self.vault_commands(engine, now)

    def vault_commands(self, engine: Engine, now: int) -> list[Command]:
        """The vault's depositor puts its quote in once it is credited, and now and then
        redeems a tenth of its shares (refused inside the lock-up or beyond free collateral)."""
        lp = self.vault_lp.address
        common: dict[str, Any] = {
            "signer": lp,
            "nonce": self.vault_lp.nonce(now),
            "expiry_ns": now + TTL_NS,
        }
        held = engine.state.vault.owners.get(lp)
        balance = engine.state.ledger.balance(SubaccountId(lp, 0), QUOTE_ASSET)
        if held is None and balance > 0:
            return [DepositVault(**common, subaccount_number=0, amount_quantums=balance)]
        if held is not None and self.rng.random() < 0.02:
            return [WithdrawVault(**common, subaccount_number=0, shares=held.shares // 10 or 1)]
        return []

    def opening_deposits(self, relayer: Signer, now: int) -> list[Command]:
        """The maker, the keepers and the leveraged traders start funded."""
        funded = [(self.maker.address, 0, 50_000_000 * USDC)]
        funded += [(k.signer.address, k.subaccount_number, 2_000_000 * USDC) for k in self.keepers]
        funded += [(d.address, 0, 20_000 * USDC) for d in self.degens]
        funded.append((self.vault_lp.address, 0, 1_000_000 * USDC))
        commands: list[Command] = []
        for owner, number, amount in funded:
            self.deposit_id += 1
            commands.append(Deposit(
                signer=relayer.address, nonce=relayer.nonce(now), expiry_ns=now + TTL_NS,
                deposit_id=self.deposit_id, owner=owner, subaccount_number=number,
                asset_id=AssetId("USDC"), amount_quantums=amount,
            ))  # fmt: skip
        return commands

    def maker_quotes(self, engine: Engine, now: int) -> list[Command]:
        """Every few blocks the maker replaces a ladder of post-only quotes around the price, so
        that liquidations find a book (and sometimes, in a crash, do not)."""
        if self.rng.random() < 0.6:
            return []
        maker = self.maker
        commands: list[Command] = []
        for market in self.tradable():
            commands.append(CancelAll(
                signer=maker.address, nonce=maker.nonce(now), expiry_ns=now + TTL_NS,
                subaccount_number=0, market_id=market.market_id,
            ))  # fmt: skip
            for level in range(1, 4):
                for side in (Side.BUY, Side.SELL):
                    commands.append(PlaceOrder(
                        signer=maker.address, nonce=maker.nonce(now), expiry_ns=now + TTL_NS,
                        subaccount_number=0, market_id=market.market_id, side=side,
                        size_base_quantums=self._notional_size(
                            market, 30_000 if market.kind is MarketKind.OPTION else 150_000
                        ),
                        price_quantums=self._price(market, -side * 0.001 * level),
                        time_in_force=TimeInForce.POST_ONLY,
                    ))  # fmt: skip
        return commands

    def degen_orders(self, now: int) -> list[Command]:
        """Leveraged traders open positions near their limit: the ones that get liquidated."""
        commands: list[Command] = []
        for degen in self.degens:
            if self.rng.random() > 0.05:
                continue
            market = self.rng.choice(self.tradable())
            leverage = self.rng.uniform(1, 4) if market.kind is MarketKind.OPTION else 1.0
            size = self._notional_size(market, 20_000 * self.rng.uniform(8, 30) / leverage)
            if size < market.min_order_base_quantums:
                continue
            commands.append(PlaceOrder(
                signer=degen.address, nonce=degen.nonce(now), expiry_ns=now + TTL_NS,
                subaccount_number=0, market_id=market.market_id,
                side=self.rng.choice((Side.BUY, Side.SELL)), size_base_quantums=size,
                order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC, slippage_ppm=5_000,
            ))  # fmt: skip
        return commands

    def step_prices(self, dt_ns: int) -> None:
        crash = self.rng.random() < 0.01  # a 2020-03-12 day: a sudden 8-15% drop
        for oracle_id, price in self.prices.items():
            shock = self.rng.gauss(0.0, 0.8 * math.sqrt(dt_ns / (365 * 86_400 * NS_PER_SECOND)))
            move = -self.rng.uniform(0.08, 0.15) if crash else shock
            self.prices[oracle_id] = max(price * math.exp(move), 1.0)

    def reports(self, publishers: list[Signer], now: int) -> list[Command]:
        if self.outage_blocks > 0:
            self.outage_blocks -= 1
            return []
        if self.rng.random() < 0.006:  # an outage of one to a dozen blocks
            self.outage_blocks = self.rng.randint(1, 12)
        liar = self.rng.randrange(len(publishers)) if self.rng.random() < 0.05 else -1
        self.usdt_rate += 0.1 * (1.0 - self.usdt_rate) + self.rng.gauss(0.0, 0.0002)
        commands: list[Command] = []
        for index, publisher in enumerate(publishers):
            if self.rng.random() < 0.05:
                continue  # a publisher that lags or drops a round
            in_usdt = index == USDT_PUBLISHER
            rate = PriceReport(
                oracle_id=USDT_USD, price_quantums=round(self.usdt_rate * USDC),
                confidence_quantums=0, timestamp_ns=now,
            )  # fmt: skip
            reports = (rate, *(
                PriceReport(
                    oracle_id=oracle_id,
                    price_quantums=round(price * USDC * (1000 if index == liar else 1)
                                         * (1 + self.rng.gauss(0, 0.0005))
                                         / (self.usdt_rate if in_usdt else 1.0)),
                    confidence_quantums=0,
                    timestamp_ns=now,
                    quote=USDT_QUOTE.quote if in_usdt else USD,
                )
                for oracle_id, price in self.prices.items()
            ))  # fmt: skip
            commands.append(ReportPrices(
                signer=publisher.address, nonce=publisher.nonce(now), expiry_ns=now + TTL_NS,
                reports=reports,
            ))  # fmt: skip
        if now - self.surface_ns > 5 * 60 * NS_PER_SECOND or self.rng.random() < 0.2:
            self.surface_ns = now  # publishers refit the smile: its level and skew wander
            slices = synthetic_surface(
                now, atm_vol=self.rng.uniform(0.45, 0.9), skew=self.rng.uniform(-0.5, 0.1)
            )
            for publisher in publishers:  # the venue takes the median of a quorum of them
                if self.rng.random() < 0.05:
                    continue
                commands.append(
                    report_surface(publisher.address, publisher.nonce(now), now, slices)
                )
        return commands

    def user_commands(self, relayer: Signer, now: int) -> list[Command]:
        found = [self._one(relayer, now) for _ in range(self.rng.randint(0, 8))]
        if self.rng.random() < 0.03:
            found.append(self._govern(now))
        return found

    def governance(self, operator: Address, nonce: int, now: int) -> SetupGovernance:
        """The hand-over at genesis: a council (idle here), the steward and the guardian; a
        ten-minute phase-in, so that margin increases step through a run."""
        params = GovernanceParams(
            council=(address_of("sim-council"),), threshold=1, steward=self.steward.address,
            guardian=self.guardian.address, phase_in_ns=600 * NS_PER_SECOND,
        )  # fmt: skip
        return SetupGovernance(signer=operator, nonce=nonce, expiry_ns=now + TTL_NS, params=params)

    def _govern(self, now: int) -> Command:
        """The steward moves a perpetual's parameter a step either way (sometimes two: refused),
        or the guardian tightens one at once."""
        rng = self.rng
        market = rng.choice([m for m in self.markets if m.kind is MarketKind.PERPETUAL])
        name = rng.choice(GOVERNED)
        entry = REGISTRY[name]
        current = read_field(self.chain.engine.state.markets[market.market_id].params, entry.path)
        steps = rng.choice((-1, 1, 1, 2))
        value = min(max(current + steps * entry.max_step(current), entry.lower), entry.upper)
        action = GovAction(
            kind=ActionKind.SET_PARAM, name=name, target=market.market_id, value=value
        )
        signer, kind = (
            (self.guardian, GuardianAct) if rng.random() < 0.3 else (self.steward, StewardUpdate)
        )
        return kind(
            signer=signer.address, nonce=signer.nonce(now), expiry_ns=now + TTL_NS,
            actions=(action,),
        )  # fmt: skip

    def _one(self, relayer: Signer, now: int) -> Command:
        rng = self.rng
        trader = rng.choice(self.traders)
        common: dict[str, Any] = {
            "signer": trader.address, "nonce": trader.nonce(now), "expiry_ns": now + TTL_NS
        }  # fmt: skip
        roll = rng.random()
        if roll < 0.08:
            return self._deposit(relayer, trader.address, now)
        if roll < 0.12:
            asset = rng.choice(("USDC", "USDC", "BTC"))
            amount = rng.randint(1, 20_000) * (USDC if asset == "USDC" else BTC_SATS // 100)
            return Withdraw(
                subaccount_number=rng.randint(0, 1),
                asset_id=AssetId(asset),
                amount_quantums=amount,
                **common,
            )
        if roll < 0.15:
            return TransferCollateral(
                source_number=0,
                target_number=1,
                asset_id=AssetId("USDC"),
                amount_quantums=rng.randint(1, 5_000) * USDC,
                **common,
            )
        if roll < 0.25:
            return CancelOrder(subaccount_number=0, order_id=self._some_order_id(), **common)
        if roll < 0.28:
            return CancelAll(subaccount_number=0, **common)
        if roll < 0.31:
            return SetMarginMode(
                subaccount_number=rng.randint(0, 1), portfolio=rng.random() < 0.7, **common
            )
        if roll < 0.33:
            market = rng.choice(self.tradable())
            return AmendOrder(
                subaccount_number=0,
                order_id=self._some_order_id(),
                price_quantums=self._price(market, rng.uniform(-0.02, 0.02)),
                size_base_quantums=self._size(market),
                **common,
            )
        return self._order(common)

    def _order(self, common: dict[str, Any]) -> Command:
        rng = self.rng
        market = rng.choice(self.tradable())
        side = rng.choice((Side.BUY, Side.SELL))
        kind = rng.random()
        fields: dict[str, Any] = {
            "subaccount_number": rng.choice((0, 0, 0, 1)), "market_id": market.market_id,
            "side": side, "size_base_quantums": self._size(market),
            "reduce_only": rng.random() < 0.15,
            "client_order_id": rng.choice((0, 0, rng.randint(1, 50))),
        }  # fmt: skip
        if kind < 0.25:
            fields.update(
                order_type=OrderType.MARKET,
                time_in_force=TimeInForce.IOC,
                slippage_ppm=rng.randint(1_000, 50_000),
            )
        elif kind < 0.35:
            trigger = self._price(market, rng.uniform(-0.05, 0.05))
            order_type = rng.choice(list(OrderType)[2:])
            is_limit = order_type in (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
            fields.update(
                order_type=order_type,
                trigger_price_quantums=trigger,
                price_quantums=self._price(market, rng.uniform(-0.05, 0.05)) if is_limit else 0,
                time_in_force=TimeInForce.GTC if is_limit else TimeInForce.IOC,
                slippage_ppm=0 if is_limit else 20_000,
            )
        else:
            tif = rng.choice(list(TimeInForce))
            fields.update(
                price_quantums=self._price(market, rng.uniform(-0.03, 0.03)),
                time_in_force=tif,
                good_til_ns=int(common["expiry_ns"]) + rng.randint(0, 600) * NS_PER_SECOND
                if tif is TimeInForce.GTT
                else 0,
            )
        return PlaceOrder(**common, **fields)

    def _deposit(self, relayer: Signer, owner: Address, now: int) -> Command:
        self.deposit_id += 1
        asset = self.rng.choice(("USDC", "USDC", "USDC", "BTC", "ETH"))
        scale = {"USDC": 1_000 * USDC, "BTC": BTC_SATS // 10, "ETH": ETH_GWEI}[asset]
        return Deposit(
            signer=relayer.address, nonce=relayer.nonce(now), expiry_ns=now + TTL_NS,
            deposit_id=self.deposit_id, owner=owner, subaccount_number=self.rng.randint(0, 1),
            asset_id=AssetId(asset), amount_quantums=self.rng.randint(1, 200) * scale,
        )  # fmt: skip

    def tradable(self) -> list[MarketParams]:
        """The listed markets still trading: perpetuals, the future, the short-dated options
        and the default series' options nearest the money."""
        markets = self.chain.engine.state.markets
        series = sorted(
            (m.params for m in markets.values() if m.params.market_id not in self.listed),
            key=lambda p: (p.expiry_ns, p.market_id),
        )[:4]
        found = [m for m in (*self.markets, *series) if m.market_id in markets]
        return [m for m in found if markets[m.market_id].status is MarketStatus.ACTIVE]

    def _price(self, market: MarketParams, offset: float) -> int:
        if market.kind is MarketKind.OPTION:  # an option is quoted around its own mark
            mark = self.chain.engine.state.markets[market.market_id].mark_price_quantums
            price = int(mark * (1 + 5 * offset))
        else:
            price = int(self.prices[market.oracle_id] * (1 + offset) * USDC)
        return max(price - price % market.tick_quantums, market.tick_quantums)

    def _size(self, market: MarketParams) -> int:
        return market.min_order_base_quantums * self.rng.choice(
            (1, 1, 2, 5, 10, 40)
        ) + self.rng.choice((0, market.step_base_quantums))

    def _notional_size(self, market: MarketParams, notional_usdc: float) -> int:
        units = notional_usdc / self.prices[market.oracle_id]
        size = int(units * market.base_quantums_per_unit)
        return size - size % market.step_base_quantums

    def _some_order_id(self) -> int:
        top = self.chain.engine.state.next_order_id
        return self.rng.randint(max(1, top - 30), max(1, top))


def run_seed(seed: int, *, blocks: int = 400) -> SeedResult:
    """One seeded run; never raises for a violation: it is returned, with the seed and height."""
    rng = random.Random(seed)
    spec = default_venue(
        GENESIS_NS, future_expiry_hours=1, oracle_staleness_ns=30 * NS_PER_SECOND, options=True,
        series_strikes_each_side=1,
    )  # fmt: skip
    journal = MemoryJournal()
    chain = Chain(spec.venue, journal)
    workload = _Workload(rng, chain, spec)
    publishers = [Signer(a) for a in spec.publishers]
    relayer = Signer(spec.relayer)
    auditor = Auditor()
    now = GENESIS_NS
    commands = rejected = crashes = liquidations = deleveraged = option_fills = settlements = 0
    receipts = 0
    genesis = _genesis(spec, workload, now)
    try:
        executed = chain.produce(now, genesis)
        chain.flush()
        auditor.observe(executed.events)
        opening = workload.opening_deposits(relayer, now)
        while chain.height < blocks:
            dt = rng.choice((2, 5, 10, 10, 20, 20, 20, 30)) * NS_PER_SECOND
            now += dt
            workload.step_prices(dt)
            batch = opening + workload.block_commands(publishers, relayer, now)
            opening = []
            executed = chain.produce(now, batch)
            commands += len(batch)
            rejected += sum(isinstance(e, CommandRejected) for e in executed.events)
            liquidations, deleveraged, receipts = _count_liquidations(
                executed.events, liquidations, deleveraged, receipts
            )
            option_fills, settlements = _count_options(
                chain.engine, executed.events, option_fills, settlements
            )
            _check_state(chain.engine)
            fault = rng.random()
            if fault < 0.01:  # torn write: the block never became durable, and the node died
                auditor = _recover(chain, workload, root_before_crash=None)
                crashes += 1
                continue
            chain.flush()
            auditor.observe(executed.events)
            auditor.check(chain.engine)
            if fault < 0.02:  # crash after a durable block: recovery must land on the same root
                root = chain.engine.state.tree.root()
                auditor = _recover(chain, workload, root_before_crash=root)
                crashes += 1
    except (InvariantViolation, AuditFailure, AssertionError) as failure:
        what = f"{type(failure).__name__}: {failure}"
        violation = Violation(seed, chain.height, what)
        return SeedResult(seed, chain.height, commands, rejected, crashes, violation)
    return SeedResult(
        seed, chain.height, commands, rejected, crashes, None, liquidations, deleveraged,
        option_fills, settlements, chain.parent_hash, receipts,
    )  # fmt: skip


def _genesis(spec: VenueSpec, workload: _Workload, now: int) -> list[Command]:
    """The default venue's listings, then its hand-over to governance."""
    genesis = genesis_commands(spec)
    nonce = max(c.nonce for c in genesis) + 1
    return [*genesis, workload.governance(spec.operator, nonce, now)]


def _check_state(engine: Engine) -> None:
    """Every invariant, and the liquidation watch and the trigger index against full scans."""
    invariants.check(engine.state)
    missed = engine.unwatched_liquidatable()
    if missed:
        raise InvariantViolation(f"the liquidation watch misses {missed[:3]}")
    misindexed = engine.misindexed_triggers()
    if misindexed:
        raise InvariantViolation(f"the trigger index misplaces {misindexed[:3]}")


def _count_liquidations(
    events: Iterable[object], steps: int, fills: int, receipts: int
) -> tuple[int, int, int]:
    """Running counts of ladder steps, ADL fills and liquidation receipts."""
    for event in events:
        steps += isinstance(event, Liquidated)
        fills += isinstance(event, Deleveraged)
        receipts += isinstance(event, LiquidationReceipt)
    return steps, fills, receipts


def _count_options(
    engine: Engine, events: Iterable[object], fills: int, settlements: int
) -> tuple[int, int]:
    """Running counts of option fills and of markets settled at expiry."""
    markets = engine.state.markets
    for event in events:
        if isinstance(event, OrderFilled):
            fills += markets[event.market_id].params.kind is MarketKind.OPTION
        settlements += isinstance(event, MarketSettled)
    return fills, settlements


def _recover(chain: Chain, workload: _Workload, *, root_before_crash: bytes | None) -> Auditor:
    """Replay the durable journal into a fresh engine; a new auditor follows the replay."""
    auditor = Auditor()
    chain.recover(on_executed=lambda executed: auditor.observe(executed.events))
    if root_before_crash is not None:
        recovered = chain.engine.state.tree.root()
        if recovered != root_before_crash:
            raise InvariantViolation(
                f"recovered root 0x{recovered.hex()} != root before the crash "
                f"0x{root_before_crash.hex()}"
            )
    # A torn block's deposits were never credited: the relayer resends from the durable id.
    workload.deposit_id = chain.engine.state.last_deposit_id
    auditor.check(chain.engine)
    return auditor


def simulate(
    seeds: range,
    *,
    blocks: int = 400,
    on_seed: Callable[[SeedResult], None] | None = None,
    workers: int = 1,
) -> list[SeedResult]:
    """Every seed in order, up to and including the first that fails. ``workers`` > 1 runs
    seeds in that many processes; the results, and where a failure stops them, are the same."""
    results = []
    with closing(_results_in_order(seeds, blocks, workers)) as ordered:
        for result in ordered:
            results.append(result)
            if on_seed is not None:
                on_seed(result)
            if result.violation is not None:
                break
    return results


def _results_in_order(seeds: range, blocks: int, workers: int) -> Generator[SeedResult]:
    if workers <= 1 or len(seeds) <= 1:
        yield from (run_seed(seed, blocks=blocks) for seed in seeds)
        return
    # Spawned, not forked (a child starts clean); a few seeds ahead of the one read, so that a
    # failure stops the run after at most that many more.
    ahead = 2 * workers
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        queued = iter(seeds)
        pending = deque(pool.submit(run_seed, s, blocks=blocks) for s in islice(queued, ahead))
        try:
            while pending:
                result = pending.popleft().result()
                following = next(queued, None)
                if following is not None:
                    pending.append(pool.submit(run_seed, following, blocks=blocks))
                yield result
        finally:  # stopped early (a violation): what was queued is not run, nor waited for
            pool.shutdown(wait=False, cancel_futures=True)
