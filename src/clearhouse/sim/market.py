"""A seeded synthetic market that drives the real engine: the workload of ``clearhouse demo``.

Index prices follow geometric Brownian motion with Poisson jumps; several publishers report them
with noise, one of them lagging and one quoting in USDT (converted by the venue at the USDT-USD
rate feed, which every publisher also reports, close to par); a market maker quotes every
market from the mark; a handful of deterministic traders (momentum, mean-reversion, noise) trade
with leverage, use stops, and sometimes overreach (their rejected orders are part of the
record). Everything comes from one ``random.Random(seed)``: the same seed gives the same
commands, byte for byte.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field, replace

from clearhouse.core.engine import Engine
from clearhouse.core.ids import (
    QUOTE_ASSET,
    Address,
    AssetId,
    MarketId,
    OracleId,
    Side,
    SubaccountId,
)
from clearhouse.core.liquidation import to_tick
from clearhouse.core.messages import (
    CancelAll,
    Command,
    Deposit,
    DepositOptionsVault,
    DepositVault,
    OrderType,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
)
from clearhouse.core.params import MarketKind, MarketParams
from clearhouse.core.units import NS_PER_SECOND, NS_PER_YEAR
from clearhouse.sim.keeper import Keeper
from clearhouse.sim.options_desk import OptionsDesk
from clearhouse.sim.signer import Signer, usdc_deposit
from clearhouse.sim.venue import (
    BTC_SATS,
    USDC,
    USDT_QUOTE,
    USDT_USD,
    VenueSpec,
    address_of,
    market_params,
)

COMMAND_TTL_NS = 60 * NS_PER_SECOND


@dataclass(slots=True)
class PricePath:
    """GBM with Merton jumps, stepped by block time (floats live only here, in the shell)."""

    price: float
    sigma_annual: float
    jumps_per_day: float
    jump_mean: float
    jump_stdev: float

    def step(self, rng: random.Random, dt_ns: int) -> float:
        dt = dt_ns / NS_PER_YEAR
        drift = -0.5 * self.sigma_annual**2 * dt
        shock = self.sigma_annual * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        jump = 0.0
        if rng.random() < self.jumps_per_day * dt * 365:
            jump = rng.gauss(self.jump_mean, self.jump_stdev)
        self.price *= math.exp(drift + shock + jump)
        return self.price


@dataclass(slots=True)
class Trader:
    signer: Signer
    style: str  # "momentum", "reversion" or "noise"
    leverage: float
    activity_per_hour: float
    history: dict[MarketId, deque[int]] = field(default_factory=dict)


@dataclass(slots=True)
class StableRate:
    """A stablecoin's USD rate: mean-reverting around par, a few basis points wide."""

    rate: float = 1.0
    reversion: float = 0.05  # share of the gap to par closed each step
    noise: float = 0.00005

    def step(self, rng: random.Random) -> float:
        self.rate += self.reversion * (1.0 - self.rate) + rng.gauss(0.0, self.noise)
        return self.rate


USDT_PUBLISHER = 1  # the publisher that quotes BTC and ETH in USDT


