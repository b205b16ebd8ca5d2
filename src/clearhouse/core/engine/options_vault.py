"""The options AMM (SPEC §11): ``SetupOptionsVault``, ``DepositOptionsVault`` and
``WithdrawOptionsVault`` (shares at NAV, ``vault.buy_shares``/``redeem_shares``), and each block
its quotes on every active option of its underlying and its delta hedge on the perpetual.

The vault is the ``OPTIONS_VAULT`` subaccount, in portfolio margin: its NAV is that
subaccount's equity, and it is margined, watched and liquidated like anyone's. Its quotes are
post-only orders through ``PlaceOrder``'s handler, its hedge an IOC order through the same
handler (the one trade path, as a taker). The arithmetic is ``core/options_vault.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core import limits
from clearhouse.core.engine.context import Context, Rejected, mutated
from clearhouse.core.engine.risk import is_paused, is_reduce_only, market_risk, risk_of
from clearhouse.core.engine.trading.orders import place_order
from clearhouse.core.engine.trading.resting import cancel_resting
from clearhouse.core.engine.valuation import surface_fresh
from clearhouse.core.engine.vault import buy_shares, redeem_shares
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, OrderId, Side, SubaccountId
from clearhouse.core.ledger import OPTIONS_VAULT, Subaccount
from clearhouse.core.messages import (
    CancelCause,
    DepositOptionsVault,
    MarginModeChanged,
    OptionsVaultConfigured,
    OptionsVaultDeposited,
    OptionsVaultHedged,
    OptionsVaultWithdrawn,
    PlaceOrder,
    SetupOptionsVault,
    TimeInForce,
    WithdrawOptionsVault,
)
from clearhouse.core.options_vault import (
    Caps,
    Exposure,
    OptionQuote,
    OptionQuoteInputs,
    hedge_limit_price_quantums,
    hedge_size_base_quantums,
    make_option_quote,
    pressure_ppm,
)
from clearhouse.core.params import MarketKind, OptionsVaultParams
from clearhouse.core.state import MarketState, MarketStatus, OptionsVaultQuote
from clearhouse.core.units import PPM_ONE, div_floor

# ── Commands ────────────────────────────────────────────────────────────────────────────────


def setup_options_vault(ctx: Context, command: SetupOptionsVault) -> None:
    """The operator sets the vault up on an ungoverned venue; it may retune it while nobody
    holds shares (after that, what depositors bought into stays as it was)."""
    if command.signer != ctx.state.venue.operator:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if ctx.state.governance is not None:
        raise Rejected(RejectReason.GOVERNANCE_REQUIRED)
    params = command.params
    if params.problems() or not _hedge_market_fits(ctx, params):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    vault = ctx.state.options_vault
    if vault.total_shares > 0:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    mutated(ctx)
    vault.params = params
    ctx.touched.options_vault = True
    ctx.events.append(OptionsVaultConfigured(params=params))
    if OPTIONS_VAULT not in ctx.state.portfolio_margin:
        # A hedged options book is what portfolio margin is for (SPEC §6): its hedge counts.
        ctx.state.portfolio_margin.add(OPTIONS_VAULT)
        ctx.touched.modes.add(OPTIONS_VAULT)
        ctx.events.append(MarginModeChanged(subaccount=str(OPTIONS_VAULT), portfolio=True))


def _hedge_market_fits(ctx: Context, params: OptionsVaultParams) -> bool:
    hedge = ctx.state.markets.get(params.hedge_market_id)
    return (
        params.oracle_id in ctx.state.oracles
        and hedge is not None
        and hedge.params.kind is MarketKind.PERPETUAL
        and hedge.params.oracle_id == params.oracle_id
    )


def _params(ctx: Context) -> OptionsVaultParams:
    found = ctx.state.options_vault.params
    if found is None:
        raise Rejected(RejectReason.OPTIONS_VAULT_NOT_SET_UP)
    return found


def deposit_options_vault(ctx: Context, command: DepositOptionsVault) -> None:
    """Buy options-vault shares at NAV (``vault.buy_shares``)."""
    _params(ctx)
    vault = ctx.state.options_vault
    shares, nav, total_before = buy_shares(
        ctx, vault, OPTIONS_VAULT, command, "options vault deposit"
    )
    ctx.touched.options_vault = True
    ctx.touched.options_vault_owners.add(command.signer)
    source = SubaccountId(command.signer, command.subaccount_number)
    ctx.events.append(OptionsVaultDeposited(
        owner=command.signer, subaccount=str(source), amount_quote_quantums=command.amount_quantums,
        shares=shares, nav_quote_quantums=nav, total_shares=total_before,
    ))  # fmt: skip


def withdraw_options_vault(ctx: Context, command: WithdrawOptionsVault) -> None:
    """Redeem options-vault shares at NAV after its lock-up (``vault.redeem_shares``)."""
    params = _params(ctx)
    vault = ctx.state.options_vault
    amount, nav, total_before = redeem_shares(
        ctx, vault, OPTIONS_VAULT, command, lockup_ns=params.lockup_ns,
        cause="options vault withdrawal",
    )  # fmt: skip
    ctx.touched.options_vault = True
    ctx.touched.options_vault_owners.add(command.signer)
    target = SubaccountId(command.signer, command.subaccount_number)
    ctx.events.append(OptionsVaultWithdrawn(
        owner=command.signer, subaccount=str(target), shares=command.shares,
        amount_quote_quantums=amount, nav_quote_quantums=nav, total_shares=total_before,
    ))  # fmt: skip


# ── Exposure ────────────────────────────────────────────────────────────────────────────────


def unit_exposure(ctx: Context, market: MarketState) -> Exposure:
    """One whole long unit of a market, in quote quantums: an option's Black-76 Greeks from
    its profile (vega per vol point, gamma per 1% move as Γ·S²/100, delta value Δ·S), a linear
    market's delta value S. The floats end here, truncated toward zero."""
    risk = market_risk(ctx, market.params.market_id)
    spot = float(ctx.state.oracles[market.params.oracle_id].index_price_quantums)
    found = risk.profile if market.params.kind is MarketKind.OPTION else None
    if found is None:
        return Exposure(vega_quantums=0, gamma_quantums=0, delta_quantums=int(spot))
    return Exposure(
        vega_quantums=int(found.vega / 100.0),
        gamma_quantums=int(found.gamma * spot * spot / 100.0),
        delta_quantums=int(found.delta * spot),
    )


