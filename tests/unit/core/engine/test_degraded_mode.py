"""Degraded mode (§5): an index without a quorum is stale, and nothing that depends on it runs.

Half the publishers go silent (2 of 4 is below the 2/3 quorum) while the other half report a
crash that would liquidate bob. What stays live: cancels (and shrinking an order, a partial
cancel), resting orders (reduce-only ones included, untouched and unfilled), deposits, and
withdrawals and transfers from subaccounts that hold nothing priced by the stale index. What is
refused, each with ``ORACLE_STALE`` and no change but the nonce: every new order (reduce-only
too: a fill needs a price band and both sides' margin), amending to a new price, withdrawals
and transfers from subaccounts exposed to the index, a keeper's liquidation, a change of margin
mode. Nothing is liquidated, however long it lasts.
"""

from __future__ import annotations

from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, OrderId
from clearhouse.core.messages import (
    Liquidated,
    OrderAmended,
    OrderCancelled,
    OrderFilled,
    SetMarginMode,
    TimeInForce,
)
from clearhouse.core.oracle import PriceStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from helpers import BTC_PERP, BTC_USD, ONE_BTC, PRICE, USDC, Venue, accepted, of_type, rejected
from ladder import BUY, SELL, leveraged_long, liquidate, quote

CRASH = PRICE - 2_300 * USDC  # what the remaining publishers report: below bob/1's MM


def degraded_venue() -> tuple[Venue, OrderId]:
    """bob/1 holds a leveraged long; alice quotes BTC-PERP (and is short what bob bought);
    carol holds 1 BTC with a resting reduce-only ask; dave holds only quote and one resting
    bid. Then publishers 2 and 3 go silent."""
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE + 20 * USDC))
    [events] = accepted(
        venue, venue.order("carol", BTC_PERP, SELL, ONE_BTC, PRICE + 500 * USDC, reduce_only=True)
    )
    reduce_only = events[0].order_id  # type: ignore[attr-defined]
    accepted(venue, venue.order("dave", BTC_PERP, BUY, ONE_BTC, PRICE - 1_000 * USDC))
    venue.silent = {2, 3}
    venue.prices[BTC_USD] = CRASH
    for _ in range(2):  # the silent half's last reports age past the staleness bound
        venue.block(dt_ns=6 * NS_PER_SECOND)
    oracle = venue.state.oracles[BTC_USD]
    assert oracle.status is PriceStatus.STALE
    assert venue.index() == PRICE  # the crash never became the index
    assert venue.risk("bob", 1).usable is False
    return venue, reduce_only


def alice_order(venue: Venue) -> OrderId:
    sub = venue.state.ledger.subaccounts[venue.sub("alice")]
    return min(sub.order_ids)


def test_price_dependent_commands_are_refused_with_oracle_stale() -> None:
    venue, _ = degraded_venue()
    stale = RejectReason.ORACLE_STALE
    rejected(venue, venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE - 100 * USDC), stale)
    rejected(venue, venue.order(
        "carol", BTC_PERP, SELL, ONE_BTC, PRICE - 100 * USDC, reduce_only=True,
        time_in_force=TimeInForce.IOC,
    ), stale)  # fmt: skip
    rejected(venue, venue.order(
        "carol", BTC_PERP, SELL, ONE_BTC, PRICE + 900 * USDC, reduce_only=True,
        time_in_force=TimeInForce.POST_ONLY,
    ), stale)  # fmt: skip
    order = alice_order(venue)
    resting = venue.state.markets[MarketId(BTC_PERP)].book.get(order)
    assert resting is not None
    moved = resting.price_quantums - 10 * USDC * resting.side
    rejected(venue, venue.amend("alice", order, moved, resting.remaining_base_quantums), stale)
    rejected(venue, venue.withdraw("bob", 100 * USDC, number=1), stale)
    rejected(venue, venue.transfer("bob", 100 * USDC, source=1, target=0), stale)
    rejected(venue, venue.withdraw("alice", 100 * USDC), stale)  # her short needs a price
    rejected(venue, venue.withdraw("dave", 100 * USDC), stale)  # so does his resting bid
    rejected(venue, liquidate(venue, "carol", "bob", 1), stale)
    signer = venue.signers["carol"]
    mode = SetMarginMode(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        subaccount_number=0, portfolio=True,
    )  # fmt: skip
    rejected(venue, mode, stale)


def test_cancels_deposits_and_price_independent_withdrawals_stay_live() -> None:
    venue, reduce_only = degraded_venue()
    book = venue.state.markets[MarketId(BTC_PERP)].book
    assert book.get(reduce_only) is not None  # resting reduce-only orders stay live
    order = alice_order(venue)
    resting = book.get(order)
    assert resting is not None
    [shrunk] = accepted(venue, venue.amend("alice", order, resting.price_quantums, ONE_BTC // 2))
    assert of_type(shrunk, OrderAmended)  # a shrink is a partial cancel
    [cancelled] = accepted(venue, venue.cancel("alice", order))
    assert of_type(cancelled, OrderCancelled)
    accepted(venue, venue.deposit("dave", 5_000 * USDC))
    accepted(venue, venue.cancel_all("dave"))
    accepted(venue, venue.withdraw("dave", 10_000 * USDC))  # no order left: no price needed
    accepted(venue, venue.withdraw("bob", 1_000 * USDC))  # bob/0: his BTC risk is in bob/1
    accepted(venue, venue.transfer("bob", 1_000 * USDC, source=0, target=2))
    assert book.get(reduce_only) is not None


def test_nothing_is_liquidated_however_long_the_quorum_is_missing() -> None:
    venue, reduce_only = degraded_venue()
    position = venue.position("bob", BTC_PERP, 1)
    seen = []
    for _ in range(30):  # 3 minutes, far past the keepers' grace: the protocol stays still
        result = venue.block(dt_ns=6 * NS_PER_SECOND)
        seen += result.events
    assert not of_type(seen, Liquidated)
    assert not of_type(seen, OrderFilled)
    assert venue.position("bob", BTC_PERP, 1) == position
    assert venue.state.markets[MarketId(BTC_PERP)].book.get(reduce_only) is not None
    assert venue.state.oracles[BTC_USD].status is PriceStatus.STALE
    # The publishers come back: after the restart guard's fresh blocks and the keepers'
    # grace, the ladder resumes on the new price (alice requotes around it).
    venue.silent = set()
    for _ in range(2):
        seen += venue.block().events
    assert venue.state.oracles[BTC_USD].is_usable()
    assert venue.index() == CRASH
    accepted(venue, venue.cancel_all("alice"))
    quote(venue, "alice", CRASH, size=ONE_BTC)
    for _ in range(25):
        seen += venue.block().events
    assert of_type(seen, Liquidated)
