"""Unit and stateful tests of the order book (``clearhouse.core.matching``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from clearhouse.core import limits, matching
from clearhouse.core.ids import Address, OrderId, Side, SubaccountId
from clearhouse.core.matching import MatchPlan, OrderBook, PlannedFill, RestingOrder

ALICE = SubaccountId(Address("0x" + "a1" * 20), 0)
BOB = SubaccountId(Address("0x" + "b2" * 20), 0)
CAROL = SubaccountId(Address("0x" + "c3" * 20), 1)
TAKER = SubaccountId(Address("0x" + "d4" * 20), 7)

BUY, SELL = Side.BUY, Side.SELL


def resting(
    order_id: int, side: Side, price: int, size: int, owner: SubaccountId = ALICE
) -> RestingOrder:
    return RestingOrder(OrderId(order_id), owner, side, price, size)


def book_of(*orders: RestingOrder) -> OrderBook:
    book = OrderBook()
    for order in orders:
        book.add(order)
    book.check_invariants()
    return book


def fill_ids(plan: MatchPlan) -> list[int]:
    return [int(fill.maker_order_id) for fill in plan.fills]


def fill_sizes(plan: MatchPlan) -> list[int]:
    return [fill.size_base_quantums for fill in plan.fills]


def snapshot(book: OrderBook) -> list[dict[str, int | str | bool]]:
    return [order.encode() for order in book.orders()]


def buy_plan(book: OrderBook, limit: int, size: int, **kwargs: object) -> MatchPlan:
    return book.plan(
        side=BUY,
        limit_price_quantums=limit,
        size_base_quantums=size,
        owner=TAKER,
        **kwargs,  # type: ignore[arg-type]
    )


# Basic state.


def test_empty_book() -> None:
    book = OrderBook()
    assert len(book) == 0
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert not book.would_cross(BUY, limits.price_quantums_max)
    assert not book.would_cross(SELL, 1)
    assert buy_plan(book, limits.price_quantums_max, 10).fills == ()
    assert book.depth(BUY, 5) == []
    assert book.impact_price(BUY, 1_000, 10) is None
    assert list(book.orders()) == []
    book.check_invariants()


def test_add_get_contains_and_best_prices() -> None:
    book = book_of(resting(1, BUY, 99, 5), resting(2, BUY, 98, 5), resting(3, SELL, 101, 5))
    assert len(book) == 3
    assert OrderId(1) in book
    assert OrderId(4) not in book
    assert book.get(OrderId(2)) == resting(2, BUY, 98, 5)
    assert book.get(OrderId(4)) is None
    assert book.best_bid() == 99
    assert book.best_ask() == 101


def test_would_cross() -> None:
    book = book_of(resting(1, BUY, 99, 5), resting(2, SELL, 101, 5))
    assert book.would_cross(BUY, 101)
    assert book.would_cross(BUY, 150)
    assert not book.would_cross(BUY, 100)
    assert book.would_cross(SELL, 99)
    assert not book.would_cross(SELL, 100)


def test_add_asserts_on_crossing_duplicates_and_bad_sizes() -> None:
    book = book_of(resting(1, BUY, 99, 5), resting(2, SELL, 101, 5))
    with pytest.raises(AssertionError):
        book.add(resting(3, BUY, 101, 5))
    with pytest.raises(AssertionError):
        book.add(resting(3, SELL, 99, 5))
    with pytest.raises(AssertionError):
        book.add(resting(1, BUY, 98, 5))
    with pytest.raises(AssertionError):
        book.add(resting(3, BUY, 98, 0))
    with pytest.raises(AssertionError):
        book.add(resting(3, BUY, 0, 1))
    assert len(book) == 2
    book.check_invariants()


def test_encode_is_plain_and_canonical() -> None:
    order = RestingOrder(OrderId(7), CAROL, SELL, 101, 5, reduce_only=True, good_til_ns=9)
    assert order.encode() == {
        "order_id": 7,
        "owner": "0x" + "c3" * 20 + "/1",
        "side": -1,
        "price_quantums": 101,
        "remaining_base_quantums": 5,
        "reduce_only": True,
        "good_til_ns": 9,
        "client_order_id": 0,
        "post_only": False,
        "sequence": 0,
    }


def test_orders_iterate_by_order_id() -> None:
    book = book_of(resting(5, BUY, 90, 1), resting(2, SELL, 110, 1), resting(9, BUY, 95, 1))
    assert [int(order.order_id) for order in book.orders()] == [2, 5, 9]


# Matching.


def test_price_then_time_priority() -> None:
    book = book_of(
        resting(1, SELL, 100, 5, ALICE),
        resting(2, SELL, 100, 5, BOB),
        resting(3, SELL, 99, 5, CAROL),
    )
    plan = buy_plan(book, 100, 15)
    assert fill_ids(plan) == [3, 1, 2]
    assert [fill.price_quantums for fill in plan.fills] == [99, 100, 100]
    assert [fill.maker_owner for fill in plan.fills] == [CAROL, ALICE, BOB]
    assert plan.filled_base_quantums == 15
    assert plan.self_trade_cancels == ()


def test_sell_walks_bids_best_first() -> None:
    book = book_of(resting(1, BUY, 98, 5), resting(2, BUY, 99, 5), resting(3, BUY, 97, 5))
    plan = book.plan(side=SELL, limit_price_quantums=98, size_base_quantums=8, owner=TAKER)
    assert fill_ids(plan) == [2, 1]
    assert fill_sizes(plan) == [5, 3]
    assert plan.remaining_base_quantums(8) == 0


def test_partial_fill_keeps_the_maker_at_the_front() -> None:
    book = book_of(resting(1, SELL, 100, 10), resting(2, SELL, 100, 10))
    plan = buy_plan(book, 100, 4)
    assert fill_ids(plan) == [1]
    assert fill_sizes(plan) == [4]
    maker = book.apply_fill(OrderId(1), 4)
    assert maker.remaining_base_quantums == 6
    assert OrderId(1) in book
    assert book.depth(SELL, 1) == [(100, 16)]
    assert fill_ids(buy_plan(book, 100, 7)) == [1, 2]
    book.check_invariants()


def test_walk_stops_at_the_limit_price_and_visits_every_level_before_it() -> None:
    book = book_of(*(resting(i, SELL, 100 + i, 1) for i in range(1, 6)))
    plan = buy_plan(book, 103, 100)
    assert fill_ids(plan) == [1, 2, 3]
    assert plan.filled_base_quantums == 3
    assert plan.remaining_base_quantums(100) == 97


def test_limit_that_does_not_cross_meets_nothing() -> None:
    book = book_of(resting(1, SELL, 101, 1), resting(2, BUY, 99, 1))
    assert buy_plan(book, 100, 5) == MatchPlan(
        fills=(), self_trade_cancels=(), filled_base_quantums=0
    )
    plan = book.plan(side=SELL, limit_price_quantums=100, size_base_quantums=5, owner=TAKER)
    assert plan.fills == ()


def test_self_trade_prevention_cancels_the_resting_order_and_continues() -> None:
    book = book_of(
        resting(1, SELL, 100, 5, TAKER),
        resting(2, SELL, 100, 5, ALICE),
        resting(3, SELL, 101, 5, TAKER),
        resting(4, SELL, 101, 5, BOB),
    )
    plan = buy_plan(book, 101, 8)
    assert plan.self_trade_cancels == (OrderId(1), OrderId(3))
    assert fill_ids(plan) == [2, 4]
    assert fill_sizes(plan) == [5, 3]


def test_self_trade_prevention_is_bounded() -> None:
    book = book_of(
        *(resting(i, SELL, 100, 1, TAKER) for i in range(1, 5)), resting(9, SELL, 100, 1)
    )
    plan = buy_plan(book, 100, 5, max_self_trade_cancels=2)
    assert plan.self_trade_cancels == (OrderId(1), OrderId(2))
    assert plan.fills == ()
    assert plan.filled_base_quantums == 0


def test_self_trade_needs_the_same_subaccount_not_only_the_same_address() -> None:
    sibling = SubaccountId(TAKER.owner, TAKER.number + 1)
    book = book_of(resting(1, SELL, 100, 5, sibling))
    plan = buy_plan(book, 100, 5)
    assert fill_ids(plan) == [1]
    assert plan.self_trade_cancels == ()


def test_reduce_only_makers_past_flat_are_skipped_in_one_walk() -> None:
    """ALICE may reduce 5 in all: her first reduce-only ask fills 3, the next (3 > 2 left) is
    skipped, the next (2) fills; a plain ask of hers counts against what is left too. BOB's
    plain ask behind them fills the rest. Without ``reducible`` nothing is skipped."""

    def ro(order_id: int, size: int, owner: SubaccountId = ALICE) -> RestingOrder:
        return dataclasses.replace(resting(order_id, SELL, 100, size, owner), reduce_only=True)

    book = book_of(ro(1, 3), ro(2, 3), ro(3, 2), ro(4, 1), resting(5, SELL, 100, 9, BOB))
    asked: list[SubaccountId] = []

    def reducible(owner: SubaccountId) -> int:
        asked.append(owner)
        return 5 if owner == ALICE else 0

    plan = buy_plan(book, 100, 10, reducible=reducible)
    assert fill_ids(plan) == [1, 3, 5]
    assert fill_sizes(plan) == [3, 2, 5]
    assert plan.reduce_only_cancels == (OrderId(2), OrderId(4))
    assert asked == [ALICE, BOB]  # once per maker
    assert fill_ids(buy_plan(book, 100, 10)) == [1, 2, 3, 4, 5]


def test_reduce_only_cancels_are_listed_up_to_their_bound_and_the_walk_goes_on() -> None:
    """Past the bound, makers past flat are still skipped (they stay resting), and the walk
    reaches the liquidity behind them."""
    most = limits.reduce_only_cancels_per_order_max
    wall = [
        dataclasses.replace(resting(i, SELL, 100, 1), reduce_only=True)
        for i in range(1, most + 3)
    ]  # fmt: skip
    book = book_of(*wall, resting(most + 9, SELL, 100, 5, BOB))
    plan = buy_plan(book, 100, 5, reducible=lambda owner: 1 if owner == ALICE else 0)
    assert fill_ids(plan) == [1, most + 9]
    assert plan.reduce_only_cancels == tuple(OrderId(i) for i in range(2, most + 2))
    assert plan.filled_base_quantums == 5


def test_excluded_orders_are_skipped() -> None:
    book = book_of(resting(1, SELL, 100, 5), resting(2, SELL, 100, 5), resting(3, SELL, 101, 5))
    plan = buy_plan(book, 101, 10, excluded=frozenset({OrderId(1), OrderId(3)}))
    assert fill_ids(plan) == [2]
    assert plan.filled_base_quantums == 5


def test_max_fills_bounds_the_walk() -> None:
    book = book_of(*(resting(i, SELL, 100 + i % 3, 1) for i in range(1, 11)))
    plan = buy_plan(book, 200, 10, max_fills=4)
    assert len(plan.fills) == 4
    assert plan.filled_base_quantums == 4
    with pytest.raises(AssertionError):
        buy_plan(book, 200, 10, max_fills=limits.fills_per_order_max + 1)


def test_plan_does_not_mutate_the_book() -> None:
    book = book_of(
        resting(1, SELL, 100, 5, TAKER),
        resting(2, SELL, 100, 5),
        resting(3, SELL, 101, 5),
        resting(4, BUY, 95, 5),
    )
    before = (snapshot(book), book.depth(SELL, 10), book.depth(BUY, 10), len(book))
    plan = buy_plan(book, 101, 8)
    assert plan.filled_base_quantums == 8
    assert (snapshot(book), book.depth(SELL, 10), book.depth(BUY, 10), len(book)) == before
    book.check_invariants()


def test_planned_values_are_frozen_and_equal_to_plain_construction() -> None:
    book = book_of(resting(1, SELL, 100, 5))
    plan = buy_plan(book, 100, 3)
    assert plan == MatchPlan(
        fills=(PlannedFill(OrderId(1), ALICE, 100, 3),),
        self_trade_cancels=(),
        filled_base_quantums=3,
    )
    assert hash(plan.fills[0]) == hash(PlannedFill(OrderId(1), ALICE, 100, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.fills[0].size_base_quantums = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.filled_base_quantums = 1  # type: ignore[misc]


# Mutations.


def test_apply_fill_removes_a_filled_order_and_its_level() -> None:
    book = book_of(resting(1, SELL, 100, 5), resting(2, SELL, 101, 5))
    order = book.apply_fill(OrderId(1), 5)
    assert order.remaining_base_quantums == 0
    assert OrderId(1) not in book
    assert book.best_ask() == 101
    assert book.depth(SELL, 5) == [(101, 5)]
    with pytest.raises(AssertionError):
        book.apply_fill(OrderId(2), 6)
    with pytest.raises(AssertionError):
        book.apply_fill(OrderId(2), 0)
    book.check_invariants()


def test_remove() -> None:
    book = book_of(resting(1, BUY, 99, 5), resting(2, BUY, 99, 3), resting(3, BUY, 98, 1))
    removed = book.remove(OrderId(1))
    assert removed.order_id == OrderId(1)
    assert book.depth(BUY, 5) == [(99, 3), (98, 1)]
    book.remove(OrderId(2))
    assert book.best_bid() == 98
    book.remove(OrderId(3))
    assert book.best_bid() is None
    assert len(book) == 0
    with pytest.raises(KeyError):
        book.remove(OrderId(3))
    book.check_invariants()


def test_resize_keeps_time_priority() -> None:
    book = book_of(resting(1, SELL, 100, 10), resting(2, SELL, 100, 10))
    book.resize(OrderId(1), 4)
    book.check_invariants()
    assert book.depth(SELL, 1) == [(100, 14)]
    assert fill_ids(buy_plan(book, 100, 5)) == [1, 2]
    assert fill_sizes(buy_plan(book, 100, 5)) == [4, 1]
    with pytest.raises(AssertionError):
        book.resize(OrderId(1), 5)
    with pytest.raises(AssertionError):
        book.resize(OrderId(1), 0)


def test_successor_and_insert_before_restore_time_priority() -> None:
    book = book_of(resting(1, SELL, 100, 1), resting(2, SELL, 100, 2), resting(3, SELL, 100, 3))
    assert book.successor(OrderId(1)) == OrderId(2)
    assert book.successor(OrderId(3)) is None
    before = (snapshot(book), fill_ids(buy_plan(book, 100, 6)))
    for order_id in (1, 2, 3):
        successor = book.successor(OrderId(order_id))
        order = book.remove(OrderId(order_id))
        book.insert_before(order, successor)
        book.check_invariants()
        assert (snapshot(book), fill_ids(buy_plan(book, 100, 6))) == before
    lonely = book_of(resting(9, BUY, 90, 1))
    order = lonely.remove(OrderId(9))
    lonely.insert_before(order, None)
    assert lonely.depth(BUY, 1) == [(90, 1)]
    with pytest.raises(AssertionError):
        book.insert_before(resting(4, SELL, 101, 1), OrderId(2))


def test_book_full_is_asserted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "_ORDERS_MAX", 2)
    book = book_of(resting(1, BUY, 99, 1), resting(2, BUY, 98, 1))
    with pytest.raises(AssertionError):
        book.add(resting(3, BUY, 97, 1))


# Depth and impact price.


def test_depth_aggregates_levels_best_first() -> None:
    book = book_of(
        resting(1, BUY, 99, 5),
        resting(2, BUY, 99, 2),
        resting(3, BUY, 97, 1),
        resting(4, BUY, 98, 4),
        resting(5, SELL, 102, 3),
        resting(6, SELL, 101, 6),
    )
    assert book.depth(BUY, 10) == [(99, 7), (98, 4), (97, 1)]
    assert book.depth(BUY, 2) == [(99, 7), (98, 4)]
    assert book.depth(SELL, 10) == [(101, 6), (102, 3)]
    assert book.depth(SELL, 0) == []


def impact_book() -> OrderBook:
    # 10 base quantums per whole unit; prices are quote quantums per whole unit.
    return book_of(
        resting(1, SELL, 1_000, 20),  # 2 units, notional 20 * 1000 // 10 = 2000
        resting(2, SELL, 1_010, 30),  # 3 units, notional 30 * 1010 // 10 = 3030
        resting(3, BUY, 990, 20),  # notional 1980
        resting(4, BUY, 980, 50),  # notional 4900
    )


def test_impact_price_buy_rounds_up() -> None:
    # 3000 of quote: all of level 1000 (2000), then ceil(1000 * 10 / 1010) = 10 at 1010.
    # Average (20 * 1000 + 10 * 1010) / 30 = 30100 / 30 = 1003.33.. -> 1004 (against the buyer).
    assert impact_book().impact_price(BUY, 3_000, 10) == 1_004


def test_impact_price_sell_rounds_down() -> None:
    # 3000 of quote: all of level 990 (1980), then ceil(1020 * 10 / 980) = 11 at 980.
    # Average (20 * 990 + 11 * 980) / 31 = 30580 / 31 = 986.45.. -> 986 (against the seller).
    assert impact_book().impact_price(SELL, 3_000, 10) == 986


def test_impact_price_exact_depth_and_not_enough_depth() -> None:
    book = impact_book()
    # Exactly both ask levels: (20 * 1000 + 30 * 1010) / 50 = 1006.
    assert book.impact_price(BUY, 5_030, 10) == 1_006
    assert book.impact_price(BUY, 5_031, 10) is None
    assert book.impact_price(SELL, 6_881, 10) is None
    # Inside the best level the impact price is the best price.
    assert book.impact_price(BUY, 1, 10) == 1_000
    assert book.impact_price(SELL, 1, 10) == 990


# Stateful test against a reference model.


@dataclass
class ModelOrder:
    seq: int
    order_id: int
    owner: SubaccountId
    side: Side
    price: int
    remaining: int


OWNERS = (ALICE, BOB, CAROL)
prices = st.integers(min_value=95, max_value=105)
sizes = st.integers(min_value=1, max_value=20)
sides = st.sampled_from([BUY, SELL])
owners = st.sampled_from(OWNERS)


def model_plan(
    model: list[ModelOrder],
    *,
    side: Side,
    limit: int,
    size: int,
    owner: SubaccountId,
    excluded: frozenset[int],
    max_fills: int,
    max_cancels: int,
) -> tuple[list[tuple[int, int, int]], list[int]]:
    """The plan, re-derived by sorting: (maker id, price, size) fills and STP cancels."""
    if side is BUY:
        makers = sorted(
            (o for o in model if o.side is SELL and o.price <= limit),
            key=lambda o: (o.price, o.seq),
        )
    else:
        makers = sorted(
            (o for o in model if o.side is BUY and o.price >= limit),
            key=lambda o: (-o.price, o.seq),
        )
    fills: list[tuple[int, int, int]] = []
    cancels: list[int] = []
    remaining = size
    for maker in makers:
        if remaining == 0 or len(fills) == max_fills or len(cancels) == max_cancels:
            break
        if maker.order_id in excluded:
            continue
        if maker.owner == owner:
            cancels.append(maker.order_id)
            continue
        take = min(remaining, maker.remaining)
        fills.append((maker.order_id, maker.price, take))
        remaining -= take
    return fills, cancels


class BookMachine(RuleBasedStateMachine):
    """Random place/cancel/resize/plan against a list-of-orders model; invariants every step."""

    order_ids = Bundle("order_ids")

    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook()
        self.model: list[ModelOrder] = []
        self.next_id = 1
        self.seq = 0

    def find(self, order_id: int) -> ModelOrder | None:
        return next((o for o in self.model if o.order_id == order_id), None)

    def check_plan(
        self, plan: MatchPlan, expected: tuple[list[tuple[int, int, int]], list[int]]
    ) -> None:
        fills, cancels = expected
        assert [
            (int(f.maker_order_id), f.price_quantums, f.size_base_quantums) for f in plan.fills
        ] == fills
        assert [int(c) for c in plan.self_trade_cancels] == cancels
        assert plan.filled_base_quantums == sum(size for _, _, size in fills)
        for fill in plan.fills:
            maker = self.find(int(fill.maker_order_id))
            assert maker is not None
            assert fill.maker_owner == maker.owner

    @rule(target=order_ids, side=sides, price=prices, size=sizes, owner=owners)
    def place(self, side: Side, price: int, size: int, owner: SubaccountId) -> int:
        """The engine's flow: plan, cancel self-trades, apply fills, rest the remainder."""
        order_id = self.next_id
        self.next_id += 1
        plan = self.book.plan(
            side=side, limit_price_quantums=price, size_base_quantums=size, owner=owner
        )
        expected = model_plan(
            self.model,
            side=side,
            limit=price,
            size=size,
            owner=owner,
            excluded=frozenset(),
            max_fills=limits.fills_per_order_max,
            max_cancels=limits.stp_cancels_per_order_max,
        )
        self.check_plan(plan, expected)
        for cancelled in plan.self_trade_cancels:
            self.book.remove(cancelled)
            self.model = [o for o in self.model if o.order_id != cancelled]
        for fill in plan.fills:
            order = self.book.apply_fill(fill.maker_order_id, fill.size_base_quantums)
            maker = self.find(int(fill.maker_order_id))
            assert maker is not None
            maker.remaining -= fill.size_base_quantums
            assert order.remaining_base_quantums == maker.remaining
            if maker.remaining == 0:
                self.model.remove(maker)
        remaining = plan.remaining_base_quantums(size)
        if remaining > 0:
            assert not self.book.would_cross(side, price)
            self.book.add(RestingOrder(OrderId(order_id), owner, side, price, remaining))
            self.seq += 1
            self.model.append(ModelOrder(self.seq, order_id, owner, side, price, remaining))
        return order_id

    @rule(order_id=consumes(order_ids))
    def cancel(self, order_id: int) -> None:
        maker = self.find(order_id)
        if maker is None:
            assert OrderId(order_id) not in self.book
            return
        removed = self.book.remove(OrderId(order_id))
        assert removed.remaining_base_quantums == maker.remaining
        self.model.remove(maker)

    @rule(order_id=order_ids, data=st.data())
    def resize(self, order_id: int, data: st.DataObject) -> None:
        maker = self.find(order_id)
        if maker is None:
            return
        new_size = data.draw(st.integers(min_value=1, max_value=maker.remaining))
        self.book.resize(OrderId(order_id), new_size)
        maker.remaining = new_size

    @rule(order_id=order_ids)
    def take_out_and_put_back(self, order_id: int) -> None:
        """A rejected amend: the order goes back exactly where it was; the model is unchanged."""
        if self.find(order_id) is None:
            return
        successor = self.book.successor(OrderId(order_id))
        order = self.book.remove(OrderId(order_id))
        self.book.insert_before(order, successor)

    @precondition(lambda self: len(self.model) > 0)
    @rule(
        side=sides,
        price=prices,
        size=sizes,
        owner=owners,
        max_fills=st.integers(min_value=1, max_value=4),
        max_cancels=st.integers(min_value=1, max_value=3),
        data=st.data(),
    )
    def pure_plan(
        self,
        side: Side,
        price: int,
        size: int,
        owner: SubaccountId,
        max_fills: int,
        max_cancels: int,
        data: st.DataObject,
    ) -> None:
        """Bounded and filtered plans match the model and leave the book untouched."""
        ids = sorted(o.order_id for o in self.model)
        excluded = frozenset(data.draw(st.sets(st.sampled_from(ids), max_size=3)))
        before = snapshot(self.book)
        plan = self.book.plan(
            side=side,
            limit_price_quantums=price,
            size_base_quantums=size,
            owner=owner,
            excluded=frozenset(OrderId(i) for i in excluded),
            max_fills=max_fills,
            max_self_trade_cancels=max_cancels,
        )
        expected = model_plan(
            self.model,
            side=side,
            limit=price,
            size=size,
            owner=owner,
            excluded=excluded,
            max_fills=max_fills,
            max_cancels=max_cancels,
        )
        self.check_plan(plan, expected)
        assert snapshot(self.book) == before

    @invariant()
    def book_matches_model(self) -> None:
        self.book.check_invariants()
        assert len(self.book) == len(self.model)
        total = sum(order.remaining_base_quantums for order in self.book.orders())
        assert total == sum(o.remaining for o in self.model)
        bids = [o.price for o in self.model if o.side is BUY]
        asks = [o.price for o in self.model if o.side is SELL]
        assert self.book.best_bid() == (max(bids) if bids else None)
        assert self.book.best_ask() == (min(asks) if asks else None)
        for side, orders in ((BUY, bids), (SELL, asks)):
            levels = sorted(set(orders), reverse=side is BUY)
            expected = [
                (p, sum(o.remaining for o in self.model if o.side is side and o.price == p))
                for p in levels
            ]
            assert self.book.depth(side, len(levels) + 1) == expected


BookMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookMachine = BookMachine.TestCase
