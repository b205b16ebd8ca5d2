"""Economic attacks, round 9 (docs/RELIABILITY.md): what a trader reaches with signed commands.

A deep in-the-money calendar spread (long a far call, short a near call of the same strike) is
worth little: the grid nets the two legs' deltas, and standard mode paired them at the spread's
value. But the near call settles in cash and leaves the far call alone against the debt it
paid: 10 BTC of delta on a few hundred USDC. bob/1 opened ten such pairs on 438 USDC (its IM)
against his own other wallet (dave), took the rest of the premium out, and waited: the near
call's settlement alone, the index unchanged, put bob/1 84,000 USDC below maintenance, and a
2% fall then left 11,254 USDC of bad debt (the venue's deficit, with the fund empty) while dave
kept the same 2% as profit: a free put written by the venue. The pair now also holds what the
far call needs alone, in both margin modes.
"""

from __future__ import annotations

import pytest

from clearhouse.core.ids import MarketId, Side
from clearhouse.core.ledger import DEFICIT, INSURANCE
from clearhouse.core.payoffs import call
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.venue import USDC
from helpers import BTC_USD, ONE_BTC, USDC_ASSET, Venue, accepted
from options import DAY, bid_portfolio, list_option, margin_mode, publish_smile

BUY, SELL = Side.BUY, Side.SELL
PAIRS = 10 * ONE_BTC


def _deep_calendar(venue: Venue, *, portfolio: bool) -> tuple[MarketId, MarketId]:
    """bob/1 buys 10 eight-day 50,000 calls from dave and sells him 10 of a 50,000 call that
    settles within minutes (BTC at 60,000), then moves all he may to bob/0."""
    publish_smile(venue)
    near = list_option(
        venue, "CALL-NEAR", call(50_000 * USDC), 6 * NS_PER_MINUTE,
        settlement_window_ns=5 * NS_PER_MINUTE, settlement_min_samples=10,
    )  # fmt: skip
    far = list_option(venue, "CALL-FAR", call(50_000 * USDC), 8 * DAY)
    publish_smile(venue)
    if portfolio:
        accepted(venue, margin_mode(venue, "bob", 1))
    far_price = venue.mark(far) // USDC * USDC + USDC
    near_price = venue.mark(near) // USDC * USDC
    accepted(venue, venue.transfer("bob", 11 * far_price, source=0, target=1))
    accepted(venue, venue.order("dave", far, SELL, PAIRS, far_price))
    accepted(venue, venue.order("bob", far, BUY, PAIRS, far_price, number=1))
    accepted(venue, venue.order("dave", near, BUY, PAIRS, near_price))
    accepted(venue, venue.order("bob", near, SELL, PAIRS, near_price, number=1))
    free = venue.risk("bob", 1).withdrawable_quote
    accepted(venue, venue.transfer("bob", free - 10 * USDC, source=1, target=0))  # a block's decay
    return near, far


@pytest.mark.parametrize("portfolio", [False, True], ids=["standard", "portfolio"])
def test_a_calendar_spread_holds_what_its_far_leg_needs_once_the_near_one_settles(
    portfolio: bool,
) -> None:
    venue = Venue(block_ns=5 * NS_PER_SECOND)
    near, far = _deep_calendar(venue, portfolio=portfolio)
    held = venue.risk("bob", 1)
    far_premium = PAIRS * venue.mark(far) // ONE_BTC
    # Before: 438 USDC (standard) or 556 (portfolio) held ten pairs; now about the far calls'
    # own requirement (they are deep in the money: nearly their premium).
    assert held.initial > far_premium // 2
    for _ in range(90):  # the near call settles, the index unchanged
        venue.block()
        if venue.position("bob", near, 1)[0] == 0:
            break
    assert venue.position("bob", near, 1) == (0, 0)
    assert venue.position("bob", far, 1)[0] == PAIRS
    after = venue.risk("bob", 1)
    assert after.equity >= after.maintenance  # before: 437.52 against 84,444.64
    assert venue.sub("bob", 1) not in venue.state.liquidations
    # A 2% fall then costs bob/1 its own margin, not the venue: no bad debt, the fund intact.
    fund = venue.state.ledger.balance(INSURANCE, USDC_ASSET)
    venue.prices[BTC_USD] = 58_800 * USDC
    venue.block()
    venue.block()
    venue.block([bid_portfolio(venue, "alice", "bob", 1, 1_000_000)])
    assert venue.risk("bob", 1).equity > 0
    assert venue.state.ledger.balance(DEFICIT, USDC_ASSET) == 0  # before: −11,254.38 USDC
    assert venue.state.ledger.balance(INSURANCE, USDC_ASSET) >= fund
