"""Regressions from the second review: each test is one of the reviewer's reproduction scripts,
turned into an assertion of the fixed behaviour.

1. a reduce-only order may rest while its subaccount is below IM, if it only reduces risk;
2. a stop-limit's limit price is band-checked when the trigger fires, not when it is placed;
3. a fired stop whose execution fails for a passing reason (a stale price, no liquidity) stays
   armed and retries; it used to be cancelled for good;
4. after an oracle outage neither the EWMA variance nor the volatility multiplier jumps;
5. an expired future awaiting settlement leaves its holders' accounts usable;
6. the breaker accepts a big move reported by 3 of 4 publishers, and a move held for
   ``breaker_hold_ns`` by a quorum, instead of holding the old price for ever;
7. a wall of small orders from one failing maker no longer blocks a taker;
8. cooling-off widens IM only: MM does not jump;
9. a stop or take-profit that would fire at once (wrong side of the mark) is refused.
"""

from __future__ import annotations

import dataclasses

from clearhouse.core import limits
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import OracleId, OrderId, Side
from clearhouse.core.messages import (
    CancelCause,
    CircuitBreakerTripped,
    Event,
    MarketExpired,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    OrderTriggerArmed,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    TimeInForce,
)
from clearhouse.core.oracle import PriceStatus, annual_volatility_ppm
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from helpers import (
    BTC_PERP,
    BTC_USD,
    BUY,
    ETH_GWEI,
    ETH_PERP,
    ETH_USD,
    ONE_BTC,
    PRICE,
    SELL,
    USDC,
    Venue,
    accepted,
    of_type,
    rejected,
)

LOT = 100_000  # the smallest BTC-PERP order: 0.001 BTC


def open_long_short(venue: Venue, *, size: int = ONE_BTC, price: int = PRICE) -> None:
    """alice rests an ask, bob lifts it: bob long, alice short."""
    accepted(venue, venue.order("alice", BTC_PERP, SELL, size, price))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, size, price))
    assert venue.position("bob", BTC_PERP)[0] == size


def armed_id(events: list[Event]) -> OrderId:
    [armed] = of_type(events, OrderTriggerArmed)
    return armed.order_id


# ── 1. ro_resting_below_im ───────────────────────────────────────────────────────────────────


def test_reduce_only_order_may_rest_below_initial_margin() -> None:
    """bob/1 (20k USDC, long 10 BTC) sits between MM and IM after a dip. A resting reduce-only
    close (GTC or post-only) only lowers his risk and is accepted; it used to be refused
    INSUFFICIENT_MARGIN. A resting order that is not reduce-only is still refused."""
    venue = Venue()
    accepted(venue, venue.transfer("bob", 20_000 * USDC, source=0, target=1))
    accepted(venue, venue.order("alice", BTC_PERP, SELL, 10 * ONE_BTC, PRICE))
    accepted(venue, venue.order("bob", BTC_PERP, BUY, 10 * ONE_BTC, PRICE, number=1))
    venue.settle_prices(BTC_USD=59_100 * USDC)
    risk = venue.risk("bob", 1)
    assert risk.maintenance < risk.equity < risk.initial
    rejected(
        venue, venue.order("bob", BTC_PERP, SELL, 10 * ONE_BTC, PRICE, number=1),
        RejectReason.INSUFFICIENT_MARGIN,
    )  # fmt: skip
    gtc = venue.order("bob", BTC_PERP, SELL, 10 * ONE_BTC, PRICE, number=1, reduce_only=True)
    [events] = accepted(venue, gtc)
    assert of_type(events, OrderRested) and not of_type(events, OrderFilled)
    post_only = venue.order(
        "bob", BTC_PERP, SELL, 5 * ONE_BTC, PRICE + USDC, number=1, reduce_only=True,
        time_in_force=TimeInForce.POST_ONLY,
    )  # fmt: skip
    [events] = accepted(venue, post_only)
    assert of_type(events, OrderRested)
    assert venue.position("bob", BTC_PERP, 1)[0] == 10 * ONE_BTC
    after = venue.risk("bob", 1)
    assert after.initial <= risk.initial and after.equity < after.initial


