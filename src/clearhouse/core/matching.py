"""The central limit order book of one market: price-time priority with self-trade prevention.

Matching knows nothing about balances, margin, positions or the ledger. It answers questions and
performs four small mutations:

* ``plan`` is pure: it walks the opposite side in price-time priority and says which resting
  orders a taker would meet. The engine margin-checks the plan, may exclude makers and plan
  again, and only then mutates the book with ``apply_fill``/``remove``/``add``. Splitting the
  question from the mutation is what lets a rejected command leave the book untouched.
* ``add`` rests an order at the back of its level, ``remove`` cancels one, ``resize`` shrinks one
  in place (keeping its time priority), ``apply_fill`` takes size from one.

Layout (chosen for speed, the book is benchmarked): per side, a ``SortedList`` of the prices that
have at least one order, the best price cached, and a dict price -> ``_Level``. A level is an
insertion-ordered dict order id -> order (time priority is dict order) that also caches its total
size. An index order id -> order makes a cancel O(log n): dict pops, plus a sorted-list removal
only when a level empties.

Prices are ``PriceQuantums`` (quote quantums per whole base unit), sizes ``BaseQuantums``.
Every iteration is over insertion-ordered dicts or sorted prices: the book is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedList

from clearhouse.core import limits
from clearhouse.core.ids import OrderId, Side, SubaccountId
from clearhouse.core.units import div_ceil, div_floor

_BUY = Side.BUY
_SELL = Side.SELL
_ORDERS_MAX = limits.orders_per_book_max
_FILLS_MAX = limits.fills_per_order_max
_STP_CANCELS_MAX = limits.stp_cancels_per_order_max
_REDUCE_ONLY_CANCELS_MAX = limits.reduce_only_cancels_per_order_max
_PRICE_MAX = limits.price_quantums_max
_SIZE_MAX = limits.size_base_quantums_max

# Cached best prices of an empty side. Every real price is in [1, _PRICE_MAX], so an empty bid
# side never crosses (no price is <= 0) and an empty ask side never crosses (none is > max).
_NO_BID = 0
_NO_ASK = _PRICE_MAX + 1


@dataclass(slots=True)
class RestingOrder:
    """An order resting in the book. Only the book mutates ``remaining_base_quantums``."""

    order_id: OrderId
    owner: SubaccountId
    side: Side
    price_quantums: int
    remaining_base_quantums: int
    reduce_only: bool = False
    good_til_ns: int = 0  # 0 = no expiry
    client_order_id: int = 0
    post_only: bool = False  # kept so that an amended post-only order stays post-only
    sequence: int = 0  # time priority as committed in state: FIFO within a level follows it

    def encode(self) -> dict[str, int | str | bool]:
        """A canonical plain dict, so that the state hash does not depend on Python objects."""
        return {
            "order_id": int(self.order_id),
            "owner": str(self.owner),
            "side": int(self.side),
            "price_quantums": self.price_quantums,
            "remaining_base_quantums": self.remaining_base_quantums,
            "reduce_only": self.reduce_only,
            "good_til_ns": self.good_til_ns,
            "client_order_id": self.client_order_id,
            "post_only": self.post_only,
            "sequence": self.sequence,
        }


@dataclass(frozen=True, slots=True)
class PlannedFill:
    """One maker a taker would meet. The price is always the maker's: the maker set it first."""

    maker_order_id: OrderId
    maker_owner: SubaccountId
    price_quantums: int
    size_base_quantums: int


@dataclass(frozen=True, slots=True)
class MatchPlan:
    """What a taker would do to the book, computed without touching it.

    ``self_trade_cancels`` are the taker's own resting orders met on the way: self-trade
    prevention cancels the resting order and the taker keeps matching past it. So are
    ``reduce_only_cancels``: reduce-only makers whose fill would take their owner past flat
    (asked with ``reducible``), skipped and cancelled.
    """

    fills: tuple[PlannedFill, ...]
    self_trade_cancels: tuple[OrderId, ...]
    filled_base_quantums: int
    reduce_only_cancels: tuple[OrderId, ...] = ()

    def remaining_base_quantums(self, size_base_quantums: int) -> int:
        """What is left of a taker of ``size_base_quantums`` after this plan."""
        assert 0 <= self.filled_base_quantums <= size_base_quantums, size_base_quantums
        return size_base_quantums - self.filled_base_quantums


_EMPTY_PLAN = MatchPlan(fills=(), self_trade_cancels=(), filled_base_quantums=0)
_NO_IDS: frozenset[OrderId] = frozenset()


