"""Settlement math: fills into positions, funding, and expiry payouts (SPEC §8).

Pure functions over integers; the engine turns their results into ledger transfers. Rounding:
the part of the cost basis a closing fill releases rounds up (realized PnL rounds down); funding
owed rounds up whichever way it flows; expiry values round down. Every residue these roundings
leave is positive and goes to the insurance fund, so value is conserved exactly.

Funding accrues on a cumulative index per market (quote quantums × 10⁹ per whole unit of a long):
the funding hour only steps the index, and each position settles what it owes since its last
settlement when it next changes, so an hour of funding costs O(markets), not O(positions).
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core.params import FundingParams, MarginParams
from clearhouse.core.units import (
    NS_PER_HOUR,
    PPB_ONE,
    PPM_ONE,
    clamp,
    div_ceil,
    div_floor,
    div_toward_zero,
)


@dataclass(frozen=True, slots=True)
class PositionChange:
    size_base_quantums: int
    cost_quote_quantums: int
    realized_pnl_quote_quantums: int


def apply_fill(
    *,
    size_base_quantums: int,
    cost_quote_quantums: int,
    fill_base_quantums: int,
    fill_notional_quote_quantums: int,
) -> PositionChange:
    """A signed fill (+ buys, − sells) into a position with a cost basis.

    The closing part releases cost in proportion to the size it closes, rounded up, so realized
    PnL rounds down (against the account); the opening part adds its notional to the cost.
    """
    assert fill_base_quantums != 0 and fill_notional_quote_quantums > 0
    fill_sign = 1 if fill_base_quantums > 0 else -1
    closing = 0
    if size_base_quantums != 0 and (size_base_quantums > 0) != (fill_sign > 0):
        closing = min(abs(fill_base_quantums), abs(size_base_quantums))
    # The fill's notional splits exactly between its closing and opening parts: its size and
    # price sit on the market grid, so size × notional / |fill| is an integer.
    closing_notional = fill_notional_quote_quantums * closing // abs(fill_base_quantums)
    released_cost = div_ceil(cost_quote_quantums * closing, abs(size_base_quantums) or 1)
    realized = -fill_sign * closing_notional - released_cost if closing else 0
    opening_notional = fill_notional_quote_quantums - closing_notional
    new_size = size_base_quantums + fill_base_quantums
    new_cost = cost_quote_quantums - (released_cost if closing else 0)
    new_cost += fill_sign * opening_notional
    if new_size == 0:
        assert new_cost == 0, (size_base_quantums, cost_quote_quantums, fill_base_quantums)
    return PositionChange(new_size, new_cost, realized)


def hourly_funding_rate_ppb(
    *,
    premium_time_ppb_ns: int,
    premium_time_ns: int,
    funding: FundingParams,
    margin: MarginParams,
) -> int:
    """Rate paid for one interval, in ppb of notional; positive means longs pay shorts.

    8h rate = premium + clamp(interest − premium, ±clamp); the interval pays its share of it,
    clamped to ±cap·(IMF − MMF) (SPEC §8). Divisions round toward zero: neither side favoured
    in the rate itself; the payments round against each payer and receiver.
    """
    premium = div_toward_zero(premium_time_ppb_ns, premium_time_ns) if premium_time_ns else 0
    interest = funding.interest_ppb_per_8h
    rate_8h = premium + clamp(
        interest - premium, -funding.premium_clamp_ppb, funding.premium_clamp_ppb
    )
    rate = div_toward_zero(rate_8h * funding.interval_ns, 8 * NS_PER_HOUR)
    cap = funding_rate_cap_ppb(funding=funding, margin=margin)
    return clamp(rate, -cap, cap)


def funding_rate_cap_ppb(*, funding: FundingParams, margin: MarginParams) -> int:
    """The largest rate one interval may pay, either way: a share of the gap between the
    initial and maintenance fractions, so that an interval never eats a whole margin."""
    maintenance_ppm = div_ceil(margin.initial_margin_ppm * margin.maintenance_share_ppm, PPM_ONE)
    gap_ppb = (margin.initial_margin_ppm - maintenance_ppm) * (PPB_ONE // PPM_ONE)
    return gap_ppb * funding.cap_share_of_margin_gap_ppm // PPM_ONE


def funding_index_step_e9(*, index_price_quantums: int, rate_ppb: int) -> int:
    """What one whole unit of a long pays for one interval, in quote quantums × 10⁹: the step
    of the market's cumulative funding index (dYdX v4's funding index). Exact: no rounding."""
    return index_price_quantums * rate_ppb


def funding_owed(size_base_quantums: int, index_delta_e9: int, base_quantums_per_unit: int) -> int:
    """What a position owes (> 0) or is owed (< 0) for the index's move since it last settled:
    size × Δindex / (unit × 10⁹). Both round up, against the account: a payer pays the
    quantum, a receiver forgoes it; the venue's funding account keeps the difference."""
    return div_ceil(size_base_quantums * index_delta_e9, base_quantums_per_unit * PPB_ONE)


def funding_on_open_interest(
    open_interest_base_quantums: int, *, index_price_quantums: int, rate_ppb: int,
    base_quantums_per_unit: int,
) -> tuple[int, int]:  # fmt: skip
    """(paid, received) for one interval as if the open interest were one long and one short
    position: what the event reports; each position settles its own share when it changes."""
    exposure = open_interest_base_quantums * index_price_quantums * abs(rate_ppb)
    denominator = base_quantums_per_unit * PPB_ONE
    return div_ceil(exposure, denominator), div_floor(exposure, denominator)


def expiry_value(size_base_quantums: int, price_quantums: int, base_quantums_per_unit: int) -> int:
    """What a position is worth at the settlement price, rounded down (against the holder)."""
    return div_floor(size_base_quantums * price_quantums, base_quantums_per_unit)