# ── 2. stop_limit_band ───────────────────────────────────────────────────────────────────────


def test_stop_limit_band_is_checked_when_it_fires_not_when_placed() -> None:
    """Limits more than 10% through today's index are refused for a plain order but accepted for
    a stop-limit (they used to be refused PRICE_OUTSIDE_BAND); when the stop fires, the band is
    checked against the index of that block: 53,500 is inside it at 59,000 and rests, 52,000 is
    not and the stop is cancelled TRIGGER_REJECTED."""
    venue = Venue()
    open_long_short(venue)
    rejected(
        venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, 53_500 * USDC, reduce_only=True),
        RejectReason.PRICE_OUTSIDE_BAND,
    )  # fmt: skip

    def stop_limit(limit: int) -> PlaceOrder:
        return venue.order(
            "bob", BTC_PERP, SELL, ONE_BTC // 2, limit, order_type=OrderType.STOP_LIMIT,
            trigger_price_quantums=59_000 * USDC, reduce_only=True,
        )  # fmt: skip

    inside_then, outside_then = accepted(
        venue, stop_limit(53_500 * USDC), stop_limit(52_000 * USDC)
    )
    inside_id, outside_id = armed_id(inside_then), armed_id(outside_then)
    prologue = venue.settle_prices(BTC_USD=59_000 * USDC).prologue
    assert venue.index() == 59_000 * USDC
    assert {e.order_id for e in of_type(prologue, OrderTriggered)} == {inside_id, outside_id}
    assert OrderRested(order_id=inside_id, remaining_base_quantums=ONE_BTC // 2) in prologue
    assert of_type(prologue, OrderCancelled) == [
        OrderCancelled(
            order_id=outside_id, cause=CancelCause.TRIGGER_REJECTED,
            remaining_base_quantums=ONE_BTC // 2,
        )
    ]  # fmt: skip
    assert not venue.state.markets[BTC_PERP].triggers


# ── 3. stop_cancelled_by_unrelated_stale ─────────────────────────────────────────────────────


def test_stop_that_fires_on_a_stale_unrelated_price_stays_armed_and_retries() -> None:
    """bob holds BTC and ETH. His BTC stop fires while ETH-USD is stale: the execution fails
    ORACLE_STALE, and the stop stays armed (no OrderTriggered, no OrderCancelled) instead of being
    cancelled TRIGGER_REJECTED; once ETH is fresh again it fires and closes the position."""
    venue = Venue()
    open_long_short(venue)
    accepted(venue, venue.order("alice", ETH_PERP, SELL, ETH_GWEI, 3_000 * USDC))
    accepted(venue, venue.order("bob", ETH_PERP, BUY, ETH_GWEI, 3_000 * USDC))
    accepted(venue, venue.order("carol", BTC_PERP, BUY, 5 * ONE_BTC, 57_000 * USDC))
    stop = venue.order(
        "bob", BTC_PERP, SELL, ONE_BTC, order_type=OrderType.STOP_MARKET,
        time_in_force=TimeInForce.IOC, trigger_price_quantums=58_000 * USDC, slippage_ppm=30_000,
        reduce_only=True,
    )  # fmt: skip
    [events] = accepted(venue, stop)
    stop_id = armed_id(events)

    def btc_only_block(price: int) -> list[Event]:
        """ETH publishers are silent; BTC is reported at ``price``."""
        reports = venue.reports(venue.now + venue.block_ns, prices={BTC_USD: price})
        return venue.block(reports, reports=False).prologue

    for _ in range(12):
        btc_only_block(PRICE)
    assert not venue.state.oracles[ETH_USD].is_usable()
    prologue = [e for _ in range(3) for e in btc_only_block(57_900 * USDC)]
    assert venue.mark() == 57_900 * USDC  # past the trigger
    assert not of_type(prologue, OrderTriggered)
    assert not of_type(prologue, OrderCancelled)
    assert stop_id in venue.state.markets[BTC_PERP].triggers
    assert venue.position("bob", BTC_PERP)[0] == ONE_BTC
    # ETH comes back: the stop fires and closes bob's BTC.
    prologue = venue.settle_prices(BTC_USD=57_900 * USDC).prologue
    assert venue.state.oracles[ETH_USD].is_usable()
    assert of_type(prologue, OrderTriggered) == [
        OrderTriggered(order_id=stop_id, mark_price_quantums=57_900 * USDC)
    ]
    [fill] = of_type(prologue, OrderFilled)
    assert (fill.taker_order_id, fill.price_quantums) == (stop_id, 57_000 * USDC)
    assert not of_type(prologue, OrderCancelled)
    assert venue.position("bob", BTC_PERP) == (0, 0)
    assert not venue.state.markets[BTC_PERP].triggers


# ── 4. vol_after_outage ──────────────────────────────────────────────────────────────────────


def test_margins_do_not_jump_in_the_first_fresh_block_after_an_outage() -> None:
    """Two hours dark, then +5%. The return is scaled to one sample interval (it used to read as
    one violent minute: ~890% annualized), and the multiplier earns no step while the price was
    stale (it used to catch up two hours' allowance, +0.5, at once)."""
    venue = Venue()
    open_long_short(venue)
    venue.advance(10 * NS_PER_MINUTE)
    oracle = venue.state.oracles[BTC_USD]
    market = venue.state.markets[BTC_PERP]

    def sigma() -> int:
        return annual_volatility_ppm(oracle.variance_e18, oracle.params.vol_sample_interval_ns)

    sigma_before = sigma()
    assert market.vol_multiplier_ppm == 1_000_000
    maintenance_before = venue.risk("bob").maintenance
    for _ in range(24):  # two hours without reports: stale
        venue.block(dt_ns=5 * NS_PER_MINUTE, reports=False)
    assert oracle.status is PriceStatus.STALE
    step_per_block = market.params.margin.vol_multiplier_rise_ppm_per_hour * (
        venue.block_ns
    ) // NS_PER_HOUR  # fmt: skip
    venue.settle_prices(BTC_USD=63_000 * USDC)  # +5% over the outage
    assert oracle.status is PriceStatus.FRESH and venue.mark() == 63_000 * USDC
    # The 5% is spread over the two hours' 120 minutes (the EWMA forgets in block time, so
    # it is most of what is known): about 330% a year, not the ~8,900,000 ppm of one minute.
    assert sigma_before < sigma() < 3_400_000
    assert market.vol_multiplier_ppm <= 1_000_000 + step_per_block
    # MM moves with the price and at most one block's step, not with a margin jump (IM may:
    # new risk pays the new target at once).
    maintenance = venue.risk("bob").maintenance
    limit = maintenance_before * 63_000 * USDC * (1_000_000 + step_per_block) * 1_001 // 1_000
    assert maintenance * PRICE * 1_000_000 <= limit
    for blocks in range(1, 6):
        venue.block()
        assert market.vol_multiplier_ppm <= 1_000_000 + (blocks + 1) * step_per_block


# ── 5. expiry_freezes_account ────────────────────────────────────────────────────────────────


def test_expired_unsettled_future_keeps_its_holders_accounts_usable() -> None:
    """The oracle is dark across the future's expiry: the future is EXPIRED, awaiting a settlement
    price. Its holder bob can still close his perp and withdraw (both used to be refused
    ORACLE_STALE): the future is marked at the index while it waits."""
    venue = Venue(future_expiry_hours=1)
    future = venue.future
    accepted(venue, venue.order("alice", future, SELL, ONE_BTC, PRICE))
    accepted(venue, venue.order("bob", future, BUY, ONE_BTC, PRICE))
    open_long_short(venue)
    expiry = venue.spec.future_expiry_ns
    prologue: list[Event] = []
    while venue.now < expiry + 10 * NS_PER_MINUTE:
        prologue += venue.block(dt_ns=NS_PER_MINUTE, reports=False).prologue
    assert of_type(prologue, MarketExpired) == [MarketExpired(market_id=future)]
    venue.settle_prices(BTC_USD=66_000 * USDC)
    assert venue.state.markets[future].status is MarketStatus.EXPIRED  # not settled yet
    assert venue.mark(future) == venue.index() == 66_000 * USDC
    risk = venue.risk("bob")
    assert risk.usable
    accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, 65_900 * USDC))
    close = venue.order(
        "bob", BTC_PERP, SELL, ONE_BTC, 65_900 * USDC, time_in_force=TimeInForce.IOC,
        reduce_only=True,
    )  # fmt: skip
    [events] = accepted(venue, close)
    assert of_type(events, OrderFilled)
    assert venue.position("bob", BTC_PERP) == (0, 0)
    balance = venue.balance("bob")
    # The first prices after the outage are a grace period: no collateral leaves yet.
    assert venue.state.oracles[OracleId("BTC-USD")].restart_guard
    rejected(venue, venue.withdraw("bob", USDC), RejectReason.WITHDRAWALS_PAUSED)
    while venue.state.oracles[OracleId("BTC-USD")].restart_guard:
        venue.block()
    accepted(venue, venue.withdraw("bob", USDC))
    assert venue.balance("bob") == balance - USDC
    # The future still counts, at the index: its profit in equity, its IM in the requirement.
    risk = venue.risk("bob")
    assert risk.equity == risk.settled_quote + 6_000 * USDC
    assert risk.initial > 0
    assert venue.position("bob", future)[0] == ONE_BTC