def _slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot descriptors' setters of a frozen dataclass, in field order.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (slow: it
    is a Python-level call per field). The hot path builds ``PlannedFill``/``MatchPlan`` values by
    setting the slots directly, which yields the same frozen value at about half the cost.
    """
    names: tuple[str, ...] = cls.__match_args__  # type: ignore[attr-defined]
    return tuple(vars(cls)[name].__set__ for name in names)


# ``cls.__new__`` is ``object.__new__`` in the pure build; a class compiled by mypyc has its own
# allocator, and refuses ``object.__new__``.
_new_fill = PlannedFill.__new__
_new_plan = MatchPlan.__new__
_fill_setters = _slot_setters(PlannedFill)
_plan_setters = _slot_setters(MatchPlan)
assert len(_fill_setters) == 4, "PlannedFill fields changed: update _walk"
assert len(_plan_setters) == 4, "MatchPlan fields changed: update _match_plan"


def _match_plan(
    fills: tuple[PlannedFill, ...], cancels: tuple[OrderId, ...], filled: int,
    reduce_only_cancels: tuple[OrderId, ...],
) -> MatchPlan:  # fmt: skip
    """``MatchPlan(fills, cancels, filled, reduce_only_cancels)``, built fast (see
    ``_slot_setters``)."""
    plan: MatchPlan = _new_plan(MatchPlan)
    set_fills, set_cancels, set_filled, set_reduce_only_cancels = _plan_setters
    set_fills(plan, fills)
    set_cancels(plan, cancels)
    set_filled(plan, filled)
    set_reduce_only_cancels(plan, reduce_only_cancels)
    return plan


class _Level(dict[OrderId, RestingOrder]):
    """The orders at one price, oldest first, with their total size cached for depth queries.

    A dict subclass rather than a wrapper: one attribute lookup less on every hot-path access.
    """

    __slots__ = ("total_base_quantums",)

    def __init__(self) -> None:
        super().__init__()
        self.total_base_quantums = 0


class _BookSide:
    """One side of the book. ``prices`` is ascending; the best bid is last, the best ask first.

    ``best`` caches the best price (``_NO_BID``/``_NO_ASK`` when empty) so that the common
    questions (does this order cross? is there anything to match?) cost one attribute read.
    """

    __slots__ = ("best", "is_bid", "levels", "prices")

    def __init__(self, *, is_bid: bool = False) -> None:
        # (The default lets a build compiled by mypyc unpickle a side: it calls __init__().)
        self.is_bid = is_bid
        self.prices = SortedList()
        self.levels: dict[int, _Level] = {}
        self.best = _NO_BID if is_bid else _NO_ASK

    def best_or_none(self) -> int | None:
        return None if not self.levels else self.best

    def best_first(self) -> Iterator[int]:
        """The prices, best first: descending for bids, ascending for asks."""
        return reversed(self.prices) if self.is_bid else iter(self.prices)

    def new_level(self, price: int) -> _Level:
        """Open the level at ``price`` (it must not exist) and keep ``best`` current."""
        assert price not in self.levels, price
        level = _Level()
        self.levels[price] = level
        self.prices.add(price)
        if (price > self.best) if self.is_bid else (price < self.best):
            self.best = price
        return level

    def drop_level(self, price: int) -> None:
        """Close the (empty) level at ``price``: O(log n); ``best`` moves only if it was best."""
        level = self.levels.pop(price)
        assert not level, price
        prices = self.prices
        prices.remove(price)
        if price == self.best:
            if not prices:
                self.best = _NO_BID if self.is_bid else _NO_ASK
            else:
                self.best = prices[-1] if self.is_bid else prices[0]


class OrderBook:
    """The book of one market. See the module docstring for the layout and why."""

    __slots__ = ("_asks", "_bids", "_index")

    def __init__(self) -> None:
        self._bids = _BookSide(is_bid=True)
        self._asks = _BookSide(is_bid=False)
        self._index: dict[OrderId, RestingOrder] = {}

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def get(self, order_id: OrderId) -> RestingOrder | None:
        return self._index.get(order_id)

    def best_bid(self) -> int | None:
        return self._bids.best_or_none()

    def best_ask(self) -> int | None:
        return self._asks.best_or_none()

    def would_cross(self, side: Side, price_quantums: int) -> bool:
        """True if an order of ``side`` at this price would take liquidity (post-only uses it)."""
        if side is _BUY:
            return price_quantums >= self._asks.best
        return price_quantums <= self._bids.best

    # Mutations.

    def add(self, order: RestingOrder) -> None:
        """Rest ``order`` at the back of its level. The engine must have matched it first."""
        order_id = order.order_id
        price = order.price_quantums
        size = order.remaining_base_quantums
        index = self._index
        assert order_id not in index, order_id
        assert len(index) < _ORDERS_MAX, "book full: the engine must reject first"
        assert 0 < size <= _SIZE_MAX, size
        if order.side is _BUY:
            assert 0 < price < self._asks.best, ("a resting bid must not cross", price)
            book_side = self._bids
        else:
            assert self._bids.best < price <= _PRICE_MAX, ("a resting ask must not cross", price)
            book_side = self._asks
        level = book_side.levels.get(price)
        if level is None:
            level = book_side.new_level(price)
        level[order_id] = order
        level.total_base_quantums += size
        index[order_id] = order

    def remove(self, order_id: OrderId) -> RestingOrder:
        """Take an order out of the book (cancel, expiry, self-trade prevention)."""
        order = self._index.pop(order_id)  # KeyError on an unknown id: a bug in the caller.
        book_side = self._bids if order.side is _BUY else self._asks
        price = order.price_quantums
        level = book_side.levels[price]
        del level[order_id]
        if level:
            level.total_base_quantums -= order.remaining_base_quantums
        else:
            book_side.drop_level(price)
        return order

    def resize(self, order_id: OrderId, remaining_base_quantums: int) -> None:
        """Shrink an order in place. It keeps its time priority, so it may only shrink."""
        order = self._index[order_id]
        assert remaining_base_quantums > 0, "resize to zero is a remove"
        assert remaining_base_quantums <= order.remaining_base_quantums, "growing loses priority"
        book_side = self._bids if order.side is _BUY else self._asks
        level = book_side.levels[order.price_quantums]
        level.total_base_quantums -= order.remaining_base_quantums - remaining_base_quantums
        order.remaining_base_quantums = remaining_base_quantums

    def successor(self, order_id: OrderId) -> OrderId | None:
        """The order right behind ``order_id`` at its price, or None when it is the last one.

        With ``insert_before`` this lets the engine take an order out and put it back exactly
        where it was (an amend whose replacement is rejected). O(orders at that price).
        """
        order = self._index[order_id]
        book_side = self._bids if order.side is _BUY else self._asks
        following = iter(book_side.levels[order.price_quantums])
        for candidate in following:
            if candidate == order_id:
                return next(following, None)
        raise AssertionError(("indexed order missing from its level", order_id))

    def insert_before(self, order: RestingOrder, successor: OrderId | None) -> None:
        """Rest ``order`` just ahead of ``successor`` (same side and price), restoring its
        time priority; with no successor this is ``add``. O(orders at that price)."""
        if successor is None:
            self.add(order)
            return
        behind = self._index[successor]
        assert behind.side is order.side, ("successor on the other side", successor)
        assert behind.price_quantums == order.price_quantums, ("successor elsewhere", successor)
        self.add(order)  # At the back of the level, with every check and the cached total.
        book_side = self._bids if order.side is _BUY else self._asks
        level = book_side.levels[order.price_quantums]
        entries = list(level.items())
        level.clear()
        for order_id, resting_order in entries:
            if order_id == successor:
                level[order.order_id] = order
            if order_id != order.order_id:
                level[order_id] = resting_order
        assert len(level) == len(entries), "insert_before lost or duplicated an order"

    def apply_fill(self, order_id: OrderId, size_base_quantums: int) -> RestingOrder:
        """Take ``size`` from a resting order; a filled order leaves the book. Returns it."""
        order = self._index[order_id]
        remaining = order.remaining_base_quantums - size_base_quantums
        assert size_base_quantums > 0, size_base_quantums
        assert remaining >= 0, "a fill larger than the resting order"
        order.remaining_base_quantums = remaining
        book_side = self._bids if order.side is _BUY else self._asks
        level = book_side.levels[order.price_quantums]
        if remaining > 0:
            level.total_base_quantums -= size_base_quantums
            return order
        del self._index[order_id]
        del level[order_id]
        if level:
            level.total_base_quantums -= size_base_quantums
        else:
            book_side.drop_level(order.price_quantums)
        return order

    # Questions.

    def plan(
        self,
        *,
        side: Side,
        limit_price_quantums: int,
        size_base_quantums: int,
        owner: SubaccountId,
        excluded: frozenset[OrderId] = _NO_IDS,
        max_fills: int = _FILLS_MAX,
        max_self_trade_cancels: int = _STP_CANCELS_MAX,
        reducible: Callable[[SubaccountId], int] | None = None,
    ) -> MatchPlan:
        """Which resting orders a taker would meet, best price first, oldest first. Pure.

        The walk stops at the taker's size, at a price worse than its limit (a buy takes asks
        at or below its limit, a sell bids at or above), at ``max_fills`` fills, or at
        ``max_self_trade_cancels`` self-trade cancels: each bound keeps one command's events
        bounded. Orders in ``excluded`` (makers the engine already rejected) are skipped.
        With ``reducible`` (a maker's position, in base quantums, on the side its orders
        close; asked once per maker), a reduce-only maker whose fill would exceed what is left
        of it once the maker's earlier fills in this walk are counted is skipped, never
        ending the walk, and the first ``limits.reduce_only_cancels_per_order_max`` of them
        are listed in ``reduce_only_cancels``: one walk, however many of them rest.
        """
        assert 0 < size_base_quantums <= _SIZE_MAX, size_base_quantums
        assert 0 < limit_price_quantums <= _PRICE_MAX, limit_price_quantums
        if side is _BUY:
            if limit_price_quantums < self._asks.best:
                return _EMPTY_PLAN  # The common case: a passive order meets nothing.
            book_side = self._asks
        else:
            if limit_price_quantums > self._bids.best:
                return _EMPTY_PLAN
            book_side = self._bids
        assert 0 < max_fills <= _FILLS_MAX, max_fills
        assert 0 < max_self_trade_cancels <= _STP_CANCELS_MAX, max_self_trade_cancels
        return _walk(
            book_side,
            limit_price_quantums,
            size_base_quantums,
            owner,
            excluded,
            max_fills,
            max_self_trade_cancels,
            reducible,
        )

    def depth(self, side: Side, levels: int) -> list[tuple[int, int]]:
        """Aggregated ``(price, total size)`` of the resting orders of ``side``, best first.

        ``side`` is the side of the resting orders: BUY lists bids, SELL lists asks.
        """
        assert levels >= 0, levels
        book_side = self._bids if side is _BUY else self._asks
        result: list[tuple[int, int]] = []
        for price in book_side.best_first():
            if len(result) >= levels:
                break
            result.append((price, book_side.levels[price].total_base_quantums))
        return result

    def size_within(self, side: Side, bound_price_quantums: int, levels: int) -> int:
        """Total resting size of ``side`` priced at or better than the bound (bids at or above,
        asks at or below), over at most ``levels`` levels: the depth that position caps use."""
        book_side = self._bids if side is _BUY else self._asks
        total = 0
        for count, price in enumerate(book_side.best_first()):
            outside = price < bound_price_quantums if side is _BUY else price > bound_price_quantums
            if outside or count >= levels:
                break
            total += book_side.levels[price].total_base_quantums
        return total

    def impact_price(
        self, side: Side, impact_notional_quote_quantums: int, base_quantums_per_unit: int
    ) -> int | None:
        """The average price a ``side`` taker pays to trade ``impact_notional`` of quote.

        Used for the impact mid of the mark price and for the funding premium. A buy walks the
        asks, a sell the bids. A level's notional is ``total * price // base_quantums_per_unit``
        (rounded down); the last level is taken only as far as needed,
        ``ceil(remaining_notional * base_quantums_per_unit / price)`` base quantums. The average
        is ``sum(size * price) / sum(size)``, rounded against the taker: up for a buy, down for
        a sell. None when the book does not hold that much depth.
        """
        assert impact_notional_quote_quantums > 0, impact_notional_quote_quantums
        assert base_quantums_per_unit > 0, base_quantums_per_unit
        book_side = self._asks if side is _BUY else self._bids
        remaining_notional = impact_notional_quote_quantums
        weighted_price_sum = 0
        size_sum = 0
        for price in book_side.best_first():
            total = book_side.levels[price].total_base_quantums
            level_notional = total * price // base_quantums_per_unit
            take = total
            if remaining_notional <= level_notional:
                take = div_ceil(remaining_notional * base_quantums_per_unit, price)
                assert 0 < take <= total, (take, total)
            weighted_price_sum += take * price
            size_sum += take
            remaining_notional -= min(level_notional, remaining_notional)
            if remaining_notional == 0:
                break
        if remaining_notional > 0:
            return None
        assert size_sum > 0
        if side is _BUY:
            return div_ceil(weighted_price_sum, size_sum)
        return div_floor(weighted_price_sum, size_sum)

    def orders(self) -> Iterator[RestingOrder]:
        """Every resting order, by order id: the order a snapshot and a state hash need."""
        index = self._index
        for order_id in sorted(index):
            yield index[order_id]

    def check_invariants(self) -> None:
        """Assert the whole book (O(n)): for tests, the simulator's auditor and snapshots."""
        best_bid = self.best_bid()
        best_ask = self.best_ask()
        if best_bid is not None and best_ask is not None:
            assert best_bid < best_ask, ("crossed book", best_bid, best_ask)
        seen: set[OrderId] = set()
        for book_side in (self._bids, self._asks):
            _check_side(book_side, self._index, seen)
        assert len(seen) == len(self._index), "an indexed order is missing from its level"


