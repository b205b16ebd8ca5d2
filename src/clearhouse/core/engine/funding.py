"""Each block, per perpetual: the hourly funding payment, zero-sum between longs and shorts,
its rounding residue to the insurance fund.
"""

from __future__ import annotations

from clearhouse.core import settlement
from clearhouse.core.engine.context import Context, mutated, transfer
from clearhouse.core.ids import (
    QUOTE_ASSET,
)
from clearhouse.core.ledger import (
    INSURANCE,
    funding_account,
)
from clearhouse.core.messages import (
    FundingPaid,
)
from clearhouse.core.oracle import (
    OracleState,
)
from clearhouse.core.state import (
    MarketState,
)


def maybe_pay_funding(ctx: Context, market: MarketState, oracle: OracleState) -> None:
    """Pay funding once the interval has elapsed (and only on a fresh index: otherwise the
    payment waits, with its premium samples, for the price to come back)."""
    now = ctx.state.timestamp_ns
    if now < market.next_funding_ns:
        return
    params = market.params
    rate = settlement.hourly_funding_rate_ppb(
        premium_sum_ppb=market.premium_sum_ppb, premium_samples=market.premium_samples,
        funding=params.funding, margin=params.margin,
    )  # fmt: skip
    holders = sorted(market.holders)
    subaccounts = [ctx.state.ledger.subaccounts[h] for h in holders]
    plan = settlement.funding_plan(
        [s.positions[params.market_id].size_base_quantums for s in subaccounts],
        index_price_quantums=oracle.index_price_quantums, rate_ppb=rate,
        base_quantums_per_unit=params.base_quantums_per_unit,
    )  # fmt: skip
    mutated(ctx)
    transit = funding_account(params.market_id)
    for holder, amount in sorted(plan.payments, key=lambda p: p[1]):  # payers first
        subaccount = subaccounts[holder]
        if amount < 0:
            transfer(ctx, subaccount.subaccount_id, transit, QUOTE_ASSET, -amount, "funding")
        else:
            transfer(ctx, transit, subaccount.subaccount_id, QUOTE_ASSET, amount, "funding")
        subaccount.positions[params.market_id].funding_paid_quote_quantums -= amount
    if plan.residue:
        transfer(ctx, transit, INSURANCE, QUOTE_ASSET, plan.residue, "funding residue")
    assert ctx.state.ledger.balance(transit, QUOTE_ASSET) == 0, "funding transit not empty"
    market.cumulative_funding_ppb += rate
    market.premium_sum_ppb = 0
    market.premium_samples = 0
    interval = params.funding.interval_ns
    market.next_funding_ns = (now // interval + 1) * interval
    ctx.events.append(FundingPaid(
        market_id=params.market_id, rate_ppb=rate,
        index_price_quantums=oracle.index_price_quantums, paid_quote_quantums=plan.paid,
        received_quote_quantums=plan.received, residue_quote_quantums=plan.residue,
    ))  # fmt: skip
