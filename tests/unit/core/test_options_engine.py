"""Option markets in the engine: default series, marks from the surface, trading, standard and
portfolio margin, expiry at the payoff, the portfolio auction, and the surface's checks."""

from __future__ import annotations

import dataclasses
import math

import pytest

from clearhouse.core import surface
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, Side
from clearhouse.core.messages import (
    AuctionStarted,
    Liquidated,
    LiquidationStage,
    MarketSettled,
    ReportSurface,
    Transferred,
)
from clearhouse.core.payoffs import butterfly, call, call_spread, collar, put, put_spread, straddle
from clearhouse.core.state import PORTFOLIO_AUCTION, MarketStatus
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.pricing import black76
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type
from ladder import liquidate, quote
from options import (
    BTC_USD,
    HOUR,
    bid_portfolio,
    carol_writes_calls,
    list_option,
    margin_mode,
    publish_surface,
    with_series,
)

BUY, SELL = Side.BUY, Side.SELL
CENT_BTC = ONE_BTC // 100


def test_default_series_lists_calls_and_puts_around_the_index() -> None:
    venue = Venue()
    listed = with_series(venue)
    assert len(listed) == 4 * 7 * 2  # 2 weeklies + 2 monthlies, 7 strikes, call and put
    # 2026-01-01 is a Thursday: the first weekly is Friday 2 January, 08:00 UTC.
    assert MarketId("BTC-20260102-60000-C") in listed
    assert MarketId("BTC-20260102-54000-P") in listed
    assert MarketId("BTC-20260130-66000-C") in listed  # the last Friday of January
    strikes = {int(m.split("-")[2]) for m in listed}
    assert strikes == {54_000 + 2_000 * i for i in range(7)}
    venue.block()
    assert len(venue.state.markets) == 3 + len(listed)  # nothing listed twice


def test_option_mark_is_black76_at_the_surface_volatility() -> None:
    venue = Venue()
    with_series(venue)
    venue.block()
    oracle = venue.state.oracles[BTC_USD]
    for name in ("BTC-20260109-58000-P", "BTC-20260109-64000-C", "BTC-20260130-60000-C"):
        market = venue.state.markets[MarketId(name)]
        strike = int(name.split("-")[2]) * USDC
        forward = float(oracle.index_price_quantums)
        vol = surface.volatility(
            oracle.surface, timestamp_ns=oracle.surface_timestamp_ns,
            expiry_ns=market.params.expiry_ns, log_moneyness=math.log(strike / forward),
        )  # fmt: skip
        years = surface.years(market.params.expiry_ns - venue.now)
        expected = black76.price(name.endswith("C"), forward, strike, years, vol)
        assert abs(market.mark_price_quantums - float(expected)) <= 1.0, name


def test_a_call_trades_for_its_premium_and_the_short_side_needs_margin() -> None:
    venue = Venue()
    option = list_option(venue, "CALL-62000", call(62_000 * USDC), 7 * 24 * HOUR)
    publish_surface(venue)
    mark = venue.mark(option)
    assert 0 < mark < 10_000 * USDC
    price = mark // USDC * USDC
    before = venue.balance("bob")
    accepted(venue, venue.order("alice", option, SELL, ONE_BTC, price))
    accepted(venue, venue.order("bob", option, BUY, ONE_BTC, price))
    assert venue.position("bob", option) == (ONE_BTC, price)
    fee = -(-price * venue.state.markets[option].params.taker_fee_ppm // 1_000_000)
    # The premium is the position's cost: equity holds the option at its mark from now on.
    assert venue.balance("bob") == before - fee
    assert venue.risk("bob").equity == before - fee + venue.mark(option) - price
    short = venue.risk("alice")
    assert short.maintenance > 0 and short.initial >= short.maintenance
    long = venue.risk("bob")
    assert long.maintenance <= venue.mark(option)  # a long never needs more than its value


def test_portfolio_mode_nets_a_protective_put_against_a_long_perp() -> None:
    venue = Venue()
    option = list_option(venue, "PUT-58000", put(58_000 * USDC), 14 * 24 * HOUR)
    publish_surface(venue)
    quote(venue, "alice", PRICE, size=ONE_BTC)
    price = venue.mark(option) // USDC * USDC + USDC
    accepted(venue, venue.order("alice", option, SELL, ONE_BTC, price))
    accepted(venue, venue.order("carol", option, BUY, ONE_BTC, price))
    accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE + 10 * USDC))
    subaccount = venue.state.ledger.subaccounts[venue.sub("carol")]
    accepted(venue, venue.cancel_all("alice"))
    standard = venue.engine.risk_of(subaccount, portfolio=False)
    portfolio = venue.engine.risk_of(subaccount, portfolio=True)
    assert portfolio.equity == standard.equity
    perp_alone = dataclasses.replace(
        subaccount, positions={BTC_PERP: subaccount.positions[BTC_PERP]}
    )
    perp_only = venue.engine.risk_of(perp_alone, portfolio=True)
    # The put caps the perp's loss: the pair needs less than the perp alone under the grid.
    assert portfolio.maintenance < perp_only.maintenance
    accepted(venue, margin_mode(venue, "carol"))
    assert venue.sub("carol") in venue.state.portfolio_margin
    assert venue.risk("carol") == venue.engine.risk_of(subaccount, portfolio=True)
    rejection = venue.block([margin_mode(venue, "carol")]).rejection(0)
    assert rejection is not None and rejection.reason is RejectReason.MARGIN_MODE_UNCHANGED


