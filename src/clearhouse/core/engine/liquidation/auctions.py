"""Dutch auctions (§7): of a position the book could not absorb (``BidAuction``), and
of a proportional slice of an options portfolio (``BidPortfolio``).
"""

from __future__ import annotations

from clearhouse.core import limits
from clearhouse.core.engine.context import Context, Rejected, mutated, transfer, with_balance
from clearhouse.core.engine.liquidation.insolvency import (
    backstop,
    draw_insurance,
    insurance_cover,
    resolve_bankruptcy,
    settle_bad_debt,
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
from clearhouse.core.engine.risk import (
    admit,
    collateral_price,
    is_reduce_only,
    market_risk,
    risk_of,
)
from clearhouse.core.engine.trading.resting import enforce_reduce_only
from clearhouse.core.engine.trading.trades import (
    Trade,
    after_trades,
    check_size,
    over_position_cap,
    settle_side,
    tradable_market,
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
    Subaccount,
)
from clearhouse.core.liquidation import (
    auction_discount_ppm,
    auction_price,
    auction_start_discount_ppm,
    closing_side,
    cover_bound_price,
    more_conservative,
    slice_equity_share,
)
from clearhouse.core.margin import (
    Risk,
    collateral_value,
    is_reducing,
    notional_requirement_base,
    requirements,
)
from clearhouse.core.matching import PlannedFill
from clearhouse.core.messages import (
    AuctionStarted,
    BidAuction,
    BidPortfolio,
    Liquidated,
    LiquidationStage,
)
from clearhouse.core.params import (
    LiquidationParams,
    MarketKind,
)
from clearhouse.core.state import (
    PORTFOLIO_AUCTION,
    Auction,
    MarketState,
    MarketStatus,
)
from clearhouse.core.units import (
    PPM_ONE,
    div_ceil,
    div_floor,
)


def open_auction(ctx: Context, subaccount_id: SubaccountId, market: MarketState) -> None:
    status = ctx.state.liquidations[subaccount_id]
    if status.auction is not None:
        return
    market_id = market.params.market_id
    size = ctx.state.ledger.subaccounts[subaccount_id].positions[market_id].size_base_quantums
    now = ctx.state.timestamp_ns
    status.auction = Auction(market_id, now, abs(size), seen_ns=now)
    ctx.touched.liquidations.add(subaccount_id)
    ctx.events.append(AuctionStarted(
        subaccount=str(subaccount_id), market_id=market_id, side=closing_side(size),
        size_base_quantums=abs(size),
    ))  # fmt: skip


def maybe_end_auction(ctx: Context, subaccount_id: SubaccountId) -> None:
    """An auction whose time ran out hands the rest to the backstop: the fund's book if it
    can carry it, else auto-deleveraging."""
    status = ctx.state.liquidations.get(subaccount_id)
    if status is None or status.auction is None:
        return
    auction = status.auction
    subaccount = ctx.state.ledger.subaccounts[subaccount_id]
    if live_auction(ctx, subaccount) is None:
        close_auction(ctx, subaccount_id)
        return
    if auction.market_id == PORTFOLIO_AUCTION:
        return  # open at its deepest discount until bid for, or until its options settle
    market = ctx.state.markets[auction.market_id]
    if auction.age_ns(ctx.state.timestamp_ns) < market.params.liquidation.auction_duration_ns:
        return
    mutated(ctx)
    close_auction(ctx, subaccount_id)
    risk = risk_of(ctx, subaccount)
    if risk.usable and risk.satisfies_initial:
        end_liquidation(ctx, subaccount_id)  # the book did it after all: nothing to force
        return
    backstop(ctx, subaccount_id, market)


def bid_auction(ctx: Context, command: BidAuction) -> None:
    target = liquidation_target(ctx, command)
    status = ctx.state.liquidations.get(target)
    auction = None if status is None else status.auction
    if auction is None or auction.market_id != command.market_id:
        raise Rejected(RejectReason.NO_SUCH_AUCTION)
    market = tradable_market(ctx, command.market_id)
    check_size(market, command.size_base_quantums)
    subaccount = ctx.state.ledger.subaccounts[target]
    position = subaccount.position_size(command.market_id)
    size = min(command.size_base_quantums, auction.size_base_quantums, abs(position))
    if size <= 0:
        raise Rejected(RejectReason.NO_SUCH_AUCTION)
    risk = risk_of(ctx, subaccount)
    if not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)
    if not may_liquidate(ctx, subaccount, risk):
        raise Rejected(RejectReason.NOT_LIQUIDATABLE)  # recovered, or behind the guard
    side = closing_side(position)
    trade, keep = auction_trade(ctx, market, command, auction, side, size)
    bidder_id = SubaccountId(command.signer, command.subaccount_number)
    bidder = check_bidder(ctx, bidder_id, market, side.opposite, trade)
    mutated(ctx)
    settle_side(ctx, market, subaccount, side, trade, 0)
    settle_side(ctx, market, bidder, side.opposite, trade, 0)
    enforce_reduce_only(ctx, market, bidder)
    auction.size_base_quantums -= size
    ctx.touched.liquidations.add(target)
    charge_liquidation_fee(ctx,
        target, market, side, size, trade.notional_quote_quantums, bidder_id,
        LiquidationStage.AUCTION, keep_quote_quantums=keep,
    )  # fmt: skip
    emit_receipt(
        ctx, target, market, LiquidationStage.AUCTION, side, risk, position,
        bound_price=trade.fill.price_quantums, size=size, notional=trade.notional_quote_quantums,
    )  # fmt: skip
    if risk_of(ctx, subaccount).equity < 0:
        resolve_bankruptcy(ctx, target, market)
    elif auction.size_base_quantums == 0 or command.market_id not in subaccount.positions:
        close_auction(ctx, target)


