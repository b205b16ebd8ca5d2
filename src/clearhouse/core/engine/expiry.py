"""Each block, per dated market: expiry, settlement at the index TWAP, and archival of
markets settled for a day.
"""

from __future__ import annotations

from clearhouse.core import settlement
from clearhouse.core.engine.context import Context, pay_pnl, transfer
from clearhouse.core.engine.governance import due_fallback, market_archived, market_settled
from clearhouse.core.engine.liquidation.insolvency import settle_bad_debt
from clearhouse.core.engine.liquidation.status import close_auction
from clearhouse.core.engine.trading.resting import cancel_resting, cancel_trigger
from clearhouse.core.engine.valuation import expiry_unit_value
from clearhouse.core.ids import (
    QUOTE_ASSET,
)
from clearhouse.core.ledger import (
    INSURANCE,
    clearing_account,
)
from clearhouse.core.messages import (
    CancelCause,
    MarketArchived,
    MarketExpired,
    MarketSettled,
)
from clearhouse.core.oracle import (
    OracleState,
    Twap,
    twap_window,
)
from clearhouse.core.params import (
    MarketParams,
)
from clearhouse.core.state import (
    MarketState,
    MarketStatus,
    params_key,
)
from clearhouse.core.units import (
    NS_PER_HOUR,
    PPM_ONE,
)


def maybe_expire(ctx: Context, market: MarketState, oracle: OracleState) -> None:
    params = market.params
    now = ctx.state.timestamp_ns
    if market.status is MarketStatus.ACTIVE and now >= params.expiry_ns:
        market.status = MarketStatus.EXPIRED
        for order_id in sorted(market.triggers):
            cancel_trigger(ctx, market, order_id, CancelCause.SETTLEMENT)
        for order in sorted(market.book.orders(), key=lambda o: o.order_id):
            cancel_resting(ctx, market, order.order_id, CancelCause.SETTLEMENT)
        ctx.events.append(MarketExpired(market_id=params.market_id))
    if market.status is not MarketStatus.EXPIRED:
        return
    # The settlement TWAP is the window before expiry. If the oracle failed then, settlement
    # waits (funds stay in their positions) for the first later window that fresh samples
    # cover: a sample stands for at most the staleness bound, never across an outage. If the
    # oracle never recovers, governance may set the price after the market's timeout; it
    # settles once its dispute window closes undisputed (``engine/governance.py``).
    window = params.settlement_window_ns
    hold = oracle.params.staleness_ns
    end = params.expiry_ns
    result = twap_window(oracle.twap_samples, start_ns=end - window, end_ns=end, max_hold_ns=hold)
    if not settles_on(result, params) and now > end:
        result = twap_window(
            oracle.twap_samples, start_ns=now + 1 - window, end_ns=now + 1, max_hold_ns=hold
        )
    if settles_on(result, params):
        settle_market(ctx, market, result.price_quantums, result.samples)
        return
    fallback = due_fallback(ctx, params.market_id)  # §8: the oracle never recovered
    if fallback is not None:
        settle_market(ctx, market, fallback, 0)


def archive_settled(ctx: Context) -> None:
    """A market settled for a day leaves state (its leaves go from the tree): settled
    markets never count against ``markets_max``, so default series roll on for ever."""
    now = ctx.state.timestamp_ns
    for market_id in sorted(ctx.state.markets):
        market = ctx.state.markets[market_id]
        if market.status is not MarketStatus.SETTLED:
            continue
        if now < market.params.expiry_ns + ARCHIVE_AFTER_NS:
            continue
        assert not market.holders and len(market.book) == 0 and not market.triggers
        assert ctx.state.ledger.balance(clearing_account(market_id), QUOTE_ASSET) == 0
        del ctx.state.markets[market_id]
        ctx.touched.markets.discard(market_id)
        # Its parameters' leaf goes too: one written since the last flush (its listing, a
        # change) must not come back after ``flush_archived`` deletes it.
        ctx.touched.params.pop(params_key("market", market_id), None)
        ctx.touched.archived.add(market_id)
        ctx.derived.market_risk_cache.pop(market_id, None)
        ctx.derived.profile_cache.pop(market_id, None)
        market_archived(ctx, market_id)
        ctx.events.append(MarketArchived(
            market_id=market_id, settlement_price_quantums=market.settlement_price_quantums
        ))  # fmt: skip


def settles_on(result: Twap, params: MarketParams) -> bool:
    enough_samples = result.samples >= params.settlement_min_samples
    covered = (
        result.covered_ns * PPM_ONE
        >= params.settlement_min_coverage_ppm * params.settlement_window_ns
    )
    return enough_samples and covered and result.price_quantums > 0


def settle_market(ctx: Context, market: MarketState, price: int, samples: int) -> None:
    """Close every position at the settlement price in this one block: final, no manual step."""
    params = market.params
    clearing = clearing_account(params.market_id)
    holders = sorted(market.holders)
    for holder in holders:
        subaccount = ctx.state.ledger.subaccounts[holder]
        position = subaccount.positions.pop(params.market_id)
        value = settlement.expiry_value(
            position.size_base_quantums, expiry_unit_value(params, price),
            params.base_quantums_per_unit,
        )  # fmt: skip
        pay_pnl(ctx, params.market_id, holder, value - position.cost_quote_quantums)
        ctx.touched.subaccounts.add(holder)
        ctx.derived.risk_changed[holder] = None
    market.holders.clear()
    market.open_interest_base_quantums = 0
    residue = ctx.state.ledger.balance(clearing, QUOTE_ASSET)
    assert residue >= 0, "rounding down every value leaves the clearing account a residue >= 0"
    if residue:
        transfer(ctx, clearing, INSURANCE, QUOTE_ASSET, residue, "settlement residue")
    market.status = MarketStatus.SETTLED
    market.settlement_price_quantums = price
    market_settled(ctx, params.market_id)
    ctx.events.append(MarketSettled(
        market_id=params.market_id, settlement_price_quantums=price, twap_samples=samples,
        positions_closed=len(holders), residue_quote_quantums=residue,
    ))  # fmt: skip
    for holder in holders:  # a loss past its collateral: the fund, then the deficit
        status = ctx.state.liquidations.get(holder)
        auction = None if status is None else status.auction
        if auction is not None and auction.market_id == params.market_id:
            close_auction(ctx, holder)
        settle_bad_debt(ctx, holder, market)


ARCHIVE_AFTER_NS = 24 * NS_PER_HOUR  # a settled market stays queryable for a day
