"""The liquidation ladder (§7): the pass every block that watches who is below
maintenance margin and steps in when keepers do not; one rung of the ladder (cancel orders,
close on the book no worse than the fillable price, then the backstops); the keeper's
``Liquidate``; and ``liquidatable``.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools

from clearhouse.core import limits
from clearhouse.core.engine.context import Context, Rejected, mutated, next_order_id, transfer
from clearhouse.core.engine.liquidation import watch
from clearhouse.core.engine.liquidation.auctions import (
    bid_auction,
    current_discount_ppm,
    maintenance_fraction_ppm,
    maybe_end_auction,
    open_auction,
    open_portfolio_auction,
)
from clearhouse.core.engine.liquidation.insolvency import (
    count_underwater,
    insurance_cover,
    resolve_bankruptcy,
    settle_bad_debt,
    settle_borrowers,
    vault_cap,
)
from clearhouse.core.engine.liquidation.status import (
    charge_liquidation_fee,
    close_auction,
    emit_receipt,
    end_liquidation,
    holds_options,
    liquidation_target,
    live_auction,
    may_liquidate,
)
from clearhouse.core.engine.risk import market_risk, risk_of
from clearhouse.core.engine.trading.resting import OrderSpec, cancel_any
from clearhouse.core.engine.trading.trades import (
    Trade,
    after_trades,
    commit_plan,
    plan_with_solvent_makers,
    price_trade,
)
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    MarketId,
    OrderId,
    Side,
    SubaccountId,
)
from clearhouse.core.ledger import (
    FUND_BOOK,
    INSURANCE,
    VAULT,
    Subaccount,
)
from clearhouse.core.liquidation import (
    close_size_cap,
    closing_side,
    cover_bound_price,
    fillable_price,
    liquidation_fee,
    more_conservative,
    to_tick,
)
from clearhouse.core.margin import (
    Risk,
    notional_requirement_base,
    requirements,
)
from clearhouse.core.matching import PlannedFill
from clearhouse.core.messages import (
    BidAuction,
    CancelCause,
    Liquidate,
    LiquidationStage,
    TimeInForce,
)
from clearhouse.core.state import (
    PORTFOLIO_AUCTION,
    LiquidationStatus,
    MarketState,
    MarketStatus,
)
from clearhouse.core.units import (
    PPM_ONE,
    div_ceil,
    div_floor,
    window_start_ns,
)
from clearhouse.core.vault import room_base_quantums


def liquidation_pass(ctx: Context) -> None:
    """Every block, after prices: track who is below MM at valid prices; the protocol takes
    a ladder step for those keepers left alone for ``keeper_grace_ns``, so solvency
    never depends on keepers showing up; auctions advance and end.

    It examines, in subaccount order, the holders and subaccounts under liquidation that the
    watch names (``watch.py``: every one that could be liquidatable, never all of them), and a
    holder that a step changes before its turn comes: the outcome is a full scan's."""
    unwind_fund_book(ctx)  # first: what it changes, the watch sees as it starts
    queue = watch.start_pass(ctx)
    heapq.heapify(queue)
    queued = set(queue)
    holders = ctx.derived.bands  # the holders as the pass started, until finish_pass
    examined: list[SubaccountId] = []
    steps = 0
    underwater: list[Subaccount] = []
    while queue:
        subaccount_id = heapq.heappop(queue)
        examined.append(subaccount_id)
        seen_changes = len(ctx.derived.risk_changed)
        if examine(ctx, subaccount_id, underwater, act=steps < limits.liquidations_per_block_max):
            steps += 1
        if len(ctx.derived.risk_changed) == seen_changes:
            continue  # nothing changed: the usual case, and no walk over what did before
        for changed in list(itertools.islice(ctx.derived.risk_changed, seen_changes, None)):
            if changed > subaccount_id and changed in holders and changed not in queued:
                heapq.heappush(queue, changed)  # a full scan would still come to it
                queued.add(changed)
    settle_borrowers(ctx, holders)
    count_underwater(ctx, underwater + ctx.derived.deleveraged)
    ctx.derived.deleveraged.clear()
    watch.finish_pass(ctx, examined)


