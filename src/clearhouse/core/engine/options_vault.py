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
from math import sqrt

from clearhouse.core import limits, option_math
from clearhouse.core.engine.context import Context, Rejected, mutated
from clearhouse.core.engine.forwards import reference_forward
from clearhouse.core.engine.risk import (
    admit,
    book_exposure,
    is_paused,
    is_reduce_only,
    risk_of,
    unit_exposure,
)
from clearhouse.core.engine.trading.orders import place_order
from clearhouse.core.engine.trading.resting import (
    add_resting,
    cancel_quotes,
    cancel_resting,
    copy_open_orders,
)
from clearhouse.core.engine.valuation import expiry_forward, option_mark_on, surface_fresh
from clearhouse.core.engine.vault import buy_shares, redeem_shares
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, OrderId, Side, SubaccountId
from clearhouse.core.ledger import OPTIONS_VAULT, Subaccount
from clearhouse.core.margin import Risk
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
    hedge_limit_price_quantums,
    hedge_size_base_quantums,
    hedge_slippage_ppm,
    pressure_ppm,
    quote_on,
    quote_size_for_margin,
    reducing_only,
    requote_tolerance,
)
from clearhouse.core.oracle import OracleState
from clearhouse.core.params import MarketKind, OptionsVaultParams
from clearhouse.core.state import MarketState, MarketStatus, OptionsVaultQuote
from clearhouse.core.surface import years
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
    hedged = hedge_delta(ctx, params, subaccount, nav)
    quote_options(ctx, params, subaccount, nav, risk=None if hedged else risk)


def quote_options(
    ctx: Context, params: OptionsVaultParams, subaccount: Subaccount, nav: int, *,
    risk: Risk | None = None,
) -> None:  # fmt: skip
    """Per option market of the underlying, in id order (at most ``options_vault_markets_max``
    of them, those ``nearest_the_money`` when there are more): keep a bid and an ask when it
    may quote there, withdraw them when it may not. Requoting places orders, each a margin
    check of the whole book. What must change is requoted at once (a new market, a fill, an
    order gone, a size or a side a cap changed); a quote that only drifted from its target is
    requoted in at most ``options_vault_requotes_per_block_max`` markets a block, the furthest
    off first, and a market left waiting has any side now at or past its mark cancelled (a
    cancel costs no margin check), so no resting quote is ever on the wrong side of the mark.
    ``risk``: the vault's, when nothing has changed it since it was taken this block."""
    oracle = ctx.state.oracles[params.oracle_id]
    fresh = oracle.is_usable() and not oracle.restart_guard and surface_fresh(ctx, oracle)
    caps = Caps.of(params, nav)
    book = book_exposure(ctx, subaccount)
    room = len(subaccount.positions) < (
        limits.positions_per_subaccount_max - limits.options_vault_positions_reserved
    )
    options = [
        market for market in (ctx.state.markets[m] for m in sorted(ctx.state.markets))
        if market.params.kind is MarketKind.OPTION and market.params.oracle_id == params.oracle_id
    ]  # fmt: skip
    wanted = [
        market for market in options
        if fresh and (market.params.market_id in subaccount.positions or room)
        and quotable(ctx, market)
    ]  # fmt: skip
    if len(wanted) > limits.options_vault_markets_max:
        wanted = nearest_the_money(ctx, oracle, subaccount, wanted)
    kept = {market.params.market_id for market in wanted}
    chosen: list[MarketState] = []
    for market in options:  # withdrawals first: what they free, the quotes may use
        if market.params.market_id in kept:
            chosen.append(market)
        elif withdraw_quote(ctx, market):
            risk = None  # its margin is no longer what was measured
    if not chosen:
        return
    units = {m.params.market_id: unit_exposure(ctx, m) for m in chosen}  # once a block each
    at_index = {  # each mark on the publishers' forward (the index where they report none)
        m.params.market_id: option_mark_on(
            ctx, m, oracle, reference_forward(ctx, oracle, m.params.expiry_ns)
        )
        for m in chosen
    }
    full = {  # each option's quote at the full size: the sides it wants, and its target then
        m.params.market_id: quote_on(params, m.params, m.mark_price_quantums, book=book,
                                     unit=units[m.params.market_id], caps=caps,
                                     index_mark_price_quantums=at_index[m.params.market_id])
        for m in chosen
    }  # fmt: skip
    sides = sum((q.bid_base_quantums > 0) + (q.ask_base_quantums > 0) for q in full.values())
    size = quote_size_now(ctx, params, subaccount, sides=sides, quoted=risk)
    plans = [
        plan for market in chosen
        if (plan := plan_quote(ctx, params, subaccount, market, book=book,
                               unit=units[market.params.market_id], caps=caps, size=size,
                               full=full[market.params.market_id],
                               at_index=at_index[market.params.market_id]))
    ]  # fmt: skip
    must = [plan for plan in plans if plan.urgency_ppm >= PPM_ONE]
    drifted = sorted(
        (plan for plan in plans if plan.urgency_ppm < PPM_ONE),
        key=lambda plan: (-plan.urgency_ppm, plan.market.params.market_id),
    )
    budget = limits.options_vault_requotes_per_block_max
    requote(ctx, params, must + drifted[:budget])
    for plan in drifted[budget:]:
        pull_crossed_sides(ctx, plan.market)


