"""Regression tests for the defects a review of the options engine reproduced at 645fae4 (one
per finding, named f1 ... f11 after the review's scripts); each failed before its fix."""

from __future__ import annotations

import copy
import dataclasses
import math

from clearhouse.core import surface
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, MarketId, Side
from clearhouse.core.ledger import INSURANCE
from clearhouse.core.liquidation import auction_discount_ppm
from clearhouse.core.messages import (
    AuctionStarted,
    InsuranceDrawn,
    Liquidated,
    ListOptionSeries,
    LossSocialized,
    PriceReport,
    ReportPrices,
)
from clearhouse.core.params import LiquidationParams, MarginParams
from clearhouse.core.payoffs import call
from clearhouse.core.surface import SviSlice
from clearhouse.sim.venue import (
    USDC,
    btc_future,
    btc_option_series,
    btc_perp,
    report_surface,
)
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type
from ladder import fund_insurance, liquidate, quote
from options import (
    BTC_USD,
    DAY,
    HOUR,
    PPM,
    bid_portfolio,
    carol_writes_calls,
    list_option,
    margin_mode,
    operator_listing,
    option_params,
    publish_smile,
    refused,
    rewards,
)

BUY = Side.BUY
YEAR = 365 * DAY
HORIZON = 3 * YEAR  # limits.expiry_horizon_ns (spelled out: the constant is part of the fix)


# ── Commands ────────────────────────────────────────────────────────────────────────────────


def rogue_btc_report(venue: Venue, price: int, confidence: int) -> ReportPrices:
    """Publisher 0 alone reports BTC at ``price`` ± ``confidence`` as of the next block."""
    publisher = venue.publishers[0]
    timestamp = venue.now + venue.block_ns
    report = PriceReport(
        oracle_id=BTC_USD, price_quantums=price, confidence_quantums=confidence,
        timestamp_ns=timestamp,
    )  # fmt: skip
    return ReportPrices(
        signer=publisher.address, nonce=publisher.nonce(timestamp), expiry_ns=timestamp + HOUR,
        reports=(report,),
    )  # fmt: skip


def lone_slice(expiry_ns: int) -> SviSlice:
    """One well-shaped SVI slice (the review's): valid in every respect but its expiry."""
    return SviSlice(
        expiry_ns=expiry_ns, a_e9=40_000_000, b_e9=40_000_000, rho_e9=-250_000_000, m_e9=0,
        s_e9=200_000_000,
    )  # fmt: skip


# ── Scenarios ───────────────────────────────────────────────────────────────────────────────


def open_portfolio_auction(venue: Venue, index: int) -> None:
    """The index climbs to ``index`` in moves under the 10% circuit breaker (no cooling-off
    that would make bidders' sides reduce-only); dave's Liquidate opens carol/1's auction."""
    for price in (65_500 * USDC, 70_000 * USDC, index):
        venue.settle_prices(BTC_USD=price)
    publish_smile(venue)
    assert venue.risk("carol", number=1).liquidatable
    [events] = accepted(venue, liquidate(venue, "dave", "carol", number=1))
    assert of_type(events, AuctionStarted)


# ── f1: the reward is bounded by the account's equity ──────────────────────────────────────


def test_f1_a_solvent_accounts_portfolio_bid_never_pays_its_reward_out_of_the_fund() -> None:
    """The reward was MM × fraction × discount, unbounded by equity: a 100% bid on a solvent
    account whose equity is below 5% of its MM (the auction's opening discount) made it
    bankrupt, and the fund paid the bidder the difference. A solvent account pays the reward
    itself, at most its equity (only an insolvent one's bidder is paid by the fund)."""
    venue = Venue()
    carol_writes_calls(venue)
    fund_insurance(venue, 500_000 * USDC)
    open_portfolio_auction(venue, 72_500 * USDC)
    risk = venue.risk("carol", number=1)
    assert 0 < risk.equity < risk.maintenance // 20  # solvent, but below 5% of MM
    fund = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    dave = venue.balance("dave")
    [events] = accepted(venue, bid_portfolio(venue, "dave", "carol", 1, PPM))
    assert of_type(events, Liquidated)
    assert not of_type(events, InsuranceDrawn), "the insurance fund paid the bidder"
    assert not of_type(events, LossSocialized)
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == fund
    assert 0 < rewards(events) <= risk.equity + USDC  # + a second's decay of the short calls
    assert venue.balance("dave") - dave == rewards(events)
    assert venue.risk("carol", number=1).equity >= 0


# ── f8: the reward is on the margin the slices actually remove ─────────────────────────────


