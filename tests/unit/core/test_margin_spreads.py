"""Issue 16: what a long option and a calendar spread need, through the engine.

* A long option can lose its premium and no more: its IM is at most its value at mark, in
  standard and in portfolio mode.
* A calendar spread (long the far expiry, short the near one, one strike) can lose at most
  what it is worth now until the near one expires: the far call is worth at least the near
  one's payoff then. Standard mode, which margins options one by one, used to charge the short
  leg as if it were naked. But the far call outlives the near one and then stands alone
  against the cash the near one paid, so the pair also holds what the far call needs alone
  (at most its premium): its value plus that, still less than the legs alone.
"""

from __future__ import annotations

import pytest

from clearhouse.core import limits
from clearhouse.core.ids import Side
from clearhouse.core.payoffs import Payoff, call, put
from clearhouse.sim.venue import USDC
from helpers import ONE_BTC, Venue, accepted
from options import DAY, list_option, margin_mode, publish_surface

BUY, SELL = Side.BUY, Side.SELL


def _trade(venue: Venue, market: str, buyer: str, seller: str, size: int = ONE_BTC) -> None:
    price = venue.mark(market) // USDC * USDC
    accepted(venue, venue.order(seller, market, SELL, size, price))
    accepted(venue, venue.order(buyer, market, BUY, size, price))


@pytest.mark.parametrize(
    ("payoff", "days"),
    [(call(64_000 * USDC), 7), (call(60_000 * USDC), 2), (put(50_000 * USDC), 30),
     (call(40_000 * USDC), 90)],
    ids=["otm-call-7d", "atm-call-2d", "otm-put-30d", "itm-call-90d"],
)  # fmt: skip
def test_a_long_option_needs_no_more_than_its_premium_in_either_mode(
    payoff: Payoff, days: int
) -> None:
    venue = Venue()
    option = list_option(venue, "OPTION", payoff, days * DAY)
    publish_surface(venue)
    _trade(venue, option, "bob", "alice", 3 * ONE_BTC)
    premium = 3 * venue.mark(option)  # its value at mark
    standard = venue.risk("bob")
    assert 0 < standard.initial <= premium
    assert standard.maintenance <= standard.initial
    accepted(venue, margin_mode(venue, "bob"))
    portfolio = venue.risk("bob")
    assert 0 < portfolio.initial <= premium
    assert portfolio.maintenance <= portfolio.initial


def test_a_calendar_spread_in_standard_mode_costs_its_worst_case_loss_and_the_far_leg() -> None:
    venue = Venue()
    near = list_option(venue, "CALL-NEAR", call(64_000 * USDC), 7 * DAY)
    far = list_option(venue, "CALL-FAR", call(64_000 * USDC), 60 * DAY)
    publish_surface(venue)
    _trade(venue, far, "bob", "alice", 5 * ONE_BTC)
    far_alone = venue.risk("bob").initial  # what the far call needs once the near one is gone
    _trade(venue, near, "alice", "bob", 5 * ONE_BTC)
    worst_case_loss = 5 * (venue.mark(far) - venue.mark(near))  # the spread's value now
    assert worst_case_loss > 0
    found = venue.risk("bob")
    assert found.initial <= worst_case_loss + far_alone + 1  # + the pair value's rounding
    assert found.initial >= far_alone
    assert found.maintenance <= found.initial
    # The short leg alone is still margined as naked: the cover is what lowers it.
    alone = venue.risk("alice")
    assert alone.initial > worst_case_loss


def test_a_vertical_spread_is_paired_and_the_pairing_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long 60k call covers a short 66k call of the same expiry (its payoff is at least the
    short's everywhere): the pair needs at most its value. Past
    ``limits.spread_pairs_examined_max`` pairs examined, options are margined alone."""
    venue = Venue()
    low = list_option(venue, "CALL-60", call(60_000 * USDC), 14 * DAY)
    expiry = venue.state.markets[low].params.expiry_ns  # one expiry for both
    high = list_option(venue, "CALL-66", call(66_000 * USDC), expiry - venue.now)
    publish_surface(venue)
    _trade(venue, low, "bob", "alice", 2 * ONE_BTC)
    _trade(venue, high, "alice", "bob", 2 * ONE_BTC)
    spread_value = 2 * (venue.mark(low) - venue.mark(high))
    assert venue.risk("bob").initial <= spread_value
    monkeypatch.setattr(limits, "spread_pairs_examined_max", 0)
    assert venue.risk("bob").initial > spread_value
