"""All margin math of Clearhouse, and nowhere else (dYdX lib/margin, Lyra PMRMLib).

Standard mode (SPEC §6), per subaccount:

* equity = Σ collateral × haircut weight + Σ unrealized PnL at mark + Σ funding not yet settled
* IM (initial margin) gates new risk and withdrawals, counting resting orders on their worst side
* MM (maintenance margin) = share × IM of positions alone; equity < MM means liquidatable
* free collateral = equity − IM; withdrawable quote = min(settled quote, equity − IM)

Portfolio mode (options with their hedges) revalues a portfolio under a scenario grid, at the
end of this module.

Every function is pure over value snapshots. Rounding: values (PnL, collateral) round down,
requirements round up: always against the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from math import ceil
from typing import NamedTuple

from clearhouse.core import limits
from clearhouse.core.ids import QUOTE_ASSET, AssetId, MarketId
from clearhouse.core.ledger import OpenOrders, Position, Subaccount
from clearhouse.core.params import MarginParams
from clearhouse.core.payoffs import Payoff
from clearhouse.core.scenario_grid import (
    DEFAULT_PORTFOLIO,
    PortfolioParams,
    Profile,
    RowLeg,
    alone,
    combine,
    worst_rows_sum,
)
from clearhouse.core.settlement import funding_owed
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
    underlying: str = ""  # the oracle: portfolio mode nets the markets that share one
    profile: Profile | None = None  # the contract under the portfolio grid (a linear one's
    # only where portfolio mode or Greeks ask: ``engine/risk.profiled``)
    is_option: bool = False  # margined by its profile in standard mode too
    index_price_quantums: int = 0  # the forward of the grid
    confidence_quantums: int = 0  # the oracle's confidence interval
    funding_index_e9: int = 0  # the market's cumulative funding index now
    payoff: Payoff | None = None  # an option's payoff at expiry (standard mode pairs spreads)
    expiry_ns: int = 0  # a dated market's expiry


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


def vol_multiplier_target_ppm(params: MarginParams, sigma_annual_ppm: int) -> int:
    """clamp(σ_EWMA / σ_reference, 1, max): where the volatility multiplier heads (SPEC §6).
    Rounded up."""
    ratio = div_ceil(sigma_annual_ppm * PPM_ONE, params.vol_reference_annual_ppm)
    return min(max(ratio, PPM_ONE), params.vol_multiplier_max_ppm)


def new_risk_multiplier_ppm(*, vol_target_ppm: int, vol_multiplier_ppm: int) -> int:
    """The factor on IM alone that makes new risk pay the target multiplier at once while the
    market's multiplier (which MM follows too) is still rising toward it: target / current,
    rounded up, and 1 when the target is not above the current multiplier. Existing positions
    keep their MM on the bounded ramp; an order that adds risk is checked against the margin
    the volatility already asks for."""
    assert vol_multiplier_ppm >= PPM_ONE, vol_multiplier_ppm
    if vol_target_ppm <= vol_multiplier_ppm:
        return PPM_ONE
    return div_ceil(vol_target_ppm * PPM_ONE, vol_multiplier_ppm)


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


def position_im_fraction_ppm(
    market: MarketRisk, notional_quote_quantums: int, market_fraction_ppm: int | None = None
) -> int:
    """The market fraction (or ``market_fraction_ppm`` in its place), raised to k·sqrt(notional)
    (Drift's size premium), at most 100%."""
    fraction = market.im_fraction_ppm if market_fraction_ppm is None else market_fraction_ppm
    k = market.size_premium_ppm_per_sqrt_quote_unit
    if k == 0:
        return fraction
    whole_units = div_ceil(notional_quote_quantums, QUOTE_QUANTUMS_PER_UNIT)
    premium = k * isqrt_ceil(whole_units)
    return min(max(fraction, premium), PPM_ONE)


def requirements(size_base_quantums: int, market: MarketRisk) -> tuple[int, int]:
    """(IM, MM) of a position of this size, both rounded up. An option position is margined
    alone by the portfolio grid (standard mode nets nothing; portfolio mode nets everything on
    one underlying)."""
    if size_base_quantums == 0:
        return 0, 0
    if market.is_option:
        assert market.profile is not None
        initial, maintenance = alone(
            market.profile, size_base_quantums / market.base_quantums_per_unit,
            forward=float(market.index_price_quantums), confidence=0.0, params=DEFAULT_PORTFOLIO,
            initial_multiplier=market.initial_multiplier_ppm / PPM_ONE,
        )  # fmt: skip
        if size_base_quantums < 0:
            return initial, maintenance
        # A long option can lose its value and no more (its payoff is never negative): it never
        # needs more than its premium at mark, rounded down (equity counts it so).
        value = max(position_value(size_base_quantums, market.mark_price_quantums,
                                   market.base_quantums_per_unit), 0)  # fmt: skip
        return min(initial, value), min(maintenance, value)
    notional = notional_requirement_base(
        size_base_quantums, market.mark_price_quantums, market.base_quantums_per_unit
    )
    base_initial = mul_ppm_ceil(notional, position_im_fraction_ppm(market, notional))
    maintenance = mul_ppm_ceil(base_initial, market.maintenance_share_ppm)
    initial = mul_ppm_ceil(base_initial, market.initial_multiplier_ppm)
    assert 0 < maintenance <= initial or notional == 0
    return initial, maintenance


def linear_maintenance_at(
    size_base_quantums: int, market: MarketRisk, *, mark_price_quantums: int,
    market_fraction_ppm: int,
) -> int:  # fmt: skip
    """MM of a linear position as ``requirements`` gives it, at another mark and market
    fraction (the liquidation watch bounds margin over a range of both)."""
    assert not market.is_option
    notional = notional_requirement_base(
        size_base_quantums, mark_price_quantums, market.base_quantums_per_unit
    )
    fraction = position_im_fraction_ppm(market, notional, market_fraction_ppm)
    return mul_ppm_ceil(mul_ppm_ceil(notional, fraction), market.maintenance_share_ppm)


def pending_funding(position: Position, market: MarketRisk) -> int:
    """Funding accrued since the position last settled: + owed to it, − owed by it; rounded
    against the account. Equity counts it as if paid; the quote that may leave counts only
    what it owes (an unpaid receipt is not yet the account's)."""
    delta = market.funding_index_e9 - position.funding_index_e9
    if delta == 0 or position.size_base_quantums == 0:
        return 0
    return -funding_owed(position.size_base_quantums, delta, market.base_quantums_per_unit)


def unrealized_pnl(position: Position, market: MarketRisk) -> int:
    value = position_value(
        position.size_base_quantums, market.mark_price_quantums, market.base_quantums_per_unit
    )
    return value - position.cost_quote_quantums


def _worst_side_surplus(
    position: Position, orders: OpenOrders, market: MarketRisk
) -> tuple[int, int]:
    """min over {all bids fill, all asks fill, nothing fills} of (PnL − IM) in this market, and
    the MM of the position as it is (the "nothing fills" requirements give both). A fill's PnL
    counts what filling at the orders' prices instead of the mark would cost, never what it
    would gain: a bid below the mark (an ask above it) fills when the price has come to it, so
    its gain at today's mark is not there to pay for anything. Credited, one deep bid "paid"
    the margin of any other bid nearer the mark: 10,000 USDC rested 200 BTC of bids.
    (``_order_choices`` is the same rule in portfolio mode.)"""
    size, cost = position.size_base_quantums, position.cost_quote_quantums
    mark, per_unit = market.mark_price_quantums, market.base_quantums_per_unit
    initial, maintenance = requirements(size, market)
    pnl = position_value(size, mark, per_unit) - cost
    worst = pnl - initial
    if orders.bid_base_quantums:
        bid_size = size + orders.bid_base_quantums
        bid_cost = cost + orders.bid_notional_quote_quantums
        surplus = min(position_value(bid_size, mark, per_unit) - bid_cost, pnl)
        worst = min(worst, surplus - requirements(bid_size, market)[0])
    if orders.ask_base_quantums:
        ask_size = size - orders.ask_base_quantums
        ask_cost = cost - orders.ask_notional_quote_quantums
        surplus = min(position_value(ask_size, mark, per_unit) - ask_cost, pnl)
        worst = min(worst, surplus - requirements(ask_size, market)[0])
    return worst, maintenance


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
    *,
    portfolio: bool = False,
) -> Risk:
    """Equity, IM (positions plus resting orders, worst side) and MM (positions) of a subaccount,
    in standard mode (per position) or portfolio mode (per underlying, by the grid)."""
    if portfolio:
        return _portfolio_subaccount_risk(subaccount, markets, collateral)
    settled, usable = _settled_collateral(subaccount, collateral)
    initial = 0
    maintenance = 0
    equity = settled
    quote = subaccount.balance(QUOTE_ASSET)
    options: list[tuple[MarketId, MarketRisk, int]] = []
    for market_id in subaccount.positions.keys() | subaccount.open_orders.keys():
        market = markets[market_id]
        position = subaccount.positions.get(market_id)
        if position is None:  # resting orders alone
            position = Position(market_id)
        pnl = unrealized_pnl(position, market)
        funding = pending_funding(position, market)
        equity += pnl + funding
        settled += min(funding, 0)
        quote += min(funding, 0)
        orders = subaccount.open_orders.get(market_id)
        usable = usable and market.usable
        if orders is None or orders.is_empty():
            if market.is_option and market.payoff is not None:
                options.append((market_id, market, position.size_base_quantums))
                continue
            position_initial, position_maintenance = requirements(
                position.size_base_quantums, market
            )
        else:
            worst, position_maintenance = _worst_side_surplus(position, orders, market)
            position_initial = pnl - worst
        initial += position_initial
        maintenance += position_maintenance
    options_initial, options_maintenance = _standard_options(options)
    return Risk(
        equity, initial + options_initial, maintenance + options_maintenance, quote, usable,
        settled,
    )  # fmt: skip