def test_f8_a_bid_that_takes_no_option_is_paid_only_for_the_margin_it_removes() -> None:
    """A 0.0999% bid floors the calls' slice (0.00999 BTC) to nothing and takes 0.0009 BTC of
    the perp hedge; it was paid 0.0999% of the whole portfolio's MM at the discount (the calls'
    share included), bid after bid, while the short calls stayed."""
    venue = Venue()
    option = carol_writes_calls(venue, hedged=True)
    open_portfolio_auction(venue, 72_000 * USDC)
    carol = venue.sub("carol", 1)
    subaccount = venue.state.ledger.subaccounts[carol]
    held = copy.deepcopy(subaccount.positions)
    [events] = accepted(venue, bid_portfolio(venue, "dave", "carol", 1, 999))
    taken = {e.market_id: e.size_base_quantums for e in of_type(events, Liquidated)}
    assert taken == {BTC_PERP: 90_000}
    assert venue.position("carol", option, number=1)[0] == -10 * ONE_BTC
    # The MM before the bid, at the bid's prices: the same account with its positions back.
    before = venue.engine.risk_of(dataclasses.replace(subaccount, positions=held))
    after = venue.risk("carol", number=1)
    auction = venue.state.liquidations[carol].auction
    assert auction is not None
    discount = auction_discount_ppm(LiquidationParams(), auction.age_ns(venue.state.timestamp_ns))
    removed = max(before.maintenance - after.maintenance, 0)
    assert rewards(events) <= removed * discount // PPM, (rewards(events), removed, discount)


# ── f9: surface slices within the expiry horizon ───────────────────────────────────────────


def test_f9_a_surface_slice_beyond_the_expiry_horizon_is_refused() -> None:
    """A slice expiry was an unbounded integer: 10**330 passed every check, and the next block's
    option marks crashed the engine (OverflowError in int → float)."""
    venue = Venue()
    list_option(venue, "CALL-60000", call(60_000 * USDC), 7 * DAY)
    publish_smile(venue)
    oracle = venue.state.oracles[BTC_USD]
    kept = (oracle.surface, oracle.surface_timestamp_ns)
    publisher = venue.publishers[1]
    for expiry_in_ns in (10**330, HORIZON + DAY):
        timestamp = venue.now + venue.block_ns
        far = (lone_slice(timestamp + expiry_in_ns),)
        command = report_surface(publisher.address, publisher.nonce(timestamp), timestamp, far)
        refused(venue, command, RejectReason.SURFACE_ARBITRAGE)
        assert surface.problems(far, timestamp)
    venue.block()  # option marks read the surface kept
    assert (oracle.surface, oracle.surface_timestamp_ns) == kept
    timestamp = venue.now + venue.block_ns
    assert not surface.problems((lone_slice(timestamp + HORIZON - DAY),), timestamp)


# ── f11: dated markets within the expiry horizon ───────────────────────────────────────────


def test_f11_a_dated_market_beyond_the_expiry_horizon_is_not_listed() -> None:
    """Nothing bounded a dated market's expiry: a 40-year option with the surface at its 1000%
    clamp took total volatility past ~75, where Black-76 overflows, and the portfolio grid's
    vol-up scenarios came out NaN."""
    venue = Venue()
    beyond = [
        option_params(venue, "CALL-40Y", call(60_000 * USDC), 40 * YEAR),
        option_params(venue, "CALL-3Y1D", call(60_000 * USDC), HORIZON + DAY),
        btc_future(MarketId("BTC-3Y1D"), venue.now + HORIZON + DAY),
    ]
    for params in beyond:
        refused(venue, operator_listing(venue, params), RejectReason.INVALID_PARAMETERS)
        assert params.market_id not in venue.state.markets
    # Just inside the horizon, at the clamp, every scenario stays finite and orders go in.
    option = list_option(venue, "CALL-3Y", call(60_000 * USDC), HORIZON - DAY)
    publish_smile(venue, atm_vol=10.0)
    venue.block()
    losses = venue.engine.market_profile(option).losses
    assert all(math.isfinite(loss) for loss in losses), losses
    price = venue.mark(option) // USDC * USDC
    accepted(venue, venue.order("bob", option, BUY, ONE_BTC // 100, price))


# ── f2: the confidence contingency ─────────────────────────────────────────────────────────


def test_f2_one_publisher_cannot_set_the_confidence_contingency() -> None:
    """The contingency took the widest confidence of any fresh report, the median's outliers
    included, and a report may carry confidence == its price: publisher 0 alone made a 1 BTC
    perp in portfolio mode need 10**12 USDC and a keeper liquidated it."""
    venue = Venue()
    quote(venue, "alice", PRICE, size=ONE_BTC)
    accepted(venue, venue.transfer("carol", 40_000 * USDC, source=0, target=1))
    accepted(venue, margin_mode(venue, "carol", 1))
    accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE + 10 * USDC, number=1))
    honest = venue.risk("carol", number=1)
    assert not honest.liquidatable
    for price in (10**18, PRICE):  # an outlier the median leaves out; then one in the band
        venue.block([rogue_btc_report(venue, price, price)], reports=False)
        risk = venue.risk("carol", number=1)
        assert risk.maintenance == honest.maintenance, (price, risk, honest)
        refused(venue, liquidate(venue, "dave", "carol", number=1), RejectReason.NOT_LIQUIDATABLE)
        assert venue.index() == PRICE


