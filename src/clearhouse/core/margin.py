"""All margin math of Clearhouse, and nowhere else (dYdX lib/margin, Lyra PMRMLib).

Standard mode (SPEC §6), per subaccount:

* equity = Σ collateral × haircut weight + Σ unrealized PnL at mark
* IM (initial margin) gates new risk and withdrawals, counting resting orders on their worst side
* MM (maintenance margin) = share × IM of positions alone; equity < MM means liquidatable
* free collateral = equity − IM; withdrawable quote = min(settled quote, equity − IM)

Every function is pure over value snapshots. Rounding: values (PnL, collateral) round down,
requirements round up: always against the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clearhouse.core.ids import QUOTE_ASSET, AssetId, MarketId
from clearhouse.core.ledger import OpenOrders, Position, Subaccount
from clearhouse.core.params import MarginParams
from clearhouse.core.units import PPM_ONE, div_ceil, div_floor, isqrt_ceil, mul_ppm_ceil

QUOTE_QUANTUMS_PER_UNIT = 1_000_000  # the size premium is defined on whole USDC


@dataclass(frozen=True, slots=True)
class MarketRisk:
    """What margin needs to know about one market at one moment."""

    mark_price_quantums: int
    base_quantums_per_unit: int
    im_fraction_ppm: int  # after open-interest scaling and volatility
    maintenance_share_ppm: int
    size_premium_ppm_per_sqrt_quote_unit: int
    usable: bool  # the price is fresh: price-dependent actions may run
    initial_multiplier_ppm: int = PPM_ONE  # cooling-off widens IM only: MM never jumps


@dataclass(frozen=True, slots=True)
class CollateralPrice:
    price_quantums: int  # quote quantums per whole unit of the asset
    quantums_per_unit: int
    haircut_weight_ppm: int
    usable: bool


@dataclass(frozen=True, slots=True)
class Risk:
    equity: int
    initial: int
    maintenance: int
    settled_quote: int  # quote balance: deposits, realized PnL, funding and fees; never unrealized
    usable: bool  # every price this subaccount depends on is fresh
    settled_collateral: int = 0  # quote balance + haircut value of other collateral: no PnL

    @property
    def free_collateral(self) -> int:
        return self.equity - self.initial

    @property
    def satisfies_initial(self) -> bool:
        return self.equity >= self.initial

    @property
    def liquidatable(self) -> bool:
        return self.equity < self.maintenance

    @property
    def withdrawable_quote(self) -> int:
        """Unrealized profit can never be withdrawn (Mango 2022): at most the settled quote."""
        return max(0, min(self.settled_quote, self.equity - self.initial))


def market_im_fraction_ppm(
    params: MarginParams, *, open_interest_quote_quantums: int, vol_multiplier_ppm: int
) -> int:
    """IM fraction of a market before the per-position size premium.

    Open-interest scaling (dYdX): min(base + max(s·(1 − base), 0), 1), s = (OI − lower)/(upper −
    lower); then × the volatility multiplier. Rounded up; at most 1.
    """
    base = params.initial_margin_ppm
    span = params.oi_upper_quote_quantums - params.oi_lower_quote_quantums
    excess = max(open_interest_quote_quantums - params.oi_lower_quote_quantums, 0)
    fraction = min(base + div_ceil(excess * (PPM_ONE - base), span), PPM_ONE)
    fraction = mul_ppm_ceil(fraction, vol_multiplier_ppm)
    assert fraction > 0
    return min(fraction, PPM_ONE)


def position_value(
    size_base_quantums: int, price_quantums: int, base_quantums_per_unit: int
) -> int:
    """Signed value of a position at a price, rounded down (against the account either side)."""
    return div_floor(size_base_quantums * price_quantums, base_quantums_per_unit)


def notional_requirement_base(
    size_base_quantums: int, price_quantums: int, base_quantums_per_unit: int
) -> int:
    """|size| × price, rounded up: the base that requirements are fractions of."""
    return div_ceil(abs(size_base_quantums) * price_quantums, base_quantums_per_unit)


def position_im_fraction_ppm(market: MarketRisk, notional_quote_quantums: int) -> int:
    """The market fraction, raised to k·sqrt(notional) (Drift's size premium), at most 100%."""
    k = market.size_premium_ppm_per_sqrt_quote_unit
    if k == 0:
        return market.im_fraction_ppm
    whole_units = div_ceil(notional_quote_quantums, QUOTE_QUANTUMS_PER_UNIT)
    premium = k * isqrt_ceil(whole_units)
    return min(max(market.im_fraction_ppm, premium), PPM_ONE)


def requirements(size_base_quantums: int, market: MarketRisk) -> tuple[int, int]:
    """(IM, MM) of a position of this size, both rounded up."""
    if size_base_quantums == 0:
        return 0, 0
    notional = notional_requirement_base(
        size_base_quantums, market.mark_price_quantums, market.base_quantums_per_unit
    )
    base_initial = mul_ppm_ceil(notional, position_im_fraction_ppm(market, notional))
    maintenance = mul_ppm_ceil(base_initial, market.maintenance_share_ppm)
    initial = mul_ppm_ceil(base_initial, market.initial_multiplier_ppm)
    assert 0 < maintenance <= initial or notional == 0
    return initial, maintenance


def unrealized_pnl(position: Position, market: MarketRisk) -> int:
    value = position_value(
        position.size_base_quantums, market.mark_price_quantums, market.base_quantums_per_unit
    )
    return value - position.cost_quote_quantums


def _worst_side_surplus(position: Position, orders: OpenOrders, market: MarketRisk) -> int:
    """min over {all bids fill, all asks fill, nothing fills} of (PnL − IM) in this market."""
    scenarios = [(position.size_base_quantums, position.cost_quote_quantums)]
    if orders.bid_base_quantums:
        scenarios.append(
            (
                position.size_base_quantums + orders.bid_base_quantums,
                position.cost_quote_quantums + orders.bid_notional_quote_quantums,
            )
        )
    if orders.ask_base_quantums:
        scenarios.append(
            (
                position.size_base_quantums - orders.ask_base_quantums,
                position.cost_quote_quantums - orders.ask_notional_quote_quantums,
            )
        )
    worst: int | None = None
    for size, cost in scenarios:
        value = position_value(size, market.mark_price_quantums, market.base_quantums_per_unit)
        surplus = value - cost - requirements(size, market)[0]
        worst = surplus if worst is None else min(worst, surplus)
    assert worst is not None
    return worst


def collateral_value(amount_quantums: int, price: CollateralPrice) -> int:
    """amount × price × haircut weight, rounded down. A negative balance counts at full price."""
    value = div_floor(amount_quantums * price.price_quantums, price.quantums_per_unit)
    if value <= 0:
        return value
    return div_floor(value * price.haircut_weight_ppm, PPM_ONE)


def subaccount_risk(
    subaccount: Subaccount,
    markets: Mapping[MarketId, MarketRisk],
    collateral: Mapping[AssetId, CollateralPrice],
) -> Risk:
    """Equity, IM (positions plus resting orders, worst side) and MM (positions) of a subaccount."""
    settled = 0
    initial = 0
    maintenance = 0
    usable = True
    for asset_id, amount in subaccount.balances.items():
        if asset_id == QUOTE_ASSET:
            settled += amount
            continue
        price = collateral[asset_id]
        settled += collateral_value(amount, price)
        usable = usable and price.usable
    equity = settled
    empty = Position(market_id=MarketId(""))
    for market_id in subaccount.positions.keys() | subaccount.open_orders.keys():
        market = markets[market_id]
        position = subaccount.positions.get(market_id, empty)
        pnl = unrealized_pnl(position, market)
        equity += pnl
        orders = subaccount.open_orders.get(market_id)
        if orders is None or orders.is_empty():
            position_initial, position_maintenance = requirements(
                position.size_base_quantums, market
            )
        else:
            position_initial = pnl - _worst_side_surplus(position, orders, market)
            position_maintenance = requirements(position.size_base_quantums, market)[1]
        initial += position_initial
        maintenance += position_maintenance
        usable = usable and market.usable
    return Risk(equity, initial, maintenance, subaccount.balance(QUOTE_ASSET), usable, settled)


def reduces_risk(before: Risk, after: Risk) -> bool:
    """A change that leaves IM unmet is still allowed if it only reduced risk (dYdX's rule):
    maintenance did not grow and equity/MM did not fall (cross-multiplied, no division)."""
    if after.maintenance > before.maintenance:
        return False
    if after.maintenance == 0:
        return after.equity >= min(before.equity, 0)
    return after.equity * before.maintenance >= before.equity * after.maintenance


def is_reducing(size_before: int, size_after: int) -> bool:
    """The position shrank toward zero without flipping side."""
    if size_before == 0:
        return size_after == 0
    same_side_or_flat = size_after == 0 or (size_after > 0) == (size_before > 0)
    return same_side_or_flat and abs(size_after) <= abs(size_before)