def test_greeks_of_a_subaccount_add_up_its_positions() -> None:
    venue = Venue()
    option = list_option(venue, "CALL-60000", call(60_000 * USDC), 30 * 24 * HOUR)
    publish_surface(venue)
    price = venue.mark(option) // USDC * USDC
    accepted(venue, venue.order("alice", option, SELL, 2 * ONE_BTC, price))
    accepted(venue, venue.order("bob", option, BUY, 2 * ONE_BTC, price))
    found = venue.engine.greeks(venue.sub("bob"))[BTC_USD]
    assert 2 * 0.45 < found.delta < 2 * 0.65  # an at-the-money call: about one half each
    assert found.gamma > 0 and found.vega > 0 and found.theta < 0
    # rho = T·(F·delta − V) per unit: a call gains when the rate carries its forward up.
    assert found.rho > 0
    short = venue.engine.greeks(venue.sub("alice"))[BTC_USD]
    assert (short.delta, short.gamma, short.vega, short.theta, short.rho) == pytest.approx(
        (-found.delta, -found.gamma, -found.vega, -found.theta, -found.rho)
    )


def test_vega_is_reported_by_expiry_bucket_beside_its_total() -> None:
    """Issue 16: a calendar book (long vega in one month, short in another) looks flat in the
    total alone; the buckets show both legs, and add up to the total."""
    venue = Venue()
    near = list_option(venue, "CALL-NEAR", call(60_000 * USDC), 20 * 24 * HOUR)
    far = list_option(venue, "CALL-FAR", call(60_000 * USDC), 120 * 24 * HOUR)
    publish_surface(venue)
    for option, bob_side, alice_side in ((near, SELL, BUY), (far, BUY, SELL)):
        price = venue.mark(option) // USDC * USDC
        accepted(venue, venue.order("alice", option, alice_side, ONE_BTC, price))
        accepted(venue, venue.order("bob", option, bob_side, ONE_BTC, price))
    found = venue.engine.greeks(venue.sub("bob"))[BTC_USD]
    buckets = found.as_dict()["vega_by_expiry"]
    assert isinstance(buckets, dict)
    assert buckets["7-30d"] < 0 < buckets["90-180d"]  # short the near month, long the far one
    assert buckets["0-7d"] == buckets["30-90d"] == buckets["180d+"] == 0.0
    assert sum(found.vega_by_expiry) == pytest.approx(found.vega)


