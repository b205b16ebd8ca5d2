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


@dataclass(slots=True)
class _MarketBands:
    lows: SortedList = field(default_factory=SortedList)  # (low, subaccount), ascending
    highs: SortedList = field(default_factory=SortedList)  # (high, subaccount), ascending


# A subaccount's bands as one flat tuple (market, low, high, market, low, high, ...): a
# million subaccounts keep no ``Band`` objects, only the sorted lists' entries and this.
_Flat = tuple[MarketId | int, ...]


@dataclass(slots=True)
class PriceBands:
    _tracked: dict[SubaccountId, _Flat | None] = field(default_factory=dict)
    unbanded: set[SubaccountId] = field(default_factory=set)
    _markets: dict[MarketId, _MarketBands] = field(default_factory=dict)

    def __contains__(self, subaccount_id: object) -> bool:
        return subaccount_id in self._tracked

    def __len__(self) -> int:
        return len(self._tracked)

    def bands(self, subaccount_id: SubaccountId) -> tuple[Band, ...] | None:
        flat = self._tracked[subaccount_id]
        if flat is None:
            return None
        return tuple(Band(*entry) for entry in _triples(flat))

    def track(self, subaccount_id: SubaccountId, bands: tuple[Band, ...] | None) -> None:
        """Track ``subaccount_id`` with ``bands`` (None: unbanded)."""
        self.untrack(subaccount_id)
        if bands is None:
            self._tracked[subaccount_id] = None
            self.unbanded.add(subaccount_id)
            return
        flat: list[MarketId | int] = []
        for band in bands:
            index = self._market(band.market_id)
            index.lows.add((band.low_price_quantums, subaccount_id))
            index.highs.add((band.high_price_quantums, subaccount_id))
            flat += (band.market_id, band.low_price_quantums, band.high_price_quantums)
        self._tracked[subaccount_id] = tuple(flat)

    def untrack(self, subaccount_id: SubaccountId) -> None:
        if subaccount_id not in self._tracked:
            return
        flat = self._tracked.pop(subaccount_id)
        self.unbanded.discard(subaccount_id)
        for market_id, low, high in _triples(flat or ()):
            index = self._markets[market_id]
            index.lows.remove((low, subaccount_id))
            index.highs.remove((high, subaccount_id))

    def crossed(self, market_id: MarketId, mark_price_quantums: int) -> list[SubaccountId]:
        """Subaccounts whose band in this market no longer holds the mark, at a cost of
        O(log n + crossings). (A 1-tuple sorts before every pair that starts with its price.)"""
        index = self._markets.get(market_id)
        if index is None:
            return []
        first_above = index.lows.bisect_left((mark_price_quantums + 1,))
        found = [s for _, s in index.lows.islice(first_above)]
        first_at = index.highs.bisect_left((mark_price_quantums,))
        found.extend(s for _, s in index.highs.islice(0, first_at))
        return found

    def _market(self, market_id: MarketId) -> _MarketBands:
        index = self._markets.get(market_id)
        if index is None:
            index = self._markets[market_id] = _MarketBands()
        return index


def _triples(flat: _Flat) -> Iterator[tuple[MarketId, int, int]]:
    for at in range(0, len(flat), 3):
        market_id, low, high = flat[at : at + 3]
        assert isinstance(market_id, str) and isinstance(low, int) and isinstance(high, int)
        yield MarketId(market_id), low, high