def unwind_fund_book(ctx: Context) -> None:
    """The fund sells what it took over back to the book: per market, at most the close
    fraction per window of block time, never worse than ``fund_unwind_deviation`` through
    the mark (a backstop that dumps would move the mark into the next liquidation). Once its
    book is flat, the margin it moved there returns to the fund."""
    book = ctx.state.ledger.subaccounts.get(FUND_BOOK)
    if book is None or FUND_BOOK in ctx.state.liquidations:
        return  # none, or the ladder has it
    for market_id in sorted(book.positions):
        market = ctx.state.markets[market_id]
        oracle = ctx.state.oracles[market.params.oracle_id]
        if market.status is MarketStatus.ACTIVE and oracle.is_usable() and not oracle.restart_guard:
            unwind_market(ctx, book, market)
    if not book.positions and not book.order_ids:
        return_fund_book_margin(ctx, book)


def unwind_market(ctx: Context, book: Subaccount, market: MarketState) -> None:
    params = market.params
    window = window_start_ns(ctx.state.timestamp_ns, params.liquidation.close_window_ns)
    done = market.fund_unwound_base_quantums if market.fund_unwound_window_ns == window else 0
    size = book.positions[params.market_id].size_base_quantums
    step = params.step_base_quantums
    allowed = div_ceil(abs(size) * params.liquidation.close_fraction_ppm, PPM_ONE)
    allowed = max(allowed, params.min_order_base_quantums)  # so that it ends
    allowed = min(div_ceil(allowed, step) * step, abs(size)) - done
    if allowed <= 0:
        return
    side = closing_side(size)
    deviation = params.liquidation.fund_unwind_deviation_ppm
    through = PPM_ONE - deviation if side is Side.SELL else PPM_ONE + deviation
    limit = to_tick(
        div_ceil(market.mark_price_quantums * through, PPM_ONE), params.tick_quantums, side
    )
    mutated(ctx)
    filled = close_on_book(ctx, book, market, side, allowed, limit, None)
    if filled:
        market.fund_unwound_base_quantums = done + filled
        market.fund_unwound_window_ns = window
        ctx.touched.markets.add(params.market_id)


def return_fund_book_margin(ctx: Context, book: Subaccount) -> None:
    """A flat book's quote goes back to the fund; a loss beyond it, the fund makes good (what
    it cannot is recorded as a deficit by the bad-debt path)."""
    quote = book.balance(QUOTE_ASSET)
    if quote > 0:
        mutated(ctx)
        transfer(ctx, FUND_BOOK, INSURANCE, QUOTE_ASSET, quote, "fund book margin returned")
    elif quote < 0:
        mutated(ctx)
        cover = min(-quote, ctx.state.ledger.balance(INSURANCE, QUOTE_ASSET))
        if cover:
            transfer(ctx, INSURANCE, FUND_BOOK, QUOTE_ASSET, cover, "fund book loss")
        settle_bad_debt(ctx, FUND_BOOK, None)


def examine(
    ctx: Context, subaccount_id: SubaccountId, underwater: list[Subaccount], *, act: bool
) -> bool:
    """One subaccount's turn in the pass; True if the protocol took a ladder step."""
    now = ctx.state.timestamp_ns
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    risk = risk_of(ctx, subaccount)
    if risk.equity < 0:
        underwater.append(subaccount)  # counted again after the ladder has acted
    status = ctx.state.liquidations.get(subaccount_id)
    if not may_liquidate(ctx, subaccount, risk):
        if status is not None and risk.usable and risk.satisfies_initial:
            end_liquidation(ctx, subaccount_id)  # back above IM: the ladder stops
        elif status is not None and status.auction is not None:
            status.auction.seen_ns = now  # no bids on bad prices: the clock waits
            ctx.touched.liquidations.add(subaccount_id)
        return False
    if status is not None and status.auction is not None:  # its clock runs on usable prices
        status.auction.elapsed_ns = status.auction.age_ns(now)
        status.auction.seen_ns = now
        ctx.touched.liquidations.add(subaccount_id)
    market_id = market_to_liquidate(ctx, subaccount)
    if market_id is None:
        return False  # only positions awaiting settlement: settlement closes them
    if status is None:
        status = LiquidationStatus(since_ns=now)
        ctx.state.liquidations[subaccount_id] = status
        ctx.touched.liquidations.add(subaccount_id)
    grace = ctx.state.markets[market_id].params.liquidation.keeper_grace_ns
    if risk.equity < 0:  # bankrupt: no window for the profits it owes to leave first
        grace = ctx.state.markets[market_id].params.liquidation.bankrupt_grace_ns
    waiting = holds_options(ctx, subaccount) and not subaccount.order_ids
    if waiting and live_auction(ctx, subaccount) is not None:
        return False  # its auction is open: bidders act, the protocol has nothing to do
    stepped = False
    if now - status.since_ns >= grace and act:
        mutated(ctx)
        liquidation_step(ctx, subaccount_id, keeper=None)
        stepped = True
    if act:
        vault_bid(ctx, subaccount_id)
    maybe_end_auction(ctx, subaccount_id)
    return stepped


