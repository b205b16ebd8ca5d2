"""Order commands: ``PlaceOrder``, ``CancelOrder``, ``CancelAll``, ``AmendOrder``; order
shape and capacity; stop and take-profit triggers; good-til-time expiry.
"""

from __future__ import annotations

import dataclasses
import heapq

from clearhouse.core import limits
from clearhouse.core.engine.context import (
    Context,
    Rejected,
    check_subaccount_number,
    mutated,
    next_order_id,
    trigger_prices,
)
from clearhouse.core.engine.trading.resting import (
    OrderSpec,
    cancel_any,
    cancel_resting,
    cancel_trigger,
    copy_open_orders,
    detach_resting,
    reattach_resting,
    register_order,
    resize_resting,
    unregister_order,
)
from clearhouse.core.engine.trading.trades import (
    check_price,
    check_size,
    execute_order,
    tradable_market,
)
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    Address,
    OrderId,
    Side,
    SubaccountId,
)
from clearhouse.core.ledger import (
    Subaccount,
)
from clearhouse.core.matching import RestingOrder
from clearhouse.core.messages import (
    AmendOrder,
    CancelAll,
    CancelCause,
    CancelOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderTriggerArmed,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    TimeInForce,
)
from clearhouse.core.state import (
    MarketState,
    TriggerOrder,
)
from clearhouse.core.units import (
    PPM_ONE,
    div_ceil,
)


def place_order(ctx: Context, command: PlaceOrder, *, margin_admitted: bool = False) -> None:
    """``margin_admitted``: the one margin gate already admitted a state that holds this
    order and more (``admit`` on a superset of resting orders; see the options vault's
    requote), so its own check could only agree."""
    check_subaccount_number(command.subaccount_number)
    owner = SubaccountId(command.signer, command.subaccount_number)
    market = tradable_market(ctx, command.market_id)
    check_size(market, command.size_base_quantums)
    check_order_shape(ctx, market, command)
    subaccount = ctx.state.ledger.subaccounts.get(owner)
    check_order_capacity(ctx, subaccount, command)
    if command.order_type in TRIGGERED_TYPES:
        arm_trigger(ctx, owner, market, command)
        return
    limit_price = order_limit_price(ctx, market, command)
    spec = OrderSpec(
        OrderId(ctx.state.next_order_id), owner, command.market_id, command.side,
        command.size_base_quantums, limit_price, command.time_in_force,
        command.reduce_only, command.good_til_ns, command.client_order_id,
    )  # fmt: skip
    execute_order(ctx, spec, accepted=True, margin_admitted=margin_admitted)


def check_order_shape(ctx: Context, market: MarketState, command: PlaceOrder) -> None:
    """Price grid, band, and the combinations of type and time-in-force that make sense."""
    tick = market.params.tick_quantums
    is_market = command.order_type in MARKET_TYPES
    if command.side not in (Side.BUY, Side.SELL):
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if is_market and command.time_in_force not in (TimeInForce.IOC, TimeInForce.FOK):
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if is_market and not 0 < command.slippage_ppm <= market.params.price_band_ppm:
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if command.time_in_force is TimeInForce.GTT and command.good_til_ns <= ctx.state.timestamp_ns:
        raise Rejected(RejectReason.COMMAND_EXPIRED)
    if command.time_in_force is not TimeInForce.GTT and command.good_til_ns != 0:
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if command.order_type in TRIGGERED_TYPES:
        check_price(ctx, market, command.trigger_price_quantums, tick, command.side, band=False)
    if not is_market:  # a stop-limit's band is checked when it fires, against that index
        triggered = command.order_type in TRIGGERED_TYPES
        check_price(ctx, market, command.price_quantums, tick, command.side, band=not triggered)
    elif command.price_quantums != 0:
        raise Rejected(RejectReason.MALFORMED_COMMAND)


