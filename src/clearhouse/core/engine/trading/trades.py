"""The one trade path: tradable-market and price/size checks, a plan against solvent
makers, margin on both sides, exposure caps, and the commit of fills into positions. Takers,
makers, liquidation orders and auction bidders all go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from clearhouse.core import limits, settlement
from clearhouse.core.engine.context import (
    Context,
    Rejected,
    mutated,
    next_order_id,
    pay_pnl,
    transfer,
)
from clearhouse.core.engine.risk import admit, book_exposure, is_paused, is_reduce_only, risk_of
from clearhouse.core.engine.trading.resting import (
    OrderSpec,
    add_resting,
    add_to_open_orders,
    cancel_resting,
    copy_open_orders,
    enforce_reduce_only,
    forget_filled,
    notional_of,
    register_order,
    rest_order,
    unregister_order,
)
from clearhouse.core.engine.valuation import surface_fresh
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    MarketId,
    OrderId,
    Side,
    SubaccountId,
    TradeId,
)
from clearhouse.core.ledger import (
    FEES,
    OPTIONS_VAULT,
    Position,
    Subaccount,
    funding_account,
)
from clearhouse.core.margin import (
    is_reducing,
)
from clearhouse.core.matching import MatchPlan, PlannedFill
from clearhouse.core.messages import (
    CancelCause,
    OrderCancelled,
    OrderFilled,
    TimeInForce,
)
from clearhouse.core.options_vault import Caps, within_caps
from clearhouse.core.params import (
    MarketKind,
)
from clearhouse.core.state import (
    MarketState,
    MarketStatus,
)
from clearhouse.core.units import (
    PPM_ONE,
    div_ceil,
    div_floor,
)


@dataclass(frozen=True, slots=True)
class Trade:
    """A planned fill with its counterparties' position deltas, ready to commit."""

    fill: PlannedFill
    notional_quote_quantums: int
    maker_fee_quote_quantums: int
    taker_fee_quote_quantums: int


def tradable_market(ctx: Context, market_id: MarketId) -> MarketState:
    market = ctx.state.markets.get(market_id)
    if market is None:
        raise Rejected(RejectReason.UNKNOWN_MARKET)
    if market.status is not MarketStatus.ACTIVE:
        raise Rejected(RejectReason.MARKET_NOT_ACTIVE)
    if is_paused(ctx, market_id):
        raise Rejected(RejectReason.MARKET_PAUSED)
    oracle = ctx.state.oracles[market.params.oracle_id]
    if not oracle.is_usable():
        raise Rejected(RejectReason.ORACLE_STALE)
    if market.params.kind is MarketKind.OPTION and not surface_fresh(ctx, oracle):
        raise Rejected(RejectReason.SURFACE_STALE)
    return market


def check_size(market: MarketState, size: int) -> None:
    params = market.params
    if not 0 < size <= limits.size_base_quantums_max:
        raise Rejected(RejectReason.AMOUNT_NOT_POSITIVE)
    if size % params.step_base_quantums != 0:
        raise Rejected(RejectReason.SIZE_OFF_STEP)
    if size < params.min_order_base_quantums:
        raise Rejected(RejectReason.SIZE_BELOW_MINIMUM)


def check_price(
    ctx: Context, market: MarketState, price: int, tick: int, side: Side, *, band: bool
) -> None:
    if not 0 < price <= limits.price_quantums_max:
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if price % tick != 0:
        raise Rejected(RejectReason.PRICE_OFF_TICK)
    if not band:
        return
    params = market.params
    index = ctx.state.oracles[params.oracle_id].index_price_quantums
    if params.kind is MarketKind.OPTION:
        # An option moves many times its underlying: its band is around its own mark,
        # with a floor in the underlying's terms so that cheap options can still trade.
        through = (price - market.mark_price_quantums) * side
        room = params.price_band_ppm * market.mark_price_quantums
        if through * PPM_ONE > room + params.option_band_floor_ppm * index:
            raise Rejected(RejectReason.PRICE_OUTSIDE_BAND)
        return
    through = (price - index) * side  # how far the price goes through the index
    if through * PPM_ONE > params.price_band_ppm * index:
        raise Rejected(RejectReason.PRICE_OUTSIDE_BAND)