def vault_bid(ctx: Context, subaccount_id: SubaccountId) -> None:
    """The vault is the default bidder (SPEC §7): once an auction's discount reaches its
    position's MM fraction (× ``auction_bid_mm_multiple``: the risk taken on, paid for), the
    vault bids for what its caps allow, through ``BidAuction``'s own checks (its margin, the
    position cap, cooling-off; the slice's share of the equity bounds the price)."""
    vault = ctx.state.ledger.subaccounts.get(VAULT)
    status = ctx.state.liquidations.get(subaccount_id)
    if vault is None or status is None or subaccount_id in (VAULT, FUND_BOOK):
        return
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    auction = live_auction(ctx, subaccount)
    if auction is None or auction.market_id == PORTFOLIO_AUCTION:
        return
    market = ctx.state.markets[auction.market_id]
    position = subaccount.position_size(auction.market_id)
    size = min(auction.size_base_quantums, abs(position))
    multiple = ctx.state.venue.vault.auction_bid_mm_multiple_ppm
    wanted = div_ceil(maintenance_fraction_ppm(ctx, market, size) * multiple, PPM_ONE)
    if current_discount_ppm(ctx, market, auction, abs(position)) < wanted:
        return
    nav = risk_of(ctx, vault).equity
    room = room_base_quantums(
        vault.position_size(auction.market_id), closing_side(position).opposite,
        vault_cap(ctx, market, nav),
    )  # fmt: skip
    step = market.params.step_base_quantums
    size = min(size, room) // step * step
    if size < market.params.min_order_base_quantums:
        return
    command = BidAuction(
        signer=VAULT.owner, nonce=0, expiry_ns=ctx.state.timestamp_ns,
        subaccount_number=VAULT.number, owner=subaccount_id.owner,
        owner_number=subaccount_id.number, market_id=auction.market_id, size_base_quantums=size,
    )  # fmt: skip
    try:
        bid_auction(ctx, command)
    except Rejected:
        return  # its margin or a cap says no: the auction goes on


def market_to_liquidate(ctx: Context, subaccount: Subaccount) -> MarketId | None:
    """The open auction's market, else the active market with the largest MM."""
    auction = live_auction(ctx, subaccount)
    if auction is not None and auction.market_id != PORTFOLIO_AUCTION:
        return auction.market_id
    best: tuple[int, MarketId] | None = None
    for market_id, position in sorted(subaccount.positions.items()):
        if ctx.state.markets[market_id].status is not MarketStatus.ACTIVE:
            continue
        maintenance = requirements(position.size_base_quantums, market_risk(ctx, market_id))[1]
        if best is None or maintenance > best[0]:
            best = (maintenance, market_id)
    return None if best is None else best[1]


def liquidation_step(
    ctx: Context, subaccount_id: SubaccountId, keeper: SubaccountId | None
) -> None:
    """One rung of the ladder: cancel orders, close on the book no worse than the fillable
    price (capped per block), then the fund, auto-deleveraging or an auction for the rest."""
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    status = ctx.state.liquidations[subaccount_id]
    if status.auction is not None and live_auction(ctx, subaccount) is None:
        close_auction(ctx, subaccount_id)
    for order_id in sorted(subaccount.order_ids):
        cancel_any(ctx, order_id, CancelCause.LIQUIDATION)
    if holds_options(ctx, subaccount):
        open_portfolio_auction(ctx, subaccount_id)  # §7: options go to the auction whole
        return
    market_id = market_to_liquidate(ctx, subaccount)
    assert market_id is not None
    market = ctx.state.markets[market_id]
    side = closing_side(subaccount.positions[market_id].size_base_quantums)
    risk = risk_of(ctx, subaccount)
    target = close_target(ctx, subaccount, market, side, risk)
    filled = 0
    if target:
        limit = liquidation_limit(ctx, subaccount, market, side, target, risk)
        filled = close_on_book(ctx, subaccount, market, side, target, limit, keeper)
        window = window_start_ns(ctx.state.timestamp_ns, market.params.liquidation.close_window_ns)
        status.closed_base_quantums = status.closed_in(window) + filled
        status.closed_window_ns = window
        ctx.touched.liquidations.add(subaccount_id)
    if risk_of(ctx, subaccount).equity < 0:
        resolve_bankruptcy(ctx, subaccount_id, market)
    elif filled < target and market_id in subaccount.positions:
        open_auction(ctx, subaccount_id, market)