def nearest_the_money(
    ctx: Context, oracle: OracleState, subaccount: Subaccount, markets: list[MarketState]
) -> list[MarketState]:
    """The ``options_vault_markets_max`` of these it quotes: those it holds first (it keeps a
    side that reduces them), then those nearest the money in standard deviations of time,
    |ln(K/F)|/√T at the kink nearest the forward of its expiry; ties by market id. By market
    id (a text order: expiry, then the strike as text), a venue listing the 247 options of
    Deribit's BTC chain of 2025-12-31 nearest the money had all 120 quotes within 9 days of
    expiry and none in the seven expiries from 16 to 359 days."""

    def distance(market: MarketState) -> float:
        payoff = market.params.payoff
        forward = float(expiry_forward(ctx, market, oracle))
        left = max(market.params.expiry_ns - ctx.state.timestamp_ns, 1)
        kinks = [] if payoff is None else [strike for strike, _ in payoff.kinks]
        near = min((abs(option_math.log(strike / forward)) for strike in kinks), default=0.0)
        return near / sqrt(years(left))

    ranked = sorted(
        markets,
        key=lambda m: (m.params.market_id not in subaccount.positions, distance(m),
                       m.params.market_id),
    )  # fmt: skip
    return ranked[: limits.options_vault_markets_max]


def quote_size_now(
    ctx: Context, params: OptionsVaultParams, subaccount: Subaccount, *, sides: int,
    quoted: Risk | None = None,
) -> int:  # fmt: skip
    """Each quote's size this block: the full size, or the largest of its half, quarter, ...
    within the smaller one its margin carries for ``sides`` quotes at one size
    (``quote_size_for_margin``, from what its resting quotes hold: IM with them and without
    them), never below a market's minimum order while there is any room (the placement is
    then the judge); 0 when its positions alone leave no room. ``quoted``: its risk now, when
    already taken."""
    quoted_base = 0
    for market_id, record in ctx.state.options_vault.quotes.items():  # a sum: any order
        book = ctx.state.markets[market_id].book
        for order_id in (record.bid_order_id, record.ask_order_id):
            order = book.get(OrderId(order_id)) if order_id else None
            quoted_base += 0 if order is None else order.remaining_base_quantums
    if quoted_base == 0 and not subaccount.positions:
        return params.quote_size_base_quantums  # nothing held, nothing quoted: all room
    quoted = quoted or risk_of(ctx, subaccount)
    bare = Subaccount(subaccount.subaccount_id, balances=subaccount.balances,
                      positions=subaccount.positions)  # fmt: skip
    size = quote_size_for_margin(
        params, equity=quoted.equity, initial_bare=risk_of(ctx, bare, portfolio=True).initial,
        initial_quoted=quoted.initial, quoted_base_quantums=quoted_base, sides=sides,
    )  # fmt: skip
    if size <= 0:
        return size
    # A power-of-two share of the full size: the quotes are resized (every market requoted,
    # each placement a margin check of the book) when it halves, not at every tick of margin.
    share = params.quote_size_base_quantums
    while share > size and share > 1:
        share //= 2
    return share


def quotable(ctx: Context, market: MarketState) -> bool:
    return (
        market.status is MarketStatus.ACTIVE
        and not market.params.settling(ctx.state.timestamp_ns)  # Lyra's trading cutoff
        and not is_reduce_only(ctx, market)
        and not is_paused(ctx, market.params.market_id)
        and market.mark_price_quantums > 0
    )


