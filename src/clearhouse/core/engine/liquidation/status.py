"""Who is under liquidation and whether the ladder may act (fresh prices, restart
guard); the open auction; ending a liquidation; the liquidation penalty and its split.
"""

from __future__ import annotations

from clearhouse.core.engine.context import Context, Rejected, check_subaccount_number, transfer
from clearhouse.core.engine.risk import risk_of
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    Side,
    SubaccountId,
    is_address,
)
from clearhouse.core.ledger import (
    INSURANCE,
    Subaccount,
)
from clearhouse.core.liquidation import (
    cover_bound_price,
    keeper_share,
    liquidation_fee,
)
from clearhouse.core.margin import (
    Risk,
)
from clearhouse.core.messages import (
    AuctionEnded,
    BidAuction,
    BidPortfolio,
    Liquidate,
    Liquidated,
    LiquidationReceipt,
    LiquidationStage,
)
from clearhouse.core.params import (
    MarketKind,
)
from clearhouse.core.state import (
    PORTFOLIO_AUCTION,
    Auction,
    MarketState,
    MarketStatus,
)


def may_liquidate(ctx: Context, subaccount: Subaccount, risk: Risk) -> bool:
    """Below MM (or, once the ladder started, still below IM) on fresh prices, and no price
    it depends on just came back from an outage (dYdX, Oct 2025: the first prices after a
    restart liquidate nobody)."""
    under_way = subaccount.subaccount_id in ctx.state.liquidations
    if not risk.usable or not (risk.liquidatable or (under_way and not risk.satisfies_initial)):
        return False  # once started, the ladder goes on until IM is met again
    oracle_ids = {ctx.state.markets[m].params.oracle_id for m in subaccount.positions}
    for asset_id in subaccount.assets:  # the quote asset has no oracle
        oracle_id = ctx.state.assets[asset_id].oracle_id
        if oracle_id is not None:
            oracle_ids.add(oracle_id)
    return not any(ctx.state.oracles[o].restart_guard for o in oracle_ids)


def live_auction(ctx: Context, subaccount: Subaccount) -> Auction | None:
    """The subaccount's auction, if its market is still active and still held (a position
    closed by its owner, by ADL or by settlement leaves a stale auction behind)."""
    status = ctx.state.liquidations.get(subaccount.subaccount_id)
    auction = None if status is None else status.auction
    if auction is not None and auction.market_id == PORTFOLIO_AUCTION:
        return auction if holds_options(ctx, subaccount) else None
    if auction is None or auction.market_id not in subaccount.positions:
        return None
    if ctx.state.markets[auction.market_id].status is not MarketStatus.ACTIVE:
        return None
    return auction


def charge_liquidation_fee(
    ctx: Context,
    subaccount_id: SubaccountId,
    market: MarketState,
    side: Side,
    size: int,
    notional: int,
    keeper: SubaccountId | None,
    stage: LiquidationStage,
    *,
    keep_quote_quantums: int = 0,
) -> None:
    """The fee of a liquidation step, from what equity is left above ``keep_quote_quantums``
    (an auction slice leaves the remainder its share)."""
    params = market.params.liquidation
    equity = risk_of(ctx, ctx.state.ledger.subaccounts[subaccount_id]).equity
    fee = liquidation_fee(
        params, notional_quote_quantums=notional, equity=equity - keep_quote_quantums
    )
    to_keeper = keeper_share(params, fee) if keeper is not None else 0
    if to_keeper:
        assert keeper is not None
        transfer(ctx, subaccount_id, keeper, QUOTE_ASSET, to_keeper, "liquidation reward")
    if fee - to_keeper:
        transfer(ctx, subaccount_id, INSURANCE, QUOTE_ASSET, fee - to_keeper, "liquidation fee")
    ctx.events.append(Liquidated(
        subaccount=str(subaccount_id), market_id=market.params.market_id, stage=stage,
        side=side, size_base_quantums=size, notional_quote_quantums=notional,
        fee_to_keeper_quote_quantums=to_keeper, fee_to_fund_quote_quantums=fee - to_keeper,
        keeper="" if keeper is None else str(keeper),
    ))  # fmt: skip


def close_auction(ctx: Context, subaccount_id: SubaccountId) -> None:
    status = ctx.state.liquidations[subaccount_id]
    auction = status.auction
    assert auction is not None
    status.auction = None
    ctx.touched.liquidations.add(subaccount_id)
    position = 0
    if auction.market_id != PORTFOLIO_AUCTION:
        subaccount = ctx.state.ledger.subaccounts[subaccount_id]
        position = subaccount.position_size(auction.market_id)
    ctx.events.append(AuctionEnded(
        subaccount=str(subaccount_id), market_id=auction.market_id,
        remaining_base_quantums=abs(position),
    ))  # fmt: skip


def end_liquidation(ctx: Context, subaccount_id: SubaccountId) -> None:
    status = ctx.state.liquidations[subaccount_id]
    if status.auction is not None:
        close_auction(ctx, subaccount_id)
    del ctx.state.liquidations[subaccount_id]
    ctx.touched.liquidations.add(subaccount_id)


def liquidation_target(
    ctx: Context, command: Liquidate | BidAuction | BidPortfolio
) -> SubaccountId:
    """The subaccount a keeper or bidder acts on; never one of the signer's own (JELLY,
    2025: liquidating oneself into the backstop)."""
    check_subaccount_number(command.subaccount_number)
    check_subaccount_number(command.owner_number)
    if not is_address(command.owner):
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if command.owner == command.signer:
        raise Rejected(RejectReason.SELF_LIQUIDATION)
    return SubaccountId(command.owner, command.owner_number)


def holds_options(ctx: Context, subaccount: Subaccount) -> bool:
    return any(
        ctx.state.markets[m].params.kind is MarketKind.OPTION
        and ctx.state.markets[m].status is MarketStatus.ACTIVE
        for m in subaccount.positions
    )


def emit_receipt(
    ctx: Context, subaccount_id: SubaccountId, market: MarketState, stage: LiquidationStage,
    side: Side, before: Risk, position_before: int, *, bound_price: int, size: int,
    notional: int, fund_paid: int = 0,
) -> None:  # fmt: skip
    """The step's receipt: its inputs as they were before it, and what it did."""
    oracle = ctx.state.oracles[market.params.oracle_id]
    bankruptcy = cover_bound_price(
        mark_price_quantums=market.mark_price_quantums, side=side,
        size_base_quantums=abs(position_before),
        base_quantums_per_unit=market.params.base_quantums_per_unit, equity=before.equity,
        cover=0,
    )  # fmt: skip
    ctx.events.append(LiquidationReceipt(
        subaccount=str(subaccount_id), market_id=market.params.market_id, stage=stage,
        side=side, mark_price_quantums=market.mark_price_quantums,
        index_price_quantums=oracle.index_price_quantums, position_base_quantums=position_before,
        equity_quote_quantums=before.equity, maintenance_quote_quantums=before.maintenance,
        initial_quote_quantums=before.initial, bound_price_quantums=bound_price,
        bankruptcy_price_quantums=bankruptcy, size_base_quantums=size,
        notional_quote_quantums=notional, fund_paid_quote_quantums=fund_paid,
    ))  # fmt: skip