# ── 6. breaker_unanimity ─────────────────────────────────────────────────────────────────────


def test_breaker_accepts_a_big_move_from_three_of_four_publishers() -> None:
    """BTC +11.7% reported by three publishers, publisher 0 stuck at the old price. 3 of 4 is a
    supermajority: the move is accepted as a trip, with cooling-off (it used to need all four and
    held the old price, the market stale, for as long as one publisher lagged)."""
    venue = Venue()
    stuck = {BTC_USD: PRICE}
    venue.prices[BTC_USD] = 67_000 * USDC
    venue.block(outlier=stuck)
    result = venue.block(outlier=stuck)
    [tripped] = of_type(result.prologue, CircuitBreakerTripped)
    assert (tripped.previous_price_quantums, tripped.price_quantums) == (PRICE, 67_000 * USDC)
    oracle = venue.state.oracles[BTC_USD]
    assert oracle.status is PriceStatus.FRESH and venue.index() == 67_000 * USDC
    rejected(
        venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, 66_000 * USDC),
        RejectReason.MARKET_REDUCE_ONLY,
    )  # fmt: skip


def test_breaker_accepts_a_move_a_quorum_holds_for_a_minute() -> None:
    """With unanimity required (so 3 of 4 is not enough), the move is held; a quorum reporting it
    for ``breaker_hold_ns`` (60 s) makes it a trip (it used to be held for ever)."""
    venue = Venue()
    oracle = venue.state.oracles[BTC_USD]
    oracle.params = dataclasses.replace(oracle.params, breaker_supermajority_ppm=1_000_000)
    stuck = {BTC_USD: PRICE}
    venue.prices[BTC_USD] = 67_000 * USDC
    venue.block(outlier=stuck)
    held_from = venue.now + venue.block_ns
    while venue.now + venue.block_ns < held_from + 60 * NS_PER_SECOND:
        result = venue.block(outlier=stuck)
        assert oracle.status is PriceStatus.BREAKER_HELD, venue.now - held_from
        assert not of_type(result.prologue, CircuitBreakerTripped)
        assert venue.index() == PRICE
    result = venue.block(outlier=stuck)
    assert venue.now == held_from + 60 * NS_PER_SECOND
    [tripped] = of_type(result.prologue, CircuitBreakerTripped)
    assert (tripped.previous_price_quantums, tripped.price_quantums) == (PRICE, 67_000 * USDC)
    assert oracle.status is PriceStatus.FRESH and venue.index() == 67_000 * USDC
    assert tripped.cooling_off_until_ns > venue.now


