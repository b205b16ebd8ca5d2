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

The options AMM quoted around each option's mark, which is Black-76 on the forward of its
expiry, and the forward is the index plus the dated futures' basis: their marks, which a pair
of orders nobody trades with (the impact notional is 10,000 USDC) holds at the band's edge,
1% off the index. bob and carol rested half a bitcoin each way 1% under the index on the
20-hour future for ten minutes: a 32-hour at-the-money call's mark fell from 868 to 588 USDC
and the AMM offered it at 601; bob took every quote the push cheapened (calls' asks, puts'
bids), then let the future go back: +1,707.26 USDC for bob, −1,843.26 for the AMM's LPs, the
push itself never filled. The AMM now bids from the lower and asks from the higher of the
option's mark and its mark on the index as forward: bob −271.20, the LPs +134.58.
"""

from __future__ import annotations

import pytest

from clearhouse.core.ids import MarketId, OrderId, Side
from clearhouse.core.ledger import DEFICIT, INSURANCE, OPTIONS_VAULT
from clearhouse.core.messages import (
    PlaceOrder,
    TimeInForce,
)
from clearhouse.core.params import OptionsVaultParams
from clearhouse.core.payoffs import call
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, BTC_USD, ONE_BTC, PRICE, USDC_ASSET, Venue, accepted
from ladder import quote
from options import (
    DAY,
    HOUR,
    bid_portfolio,
    deposit_options_vault,
    list_option,
    margin_mode,
    publish_smile,
    setup_options_vault,
    with_series,
)

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


# ── The options AMM's quotes and the futures' basis ───────────────────────────────────────


def _options_amm(venue: Venue) -> list[MarketId]:
    """The default BTC series with a surface, a perpetual book to hedge on, and the options
    AMM funded by dave (1,000,000 USDC, 1 BTC quotes)."""
    listed = with_series(venue)
    quote(venue, "alice", PRICE, size=20 * ONE_BTC)
    params = OptionsVaultParams(
        oracle_id=BTC_USD, hedge_market_id=BTC_PERP, quote_size_base_quantums=ONE_BTC,
        delta_band_nav_ppm=10_000, lockup_ns=HOUR,
    )  # fmt: skip
    accepted(venue, setup_options_vault(venue, params))
    accepted(venue, deposit_options_vault(venue, "dave", 1_000_000 * USDC))
    venue.block()
    return sorted(m for m in listed if m.endswith(("-C", "-P")))


def _amm_nav(venue: Venue) -> int:
    return venue.engine.risk_of(venue.state.ledger.subaccounts[OPTIONS_VAULT]).equity


def _take_what_the_push_cheapened(venue: Venue, options: list[MarketId]) -> list[PlaceOrder]:
    """bob's IOC orders on the AMM's asks of calls and bids of puts."""
    orders = []
    for market_id in options:
        record = venue.state.options_vault.quotes.get(market_id)
        book = venue.state.markets[market_id].book
        call = market_id.endswith("-C")
        order_id = None if record is None else record.ask_order_id if call else record.bid_order_id
        order = book.get(OrderId(order_id)) if order_id else None
        if order is not None:
            orders.append(venue.order(
                "bob", market_id, Side.BUY if call else Side.SELL, order.remaining_base_quantums,
                order.price_quantums, time_in_force=TimeInForce.IOC,
            ))  # fmt: skip
    return orders


def test_a_futures_mark_held_at_its_band_does_not_cheapen_the_amms_quotes() -> None:
    venue = Venue(block_ns=5 * NS_PER_SECOND)
    options = _options_amm(venue)
    future = venue.future
    nav_before, bob_before = _amm_nav(venue), venue.risk("bob").equity
    low, high = PRICE * 988 // 1000, PRICE * 990 // 1000  # under the index; nobody trades there
    accepted(venue, venue.order("bob", future, BUY, ONE_BTC // 2, low - low % USDC),
             venue.order("carol", future, SELL, ONE_BTC // 2, high - high % USDC))  # fmt: skip
    venue.advance(10 * NS_PER_MINUTE)
    assert venue.mark(future) < PRICE * 991 // 1000  # the future's mark at the band's edge
    orders = _take_what_the_push_cheapened(venue, options)
    assert len(orders) > 20
    venue.block(orders)
    accepted(venue, venue.cancel_all("bob", future), venue.cancel_all("carol", future))
    venue.advance(10 * NS_PER_MINUTE)
    assert venue.mark(future) == PRICE
    # Valued at the marks of an unpushed forward: before, bob +1,707.26, the LPs −1,843.26.
    assert venue.risk("bob").equity < bob_before
    assert _amm_nav(venue) > nav_before