def execute_order(
    ctx: Context, spec: OrderSpec, *, accepted: bool, margin_admitted: bool = False
) -> None:
    """Match an order against the book, margin-check both sides, then commit everything
    (``margin_admitted``: see ``place_order``; only for an order that cannot trade)."""
    market = ctx.state.markets[spec.market_id]
    subaccount = ctx.state.ledger.subaccounts[spec.owner]
    if not spec.reduce_only and is_reduce_only(ctx, market):
        raise Rejected(RejectReason.MARKET_REDUCE_ONLY)
    size = executable_size(ctx, subaccount, spec)
    if spec.time_in_force is TimeInForce.POST_ONLY and market.book.would_cross(
        spec.side, spec.limit_price_quantums
    ):
        raise Rejected(RejectReason.POST_ONLY_WOULD_CROSS)
    plan, maker_cancels = plan_with_solvent_makers(ctx, market, spec, size)
    if spec.time_in_force is TimeInForce.FOK and plan.filled_base_quantums < size:
        raise Rejected(RejectReason.FOK_NOT_FILLABLE)
    trades = [price_trade(ctx, market, fill) for fill in plan.fills]
    rest_size = size - plan.filled_base_quantums if spec.rests else 0
    assert not (margin_admitted and trades), "only a resting order's margin is admitted ahead"
    check_taker(ctx, subaccount, spec, trades, rest_size, margin_admitted=margin_admitted)
    mutated(ctx)
    if accepted:
        assert spec.order_id == next_order_id(ctx)
        register_order(ctx, spec.owner, spec.order_id, spec.market_id, spec.client_order_id)
    commit_plan(ctx, market, spec, plan, maker_cancels, trades)
    finish_order(ctx, market, spec, size, plan.filled_base_quantums, rest_size)


def commit_plan(
    ctx: Context,
    market: MarketState,
    spec: OrderSpec,
    plan: MatchPlan,
    maker_cancels: list[tuple[OrderId, CancelCause]],
    trades: list[Trade],
) -> None:
    """Cancel what the match walked past (own orders, failing makers), then fill."""
    for order_id in plan.self_trade_cancels:
        cancel_resting(ctx, market, order_id, CancelCause.SELF_TRADE)
    for order_id, cause in maker_cancels:
        cancel_resting(ctx, market, order_id, cause)
    for trade in trades:
        commit_trade(ctx, market, spec, trade)


def executable_size(ctx: Context, subaccount: Subaccount, spec: OrderSpec) -> int:
    if not spec.reduce_only:
        return spec.size_base_quantums
    position = subaccount.position_size(spec.market_id)
    if position == 0 or (position > 0) == (spec.side is Side.BUY):
        raise Rejected(RejectReason.REDUCE_ONLY_WOULD_INCREASE)
    return min(spec.size_base_quantums, abs(position))


def plan_with_solvent_makers(
    ctx: Context, market: MarketState, spec: OrderSpec, size: int
) -> tuple[MatchPlan, list[tuple[OrderId, CancelCause]]]:
    """Plan the match; makers that could no longer carry their fill are skipped (and are
    cancelled if the order commits), and the plan is made again without them. Reduce-only
    makers whose fill would take their owner past flat (counting the owner's earlier fills in
    the same walk) are skipped by the walk itself, and cancelled likewise: a wall of them costs
    no re-plan (one re-plan each let a small position's many reduce-only orders refuse every
    taker that met them as NO_LIQUIDITY, and made each refusal a hundred book walks). When
    more makers fail than ``limits.maker_rejections_per_order_max`` re-plans clear, an order
    that rests is refused NO_LIQUIDITY; one that never rests fills what came before them."""
    excluded: set[OrderId] = set()
    cancels: list[tuple[OrderId, CancelCause]] = []
    reducible = reducible_by(ctx, market, spec.side.opposite)
    clear_before = size  # what the last plan filled before its first failing maker
    for _ in range(limits.maker_rejections_per_order_max):
        plan = _plan(ctx, market, spec, size, excluded, reducible)
        # Cancelled in the order found, whatever later walks find: a maker that then fails
        # keeps none of its past-flat orders (its orders leave the walk once it fails).
        cancels.extend((o, CancelCause.REDUCE_ONLY) for o in plan.reduce_only_cancels)
        excluded.update(plan.reduce_only_cancels)
        failing = failing_makers(ctx, market, plan, spec.side.opposite)
        if not failing:
            return plan, cancels
        clear_before = _filled_before(plan, failing)
        for fill in plan.fills:
            if fill.maker_owner in failing and fill.maker_order_id not in excluded:
                excluded.add(fill.maker_order_id)
                cause = failing[fill.maker_owner]
                if cause is not None:  # None: skipped for now (a stale price), kept resting
                    cancels.append((fill.maker_order_id, cause))
        # The same owner's other orders on that side would fail alike: skip them all now,
        # so that a wall of small orders from one subaccount costs one re-plan, not many.
        excluded.update(orders_of(ctx, failing, market, spec.side.opposite))
    if spec.rests or spec.time_in_force is TimeInForce.FOK:
        raise Rejected(RejectReason.NO_LIQUIDITY)
    # More failing makers than one match may reject: an order that never rests takes what the
    # book gave before them and goes, and the makers it found failing are cancelled (refusing
    # it left them all resting, so that as many makers failing margin as the budget, each with
    # one small order at the top, refused every small taker for as long as they stayed).
    return _clear_part(ctx, market, spec, clear_before, excluded, reducible), cancels


