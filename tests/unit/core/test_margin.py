"""margin: requirements, open-interest scaling, worst-side IM with resting orders, collateral
values and the risk-reduction rules, on values built directly (no engine)."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clearhouse.core.ids import QUOTE_ASSET, Address, AssetId, MarketId, SubaccountId
from clearhouse.core.ledger import OpenOrders, Position, Subaccount
from clearhouse.core.margin import (
    CollateralPrice,
    MarketRisk,
    Risk,
    collateral_value,
    is_reducing,
    linear_maintenance_at,
    market_im_fraction_ppm,
    position_im_fraction_ppm,
    reduces_risk,
    requirements,
    subaccount_risk,
)
from clearhouse.core.params import MarginParams
from clearhouse.core.units import PPM_ONE

FAST = settings(max_examples=80, deadline=None)
BTC = MarketId("BTC-PERP")
ETH = MarketId("ETH-PERP")
WBTC = AssetId("BTC")
OWNER = Address("0x" + "11" * 20)
USDC = 1_000_000
BTC_SATS = 10**8


def _market(
    *,
    mark: int = 60_000 * USDC,
    per_unit: int = BTC_SATS,
    im_fraction_ppm: int = 50_000,
    maintenance_share_ppm: int = 600_000,
    size_premium: int = 0,
    usable: bool = True,
    initial_multiplier_ppm: int = PPM_ONE,
) -> MarketRisk:
    return MarketRisk(
        mark_price_quantums=mark,
        base_quantums_per_unit=per_unit,
        im_fraction_ppm=im_fraction_ppm,
        maintenance_share_ppm=maintenance_share_ppm,
        size_premium_ppm_per_sqrt_quote_unit=size_premium,
        usable=usable,
        initial_multiplier_ppm=initial_multiplier_ppm,
    )


@st.composite
def markets(draw: st.DrawFn, *, premium: bool = True) -> MarketRisk:
    return _market(
        mark=draw(st.integers(min_value=1, max_value=10**12)),
        per_unit=draw(st.sampled_from([1, 10**6, 10**8, 10**9])),
        im_fraction_ppm=draw(st.integers(min_value=1, max_value=PPM_ONE)),
        maintenance_share_ppm=draw(st.integers(min_value=1, max_value=PPM_ONE - 1)),
        size_premium=draw(st.integers(min_value=0, max_value=5_000)) if premium else 0,
        initial_multiplier_ppm=draw(st.integers(min_value=PPM_ONE, max_value=3 * PPM_ONE)),
    )


sizes = st.integers(min_value=-(10**14), max_value=10**14)


def _sub(
    *,
    quote: int = 0,
    positions: dict[MarketId, tuple[int, int]] | None = None,
    orders: dict[MarketId, OpenOrders] | None = None,
    balances: dict[AssetId, int] | None = None,
) -> Subaccount:
    sub = Subaccount(SubaccountId(OWNER, 0))
    if quote:
        sub.set_balance(QUOTE_ASSET, quote)
    for asset_id, amount in (balances or {}).items():
        sub.set_balance(asset_id, amount)
    for market_id, (size, cost) in (positions or {}).items():
        sub.positions[market_id] = Position(market_id, size, cost)
    sub.own_open_orders().update(orders or {})
    return sub


def _risk(sub: Subaccount, market: MarketRisk, market_id: MarketId = BTC) -> Risk:
    return subaccount_risk(sub, {market_id: market}, {})


# ── Requirements ─────────────────────────────────────────────────────────────────────────


@FAST
@given(markets(), sizes, sizes)
def test_requirements_are_monotone_in_absolute_size(market: MarketRisk, a: int, b: int) -> None:
    small, large = sorted((a, b), key=abs)
    initial_small, maintenance_small = requirements(small, market)
    initial_large, maintenance_large = requirements(large, market)
    assert initial_small <= initial_large
    assert maintenance_small <= maintenance_large


@FAST
@given(markets(), sizes)
def test_requirements_are_symmetric_and_maintenance_is_at_most_initial(
    market: MarketRisk, size: int
) -> None:
    initial, maintenance = requirements(size, market)
    assert requirements(-size, market) == (initial, maintenance)
    assert 0 <= maintenance <= initial
    assert (initial == 0) == (size == 0)
    assert (maintenance == 0) == (size == 0)


@FAST
@given(markets(), sizes)
def test_requirements_round_up_against_the_account(market: MarketRisk, size: int) -> None:
    initial, maintenance = requirements(size, market)
    notional = Fraction(abs(size) * market.mark_price_quantums, market.base_quantums_per_unit)
    fraction = Fraction(position_im_fraction_ppm(market, math.ceil(notional)), PPM_ONE)
    base = notional * fraction
    assert maintenance >= base * Fraction(market.maintenance_share_ppm, PPM_ONE)
    assert initial >= base * Fraction(market.initial_multiplier_ppm, PPM_ONE)
    assert initial >= base


def test_requirements_example() -> None:
    # 1 BTC at 60,000: notional 60,000 USDC; IM 5% = 3,000; MM 60% of it = 1,800.
    assert requirements(BTC_SATS, _market()) == (3_000 * USDC, 1_800 * USDC)
    assert requirements(0, _market()) == (0, 0)
    # Cooling-off widens IM only.
    widened = _market(initial_multiplier_ppm=1_500_000)
    assert requirements(-BTC_SATS, widened) == (4_500 * USDC, 1_800 * USDC)


# ── Size premium ─────────────────────────────────────────────────────────────────────────


@FAST
@given(markets(premium=False), st.integers(min_value=1, max_value=5_000), sizes)
def test_size_premium_never_lowers_requirements(
    market: MarketRisk, premium: int, size: int
) -> None:
    with_premium = _market(
        mark=market.mark_price_quantums,
        per_unit=market.base_quantums_per_unit,
        im_fraction_ppm=market.im_fraction_ppm,
        maintenance_share_ppm=market.maintenance_share_ppm,
        size_premium=premium,
        initial_multiplier_ppm=market.initial_multiplier_ppm,
    )
    plain_initial, plain_maintenance = requirements(size, market)
    initial, maintenance = requirements(size, with_premium)
    assert initial >= plain_initial
    assert maintenance >= plain_maintenance


@FAST
@given(
    st.integers(min_value=1, max_value=PPM_ONE),
    st.integers(min_value=1, max_value=5_000),
    st.integers(min_value=0, max_value=10**16),
)
def test_position_fraction_is_the_larger_of_market_and_premium(
    im_fraction: int, premium: int, notional: int
) -> None:
    market = _market(im_fraction_ppm=im_fraction, size_premium=premium)
    whole_units = math.ceil(Fraction(notional, USDC))
    root = 0 if whole_units == 0 else math.isqrt(whole_units - 1) + 1  # ceil(sqrt)
    assert position_im_fraction_ppm(market, notional) == min(
        max(im_fraction, premium * root), PPM_ONE
    )
    no_premium = _market(im_fraction_ppm=im_fraction)
    assert position_im_fraction_ppm(no_premium, notional) == im_fraction


def test_size_premium_raises_the_fraction_of_large_positions() -> None:
    market = _market(size_premium=100)  # 100 ppm per sqrt(USDC)
    small = requirements(BTC_SATS // 100, market)  # 600 USDC: sqrt 25 → 2,500 ppm < 5%
    assert small == requirements(BTC_SATS // 100, _market())
    # 100 BTC = 6,000,000 USDC: sqrt rounds up to 2,450 → 24.5% instead of 5%.
    assert position_im_fraction_ppm(market, 6_000_000 * USDC) == 245_000
    large_initial, _ = requirements(100 * BTC_SATS, market)
    assert large_initial == 1_470_000 * USDC
    assert large_initial > requirements(100 * BTC_SATS, _market())[0]
    # Capped at 100%.
    assert position_im_fraction_ppm(market, 10**20) == PPM_ONE


# ── Open-interest and volatility scaling ─────────────────────────────────────────────────


@st.composite
def margin_params(draw: st.DrawFn) -> MarginParams:
    lower = draw(st.integers(min_value=0, max_value=10**18))
    span = draw(st.integers(min_value=1, max_value=10**18))
    return MarginParams(
        initial_margin_ppm=draw(st.integers(min_value=1, max_value=PPM_ONE)),
        oi_lower_quote_quantums=lower,
        oi_upper_quote_quantums=lower + span,
    )


open_interests = st.integers(min_value=0, max_value=3 * 10**18)
multipliers = st.integers(min_value=PPM_ONE, max_value=10 * PPM_ONE)


def _imf(params: MarginParams, open_interest: int, multiplier: int = PPM_ONE) -> int:
    return market_im_fraction_ppm(
        params, open_interest_quote_quantums=open_interest, vol_multiplier_ppm=multiplier
    )


@FAST
@given(margin_params(), open_interests, open_interests, multipliers)
def test_im_fraction_is_monotone_in_open_interest(
    params: MarginParams, a: int, b: int, multiplier: int
) -> None:
    low, high = sorted((a, b))
    assert 0 < _imf(params, low, multiplier) <= _imf(params, high, multiplier) <= PPM_ONE


@FAST
@given(margin_params(), open_interests, multipliers, multipliers)
def test_im_fraction_is_monotone_in_the_vol_multiplier(
    params: MarginParams, open_interest: int, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    assert _imf(params, open_interest, low) <= _imf(params, open_interest, high)
    assert _imf(params, open_interest, low) >= _imf(params, open_interest)  # multiplier >= 1


@FAST
@given(margin_params(), st.data())
def test_im_fraction_is_base_below_the_lower_cap_and_full_at_the_upper(
    params: MarginParams, data: st.DataObject
) -> None:
    below = data.draw(st.integers(min_value=0, max_value=params.oi_lower_quote_quantums))
    assert _imf(params, below) == params.initial_margin_ppm
    above = data.draw(
        st.integers(
            min_value=params.oi_upper_quote_quantums,
            max_value=params.oi_upper_quote_quantums + 10**18,
        )
    )
    assert _imf(params, above, data.draw(multipliers)) == PPM_ONE


@FAST
@given(margin_params(), open_interests, multipliers)
def test_im_fraction_rounds_up(params: MarginParams, open_interest: int, multiplier: int) -> None:
    base = params.initial_margin_ppm
    span = params.oi_upper_quote_quantums - params.oi_lower_quote_quantums
    excess = max(open_interest - params.oi_lower_quote_quantums, 0)
    scaled = min(base + Fraction(excess * (PPM_ONE - base), span), Fraction(PPM_ONE))
    exact = min(scaled * Fraction(multiplier, PPM_ONE), Fraction(PPM_ONE))
    fraction = _imf(params, open_interest, multiplier)
    assert exact <= fraction < exact + Fraction(multiplier, PPM_ONE) + 1


def test_im_fraction_examples() -> None:
    params = MarginParams(
        initial_margin_ppm=50_000, oi_lower_quote_quantums=1_000, oi_upper_quote_quantums=2_000
    )
    assert _imf(params, 1_500) == 525_000  # halfway: 5% + 50% of 95%
    assert _imf(params, 1_000, 2 * PPM_ONE) == 100_000
    assert _imf(params, 1_500, 2 * PPM_ONE) == PPM_ONE


# ── Resting orders: worst-side IM ────────────────────────────────────────────────────────


@st.composite
def books(draw: st.DrawFn) -> tuple[MarketRisk, int, int, OpenOrders]:
    """(market, position size, cost, resting orders on both sides) with notionals near the
    mark (orders may be priced anywhere the band allows, including through the mark)."""
    market = draw(markets())
    per_unit = market.base_quantums_per_unit
    size = draw(st.integers(min_value=-(10**10), max_value=10**10))
    entry = draw(st.integers(min_value=1, max_value=2 * market.mark_price_quantums))
    cost = size * entry // per_unit
    bid = draw(st.integers(min_value=0, max_value=10**10))
    ask = draw(st.integers(min_value=0, max_value=10**10))
    bid_price = draw(st.integers(min_value=1, max_value=2 * market.mark_price_quantums))
    ask_price = draw(st.integers(min_value=1, max_value=2 * market.mark_price_quantums))
    orders = OpenOrders(
        bid_base_quantums=bid,
        bid_notional_quote_quantums=bid * bid_price // per_unit,
        ask_base_quantums=ask,
        ask_notional_quote_quantums=ask * ask_price // per_unit,
        count=(bid > 0) + (ask > 0),
    )
    return market, size, cost, orders


def _one_sided(orders: OpenOrders, *, bids: bool) -> OpenOrders:
    if bids:
        return OpenOrders(orders.bid_base_quantums, orders.bid_notional_quote_quantums, count=1)
    return OpenOrders(
        ask_base_quantums=orders.ask_base_quantums,
        ask_notional_quote_quantums=orders.ask_notional_quote_quantums,
        count=1,
    )


@settings(max_examples=150, deadline=None)
@given(books())
def test_resting_orders_never_lower_initial_margin(
    book: tuple[MarketRisk, int, int, OpenOrders],
) -> None:
    market, size, cost, orders = book
    bare = _risk(_sub(quote=10**12, positions={BTC: (size, cost)}), market)
    with_orders = _risk(
        _sub(quote=10**12, positions={BTC: (size, cost)}, orders={BTC: orders}), market
    )
    assert with_orders.initial >= bare.initial
    assert with_orders.initial >= requirements(size, market)[0]
    # Orders change neither equity nor maintenance: only what could happen if they filled.
    assert with_orders.equity == bare.equity
    assert with_orders.maintenance == bare.maintenance


@settings(max_examples=150, deadline=None)
@given(books())
def test_both_sides_cost_the_worse_of_the_one_sided_cases(
    book: tuple[MarketRisk, int, int, OpenOrders],
) -> None:
    market, size, cost, orders = book
    position = {BTC: (size, cost)}
    both = _risk(_sub(positions=position, orders={BTC: orders}), market).initial
    bids = _risk(_sub(positions=position, orders={BTC: _one_sided(orders, bids=True)}), market)
    asks = _risk(_sub(positions=position, orders={BTC: _one_sided(orders, bids=False)}), market)
    assert both == max(bids.initial, asks.initial)


@settings(max_examples=150, deadline=None)
@given(books(), st.data())
def test_a_reducing_order_at_or_beyond_the_mark_adds_no_margin(
    book: tuple[MarketRisk, int, int, OpenOrders], data: st.DataObject
) -> None:
    """An ask that only shrinks a long (or a bid that only shrinks a short), priced no better
    for the counterparty than the mark, can never be the worst side: IM is what the other
    side alone needs."""
    market, size, cost, orders = book
    assume(size != 0)
    per_unit, mark = market.base_quantums_per_unit, market.mark_price_quantums
    reducing = data.draw(st.integers(min_value=1, max_value=abs(size)))
    premium = data.draw(st.integers(min_value=0, max_value=10**6))
    if size > 0:  # sell at least at the mark's value
        other = _one_sided(orders, bids=True)
        added = OpenOrders(
            other.bid_base_quantums,
            other.bid_notional_quote_quantums,
            reducing,
            -((-reducing * mark) // per_unit) + premium,
            count=2,
        )
    else:  # buy at most at the mark's value
        other = _one_sided(orders, bids=False)
        added = OpenOrders(
            reducing,
            max(reducing * mark // per_unit - premium, 0),
            other.ask_base_quantums,
            other.ask_notional_quote_quantums,
            count=2,
        )
    position = {BTC: (size, cost)}
    before = _risk(_sub(positions=position, orders={BTC: other}), market).initial
    after = _risk(_sub(positions=position, orders={BTC: added}), market).initial
    assert after == before


@settings(max_examples=150, deadline=None)
@given(
    books(), st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6)
)
def test_orders_at_the_mark_cost_the_requirement_of_the_worst_resulting_position(
    book: tuple[MarketRisk, int, int, OpenOrders], bid_lots: int, ask_lots: int
) -> None:
    """Filling at the mark changes no PnL, so IM is the largest requirement among the position
    as it is, with every bid filled and with every ask filled."""
    market, size, cost, _ = book
    mark, per_unit = market.mark_price_quantums, market.base_quantums_per_unit
    lot = per_unit // math.gcd(mark, per_unit)  # a lot at the mark is a whole quote quantum
    bid, ask = bid_lots * lot, ask_lots * lot
    orders = OpenOrders(bid, bid * mark // per_unit, ask, ask * mark // per_unit, count=2)
    risk = _risk(_sub(positions={BTC: (size, cost)}, orders={BTC: orders}), market)
    scenarios = [size] + ([size + bid] if bid else []) + ([size - ask] if ask else [])
    assert risk.initial == max(requirements(s, market)[0] for s in scenarios)


def test_resting_bid_without_a_position_costs_its_own_requirement() -> None:
    market = _market()
    orders = OpenOrders(BTC_SATS, 60_000 * USDC, count=1)  # 1 BTC bid at the mark
    risk = _risk(_sub(quote=10_000 * USDC, orders={BTC: orders}), market)
    assert risk.initial == 3_000 * USDC
    assert risk.maintenance == 0
    assert risk.equity == 10_000 * USDC
    # A bid above the mark also costs the loss it would lock in.
    above = OpenOrders(BTC_SATS, 61_000 * USDC, count=1)
    assert _risk(_sub(orders={BTC: above}), market).initial == 4_000 * USDC
    # Asks likewise: one below the mark costs the loss too.
    ask = OpenOrders(ask_base_quantums=BTC_SATS, ask_notional_quote_quantums=59_000 * USDC)
    assert _risk(_sub(orders={BTC: ask}), market).initial == 4_000 * USDC


def test_a_bid_below_the_mark_pays_for_no_other_order() -> None:
    """A bid fills when the price has come to it, so its gain at today's mark is not there to
    pay for anything. Credited, 100 BTC bid at 50,000 under a 60,000 mark "paid" for another
    100 BTC bid at 59,000: 10,000 USDC rested both, IM 0."""
    market = _market()
    near = OpenOrders(100 * BTC_SATS, 100 * 59_000 * USDC, count=1)
    deep = OpenOrders(100 * BTC_SATS, 100 * 50_000 * USDC, count=1)
    both = OpenOrders(200 * BTC_SATS, 100 * (59_000 + 50_000) * USDC, count=2)
    for orders, size in ((near, 100), (deep, 100), (both, 200)):
        risk = _risk(_sub(quote=10_000 * USDC, orders={BTC: orders}), market)
        assert risk.initial == requirements(size * BTC_SATS, market)[0]
        assert not risk.satisfies_initial
    # Asks above the mark likewise.
    high = OpenOrders(
        ask_base_quantums=100 * BTC_SATS, ask_notional_quote_quantums=100 * 70_000 * USDC
    )
    assert (
        _risk(_sub(orders={BTC: high}), market).initial == requirements(-100 * BTC_SATS, market)[0]
    )
    # Held with a position, the gain is still not counted: IM of the long it would grow to.
    held = _risk(
        _sub(positions={BTC: (100 * BTC_SATS, 100 * 59_000 * USDC)}, orders={BTC: deep}), market
    )
    assert held.initial == requirements(200 * BTC_SATS, market)[0]


def test_order_aggregates_with_no_size_are_ignored() -> None:
    market = _market()
    empty = OpenOrders(count=1, reduce_only_count=1)
    with_empty = _risk(
        _sub(positions={BTC: (BTC_SATS, 60_000 * USDC)}, orders={BTC: empty}), market
    )
    bare = _risk(_sub(positions={BTC: (BTC_SATS, 60_000 * USDC)}), market)
    assert with_empty == bare


@FAST
@given(books(), books())
def test_risk_adds_up_across_markets(
    first: tuple[MarketRisk, int, int, OpenOrders], second: tuple[MarketRisk, int, int, OpenOrders]
) -> None:
    market_a, size_a, cost_a, orders_a = first
    market_b, size_b, cost_b, orders_b = second
    both = subaccount_risk(
        _sub(
            quote=123,
            positions={BTC: (size_a, cost_a), ETH: (size_b, cost_b)},
            orders={BTC: orders_a, ETH: orders_b},
        ),
        {BTC: market_a, ETH: market_b},
        {},
    )
    alone_a = _risk(_sub(positions={BTC: (size_a, cost_a)}, orders={BTC: orders_a}), market_a)
    alone_b = _risk(_sub(positions={ETH: (size_b, cost_b)}, orders={ETH: orders_b}), market_b, ETH)
    assert both.initial == alone_a.initial + alone_b.initial
    assert both.maintenance == alone_a.maintenance + alone_b.maintenance
    assert both.equity == 123 + alone_a.equity + alone_b.equity


def test_subaccount_risk_example() -> None:
    # 1 BTC long bought at 50,000, marked at 60,000, with 5,000 USDC and 1 BTC of collateral
    # at 90% weight.
    sub = _sub(
        quote=5_000 * USDC,
        positions={BTC: (BTC_SATS, 50_000 * USDC)},
        balances={WBTC: BTC_SATS},
    )
    collateral = {WBTC: CollateralPrice(60_000 * USDC, BTC_SATS, 900_000, usable=True)}
    risk = subaccount_risk(sub, {BTC: _market()}, collateral)
    assert risk == Risk(
        equity=(5_000 + 54_000 + 10_000) * USDC,
        initial=3_000 * USDC,
        maintenance=1_800 * USDC,
        settled_quote=5_000 * USDC,
        usable=True,
        settled_collateral=(5_000 + 54_000) * USDC,
    )
    # Unrealized profit and other collateral are never withdrawable as quote.
    assert risk.withdrawable_quote == 5_000 * USDC
    assert risk.free_collateral == 66_000 * USDC
    assert risk.satisfies_initial
    assert not risk.liquidatable


def test_usable_needs_every_price_fresh() -> None:
    sub = _sub(positions={BTC: (BTC_SATS, 0)}, balances={WBTC: 1})
    fresh = CollateralPrice(1, 1, PPM_ONE, usable=True)
    stale = CollateralPrice(1, 1, PPM_ONE, usable=False)
    assert subaccount_risk(sub, {BTC: _market()}, {WBTC: fresh}).usable
    assert not subaccount_risk(sub, {BTC: _market()}, {WBTC: stale}).usable
    assert not subaccount_risk(sub, {BTC: _market(usable=False)}, {WBTC: fresh}).usable


# ── Withdrawable quote and collateral ────────────────────────────────────────────────────

big = st.integers(min_value=-(10**18), max_value=10**18)


@FAST
@given(big, st.integers(min_value=0, max_value=10**18), big)
def test_withdrawable_quote_is_bounded_by_settled_quote_and_free_collateral(
    equity: int, initial: int, settled: int
) -> None:
    risk = Risk(equity, initial, initial // 2, settled, usable=True)
    withdrawable = risk.withdrawable_quote
    assert withdrawable >= 0
    assert withdrawable <= max(settled, 0)
    assert withdrawable <= max(equity - initial, 0)
    if settled >= 0 and equity - initial >= 0:
        assert withdrawable == min(settled, equity - initial)


@FAST
@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=-(10**10), max_value=10**10),
    st.integers(min_value=1, max_value=2 * 60_000 * USDC),
)
def test_unrealized_profit_is_never_withdrawable(quote: int, size: int, entry: int) -> None:
    market = _market()
    sub = _sub(quote=quote, positions={BTC: (size, size * entry // BTC_SATS)} if size else {})
    risk = _risk(sub, market)
    assert risk.settled_quote == quote
    assert risk.withdrawable_quote <= quote
    assert risk.withdrawable_quote <= max(risk.equity - risk.initial, 0)


amounts = st.integers(min_value=-(10**24), max_value=10**24)
collateral_prices = st.builds(
    CollateralPrice,
    price_quantums=st.integers(min_value=1, max_value=10**12),
    quantums_per_unit=st.sampled_from([1, 10**6, 10**8, 10**18]),
    haircut_weight_ppm=st.integers(min_value=0, max_value=PPM_ONE),
    usable=st.booleans(),
)


@FAST
@given(amounts, collateral_prices)
def test_collateral_value_rounds_down_and_respects_the_haircut(
    amount: int, price: CollateralPrice
) -> None:
    value = collateral_value(amount, price)
    full = Fraction(amount * price.price_quantums, price.quantums_per_unit)
    weight = Fraction(price.haircut_weight_ppm, PPM_ONE)
    if full <= 0 or math.floor(full) <= 0:
        # A debt (or dust) counts at full price, rounded down: never flattered by the haircut.
        assert value == math.floor(full)
        return
    assert value <= full * weight
    assert value == math.floor(math.floor(full) * weight)
    assert value <= math.floor(full)
    if price.haircut_weight_ppm == PPM_ONE:
        assert value == math.floor(full)


@FAST
@given(amounts, collateral_prices, st.integers(min_value=0, max_value=PPM_ONE))
def test_collateral_value_is_monotone_in_the_weight(
    amount: int, price: CollateralPrice, other_weight: int
) -> None:
    low, high = sorted((price.haircut_weight_ppm, other_weight))
    at_low = CollateralPrice(price.price_quantums, price.quantums_per_unit, low, price.usable)
    at_high = CollateralPrice(price.price_quantums, price.quantums_per_unit, high, price.usable)
    assert collateral_value(amount, at_low) <= collateral_value(amount, at_high)


def test_collateral_value_examples() -> None:
    btc = CollateralPrice(60_000 * USDC, BTC_SATS, 900_000, usable=True)
    assert collateral_value(BTC_SATS, btc) == 54_000 * USDC
    assert collateral_value(-BTC_SATS, btc) == -60_000 * USDC  # a debt at full price
    assert collateral_value(-1, btc) == -600
    third = CollateralPrice(60_000 * USDC, BTC_SATS, 333_333, usable=True)
    assert collateral_value(1, third) == 199  # 600 quantums × 33.3333%, rounded down
    zero_weight = CollateralPrice(60_000 * USDC, BTC_SATS, 0, usable=True)
    assert collateral_value(BTC_SATS, zero_weight) == 0


# ── Risk reduction rules ─────────────────────────────────────────────────────────────────


def _r(equity: int, maintenance: int) -> Risk:
    return Risk(equity, maintenance * 2, maintenance, 0, usable=True)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (_r(100, 50), _r(1_000, 51), False),  # maintenance grew: never reducing
        (_r(100, 50), _r(60, 30), True),  # same equity/MM ratio
        (_r(100, 50), _r(59, 30), False),  # ratio fell
        (_r(100, 50), _r(100, 50), True),  # no change
        (_r(-10, 50), _r(-5, 25), True),  # negative equity, same ratio
        (_r(-10, 50), _r(-6, 25), False),  # negative equity, ratio fell
        (_r(-10, 50), _r(0, 0), True),  # closed out: equity at least min(before, 0)
        (_r(-10, 50), _r(-10, 0), True),
        (_r(-10, 50), _r(-11, 0), False),  # closed out, but lost more
        (_r(10, 50), _r(0, 0), True),  # min(10, 0) = 0
        (_r(10, 50), _r(-1, 0), False),
        (_r(0, 0), _r(0, 1), False),  # from nothing to something
        (_r(0, 0), _r(-1, 0), False),
    ],
)
def test_reduces_risk_truth_table(before: Risk, after: Risk, expected: bool) -> None:
    assert reduces_risk(before, after) is expected


@FAST
@given(
    big, st.integers(min_value=0, max_value=10**12), big, st.integers(min_value=0, max_value=10**12)
)
def test_reduces_risk_compares_equity_to_maintenance_ratios(
    before_equity: int, before_mm: int, after_equity: int, after_mm: int
) -> None:
    before, after = _r(before_equity, before_mm), _r(after_equity, after_mm)
    assert reduces_risk(before, before)
    result = reduces_risk(before, after)
    if after_mm > before_mm:
        assert not result
    elif after_mm == 0:
        assert result == (after_equity >= min(before_equity, 0))
    else:
        assert result == (Fraction(after_equity, after_mm) >= Fraction(before_equity, before_mm))


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (0, 0, True),
        (0, 1, False),
        (0, -1, False),
        (10, 10, True),
        (10, 5, True),
        (10, 0, True),
        (10, 11, False),
        (10, -1, False),
        (-10, -10, True),
        (-10, -5, True),
        (-10, 0, True),
        (-10, -11, False),
        (-10, 5, False),
    ],
)
def test_is_reducing_truth_table(before: int, after: int, expected: bool) -> None:
    assert is_reducing(before, after) is expected


@FAST
@given(sizes, sizes)
def test_is_reducing_means_a_fraction_of_the_position_in_zero_to_one(
    before: int, after: int
) -> None:
    expected = after == 0 if before == 0 else 0 <= Fraction(after, before) <= 1
    assert is_reducing(before, after) is expected


@FAST
@given(
    markets(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=1, max_value=PPM_ONE),
)
def test_linear_maintenance_at_is_requirements_at_that_mark_and_fraction(
    market: MarketRisk, size: int, mark: int, fraction: int
) -> None:
    """The watch's bound uses the same MM as everything else, read at another mark."""
    moved = dataclasses.replace(market, mark_price_quantums=mark, im_fraction_ppm=fraction)
    at = linear_maintenance_at(size, market, mark_price_quantums=mark, market_fraction_ppm=fraction)
    assert at == requirements(size, moved)[1]