def subaccount_equity(
    subaccount: Subaccount,
    markets: Mapping[MarketId, MarketRisk],
    collateral: Mapping[AssetId, CollateralPrice],
) -> int:
    """``subaccount_risk(...).equity`` alone, in either margin mode: settled collateral plus
    each position's unrealized PnL and pending funding (a market with resting orders alone
    adds nothing). A read of equity (a vault's NAV, a backstop's low) is spared the
    requirements; ``markets`` needs only the markets of the positions."""
    equity, _ = _settled_collateral(subaccount, collateral)
    for market_id, position in subaccount.positions.items():
        market = markets[market_id]
        equity += unrealized_pnl(position, market) + pending_funding(position, market)
    return equity


# ── Standard mode: spreads whose long leg covers the short one ─────────────────────────────
#
# Standard mode margins each option alone, which charges a calendar or vertical spread for its
# short leg as if it were naked. Where a long option *dominates* a short one on the same
# underlying (its expiry no earlier, its payoff convex and at least the short's at every
# price), the pair can never be worth less than zero at the short's expiry: the long is then
# worth at least its payoff (Jensen: a convex payoff's value is at least its intrinsic value)
# which is at least what the short pays. So the pair can lose at most its value at mark now,
# which equity already counts: that value is the pair's requirement (IM and MM), when it is
# below what the two legs need alone. A calendar's long outlives its short: once the short has
# settled, in cash, the long stands alone and needs its own margin, which the pair must already
# hold (a deep in-the-money calendar is worth little, but its settlement leaves a whole long
# against a cash debt). A long that is left over needs at most its premium (``requirements``).
# The pairing is greedy in market-id order (deterministic, not optimal).