def _filled_before(plan: MatchPlan, failing: Mapping[SubaccountId, object]) -> int:
    """What a plan fills before its first fill by one of the ``failing`` makers."""
    filled = 0
    for fill in plan.fills:
        if fill.maker_owner in failing:
            break
        filled += fill.size_base_quantums
    return filled


def _clear_part(
    ctx: Context, market: MarketState, spec: OrderSpec, size: int, excluded: set[OrderId],
    reducible: Callable[[SubaccountId], int],
) -> MatchPlan:  # fmt: skip
    """The plan of the first ``size`` of the walk (none: an empty plan), whose makers all
    passed when it was part of a longer walk; should a maker fail with its smaller share,
    the order is refused as before."""
    if size == 0:
        return MatchPlan(fills=(), self_trade_cancels=(), filled_base_quantums=0)
    plan = _plan(ctx, market, spec, size, excluded, reducible)
    if failing_makers(ctx, market, plan, spec.side.opposite):
        raise Rejected(RejectReason.NO_LIQUIDITY)
    return plan


def _plan(
    ctx: Context, market: MarketState, spec: OrderSpec, size: int, excluded: set[OrderId],
    reducible: Callable[[SubaccountId], int],
) -> MatchPlan:  # fmt: skip
    """The book's plan, its walk counted in ``ctx.walked`` (what fired triggers spend)."""
    plan = market.book.plan(
        side=spec.side, limit_price_quantums=spec.limit_price_quantums, size_base_quantums=size,
        owner=spec.owner, excluded=frozenset(excluded), reducible=reducible,
    )  # fmt: skip
    ctx.walked += len(plan.fills) + len(plan.self_trade_cancels) + len(plan.reduce_only_cancels)
    return plan


def reducible_by(
    ctx: Context, market: MarketState, maker_side: Side
) -> Callable[[SubaccountId], int]:
    """What a maker's reduce-only orders on ``maker_side`` may fill in all: its position's
    size on the side they close (a plan counts each fill of the maker against it)."""
    market_id = market.params.market_id
    subaccounts = ctx.state.ledger.subaccounts

    def reducible(owner: SubaccountId) -> int:
        return max(-subaccounts[owner].position_size(market_id) * maker_side, 0)

    return reducible


def orders_of(
    ctx: Context, owners: Iterable[SubaccountId], market: MarketState, side: Side
) -> list[OrderId]:
    market_id = market.params.market_id
    found: list[OrderId] = []
    for owner in owners:
        for order_id, order_market in ctx.state.ledger.subaccounts[owner].order_ids.items():
            order = market.book.get(order_id) if order_market == market_id else None
            if order is not None and order.side is side:
                found.append(order_id)
    return found


def failing_makers(
    ctx: Context, market: MarketState, plan: MatchPlan, maker_side: Side
) -> dict[SubaccountId, CancelCause | None]:
    """Makers that may not take their planned fills, and why (None: skip, do not cancel)."""
    by_maker: dict[SubaccountId, list[PlannedFill]] = {}
    for fill in plan.fills:
        by_maker.setdefault(fill.maker_owner, []).append(fill)
    market_id = market.params.market_id
    cooling_off = is_reduce_only(ctx, market)
    failing: dict[SubaccountId, CancelCause | None] = {}
    for owner, fills in by_maker.items():
        maker = ctx.state.ledger.subaccounts[owner]
        trades = [price_trade(ctx, market, fill) for fill in fills]
        after = after_trades(ctx, maker, market, maker_side, trades, maker=True)
        size_before = maker.position_size(market_id)
        if cooling_off and not is_reducing(size_before, after.position_size(market_id)):
            failing[owner] = CancelCause.COOLING_OFF
        elif exceeds_position_limits(ctx, market, maker, after):
            failing[owner] = CancelCause.POSITION_LIMIT
        elif owner == OPTIONS_VAULT and passes_vault_caps(ctx, maker, after):
            failing[owner] = CancelCause.OPTIONS_VAULT_CAP
        elif (refusal := admit(ctx, maker, after, market_id)) is not None:
            # A stale price skips the maker for now (it stays resting); margin cancels.
            stale = refusal is RejectReason.ORACLE_STALE
            failing[owner] = None if stale else CancelCause.MAKER_MARGIN
    return failing