def book_exposure(ctx: Context, subaccount: Subaccount) -> Exposure:
    """The vault's whole book: every position's unit exposure × its size (positions on other
    underlyings cannot be held: it only quotes and hedges its own)."""
    total = Exposure(vega_quantums=0, gamma_quantums=0, delta_quantums=0)
    for market_id, position in sorted(subaccount.positions.items()):
        market = ctx.state.markets[market_id]
        total = total.plus(
            unit_exposure(ctx, market), position.size_base_quantums,
            market.params.base_quantums_per_unit,
        )  # fmt: skip
    return total


# ── Each block ──────────────────────────────────────────────────────────────────────────────


def run_options_vault(ctx: Context) -> None:
    """Hedge, then quote every active option of the underlying. Runs after the marks and the
    market-making vault, before the liquidation pass; does nothing before the first deposit,
    while the vault is under liquidation (the ladder has its book) or on unusable prices."""
    params = ctx.state.options_vault.params
    subaccount = ctx.state.ledger.subaccounts.get(OPTIONS_VAULT)
    if params is None or subaccount is None or OPTIONS_VAULT in ctx.state.liquidations:
        return
    risk = risk_of(ctx, subaccount)
    if not risk.usable:  # no NAV, no caps: nothing may rest on prices it cannot measure
        withdraw_all(ctx)
        return
    nav = risk.equity
    # The hedge first: it reduces risk, and must not wait on margin the quotes hold.
    hedge_delta(ctx, params, subaccount, nav)
    quote_options(ctx, params, subaccount, nav)


