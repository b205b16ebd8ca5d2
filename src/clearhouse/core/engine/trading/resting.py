"""Resting orders: rest, resize, detach and reattach, cancel (resting, trigger, any),
reduce-only upkeep, and each owner's order registry and open-order aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core import limits
from clearhouse.core.engine.context import Context, mutated, trigger_prices
from clearhouse.core.errors import InvariantViolation
from clearhouse.core.ids import (
    MarketId,
    OrderId,
    Side,
    SubaccountId,
)
from clearhouse.core.ledger import (
    OpenOrders,
    Subaccount,
)
from clearhouse.core.matching import RestingOrder
from clearhouse.core.messages import (
    CancelCause,
    OrderCancelled,
    OrderRested,
    TimeInForce,
)
from clearhouse.core.state import (
    MarketState,
)
from clearhouse.core.units import (
    div_exact,
)


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order after validation, ready to match (from a command or a fired trigger)."""

    order_id: OrderId
    owner: SubaccountId
    market_id: MarketId
    side: Side
    size_base_quantums: int
    limit_price_quantums: int
    time_in_force: TimeInForce
    reduce_only: bool
    good_til_ns: int
    client_order_id: int

    @property
    def rests(self) -> bool:
        return self.time_in_force in (TimeInForce.GTC, TimeInForce.GTT, TimeInForce.POST_ONLY)


def notional_of(market: MarketState, size: int, price: int) -> int:
    """size × price / base quantums per unit: exact on the market's grid (params enforce)."""
    return div_exact(size * price, market.params.base_quantums_per_unit)


def forget_filled(
    ctx: Context, maker: Subaccount, market_id: MarketId, order: RestingOrder
) -> None:
    """A fully filled maker order has left the book: drop it from every index."""
    orders = maker.open_orders[market_id]
    orders.count -= 1
    orders.reduce_only_count -= order.reduce_only
    if orders.count == 0:
        assert orders == OpenOrders(), orders
        del maker.open_orders[market_id]
    del ctx.state.order_markets[order.order_id]
    unregister_order(ctx, maker, order.order_id, market_id, order.client_order_id)


def rest_order(
    ctx: Context, market: MarketState, owner: Subaccount, spec: OrderSpec, rest_size: int
) -> None:
    if len(market.book) >= limits.orders_per_book_max:
        ctx.events.append(OrderCancelled(
            order_id=spec.order_id, cause=CancelCause.IOC_REMAINDER,
            remaining_base_quantums=rest_size,
        ))  # fmt: skip
        unregister_order(ctx, owner, spec.order_id, spec.market_id, spec.client_order_id)
        return
    market.book.add(RestingOrder(
        order_id=spec.order_id, owner=spec.owner, side=spec.side,
        price_quantums=spec.limit_price_quantums, remaining_base_quantums=rest_size,
        reduce_only=spec.reduce_only, good_til_ns=spec.good_til_ns,
        client_order_id=spec.client_order_id,
        post_only=spec.time_in_force is TimeInForce.POST_ONLY,
        sequence=ctx.state.next_rest_sequence,
    ))  # fmt: skip
    ctx.state.next_rest_sequence += 1
    orders = add_resting(owner, market, spec.side, rest_size, spec.limit_price_quantums)
    orders.reduce_only_count += spec.reduce_only
    if spec.good_til_ns:
        market.push_expiry(spec.good_til_ns, spec.order_id)
    ctx.state.order_markets[spec.order_id] = spec.market_id
    ctx.touched.orders.add(spec.order_id)
    ctx.touched.subaccounts.add(spec.owner)
    ctx.events.append(OrderRested(order_id=spec.order_id, remaining_base_quantums=rest_size))


def enforce_reduce_only(ctx: Context, market: MarketState, subaccount: Subaccount) -> None:
    """Resting reduce-only orders may never add to a position: after the position changes,
    shrink them to it or cancel them (dYdX does the same)."""
    market_id = market.params.market_id
    orders = subaccount.open_orders.get(market_id)
    if orders is None or orders.reduce_only_count == 0:
        return
    position = subaccount.position_size(market_id)
    for order_id, order_market in sorted(subaccount.order_ids.items()):
        order = market.book.get(order_id) if order_market == market_id else None
        if order is None or not order.reduce_only:
            continue
        reducible = abs(position) if (position > 0) == (order.side is Side.SELL) else 0
        if reducible == 0:
            cancel_resting(ctx, market, order_id, CancelCause.REDUCE_ONLY)
        elif order.remaining_base_quantums > reducible:
            resize_resting(ctx, market, order, reducible)


def resize_resting(ctx: Context, market: MarketState, order: RestingOrder, size: int) -> None:
    owner = ctx.state.ledger.subaccounts[order.owner]
    cut = order.remaining_base_quantums - size
    notional = notional_of(market, cut, order.price_quantums)
    add_to_open_orders(owner.open_orders[market.params.market_id], order.side, -cut, -notional)
    market.book.resize(order.order_id, size)
    ctx.touched.orders.add(order.order_id)
    ctx.touched.subaccounts.add(order.owner)