def check_bidder(
    ctx: Context, bidder_id: SubaccountId, market: MarketState, side: Side, trade: Trade
) -> Subaccount:
    """A bidder takes on the position as it would by any order: margin, positions limit,
    cooling-off and the position cap all apply."""
    bidder = ctx.state.ledger.subaccounts.get(bidder_id)
    if bidder is None:
        raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
    market_id = market.params.market_id
    after = after_trades(ctx, bidder, market, side, [trade], maker=False)
    if len(after.positions) > limits.positions_per_subaccount_max:
        raise Rejected(RejectReason.TOO_MANY_POSITIONS)
    refusal = admit(ctx, bidder, after, market_id)
    if refusal is not None:
        raise Rejected(refusal)
    check_bidder_exposure(ctx, market, bidder, after)
    return bidder


def check_bidder_exposure(
    ctx: Context, market: MarketState, bidder: Subaccount, after: Subaccount
) -> None:
    """A bidder growing a position obeys cooling-off and the position cap, as an order."""
    market_id = market.params.market_id
    grows = not is_reducing(bidder.position_size(market_id), after.position_size(market_id))
    if grows and is_reduce_only(ctx, market):
        raise Rejected(RejectReason.MARKET_REDUCE_ONLY)
    if over_position_cap(ctx, market, bidder, after):
        raise Rejected(RejectReason.POSITION_CAP_EXCEEDED)