def quote_options(
    ctx: Context, params: OptionsVaultParams, subaccount: Subaccount, nav: int
) -> None:
    """Per option market of the underlying, in id order (at most ``options_vault_markets_max``
    of them): keep a bid and an ask when it may quote there, withdraw them when it may not.
    Requoting places orders, each a margin check of the whole book, so at most
    ``options_vault_requotes_per_block_max`` markets are requoted in a block, the most urgent
    first (a new market, a fill, an order gone; then the furthest from its target); a side
    left waiting whose price no longer leaves any edge against the mark is cancelled (a
    cancel costs no margin check), so no resting quote is ever on the wrong side of the mark."""
    oracle = ctx.state.oracles[params.oracle_id]
    fresh = oracle.is_usable() and not oracle.restart_guard and surface_fresh(ctx, oracle)
    caps = Caps.of(params, nav)
    book = book_exposure(ctx, subaccount)
    room = len(subaccount.positions) < (
        limits.positions_per_subaccount_max - limits.options_vault_positions_reserved
    )
    quoted = 0
    plans: list[QuotePlan] = []
    for market_id in sorted(ctx.state.markets):
        market = ctx.state.markets[market_id]
        if market.params.kind is not MarketKind.OPTION:
            continue
        if market.params.oracle_id != params.oracle_id:
            continue
        held = market_id in subaccount.positions
        may = fresh and quoted < limits.options_vault_markets_max and (held or room)
        if may and quotable(ctx, market):
            quoted += 1
            plan = plan_quote(ctx, params, subaccount, market, book=book, caps=caps)
            if plan is not None:
                plans.append(plan)
        else:
            withdraw_quote(ctx, market)
    plans.sort(key=lambda plan: (-plan.urgency_ppm, plan.market.params.market_id))
    budget = limits.options_vault_requotes_per_block_max
    for plan in plans[:budget]:
        requote(ctx, plan)
    for plan in plans[budget:]:
        pull_crossed_sides(ctx, plan.market)


def quotable(ctx: Context, market: MarketState) -> bool:
    return (
        market.status is MarketStatus.ACTIVE
        and market.params.expiry_ns > ctx.state.timestamp_ns
        and not is_reduce_only(ctx, market)
        and not is_paused(ctx, market.params.market_id)
        and market.mark_price_quantums > 0
    )


def withdraw_all(ctx: Context) -> None:
    for market_id in sorted(ctx.state.options_vault.quotes):
        withdraw_quote(ctx, ctx.state.markets[market_id])


def withdraw_quote(ctx: Context, market: MarketState) -> None:
    """No quote here now (no fresh surface, not trading, no room): cancel what rests."""
    record = ctx.state.options_vault.quotes.pop(market.params.market_id, None)
    if record is None:
        return
    ctx.touched.options_vault = True
    for order_id in (record.bid_order_id, record.ask_order_id):
        if order_id and market.book.get(OrderId(order_id)) is not None:
            mutated(ctx)
            cancel_resting(ctx, market, OrderId(order_id), CancelCause.USER)


@dataclass(frozen=True, slots=True)
class QuotePlan:
    """A requote wanted in one market: the quote to make and what it is made from."""

    market: MarketState
    target: OptionQuote
    position_base_quantums: int
    pressure_ppm: int
    urgency_ppm: int  # how far off what rests is (ppm of the mark); PPM_ONE: nothing to keep


def plan_quote(
    ctx: Context, params: OptionsVaultParams, subaccount: Subaccount, market: MarketState, *,
    book: Exposure, caps: Caps,
) -> QuotePlan | None:  # fmt: skip
    """The quote it would make here now, if what rests needs replacing (``urgency_ppm``)."""
    market_id = market.params.market_id
    record = ctx.state.options_vault.quotes.get(market_id)
    unit = unit_exposure(ctx, market)
    pressure = pressure_ppm(params, book, unit, caps)
    position = subaccount.position_size(market_id)
    target = make_option_quote(params, OptionQuoteInputs(
        mark_price_quantums=market.mark_price_quantums, tick_quantums=market.params.tick_quantums,
        step_base_quantums=market.params.step_base_quantums,
        min_order_base_quantums=market.params.min_order_base_quantums,
        base_quantums_per_unit=market.params.base_quantums_per_unit,
        book=book, unit=unit, caps=caps, pressure_ppm=pressure,
    ))  # fmt: skip
    urgency = (
        PPM_ONE if record is None else requote_urgency_ppm(ctx, params, record, market,
                                                           (position, pressure, target))
    )  # fmt: skip
    if urgency == 0:
        return None
    return QuotePlan(market, target, position, pressure, urgency)


def requote(ctx: Context, plan: QuotePlan) -> None:
    market = plan.market
    market_id = market.params.market_id
    record = ctx.state.options_vault.quotes.get(market_id)
    bid_id = 0 if record is None else record.bid_order_id
    ask_id = 0 if record is None else record.ask_order_id
    target = plan.target
    wanted = (
        (Side.BUY, bid_id, target.bid_price_quantums, target.bid_base_quantums),
        (Side.SELL, ask_id, target.ask_price_quantums, target.ask_base_quantums),
    )
    params = ctx.state.options_vault.params
    assert params is not None
    placed = _replace_orders(ctx, market, wanted, requote_tolerance(params, market))
    ctx.state.options_vault.quotes[market_id] = OptionsVaultQuote(
        bid_order_id=placed[0], ask_order_id=placed[1],
        mark_price_quantums=market.mark_price_quantums, quoted_ns=ctx.state.timestamp_ns,
        position_base_quantums=plan.position_base_quantums, pressure_ppm=plan.pressure_ppm,
    )  # fmt: skip
    ctx.touched.options_vault = True