def withdraw_all(ctx: Context) -> None:
    for market_id in sorted(ctx.state.options_vault.quotes):
        withdraw_quote(ctx, ctx.state.markets[market_id])


def withdraw_quote(ctx: Context, market: MarketState) -> bool:
    """No quote here now (no fresh surface, not trading, no room): cancel what rests. Whether
    there was a quote to withdraw."""
    record = ctx.state.options_vault.quotes.pop(market.params.market_id, None)
    if record is None:
        return False
    ctx.touched.options_vault = True
    cancel_quotes(ctx, market, (record.bid_order_id, record.ask_order_id))
    return True


@dataclass(frozen=True, slots=True)
class _Requote:
    """One option's new quote: each side (side, the order resting now, price, size), and
    what the record keeps (the position and the pressure it was made at)."""

    market: MarketState
    wanted: tuple[tuple[Side, int, int, int], ...]
    position: int
    pressure: int
    urgency_ppm: int  # how far off what rests is (ppm of the mark); PPM_ONE: nothing to keep
    reduce_only: bool = False  # no room for new risk: only what reduces its position


def plan_quote(
    ctx: Context, params: OptionsVaultParams, subaccount: Subaccount, market: MarketState, *,
    book: Exposure, unit: Exposure, caps: Caps, size: int, full: OptionQuote, at_index: int,
) -> _Requote | None:  # fmt: skip
    """One option's quote, when what rests is no longer it (``requote_urgency_ppm``) or its
    size must change (``_resized``): ``make_option_quote`` at this block's size (on the step,
    never below the market's minimum order while there is any); None to leave it as it
    rests. With no room at all for new risk (size 0: its positions alone hold the margin
    quotes may use), only the side that reduces the position it holds there, reduce-only
    (``reducing_only``). ``full``: its quote at the full size, which is the quote whenever
    the block's size is the full size (``make_option_quote`` rounds it as this does).
    ``at_index``: its mark on the publishers' forward, or the index (the quote spans both)."""
    market_id = market.params.market_id
    record = ctx.state.options_vault.quotes.get(market_id)
    pressure = pressure_ppm(params, book, unit, caps)
    position = subaccount.position_size(market_id)
    p = market.params
    reducing = size <= 0
    if not reducing and size == params.quote_size_base_quantums:
        target = full
    else:
        size = 0 if reducing else max(size - size % p.step_base_quantums, p.min_order_base_quantums)
        target = quote_on(
            params, p, market.mark_price_quantums, book=book, unit=unit, caps=caps,
            size_base_quantums=None if reducing else size, index_mark_price_quantums=at_index,
        )  # fmt: skip
    if reducing:
        target = reducing_only(target, position, p.step_base_quantums, p.min_order_base_quantums)
    if record is None or _resized(market, record, target):
        urgency = PPM_ONE
    else:
        urgency = requote_urgency_ppm(ctx, params, record, market, (position, pressure, target))
    if urgency == 0:
        return None
    bid_id = 0 if record is None else record.bid_order_id
    ask_id = 0 if record is None else record.ask_order_id
    wanted = (
        (Side.BUY, bid_id, target.bid_price_quantums, target.bid_base_quantums),
        (Side.SELL, ask_id, target.ask_price_quantums, target.ask_base_quantums),
    )
    return _Requote(market, wanted, position, pressure, urgency, reduce_only=reducing)


def requote(ctx: Context, params: OptionsVaultParams, plans: list[_Requote]) -> None:
    """Cancel every order that changes, in every market, first (what they hold in margin the
    new ones may use, and a new bid may not meet an old ask), then place the new ones. A side
    resting at the size wanted within ``requote_tolerance`` of the price wanted is kept (a
    placement is a margin check of the whole book; a kept side is less than the tolerance,
    at most half the spread, from its target, so a new bid never meets a kept ask)."""
    kept = [
        [
            _close_enough(
                plan.market,
                order_id,
                price,
                size,
                requote_tolerance(
                    params, plan.market.mark_price_quantums, plan.market.params.tick_quantums
                ),
            )
            for _, order_id, price, size in plan.wanted
        ]
        for plan in plans
    ]
    for plan, keep in zip(plans, kept, strict=True):
        for (_, order_id, _, _), same in zip(plan.wanted, keep, strict=True):
            if order_id and not same and plan.market.book.get(OrderId(order_id)) is not None:
                mutated(ctx)
                cancel_resting(ctx, plan.market, OrderId(order_id), CancelCause.USER)
    admitted = _all_admitted(ctx, plans, kept)
    for plan, keep in zip(plans, kept, strict=True):
        placed = [
            order_id
            if same
            else _place_within_margin(
                ctx, plan.market, side, price, size, plan.reduce_only, admitted=admitted
            )
            for (side, order_id, price, size), same in zip(plan.wanted, keep, strict=True)
        ]
        ctx.state.options_vault.quotes[plan.market.params.market_id] = OptionsVaultQuote(
            bid_order_id=placed[0], ask_order_id=placed[1],
            mark_price_quantums=plan.market.mark_price_quantums,
            quoted_ns=ctx.state.timestamp_ns, position_base_quantums=plan.position,
            pressure_ppm=plan.pressure,
        )  # fmt: skip
        ctx.touched.options_vault = True