def check_order_capacity(ctx: Context, subaccount: Subaccount | None, command: PlaceOrder) -> None:
    if subaccount is None:
        raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
    if len(subaccount.order_ids) >= limits.open_orders_per_subaccount_max:
        raise Rejected(RejectReason.TOO_MANY_OPEN_ORDERS)
    if not 0 <= command.client_order_id <= limits.client_order_id_max:
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if command.client_order_id and command.client_order_id in subaccount.client_order_ids:
        raise Rejected(RejectReason.DUPLICATE_CLIENT_ORDER_ID)
    new_market = command.market_id not in subaccount.positions
    if new_market and len(subaccount.positions) >= limits.positions_per_subaccount_max:
        raise Rejected(RejectReason.TOO_MANY_POSITIONS)


def order_limit_price(ctx: Context, market: MarketState, command: PlaceOrder) -> int:
    """A market order's limit is the mark moved by its slippage bound, on the tick grid and
    inside the band (the bound protects the taker, so it rounds toward the mark)."""
    if command.order_type not in MARKET_TYPES:
        return command.price_quantums
    return slippage_limit(ctx, market, command.side, command.slippage_ppm)


def slippage_limit(ctx: Context, market: MarketState, side: Side, slippage_ppm: int) -> int:
    tick = market.params.tick_quantums
    mark = market.mark_price_quantums
    if side is Side.BUY:
        bound = mark + mark * slippage_ppm // PPM_ONE
        return max(bound // tick * tick, tick)
    bound = mark - mark * slippage_ppm // PPM_ONE
    return max(div_ceil(bound, tick) * tick, tick)


def arm_trigger(
    ctx: Context, owner: SubaccountId, market: MarketState, command: PlaceOrder
) -> None:
    if len(market.triggers) >= limits.trigger_orders_per_market_max:
        raise Rejected(RejectReason.BOOK_FULL)
    if trigger_count(ctx, owner) >= limits.trigger_orders_per_subaccount_max:
        raise Rejected(RejectReason.TOO_MANY_OPEN_ORDERS)
    if command.time_in_force is TimeInForce.POST_ONLY:
        raise Rejected(RejectReason.TRIGGER_INVALID)
    probe = TriggerOrder(
        order_id=OrderId(0), owner=owner, market_id=command.market_id, side=command.side,
        order_type=command.order_type, size_base_quantums=command.size_base_quantums,
        price_quantums=command.price_quantums,
        trigger_price_quantums=command.trigger_price_quantums,
        time_in_force=command.time_in_force, reduce_only=command.reduce_only,
        slippage_ppm=command.slippage_ppm, good_til_ns=command.good_til_ns,
        client_order_id=command.client_order_id,
    )  # fmt: skip
    if probe.fires_at(market.mark_price_quantums):
        raise Rejected(RejectReason.TRIGGER_INVALID)  # it would fire at once: wrong side
    mutated(ctx)
    order_id = next_order_id(ctx)
    trigger = dataclasses.replace(probe, order_id=order_id)
    market.triggers[order_id] = trigger
    trigger_prices(ctx, market.params.market_id).add(trigger)
    ctx.touched.orders.add(order_id)
    register_order(ctx, owner, order_id, command.market_id, command.client_order_id)
    if command.good_til_ns:
        market.push_expiry(command.good_til_ns, order_id)
    ctx.events.append(accepted_event(trigger.order_id, owner, command))
    ctx.events.append(
        OrderTriggerArmed(order_id=order_id, trigger_price_quantums=command.trigger_price_quantums)
    )


def trigger_count(ctx: Context, owner: SubaccountId) -> int:
    """Conditional orders cost no margin until they fire, so each subaccount gets few."""
    subaccount = ctx.state.ledger.subaccounts[owner]
    markets = ctx.state.markets
    return sum(o in markets[m].triggers for o, m in subaccount.order_ids.items())


def accepted_event(order_id: OrderId, owner: SubaccountId, command: PlaceOrder) -> OrderAccepted:
    return OrderAccepted(
        order_id=order_id, subaccount=str(owner), market_id=command.market_id,
        side=command.side, price_quantums=command.price_quantums,
        size_base_quantums=command.size_base_quantums, client_order_id=command.client_order_id,
    )  # fmt: skip


def cancel_order(ctx: Context, command: CancelOrder) -> None:
    check_subaccount_number(command.subaccount_number)
    owner = SubaccountId(command.signer, command.subaccount_number)
    order_id = find_order(ctx, owner, command.order_id, command.client_order_id)
    mutated(ctx)
    cancel_any(ctx, order_id, CancelCause.USER)


def cancel_all(ctx: Context, command: CancelAll) -> None:
    check_subaccount_number(command.subaccount_number)
    if command.market_id is not None and command.market_id not in ctx.state.markets:
        raise Rejected(RejectReason.UNKNOWN_MARKET)
    owner = SubaccountId(command.signer, command.subaccount_number)
    subaccount = ctx.state.ledger.subaccounts.get(owner)
    if subaccount is None:
        return
    doomed = [
        order_id
        for order_id, market_id in sorted(subaccount.order_ids.items())
        if command.market_id is None or market_id == command.market_id
    ]
    if doomed:
        mutated(ctx)
    for order_id in doomed:
        cancel_any(ctx, order_id, CancelCause.USER)


def amend_order(ctx: Context, command: AmendOrder) -> None:
    """Shrinking at the same price keeps priority; anything else is cancel + new order,
    atomically: if the new order would be rejected, the old one stays as it was. A shrink is a
    partial cancel: like a cancel it needs no price, and runs on a stale index (degraded mode)."""
    check_subaccount_number(command.subaccount_number)
    owner = SubaccountId(command.signer, command.subaccount_number)
    order_id = find_order(ctx, owner, command.order_id, 0)
    market_id = ctx.state.order_markets.get(order_id)
    if market_id is None:
        raise Rejected(RejectReason.AMEND_NOT_ALLOWED)  # triggers are cancelled, not amended
    market = ctx.state.markets[market_id]
    order = market.book.get(order_id)
    assert order is not None, order_id
    same_price = command.price_quantums == order.price_quantums
    shrinks = same_price and command.size_base_quantums <= order.remaining_base_quantums
    if not shrinks:
        tradable_market(ctx, market.params.market_id)
    check_size(market, command.size_base_quantums)
    tick = market.params.tick_quantums
    check_price(ctx, market, command.price_quantums, tick, order.side, band=not shrinks)
    if shrinks:
        mutated(ctx)
        if command.size_base_quantums < order.remaining_base_quantums:
            resize_resting(ctx, market, order, command.size_base_quantums)
        ctx.events.append(OrderAmended(
            order_id=order_id, price_quantums=order.price_quantums,
            size_base_quantums=command.size_base_quantums, kept_priority=True,
        ))  # fmt: skip
        return
    replace_order(ctx, market, order, command)


def replace_order(
    ctx: Context, market: MarketState, order: RestingOrder, command: AmendOrder
) -> None:
    # Check the replacement on a state without the old order: take it out, try, put it back
    # if the replacement is rejected. The book and aggregates are restored exactly.
    owner = ctx.state.ledger.subaccounts[order.owner]
    time_in_force = TimeInForce.GTT if order.good_til_ns else TimeInForce.GTC
    if order.post_only:
        time_in_force = TimeInForce.POST_ONLY
    spec = OrderSpec(
        OrderId(ctx.state.next_order_id), order.owner, market.params.market_id, order.side,
        command.size_base_quantums, command.price_quantums, time_in_force,
        order.reduce_only, order.good_til_ns, order.client_order_id,
    )  # fmt: skip
    snapshot = copy_open_orders(owner.open_orders.get(market.params.market_id))
    successor = market.book.successor(order.order_id)
    detach_resting(ctx, market, order)
    try:
        execute_order(ctx, spec, accepted=True)
    except Rejected:
        reattach_resting(ctx, market, order, successor, snapshot)
        raise
    # The old order is gone for good: drop it from its owner's registry (its client order id
    # now belongs to the replacement, which ``_unregister_order`` leaves in place).
    unregister_order(ctx, owner, order.order_id, market.params.market_id, order.client_order_id)
    ctx.events.insert(0, OrderCancelled(
        order_id=order.order_id, cause=CancelCause.AMENDED,
        remaining_base_quantums=order.remaining_base_quantums,
    ))  # fmt: skip
    ctx.touched.orders.add(order.order_id)


def find_order(ctx: Context, owner: SubaccountId, order_id: int, client_order_id: int) -> OrderId:
    subaccount = ctx.state.ledger.subaccounts.get(owner)
    if (order_id == 0) == (client_order_id == 0):
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if subaccount is None:
        raise Rejected(RejectReason.UNKNOWN_ORDER)
    if client_order_id:
        found = subaccount.client_order_ids.get(client_order_id)
        if found is None:
            raise Rejected(RejectReason.UNKNOWN_ORDER)
        return found
    if OrderId(order_id) not in subaccount.order_ids:
        known = order_id in ctx.state.order_markets or any(
            order_id in m.triggers for m in ctx.state.markets.values()
        )
        raise Rejected(RejectReason.NOT_ORDER_OWNER if known else RejectReason.UNKNOWN_ORDER)
    return OrderId(order_id)


def expire_orders(ctx: Context, market: MarketState) -> None:
    now = ctx.state.timestamp_ns
    live = len(market.book) + len(market.triggers)
    if len(market.expiries) > 2 * live + 64:
        market.compact_expiries()
    while market.expiries and market.expiries[0][0] <= now:
        _, order_id = heapq.heappop(market.expiries)
        if order_id in market.triggers:
            cancel_trigger(ctx, market, order_id, CancelCause.EXPIRED)
        elif market.book.get(order_id) is not None:
            cancel_resting(ctx, market, order_id, CancelCause.EXPIRED)


def fire_triggers(ctx: Context, market: MarketState) -> None:
    """The triggers the mark reached, in their firing order (``firing_order``), at most
    ``triggers_per_block_max`` and while their matches have walked less of the book than
    ``trigger_book_walk_per_block_max`` (the rest stay armed, and come first next block):
    found by price (``trigger_prices``), so that triggers far from the mark cost no block
    anything (a scan of every armed trigger made each block pay for all of them)."""
    mark = market.mark_price_quantums
    index = trigger_prices(ctx, market.params.market_id)
    order = firing_order(ctx, market, index.reached(mark))
    fired = [market.triggers[o] for o in order[: limits.triggers_per_block_max]]
    walk_ends = ctx.walked + limits.trigger_book_walk_per_block_max
    for trigger in fired:
        if ctx.walked >= walk_ends:
            break
        del market.triggers[trigger.order_id]
        index.remove(trigger)
        ctx.touched.orders.add(trigger.order_id)
        owner = ctx.state.ledger.subaccounts[trigger.owner]
        unregister_order(ctx, owner, trigger.order_id, trigger.market_id, trigger.client_order_id)
        ctx.events.append(OrderTriggered(order_id=trigger.order_id, mark_price_quantums=mark))
        try:
            execute_trigger(ctx, market, trigger, owner)
        except Rejected as rejection:
            if rejection.reason in _RETRYABLE_TRIGGER_REASONS:
                # A passing condition (a stale price elsewhere, no liquidity this block):
                # the stop stays armed and tries again next block.
                fired_event = ctx.events.pop()
                assert isinstance(fired_event, OrderTriggered)
                market.triggers[trigger.order_id] = trigger
                index.add(trigger)
                register_order(
                    ctx, trigger.owner, trigger.order_id, trigger.market_id, trigger.client_order_id
                )
                continue
            ctx.events.append(OrderCancelled(
                order_id=trigger.order_id, cause=CancelCause.TRIGGER_REJECTED,
                remaining_base_quantums=trigger.size_base_quantums,
            ))  # fmt: skip


def firing_order(ctx: Context, market: MarketState, reached: list[OrderId]) -> list[OrderId]:
    """The reached triggers (``reached``: by order id) in the order a block fires them: those
    that close their owner's position first (reduce-only, or against the position and no
    larger than it, as it stands when the block starts firing), then those that open; in each,
    one trigger of every account in turn (an account's own in id order; a turn's in id order).

    A block's walk is bounded (``trigger_book_walk_per_block_max``); in plain id order an
    account's stops armed earlier, each a market buy through a wall of 1,000 one-lot asks that
    its 1 USDC subaccount could not carry (refused after the walk, at no cost), spent the
    budget two a block and held an honest stop-loss a block for every two of them: behind 64,
    it was liquidated before it fired, the attacker its keeper (docs/RELIABILITY.md, "Economic
    attacks, round 12"). A closing trigger walks at most its
    position, so an attacker's needs a position of that size at risk in every subaccount;
    among opening ones, an account takes one turn a round however many it armed."""
    triggers = market.triggers
    subaccounts = ctx.state.ledger.subaccounts
    market_id = market.params.market_id
    closing: list[tuple[int, OrderId]] = []
    opening: list[tuple[int, OrderId]] = []
    closing_turns: dict[Address, int] = {}
    opening_turns: dict[Address, int] = {}
    positions: dict[tuple[Address, int], int] = {}  # by subaccount, read once each
    for order_id in reached:  # one pass, a few operations each: the reached may be 50,000
        trigger = triggers[order_id]
        owner = trigger.owner
        account = owner.owner
        closes = trigger.reduce_only
        if not closes:
            key = (account, owner.number)
            size = positions.get(key)
            if size is None:
                size = positions[key] = subaccounts[owner].position_size(market_id)
            closes = size != 0 and (size < 0) == (trigger.side is Side.BUY)
            closes = closes and trigger.size_base_quantums <= abs(size)
        turns, queue = (closing_turns, closing) if closes else (opening_turns, opening)
        turn = turns.get(account, 0)
        turns[account] = turn + 1
        queue.append((turn, order_id))
    closing.sort()
    opening.sort()
    return [order_id for _, order_id in closing] + [order_id for _, order_id in opening]


def misindexed_triggers(ctx: Context) -> list[OrderId]:
    """Armed triggers the index does not hold at their price, and entries it holds for no
    armed trigger: always empty (a full scan, for tests and the simulator)."""
    wrong: set[OrderId] = set()
    for market_id in ctx.state.markets.keys() | ctx.derived.trigger_prices.keys():
        market = ctx.state.markets.get(market_id)
        armed = {
            (t.fires_rising, t.trigger_price_quantums, t.order_id)
            for t in (market.triggers.values() if market is not None else ())
        }
        indexed = ctx.derived.trigger_prices.get(market_id)
        held = indexed.entries() if indexed is not None else set()
        wrong.update(order_id for _, _, order_id in armed ^ held)
    return sorted(wrong)


def execute_trigger(
    ctx: Context, market: MarketState, trigger: TriggerOrder, owner: Subaccount
) -> None:
    is_market = trigger.order_type in MARKET_TYPES
    if is_market:
        limit = slippage_limit(ctx, market, trigger.side, trigger.slippage_ppm)
    else:  # the band applies when the order enters the book, as for any limit order
        limit = trigger.price_quantums
        check_price(ctx, market, limit, market.params.tick_quantums, trigger.side, band=True)
    if trigger.client_order_id in owner.client_order_ids:
        raise Rejected(RejectReason.DUPLICATE_CLIENT_ORDER_ID)
    spec = OrderSpec(
        trigger.order_id, trigger.owner, trigger.market_id, trigger.side,
        trigger.size_base_quantums, limit, trigger.time_in_force, trigger.reduce_only,
        trigger.good_til_ns, trigger.client_order_id,
    )  # fmt: skip
    register_order(ctx, trigger.owner, trigger.order_id, trigger.market_id, trigger.client_order_id)
    try:
        execute_order(ctx, spec, accepted=False)
    except Rejected:
        unregister_order(ctx, owner, trigger.order_id, trigger.market_id, trigger.client_order_id)
        raise


TRIGGERED_TYPES = frozenset({
    OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET,
    OrderType.TAKE_PROFIT_LIMIT,
})  # fmt: skip


MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})


_RETRYABLE_TRIGGER_REASONS = frozenset({RejectReason.ORACLE_STALE, RejectReason.NO_LIQUIDITY})