def pull_crossed_sides(ctx: Context, market: MarketState) -> None:
    """Cancel a waiting bid at or above the mark, an ask at or below it: no edge left."""
    record = ctx.state.options_vault.quotes.get(market.params.market_id)
    if record is None:
        return  # not quoted yet: nothing rests
    mark = market.mark_price_quantums
    for side, order_id in ((Side.BUY, record.bid_order_id), (Side.SELL, record.ask_order_id)):
        order = market.book.get(OrderId(order_id)) if order_id else None
        if order is not None and (order.price_quantums - mark) * side >= 0:
            mutated(ctx)
            cancel_resting(ctx, market, OrderId(order_id), CancelCause.USER)


def _replace_orders(
    ctx: Context, market: MarketState, wanted: tuple[tuple[Side, int, int, int], ...],
    tolerance: int,
) -> list[int]:  # fmt: skip
    """Keep a side that rests at the size wanted within ``tolerance`` of the price wanted (a
    placement is a margin check of the whole book); cancel every other one first, then place
    (a new bid may not meet an old ask: a kept side is less than the tolerance, at most half
    the spread, from its target); the ids now resting, 0 for a side with none."""
    kept = [
        _close_enough(market, order_id, price, size, tolerance)
        for _, order_id, price, size in wanted
    ]
    for (_, order_id, _, _), keep in zip(wanted, kept, strict=True):
        if order_id and not keep and market.book.get(OrderId(order_id)) is not None:
            mutated(ctx)
            cancel_resting(ctx, market, OrderId(order_id), CancelCause.USER)
    return [
        order_id if keep else _place(ctx, market, side, price, size, TimeInForce.POST_ONLY)
        for (side, order_id, price, size), keep in zip(wanted, kept, strict=True)
    ]


def _close_enough(
    market: MarketState, order_id: int, price: int, size: int, tolerance: int
) -> bool:
    order = market.book.get(OrderId(order_id)) if order_id else None
    if order is None:
        return size == 0 and order_id == 0
    return order.remaining_base_quantums == size and abs(order.price_quantums - price) < tolerance


def requote_tolerance(params: OptionsVaultParams, market: MarketState) -> int:
    """How far a resting side may drift from its target before it is replaced: ``requote_move
    _ppm`` of the mark, at least a tick."""
    mark = market.mark_price_quantums
    return max(market.params.tick_quantums, div_floor(mark * params.requote_move_ppm, PPM_ONE))


def requote_urgency_ppm(
    ctx: Context, params: OptionsVaultParams, record: OptionsVaultQuote, market: MarketState,
    now: tuple[int, int, OptionQuote],
) -> int:  # fmt: skip
    """0 while what rests is still what it would quote (placing a quote costs a margin check
    of the whole book); else how urgent the requote is, in ppm of the mark. ``PPM_ONE``: its
    position here moved (a fill), one of its orders left the book, or a side's size changed.
    Otherwise the furthest a side's price is from where the quote would be now, once it is
    ``requote_move_ppm`` of the mark (at least a tick) or the exposure pressure moved by
    that much; and at least ``requote_move_ppm`` every ``requote_interval_ns`` regardless."""
    position, pressure, target = now
    if position != record.position_base_quantums:
        return PPM_ONE
    mark = market.mark_price_quantums
    tolerance = requote_tolerance(params, market)
    sides = (
        (record.bid_order_id, target.bid_price_quantums, target.bid_base_quantums),
        (record.ask_order_id, target.ask_price_quantums, target.ask_base_quantums),
    )
    furthest = 0
    for order_id, price, size in sides:
        order = market.book.get(OrderId(order_id)) if order_id else None
        if (order_id and order is None) or (
            order is not None and order.remaining_base_quantums != size
        ):
            return PPM_ONE  # filled, cancelled or resized: quote again
        if order is not None:
            furthest = max(furthest, abs(order.price_quantums - price))
    urgency = div_floor(furthest * PPM_ONE, mark) if furthest >= tolerance else 0
    if abs(pressure - record.pressure_ppm) >= params.requote_move_ppm:
        urgency = max(urgency, abs(pressure - record.pressure_ppm))
    if ctx.state.timestamp_ns - record.quoted_ns >= params.requote_interval_ns:
        urgency = max(urgency, params.requote_move_ppm)
    return min(urgency, PPM_ONE - 1)