def _all_admitted(ctx: Context, plans: list[_Requote], kept: list[list[bool]]) -> bool:
    """Whether the one margin gate admits its book with every new quote resting at once: then
    each placement would pass on its own, and none is checked again. In portfolio mode IM
    never falls when orders are added (per scenario, each market's worst fill choice is a
    max over more choices, and every contingency and floor a max or a sum of such), so
    every state on the way, a subset of these orders, meets IM if this one does
    (``test_portfolio_im_never_falls_as_orders_are_added``). That holds for subsets that keep
    or drop a side of a market whole, as here: the vault rests at most one order a side in a
    market (``OptionsVaultQuote``). Two orders on one side are kept as their total, and a deep
    bid's gain can still offset what a bid above the mark costs (docs/GLOSSARY.md, IM).
    Standard mode pairs spreads greedily, which is not monotone: there, and when this is
    refused, each placement is checked alone, as ever."""
    new = [
        (plan.market, side, price, size)
        for plan, keep in zip(plans, kept, strict=True)
        for (side, _, price, size), same in zip(plan.wanted, keep, strict=True)
        if not same and size > 0
    ]
    if not new or OPTIONS_VAULT not in ctx.state.portfolio_margin:
        return False  # nothing to place, or each placement checked alone
    vault = ctx.state.ledger.subaccounts[OPTIONS_VAULT]
    trial = Subaccount(
        vault.subaccount_id, balances=vault.balances, positions=vault.positions,
        open_orders={m: copy_open_orders(o) for m, o in vault.open_orders.items()},
    )  # fmt: skip
    for market, side, price, size in new:
        add_resting(trial, market, side, size, price)
    return admit(ctx, vault, trial, None, strict_im=True) is None


def _place_within_margin(
    ctx: Context, market: MarketState, side: Side, price: int, size: int, reduce_only: bool,
    *, admitted: bool = False,
) -> int:  # fmt: skip
    """A post-only quote of ``size``, or, where its margin refuses that (every resting quote
    counts on its worst side: in a crash the volatility multiplier can leave too little for
    all of them at full size), the largest of size/2, size/4, ... (down to the step) down to
    the minimum order that it carries: a smaller quote rather than none, so that the options
    quoted last are not the ones left without a quote. Its id, 0 when none was placed."""
    params = market.params
    while size >= params.min_order_base_quantums:
        try:
            return _place_or_raise(
                ctx, market, side, price, size, TimeInForce.POST_ONLY, reduce_only=reduce_only,
                margin_admitted=admitted,
            )  # fmt: skip
        except Rejected as refusal:
            if refusal.reason is not RejectReason.INSUFFICIENT_MARGIN:
                return 0
        halved = size // 2
        size = halved - halved % params.step_base_quantums
    return 0


def _resized(market: MarketState, record: OptionsVaultQuote | None, target: OptionQuote) -> bool:
    """Requote when a side is not what this block wants: one resting larger than its size
    (its margin must shrink) or under half of it (room came back), one wanted but missing
    (its margin refused it before, or a cap that held it back no longer does), or one
    resting that is no longer wanted (a cap now forbids it: its book moved toward the cap
    since it was quoted; or its margin has no room left)."""
    if record is None:
        return True
    sides = ((record.bid_order_id, target.bid_base_quantums),
             (record.ask_order_id, target.ask_base_quantums))  # fmt: skip
    for order_id, wanted in sides:
        order = market.book.get(OrderId(order_id)) if order_id else None
        resting = 0 if order is None else order.remaining_base_quantums
        if not wanted // 2 <= resting <= wanted or (resting == 0) != (wanted == 0):
            return True
    return False


