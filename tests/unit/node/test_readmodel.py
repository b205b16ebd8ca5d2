"""The read model is a pure function of the journal: rebuilt by replay, it equals the one the
node kept live; and it follows each order from its command to its end."""

from __future__ import annotations

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain, verify
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, OrderId, Side, TradeId
from clearhouse.core.messages import (
    CancelCause,
    CommandRejected,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    Transferred,
)
from clearhouse.core.units import NS_PER_DAY, NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.node.readmodel import (
    HISTORY_PER_SUBACCOUNT_KEPT,
    BlockUpdate,
    ReadModel,
    new_order_id,
)
from clearhouse.sim.market import DemoMarket
from clearhouse.sim.venue import GENESIS_NS, default_venue, genesis_commands

BLOCK_NS = 10 * NS_PER_SECOND


def test_a_replayed_read_model_equals_the_live_one() -> None:
    spec = default_venue(GENESIS_NS, options=True, oracle_staleness_ns=15 * NS_PER_SECOND)
    journal = MemoryJournal()
    chain = Chain(spec.venue, journal)
    live = ReadModel()
    market = DemoMarket(3, spec, BLOCK_NS)
    for height in range(1, 150):
        timestamp = GENESIS_NS + (height - 1) * BLOCK_NS
        commands = (
            genesis_commands(spec)
            if height == 1
            else market.commands(chain.engine, timestamp, height)
        )
        encoded = [encode_command(c) for c in commands]
        executed = chain.produce_encoded(timestamp, encoded)
        live.apply(executed, encoded, chain.parent_hash)
    chain.flush()
    rebuilt = ReadModel()
    verify(journal, on_replayed=lambda s, e: rebuilt.apply(e, s.commands, s.block_hash))
    assert sum(len(t) for t in live.trades.values()) > 10  # the demo market traded
    assert live.orders == rebuilt.orders
    assert live.trades == rebuilt.trades
    assert live.candles == rebuilt.candles
    assert live.results == rebuilt.results
    assert list(live.headers) == list(rebuilt.headers)
    assert live.bars == rebuilt.bars
    assert live.funding == rebuilt.funding
    assert live.history == rebuilt.history
    assert sum(len(h) for h in live.history.values()) > 10
    filled = [o for o in live.orders.values() if o["status"] == "filled"]
    assert filled and all(o["remaining_base_quantums"] == 0 for o in filled)


def _fill(taker: int, maker: int, price: int = 1) -> OrderFilled:
    return OrderFilled(
        trade_id=TradeId(1), market_id="BTC-PERP", maker_order_id=OrderId(maker),  # type: ignore[arg-type]
        taker_order_id=OrderId(taker), maker="a/0", taker="b/0", taker_side=Side.BUY,
        price_quantums=price, size_base_quantums=1, maker_fee_quote_quantums=0,
        taker_fee_quote_quantums=0,
    )  # fmt: skip


def test_the_new_order_is_the_taker_or_the_rested_or_the_newest_cancelled() -> None:
    stp = OrderCancelled(order_id=OrderId(3), cause=CancelCause.SELF_TRADE,
                         remaining_base_quantums=1)  # fmt: skip
    assert new_order_id([stp, OrderRested(order_id=OrderId(9), remaining_base_quantums=1)]) == 9
    assert new_order_id([stp, _fill(taker=9, maker=4)]) == 9
    ioc_unfilled = OrderCancelled(order_id=OrderId(9), cause=CancelCause.IOC_REMAINDER,
                                  remaining_base_quantums=1)  # fmt: skip
    assert new_order_id([stp, ioc_unfilled]) == 9
    rejected = CommandRejected(index=0, reason=RejectReason.INSUFFICIENT_MARGIN,
                               nonce_consumed=True)  # fmt: skip
    assert new_order_id([rejected]) is None


def _transfer(target: str, index: int) -> Transferred:
    return Transferred(source="fund", target=target, asset_id=QUOTE_ASSET, amount_quantums=index,
                       cause="funding" if index % 2 else "deposit")  # fmt: skip


def test_history_pages_newest_first_by_cursor_and_by_category() -> None:
    model = ReadModel()
    update = BlockUpdate(1, 0)
    for index in range(1, 8):
        model._observe(_transfer("a/0", index), update)
    model._observe(_transfer("fund", 99), update)  # a system account keeps no history
    page, cursor = model.history_page("a/0", None, 3, None)
    assert [i["amount_quantums"] for i in page] == [7, 6, 5]
    assert cursor == page[-1]["cursor"]
    page, cursor = model.history_page("a/0", int(cursor), 10, None)
    assert [i["amount_quantums"] for i in page] == [4, 3, 2, 1]
    assert cursor is None
    page, _ = model.history_page("a/0", None, 10, "funding")
    assert [i["amount_quantums"] for i in page] == [7, 5, 3, 1]
    assert list(model.history) == ["a/0"]


def test_a_subaccount_keeps_its_newest_history_only() -> None:
    model = ReadModel()
    update = BlockUpdate(1, 0)
    for index in range(HISTORY_PER_SUBACCOUNT_KEPT + 5):
        model._observe(_transfer("a/0", index), update)
    page, cursor = model.history_page("a/0", None, HISTORY_PER_SUBACCOUNT_KEPT, None)
    assert len(page) == HISTORY_PER_SUBACCOUNT_KEPT and cursor is None
    assert page[-1]["amount_quantums"] == 5


def test_longer_candles_aggregate_the_minutes_they_start() -> None:
    model = ReadModel()
    day = GENESIS_NS // NS_PER_DAY * NS_PER_DAY // NS_PER_MINUTE  # a UTC midnight, in minutes
    for minute, price in ((0, 10), (4, 30), (5, 20)):
        model._observe(_fill(taker=1, maker=2, price=price),
                       BlockUpdate(1, (day + minute) * NS_PER_MINUTE))  # fmt: skip
    five = model.bars[5]["BTC-PERP"]
    assert list(five) == [day, day + 5]
    assert (five[day].open_quantums, five[day].high_quantums, five[day].trades) == (10, 30, 2)
    assert five[day + 5].close_quantums == 20
    (whole,) = model.bars[1_440]["BTC-PERP"].values()
    assert (whole.trades, whole.low_quantums, whole.close_quantums) == (3, 10, 20)