# ── 7. cooling_off_maker_wall ────────────────────────────────────────────────────────────────


def test_wall_of_small_orders_from_one_failing_maker_does_not_block_a_taker() -> None:
    """During cooling-off, carol (flat) has more min-size asks at the top of the book than one
    match may reject makers; bob's reducing ask rests behind them. alice's reduce-only buy skips
    all of carol's asks at once and fills against bob (it used to give up NO_LIQUIDITY)."""
    venue = Venue()
    open_long_short(venue)  # alice short, bob long
    wall = limits.maker_rejections_per_order_max + 1
    base = 55_000 * USDC
    accepted(venue, *(venue.order("carol", BTC_PERP, SELL, LOT, base + i * USDC // 10)
                      for i in range(wall)))  # fmt: skip
    [events] = accepted(
        venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC, 55_100 * USDC, reduce_only=True)
    )
    [rested] = of_type(events, OrderRested)
    prologue = venue.settle_prices(BTC_USD=52_800 * USDC).prologue  # -12%: cooling-off
    assert of_type(prologue, CircuitBreakerTripped)
    buy = venue.order(
        "alice", BTC_PERP, BUY, LOT, 55_500 * USDC, reduce_only=True,
        time_in_force=TimeInForce.IOC,
    )  # fmt: skip
    [events] = accepted(venue, buy)
    [fill] = of_type(events, OrderFilled)
    assert (fill.maker_order_id, fill.price_quantums) == (rested.order_id, 55_100 * USDC)
    assert fill.size_base_quantums == LOT
    assert {c.cause for c in of_type(events, OrderCancelled)} <= {CancelCause.COOLING_OFF}
    assert venue.position("alice", BTC_PERP)[0] == -ONE_BTC + LOT
    assert venue.position("carol", BTC_PERP) == (0, 0)