def _standard_options(options: list[tuple[MarketId, MarketRisk, int]]) -> tuple[int, int]:
    """(IM, MM) of option positions without resting orders, spreads paired."""
    if not options:
        return 0, 0  # a book of linear markets only: most margin checks
    if len(options) > 1:
        options = sorted(options, key=lambda found: found[0])
    left = [size for _, _, size in options]
    shorts = [i for i, size in enumerate(left) if size < 0]
    longs = [i for i, size in enumerate(left) if size > 0]
    initial = maintenance = 0
    examined = 0
    for short_index in shorts if longs else ():
        short = options[short_index][1]
        for long_index in longs:
            long = options[long_index][1]
            examined += 1
            if examined > limits.spread_pairs_examined_max:
                break  # the rest are margined alone: never less than paired
            if left[long_index] <= 0 or not _dominates(long, short):
                continue
            size = min(-left[short_index], left[long_index])
            left[short_index] += size
            left[long_index] -= size
            pair_initial, pair_maintenance = _pair_requirements(long, short, size)
            initial += pair_initial
            maintenance += pair_maintenance
            if left[short_index] == 0:
                break
    for (_, market, _), size in zip(options, left, strict=True):
        position_initial, position_maintenance = requirements(size, market)
        initial += position_initial
        maintenance += position_maintenance
    assert 0 <= maintenance <= initial or not options
    return initial, maintenance