def _walk(  # noqa: C901, PLR0915 (the matching hot loop, inlined: no call per maker)
    book_side: _BookSide,
    limit_price_quantums: int,
    size_base_quantums: int,
    owner: SubaccountId,
    excluded: frozenset[OrderId],
    max_fills: int,
    max_self_trade_cancels: int,
    reducible: Callable[[SubaccountId], int] | None,
) -> MatchPlan:
    """The body of ``plan`` once ``book_side`` (the makers' side) is known to cross the limit.

    ``sign * price <= sign * limit`` is "ask <= limit" for a buy taker (``book_side`` = asks)
    and "bid >= limit" for a sell taker, so one loop serves both sides. Owners are compared
    field by field: the same test as ``SubaccountId.__eq__`` at a third of the cost.
    """
    sign = -1 if book_side.is_bid else 1
    bound = sign * limit_price_quantums
    owner_address, owner_number = owner.owner, owner.number
    levels = book_side.levels
    new_fill = _new_fill
    set_id, set_owner, set_price, set_size = _fill_setters
    fills: list[PlannedFill] = []
    cancels: list[OrderId] = []
    over_reducing: list[OrderId] = []
    left: dict[SubaccountId, int] = {}  # with ``reducible``: what each maker may still reduce
    remaining = size_base_quantums
    bounded = False  # a bound (size, fills, self-trade cancels) ended the walk
    for price in book_side.best_first():
        if sign * price > bound:
            break
        for maker in levels[price].values():
            if excluded and maker.order_id in excluded:
                continue
            maker_owner = maker.owner
            if maker_owner.number == owner_number and maker_owner.owner == owner_address:
                cancels.append(maker.order_id)
                bounded = len(cancels) >= max_self_trade_cancels
            else:
                take = maker.remaining_base_quantums
                take = min(take, remaining)
                if reducible is not None:
                    room = left.get(maker_owner)
                    if room is None:
                        room = reducible(maker_owner)
                    if maker.reduce_only and take > room:
                        # Skipped, never a bound on the walk: liquidity may rest behind a wall
                        # of them. The first ones met are listed, to be cancelled.
                        left[maker_owner] = room
                        if len(over_reducing) < _REDUCE_ONLY_CANCELS_MAX:
                            over_reducing.append(maker.order_id)
                        continue
                    left[maker_owner] = room - take
                fill = new_fill(PlannedFill)  # Built slot by slot (see _slot_setters): hot loop.
                set_id(fill, maker.order_id)
                set_owner(fill, maker_owner)
                set_price(fill, price)
                set_size(fill, take)
                fills.append(fill)
                remaining -= take
                bounded = remaining == 0 or len(fills) >= max_fills
            if bounded:
                break
        if bounded:
            break
    filled = size_base_quantums - remaining
    assert 0 <= filled <= size_base_quantums, filled
    assert len(fills) <= max_fills, len(fills)
    assert len(cancels) <= max_self_trade_cancels, len(cancels)
    assert len(over_reducing) <= _REDUCE_ONLY_CANCELS_MAX, len(over_reducing)
    if not fills and not cancels and not over_reducing:
        return _EMPTY_PLAN
    return _match_plan(tuple(fills), tuple(cancels), filled, tuple(over_reducing))


def _check_side(
    book_side: _BookSide, index: dict[OrderId, RestingOrder], seen: set[OrderId]
) -> None:
    """Assert one side: sorted prices equal level keys, cached totals equal recomputation."""
    side = _BUY if book_side.is_bid else _SELL
    assert list(book_side.prices) == sorted(book_side.levels), "prices and levels disagree"
    assert book_side.best_or_none() == (next(book_side.best_first(), None)), "stale best price"
    for price, level in book_side.levels.items():
        assert level, ("an empty level was kept", price)
        total = 0
        for order_id, order in level.items():
            assert order.order_id == order_id
            assert order_id not in seen, ("order listed twice", order_id)
            assert index.get(order_id) is order, ("order not indexed", order_id)
            assert order.side is side, ("order on the wrong side", order_id)
            assert order.price_quantums == price, ("order at the wrong level", order_id)
            assert order.remaining_base_quantums > 0, ("empty order resting", order_id)
            seen.add(order_id)
            total += order.remaining_base_quantums
        assert level.total_base_quantums == total, ("level total drifted", price)