class DemoMarket:
    def __init__(self, seed: int, spec: VenueSpec, block_interval_ns: int) -> None:
        self.rng = random.Random(seed)
        self.spec = spec
        self.block_interval_ns = block_interval_ns
        self.paths = {
            OracleId("BTC-USD"): PricePath(60_000.0, 0.55, 3.0, -0.004, 0.012),
            OracleId("ETH-USD"): PricePath(3_000.0, 0.70, 3.0, -0.005, 0.015),
        }
        self.history: dict[OracleId, deque[float]] = {o: deque(maxlen=8) for o in self.paths}
        self.usdt = StableRate()
        self.publishers = [Signer(a) for a in spec.publishers]
        self.relayer = Signer(spec.relayer)
        self.maker = Signer(address_of("market-maker"))
        # Linear markets here; the options desk makes and trades the option markets.
        self.instruments = [m for m in market_params(spec) if m.kind is not MarketKind.OPTION]
        self.options = OptionsDesk(seed, self.publishers, self.relayer)
        styles = ["momentum", "reversion", "noise", "noise", "momentum", "reversion"]
        self.traders = [
            Trader(Signer(address_of(f"trader-{i}")), style, 2.0 + 2.0 * i, 6.0 + 2.0 * i)
            for i, style in enumerate(styles)
        ]
        # Leveraged traders who open near their limit and hold: the demo's liquidations.
        self.degens = [Signer(address_of(f"degen-{i}")) for i in range(6)]
        self.keeper = Keeper(Signer(address_of("keeper")), bid_share_ppm=500_000)
        self.vault_lp = Signer(address_of("vault-lp"))  # funds the market-making vault
        self.options_lp = Signer(address_of("options-vault-lp"))  # ... and the options AMM
        self.quoted_mid: dict[MarketId, int] = {}
        self.next_deposit_id = 1

    # ── One block of commands ───────────────────────────────────────────────────────────────

    def commands(self, engine: Engine, timestamp_ns: int, height: int) -> list[Command]:
        commands: list[Command] = []
        if height == 2:
            commands.extend(self._deposits(timestamp_ns))
            desk = self.options.deposits(self.next_deposit_id, timestamp_ns)
            commands.extend(desk)
            self.next_deposit_id += len(desk)
        commands.extend(self._reports(timestamp_ns))
        if height >= 3:
            commands.extend(self.options.commands(engine, timestamp_ns))
            commands.extend(self._quotes(engine, timestamp_ns))
            commands.extend(self._trades(engine, timestamp_ns))
            commands.extend(self._degen_orders(engine, timestamp_ns))
            commands.extend(self.keeper.commands(engine, timestamp_ns))
            commands.extend(self._vault_deposits(engine, timestamp_ns))
        return commands

    def _vault_deposits(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        """Once credited, each vault's depositor puts everything in: the market-making vault
        quotes both perpetuals and backstops their liquidations from then on; the options
        vault (a venue with options) quotes every active BTC option and hedges on BTC-PERP."""
        state = engine.state
        vaults: list[tuple[Signer, bool, type[DepositVault] | type[DepositOptionsVault]]] = [
            (self.vault_lp, self.vault_lp.address in state.vault.owners, DepositVault)
        ]
        if self.spec.options:
            held = self.options_lp.address in state.options_vault.owners
            vaults.append((self.options_lp, held, DepositOptionsVault))
        commands: list[Command] = []
        for lp, deposited, kind in vaults:
            balance = state.ledger.balance(SubaccountId(lp.address, 0), QUOTE_ASSET)
            if deposited or balance <= 0:
                continue
            commands.append(kind(
                signer=lp.address, nonce=lp.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                amount_quantums=balance,
            ))  # fmt: skip
        return commands

    def _degen_orders(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        """A flat degen re-deposits if it was wiped out and opens a 15-30× position."""
        blocks_per_hour = 3_600 * NS_PER_SECOND / self.block_interval_ns
        commands: list[Command] = []
        for degen in self.degens:
            held = engine.state.ledger.subaccounts.get(SubaccountId(degen.address, 0))
            if held is not None and held.positions:
                continue
            if self.rng.random() >= 1.5 / blocks_per_hour:
                continue
            if held is None or held.balance(AssetId("USDC")) < 5_000 * USDC:
                commands.append(self._deposit(degen.address, 10_000 * USDC, timestamp_ns))
                continue  # trades once the deposit is in
            instrument = self.rng.choice(self.instruments[:2])  # the perpetuals
            market = engine.state.markets[instrument.market_id]
            mark = market.mark_price_quantums
            equity = held.balance(AssetId("USDC"))
            notional = int(equity * self.rng.uniform(15, 30))
            size = notional * instrument.base_quantums_per_unit // mark
            size -= size % instrument.step_base_quantums
            commands.append(PlaceOrder(
                signer=degen.address, nonce=degen.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                market_id=instrument.market_id, side=self.rng.choice((Side.BUY, Side.SELL)),
                size_base_quantums=size, order_type=OrderType.MARKET,
                time_in_force=TimeInForce.IOC, slippage_ppm=3_000,
            ))  # fmt: skip
        return commands

    def _deposit(self, owner: Address, amount: int, timestamp_ns: int) -> Command:
        command = usdc_deposit(self.relayer, self.next_deposit_id, owner, amount, timestamp_ns,
                               ttl_ns=COMMAND_TTL_NS)  # fmt: skip
        self.next_deposit_id += 1
        return command

    def _reports(self, timestamp_ns: int) -> list[Command]:
        truth = {}
        for oracle_id, path in self.paths.items():
            truth[oracle_id] = path.step(self.rng, self.block_interval_ns)
            self.history[oracle_id].append(truth[oracle_id])
        usdt_rate = self.usdt.step(self.rng)
        commands: list[Command] = []
        for index, publisher in enumerate(self.publishers):
            lagging = index == len(self.publishers) - 1  # this one reports prices 20 s old
            in_usdt = index == USDT_PUBLISHER  # BTC/USDT and ETH/USDT, as a USDT venue quotes
            reports = [self._rate_report(usdt_rate, timestamp_ns)]
            for oracle_id, price in truth.items():
                seen = self.history[oracle_id][0] if lagging else price
                noisy = seen * (1 + self.rng.gauss(0.0, 0.0004))
                if in_usdt:
                    noisy /= usdt_rate  # USDT per unit: the venue converts it back to USD
                reports.append(PriceReport(
                    oracle_id=oracle_id, price_quantums=round(noisy * USDC),
                    confidence_quantums=round(noisy * USDC * 0.0005),
                    timestamp_ns=timestamp_ns - self.rng.randrange(0, 2 * NS_PER_SECOND),
                    quote=USDT_QUOTE.quote if in_usdt else "USD",
                ))  # fmt: skip
            commands.append(ReportPrices(
                signer=publisher.address, nonce=publisher.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS, reports=tuple(reports),
            ))  # fmt: skip
        return commands

    def _rate_report(self, rate: float, timestamp_ns: int) -> PriceReport:
        """USDT-USD as one publisher sees it: USD quantums per USDT."""
        seen = rate * (1 + self.rng.gauss(0.0, 0.00002))
        return PriceReport(
            oracle_id=USDT_USD, price_quantums=round(seen * USDC),
            confidence_quantums=round(seen * USDC * 0.0001),
            timestamp_ns=timestamp_ns - self.rng.randrange(0, 2 * NS_PER_SECOND),
        )  # fmt: skip

    def _deposits(self, timestamp_ns: int) -> list[Command]:
        funded = [(self.maker.address, 0, "USDC", 5_000_000 * USDC)]
        funded.append((self.keeper.signer.address, 0, "USDC", 1_000_000 * USDC))
        funded += [(t.signer.address, 0, "USDC", 100_000 * USDC) for t in self.traders]
        funded.append((self.traders[0].signer.address, 0, "BTC", 2 * BTC_SATS))
        funded.append((self.vault_lp.address, 0, "USDC", 2_000_000 * USDC))
        if self.spec.options:
            funded.append((self.options_lp.address, 0, "USDC", 1_000_000 * USDC))
        commands: list[Command] = []
        for owner, number, asset, amount in funded:
            commands.append(Deposit(
                signer=self.relayer.address, nonce=self.relayer.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS, deposit_id=self.next_deposit_id,
                owner=owner, subaccount_number=number, asset_id=AssetId(asset),
                amount_quantums=amount,
            ))  # fmt: skip
            self.next_deposit_id += 1
        return commands

    # ── The market maker ────────────────────────────────────────────────────────────────────

    def _quotes(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        commands: list[Command] = []
        for instrument in self.instruments:
            market = engine.state.markets.get(instrument.market_id)  # gone a day after expiry
            if market is None or market.status != 1 or market.mark_price_quantums == 0:
                continue
            mark = market.mark_price_quantums
            last = self.quoted_mid.get(instrument.market_id)
            if last is not None and abs(mark - last) * 10_000 < 8 * last:
                continue  # requote only when the mark moved 8 bp
            self.quoted_mid[instrument.market_id] = mark
            commands.append(CancelAll(
                signer=self.maker.address, nonce=self.maker.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                market_id=instrument.market_id,
            ))  # fmt: skip
            commands.extend(self._ladder(instrument, mark, timestamp_ns))
        return commands

    def _ladder(self, instrument: MarketParams, mark: int, timestamp_ns: int) -> list[Command]:
        commands: list[Command] = []
        notional = 60_000 * USDC
        for level in range(3):
            spread_bp = 4 + 6 * level
            size = max(
                instrument.min_order_base_quantums,
                notional * instrument.base_quantums_per_unit // mark,
            )
            size -= size % instrument.step_base_quantums
            for side in (Side.BUY, Side.SELL):
                raw = mark * (10_000 - side * spread_bp) // 10_000
                price = to_tick(raw, instrument.tick_quantums, side)
                commands.append(PlaceOrder(
                    signer=self.maker.address, nonce=self.maker.nonce(timestamp_ns),
                    expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
                    market_id=instrument.market_id, side=side, size_base_quantums=size,
                    price_quantums=price, time_in_force=TimeInForce.POST_ONLY,
                ))  # fmt: skip
        return commands

    # ── The traders ─────────────────────────────────────────────────────────────────────────

    def _trades(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        commands: list[Command] = []
        blocks_per_hour = 3_600 * NS_PER_SECOND / self.block_interval_ns
        for trader in self.traders:
            if self.rng.random() >= trader.activity_per_hour / blocks_per_hour:
                continue
            instrument = self.rng.choice(self.instruments)
            market = engine.state.markets.get(instrument.market_id)
            if market is None or market.status != 1 or market.mark_price_quantums == 0:
                continue
            side = self._choose_side(trader, instrument, market.mark_price_quantums)
            commands.extend(
                self._order(trader, instrument, side, market.mark_price_quantums, timestamp_ns)
            )
        return commands

    def _choose_side(self, trader: Trader, instrument: MarketParams, mark: int) -> Side:
        seen = trader.history.setdefault(instrument.market_id, deque(maxlen=20))
        seen.append(mark)
        trend = seen[-1] - seen[0]
        if trader.style == "momentum" and trend:
            return Side.BUY if trend > 0 else Side.SELL
        if trader.style == "reversion" and trend:
            return Side.SELL if trend > 0 else Side.BUY
        return self.rng.choice((Side.BUY, Side.SELL))

    def _order(
        self, trader: Trader, instrument: MarketParams, side: Side, mark: int, timestamp_ns: int
    ) -> list[Command]:
        notional = int(100_000 * USDC * trader.leverage * self.rng.uniform(0.05, 0.4))
        size = max(
            instrument.min_order_base_quantums, notional * instrument.base_quantums_per_unit // mark
        )
        size -= size % instrument.step_base_quantums
        signer = trader.signer
        base = PlaceOrder(
            signer=signer.address, nonce=signer.nonce(timestamp_ns),
            expiry_ns=timestamp_ns + COMMAND_TTL_NS, subaccount_number=0,
            market_id=instrument.market_id, side=side, size_base_quantums=size,
        )  # fmt: skip
        roll = self.rng.random()
        if roll < 0.6:
            order = replace(
                base, order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
                slippage_ppm=5_000,
            )  # fmt: skip
        elif roll < 0.85:
            price = mark - side * self.rng.randint(1, 30) * instrument.tick_quantums
            order = replace(
                base, price_quantums=price - price % instrument.tick_quantums,
                time_in_force=TimeInForce.GTT, good_til_ns=timestamp_ns + 600 * NS_PER_SECOND,
            )  # fmt: skip
        else:
            trigger = mark + side * mark // 200
            trigger -= trigger % instrument.tick_quantums
            order = replace(
                base, order_type=OrderType.STOP_MARKET, time_in_force=TimeInForce.IOC,
                trigger_price_quantums=trigger, slippage_ppm=10_000,
            )  # fmt: skip
        return [order]
