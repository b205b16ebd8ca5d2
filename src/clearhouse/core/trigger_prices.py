"""One market's armed stop and take-profit triggers by trigger price, so that a block finds those
the mark reached at the cost of those, not of every trigger armed (a market may arm
``limits.trigger_orders_per_market_max``, and triggers far from the mark cost nothing to keep).

Pure data structure, derived from ``MarketState.triggers`` (rebuilt from it on restore): it
knows when a trigger fires (``TriggerOrder.fires_rising``), not what firing does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sortedcontainers import SortedList

from clearhouse.core.ids import OrderId
from clearhouse.core.state import TriggerOrder


@dataclass(slots=True)
class TriggerPrices:
    rising: SortedList = field(default_factory=SortedList)  # (trigger, id): fire at mark >= it
    falling: SortedList = field(default_factory=SortedList)  # (trigger, id): fire at mark <= it

    def __len__(self) -> int:
        return len(self.rising) + len(self.falling)

    def add(self, trigger: TriggerOrder) -> None:
        self._side(trigger).add((trigger.trigger_price_quantums, trigger.order_id))

    def remove(self, trigger: TriggerOrder) -> None:
        self._side(trigger).remove((trigger.trigger_price_quantums, trigger.order_id))

    def reached(self, mark_price_quantums: int) -> list[OrderId]:
        """The triggers the mark reached, by order id: the order they fire in. O(log n + found).
        (A 1-tuple sorts before every pair that starts with its price.)"""
        rising = self.rising.islice(0, self.rising.bisect_left((mark_price_quantums + 1,)))
        falling = self.falling.islice(self.falling.bisect_left((mark_price_quantums,)))
        return sorted([order_id for _, order_id in rising] + [order_id for _, order_id in falling])

    def entries(self) -> set[tuple[bool, int, OrderId]]:
        """Every entry as (fires rising, trigger price, id): for checks against the state."""
        return {(True, price, order_id) for price, order_id in self.rising} | {
            (False, price, order_id) for price, order_id in self.falling
        }

    def _side(self, trigger: TriggerOrder) -> SortedList:
        return self.rising if trigger.fires_rising else self.falling
