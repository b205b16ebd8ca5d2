"""TriggerPrices: armed triggers by trigger price; the mark reaches exactly those that fire."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clearhouse.core.ids import Address, MarketId, OrderId, Side, SubaccountId
from clearhouse.core.messages import OrderType, TimeInForce
from clearhouse.core.state import TriggerOrder
from clearhouse.core.trigger_prices import TriggerPrices

TYPES = [OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET,
         OrderType.TAKE_PROFIT_LIMIT]  # fmt: skip


def trigger(order_id: int, side: Side, order_type: OrderType, price: int) -> TriggerOrder:
    return TriggerOrder(
        order_id=OrderId(order_id), owner=SubaccountId(Address("0x" + "1" * 40), 0),
        market_id=MarketId("BTC-PERP"), side=side, order_type=order_type, size_base_quantums=1,
        price_quantums=price, trigger_price_quantums=price, time_in_force=TimeInForce.IOC,
        reduce_only=False, slippage_ppm=0, good_til_ns=0, client_order_id=0,
    )  # fmt: skip


_SIDES = st.sampled_from([Side.BUY, Side.SELL])
_TRIGGERS = st.lists(st.tuples(_SIDES, st.sampled_from(TYPES), st.integers(1, 1_000)), max_size=60)


@given(_TRIGGERS, st.lists(st.integers(0, 60)), st.integers(0, 1_001))
def test_the_mark_reaches_exactly_the_triggers_that_fire_in_id_order(
    drawn: list[tuple[Side, OrderType, int]], removed: list[int], mark: int
) -> None:
    armed = {i + 1: trigger(i + 1, *fields) for i, fields in enumerate(drawn)}
    index = TriggerPrices()
    for found in armed.values():
        index.add(found)
    for order_id in removed:
        if order_id in armed:
            index.remove(armed.pop(order_id))
    assert index.reached(mark) == sorted(i for i, t in armed.items() if t.fires_at(mark))
    assert len(index) == len(armed)


def test_a_buy_stop_fires_rising_and_a_buy_take_profit_falling() -> None:
    index = TriggerPrices()
    index.add(trigger(1, Side.BUY, OrderType.STOP_MARKET, 110))
    index.add(trigger(2, Side.BUY, OrderType.TAKE_PROFIT_LIMIT, 90))
    index.add(trigger(3, Side.SELL, OrderType.STOP_LIMIT, 90))
    index.add(trigger(4, Side.SELL, OrderType.TAKE_PROFIT_MARKET, 110))
    assert index.reached(100) == []
    assert index.reached(110) == [1, 4]  # the trigger price itself fires
    assert index.reached(90) == [2, 3]