def _pair_requirements(long: MarketRisk, short: MarketRisk, size: int) -> tuple[int, int]:
    """``size`` base quantums of a dominated pair: the smaller of what the legs need alone and
    the pair's value at mark (what it can lose), rounded up; for a calendar (the long expiring
    later), that value plus what the long needs alone, which is all it holds once the short
    has settled: its settlement alone then never takes the account below maintenance."""
    per_unit = long.base_quantums_per_unit
    value = div_ceil(size * (long.mark_price_quantums - short.mark_price_quantums), per_unit)
    long_initial, long_maintenance = requirements(size, long)
    short_initial, short_maintenance = requirements(-size, short)
    bound = max(value, 0)
    outlives = long.expiry_ns > short.expiry_ns
    return (
        min(long_initial + short_initial, bound + (long_initial if outlives else 0)),
        min(long_maintenance + short_maintenance, bound + (long_maintenance if outlives else 0)),
    )


def _dominates(long: MarketRisk, short: MarketRisk) -> bool:
    """The long option is worth at least the short one at the short's expiry, whatever the
    price: same underlying and unit, expiry no earlier, convex payoff at least the short's."""
    if long.payoff is None or short.payoff is None or long.underlying != short.underlying:
        return False
    if long.base_quantums_per_unit != short.base_quantums_per_unit:
        return False
    if long.expiry_ns < short.expiry_ns:
        return False
    return _payoff_dominates(long.payoff, short.payoff)


@lru_cache(maxsize=65_536)
def _payoff_dominates(long: Payoff, short: Payoff) -> bool:
    """``long`` is convex and at least ``short`` at every price. Pure in two frozen values,
    so remembered: a 256-option book asks up to 128 × 128 times per margin check."""
    if any(change < 0 for _, change in long.kinks) or long.final_slope() < short.final_slope():
        return False
    # The difference is piecewise linear with kinks at either payoff's strikes: ≥ 0 at 0, at
    # every strike and with a final slope ≥ 0 means ≥ 0 everywhere.
    points = [0, *(k for k, _ in long.kinks), *(k for k, _ in short.kinks)]
    return all(long.value(p) >= short.value(p) for p in points)


def _settled_collateral(
    subaccount: Subaccount, collateral: Mapping[AssetId, CollateralPrice]
) -> tuple[int, bool]:
    settled = subaccount.quote_quantums
    usable = True
    for asset_id, amount in subaccount.assets.items():
        price = collateral[asset_id]
        settled += collateral_value(amount, price)
        usable = usable and price.usable
    return settled, usable


class Leg(NamedTuple):
    """One market of a portfolio-mode group: its risk inputs, the position, the resting
    orders, and ``_order_choices`` of them (taken once per margin computation); the position
    in whole units, and the fewest and most units over it and every way its orders fill; its
    profile with the position's choice then its fills' (``worst_rows_sum``'s leg); the most
    short options and the least and most delta over its sizes, and an option's orders' worst
    cost at once (each rounded up): what the group and each of its expiries' remainders
    (``_outliving``) would take again from the same leg, taken once."""

    market: MarketRisk
    position: Position
    orders: OpenOrders | None
    fills: list[tuple[float, float]]
    units: float
    least: float
    most: float
    choices: RowLeg
    shorts: float  # max over its sizes of (−size) × the contract's options
    delta_least: float  # min and max over its sizes of size × the contract's delta
    delta_most: float
    cost_now: int  # an option's: its orders' worst cost at once, rounded up (0 for a linear)


def _leg(market: MarketRisk, position: Position, orders: OpenOrders | None) -> Leg:
    fills = _order_choices(market, position, orders)
    units = position.size_base_quantums / market.base_quantums_per_unit
    sizes = [units, *(size for size, _ in fills)]
    contract = market.profile
    assert contract is not None, "every market carries its profile"
    least, most = min(sizes), max(sizes)
    delta_least, delta_most = _range_scaled(least, most, contract.delta)
    cost_now = ceil(max([0.0, *(now for _, now in fills)])) if market.is_option else 0
    return Leg(
        market, position, orders, fills, units, least, most, (contract, ((units, 0.0), *fills)),
        _range_scaled(least, most, -contract.options)[1], delta_least, delta_most, cost_now,
    )  # fmt: skip


