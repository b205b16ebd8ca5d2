"""Price bands: for each watched subaccount, the range of each of its markets' marks inside which
it is known to stay above maintenance margin, indexed so that a block finds the subaccounts
whose band a move crossed at the cost of the crossings, not of the venue.

A subaccount is *tracked* while it holds a position. A tracked subaccount either has a band (one
``[low, high]`` mark range per market it holds, computed by the engine's liquidation watch) or has
none: it is then *unbanded*, and examined every block (near its margin, under liquidation, or of a
kind no band describes: options, portfolio mode, volatile collateral). Pure data structure: it
knows nothing of margin, and the engine decides what a band is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from clearhouse.core.ids import MarketId, SubaccountId


@dataclass(frozen=True, slots=True)
class Band:
    """Marks of one market between which a subaccount's margin is known to hold."""

    market_id: MarketId
    low_price_quantums: int
    high_price_quantums: int

    def holds(self, mark_price_quantums: int) -> bool:
        return self.low_price_quantums <= mark_price_quantums <= self.high_price_quantums


# A band's edge in a market's sorted list is one int: ``price * 2**SLOT_BITS + slot``, the slot
# naming the subaccount (``PriceBands._ids``). Ordered by price first, like a (price, id) pair,
# at ~40 bytes where a pair and its price int were ~90: a million subaccounts hold ~2.7M edges.
SLOT_BITS = 32
_SLOT_MASK = (1 << SLOT_BITS) - 1


def _edge(price_quantums: int, slot: int) -> int:
    return (price_quantums << SLOT_BITS) | slot


@dataclass(slots=True)
class _MarketBands:
    lows: SortedList = field(default_factory=SortedList)  # low edges, ascending
    highs: SortedList = field(default_factory=SortedList)  # high edges, ascending


# A subaccount's bands as one flat tuple (market, low edge, high edge, market, ...): a million
# subaccounts keep no ``Band`` objects, only the sorted lists' edges and this, which shares them.
_Flat = tuple[MarketId | int, ...]


@dataclass(slots=True)
class PriceBands:
    """Which subaccounts are tracked, their bands, and each market's edges sorted by price.

    Each tracked subaccount holds a *slot* (an index into ``_ids`` and ``_flat``) for as long as
    it is tracked; freed slots are reused. Slots never reach consensus: ``crossed`` returns a
    set's worth of subaccounts, which the engine sorts by id."""

    _slots: dict[SubaccountId, int] = field(default_factory=dict)
    _ids: list[SubaccountId | None] = field(default_factory=list)  # slot -> subaccount
    _flat: list[_Flat | None] = field(default_factory=list)  # slot -> bands; None: unbanded
    _free: list[int] = field(default_factory=list)
    unbanded: set[SubaccountId] = field(default_factory=set)
    _markets: dict[MarketId, _MarketBands] = field(default_factory=dict)

    def __contains__(self, subaccount_id: object) -> bool:
        return subaccount_id in self._slots

    def __len__(self) -> int:
        return len(self._slots)

    def bands(self, subaccount_id: SubaccountId) -> tuple[Band, ...] | None:
        flat = self._flat[self._slots[subaccount_id]]
        if flat is None:
            return None
        return tuple(
            Band(market_id, low >> SLOT_BITS, high >> SLOT_BITS)
            for market_id, low, high in _triples(flat)
        )

    def track(self, subaccount_id: SubaccountId, bands: tuple[Band, ...] | None) -> None:
        """Track ``subaccount_id`` with ``bands`` (None: unbanded)."""
        slot = self._slots.get(subaccount_id)
        if slot is None:
            slot = self._take_slot(subaccount_id)
        else:
            self._drop_edges(slot)
        if bands is None:
            self.unbanded.add(subaccount_id)
            return
        self.unbanded.discard(subaccount_id)
        flat: list[MarketId | int] = []
        for band in bands:
            index = self._market(band.market_id)
            low = _edge(band.low_price_quantums, slot)
            high = _edge(band.high_price_quantums, slot)
            index.lows.add(low)
            index.highs.add(high)
            flat += (band.market_id, low, high)
        self._flat[slot] = tuple(flat)

    def untrack(self, subaccount_id: SubaccountId) -> None:
        slot = self._slots.pop(subaccount_id, None)
        if slot is None:
            return
        self._drop_edges(slot)
        self.unbanded.discard(subaccount_id)
        self._ids[slot] = None
        self._free.append(slot)

    def crossed(self, market_id: MarketId, mark_price_quantums: int) -> list[SubaccountId]:
        """Subaccounts whose band in this market no longer holds the mark, at a cost of
        O(log n + crossings): lows above the mark, highs below it."""
        index = self._markets.get(market_id)
        if index is None:
            return []
        first_above = index.lows.bisect_left(_edge(mark_price_quantums + 1, 0))
        first_at = index.highs.bisect_left(_edge(mark_price_quantums, 0))
        edges = [*index.lows.islice(first_above), *index.highs.islice(0, first_at)]
        ids = self._ids
        return [_tracked(ids[edge & _SLOT_MASK]) for edge in edges]

    def _take_slot(self, subaccount_id: SubaccountId) -> int:
        if self._free:
            slot = self._free.pop()
            self._ids[slot] = subaccount_id
        else:
            slot = len(self._ids)
            assert slot <= _SLOT_MASK, "more tracked subaccounts than slots"
            self._ids.append(subaccount_id)
            self._flat.append(None)
        self._slots[subaccount_id] = slot
        return slot

    def _drop_edges(self, slot: int) -> None:
        flat = self._flat[slot]
        self._flat[slot] = None
        for market_id, low, high in _triples(flat or ()):
            index = self._markets[market_id]
            index.lows.remove(low)
            index.highs.remove(high)

    def _market(self, market_id: MarketId) -> _MarketBands:
        index = self._markets.get(market_id)
        if index is None:
            index = self._markets[market_id] = _MarketBands()
        return index


def _tracked(subaccount_id: SubaccountId | None) -> SubaccountId:
    assert subaccount_id is not None, "an edge of a freed slot"
    return subaccount_id


def _triples(flat: _Flat) -> Iterator[tuple[MarketId, int, int]]:
    for at in range(0, len(flat), 3):
        market_id, low, high = flat[at : at + 3]
        assert isinstance(market_id, str) and isinstance(low, int) and isinstance(high, int)
        yield MarketId(market_id), low, high
