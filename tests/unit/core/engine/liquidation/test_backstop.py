"""The backstop after the book and the auction: the insurance fund takes a position over into
its book before anyone is auto-deleveraged, and unwinds it on the book over time."""

from __future__ import annotations

from clearhouse.core.ids import QUOTE_ASSET, Side
from clearhouse.core.ledger import DEFICIT, FUND_BOOK, INSURANCE
from clearhouse.core.messages import Deleveraged, InsuranceDrawn, Liquidated, LiquidationStage
from clearhouse.core.params import LiquidationParams
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type
from ladder import fund_insurance, leveraged_long, liquidate, quote, with_liquidation


def fund(venue: Venue) -> int:
    return venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)


def test_a_bankrupt_remainder_goes_to_the_fund_not_to_adl_while_the_fund_can_pay() -> None:
    """alice's profitable short is not force-closed: the fund pays bob's shortfall and holds
    his 2 BTC long in its book (on the previous build ADL closed alice at once)."""
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 50_000 * USDC)
    accepted(venue, venue.cancel_all("alice"))
    alice_before = venue.position("alice", BTC_PERP)
    fund_before = fund(venue)
    events = venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue  # bob: −2,000
    assert not of_type(events, Deleveraged)
    assert venue.position("alice", BTC_PERP) == alice_before
    [takeover] = [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.FUND]
    assert takeover.size_base_quantums == 2 * ONE_BTC
    assert venue.position("bob", BTC_PERP, number=1) == (0, 0)
    assert venue.risk("bob", 1).equity == 0
    book = venue.state.ledger.subaccounts[FUND_BOOK]
    assert book.position_size(BTC_PERP) == 2 * ONE_BTC
    drawn = sum(e.amount_quote_quantums for e in of_type(events, InsuranceDrawn))
    assert 2_000 * USDC <= drawn <= 2_100 * USDC  # the shortfall, fees and rounding
    margin = venue.state.ledger.balance(FUND_BOOK, QUOTE_ASSET)
    assert fund_before - fund(venue) == drawn + margin
    book_risk = venue.engine.risk_of(book)
    assert book_risk.satisfies_initial  # the book carries its position at initial margin
    assert venue.state.ledger.balance(DEFICIT, QUOTE_ASSET) == 0


def test_an_unbid_auction_of_a_solvent_account_goes_to_the_fund_not_to_adl() -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 50_000 * USDC)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    equity = venue.risk("bob", 1).equity
    assert equity > 0
    seen = []
    for _ in range(LiquidationParams().auction_duration_ns // NS_PER_SECOND + 2):
        seen += venue.block().prologue
    assert not of_type(seen, Deleveraged)
    [takeover] = [e for e in of_type(seen, Liquidated) if e.stage is LiquidationStage.FUND]
    assert venue.position("bob", BTC_PERP, number=1) == (0, 0)
    # At the mark: bob keeps his equity less the fee, capped by his equity (the fund paid him
    # nothing; the keeper's part of the fee went to the fund's book).
    fee = takeover.fee_to_fund_quote_quantums + takeover.fee_to_keeper_quote_quantums
    assert takeover.keeper == str(FUND_BOOK)
    assert venue.risk("bob", 1).equity >= equity - fee - 2 * USDC >= -2 * USDC
    assert not of_type(seen, InsuranceDrawn)


def test_without_the_capital_the_fund_leaves_it_to_adl() -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 2_100 * USDC)  # pays the shortfall, not the book's margin
    accepted(venue, venue.cancel_all("alice"))
    events = venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue
    assert of_type(events, Deleveraged)
    assert not [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.FUND]
    assert FUND_BOOK not in venue.state.ledger.subaccounts or not (
        venue.state.ledger.subaccounts[FUND_BOOK].positions
    )


def test_the_fund_book_is_capped_by_its_leverage() -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 50_000 * USDC)
    with_liquidation(venue, fund_takeover_leverage_max_ppm=1_000_000)  # 1×: 50k < 2 BTC × 56.5k
    accepted(venue, venue.cancel_all("alice"))
    events = venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue
    assert of_type(events, Deleveraged)


def test_the_fund_unwinds_its_book_near_the_mark_then_takes_its_margin_back() -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 50_000 * USDC)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC)
    book = venue.state.ledger.subaccounts[FUND_BOOK]
    assert book.position_size(BTC_PERP) == 2 * ONE_BTC
    low = PRICE - 3_500 * USDC
    # A bid far below the mark is not hit: the fund does not dump.
    accepted(venue, venue.order("carol", BTC_PERP, Side.BUY, 2 * ONE_BTC, low * 98 // 100))
    venue.block()
    assert book.position_size(BTC_PERP) == 2 * ONE_BTC
    accepted(venue, venue.cancel_all("carol"))
    quote(venue, "carol", low, size=2 * ONE_BTC, gap=USDC)
    sizes = []
    for _ in range(60):
        venue.block()
        sizes.append(book.position_size(BTC_PERP))
    assert sizes[0] < 2 * ONE_BTC  # a fraction per second of block time ...
    assert sizes[0] >= 2 * ONE_BTC * 8 // 10 - ONE_BTC // 100
    assert sizes[-1] == 0  # ... until flat, within a minute
    assert venue.state.ledger.balance(FUND_BOOK, QUOTE_ASSET) == 0  # margin back in the fund
    assert venue.state.ledger.balance(DEFICIT, QUOTE_ASSET) == 0