def test_the_confidence_contingency_is_taken_with_the_index_once_a_block() -> None:
    """Reports sent in a block make the next block's index and confidence: a margin in
    between keeps the confidence its block's index was made with (it had moved at each
    report's arrival, mid-block, before the index did)."""
    venue = Venue()
    quote(venue, "alice", PRICE, size=ONE_BTC)
    accepted(venue, venue.transfer("carol", 40_000 * USDC, source=0, target=1))
    accepted(venue, margin_mode(venue, "carol", 1))
    accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE + 10 * USDC, number=1))
    venue.block()
    honest = venue.risk("carol", number=1).maintenance
    wide = [
        ReportPrices(
            signer=p.address, nonce=p.nonce(venue.now + venue.block_ns),
            expiry_ns=venue.now + HOUR, reports=(PriceReport(
                oracle_id=BTC_USD, price_quantums=PRICE, confidence_quantums=PRICE // 100,
                timestamp_ns=venue.now + venue.block_ns,
            ),),
        )
        for p in venue.publishers
    ]  # fmt: skip
    venue.block(wide, reports=False)  # every publisher: ±1%, in this block's commands
    assert venue.risk("carol", number=1).maintenance == honest
    venue.block()  # its index is made from them, and its confidence
    assert venue.risk("carol", number=1).maintenance > honest
    venue.block()  # and from the usual ones again
    assert venue.risk("carol", number=1).maintenance == honest


# ── f3: portfolio mode keeps the linear markets' own margin ────────────────────────────────


def test_f3_portfolio_mode_keeps_a_perpetuals_standard_margin_as_a_floor() -> None:
    """Portfolio mode margined a perpetual by the ±15% grid alone: on a 100%-IM market a
    subaccount switched to portfolio mode (no options needed) and opened 4× leverage."""
    venue = Venue()
    illiquid = dataclasses.replace(
        btc_perp(), market_id=MarketId("BTC-ILLQ"),
        margin=MarginParams(initial_margin_ppm=PPM),
    )  # fmt: skip
    accepted(venue, operator_listing(venue, illiquid))
    venue.block()
    quote(venue, "alice", PRICE, size=ONE_BTC, market="BTC-ILLQ")
    accepted(venue, venue.transfer("carol", 15_000 * USDC, source=0, target=1))
    accepted(venue, margin_mode(venue, "carol", 1))
    order = venue.order("carol", "BTC-ILLQ", BUY, ONE_BTC, PRICE + 10 * USDC, number=1)
    refused(venue, order, RejectReason.INSUFFICIENT_MARGIN)  # 60,000 notional on 15,000
    accepted(venue, venue.transfer("carol", 60_000 * USDC, source=0, target=1))
    accepted(venue, venue.order("carol", "BTC-ILLQ", BUY, ONE_BTC, PRICE + 10 * USDC, number=1))
    subaccount = venue.state.ledger.subaccounts[venue.sub("carol", 1)]
    standard = venue.engine.risk_of(subaccount, portfolio=False)
    portfolio = venue.engine.risk_of(subaccount, portfolio=True)
    assert standard.initial >= PRICE  # 100% of the notional
    assert portfolio.initial >= standard.initial, (portfolio, standard)
    assert portfolio.maintenance >= standard.maintenance, (portfolio, standard)


# ── f6: option series are validated like markets ───────────────────────────────────────────


def test_f6_an_option_series_with_bad_fees_or_minimum_order_is_refused() -> None:
    """ListOptionSeries checked neither fees nor the minimum order, and listed its markets
    without MarketParams.problems(): a negative maker fee crashed the engine on the first
    fill (a negative fee transfer)."""
    venue = Venue()
    series = btc_option_series()
    step = series.step_base_quantums
    bad_ones = [
        dataclasses.replace(series, maker_fee_ppm=-50_000, taker_fee_ppm=0),
        dataclasses.replace(series, maker_fee_ppm=500, taker_fee_ppm=300),
        dataclasses.replace(series, taker_fee_ppm=200_000),
        dataclasses.replace(series, min_order_base_quantums=0),
        dataclasses.replace(series, min_order_base_quantums=step + step // 2),
    ]
    operator = venue.operator
    for bad in bad_ones:
        command = ListOptionSeries(
            signer=operator.address, nonce=operator.nonce(venue.now), expiry_ns=venue.now + HOUR,
            params=bad,
        )  # fmt: skip
        refused(venue, command, RejectReason.INVALID_PARAMETERS)
        assert bad.problems(), bad
    assert not venue.state.option_series
    assert all(m.params.payoff is None for m in venue.state.markets.values())