def auction_trade(
    ctx: Context, market: MarketState, command: BidAuction, auction: Auction, side: Side, size: int
) -> tuple[Trade, int]:
    """The bid at the auction's price now, never past the slice's share of the position's
    bankruptcy bound; and the equity the remainder keeps (what the fee may not touch)."""
    target = ctx.state.ledger.subaccounts[SubaccountId(command.owner, command.owner_number)]
    params = market.params
    position = abs(target.position_size(params.market_id))
    discount = current_discount_ppm(ctx, market, auction, position)
    price = auction_price(market.mark_price_quantums, side, discount)
    # The bound is over the whole position: a slice may use up only its share of the equity
    # this position may spend, so the first partial bid cannot take everything and leave the
    # rest one tick from bankruptcy; no bidder's discount may become bad debt for the fund or
    # for ADL. What the account's other positions need to be closed (their MM) is not this
    # position's to spend: a bid that took it would leave them to the fund.
    equity = risk_of(ctx, target).equity
    spendable = equity - others_maintenance(ctx, target, params.market_id)
    share = slice_equity_share(spendable, size, position)
    keep = max(equity, 0) - share
    bankruptcy = cover_bound_price(
        mark_price_quantums=market.mark_price_quantums, side=side, size_base_quantums=size,
        base_quantums_per_unit=params.base_quantums_per_unit, equity=share, cover=0,
    )  # fmt: skip
    price = more_conservative(side, price, bankruptcy)
    per_unit = params.base_quantums_per_unit
    product = size * price
    notional = div_floor(product, per_unit) if side is Side.SELL else div_ceil(product, per_unit)
    fill = PlannedFill(
        OrderId(0), SubaccountId(command.signer, command.subaccount_number), price, size
    )
    # The bound is a price on no grid, and the notional rounds in the bidder's favour: that
    # may leave the remainder a few quantums short of its share. The bidder makes it good, so
    # that a bid never creates bad debt (nor forces ADL over rounding dust).
    trial = Trade(fill, max(notional, 1), 0, 0)
    after = after_trades(ctx, target, market, side, [trial], maker=False)
    short = keep - risk_of(ctx, after).equity
    if short > 0 and equity >= 0:
        notional += short if side is Side.SELL else -short
    if notional <= 0:
        raise Rejected(RejectReason.NO_SUCH_AUCTION)
    return Trade(fill, notional, 0, 0), keep


def others_maintenance(ctx: Context, subaccount: Subaccount, market_id: MarketId) -> int:
    """The maintenance margin of a subaccount's positions other than the one in ``market_id``
    (in its margin mode): what closing them may cost, which an auction there may not spend."""
    if len(subaccount.positions) == 1:
        return 0
    others = Subaccount(
        subaccount.subaccount_id, balances=subaccount.balances,
        positions={m: p for m, p in subaccount.positions.items() if m != market_id},
    )  # fmt: skip
    return risk_of(ctx, others).maintenance


def current_discount_ppm(ctx: Context, market: MarketState, auction: Auction, size: int) -> int:
    """The auction's discount now, for a position of ``size``: from half its MM fraction."""
    params = market.params.liquidation
    start = auction_start_discount_ppm(params, maintenance_fraction_ppm(ctx, market, size))
    return auction_discount_ppm(params, auction.age_ns(ctx.state.timestamp_ns), start)


def maintenance_fraction_ppm(ctx: Context, market: MarketState, size: int) -> int:
    """A position's MM as a fraction of its notional at the mark, rounded up."""
    risk = market_risk(ctx, market.params.market_id)
    maintenance = requirements(size, risk)[1]
    notional = notional_requirement_base(
        size, risk.mark_price_quantums, risk.base_quantums_per_unit
    )
    return div_ceil(maintenance * PPM_ONE, notional) if notional > 0 else 0


def open_portfolio_auction(ctx: Context, subaccount_id: SubaccountId) -> None:
    status = ctx.state.liquidations[subaccount_id]
    if status.auction is not None:
        return
    now = ctx.state.timestamp_ns
    status.auction = Auction(PORTFOLIO_AUCTION, now, 0, seen_ns=now)
    ctx.touched.liquidations.add(subaccount_id)
    ctx.events.append(AuctionStarted(
        subaccount=str(subaccount_id), market_id=PORTFOLIO_AUCTION, side=Side.SELL,
        size_base_quantums=0,
    ))  # fmt: skip


def portfolio_params(ctx: Context, subaccount: Subaccount) -> tuple[MarketState, LiquidationParams]:
    """The first option market held names the auction's schedule and the fund's cap."""
    for market_id in sorted(subaccount.positions):
        market = ctx.state.markets[market_id]
        if market.params.kind is MarketKind.OPTION:
            return market, market.params.liquidation
    raise AssertionError("a portfolio auction without options")


