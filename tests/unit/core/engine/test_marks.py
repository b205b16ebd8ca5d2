"""Marks of dated futures inside their settlement window: what the TWAP will pay, its fixed
part and the index for the rest, never the index alone."""

from __future__ import annotations

from clearhouse.core.ids import Side
from clearhouse.core.messages import Event, Liquidated, MarketSettled
from clearhouse.core.payoffs import call
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.venue import USDC
from helpers import BTC_USD, ONE_BTC, PRICE, Venue, accepted, of_type
from options import list_option, publish_surface

SIZE = 10 * ONE_BTC
COLLATERAL = 40_000 * USDC


def short_through_a_late_move() -> tuple[Venue, list[Event]]:
    """carol/1 short 10 BTC of the 1-hour future at 60,000 on 40,000 USDC (IM 5%); 10 minutes
    before expiry, 20 minutes into the window, the index rises 5% and dave rests asks 0.5%
    over it. The blocks from then to settlement, and their events."""
    venue = Venue(future_expiry_hours=1, check=False)
    future = venue.future
    accepted(venue, venue.transfer("carol", COLLATERAL, source=0, target=1))
    accepted(venue, venue.order("alice", future, Side.BUY, SIZE, PRICE))
    accepted(venue, venue.order("carol", future, Side.SELL, SIZE, PRICE, number=1))
    expiry = venue.state.markets[future].params.expiry_ns
    venue.advance(expiry - 10 * NS_PER_MINUTE - venue.now, step_ns=10 * NS_PER_SECOND)
    index = PRICE * 105 // 100
    venue.prices[BTC_USD] = index
    events = list(venue.block().events) + list(venue.block().events)
    ask = index * 1005 // 1000 // (USDC // 10) * (USDC // 10)
    accepted(venue, venue.order("dave", future, Side.SELL, SIZE, ask))
    while venue.state.markets[future].status is not MarketStatus.SETTLED:
        events += venue.block(dt_ns=5 * NS_PER_SECOND).events
    return venue, events


def test_a_late_move_marks_a_future_by_the_part_of_the_twap_still_open() -> None:
    """Two thirds of the TWAP were fixed near 60,000 when the index rose 5%: the mark moves a
    third of the way. At the index alone, the ladder bought carol's short back from dave's
    asks at 63,314.9: she ended with 0 where holding to expiry left her 30,050, and dave made
    23,136.69 on a price the settlement never paid. Now whatever the ladder does (the move
    raised her margin with the volatility) is at the settlement's side of the move, and she
    loses no more than the penalty against holding."""
    venue, events = short_through_a_late_move()
    [settled] = of_type(events, MarketSettled)
    assert PRICE < settled.settlement_price_quantums < PRICE * 102 // 100
    held = COLLATERAL - (settled.settlement_price_quantums - PRICE) * SIZE // ONE_BTC
    closed = [e for e in of_type(events, Liquidated) if e.market_id == venue.future]
    penalty = sum(e.notional_quote_quantums for e in closed) * 15_000 // 1_000_000  # 1.5%
    assert venue.balance("carol", number=1) >= held - penalty
    assert venue.position("dave", venue.future) == (0, 0)  # its asks at the index: untouched


def test_a_late_move_marks_an_option_by_the_part_of_the_twap_still_open() -> None:
    """A 60,000 call 10 minutes before expiry, two thirds of its TWAP fixed at 60,000, the
    index 5% higher: it will pay about 1,000, and is marked near that. Black-76 on the index
    alone marked it about 3,000: as if the whole TWAP would follow the move."""
    venue = Venue(check=False)
    publish_surface(venue)
    option = list_option(venue, "BTC-60000-C", call(60_000 * USDC), 40 * NS_PER_MINUTE)
    expiry = venue.state.markets[option].params.expiry_ns
    published = venue.now
    while venue.now < expiry - 10 * NS_PER_MINUTE:
        if venue.now - published > 10 * NS_PER_MINUTE:
            publish_surface(venue)
            published = venue.now
        venue.block(dt_ns=5 * NS_PER_SECOND)
    venue.prices[BTC_USD] = PRICE * 105 // 100
    venue.block()
    venue.block()
    publish_surface(venue)
    mark = venue.state.markets[option].mark_price_quantums
    assert 900 * USDC < mark < 1_300 * USDC
    while venue.state.markets[option].status is MarketStatus.ACTIVE:
        venue.block(dt_ns=5 * NS_PER_SECOND)
    paid = venue.state.markets[option].settlement_price_quantums
    assert abs(mark - (paid - 60_000 * USDC)) < 300 * USDC  # near what it paid