def close_target(
    ctx: Context, subaccount: Subaccount, market: MarketState, side: Side, risk: Risk
) -> int:
    """Just enough to bring the subaccount back above IM at the fillable price, at most the
    per-block cap; never leaving less than a minimum order behind."""
    params = market.params
    market_id = params.market_id
    size = abs(subaccount.positions[market_id].size_base_quantums)
    cap = close_size_cap(
        params.liquidation, position_base_quantums=size,
        mark_price_quantums=market.mark_price_quantums,
        base_quantums_per_unit=params.base_quantums_per_unit,
        step_base_quantums=params.step_base_quantums, equity=risk.equity,
        maintenance=risk.maintenance,
    )  # fmt: skip
    status = ctx.state.liquidations.get(subaccount.subaccount_id)
    if status is not None and cap < size:  # the cap is per block, whoever liquidates
        window = window_start_ns(ctx.state.timestamp_ns, params.liquidation.close_window_ns)
        cap = max(0, cap - status.closed_in(window))
        if cap == 0:
            return 0
    price = fillable(ctx, subaccount, market, side, risk)
    step = params.step_base_quantums
    low, high = 1, cap // step if cap % step == 0 else cap // step + 1
    while low < high:  # the smallest number of steps after which IM is met
        middle = (low + high) // 2
        if meets_im_after_close(
            ctx, subaccount, market, side, min(middle * step, size), price, risk.equity
        ):
            high = middle
        else:
            low = middle + 1
    target = min(low * step, cap, size)
    return size if size - target < params.min_order_base_quantums else target


def meets_im_after_close(
    ctx: Context,
    subaccount: Subaccount,
    market: MarketState,
    side: Side,
    size: int,
    price: int,
    equity: int,
) -> bool:
    notional = div_floor(size * price, market.params.base_quantums_per_unit)
    if notional <= 0:
        return False
    fill = PlannedFill(OrderId(0), subaccount.subaccount_id, price, size)
    fee = liquidation_fee(
        market.params.liquidation, notional_quote_quantums=notional, equity=equity
    )
    after = after_trades(
        ctx, subaccount, market, side, [Trade(fill, notional, 0, fee)], maker=False
    )
    return risk_of(ctx, after).satisfies_initial


def fillable(
    ctx: Context, subaccount: Subaccount, market: MarketState, side: Side, risk: Risk
) -> int:
    position = subaccount.positions[market.params.market_id]
    inputs = market_risk(ctx, market.params.market_id)
    maintenance = requirements(position.size_base_quantums, inputs)[1]
    notional = notional_requirement_base(
        position.size_base_quantums, market.mark_price_quantums,
        market.params.base_quantums_per_unit,
    )  # fmt: skip
    return fillable_price(
        mark_price_quantums=market.mark_price_quantums, side=side,
        maintenance_fraction_ppm=div_ceil(maintenance * PPM_ONE, max(notional, 1)),
        equity=risk.equity, maintenance=max(risk.maintenance, 1),
        min_deviation_ppm=market.params.liquidation.fillable_min_deviation_ppm,
    )  # fmt: skip


def liquidation_limit(
    ctx: Context, subaccount: Subaccount, market: MarketState, side: Side, size: int, risk: Risk
) -> int:
    """The fillable price, bounded so that losses past the account's equity never exceed
    what the insurance fund may still pay this block; on the tick grid."""
    bound = cover_bound_price(
        mark_price_quantums=market.mark_price_quantums, side=side, size_base_quantums=size,
        base_quantums_per_unit=market.params.base_quantums_per_unit, equity=risk.equity,
        cover=insurance_cover(ctx, market),
    )  # fmt: skip
    limit = more_conservative(side, fillable(ctx, subaccount, market, side, risk), bound)
    return min(to_tick(limit, market.params.tick_quantums, side), limits.price_quantums_max)