def bid_portfolio(ctx: Context, command: BidPortfolio) -> None:
    target = liquidation_target(ctx, command)
    status = ctx.state.liquidations.get(target)
    auction = None if status is None else status.auction
    subaccount = ctx.state.ledger.subaccounts.get(target)
    if auction is None or auction.market_id != PORTFOLIO_AUCTION or subaccount is None:
        raise Rejected(RejectReason.NO_SUCH_AUCTION)
    if not holds_options(ctx, subaccount):
        raise Rejected(RejectReason.NO_SUCH_AUCTION)
    if not 0 < command.fraction_ppm <= PPM_ONE:
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    risk = risk_of(ctx, subaccount)
    if not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)
    if not may_liquidate(ctx, subaccount, risk):
        raise Rejected(RejectReason.NOT_LIQUIDATABLE)
    fund_market, params = portfolio_params(ctx, subaccount)
    discount = auction_discount_ppm(params, auction.age_ns(ctx.state.timestamp_ns))
    cap = portfolio_fraction_cap(ctx, subaccount, discount, fund_market)
    slices = portfolio_slices(ctx, subaccount, min(command.fraction_ppm, cap))
    after = risk_of(ctx, after_slices(ctx, subaccount, slices, True, 0))
    # A bid must take risk away: one that strips a hedge (raising MM, so that a later bid
    # is paid on the naked position) is refused.
    if not slices or after.maintenance >= risk.maintenance:
        raise Rejected(RejectReason.NOTHING_TO_LIQUIDATE)
    reward, from_fund = portfolio_reward(ctx, subaccount, risk, after, discount, fund_market)
    bidder_id = SubaccountId(command.signer, command.subaccount_number)
    bidder = check_portfolio_bidder(ctx, bidder_id, slices, reward + from_fund)
    mutated(ctx)
    for market, side, trade in slices:
        position = subaccount.position_size(market.params.market_id)
        settle_side(ctx, market, subaccount, side, trade, 0)
        settle_side(ctx, market, bidder, side.opposite, trade, 0)
        enforce_reduce_only(ctx, market, bidder)
        ctx.events.append(Liquidated(
            subaccount=str(target), market_id=market.params.market_id,
            stage=LiquidationStage.AUCTION, side=side,
            size_base_quantums=trade.fill.size_base_quantums,
            notional_quote_quantums=trade.notional_quote_quantums,
            fee_to_keeper_quote_quantums=0, fee_to_fund_quote_quantums=0,
            keeper=str(bidder_id),
        ))  # fmt: skip
        emit_receipt(
            ctx, target, market, LiquidationStage.AUCTION, side, risk, position,
            bound_price=trade.fill.price_quantums, size=trade.fill.size_base_quantums,
            notional=trade.notional_quote_quantums,
        )  # fmt: skip
    if reward:
        transfer(ctx, target, bidder_id, QUOTE_ASSET, reward, "liquidation reward")
    if from_fund:
        draw_insurance(ctx, target, fund_market, from_fund, recipient=bidder_id)
    after = risk_of(ctx, subaccount)
    if after.usable and after.satisfies_initial and not holds_options(ctx, subaccount):
        end_liquidation(ctx, target)
    elif not subaccount.positions:
        settle_bad_debt(ctx, target, fund_market)  # the fund, then the deficit


def portfolio_slices(
    ctx: Context, subaccount: Subaccount, fraction_ppm: int
) -> list[tuple[MarketState, Side, Trade]]:
    """``fraction_ppm`` of every active position (down to the step), traded at the mark;
    the notional rounds against the liquidated account."""
    slices = []
    for market_id, position in sorted(subaccount.positions.items()):
        market = ctx.state.markets[market_id]
        if market.status is not MarketStatus.ACTIVE:
            continue  # awaiting settlement: it closes at the settlement price
        held = abs(position.size_base_quantums)
        step = market.params.step_base_quantums
        size = held if fraction_ppm == PPM_ONE else held * fraction_ppm // PPM_ONE // step * step
        if size == 0:
            continue
        side = closing_side(position.size_base_quantums)
        product = size * market.mark_price_quantums
        per_unit = market.params.base_quantums_per_unit
        notional = (
            div_floor(product, per_unit) if side is Side.SELL else div_ceil(product, per_unit)
        )
        notional = max(notional, 1)  # a worthless option still changes hands for a quantum
        fill = PlannedFill(OrderId(0), subaccount.subaccount_id, market.mark_price_quantums, size)
        slices.append((market, side, Trade(fill, notional, 0, 0)))
    return slices