def _scaled_range(leg: Leg, scale: float) -> tuple[float, float]:
    """(min, max) of ``size × scale`` over the leg's sizes: its ends, scaled (rounding is
    monotone, so the products keep their order; the sign of a zero aside, which no sum that
    starts at 0.0 can tell)."""
    return _range_scaled(leg.least, leg.most, scale)


def _range_scaled(least: float, most: float, scale: float) -> tuple[float, float]:
    """``_scaled_range`` of a leg whose sizes run from ``least`` to ``most``."""
    low, high = least * scale, most * scale
    return (low, high) if scale >= 0.0 else (high, low)


def _portfolio_subaccount_risk(
    subaccount: Subaccount,
    markets: Mapping[MarketId, MarketRisk],
    collateral: Mapping[AssetId, CollateralPrice],
) -> Risk:
    settled, usable = _settled_collateral(subaccount, collateral)
    equity = settled
    quote = subaccount.balance(QUOTE_ASSET)
    groups: dict[str, list[Leg]] = {}
    for market_id in sorted(subaccount.positions.keys() | subaccount.open_orders.keys()):
        market = markets[market_id]
        position = subaccount.positions.get(market_id) or Position(market_id=market_id)
        funding = pending_funding(position, market)
        equity += unrealized_pnl(position, market) + funding
        settled += min(funding, 0)
        quote += min(funding, 0)
        leg = _leg(market, position, subaccount.open_orders.get(market_id))
        groups.setdefault(market.underlying, []).append(leg)
        usable = usable and market.usable
    initial = maintenance = 0
    for underlying in sorted(groups):
        group_initial, group_maintenance = _group_requirements(groups[underlying])
        outliving = _outliving(groups[underlying])
        while outliving:  # one expiry after another: each remainder must be held already
            after_initial, after_maintenance = _group_requirements(outliving)
            group_initial = max(group_initial, after_initial)
            group_maintenance = max(group_maintenance, after_maintenance)
            outliving = _outliving(outliving)
        initial += group_initial
        maintenance += group_maintenance
    return Risk(equity, initial, maintenance, quote, usable, settled)


def _group_requirements(group: list[Leg]) -> tuple[int, int]:
    """(IM, MM) of one underlying's legs: the grid, the linear floor, the long options' bound."""
    params = DEFAULT_PORTFOLIO
    group_initial, group_maintenance = _portfolio_requirements(group, params)
    linear_initial, linear_maintenance = _linear_floor(group, params)
    group_initial = max(group_initial, linear_initial)
    group_maintenance = max(group_maintenance, linear_maintenance)
    bound, orders_rest = _long_options_bound(group)
    if bound is not None:
        group_maintenance = min(group_maintenance, bound)
        if not orders_rest:  # a fill could change what it can lose
            group_initial = min(group_initial, bound)
    return group_initial, group_maintenance


def _outliving(group: list[Leg]) -> list[Leg]:
    """The legs that outlive the group's first option expiry, when some option expires first
    and a later option stays; else none. The grid nets a near option against a later one (a
    deep in-the-money calendar needs almost nothing), but the near one settles in cash and
    leaves the later one alone against the cash it paid: the group must already hold what
    that remainder needs, or its settlement alone takes the account below maintenance, into
    a portfolio auction with no hedge left. (A perpetual or future left alone by an option's
    expiry is closed on the book; its own requirements are already the linear floor.)"""
    expiries = [leg.market.expiry_ns for leg in group if leg.market.is_option]
    if len(set(expiries)) < 2:
        return []
    first = min(expiries)
    return [leg for leg in group if not (leg.market.is_option and leg.market.expiry_ns == first)]


def _long_options_bound(
    group: list[Leg],
) -> tuple[int | None, bool]:
    """What the positions of a group of long options alone can lose: their value at mark (a
    payoff is never negative), rounded down as equity counts it; None when the group holds
    anything else. And whether it rests orders (IM then bounds their fills instead)."""
    value = 0
    orders_rest = False
    for market, position, orders, *_ in group:
        if position.size_base_quantums and (
            not market.is_option or position.size_base_quantums < 0
        ):
            return None, orders_rest
        orders_rest = orders_rest or (orders is not None and not orders.is_empty())
        value += position_value(
            position.size_base_quantums, market.mark_price_quantums, market.base_quantums_per_unit
        )
    return max(value, 0), orders_rest


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


