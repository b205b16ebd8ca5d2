"""Random command streams against the whole engine, with every §16 invariant checked after every
command (the checks live in ``helpers.Venue``: invariants.check, rejected commands change nothing
but the nonce, nonces are consumed once, actors meet IM or reduce risk, funding is zero-sum).

On top of those, this machine checks what needs the history of the run: no trade on a stale
price, settlement closes every position of the dated future, the same nonce is never accepted
twice, and at the end of each run the recorded stream replays to the same roots and events.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from clearhouse.core.engine.liquidation.ladder import market_to_liquidate
from clearhouse.core.engine.liquidation.status import may_liquidate
from clearhouse.core.errors import RejectReason
from clearhouse.core.governance import REGISTRY, read_field
from clearhouse.core.ids import QUOTE_ASSET, MarketId, Side
from clearhouse.core.ledger import INSURANCE, clearing_account
from clearhouse.core.messages import (
    ActionKind,
    BidAuction,
    BidPortfolio,
    Command,
    CommandRejected,
    Deleveraged,
    GovAction,
    GuardianAct,
    Liquidate,
    Liquidated,
    MarketSettled,
    OrderFilled,
    OrderType,
    ScheduleCancel,
    SetMarginMode,
    SetupGovernance,
    StewardUpdate,
    TimeInForce,
)
from clearhouse.core.params import GovernanceParams, MarketKind
from clearhouse.core.payoffs import call
from clearhouse.core.state import PORTFOLIO_AUCTION, MarketStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.signer import Signer
from clearhouse.sim.venue import address_of
from helpers import (
    BTC_ASSET,
    BTC_PERP,
    BTC_SATS,
    BTC_USD,
    ETH_PERP,
    ETH_USD,
    USDC,
    USDC_ASSET,
    BlockResult,
    Venue,
)
from options import list_option, publish_surface

TRADERS = ("alice", "bob", "carol")
SIDES = st.sampled_from([Side.BUY, Side.SELL])
TRADER = st.sampled_from(TRADERS)
NUMBER = st.sampled_from([0, 0, 0, 1, 3])
MARKET_INDEX = st.sampled_from([0, 0, 0, 1, 2])  # mostly BTC-PERP, so that orders meet
SIZE_MULTIPLE = st.sampled_from([1, 1, 3, 10, 10, 50, 200, 1_000, 5_000, 20_000, 100_000])
NEAR_BP = st.integers(-40, 40)  # limit price offsets from the index, in basis points
FAR_BP = st.integers(-1_200, 1_200)  # up to 12%: through the 10% band now and then
PRICE_BP = st.one_of(NEAR_BP, FAR_BP)
PERCENT = st.sampled_from([1, 10, 50, 100, 101, 300])
LIMIT_TIFS = st.sampled_from([
    TimeInForce.GTC, TimeInForce.GTT, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY,
])  # fmt: skip
TRIGGER_TYPES = st.sampled_from([
    OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET,
    OrderType.TAKE_PROFIT_LIMIT,
])  # fmt: skip
REDUCE_ONLY = st.sampled_from([False, False, False, True])
GOVERNED_MARKET_PARAMS = st.sampled_from([
    "market.margin.initial_margin_ppm", "market.margin.maintenance_share_ppm",
    "market.liquidation.open_interest_cap_base_quantums", "market.taker_fee_ppm",
    "market.price_band_ppm", "market.funding.interest_ppb_per_8h",
])  # fmt: skip
REPLAYED_REASONS = {
    RejectReason.NONCE_ALREADY_USED, RejectReason.NONCE_BELOW_WINDOW, RejectReason.NONCE_TOO_OLD,
}  # fmt: skip


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.v = Venue(
            traders=TRADERS, quote_per_trader=50_000 * USDC, btc_per_trader=BTC_SATS // 2,
            future_expiry_hours=1,
        )  # fmt: skip
        self.markets = (BTC_PERP, ETH_PERP, self.v.future)
        # An option on BTC, expiring within the run, on a surface every publisher reports.
        self.option = list_option(self.v, "BTC-2H-60000-C", call(60_000 * USDC), 2 * NS_PER_HOUR)
        publish_surface(self.v)
        self.accepted: list[Command] = []
        self.client_ids = 0
        self.last: BlockResult | None = None
        self.settled = False
        self.steward = Signer(address_of("steward"))
        self.guardian = Signer(address_of("guardian"))
        operator = self.v.operator
        self.run(SetupGovernance(
            signer=operator.address, nonce=operator.nonce(self.v.now),
            expiry_ns=self.v.now + NS_PER_HOUR, params=GovernanceParams(
                council=(address_of("council"),), threshold=1, steward=self.steward.address,
                guardian=self.guardian.address, phase_in_ns=2 * NS_PER_MINUTE,
            ),
        ))  # fmt: skip

    # ── Plumbing ────────────────────────────────────────────────────────────────────────────

    def params(self, market_index: int) -> Any:
        return self.v.state.markets[self.markets[market_index]].params

    def price(self, market_index: int, bp: int) -> int:
        params = self.params(market_index)
        index = self.v.index(params.oracle_id)
        return (
            max(index * (10_000 + bp) // 10_000 // params.tick_quantums, 1) * params.tick_quantums
        )

    def size(self, market_index: int, multiple: int) -> int:
        return self.params(market_index).min_order_base_quantums * multiple

    def run(self, command: Command, *more: Command) -> list[Any]:
        """Run commands in one block; the events of the first."""
        result = self.v.block([command, *more])
        self.last = result
        self.after_block(result)
        for index, sent in enumerate((command, *more)):
            if result.rejection(index) is None:
                self.accepted.append(sent)
        return result.of(0)

    def after_block(self, result: BlockResult) -> None:
        state = self.v.state
        for event in result.events:
            if isinstance(event, OrderFilled):
                market = state.markets[event.market_id]
                oracle = state.oracles[market.params.oracle_id]
                assert oracle.is_usable(), f"a trade in {event.market_id} on a stale price"
                assert market.status is MarketStatus.ACTIVE, "a trade in an expired market"
            if isinstance(event, MarketSettled):
                self.check_settled(event)
            if isinstance(event, Liquidated | Deleveraged):
                market = state.markets[event.market_id]
                oracle = state.oracles[market.params.oracle_id]
                assert oracle.is_usable() and not oracle.restart_guard, "liquidated on a bad price"

    def check_settled(self, event: MarketSettled) -> None:
        state = self.v.state
        market = state.markets[event.market_id]
        assert market.status is MarketStatus.SETTLED
        assert market.open_interest_base_quantums == 0 and not market.holders
        assert len(market.book) == 0 and not market.triggers
        for sub in state.ledger.subaccounts.values():
            assert event.market_id not in sub.positions
            assert event.market_id not in sub.open_orders
        assert state.ledger.balance(clearing_account(event.market_id), QUOTE_ASSET) == 0
        assert event.residue_quote_quantums >= 0
        self.settled = True

    def own_orders(self, trader: str, number: int = 0) -> list[int]:
        sub = self.v.state.ledger.subaccounts.get(self.v.sub(trader, number))
        return [] if sub is None else sorted(sub.order_ids)

    # ── Collateral ──────────────────────────────────────────────────────────────────────────

    @rule(trader=TRADER, number=NUMBER, btc=st.booleans(), units=st.sampled_from([1, 100, 5_000]))
    def deposit(self, trader: str, number: int, btc: bool, units: int) -> None:
        amount = units * (BTC_SATS // 1_000 if btc else USDC)
        asset = "BTC" if btc else "USDC"
        events = self.run(self.v.deposit(trader, amount, asset, number=number))
        assert not isinstance(events[0], CommandRejected), events

    @rule(trader=TRADER, number=NUMBER, btc=st.booleans(), percent=PERCENT)
    def withdraw(self, trader: str, number: int, btc: bool, percent: int) -> None:
        asset = BTC_ASSET if btc else USDC_ASSET
        held = self.v.balance(trader, asset, number)
        amount = max(held * percent // 100, 1)
        events = self.run(self.v.withdraw(trader, amount, asset, number=number))
        if not isinstance(events[0], CommandRejected):
            assert self.v.balance(trader, asset, number) == held - amount

    @rule(trader=TRADER, source=NUMBER, btc=st.booleans(), percent=PERCENT)
    def transfer(self, trader: str, source: int, btc: bool, percent: int) -> None:
        asset = BTC_ASSET if btc else USDC_ASSET
        amount = max(self.v.balance(trader, asset, source) * percent // 100, 1)
        self.run(self.v.transfer(trader, amount, asset, source=source, target=1 - source))

    # ── Orders ──────────────────────────────────────────────────────────────────────────────

    @rule(
        trader=TRADER, number=NUMBER, market=MARKET_INDEX, side=SIDES, multiple=SIZE_MULTIPLE,
        bp=PRICE_BP, tif=LIMIT_TIFS, reduce_only=REDUCE_ONLY, with_client_id=st.booleans(),
    )  # fmt: skip
    def limit_order(
        self, trader: str, number: int, market: int, side: Side, multiple: int, bp: int,
        tif: TimeInForce, reduce_only: bool, with_client_id: bool,
    ) -> None:  # fmt: skip
        fields: dict[str, Any] = {"time_in_force": tif, "reduce_only": reduce_only}
        if tif is TimeInForce.GTT:
            fields["good_til_ns"] = self.v.now + 30 * NS_PER_SECOND
        if with_client_id:
            self.client_ids += 1
            fields["client_order_id"] = self.client_ids
        self.run(self.v.order(
            trader, self.markets[market], side, self.size(market, multiple),
            self.price(market, bp), number=number, **fields,
        ))  # fmt: skip

    @rule(
        trader=TRADER, market=MARKET_INDEX, side=SIDES, multiple=SIZE_MULTIPLE,
        slippage_ppm=st.sampled_from([1_000, 20_000, 100_000]), fok=st.booleans(),
        reduce_only=REDUCE_ONLY,
    )  # fmt: skip
    def market_order(
        self, trader: str, market: int, side: Side, multiple: int, slippage_ppm: int, fok: bool,
        reduce_only: bool,
    ) -> None:  # fmt: skip
        tif = TimeInForce.FOK if fok else TimeInForce.IOC
        self.run(self.v.market_order(
            trader, self.markets[market], side, self.size(market, multiple),
            slippage_ppm=slippage_ppm, time_in_force=tif, reduce_only=reduce_only,
        ))  # fmt: skip

    @rule(
        trader=TRADER, market=MARKET_INDEX, side=SIDES, multiple=SIZE_MULTIPLE,
        order_type=TRIGGER_TYPES, trigger_bp=st.integers(-500, 500), bp=NEAR_BP,
        reduce_only=st.booleans(), gtt=st.booleans(),
    )  # fmt: skip
    def trigger_order(
        self, trader: str, market: int, side: Side, multiple: int, order_type: OrderType,
        trigger_bp: int, bp: int, reduce_only: bool, gtt: bool,
    ) -> None:  # fmt: skip
        is_market = order_type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
        fields: dict[str, Any] = {
            "order_type": order_type, "trigger_price_quantums": self.price(market, trigger_bp),
            "reduce_only": reduce_only,
        }  # fmt: skip
        if is_market:
            fields.update(time_in_force=TimeInForce.IOC, slippage_ppm=30_000)
        elif gtt:
            fields.update(time_in_force=TimeInForce.GTT, good_til_ns=self.v.now + 5 * NS_PER_MINUTE)
        price = 0 if is_market else self.price(market, trigger_bp + bp)
        self.run(self.v.order(
            trader, self.markets[market], side, self.size(market, multiple), price, **fields
        ))  # fmt: skip

    @rule(
        trader=TRADER, market=MARKET_INDEX, half_spread_bp=st.integers(1, 30),
        multiple=SIZE_MULTIPLE, levels=st.integers(1, 3),
    )  # fmt: skip
    def quote(
        self, trader: str, market: int, half_spread_bp: int, multiple: int, levels: int
    ) -> None:
        """Post-only bids and asks around the index: liquidity for the takers."""
        size = self.size(market, multiple)
        commands = [
            self.v.order(
                trader, self.markets[market], side,
                size, self.price(market, -side * half_spread_bp * (level + 1)),
                time_in_force=TimeInForce.POST_ONLY,
            )
            for level in range(levels)
            for side in (Side.BUY, Side.SELL)
        ]  # fmt: skip
        self.run(*commands)

    @rule(
        trader=TRADER, number=NUMBER, market=MARKET_INDEX, side=SIDES, multiple=SIZE_MULTIPLE,
        through_levels=st.integers(0, 3), tif=st.sampled_from([TimeInForce.IOC, TimeInForce.GTC]),
        reduce_only=REDUCE_ONLY,
    )  # fmt: skip
    def take(
        self, trader: str, number: int, market: int, side: Side, multiple: int,
        through_levels: int, tif: TimeInForce, reduce_only: bool,
    ) -> None:  # fmt: skip
        """A limit order priced through the best opposite levels; on an empty side, another
        trader first posts there in the same block, so that something trades."""
        market_id = self.markets[market]
        size = self.size(market, multiple)
        book = self.v.state.markets[market_id].book
        depth = book.depth(side.opposite, through_levels + 1)
        commands: list[Command] = []
        if depth:
            price = depth[-1][0]
        else:
            maker = TRADERS[(TRADERS.index(trader) + 1) % len(TRADERS)]
            tick = self.params(market).tick_quantums
            price = self.price(market, side * 5)  # just through the index, yet never crossing
            best = book.best_bid() if side is Side.BUY else book.best_ask()
            if best is not None:
                price = max(price, best + tick) if side is Side.BUY else min(price, best - tick)
            commands.append(self.v.order(
                maker, market_id, side.opposite, size, price, time_in_force=TimeInForce.POST_ONLY
            ))  # fmt: skip
        commands.append(self.v.order(
            trader, market_id, side, size, price, number=number, time_in_force=tif,
            reduce_only=reduce_only,
        ))  # fmt: skip
        self.run(*commands)

    @rule(trader=TRADER, pick=st.integers(0, 50), by_client_id=st.booleans())
    def cancel(self, trader: str, pick: int, by_client_id: bool) -> None:
        orders = self.own_orders(trader)
        order_id = orders[pick % len(orders)] if orders else pick + 1
        command = self.v.cancel(trader, order_id)
        if by_client_id:
            sub = self.v.state.ledger.subaccounts[self.v.sub(trader)]
            client_ids = sorted(sub.client_order_ids)
            client_id = client_ids[pick % len(client_ids)] if client_ids else pick + 1
            command = self.v.cancel(trader, client_order_id=client_id)
        events = self.run(command)
        if orders and not by_client_id:
            # Accepted, unless the order fired or expired in this block's prologue.
            assert self.last is not None
            gone = {getattr(e, "order_id", None) for e in self.last.prologue}
            assert order_id in gone or not isinstance(events[0], CommandRejected), events
            assert order_id not in self.own_orders(trader)

    @rule(trader=TRADER, number=NUMBER, market=st.sampled_from([None, 0, 1, 2]))
    def cancel_all(self, trader: str, number: int, market: int | None) -> None:
        market_id = None if market is None else self.markets[market]
        events = self.run(self.v.cancel_all(trader, market_id, number=number))
        assert not any(isinstance(e, CommandRejected) for e in events), events
        sub = self.v.state.ledger.subaccounts.get(self.v.sub(trader, number))
        if sub is not None:
            left = [m for m in sub.order_ids.values() if market_id is None or m == market_id]
            assert not left, "cancel-all left orders behind"

    @rule(trader=TRADER, number=NUMBER, seconds=st.sampled_from([0, 5, 12, 60]))
    def schedule_cancel(self, trader: str, number: int, seconds: int) -> None:
        """A dead-man's switch ``seconds`` after this block (0: clear it): accepted in range,
        and once due every order of the subaccount is gone (``the_switches_agree``)."""
        signer = self.v.signers[trader]
        at_ns = self.v.now + self.v.block_ns + seconds * NS_PER_SECOND if seconds else 0
        events = self.run(ScheduleCancel(
            signer=signer.address, nonce=signer.nonce(self.v.now),
            expiry_ns=self.v.now + NS_PER_HOUR, subaccount_number=number, cancel_at_ns=at_ns,
        ))  # fmt: skip
        assert not any(isinstance(e, CommandRejected) for e in events), events

    @rule(
        market=st.sampled_from([0, 1]), name=GOVERNED_MARKET_PARAMS,
        steps=st.sampled_from([-1, 1, 1, 2]), guardian=st.booleans(),
    )  # fmt: skip
    def govern(self, market: int, name: str, steps: int, guardian: bool) -> None:
        """The steward moves a parameter of a perpetual by a step (or two: refused), or the
        guardian tightens one at once; margins phase in. Whatever moved, the liquidation watch
        still names everyone liquidatable (``the_liquidation_watch_misses_no_one``)."""
        entry = REGISTRY[name]
        target = self.markets[market]
        current = read_field(self.params(market), entry.path)
        value = min(max(current + steps * entry.max_step(current), entry.lower), entry.upper)
        signer, kind = (self.guardian, GuardianAct) if guardian else (self.steward, StewardUpdate)
        action = GovAction(kind=ActionKind.SET_PARAM, name=name, target=target, value=value)
        events = self.run(kind(
            signer=signer.address, nonce=signer.nonce(self.v.now),
            expiry_ns=self.v.now + NS_PER_HOUR, actions=(action,),
        ))  # fmt: skip
        if not any(isinstance(e, CommandRejected) for e in events):
            assert read_field(self.params(market), entry.path) == value

    @rule(trader=TRADER, pick=st.integers(0, 50), bp=NEAR_BP, multiple=SIZE_MULTIPLE)
    def amend(self, trader: str, pick: int, bp: int, multiple: int) -> None:
        markets = self.v.state.order_markets
        orders = [o for o in self.own_orders(trader) if markets.get(o) in self.markets]
        if not orders:
            return
        order_id = orders[pick % len(orders)]
        market_id = self.v.state.order_markets[order_id]
        market = self.markets.index(market_id)
        resting = self.v.state.markets[market_id].book.get(order_id)
        assert resting is not None
        keep = bp % 3 == 0  # a third of the amends shrink in place
        params = self.params(market)
        shrunk = max(
            resting.remaining_base_quantums - params.step_base_quantums,
            params.min_order_base_quantums,
        )
        price = resting.price_quantums if keep else self.price(market, bp)
        size = shrunk if keep else self.size(market, multiple)
        events = self.run(self.v.amend(trader, order_id, price, size))
        if keep and not isinstance(events[0], CommandRejected):
            assert events[-1].kept_priority, events

    @rule(
        trader=TRADER,
        defect=st.sampled_from(["market", "step", "tick", "band", "expired", "foreign", "zero"]),
    )
    def bad_order(self, trader: str, defect: str) -> None:
        """Commands that must be rejected (the harness checks they change nothing)."""
        params = self.params(0)
        size, price = params.min_order_base_quantums, self.price(0, 0)
        market: str = BTC_PERP
        options: dict[str, Any] = {}
        if defect == "market":
            market = "DOGE-PERP"
        elif defect == "step":
            size += 1
        elif defect == "tick":
            price += 1
        elif defect == "band":
            price = self.price(0, 3_000)  # past the band even if a shock lands this block
        elif defect == "expired":
            options["expiry_ns"] = self.v.now
        elif defect == "zero":
            size = 0
        if defect == "foreign":
            others = [o for t in TRADERS if t != trader for o in self.own_orders(t)]
            command: Command = self.v.cancel(trader, others[0] if others else 10**9)
        else:
            command = self.v.order(trader, market, Side.BUY, size, price, **options)
        events = self.run(command)
        assert isinstance(events[0], CommandRejected), events

    @precondition(lambda self: bool(self.accepted))
    @rule(pick=st.integers(0, 10_000))
    def resubmit(self, pick: int) -> None:
        """An accepted command sent again (same nonce) is never applied twice."""
        command = self.accepted[pick % len(self.accepted)]
        result = self.v.block([command])
        self.after_block(result)
        rejection = result.rejection(0)
        assert rejection is not None and rejection.reason in REPLAYED_REASONS, result.of(0)
        assert not rejection.nonce_consumed

    # ── Liquidation ─────────────────────────────────────────────────────────────────────────

    @rule(keeper=TRADER, victim=TRADER, number=NUMBER)
    def liquidate(self, keeper: str, victim: str, number: int) -> None:
        signer = self.v.signers[keeper]
        command = Liquidate(
            signer=signer.address, nonce=signer.nonce(self.v.now),
            expiry_ns=self.v.now + NS_PER_HOUR, subaccount_number=2,
            owner=self.v.address(victim), owner_number=number,
        )  # fmt: skip
        eligible = self.v.sub(victim, number) in self.v.engine.liquidatable()
        events = self.run(command)
        if keeper == victim:
            assert events[0].reason is RejectReason.SELF_LIQUIDATION
        elif not eligible:
            assert isinstance(events[0], CommandRejected), events

    @rule(taker=TRADER, maker=TRADER, side=SIDES, leverage=st.sampled_from([10, 25, 45]))
    def leveraged_position(self, taker: str, maker: str, side: Side, leverage: int) -> None:
        """A thinly collateralized subaccount (number 3) takes a big BTC-PERP position: what
        price moves then liquidate."""
        if taker == maker:
            return
        collateral = 2_000 * USDC
        params = self.params(0)
        price = self.price(0, 0)
        size = collateral * leverage * params.base_quantums_per_unit // price
        size -= size % params.step_base_quantums
        self.run(self.v.transfer(taker, collateral, source=0, target=3))
        self.run(
            self.v.order(maker, BTC_PERP, side.opposite, size, price),
            self.v.order(taker, BTC_PERP, side, size, price, number=3,
                         time_in_force=TimeInForce.IOC),
        )  # fmt: skip

    @rule(bidder=TRADER, multiple=SIZE_MULTIPLE)
    def bid_auction(self, bidder: str, multiple: int) -> None:
        auctions = sorted(
            (t, s.auction) for t, s in self.v.state.liquidations.items() if s.auction is not None
        )
        if not auctions:
            return
        target, auction = auctions[0]
        if auction.market_id == PORTFOLIO_AUCTION:
            return  # bid_portfolio's
        signer = self.v.signers[bidder]
        index = self.markets.index(auction.market_id)
        self.run(BidAuction(
            signer=signer.address, nonce=signer.nonce(self.v.now),
            expiry_ns=self.v.now + NS_PER_HOUR, subaccount_number=0, owner=target.owner,
            owner_number=target.number, market_id=auction.market_id,
            size_base_quantums=self.size(index, multiple),
        ))  # fmt: skip

    # ── Options ─────────────────────────────────────────────────────────────────────────────

    @rule(
        maker=TRADER, taker=TRADER, side=SIDES, lots=st.sampled_from([1, 10, 100, 400]),
        number=NUMBER, ticks=st.integers(-20, 20),
    )  # fmt: skip
    def option_trade(
        self, maker: str, taker: str, side: Side, lots: int, number: int, ticks: int
    ) -> None:
        """A maker rests an option near its mark; a taker (any subaccount, often a thin one)
        crosses it: short options, margin in either mode, and the portfolio auction follow."""
        market = self.v.state.markets[self.option]
        price = max(market.mark_price_quantums // USDC + ticks, 1) * USDC
        size = lots * BTC_SATS // 100
        self.run(
            self.v.order(maker, self.option, side.opposite, size, price),
            self.v.order(taker, self.option, side, size, price, number=number,
                         time_in_force=TimeInForce.IOC),
        )  # fmt: skip

    @rule(trader=TRADER, number=NUMBER, portfolio=st.booleans())
    def margin_mode(self, trader: str, number: int, portfolio: bool) -> None:
        signer = self.v.signers[trader]
        events = self.run(SetMarginMode(
            signer=signer.address, nonce=signer.nonce(self.v.now),
            expiry_ns=self.v.now + NS_PER_HOUR, subaccount_number=number, portfolio=portfolio,
        ))  # fmt: skip
        in_portfolio = self.v.sub(trader, number) in self.v.state.portfolio_margin
        assert in_portfolio == portfolio or isinstance(events[0], CommandRejected)

    @rule(atm=st.sampled_from([0.3, 0.6, 1.2]), skew=st.sampled_from([-0.4, 0.0]))
    def refit_surface(self, atm: float, skew: float) -> None:
        publish_surface(self.v, atm_vol=atm, skew=skew)

    @rule(bidder=TRADER, fraction=st.sampled_from([1_000, 250_000, 1_000_000]))
    def bid_portfolio(self, bidder: str, fraction: int) -> None:
        auctions = sorted(
            t for t, s in self.v.state.liquidations.items()
            if s.auction is not None and s.auction.market_id == PORTFOLIO_AUCTION
        )  # fmt: skip
        if not auctions:
            return
        target = auctions[0]
        signer = self.v.signers[bidder]
        fund_before = self.v.state.ledger.balance(INSURANCE, QUOTE_ASSET)
        solvent = self.v.engine.risk_of(self.v.state.ledger.subaccounts[target]).equity >= 0
        self.run(BidPortfolio(
            signer=signer.address, nonce=signer.nonce(self.v.now),
            expiry_ns=self.v.now + NS_PER_HOUR, subaccount_number=0, owner=target.owner,
            owner_number=target.number, fraction_ppm=fraction,
        ))  # fmt: skip
        if solvent:  # a solvent account's bidder is never paid by the fund
            assert self.v.state.ledger.balance(INSURANCE, QUOTE_ASSET) >= fund_before

    # ── Prices and time ─────────────────────────────────────────────────────────────────────

    @rule(
        btc_ppm=st.integers(-80_000, 80_000), eth_ppm=st.integers(-80_000, 80_000),
        outlier=st.booleans(),
    )  # fmt: skip
    def move_prices(self, btc_ppm: int, eth_ppm: int, outlier: bool) -> None:
        prices = self.v.prices
        prices[BTC_USD] = prices[BTC_USD] * (1_000_000 + btc_ppm) // 1_000_000
        prices[ETH_USD] = prices[ETH_USD] * (1_000_000 + eth_ppm) // 1_000_000
        liar = {BTC_USD: prices[BTC_USD] * 13 // 10, ETH_USD: prices[ETH_USD] // 2}
        self.after_block(self.v.block(outlier=liar if outlier else None))

    @rule(down=st.booleans(), blocks=st.integers(1, 40))
    def shock(self, down: bool, blocks: int) -> None:
        """BTC jumps 6% and stays there for a while: leveraged subaccounts go under and the
        ladder (keepers or the protocol, the book, auctions, the fund, ADL) runs its course."""
        prices = self.v.prices
        prices[BTC_USD] = prices[BTC_USD] * (94 if down else 106) // 100
        for _ in range(blocks):
            self.after_block(self.v.block())

    @rule(seconds=st.sampled_from([11, 30, 120]))
    def silence(self, seconds: int) -> None:
        """No reports: the index goes stale, and trades, withdrawals and transfers must wait."""
        self.after_block(self.v.block(dt_ns=seconds * NS_PER_SECOND, reports=False))
        assert not any(o.is_usable() for o in self.v.state.oracles.values())

    @rule(
        step=st.sampled_from([NS_PER_SECOND, 30 * NS_PER_SECOND, 10 * NS_PER_MINUTE, NS_PER_HOUR])
    )
    def advance(self, step: int) -> None:
        self.after_block(self.v.block(dt_ns=step))
        for market in self.v.state.markets.values():
            if market.params.kind is MarketKind.PERPETUAL and self.oracle_usable(market):
                # Funding waits for a fresh index and is never left overdue once it is back.
                assert market.next_funding_ns > self.v.now, market.params.market_id

    def oracle_usable(self, market: Any) -> bool:
        return bool(self.v.state.oracles[market.params.oracle_id].is_usable())

    @precondition(
        lambda self: self.v.state.markets[MarketId(self.v.future)].status is MarketStatus.EXPIRED
    )
    @rule()
    def fresh_prices_until_settled(self) -> None:
        """Past expiry, settlement waits for a window that fresh samples cover (90% of 30 min,
        each sample standing for at most the staleness bound): give it one, and a little more."""
        for _ in range(400):
            self.after_block(self.v.block(dt_ns=5 * NS_PER_SECOND))
            if self.v.state.markets[MarketId(self.v.future)].status is MarketStatus.SETTLED:
                break
        assert self.settled, "the dated future did not settle on a full window of fresh prices"

    # ── Whole-run checks ────────────────────────────────────────────────────────────────────

    @invariant()
    def books_and_ids(self) -> None:
        state = self.v.state
        for market in state.markets.values():
            bid, ask = market.book.best_bid(), market.book.best_ask()
            assert bid is None or ask is None or bid < ask
        assert state.next_order_id > max(state.order_markets, default=0)

    @invariant()
    def the_switches_agree(self) -> None:
        """The dead-man's switch queue is the committed schedule, and none is overdue."""
        state = self.v.state
        queue = list(self.v.engine.ctx.derived.cancel_queue)
        assert queue == sorted((at, sub) for sub, at in state.scheduled_cancels.items())
        assert all(at > state.timestamp_ns for at, _ in queue)

    @invariant()
    def the_nonce_ages_are_the_nonce_sets(self) -> None:
        """``nonce_ages`` orders every committed nonce set by its newest nonce, none empty."""
        state = self.v.state
        assert all(state.nonces.values())
        ages = list(self.v.engine.ctx.derived.nonce_ages)
        assert ages == sorted((used[-1], key) for key, used in state.nonces.items())

    @invariant()
    def every_armed_trigger_is_indexed_at_its_price(self) -> None:
        assert self.v.engine.misindexed_triggers() == []

    @invariant()
    def the_liquidation_watch_misses_no_one(self) -> None:
        """The pass examines only whom the watch names, and keepers are told only of the
        watch's suspects: both checked against a full scan."""
        engine = self.v.engine
        assert engine.unwatched_liquidatable() == []
        ctx = engine.ctx
        full_scan = [
            subaccount_id
            for subaccount_id, subaccount in sorted(engine.state.ledger.subaccounts.items())
            if subaccount.positions
            and may_liquidate(ctx, subaccount, engine.risk_of(subaccount))
            and market_to_liquidate(ctx, subaccount) is not None
        ]
        assert engine.liquidatable() == full_scan

    def teardown(self) -> None:
        assert self.v.replay() == self.v.recorded_stream(), "replay diverged"


EngineMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEngineStateful = EngineMachine.TestCase
