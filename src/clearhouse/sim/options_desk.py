"""The demo's options desk: volatility publishers (each fits its own view of a BTC option chain,
built like Deribit's, and reports the fitted surface), a market maker quoting every BTC option
of the next ten days from the published surface (priced with the vectorized Black-76), four
options traders whose portfolios the summary reports (a covered call and a protective put in
portfolio mode, a strangle seller in portfolio mode, and a call buyer in standard mode), and flow
traders who buy and sell single options at the best price on the book, the desk's or the
options AMM's."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from clearhouse.core import surface
from clearhouse.core.engine import Engine
from clearhouse.core.ids import AssetId, MarketId, OracleId, Side, SubaccountId
from clearhouse.core.messages import (
    CancelAll,
    Command,
    Deposit,
    PlaceOrder,
    SetMarginMode,
    TimeInForce,
)
from clearhouse.core.params import MarketKind, MarketParams
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.pricing import black76, svi
from clearhouse.pricing.chain import forward_basis_ppm, quotes_for_fit, synthetic_quotes
from clearhouse.sim.signer import Signer
from clearhouse.sim.venue import BTC_SATS, USDC, address_of, report_surface, synthetic_surface

TTL_NS = 60 * NS_PER_SECOND
BTC_USD = OracleId("BTC-USD")
# Each publisher's fit of its chain costs ~60 ms of CPU; every ten minutes keeps a surface
# well inside the venue's 15-minute staleness bound (``surface_staleness_ns``).
SURFACE_EVERY_NS = 10 * 60 * NS_PER_SECOND
MAKER_BOOKS = 5  # maker subaccounts, one per expiry (mod 5)
DAY_NS = 86_400 * NS_PER_SECOND
DESK_HORIZON_NS = 10 * DAY_NS  # the desk's maker quotes expiries up to this far out
FLOW_TRADERS = 3
FLOW_EVERY_NS = (5 * 60 * NS_PER_SECOND, 15 * 60 * NS_PER_SECOND)  # between a trader's trades
FLOW_POSITIONS_MAX = 12  # past this many options held, a flow trader only closes


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    portfolio: bool
    legs: tuple[tuple[str, float, Side], ...]  # (which option, BTC, side); "perp" for BTC-PERP


STRATEGIES = (
    Strategy("covered-call", True, (("perp", 2.0, Side.BUY), ("call+4000", 2.0, Side.SELL))),
    Strategy("protective-put", True, (("perp", 2.0, Side.BUY), ("put-4000", 2.0, Side.BUY))),
    Strategy(
        "strangle-seller", True, (("call+6000", 6.0, Side.SELL), ("put-6000", 6.0, Side.SELL))
    ),
    Strategy("call-buyer", False, (("call+2000", 3.0, Side.BUY),)),
)


def publisher_surface(
    seed: int, timestamp_ns: int, expiries_ns: list[int], forward: float
) -> tuple[surface.SviSlice, ...]:
    """A publisher's surface: its own view of the chain (``chain.synthetic_quotes``: marks
    rounded to the tick and 0.01 volatility point, bid/ask around them), fitted
    (``svi.calibrate``) and checked as the engine will check it, each slice with the chain's
    forward of its expiry as a basis to the index (``chain.forward_basis_ppm``: the demo's
    chains carry no basis, so 0); empty if that fails (no index yet, or a refused surface: a
    publisher never sends what the venue would refuse)."""
    if forward <= 0:
        return ()
    quotes = synthetic_quotes(seed, timestamp_ns, expiries_ns, forward=forward)
    fit = svi.calibrate(quotes_for_fit(quotes, timestamp_ns))
    if fit.surface is None or len(fit.surface.slices) != len(expiries_ns):
        return ()
    slices = svi.core_slices(fit.surface, expiries_ns, forward_basis_ppm(quotes, forward))
    return () if surface.problems(slices, timestamp_ns) else slices


class OptionsDesk:
    def __init__(self, seed: int, publishers: list[Signer], relayer: Signer) -> None:
        self.rng = random.Random(seed ^ 0x0F7)
        self.seed = seed
        self.publishers = publishers
        self.relayer = relayer
        self.maker = Signer(address_of("options-maker"))
        self.traders = {s.name: Signer(address_of(f"options-{s.name}")) for s in STRATEGIES}
        self.flow = [Signer(address_of(f"options-flow-{i}")) for i in range(FLOW_TRADERS)]
        self.flow_next_ns = [0] * FLOW_TRADERS
        self.surface_ns = 0
        self.opened: set[str] = set()
        self.quoted: dict[MarketId, int] = {}

    def subaccounts(self) -> dict[str, SubaccountId]:
        return {name: SubaccountId(s.address, 0) for name, s in self.traders.items()}

    def deposits(self, first_deposit_id: int, timestamp_ns: int) -> list[Command]:
        """The maker books each expiry in its own subaccount (its margin checks stay small)."""
        funded = [(self.maker.address, n, 5_000_000 * USDC) for n in range(MAKER_BOOKS)]
        funded += [(s.address, 0, 150_000 * USDC) for s in self.traders.values()]
        funded += [(s.address, 0, 200_000 * USDC) for s in self.flow]
        commands: list[Command] = []
        for offset, (owner, number, amount) in enumerate(funded):
            commands.append(Deposit(
                signer=self.relayer.address, nonce=self.relayer.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + TTL_NS, deposit_id=first_deposit_id + offset,
                owner=owner, subaccount_number=number, asset_id=AssetId("USDC"),
                amount_quantums=amount,
            ))  # fmt: skip
        return commands

    def commands(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        commands = self._surface(engine, timestamp_ns)
        if engine.state.oracles[BTC_USD].surface:
            commands += self._quotes(engine, timestamp_ns)
            commands += self._strategies(engine, timestamp_ns)
            commands += self._flow(engine, timestamp_ns)
        return commands

    def _flow(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        """Each flow trader, every 5 to 15 minutes: 0.1 to 0.5 BTC of a random option at least
        a day from expiry, bought or sold through the best quote (IOC, 6% through the mark);
        holding ``FLOW_POSITIONS_MAX`` options, it closes one of them instead."""
        tradable = sorted(
            market_id for market_id, market in engine.state.markets.items()
            if market.params.kind is MarketKind.OPTION and market.status is MarketStatus.ACTIVE
            and market.params.expiry_ns - timestamp_ns >= DAY_NS and market.mark_price_quantums
        )  # fmt: skip
        commands: list[Command] = []
        for number, signer in enumerate(self.flow):
            if not tradable or timestamp_ns < self.flow_next_ns[number]:
                continue
            self.flow_next_ns[number] = timestamp_ns + self.rng.randrange(*FLOW_EVERY_NS)
            held = engine.state.ledger.subaccounts.get(SubaccountId(signer.address, 0))
            positions = {} if held is None else held.positions
            if len(positions) >= FLOW_POSITIONS_MAX:
                market_id = self.rng.choice(sorted(positions))
                size = positions[market_id].size_base_quantums
                side, amount = (Side.SELL if size > 0 else Side.BUY), abs(size)
            else:
                market_id = self.rng.choice(tradable)
                side = self.rng.choice((Side.BUY, Side.SELL))
                amount = self.rng.randint(10, 50) * BTC_SATS // 100
            commands.append(self._through_book(engine, signer, market_id, side, amount,
                                               timestamp_ns))  # fmt: skip
        return commands

    def _through_book(
        self, engine: Engine, signer: Signer, market_id: MarketId, side: Side, size: int,
        timestamp_ns: int,
    ) -> PlaceOrder:  # fmt: skip
        market = engine.state.markets[market_id]
        tick = market.params.tick_quantums
        mark = market.mark_price_quantums
        limit = mark + side * max(mark * 60 // 1000, 10 * tick)  # 6% through the mark
        return PlaceOrder(
            signer=signer.address, nonce=signer.nonce(timestamp_ns),
            expiry_ns=timestamp_ns + TTL_NS, subaccount_number=0, market_id=market_id,
            side=side, size_base_quantums=size, price_quantums=max(limit - limit % tick, tick),
            time_in_force=TimeInForce.IOC,
        )  # fmt: skip

    def _surface(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        """The publishers refit their surface every ten minutes (the venue takes the median):
        each its own seeded chain at the series' expiries (and 90 days out), on the index."""
        if timestamp_ns - self.surface_ns < SURFACE_EVERY_NS:
            return []
        expiries = [s.expiry_ns for s in synthetic_surface(timestamp_ns)]
        index = engine.state.oracles[BTC_USD].index_price_quantums / USDC
        commands: list[Command] = []
        for number, publisher in enumerate(self.publishers):
            slices = publisher_surface(
                (self.seed * 1_000_003 + timestamp_ns // NS_PER_SECOND * 8 + number) % 2**32,
                timestamp_ns,
                expiries,
                index,
            )
            if slices:
                commands.append(report_surface(
                    publisher.address, publisher.nonce(timestamp_ns), timestamp_ns, slices
                ))  # fmt: skip
        if commands:  # none before the index exists: tried again the next block
            self.surface_ns = timestamp_ns
        return commands

    def theoreticals(
        self, engine: Engine, markets: list[MarketParams], timestamp_ns: int
    ) -> list[float]:
        """The maker's own prices: the surface's volatility at every strike of every market,
        then one vectorized Black-76 call for all of them (calls; a payoff is cash, a forward
        and calls at its kinks)."""
        oracle = engine.state.oracles[BTC_USD]
        forward = float(oracle.index_price_quantums)
        strikes: list[float] = []
        vols: list[float] = []
        years: list[float] = []
        reads: dict[int, surface.ExpiryRead] = {}  # the surface read once per expiry
        for params in markets:
            assert params.payoff is not None
            read = reads.get(params.expiry_ns)
            if read is None:
                read = reads[params.expiry_ns] = surface.ExpiryRead(
                    oracle.surface, timestamp_ns=oracle.surface_timestamp_ns,
                    expiry_ns=params.expiry_ns,
                )  # fmt: skip
            for strike, _ in params.payoff.kinks:
                strikes.append(float(strike))
                years.append(surface.years(params.expiry_ns - timestamp_ns))
                vols.append(read.volatility(math.log(strike / forward)))
        calls = iter(black76.price(True, forward, strikes, years, vols).tolist())
        values = []
        for params in markets:
            assert params.payoff is not None
            payoff = params.payoff
            value = payoff.cash_quote_quantums + payoff.slope_units * forward
            values.append(value + sum(change * next(calls) for _, change in payoff.kinks))
        return values

    def _quotes(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        commands: list[Command] = []
        expiries = sorted({m.params.expiry_ns for m in engine.state.markets.values()})
        quoted = [
            market.params
            for _, market in sorted(engine.state.markets.items())
            if market.params.kind is MarketKind.OPTION
            and market.status is MarketStatus.ACTIVE
            and 5 * 60 * NS_PER_SECOND <= market.params.expiry_ns - timestamp_ns <= DESK_HORIZON_NS
        ]  # no new quotes in an option's last minutes; later expiries are the AMM's to quote
        if not quoted:
            return commands
        for params, theo in zip(
            quoted, self.theoreticals(engine, quoted, timestamp_ns), strict=True
        ):
            market_id = params.market_id
            last = self.quoted.get(market_id)
            if last is not None and abs(theo - last) < max(0.03 * last, 8 * params.tick_quantums):
                continue
            book = expiries.index(params.expiry_ns) % MAKER_BOOKS
            self.quoted[market_id] = round(theo)
            commands.append(CancelAll(
                signer=self.maker.address, nonce=self.maker.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + TTL_NS, subaccount_number=book, market_id=market_id,
            ))  # fmt: skip
            commands += self._ladder(params, theo, book, timestamp_ns)
        return commands

    def _ladder(
        self, params: MarketParams, theo: float, book: int, timestamp_ns: int
    ) -> list[Command]:
        """A bid and an ask around the theoretical price, 2% (at least 5 ticks) either side."""
        commands: list[Command] = []
        half_spread = max(0.02 * theo, 5.0 * params.tick_quantums)
        for side in (Side.BUY, Side.SELL):
            raw = (theo - side * half_spread) / params.tick_quantums
            ticks = math.floor(raw) if side is Side.BUY else math.ceil(raw)
            if ticks <= 0:
                continue
            commands.append(PlaceOrder(
                signer=self.maker.address, nonce=self.maker.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + TTL_NS, subaccount_number=book,
                market_id=params.market_id, side=side, size_base_quantums=BTC_SATS * 8,
                price_quantums=ticks * params.tick_quantums, time_in_force=TimeInForce.POST_ONLY,
            ))  # fmt: skip
        return commands

    def _strategies(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        """Each trader opens its strategy once, on the nearest weekly, at the maker's prices."""
        commands: list[Command] = []
        for strategy in STRATEGIES:
            if strategy.name in self.opened or self.rng.random() > 0.05:
                continue
            orders = self._legs(engine, strategy, timestamp_ns)
            if not orders:
                continue
            self.opened.add(strategy.name)
            signer = self.traders[strategy.name]
            if strategy.portfolio:
                commands.append(SetMarginMode(
                    signer=signer.address, nonce=signer.nonce(timestamp_ns),
                    expiry_ns=timestamp_ns + TTL_NS, subaccount_number=0, portfolio=True,
                ))  # fmt: skip
            commands += orders
        return commands

    def _legs(self, engine: Engine, strategy: Strategy, timestamp_ns: int) -> list[Command]:
        index = engine.state.oracles[BTC_USD].index_price_quantums
        signer = self.traders[strategy.name]
        orders: list[Command] = []
        for which, btc, side in strategy.legs:
            market_id = (
                MarketId("BTC-PERP") if which == "perp" else self._pick(engine, which, index)
            )
            if market_id is None:
                return []
            step = engine.state.markets[market_id].params.step_base_quantums
            size = int(btc * BTC_SATS) // step * step
            orders.append(self._through_book(engine, signer, market_id, side, size, timestamp_ns))
        return orders

    @staticmethod
    def _pick(engine: Engine, which: str, index: int) -> MarketId | None:
        """The nearest-expiry series option of this kind ("call+4000": a call 4,000 USDC above
        the index) whose strike is nearest that level; at least three days from expiry."""
        is_call = which.startswith("call")
        level = index + int(which.removeprefix("call" if is_call else "put")) * USDC
        now = engine.state.timestamp_ns
        best: tuple[int, int, MarketId] | None = None
        for market_id, market in engine.state.markets.items():
            params = market.params
            payoff = params.payoff
            if payoff is None or len(payoff.kinks) != 1 or market.status is not MarketStatus.ACTIVE:
                continue
            if (payoff.slope_units == 0) != is_call or params.expiry_ns - now < 3 * DAY_NS:
                continue
            key = (params.expiry_ns, abs(payoff.kinks[0][0] - level), market_id)
            best = key if best is None or key < best else best
        return None if best is None else best[2]
