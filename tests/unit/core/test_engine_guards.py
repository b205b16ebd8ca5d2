"""Guards added after review: each one fails if its guard is taken out."""

from __future__ import annotations

import dataclasses

from clearhouse.core import limits
from clearhouse.core.engine.leaves import order_leaf
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, OracleId, Side
from clearhouse.core.merkle import leaf_hash
from clearhouse.core.messages import (
    CommandRejected,
    Event,
    ListOracle,
    OrderCancelled,
    OrderRested,
    OrderTriggered,
    OrderType,
    TimeInForce,
)
from clearhouse.core.params import OracleParams, Publisher
from clearhouse.core.state import encode_leaf, order_key
from clearhouse.core.units import NS_PER_SECOND
from helpers import BTC_PERP, USDC, Venue

PRICE = 60_000 * USDC
ONE_BTC = 100_000_000
BUY, SELL = Side.BUY, Side.SELL


def _reason(events: list[Event]) -> RejectReason | None:
    rejections = [e for e in events if isinstance(e, CommandRejected)]
    return rejections[0].reason if rejections else None


def test_a_fired_take_profit_limit_must_be_inside_the_band(venue: Venue) -> None:
    # A buy take-profit whose limit is far above where the index will be when it fires.
    take_profit = venue.order(
        "alice", BTC_PERP, BUY, ONE_BTC, 65_000 * USDC, order_type=OrderType.TAKE_PROFIT_LIMIT,
        trigger_price_quantums=56_000 * USDC,
    )  # fmt: skip
    assert _reason(venue.run(take_profit)) is None
    prologue = venue.settle_prices(BTC_USD=55_000 * USDC).prologue
    cancelled = [e for e in prologue if isinstance(e, OrderCancelled)]
    assert [c.cause.name for c in cancelled] == ["TRIGGER_REJECTED"]
    assert len(venue.state.markets[BTC_PERP].book) == 0


def test_the_expiry_heap_stays_bounded_by_live_orders(venue: Venue) -> None:
    good_til = venue.now + 3_600 * NS_PER_SECOND
    for _ in range(3):
        orders = [
            venue.order(
                "alice", BTC_PERP, BUY, ONE_BTC // 100, PRICE - (i + 1) * USDC,
                time_in_force=TimeInForce.GTT, good_til_ns=good_til,
            )
            for i in range(40)
        ]  # fmt: skip
        venue.block(orders)
        venue.block([venue.cancel_all("alice")])
    market = venue.state.markets[BTC_PERP]
    assert len(market.book) == 0
    assert len(market.expiries) <= 64 + 40  # compacted, not 120 dead entries


def test_each_subaccount_may_arm_only_a_few_triggers(venue: Venue) -> None:
    def stop(i: int) -> object:
        return venue.order(
            "bob", BTC_PERP, SELL, ONE_BTC // 100, 0, order_type=OrderType.STOP_MARKET,
            trigger_price_quantums=50_000 * USDC - i * USDC, time_in_force=TimeInForce.IOC,
            slippage_ppm=10_000,
        )  # fmt: skip

    venue.block([stop(i) for i in range(limits.trigger_orders_per_subaccount_max)])
    assert len(venue.state.markets[BTC_PERP].triggers) == limits.trigger_orders_per_subaccount_max
    assert _reason(venue.run(stop(99))) is RejectReason.TOO_MANY_OPEN_ORDERS  # type: ignore[arg-type]


def test_the_triggers_one_block_fires_walk_a_bounded_part_of_the_book(venue: Venue) -> None:
    """A fired trigger's match was bounded only by one order's (1,000 makers, each one's margin
    checked), and a block fired 1,000 of them: 1,024 stop-market buys armed by one account
    (0.14 ms each, 1 USDC a subaccount) through a wall of 1,000 one-lot asks that their owner
    could not carry held one block for 34.9 s when the mark reached them. A block now fires
    triggers only while their matches have walked less than
    ``trigger_book_walk_per_block_max`` makers' orders; the rest stay armed and fire first in
    the blocks after, in id order."""
    lot = 100_000
    walk = limits.trigger_book_walk_per_block_max // 4  # asks each trigger meets
    venue.check = False  # the wall's placements: only the triggers matter here
    venue.block([venue.deposit("bob", 10_000 * USDC, number=k) for k in (1, 2, 3, 4)]
                + [venue.deposit("carol", USDC, number=1)])  # fmt: skip
    asks = [venue.order("bob", BTC_PERP, SELL, lot, PRICE + (i + 1) * lot, number=1 + i % 4)
            for i in range(walk)]  # fmt: skip
    venue.block(asks)
    assert len(venue.state.markets[BTC_PERP].book) == walk
    stops = [
        venue.order("carol", BTC_PERP, BUY, 1_000 * lot, 0, number=1,
                    order_type=OrderType.STOP_MARKET, time_in_force=TimeInForce.IOC,
                    trigger_price_quantums=PRICE + USDC + i * lot, slippage_ppm=50_000)
        for i in range(10)
    ]  # fmt: skip
    venue.block(stops)
    market = venue.state.markets[BTC_PERP]
    armed = sorted(market.triggers)
    assert len(armed) == 10
    venue.check = True
    venue.prices[OracleId("BTC-USD")] = PRICE * 1005 // 1000
    fired: list[list[int]] = []
    for _ in range(6):
        prologue = venue.block().prologue
        fired.append([int(e.order_id) for e in prologue if isinstance(e, OrderTriggered)])
    assert [len(f) for f in fired if f] == [4, 4, 2]  # each walks a quarter of the budget
    assert [o for f in fired for o in f] == armed  # all of them, in id order
    assert not market.triggers
    assert len(market.book) == walk  # carol could carry none of them


def test_listed_ids_may_not_reach_into_other_keys(venue: Venue) -> None:
    params = OracleParams(
        oracle_id=OracleId("BTC-USD/twap/5"),
        publishers=tuple(Publisher(address=a) for a in venue.spec.publishers),
    )
    venue.operator.last_nonce = max(venue.operator.last_nonce, venue.now // 1_000_000)
    command = ListOracle(
        signer=venue.operator.address, nonce=venue.operator.nonce(venue.now + NS_PER_SECOND),
        expiry_ns=venue.now + 60 * NS_PER_SECOND, params=params,
    )  # fmt: skip
    assert _reason(venue.run(command)) is RejectReason.INVALID_PARAMETERS
    renamed = dataclasses.replace(
        command, params=dataclasses.replace(params, oracle_id=OracleId("SOL-USD")),
        nonce=venue.operator.nonce(venue.now + NS_PER_SECOND),
    )  # fmt: skip
    assert _reason(venue.run(renamed)) is None


def test_time_priority_is_committed_in_each_order_leaf(venue: Venue) -> None:
    first = venue.run(venue.order("alice", BTC_PERP, BUY, ONE_BTC, PRICE - USDC))
    second = venue.run(venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE - USDC))
    ids = [next(e for e in ev if isinstance(e, OrderRested)).order_id for ev in (first, second)]
    leaves = [encode_leaf(order_leaf(venue.engine.ctx, i)) for i in ids]
    tree = venue.state.tree
    assert [tree.leaf(order_key(i)) for i in ids] == [
        leaf_hash(order_key(i), leaf) for i, leaf in zip(ids, leaves, strict=True)
    ]
    sequences = [int(leaf.split(b'"sequence":')[1].split(b",")[0].rstrip(b"}")) for leaf in leaves]
    assert sequences[0] < sequences[1]
    book = venue.state.markets[MarketId(BTC_PERP)].book
    assert [o.sequence for o in book.orders()] == sequences