@pytest.mark.parametrize(
    ("name", "payoff"),
    [
        ("CALL", call(58_000 * USDC)),
        ("PUT", put(63_000 * USDC)),
        ("CSPREAD", call_spread(58_000 * USDC, 61_000 * USDC)),
        ("PSPREAD", put_spread(59_000 * USDC, 62_000 * USDC)),
        ("STRADDLE", straddle(61_000 * USDC)),
        ("FLY", butterfly(59_000 * USDC, 60_500 * USDC, 62_000 * USDC)),
        ("COLLAR", collar(57_000 * USDC, 63_000 * USDC)),
    ],
)
def test_expiry_pays_every_payoff_exactly_at_the_twap(name: str, payoff: object) -> None:
    venue = Venue(check=False)
    settle_at = 60_250 * USDC
    option = list_option(
        venue, name, payoff, 10 * NS_PER_MINUTE,  # type: ignore[arg-type]
        settlement_window_ns=5 * NS_PER_MINUTE, settlement_min_samples=30,
    )  # fmt: skip
    publish_surface(venue)
    price = max(venue.mark(option) // USDC * USDC, USDC)
    size = 3 * CENT_BTC * 10  # 0.3 units
    accepted(venue, venue.order("alice", option, SELL, size, price))
    accepted(venue, venue.order("bob", option, BUY, size, price))
    before = {t: venue.balance(t) for t in ("alice", "bob")}
    venue.prices[BTC_USD] = settle_at
    events = venue.advance(12 * NS_PER_MINUTE, step_ns=5 * NS_PER_SECOND)
    settled = of_type(events, MarketSettled)
    assert len(settled) == 1 and settled[0].settlement_price_quantums == settle_at
    assert venue.state.markets[option].status is MarketStatus.SETTLED
    payout = size * payoff.value(settle_at) // ONE_BTC  # type: ignore[attr-defined]
    # Each side's position closes at the payoff: the long gains payout − premium paid.
    assert venue.balance("bob") - before["bob"] == payout - size * price // ONE_BTC
    assert venue.balance("alice") - before["alice"] == size * price // ONE_BTC - payout
    assert venue.position("bob", option) == (0, 0)


def test_short_options_below_maintenance_go_to_the_portfolio_auction() -> None:
    venue = Venue()
    option = carol_writes_calls(venue, publish=publish_surface)
    assert venue.position("carol", option, number=1)[0] == -10 * ONE_BTC
    venue.prices[BTC_USD] = 64_000 * USDC
    venue.block()
    venue.block()
    publish_surface(venue)
    risk = venue.risk("carol", number=1)
    assert risk.liquidatable
    events = venue.run(liquidate(venue, "dave", "carol", number=1))
    started = of_type(events, AuctionStarted)
    assert started and started[0].market_id == PORTFOLIO_AUCTION
    bid = bid_portfolio(venue, "dave", "carol", 1, 500_000)
    before = venue.balance("dave")
    events = accepted(venue, bid)[0]
    taken = of_type(events, Liquidated)
    assert taken and all(e.stage is LiquidationStage.AUCTION for e in taken)
    left = venue.position("carol", option, number=1)[0]
    assert -10 * ONE_BTC < left < 0
    assert venue.position("dave", option)[0] == -(10 * ONE_BTC + left)
    # Slices change hands at the mark (their cost basis): the bidder's cash moves only by the
    # reward, the auction's discount on the slice's share of the maintenance margin.
    rewards = [e for e in of_type(events, Transferred) if e.cause == "liquidation reward"]
    assert len(rewards) == 1 and rewards[0].amount_quantums > 0
    assert venue.balance("dave") - before == rewards[0].amount_quantums
    assert venue.risk("carol", number=1).satisfies_initial  # no more than it needed


def test_an_arbitrageable_surface_is_refused_and_changes_nothing() -> None:
    venue = Venue()
    publish_surface(venue)
    oracle = venue.state.oracles[BTC_USD]
    kept = (oracle.surface, oracle.surface_timestamp_ns)
    publisher = venue.publishers[1]
    timestamp = venue.now + venue.block_ns
    bad = tuple(
        dataclasses.replace(s, b_e9=s.b_e9 * 400, a_e9=s.a_e9) for s in oracle.surface
    )  # wings this steep put negative density in the tails: a butterfly arbitrage
    command = ReportSurface(
        signer=publisher.address, nonce=publisher.nonce(timestamp), expiry_ns=timestamp + HOUR,
        oracle_id=BTC_USD, timestamp_ns=timestamp, slices=bad,
    )  # fmt: skip
    rejection = venue.block([command]).rejection(0)
    assert rejection is not None and rejection.reason is RejectReason.SURFACE_ARBITRAGE
    assert (oracle.surface, oracle.surface_timestamp_ns) == kept
    assert surface.problems(bad, timestamp)


def test_options_do_not_trade_on_a_stale_surface() -> None:
    venue = Venue(check=False)
    option = list_option(venue, "CALL-60000", call(60_000 * USDC), 7 * 24 * HOUR)
    publish_surface(venue)
    venue.advance(16 * NS_PER_MINUTE, step_ns=60 * NS_PER_SECOND)
    rejection = venue.block([venue.order("bob", option, BUY, CENT_BTC, USDC)]).rejection(0)
    assert rejection is not None and rejection.reason is RejectReason.SURFACE_STALE