# ── 8. cooling-off widens IM only ────────────────────────────────────────────────────────────


def test_cooling_off_raises_initial_margin_but_not_maintenance() -> None:
    """After a -12% trip, bob's requirements per unit of notional: IM x1.5, MM unchanged (it used
    to be x1.5 as well, which could make accounts liquidatable by the breaker itself)."""
    venue = Venue()
    open_long_short(venue)
    before = venue.risk("bob")
    new_price = 52_800 * USDC
    prologue = venue.settle_prices(BTC_USD=new_price).prologue
    assert of_type(prologue, CircuitBreakerTripped)
    assert venue.mark() == new_price
    assert venue.state.markets[BTC_PERP].vol_multiplier_ppm == 1_000_000
    after = venue.risk("bob")
    assert after.maintenance == before.maintenance * new_price // PRICE
    assert after.initial == before.initial * new_price // PRICE * 3 // 2


# ── 9. stops on the wrong side ───────────────────────────────────────────────────────────────


def test_stop_or_take_profit_that_would_fire_at_once_is_refused() -> None:
    """bob is long at a 60,000 mark. A sell stop at or above the mark, a sell take-profit at or
    below it, a buy stop at or below it, would fire in the next block: TRIGGER_INVALID (they used
    to be armed and fire at once)."""
    venue = Venue()
    open_long_short(venue)
    assert venue.mark() == PRICE

    def trigger(side: Side, order_type: OrderType, price: int) -> PlaceOrder:
        return venue.order(
            "bob", BTC_PERP, side, ONE_BTC, order_type=order_type,
            time_in_force=TimeInForce.IOC, trigger_price_quantums=price, slippage_ppm=30_000,
            reduce_only=side is SELL,
        )  # fmt: skip

    for side, order_type, price in (
        (SELL, OrderType.STOP_MARKET, 61_000 * USDC),
        (SELL, OrderType.STOP_MARKET, PRICE),
        (SELL, OrderType.TAKE_PROFIT_MARKET, 59_000 * USDC),
        (BUY, OrderType.STOP_MARKET, 59_000 * USDC),
    ):
        rejected(venue, trigger(side, order_type, price), RejectReason.TRIGGER_INVALID)
    # The right sides are armed and do not fire.
    accepted(
        venue,
        trigger(SELL, OrderType.STOP_MARKET, 59_000 * USDC),
        trigger(SELL, OrderType.TAKE_PROFIT_MARKET, 61_000 * USDC),
    )
    assert not of_type(venue.block().prologue, OrderTriggered)
    assert len(venue.state.markets[BTC_PERP].triggers) == 2
