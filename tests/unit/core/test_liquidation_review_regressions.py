"""Regression tests for the defects an independent review of the liquidation protocol found;
each failed before its fix."""

from __future__ import annotations

from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, Side
from clearhouse.core.ledger import INSURANCE
from clearhouse.core.messages import (
    AuctionEnded,
    AuctionStarted,
    CollateralSeized,
    Deleveraged,
    InsuranceDrawn,
    Liquidated,
    LiquidationStage,
)
from clearhouse.core.params import LiquidationParams
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.sim.venue import USDC
from helpers import (
    BTC_PERP,
    BTC_USD,
    ETH_PERP,
    ETH_USD,
    ONE_BTC,
    PRICE,
    Venue,
    accepted,
    of_type,
    rejected,
)
from ladder import bid, fund_insurance, leveraged_long, liquidate, quote, with_liquidation

BUY, SELL = Side.BUY, Side.SELL
ONE_ETH = 1_000_000_000


def test_a_stale_auction_does_not_crash_the_ladder() -> None:
    """bob closes the auctioned position himself; the keeper's command in the same block used to
    index the gone position (KeyError). The ladder moves to his other market instead."""
    venue = Venue()
    leveraged_long(venue)
    quote(venue, "alice", 3_000 * USDC, size=ONE_ETH, gap=USDC, market=ETH_PERP)
    accepted(venue, venue.order("bob", ETH_PERP, BUY, 3 * ONE_ETH, 3_010 * USDC, number=1))
    accepted(venue, venue.cancel_all("alice", BTC_PERP))
    low = PRICE - 2_300 * USDC
    venue.settle_prices(BTC_USD=low)
    [events] = accepted(venue, liquidate(venue, "carol", "bob", 1))
    assert of_type(events, AuctionStarted)
    accepted(venue, venue.order("carol", BTC_PERP, BUY, 2 * ONE_BTC, low - 10 * USDC))
    close = venue.order("bob", BTC_PERP, SELL, 2 * ONE_BTC, low - 10 * USDC, number=1,
                        reduce_only=True)  # fmt: skip
    result = venue.block([close, liquidate(venue, "dave", "bob", 1)])
    assert venue.position("bob", BTC_PERP, 1) == (0, 0)
    assert of_type(result.events, AuctionEnded)
    assert venue.state.liquidations.get(venue.sub("bob", 1)) is None or (
        venue.state.liquidations[venue.sub("bob", 1)].auction is None
    )


def test_the_close_cap_holds_per_block_across_keepers() -> None:
    """Six keeper commands in one block each took a 20% step (74% closed in one block)."""
    venue = Venue()
    leveraged_long(venue)
    low = PRICE - 1_750 * USDC
    quote(venue, "alice", low, size=ONE_BTC, gap=2 * USDC)
    venue.settle_prices(BTC_USD=low)
    before = venue.position("bob", BTC_PERP, 1)[0]
    result = venue.block([liquidate(venue, "carol", "bob", 1) for _ in range(6)])
    steps = of_type(result.events, Liquidated)
    assert len(steps) == 1
    assert before - venue.position("bob", BTC_PERP, 1)[0] == before // 5
    reasons = {r.reason for i in range(1, 6) if (r := result.rejection(i)) is not None}
    assert reasons == {RejectReason.NOTHING_TO_LIQUIDATE}  # all five refused


def test_a_keeper_command_that_would_do_nothing_is_refused() -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))  # the auction opens
    rejected(venue, liquidate(venue, "carol", "bob", 1), RejectReason.NOTHING_TO_LIQUIDATE)


def test_no_bid_on_an_account_that_recovered() -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    top_up = venue.transfer("bob", 100_000 * USDC, source=0, target=1)
    result = venue.block([top_up, bid(venue, "dave", "bob", ONE_BTC)])  # the same block
    refused = result.rejection(1)
    assert refused is not None and refused.reason is RejectReason.NOT_LIQUIDATABLE


def test_a_bid_obeys_the_position_cap_and_cooling_off() -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    with_liquidation(venue, position_cap_floor_base_quantums=ONE_BTC // 2,
                     position_cap_depth_multiple_ppm=0,
                     keeper_grace_ns=10 * NS_PER_SECOND)  # fmt: skip
    rejected(venue, bid(venue, "dave", "bob", ONE_BTC), RejectReason.POSITION_CAP_EXCEEDED)