def portfolio_reward(
    ctx: Context,
    subaccount: Subaccount,
    risk: Risk,
    after: Risk,
    discount_ppm: int,
    fund_market: MarketState,
) -> tuple[int, int]:
    """(from the account, from the fund): the auction's discount on the maintenance margin
    the slices actually take away. A solvent account pays it, never past the equity it has
    left after the slices; an insolvent one pays nothing, and the fund pays the bidder to
    take it, within the market's per-block cap (Lyra v2's insolvent auction): bankrupt
    portfolios do not wait for their expiry with withdrawals paused. ``after`` is the
    account's risk once the slices are gone, before any reward."""
    removed = max(risk.maintenance - after.maintenance, 0)
    reward = div_floor(removed * discount_ppm, PPM_ONE)
    # Solvency at the collateral's full price (its haircut value is for margin): what the
    # account would have after seizure. Only a truly insolvent account is the fund's.
    premium = collateral_premium(ctx, subaccount)
    if risk.equity + premium < 0:
        return 0, min(reward, insurance_cover(ctx, fund_market))
    return min(reward, max(after.equity + premium, 0)), 0


def collateral_premium(ctx: Context, subaccount: Subaccount) -> int:
    """Full index value less haircut value of the volatile collateral (seizure's gain)."""
    premium = 0
    for asset_id, amount in sorted(subaccount.balances.items()):
        if asset_id == QUOTE_ASSET or amount <= 0:
            continue
        price = collateral_price(ctx, asset_id)
        if price.usable:
            full = div_floor(amount * price.price_quantums, price.quantums_per_unit)
            premium += full - collateral_value(amount, price)
    return premium


def after_slices(
    ctx: Context,
    subaccount: Subaccount,
    slices: list[tuple[MarketState, Side, Trade]],
    taker: bool,
    reward: int,
) -> Subaccount:
    after = subaccount
    for market, side, trade in slices:
        after = after_trades(ctx, after, market, side if taker else side.opposite, [trade],
                                   maker=False)  # fmt: skip
    quote = after.balance(QUOTE_ASSET) + (reward if not taker else -reward)
    return with_balance(after, QUOTE_ASSET, quote)


def portfolio_fraction_cap(
    ctx: Context, subaccount: Subaccount, discount_ppm: int, fund_market: MarketState
) -> int:
    """The smallest fraction after which a solvent account meets IM again (Lyra v2 bounds
    a bid the same way): no account loses more of its portfolio than it must. Bankrupt
    accounts have no such bound."""
    risk = risk_of(ctx, subaccount)
    if risk.equity < 0:
        return PPM_ONE
    low, high = 1, PPM_ONE
    while low < high:
        middle = (low + high) // 2
        slices = portfolio_slices(ctx, subaccount, middle)
        taken = risk_of(ctx, after_slices(ctx, subaccount, slices, True, 0))
        reward = portfolio_reward(ctx, subaccount, risk, taken, discount_ppm, fund_market)[0]
        after = after_slices(ctx, subaccount, slices, True, reward)
        if slices and risk_of(ctx, after).satisfies_initial:
            high = middle
        else:
            low = middle + 1
    return low


def check_portfolio_bidder(
    ctx: Context,
    bidder_id: SubaccountId,
    slices: list[tuple[MarketState, Side, Trade]],
    reward: int,
) -> Subaccount:
    bidder = ctx.state.ledger.subaccounts.get(bidder_id)
    if bidder is None:
        raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
    after = after_slices(ctx, bidder, slices, False, reward)
    if len(after.positions) > limits.positions_per_subaccount_max:
        raise Rejected(RejectReason.TOO_MANY_POSITIONS)
    refusal = admit(ctx, bidder, after, None, strict_im=True)
    if refusal is not None:
        raise Rejected(refusal)
    for market, _, _ in slices:
        check_bidder_exposure(ctx, market, bidder, after)
    return bidder
