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
    """Once the interval has elapsed (and only on a fresh index: otherwise the payment waits,
    with its premium samples, for the price to come back), step the market's funding index:
    every position now owes (or is owed) its share, which it settles when it next changes and
    which its margin counts meanwhile. The hour costs the same with one holder or a million."""
    now = ctx.state.timestamp_ns
    if now < market.next_funding_ns:
        return
    params = market.params
    rate = settlement.hourly_funding_rate_ppb(
        premium_time_ppb_ns=market.premium_time_ppb_ns, premium_time_ns=market.premium_time_ns,
        funding=params.funding, margin=params.margin,
    )  # fmt: skip
    mutated(ctx)
    paid, received = settlement.funding_on_open_interest(
        market.open_interest_base_quantums, index_price_quantums=oracle.index_price_quantums,
        rate_ppb=rate, base_quantums_per_unit=params.base_quantums_per_unit,
    )  # fmt: skip
    market.funding_index_e9 += settlement.funding_index_step_e9(
        index_price_quantums=oracle.index_price_quantums, rate_ppb=rate
    )
    sweep_residue(ctx, market)
    market.cumulative_funding_ppb += rate
    market.premium_time_ppb_ns = 0
    market.premium_time_ns = 0
    interval = params.funding.interval_ns
    market.next_funding_ns = (now // interval + 1) * interval
    ctx.touched.markets.add(params.market_id)
    ctx.events.append(FundingPaid(
        market_id=params.market_id, rate_ppb=rate,
        index_price_quantums=oracle.index_price_quantums, paid_quote_quantums=paid,
        received_quote_quantums=received, residue_quote_quantums=paid - received,
    ))  # fmt: skip


def sweep_residue(ctx: Context, market: MarketState) -> None:
    """With no position open, nothing is owed: what the funding account holds is rounding
    residue (each settlement rounds against its account), and goes to the insurance fund."""
    if market.holders:
        return
    pool = funding_account(market.params.market_id)
    residue = ctx.state.ledger.balance(pool, QUOTE_ASSET)
    assert residue >= 0, "funding settled with nothing owed leaves a residue >= 0"
    if residue:
        transfer(ctx, pool, INSURANCE, QUOTE_ASSET, residue, "funding residue")