def passes_vault_caps(ctx: Context, vault: Subaccount, after: Subaccount) -> bool:
    """Would these fills take the options vault's book past a cap (SPEC §11)? Its quotes are
    sized against its caps when they are made, but several can fill before it requotes (in
    one block, or after the market moved its book toward a cap): each fill is checked here
    against the book as it is and the caps at its NAV now, and one that would take any
    exposure past its cap, further from zero, is refused and its quote cancelled
    (``within_caps``: a fill that brings a breach back is welcome)."""
    params = ctx.state.options_vault.params
    if params is None:
        return False
    caps = Caps.of(params, risk_of(ctx, vault).equity)
    return not within_caps(book_exposure(ctx, after), book_exposure(ctx, vault), caps)


def check_taker(
    ctx: Context, subaccount: Subaccount, spec: OrderSpec, trades: list[Trade], rest_size: int,
    *, margin_admitted: bool = False,
) -> None:  # fmt: skip
    market = ctx.state.markets[spec.market_id]
    after = after_trades(ctx, subaccount, market, spec.side, trades, maker=False)
    if rest_size:
        add_resting(after, market, spec.side, rest_size, spec.limit_price_quantums)
    if len(after.positions) > limits.positions_per_subaccount_max:
        raise Rejected(RejectReason.TOO_MANY_POSITIONS)
    check_exposure_caps(ctx, market, subaccount, after, trades, spec.side)
    if margin_admitted:
        return
    # Below IM, an order may still go through if it only reduces risk: its fills shrink the
    # position, and whatever rests is reduce-only and adds no IM on its worst side.
    refusal = admit(
        ctx, subaccount, after, spec.market_id, adds_resting=rest_size > 0,
        reduce_only=spec.reduce_only,
    )  # fmt: skip
    if refusal is not None:
        raise Rejected(refusal)


def check_exposure_caps(
    ctx: Context,
    market: MarketState,
    taker: Subaccount,
    after: Subaccount,
    trades: list[Trade],
    side: Side,
) -> None:
    """Open interest stays under the market's cap, and no position outgrows the book's depth
    (dYdX YFI 2023: a thin market cornered by one account)."""
    params = market.params.liquidation
    if params.open_interest_cap_base_quantums:
        growth = open_interest_growth(ctx, market, taker, trades, side)
        total = market.open_interest_base_quantums + growth
        if growth > 0 and total > params.open_interest_cap_base_quantums:
            raise Rejected(RejectReason.OPEN_INTEREST_CAP_EXCEEDED)
    if over_position_cap(ctx, market, taker, after):
        raise Rejected(RejectReason.POSITION_CAP_EXCEEDED)


def open_interest_growth(
    ctx: Context, market: MarketState, taker: Subaccount, trades: list[Trade], side: Side
) -> int:
    """How much open interest (summed longs) these fills add, over taker and makers."""
    market_id = market.params.market_id
    sizes: dict[SubaccountId, int] = {}
    for trade in trades:
        for owner, delta in (
            (taker.subaccount_id, trade.fill.size_base_quantums * side),
            (trade.fill.maker_owner, -trade.fill.size_base_quantums * side),
        ):
            before = sizes.get(owner)
            if before is None:
                before = ctx.state.ledger.subaccounts[owner].position_size(market_id)
            sizes[owner] = before + delta
    growth = 0
    for owner, size in sizes.items():
        before = ctx.state.ledger.subaccounts[owner].position_size(market_id)
        growth += max(size, 0) - max(before, 0)
    return growth