def requote_urgency_ppm(
    ctx: Context, params: OptionsVaultParams, record: OptionsVaultQuote, market: MarketState,
    now: tuple[int, int, OptionQuote],
) -> int:  # fmt: skip
    """0 while what rests is still what it would quote (placing a quote costs a margin check
    of the whole book); else how urgent the requote is, in ppm of the mark. ``PPM_ONE``: its
    position here moved (a fill) or one of its orders left the book. Otherwise the furthest a
    side's price is from where the quote would be now, once it is ``requote_tolerance`` off,
    or the exposure pressure's move once it is ``requote_move_ppm``; and at least
    ``requote_move_ppm`` every ``requote_interval_ns`` regardless."""
    position, pressure, target = now
    if position != record.position_base_quantums:
        return PPM_ONE
    tolerance = requote_tolerance(params, market.mark_price_quantums, market.params.tick_quantums)
    sides = (
        (record.bid_order_id, target.bid_price_quantums),
        (record.ask_order_id, target.ask_price_quantums),
    )
    furthest = 0
    for order_id, price in sides:
        order = market.book.get(OrderId(order_id)) if order_id else None
        if order_id and order is None:
            return PPM_ONE  # filled or cancelled: quote again
        if order is not None:
            furthest = max(furthest, abs(order.price_quantums - price))
    mark = market.mark_price_quantums
    urgency = div_floor(furthest * PPM_ONE, mark) if furthest >= tolerance else 0
    if abs(pressure - record.pressure_ppm) >= params.requote_move_ppm:
        urgency = max(urgency, abs(pressure - record.pressure_ppm))
    if ctx.state.timestamp_ns - record.quoted_ns >= params.requote_interval_ns:
        urgency = max(urgency, params.requote_move_ppm)
    return min(urgency, PPM_ONE - 1)


def _close_enough(
    market: MarketState, order_id: int, price: int, size: int, tolerance: int
) -> bool:
    order = market.book.get(OrderId(order_id)) if order_id else None
    if order is None:
        return size == 0 and order_id == 0
    return order.remaining_base_quantums == size and abs(order.price_quantums - price) < tolerance


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


def hedge_delta(ctx: Context, params: OptionsVaultParams, subaccount: Subaccount, nav: int) -> bool:
    """Past its band, one IOC order on the perpetual toward zero delta, as a taker through the
    one trade path, its limit further through the mark the more volatile the market
    (``hedge_slippage_ppm``); a refusal (margin, band, an empty book) leaves the book as it
    was, and the next block tries again. Whether it tried (and so may have changed the book)."""
    market = ctx.state.markets.get(params.hedge_market_id)
    if market is None or not _hedgeable(ctx, market):
        return False
    delta = book_exposure(ctx, subaccount).delta_quantums
    size = hedge_size_base_quantums(
        params, delta_quantums=delta, nav_quantums=nav,
        price_quantums=market.mark_price_quantums,
        base_quantums_per_unit=market.params.base_quantums_per_unit,
        step_base_quantums=market.params.step_base_quantums,
    )  # fmt: skip
    if abs(size) < market.params.min_order_base_quantums or size == 0:
        return False
    side = Side.BUY if size > 0 else Side.SELL
    through = hedge_slippage_ppm(params, vol_multiplier_ppm=market.vol_multiplier_ppm)
    price = hedge_limit_price_quantums(
        params, side, market.mark_price_quantums, market.params.tick_quantums,
        slippage_ppm=through,
    )  # fmt: skip
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
    return True


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


def _place_or_raise(
    ctx: Context, market: MarketState, side: Side, price: int, size: int, tif: TimeInForce, *,
    reduce_only: bool = False, margin_admitted: bool = False,
) -> int:  # fmt: skip
    if size <= 0:
        return 0
    order_id = ctx.state.next_order_id
    command = PlaceOrder(
        signer=OPTIONS_VAULT.owner, nonce=0, expiry_ns=ctx.state.timestamp_ns,
        subaccount_number=OPTIONS_VAULT.number, market_id=MarketId(market.params.market_id),
        side=side, size_base_quantums=size, price_quantums=price, time_in_force=tif,
        reduce_only=reduce_only,
    )  # fmt: skip
    events_before = len(ctx.events)
    try:
        place_order(ctx, command, margin_admitted=margin_admitted)
    except Rejected:
        assert len(ctx.events) == events_before
        raise
    return order_id
