"""The stream hub: numbered messages per channel, book deltas that rebuild the book, snapshots
that say where the numbering stands, and slow readers dropped rather than silently skipped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from clearhouse.node.readmodel import BlockUpdate
from clearhouse.node.streams import (
    CONNECTION_BUFFER,
    CONNECTION_TEXT_BYTES_MAX,
    Connection,
    Depth,
    Hub,
    _diff,
)


def _apply(book: dict[int, int], changes: list[list[int]]) -> dict[int, int]:
    for price, size in changes:
        if size == 0:
            book.pop(price, None)
        else:
            book[price] = size
    return book


def test_deltas_rebuild_the_published_book() -> None:
    old = [[100, 5], [99, 3], [98, 1]]
    new = [[101, 2], [100, 5], [98, 4]]
    rebuilt = _apply(dict(old), _diff(old, new))
    assert rebuilt == dict(new)
    assert _diff(new, new) == []


def test_messages_on_a_channel_are_numbered_from_the_snapshot() -> None:
    async def run() -> list[dict[str, Any]]:
        hub = Hub({"BTC-PERP": {"bids": [[100, 1]], "asks": []}})
        connection = Connection()
        snapshot = hub.subscribe(connection, "book:BTC-PERP",
                                 lambda: hub.book_snapshot("BTC-PERP"))  # fmt: skip
        books: list[Depth] = [
            {"bids": [[100, 2]], "asks": []},
            {"bids": [[100, 2]], "asks": [[105, 1]]},
            {"bids": [], "asks": [[105, 1]]},
        ]
        for height, depth in enumerate(books, start=2):
            hub.publish(BlockUpdate(height, height, books_touched={"BTC-PERP"}),
                        {"BTC-PERP": depth})  # fmt: skip
        messages = [snapshot]
        while not connection.queue.empty():
            item = connection.queue.get_nowait()
            assert isinstance(item, str)  # rendered once for every subscriber
            messages.append(json.loads(item))
        return messages

    messages = asyncio.run(run())
    assert messages[0]["type"] == "snapshot" and messages[0]["seq"] == 0
    assert [m["seq"] for m in messages[1:]] == [1, 2, 3]
    book = {"bids": dict(messages[0]["bids"]), "asks": {}}
    for delta in messages[1:]:
        for side in ("bids", "asks"):
            _apply(book[side], delta[side])
    assert book == {"bids": {}, "asks": {105: 1}}


def test_a_reader_that_falls_behind_is_dropped_not_skipped() -> None:
    async def run() -> tuple[bool, list[Any]]:
        hub = Hub({})
        slow = Connection()
        hub.subscribe(slow, "trades:BTC-PERP", lambda: hub.trades_snapshot("BTC-PERP"))
        trade = {"trade_id": 1}
        for height in range(CONNECTION_BUFFER + 5):
            hub.publish(BlockUpdate(height, height, trades={"BTC-PERP": [trade]}), {})
        left = []
        while not slow.queue.empty():
            left.append(slow.queue.get_nowait())
        return slow.overflowed, left

    overflowed, left = asyncio.run(run())
    assert overflowed
    assert left == [None]  # the one thing left to read: "resubscribe"


def test_a_reader_that_leaves_its_snapshots_unread_is_dropped_by_their_size() -> None:
    """Snapshots are rendered text, one string each: far fewer than the queue's count of
    messages fill the node's memory, so their bytes are capped too."""

    async def run() -> tuple[bool, list[Any], int]:
        slow = Connection()
        snapshot = "x" * (CONNECTION_TEXT_BYTES_MAX // 8)
        for _ in range(8):
            slow.offer(snapshot)  # exactly the cap: still queued
        assert not slow.overflowed and slow.queue.qsize() == 8
        slow.taken(slow.queue.get_nowait())  # one read: room for one more
        slow.offer(snapshot)
        assert not slow.overflowed
        slow.offer("{}")  # past the cap, though 9 messages are far below the count
        left = []
        while not slow.queue.empty():
            left.append(slow.queue.get_nowait())
        return slow.overflowed, left, slow.queued_text_bytes

    overflowed, left, queued = asyncio.run(run())
    assert overflowed and left == [None] and queued == 0


def test_a_reader_that_leaves_a_channels_messages_unread_is_dropped_by_their_size() -> None:
    """A block's trades (or an account's events) have no bound of their own: a reader that
    never read held up to 2,000 of them as dicts, uncounted (100 blocks of 256 trades each,
    ~100 KB rendered a block, were far below the count). A channel's messages are rendered
    once and count by their bytes, as snapshots do; every subscriber shares the text."""

    async def run() -> tuple[bool, bool, list[Any]]:
        hub = Hub({})
        slow, reader = Connection(), Connection()
        for connection in (slow, reader):
            hub.subscribe(connection, "trades:BTC-PERP", lambda: {})
        trades = [{"trade_id": i, "price": "61234.5", "size_base": "0.001",
                   "taker_side": "buy", "padding": "x" * 300} for i in range(256)]  # fmt: skip
        for height in range(100):
            hub.publish(BlockUpdate(height, height, trades={"BTC-PERP": trades}), {})
            while not reader.queue.empty():  # a reader that keeps up
                reader.taken(reader.queue.get_nowait())
        left = []
        while not slow.queue.empty():
            left.append(slow.queue.get_nowait())
        return slow.overflowed, reader.overflowed, left

    slow, reader, left = asyncio.run(run())
    assert slow and left == [None]
    assert not reader


def test_one_snapshot_over_the_cap_still_reaches_an_idle_reader() -> None:
    """An account of ~10,000 positions renders past the cap: alone in the queue it goes (else
    the client would be told to resubscribe, and dropped again, for ever); a second behind it
    does not."""

    async def run() -> tuple[bool, bool]:
        reader = Connection()
        reader.offer("x" * (CONNECTION_TEXT_BYTES_MAX + 1))
        alone = reader.overflowed
        reader.offer("y" * 10)
        return alone, reader.overflowed

    alone, behind = asyncio.run(run())
    assert not alone and behind


def test_account_updates_go_to_the_owner_only() -> None:
    async def run() -> tuple[int, int]:
        hub = Hub({})
        mine, other = Connection(), Connection()
        hub.subscribe(mine, "account:0xaa", dict)
        hub.subscribe(other, "account:0xbb", dict)
        hub.publish(BlockUpdate(2, 2, accounts={"0xaa": [{"type": "fill"}]}), {})
        return mine.queue.qsize(), other.queue.qsize()

    assert asyncio.run(run()) == (1, 0)


def test_governance_events_stream_after_a_snapshot_seeded_from_the_read_model() -> None:
    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        earlier = [{"cursor": str(i), "type": "ParamChanged"} for i in range(60)]
        hub = Hub({}, earlier)
        connection = Connection()
        snapshot = hub.subscribe(connection, "governance", hub.governance_snapshot)
        hub.publish(BlockUpdate(7, 7), {})  # no governance event: nothing sent
        new = {"cursor": "60", "type": "ProposalChanged"}
        hub.publish(BlockUpdate(8, 8, governance=[new]), {})
        sent = []
        while not connection.queue.empty():
            item = connection.queue.get_nowait()
            assert isinstance(item, str)
            sent.append(json.loads(item))
        return snapshot, sent

    snapshot, sent = asyncio.run(run())
    assert [e["cursor"] for e in snapshot["events"]] == [str(i) for i in range(10, 60)]
    assert sent == [{"channel": "governance", "seq": 1, "height": 8, "type": "events",
                     "events": [{"cursor": "60", "type": "ProposalChanged"}]}]  # fmt: skip