def cancel_any(ctx: Context, order_id: OrderId, cause: CancelCause) -> None:
    market_id = ctx.state.order_markets.get(order_id)
    if market_id is not None:
        cancel_resting(ctx, ctx.state.markets[market_id], order_id, cause)
        return
    for market in ctx.state.markets.values():
        if order_id in market.triggers:
            cancel_trigger(ctx, market, order_id, cause)
            return
    raise InvariantViolation(f"order {order_id} is registered but in no book")


def cancel_quotes(ctx: Context, market: MarketState, order_ids: tuple[int, int]) -> None:
    """A vault's bid and ask (ids, 0 for none) cancelled, those still resting."""
    for order_id in order_ids:
        if order_id and market.book.get(OrderId(order_id)) is not None:
            mutated(ctx)
            cancel_resting(ctx, market, OrderId(order_id), CancelCause.USER)


def cancel_resting(
    ctx: Context, market: MarketState, order_id: OrderId, cause: CancelCause
) -> None:
    order = market.book.get(order_id)
    assert order is not None, order_id
    detach_resting(ctx, market, order)
    owner = ctx.state.ledger.subaccounts[order.owner]
    unregister_order(ctx, owner, order_id, market.params.market_id, order.client_order_id)
    ctx.events.append(OrderCancelled(
        order_id=order_id, cause=cause, remaining_base_quantums=order.remaining_base_quantums,
    ))  # fmt: skip


def detach_resting(ctx: Context, market: MarketState, order: RestingOrder) -> None:
    """Take a resting order off the book and out of its owner's aggregates."""
    market.book.remove(order.order_id)
    owner = ctx.state.ledger.subaccounts[order.owner]
    market_id = market.params.market_id
    orders = owner.open_orders[market_id]
    notional = notional_of(market, order.remaining_base_quantums, order.price_quantums)
    add_to_open_orders(orders, order.side, -order.remaining_base_quantums, -notional)
    orders.count -= 1
    orders.reduce_only_count -= order.reduce_only
    if orders.count == 0:
        assert orders == OpenOrders(), orders
        del owner.open_orders[market_id]
    del ctx.state.order_markets[order.order_id]
    ctx.touched.orders.add(order.order_id)
    ctx.touched.subaccounts.add(order.owner)


def reattach_resting(
    ctx: Context,
    market: MarketState,
    order: RestingOrder,
    successor: OrderId | None,
    snapshot: OpenOrders,
) -> None:
    market.book.insert_before(order, successor)
    owner = ctx.state.ledger.subaccounts[order.owner]
    owner.own_open_orders()[market.params.market_id] = snapshot
    ctx.state.order_markets[order.order_id] = market.params.market_id


def cancel_trigger(
    ctx: Context, market: MarketState, order_id: OrderId, cause: CancelCause
) -> None:
    trigger = market.triggers.pop(order_id)
    trigger_prices(ctx, market.params.market_id).remove(trigger)
    ctx.touched.orders.add(order_id)
    owner = ctx.state.ledger.subaccounts[trigger.owner]
    unregister_order(ctx, owner, order_id, market.params.market_id, trigger.client_order_id)
    ctx.events.append(OrderCancelled(
        order_id=order_id, cause=cause, remaining_base_quantums=trigger.size_base_quantums,
    ))  # fmt: skip


def register_order(
    ctx: Context, owner: SubaccountId, order_id: OrderId, market_id: MarketId, client_order_id: int
) -> None:
    subaccount = ctx.state.ledger.subaccounts[owner]
    subaccount.own_order_ids()[order_id] = market_id
    if client_order_id:
        subaccount.own_client_order_ids()[client_order_id] = order_id
    ctx.touched.subaccounts.add(owner)


def unregister_order(
    ctx: Context,
    subaccount: Subaccount,
    order_id: OrderId,
    market_id: MarketId,
    client_order_id: int,
) -> None:
    assert subaccount.order_ids.get(order_id) == market_id, (order_id, market_id)
    del subaccount.order_ids[order_id]
    if client_order_id and subaccount.client_order_ids.get(client_order_id) == order_id:
        del subaccount.client_order_ids[client_order_id]
    ctx.touched.subaccounts.add(subaccount.subaccount_id)


def add_resting(
    owner: Subaccount, market: MarketState, side: Side, size: int, price_quantums: int
) -> OpenOrders:
    """One more order of ``size`` at ``price_quantums`` in ``owner``'s aggregates of the
    market (the count too: margin skips a market whose open-order count is zero)."""
    orders = owner.own_open_orders().setdefault(market.params.market_id, OpenOrders())
    add_to_open_orders(orders, side, size, notional_of(market, size, price_quantums))
    orders.count += 1
    return orders


def add_to_open_orders(orders: OpenOrders, side: Side, size: int, notional: int) -> None:
    if side is Side.BUY:
        orders.bid_base_quantums += size
        orders.bid_notional_quote_quantums += notional
    else:
        orders.ask_base_quantums += size
        orders.ask_notional_quote_quantums += notional
    assert orders.bid_base_quantums >= 0 and orders.ask_base_quantums >= 0, orders


def copy_open_orders(orders: OpenOrders | None) -> OpenOrders:
    if orders is None:
        return OpenOrders()
    return OpenOrders(
        orders.bid_base_quantums, orders.bid_notional_quote_quantums, orders.ask_base_quantums,
        orders.ask_notional_quote_quantums, orders.count, orders.reduce_only_count,
    )  # fmt: skip