def hedge_delta(ctx: Context, params: OptionsVaultParams, subaccount: Subaccount, nav: int) -> None:
    """Past its band, one IOC order on the perpetual toward zero delta, as a taker through the
    one trade path; a refusal (margin, band, an empty book) leaves the book as it was, and the
    next block tries again."""
    market = ctx.state.markets.get(params.hedge_market_id)
    if market is None or not _hedgeable(ctx, market):
        return
    delta = book_exposure(ctx, subaccount).delta_quantums
    size = hedge_size_base_quantums(
        params, delta_quantums=delta, nav_quantums=nav,
        price_quantums=market.mark_price_quantums,
        base_quantums_per_unit=market.params.base_quantums_per_unit,
        step_base_quantums=market.params.step_base_quantums,
    )  # fmt: skip
    if abs(size) < market.params.min_order_base_quantums or size == 0:
        return
    side = Side.BUY if size > 0 else Side.SELL
    price = hedge_limit_price_quantums(
        params, side, market.mark_price_quantums, market.params.tick_quantums
    )
    before = subaccount.position_size(market.params.market_id)
    refused = _try_place(ctx, market, side, price, abs(size), TimeInForce.IOC)
    if refused is RejectReason.INSUFFICIENT_MARGIN and ctx.state.options_vault.quotes:
        # The quotes' margin is what the hedge lacked: hedging comes first, the quotes come
        # back after it (``quote_options``, within what margin is left).
        withdraw_all(ctx)
        _try_place(ctx, market, side, price, abs(size), TimeInForce.IOC)
    subaccount = ctx.state.ledger.subaccounts[OPTIONS_VAULT]
    filled = abs(subaccount.position_size(market.params.market_id) - before)
    ctx.state.options_vault.hedged_ns = ctx.state.timestamp_ns
    ctx.touched.options_vault = True
    ctx.events.append(OptionsVaultHedged(
        market_id=market.params.market_id, side=side, size_base_quantums=abs(size),
        filled_base_quantums=filled, delta_value_quantums=delta, nav_quote_quantums=nav,
    ))  # fmt: skip


def _hedgeable(ctx: Context, market: MarketState) -> bool:
    oracle = ctx.state.oracles[market.params.oracle_id]
    return (
        market.status is MarketStatus.ACTIVE
        and oracle.is_usable()
        and not oracle.restart_guard
        and not is_paused(ctx, market.params.market_id)
        and market.mark_price_quantums > 0
    )


def _try_place(
    ctx: Context, market: MarketState, side: Side, price: int, size: int, tif: TimeInForce
) -> RejectReason | None:
    """``_place``, saying why the handler refused (None: placed, or nothing to place)."""
    try:
        _place_or_raise(ctx, market, side, price, size, tif)
    except Rejected as refusal:
        return refusal.reason
    return None


def _place(
    ctx: Context, market: MarketState, side: Side, price: int, size: int, tif: TimeInForce
) -> int:
    """An order of the vault through the ``PlaceOrder`` handler; its id, or 0 when there is
    nothing to place or the handler refuses it: a refusal changes nothing."""
    try:
        return _place_or_raise(ctx, market, side, price, size, tif)
    except Rejected:
        return 0


def _place_or_raise(
    ctx: Context, market: MarketState, side: Side, price: int, size: int, tif: TimeInForce
) -> int:
    if size <= 0:
        return 0
    order_id = ctx.state.next_order_id
    command = PlaceOrder(
        signer=OPTIONS_VAULT.owner, nonce=0, expiry_ns=ctx.state.timestamp_ns,
        subaccount_number=OPTIONS_VAULT.number, market_id=MarketId(market.params.market_id),
        side=side, size_base_quantums=size, price_quantums=price, time_in_force=tif,
    )  # fmt: skip
    events_before = len(ctx.events)
    try:
        place_order(ctx, command)
    except Rejected:
        assert len(ctx.events) == events_before
        raise
    return order_id