def position_cap(ctx: Context, market_id: MarketId) -> int | None:
    """The largest position the book's depth supports now: max(floor, multiple × the
    thinner side's resting size within the band around the mark); None when uncapped."""
    market = ctx.state.markets[market_id]
    params = market.params.liquidation
    if params.position_cap_floor_base_quantums == 0:
        return None
    mark = market.mark_price_quantums
    band = div_floor(mark * params.position_cap_depth_band_ppm, PPM_ONE)
    levels = limits.depth_levels_max
    bids = market.book.size_within(Side.BUY, mark - band, levels)
    asks = market.book.size_within(Side.SELL, mark + band, levels)
    by_depth = div_floor(min(bids, asks) * params.position_cap_depth_multiple_ppm, PPM_ONE)
    return max(params.position_cap_floor_base_quantums, by_depth)


def exceeds_position_limits(
    ctx: Context, market: MarketState, before: Subaccount, after: Subaccount
) -> bool:
    too_many = len(after.positions) > limits.positions_per_subaccount_max
    return too_many or over_position_cap(ctx, market, before, after)


def over_position_cap(
    ctx: Context, market: MarketState, before: Subaccount, after: Subaccount
) -> bool:
    cap = position_cap(ctx, market.params.market_id)
    if cap is None:
        return False
    market_id = market.params.market_id
    size_after = abs(after.position_size(market_id))
    return size_after > cap and size_after > abs(before.position_size(market_id))


def after_trades(
    ctx: Context,
    subaccount: Subaccount,
    market: MarketState,
    side: Side,
    trades: list[Trade],
    *,
    maker: bool,
) -> Subaccount:
    """A copy of the subaccount as it would be after these trades (nothing is mutated)."""
    market_id = market.params.market_id
    index = market.funding_index_e9  # a fill settles the position's funding first
    position = subaccount.positions.get(market_id)
    if position is None:
        size = cost = owed = 0
    else:
        size, cost = position.size_base_quantums, position.cost_quote_quantums
        owed = settlement.funding_owed(
            size, index - position.funding_index_e9, market.params.base_quantums_per_unit
        )
    quote = subaccount.balance(QUOTE_ASSET) - owed
    orders = copy_open_orders(subaccount.open_orders.get(market_id))
    for trade in trades:
        fill = trade.fill
        change = settlement.apply_fill(
            size_base_quantums=size, cost_quote_quantums=cost,
            fill_base_quantums=fill.size_base_quantums * side,
            fill_notional_quote_quantums=trade.notional_quote_quantums,
        )  # fmt: skip
        size, cost = change.size_base_quantums, change.cost_quote_quantums
        fee = trade.maker_fee_quote_quantums if maker else trade.taker_fee_quote_quantums
        quote += change.realized_pnl_quote_quantums - fee
        if maker:
            add_to_open_orders(
                orders, side, -fill.size_base_quantums, -trade.notional_quote_quantums
            )
    after = Position(market_id, size, cost, funding_index_e9=index)
    positions = {**subaccount.positions, market_id: after}
    if size == 0:
        del positions[market_id]  # flat: no position, as commit will leave it
    copy = Subaccount(
        subaccount.subaccount_id, positions=positions,
        open_orders={**subaccount.open_orders, market_id: orders}, quote_quantums=quote,
        assets=dict(subaccount.assets) if subaccount.assets else None,
    )  # fmt: skip
    return copy


def price_trade(ctx: Context, market: MarketState, fill: PlannedFill) -> Trade:
    notional = notional_of(market, fill.size_base_quantums, fill.price_quantums)
    params = market.params
    return Trade(
        fill, notional, div_ceil(notional * params.maker_fee_ppm, PPM_ONE),
        div_ceil(notional * params.taker_fee_ppm, PPM_ONE),
    )  # fmt: skip


def commit_trade(ctx: Context, market: MarketState, spec: OrderSpec, trade: Trade) -> None:
    fill = trade.fill
    market_id = market.params.market_id
    maker_order = market.book.get(fill.maker_order_id)
    assert maker_order is not None and maker_order.side is spec.side.opposite
    maker = ctx.state.ledger.subaccounts[fill.maker_owner]
    add_to_open_orders(
        maker.open_orders[market_id], maker_order.side, -fill.size_base_quantums,
        -trade.notional_quote_quantums,
    )  # fmt: skip
    remaining = market.book.apply_fill(fill.maker_order_id, fill.size_base_quantums)
    ctx.touched.orders.add(fill.maker_order_id)
    if remaining.remaining_base_quantums == 0:
        forget_filled(ctx, maker, market_id, remaining)
    settle_side(ctx, market, maker, maker_order.side, trade, trade.maker_fee_quote_quantums)
    taker = ctx.state.ledger.subaccounts[spec.owner]
    settle_side(ctx, market, taker, spec.side, trade, trade.taker_fee_quote_quantums)
    trade_id = TradeId(ctx.state.next_trade_id)
    ctx.state.next_trade_id += 1
    market.last_trade_price_quantums = fill.price_quantums
    ctx.events.append(OrderFilled(
        trade_id=trade_id, market_id=market_id, maker_order_id=fill.maker_order_id,
        taker_order_id=spec.order_id, maker=str(fill.maker_owner), taker=str(spec.owner),
        taker_side=spec.side, price_quantums=fill.price_quantums,
        size_base_quantums=fill.size_base_quantums,
        maker_fee_quote_quantums=trade.maker_fee_quote_quantums,
        taker_fee_quote_quantums=trade.taker_fee_quote_quantums,
    ))  # fmt: skip
    enforce_reduce_only(ctx, market, maker)