# ── Portfolio mode over a subaccount ─────────────────────────────────────────────────────────
#
# A subaccount in portfolio mode is margined per underlying by ``combine`` over its positions
# in every market on that underlying (perpetuals, futures, options). Resting orders count on
# their worst side, bounded conservatively: per scenario, each market takes whichever of
# {nothing fills, every bid fills, every ask fills} loses most there (including what filling
# at the order's price instead of the mark costs at once), and the contingencies take their
# worst too. Since a max of sums is at most the sum of maxes, no combination of fills can need
# more than this.


# The linear legs' floor. The grid already revalues perpetuals and futures with the options
# they hedge, so a blanket floor at their standard-mode requirements would charge a
# delta-hedged book as if the hedge were naked (issue 16: 2.3× the grid). Instead each linear
# leg keeps its standard requirement (tier, open interest, size premium, volatility scaling:
# what the grid does not see, such as an illiquid market's 100% IM) in proportion to the part
# of the group's linear delta that the options' delta does not offset, and never less than
# ``linear_hedged_floor_share`` of it: delta is local (the grid prices how the hedge ratio
# drifts over ±15% and the extended moves), and a hedge's own market can still leave the index
# (its mark is not the grid's forward), so a hedged leg still pays a quarter of its standard
# requirement; a market whose IM fraction is beyond the grid's range (15%) gets no credit.
# Linear legs that offset each other (a perpetual against a future) earn no
# credit here: that is basis risk no index scenario moves (Deribit charges it a contingency).
# The floor and the grid are then combined by max, as before: the floor binds only where the
# grid under-reads the linear legs.


def uncovered_share(linear_units: float, option_delta: float) -> float:
    """The share of a net linear position (whole units) that the options' delta leaves
    unhedged: 1 when they point the same way (or either is 0), else 1 − |Δ_options|/|linear|,
    at least 0."""
    if linear_units * option_delta >= 0.0:
        return 1.0
    return max(0.0, 1.0 - abs(option_delta) / abs(linear_units))


def _delta_ranges(
    group: list[Leg],
) -> tuple[tuple[float, float], tuple[float, float], float, float]:
    """(least, most) net linear units and (least, most) options' delta over every way the
    resting orders fill; and both at the positions as they are."""
    linear = [0.0, 0.0]
    options = [0.0, 0.0]
    linear_now = options_now = 0.0
    for leg in group:
        market = leg.market
        assert market.profile is not None
        if market.is_option:  # its delta's range, taken with the leg (``_leg``)
            options[0] += leg.delta_least
            options[1] += leg.delta_most
            options_now += leg.units * market.profile.delta
        else:
            low, high = _scaled_range(leg, 1.0)
            linear[0] += low
            linear[1] += high
            linear_now += leg.units
    return (linear[0], linear[1]), (options[0], options[1]), linear_now, options_now


def _linear_floor(group: list[Leg], params: PortfolioParams) -> tuple[int, int]:
    """The perpetuals' and futures' standard-mode requirements, each × the share of the linear
    delta the options leave unhedged (at least ``linear_hedged_floor_share``): for MM at the
    positions as they are, for IM at the worst way the resting orders fill (the largest share
    over the corners of the linear and option delta ranges: the share is monotone in each)."""
    (linear_least, linear_most), (options_least, options_most), linear, options = _delta_ranges(
        group
    )
    corners = [(a, b) for a in (linear_least, linear_most) for b in (options_least, options_most)]
    initial_share = max(params.linear_hedged_floor_share,
                        *(uncovered_share(a, b) for a, b in corners))  # fmt: skip
    maintenance_share = max(params.linear_hedged_floor_share, uncovered_share(linear, options))
    assert maintenance_share <= initial_share or len(group) == 0
    initial = maintenance = 0
    for leg in group:
        market, position, orders = leg.market, leg.position, leg.orders
        if market.is_option:  # its orders' cost at once still counts on top of the floor
            initial += leg.cost_now
            continue
        # A market margined beyond the grid's own range (an illiquid tier, a saturated
        # open-interest cap) prices moves of its own that no index scenario hedges: no credit.
        beyond = market.im_fraction_ppm > params.base_range * PPM_ONE
        position_maintenance = requirements(position.size_base_quantums, market)[1]
        maintenance += ceil(position_maintenance * (1.0 if beyond else maintenance_share))
        initial += _floor_initial(position, orders, market, 1.0 if beyond else initial_share)
    return initial, maintenance