def test_an_auction_that_ends_with_im_met_deleverages_no_one() -> None:
    """The auction's time ran out in the pass whose book step had just restored IM: it used to
    deleverage the whole remaining position anyway, force-closing opposite traders."""
    venue = Venue()
    leveraged_long(venue)
    with_liquidation(
        venue, keeper_grace_ns=0 * NS_PER_SECOND, auction_duration_ns=3 * NS_PER_SECOND
    )
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 1_950 * USDC)  # below MM, no book: an auction opens
    assert venue.state.liquidations[venue.sub("bob", 1)].auction is not None
    venue.prices[BTC_USD] = PRICE - 1_350 * USDC  # part-way back: between MM and IM
    venue.block()
    quote(venue, "alice", PRICE - 1_350 * USDC, size=ONE_BTC, gap=2 * USDC)  # liquidity back
    events = venue.block().prologue  # the auction's last block
    assert of_type(events, Liquidated) and not of_type(events, Deleveraged)
    assert venue.risk("bob", 1).satisfies_initial
    assert venue.position("bob", BTC_PERP, 1)[0] > ONE_BTC


def test_a_flat_account_left_under_liquidation_is_settled_and_released() -> None:
    """Its auction fully bid, bob was flat with a quote debt against ETH; when ETH fell, the
    pass skipped him (no position to liquidate, and borrowers under liquidation were left out)."""
    venue = Venue()
    with_liquidation(venue, keeper_grace_ns=10 * NS_PER_SECOND)
    accepted(venue, venue.deposit("bob", 2 * ONE_ETH, "ETH", number=1))
    quote(venue, "alice", PRICE, size=ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE + 20 * USDC, number=1))
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 4_500 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))  # no book: an auction
    venue.prices[ETH_USD] = 2_600 * USDC
    accepted(venue, bid(venue, "dave", "bob", ONE_BTC))
    assert venue.position("bob", BTC_PERP, 1) == (0, 0)
    seen = []
    for _ in range(20):
        seen += venue.block().prologue
    assert of_type(seen, CollateralSeized)
    assert venue.risk("bob", 1).equity >= 0
    assert venue.sub("bob", 1) not in venue.state.liquidations


def test_collateral_seizure_leaves_the_fund_for_real_shortfalls() -> None:
    """The fund's quote used to buy all the collateral it could, then had nothing left for the
    shortfall: ADL paid for an account that was solvent at the index."""
    venue = Venue()
    fund_insurance(venue, 1_000 * USDC)
    accepted(venue, venue.deposit("bob", 20 * ONE_ETH, "ETH", number=1))  # 60,000 of ETH
    quote(venue, "alice", PRICE, size=10 * ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, 10 * ONE_BTC, PRICE + 20 * USDC, number=1))
    accepted(venue, venue.cancel_all("alice"))
    events = venue.settle_prices(BTC_USD=PRICE * 91 // 100).prologue
    assert of_type(events, CollateralSeized)
    assert not of_type(events, InsuranceDrawn) and not of_type(events, Deleveraged)
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == 1_000 * USDC


def test_an_auction_bid_never_spends_what_the_other_positions_need() -> None:
    """A slice's bound was its share of the whole account's equity, which also backs the
    account's other positions: a bid on the whole BTC position at the deepest discount took
    all of it, and the fund then paid to close the unbacked ETH position (126 USDC, into the
    resting bids of the bidder's own book). The bid may spend only what is left above the
    other positions' maintenance margin."""
    venue = Venue()
    leveraged_long(venue, size=2 * ONE_BTC, collateral=5_000 * USDC)  # bob/1: 2 BTC long
    quote(venue, "alice", 3_000 * USDC, size=ONE_ETH, gap=USDC, market=ETH_PERP)
    accepted(venue, venue.order("bob", ETH_PERP, BUY, 3 * ONE_ETH, 3_010 * USDC, number=1))
    accepted(venue, venue.cancel_all("alice"))  # empty books: the ladder must auction
    fund_insurance(venue, 100_000 * USDC)
    venue.settle_prices(BTC_USD=PRICE - 1_960 * USDC)  # bob/1 below MM, still solvent
    risk = venue.risk("bob", 1)
    assert 0 < risk.equity < risk.maintenance
    accepted(venue, liquidate(venue, "carol", "bob", 1))  # opens the BTC auction
    for _ in range(with_default_auction_seconds() - 2):
        venue.block()
    fund_before = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    [events] = accepted(venue, bid(venue, "dave", "bob", 2 * ONE_BTC))  # the whole position
    assert of_type(events, Liquidated)[0].stage is LiquidationStage.AUCTION
    left = venue.risk("bob", 1)
    eth_maintenance = left.maintenance  # only the ETH position is left
    assert left.equity >= eth_maintenance > 0
    quote(venue, "dave", 2_960 * USDC, size=ONE_ETH, gap=USDC, levels=5, market=ETH_PERP)
    seen = []
    for _ in range(10):
        seen += venue.block().prologue
    assert not of_type(seen, InsuranceDrawn)
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) >= fund_before


def with_default_auction_seconds() -> int:
    return LiquidationParams().auction_duration_ns // NS_PER_SECOND