def settle_funding(
    ctx: Context, market: MarketState, subaccount_id: SubaccountId, position: Position
) -> None:
    """What the position owes or is owed since it last settled funding, paid through the
    market's funding account (dYdX v4 settles on every change of the position)."""
    delta = market.funding_index_e9 - position.funding_index_e9
    if delta == 0:
        return
    owed = settlement.funding_owed(
        position.size_base_quantums, delta, market.params.base_quantums_per_unit
    )
    position.funding_index_e9 = market.funding_index_e9
    position.funding_paid_quote_quantums += owed
    pool = funding_account(market.params.market_id)
    if owed > 0:
        transfer(ctx, subaccount_id, pool, QUOTE_ASSET, owed, "funding")
    elif owed < 0:
        transfer(ctx, pool, subaccount_id, QUOTE_ASSET, -owed, "funding")
    ctx.touched.subaccounts.add(subaccount_id)


def settle_side(
    ctx: Context, market: MarketState, subaccount: Subaccount, side: Side, trade: Trade, fee: int
) -> None:
    """Move one side's position; realized PnL and the fee become ledger transfers."""
    market_id = market.params.market_id
    position = subaccount.positions.get(market_id)
    if position is None:
        position = Position(market_id, funding_index_e9=market.funding_index_e9)
        subaccount.positions[market_id] = position
        market.holders[subaccount.subaccount_id] = None
    settle_funding(ctx, market, subaccount.subaccount_id, position)
    size_before = position.size_base_quantums
    change = settlement.apply_fill(
        size_base_quantums=size_before, cost_quote_quantums=position.cost_quote_quantums,
        fill_base_quantums=trade.fill.size_base_quantums * side,
        fill_notional_quote_quantums=trade.notional_quote_quantums,
    )  # fmt: skip
    position.size_base_quantums = change.size_base_quantums
    position.cost_quote_quantums = change.cost_quote_quantums
    market.open_interest_base_quantums += max(change.size_base_quantums, 0) - max(size_before, 0)
    pay_pnl(ctx, market_id, subaccount.subaccount_id, change.realized_pnl_quote_quantums)
    if fee:
        transfer(ctx, subaccount.subaccount_id, FEES, QUOTE_ASSET, fee, "trading fee")
    if change.size_base_quantums == 0:
        del subaccount.positions[market_id]
        market.holders.pop(subaccount.subaccount_id, None)
    ctx.touched.subaccounts.add(subaccount.subaccount_id)
    ctx.derived.risk_changed[subaccount.subaccount_id] = None
    ctx.touched.markets.add(market_id)


def finish_order(
    ctx: Context, market: MarketState, spec: OrderSpec, size: int, filled: int, rest_size: int
) -> None:
    taker = ctx.state.ledger.subaccounts[spec.owner]
    if rest_size and market.book.would_cross(spec.side, spec.limit_price_quantums):
        # The walk stopped at a bound (fills or self-trade cancels per order), or walked past
        # reduce-only makers beyond those it cancels, with orders left at this price: the
        # remainder cannot rest without crossing, so it is cancelled.
        rest_size = 0
    if rest_size:
        rest_order(ctx, market, taker, spec, rest_size)
    else:
        if size - filled > 0 or spec.size_base_quantums > size:
            ctx.events.append(OrderCancelled(
                order_id=spec.order_id, cause=CancelCause.IOC_REMAINDER,
                remaining_base_quantums=spec.size_base_quantums - filled,
            ))  # fmt: skip
        unregister_order(ctx, taker, spec.order_id, spec.market_id, spec.client_order_id)
    enforce_reduce_only(ctx, market, taker)