def _floor_initial(
    position: Position, orders: OpenOrders | None, market: MarketRisk, share: float
) -> int:
    """max over {nothing fills, every bid fills, every ask fills} of the IM left × ``share``
    (rounded up) plus what the fill costs at once against the mark (not scaled: it is equity
    the fill takes away, as ``_worst_side_surplus`` counts it)."""
    size, per_unit, mark = (
        position.size_base_quantums,
        market.base_quantums_per_unit,
        (market.mark_price_quantums),
    )
    worst = ceil(requirements(size, market)[0] * share)
    if orders is None or orders.is_empty():
        return worst
    if orders.bid_base_quantums:
        cost = orders.bid_notional_quote_quantums - position_value(
            orders.bid_base_quantums, mark, per_unit
        )
        after = requirements(size + orders.bid_base_quantums, market)[0]
        worst = max(worst, ceil(after * share) + max(cost, 0))  # a gain is not credited
    if orders.ask_base_quantums:
        cost = -position_value(-orders.ask_base_quantums, mark, per_unit) - (
            orders.ask_notional_quote_quantums
        )
        after = requirements(size - orders.ask_base_quantums, market)[0]
        worst = max(worst, ceil(after * share) + max(cost, 0))
    return worst


def _group_losses(group: list[Leg], scale: float) -> list[float]:
    """Per scenario, Σ over markets (in their order) of the worst fill choice: the scenario
    loss scaled to IM, plus what the fill costs (or gains) at once, counted once. Not to be
    mutated (``worst_rows_sum`` remembers it)."""
    return worst_rows_sum(tuple(leg.choices for leg in group), scale)


def _portfolio_requirements(group: list[Leg], params: PortfolioParams) -> tuple[int, int]:
    """(IM, MM) of one underlying's markets in a portfolio-mode subaccount."""
    head = group[0].market
    forward = float(head.index_price_quantums)
    confidence = float(head.confidence_quantums)
    exposures: list[tuple[Profile, float]] = []
    multiplier = max(leg.market.initial_multiplier_ppm for leg in group) / PPM_ONE
    # Per leg, the worst of its choices for each contingency, summed in leg order as
    # ``ordered_sum`` would (0.0 + a + b + ...): most short options, most and least delta.
    shorts = most = least = 0.0
    for leg in group:
        exposures.append((leg.choices[0], leg.units))
        shorts += leg.shorts  # max of (−size) × options
        most += leg.delta_most
        least += leg.delta_least
    maintenance = combine(exposures, forward=forward, confidence=confidence, params=params)
    scale = params.initial_multiplier * multiplier
    worst = max([0.0, *_group_losses(group, scale)])
    contingencies = params.short_option_contingency * forward * max(shorts, 0.0)
    contingencies += confidence * max(abs(most), abs(least))
    # + scale: as if the maintenance part were rounded up to a quantum before it is scaled, so
    # IM is never below 1.25 × MM after any fill plus that fill's cost (against the account).
    initial = ceil(worst + (contingencies + 1.0) * scale)
    return max(initial, maintenance.initial), maintenance.maintenance


def _order_choices(
    market: MarketRisk, position: Position, orders: OpenOrders | None
) -> list[tuple[float, float]]:
    """(size after, loss at once) if every bid fills, and if every ask fills. The loss at once
    is what filling at the orders' prices instead of the mark costs, never less than nothing
    (a gain is not credited: ``_worst_side_surplus``)."""
    if orders is None or orders.is_empty():
        return []
    per_unit = market.base_quantums_per_unit
    found = []
    size = position.size_base_quantums
    if orders.bid_base_quantums:
        at_mark = position_value(orders.bid_base_quantums, market.mark_price_quantums, per_unit)
        found.append(
            ((size + orders.bid_base_quantums) / per_unit,
             float(max(orders.bid_notional_quote_quantums - at_mark, 0)))
        )  # fmt: skip
    if orders.ask_base_quantums:
        at_mark = position_value(-orders.ask_base_quantums, market.mark_price_quantums, per_unit)
        found.append(
            ((size - orders.ask_base_quantums) / per_unit,
             float(max(-at_mark - orders.ask_notional_quote_quantums, 0)))
        )  # fmt: skip
    return found
