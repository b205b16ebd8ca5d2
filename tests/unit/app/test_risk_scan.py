"""risk_scan: the float screen never misses a subaccount that margin.py finds liquidatable, and on
a realistic population it returns almost nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.app.risk_scan import RiskColumns, columns_from, confirm, screen
from clearhouse.core.ids import QUOTE_ASSET, Address, AssetId, MarketId, SubaccountId
from clearhouse.core.ledger import OpenOrders, Position, Subaccount
from clearhouse.core.margin import CollateralPrice, MarketRisk, subaccount_risk
from clearhouse.core.units import PPM_ONE

USDC = 1_000_000
OWNER = Address("0x" + "22" * 20)
MARKET_IDS = tuple(MarketId(f"M{i}") for i in range(4))
ASSET_IDS = tuple(AssetId(f"A{i}") for i in range(2))


@st.composite
def market_risks(draw: st.DrawFn) -> MarketRisk:
    return MarketRisk(
        mark_price_quantums=draw(st.integers(min_value=1, max_value=10**18)),
        base_quantums_per_unit=draw(st.sampled_from([1, 10**6, 10**8, 10**9, 10**18])),
        im_fraction_ppm=draw(st.integers(min_value=1, max_value=PPM_ONE)),
        maintenance_share_ppm=draw(st.integers(min_value=1, max_value=PPM_ONE - 1)),
        size_premium_ppm_per_sqrt_quote_unit=draw(
            st.one_of(st.just(0), st.integers(min_value=1, max_value=5_000))
        ),
        usable=True,
        initial_multiplier_ppm=draw(st.integers(min_value=PPM_ONE, max_value=3 * PPM_ONE)),
        funding_index_e9=draw(funding_indexes),
    )


# Cumulative funding indexes: none, small, or years of funding at extreme rates.
funding_indexes = st.one_of(
    st.just(0),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.integers(min_value=-(10**24), max_value=10**24),
)


@st.composite
def collateral_prices(draw: st.DrawFn) -> CollateralPrice:
    return CollateralPrice(
        price_quantums=draw(st.integers(min_value=1, max_value=10**15)),
        quantums_per_unit=draw(st.sampled_from([1, 10**6, 10**8, 10**18])),
        haircut_weight_ppm=draw(st.integers(min_value=0, max_value=PPM_ONE)),
        usable=True,
    )


magnitudes = st.one_of(
    st.integers(min_value=-1_000, max_value=1_000),
    st.integers(min_value=-(10**14), max_value=10**14),
    st.integers(min_value=-(10**20), max_value=10**20),
)
# How far equity lands from MM: exactly on it (±1, 0) most often, where float error would bite.
offsets = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=-(10**18), max_value=10**18),
)


@st.composite
def subaccounts(draw: st.DrawFn, number: int, market_count: int, asset_count: int) -> Subaccount:
    """A subaccount whose quote balance puts its equity at MM + a drawn offset."""
    sub = Subaccount(SubaccountId(OWNER, number))
    for asset_id in ASSET_IDS[:asset_count]:
        if draw(st.booleans()):
            sub.set_balance(asset_id, draw(magnitudes) or 1)
    for market_id in MARKET_IDS[:market_count]:
        if draw(st.booleans()):
            sub.positions[market_id] = Position(
                market_id, draw(magnitudes), draw(magnitudes),
                funding_index_e9=draw(funding_indexes),
            )  # fmt: skip
    return sub


def _place_equity(
    sub: Subaccount,
    offset: int,
    markets: dict[MarketId, MarketRisk],
    collateral: dict[AssetId, CollateralPrice],
) -> None:
    risk = subaccount_risk(sub, markets, collateral)
    quote = risk.maintenance - risk.equity + offset
    if quote:
        sub.set_balance(QUOTE_ASSET, quote)


def _scan_inputs(
    markets: dict[MarketId, MarketRisk], collateral: dict[AssetId, CollateralPrice]
) -> tuple[list[MarketRisk], list[CollateralPrice]]:
    return list(markets.values()), list(collateral.values())


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_screen_never_misses_a_liquidatable_subaccount(data: st.DataObject) -> None:
    market_list = data.draw(st.lists(market_risks(), min_size=1, max_size=len(MARKET_IDS)))
    asset_list = data.draw(st.lists(collateral_prices(), max_size=len(ASSET_IDS)))
    markets = dict(zip(MARKET_IDS, market_list, strict=False))
    collateral = dict(zip(ASSET_IDS, asset_list, strict=False))
    population = []
    for number in range(data.draw(st.integers(min_value=1, max_value=12))):
        sub = data.draw(subaccounts(number, len(markets), len(collateral)))
        _place_equity(sub, data.draw(offsets), markets, collateral)
        population.append(sub)
    columns = columns_from(population, list(markets), list(collateral))
    candidates = set(screen(columns, *_scan_inputs(markets, collateral)).tolist())
    for row, sub in enumerate(population):
        if subaccount_risk(sub, markets, collateral).liquidatable:
            assert row in candidates, (row, sub)


def _realistic_population(
    count: int, seed: int
) -> tuple[list[Subaccount], dict[MarketId, MarketRisk], dict[AssetId, CollateralPrice]]:
    """Longs and shorts in two markets at leverage 1–15x, some with haircut collateral."""
    rng = np.random.default_rng(seed)
    btc, eth = MarketId("BTC-PERP"), MarketId("ETH-PERP")
    marks = {btc: 60_000 * USDC, eth: 3_000 * USDC}
    per_unit = {btc: 10**8, eth: 10**9}
    population = []
    for number in range(count):
        sub = Subaccount(SubaccountId(OWNER, number))
        market_id = btc if rng.random() < 0.6 else eth
        notional = int(10 ** rng.uniform(2, 6)) * USDC
        side = 1 if rng.random() < 0.7 else -1
        size = side * notional * per_unit[market_id] // marks[market_id]
        entry = marks[market_id] * (1 + rng.normal(0, 0.01))
        sub.positions[market_id] = Position(
            market_id, size, int(size * entry) // per_unit[market_id]
        )
        sub.set_balance(QUOTE_ASSET, int(notional / rng.uniform(1, 15)))
        if rng.random() < 0.2:
            sub.set_balance(AssetId("ETH"), int(rng.uniform(0, 5) * 10**9))
        population.append(sub)
    # One move: everything 10% lower.
    markets = {
        m: MarketRisk(marks[m] * 9 // 10, per_unit[m], 50_000, 600_000, 20, usable=True)
        for m in (btc, eth)
    }
    collateral = {AssetId("ETH"): CollateralPrice(2_700 * USDC, 10**9, 850_000, usable=True)}
    return population, markets, collateral


def test_screen_is_selective_and_confirm_gives_the_exact_scan() -> None:
    population, markets, collateral = _realistic_population(4_000, seed=7)
    columns = columns_from(population, list(markets), list(collateral))
    candidates = screen(columns, *_scan_inputs(markets, collateral))
    exact = [
        r for r, s in enumerate(population) if subaccount_risk(s, markets, collateral).liquidatable
    ]
    assert 0.01 * len(population) < len(exact) < 0.5 * len(population)  # the move bites
    assert set(exact) <= set(candidates.tolist())
    assert len(candidates) - len(exact) <= 2  # healthy subaccounts are (almost) never returned
    assert confirm(candidates, population, markets, collateral) == exact


def _long_one_btc(number: int, quote: int) -> Subaccount:
    sub = Subaccount(SubaccountId(OWNER, number), balances={QUOTE_ASSET: quote})
    sub.positions[MARKET_IDS[0]] = Position(MARKET_IDS[0], 10**8, 60_000 * USDC)
    return sub


def test_edges_empty_negative_quote_resting_orders_and_the_margin() -> None:
    market = MarketRisk(60_000 * USDC, 10**8, 50_000, 600_000, 0, usable=True)
    markets = {MARKET_IDS[0]: market}
    # 1 BTC long at cost: MM is 1,800 USDC, so 1,800 USDC of quote is exactly enough.
    at_mm = _long_one_btc(2, 1_800 * USDC)
    at_mm.own_open_orders()[MARKET_IDS[0]] = OpenOrders(bid_base_quantums=10**9, count=1)  # IM only
    population = [
        Subaccount(SubaccountId(OWNER, 0)),  # empty
        Subaccount(SubaccountId(OWNER, 1), balances={QUOTE_ASSET: -1}),  # in debt, no position
        at_mm,  # not liquidatable, but inside the screen's margin: a false candidate
        _long_one_btc(3, 1_800 * USDC - 1),  # short of MM by one quantum
        _long_one_btc(4, 1_801 * USDC),  # a dollar above MM: outside the margin
    ]
    columns = columns_from(population, list(markets), [])
    assert screen(columns, [market], []).tolist() == [1, 2, 3]
    liquidatable = [subaccount_risk(s, markets, {}).liquidatable for s in population]
    assert liquidatable == [False, True, False, True, False]
    assert confirm(screen(columns, [market], []), population, markets, {}) == [1, 3]


def test_columns_are_read_only_snapshots() -> None:
    sub = Subaccount(SubaccountId(OWNER, 0), balances={QUOTE_ASSET: 5})
    columns: RiskColumns = columns_from([sub], [], [])
    assert columns.subaccount_count == 1
    with pytest.raises(ValueError, match="read-only"):
        columns.quote_balance_quote_quantums[0] = 0.0


def test_funding_a_position_owes_makes_it_a_candidate() -> None:
    """A long healthy on price alone, liquidatable by the funding it has not settled yet."""
    btc = MarketId("BTC-PERP")
    mark = 60_000 * USDC
    cost = mark  # 1 BTC bought at the mark: no PnL
    sub = Subaccount(SubaccountId(OWNER, 0))
    sub.positions[btc] = Position(btc, 10**8, cost, funding_index_e9=0)
    sub.set_balance(QUOTE_ASSET, 1_900 * USDC)  # MM is 1,800
    owes_300 = MarketRisk(
        mark, 10**8, 50_000, 600_000, 0, True, funding_index_e9=300 * USDC * 10**9
    )
    assert subaccount_risk(sub, {btc: owes_300}, {}).liquidatable
    columns = columns_from([sub], [btc], [])
    assert screen(columns, [owes_300], []).tolist() == [0]