def close_on_book(
    ctx: Context,
    subaccount: Subaccount,
    market: MarketState,
    side: Side,
    size: int,
    limit: int,
    keeper: SubaccountId | None,
) -> int:
    """An IOC, reduce-only liquidation order against the book; makers are margin-checked
    as for any order. Returns the size filled."""
    if limit <= 0:
        return 0  # a buy back that no price on the grid can make good: the backstop takes it
    spec = OrderSpec(
        next_order_id(ctx), subaccount.subaccount_id, market.params.market_id, side, size,
        limit, TimeInForce.IOC, True, 0, 0,
    )  # fmt: skip
    try:
        plan, maker_cancels = plan_with_solvent_makers(ctx, market, spec, size)
    except Rejected:
        return 0  # every maker at these prices failed its margin: the backstop takes it
    trades = [
        dataclasses.replace(price_trade(ctx, market, f), taker_fee_quote_quantums=0)
        for f in plan.fills
    ]
    if not plan.filled_base_quantums:
        commit_plan(ctx, market, spec, plan, maker_cancels, trades)
        return 0
    before = risk_of(ctx, subaccount)  # for the receipt: the account as the step found it
    position = subaccount.position_size(market.params.market_id)
    commit_plan(ctx, market, spec, plan, maker_cancels, trades)
    notional = sum(t.notional_quote_quantums for t in trades)
    charge_liquidation_fee(ctx,
        subaccount.subaccount_id, market, side, plan.filled_base_quantums, notional,
        keeper, LiquidationStage.BOOK,
    )  # fmt: skip
    emit_receipt(
        ctx, subaccount.subaccount_id, market, LiquidationStage.BOOK, side, before, position,
        bound_price=limit, size=plan.filled_base_quantums, notional=notional,
    )  # fmt: skip
    return plan.filled_base_quantums


def liquidatable(ctx: Context) -> list[SubaccountId]:
    """Every subaccount the ladder may act on now (what a keeper looks for): the holders among
    the watch's suspects, which include every one that can be liquidatable."""
    found: list[SubaccountId] = []
    subaccounts = ctx.state.ledger.subaccounts
    holders = (s for s in watch.suspects(ctx) if s in subaccounts and subaccounts[s].positions)
    for subaccount_id in sorted(holders):
        subaccount = subaccounts[subaccount_id]
        eligible = may_liquidate(ctx, subaccount, risk_of(ctx, subaccount))
        if eligible and market_to_liquidate(ctx, subaccount) is not None:
            found.append(subaccount_id)
    return found


def liquidate_command(ctx: Context, command: Liquidate) -> None:
    target = liquidation_target(ctx, command)
    subaccount = ctx.state.ledger.subaccounts.get(target)
    if subaccount is None:
        raise Rejected(RejectReason.NOT_LIQUIDATABLE)
    risk = risk_of(ctx, subaccount)
    if not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)  # degraded mode: no one is liquidated
    if not may_liquidate(ctx, subaccount, risk):
        raise Rejected(RejectReason.NOT_LIQUIDATABLE)
    market_id = market_to_liquidate(ctx, subaccount)
    if market_id is None:
        raise Rejected(RejectReason.NOT_LIQUIDATABLE)
    if not step_would_act(ctx, subaccount, market_id):
        raise Rejected(RejectReason.NOTHING_TO_LIQUIDATE)
    mutated(ctx)
    if target not in ctx.state.liquidations:
        ctx.state.liquidations[target] = LiquidationStatus(since_ns=ctx.state.timestamp_ns)
        ctx.touched.liquidations.add(target)
    keeper = SubaccountId(command.signer, command.subaccount_number)
    liquidation_step(ctx, target, keeper)
    maybe_end_auction(ctx, target)


def step_would_act(ctx: Context, subaccount: Subaccount, market_id: MarketId) -> bool:
    """Whether a ladder step would change anything now. A keeper is paid for work done; a
    command that would do nothing (the block's cap used, an auction open and no bid on the
    book within the limit) is refused rather than costing the venue a book walk."""
    risk = risk_of(ctx, subaccount)
    if subaccount.order_ids or risk.equity < 0:
        return True
    if holds_options(ctx, subaccount):
        return live_auction(ctx, subaccount) is None  # opening the auction is the step
    market = ctx.state.markets[market_id]
    side = closing_side(subaccount.positions[market_id].size_base_quantums)
    target = close_target(ctx, subaccount, market, side, risk)
    if target == 0:
        return False
    if live_auction(ctx, subaccount) is None:
        return True  # the book fills, or an auction opens
    limit = liquidation_limit(ctx, subaccount, market, side, target, risk)
    if limit <= 0:
        return False
    plan = market.book.plan(
        side=side, limit_price_quantums=limit, size_base_quantums=target,
        owner=subaccount.subaccount_id,
    )  # fmt: skip
    return plan.filled_base_quantums > 0
