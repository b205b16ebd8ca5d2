"""WebSocket streams: book deltas, trades and account updates, each channel numbered.

Every message on a channel carries ``seq``, one more than the last on that channel, and the
``height`` of the block it comes from. A subscription starts with a snapshot carrying the
channel's current ``seq``; a client that sees a gap (or is dropped for reading too slowly)
subscribes again and gets a fresh snapshot: that is the whole resync protocol.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from clearhouse.node.protection import OpenPerKey, RateLimiter
from clearhouse.node.readmodel import BlockUpdate

CONNECTION_BUFFER = 2_000  # messages queued for one connection before it is dropped
# Rendered text (snapshots: an account's runs to hundreds of KB; a block's trades or account
# events, as large as the block) queued for one connection before it is dropped: a client that
# subscribes and never reads would otherwise hold the node's memory, 2,000 messages a
# connection.
CONNECTION_TEXT_BYTES_MAX = 4 * 2**20
SUBSCRIPTIONS_PER_CONNECTION_MAX = 64
GOVERNANCE_CHANNEL = "governance"  # proposals, approvals, parameter changes, flags, fallbacks
GOVERNANCE_IN_SNAPSHOT = 50  # the latest governance events a snapshot carries
CONNECTIONS_PER_IP_MAX = 16  # open WebSocket connections from one address (×64 channels each)
# Subscriptions per second from one address, over all its connections, with bursts: each
# brings a snapshot (an account's can be large), the only read a client can repeat at will.
SUBSCRIBE_RATE_PER_IP = 20.0
SUBSCRIBE_BURST_PER_IP = 2.0 * SUBSCRIPTIONS_PER_CONNECTION_MAX
TRADES_IN_SNAPSHOT = 100
Depth = dict[str, list[list[int]]]


@dataclass(eq=False, slots=True)
class Connection:
    """One client's queue: messages (a str is one rendered already: a channel's, shared by its
    subscribers, or a reply), or None: "resubscribe"."""

    queue: asyncio.Queue[dict[str, Any] | str | None] = field(
        default_factory=lambda: asyncio.Queue(CONNECTION_BUFFER)
    )
    channels: set[str] = field(default_factory=set)
    overflowed: bool = False
    ip: str = "unknown"
    # The rendered text in the queue (a channel's message shared with other subscribers counts
    # whole in each queue that holds it).
    queued_text_bytes: int = 0

    def offer(self, message: dict[str, Any] | str) -> None:
        if self.overflowed:
            return
        text = len(message) if isinstance(message, str) else 0
        queued = self.queued_text_bytes
        over = queued > 0 and queued + text > CONNECTION_TEXT_BYTES_MAX  # one alone always fits
        if self.queue.full() or over:
            # A reader this slow has lost messages: drop it, and it resubscribes to a snapshot.
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queued_text_bytes = 0
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(message)
        self.queued_text_bytes += text

    def taken(self, message: dict[str, Any] | str | None) -> None:
        """``message`` left the queue (for the socket)."""
        if isinstance(message, str):
            self.queued_text_bytes -= len(message)


class Hub:
    """Lives on the event loop: ``publish`` is called there (via call_soon_threadsafe)."""

    def __init__(self, books: dict[str, Depth], governance: Iterable[dict[str, Any]] = ()) -> None:
        self.seq: dict[str, int] = {}
        self.height = 0
        self.books: dict[str, Depth] = {m: _copy(d) for m, d in books.items()}
        self.trades: dict[str, deque[dict[str, Any]]] = {}
        # Governance's latest events (the read model's, as the node started), for snapshots.
        self.governance: deque[dict[str, Any]] = deque(governance, maxlen=GOVERNANCE_IN_SNAPSHOT)
        self.subscribers: dict[str, set[Connection]] = {}
        self.connections_by_ip = OpenPerKey(CONNECTIONS_PER_IP_MAX)
        self.subscribe_limits = RateLimiter(SUBSCRIBE_RATE_PER_IP, SUBSCRIBE_BURST_PER_IP)

    def admit(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False (and not counted) beyond the limit."""
        return self.connections_by_ip.admit(ip)

    def release(self, ip: str) -> None:
        self.connections_by_ip.release(ip)

    def publish(self, update: BlockUpdate, books: dict[str, Depth]) -> None:
        self.height = update.height
        for market_id, depth in sorted(books.items()):
            old = self.books.get(market_id, {"bids": [], "asks": []})
            changes = {side: _diff(old[side], depth[side]) for side in ("bids", "asks")}
            self.books[market_id] = _copy(depth)
            if changes["bids"] or changes["asks"]:
                self._send(f"book:{market_id}", {"type": "delta", **changes}, update.height)
        for market_id, trades in sorted(update.trades.items()):
            kept = self.trades.setdefault(market_id, deque(maxlen=TRADES_IN_SNAPSHOT))
            kept.extend(trades)
            self._send(f"trades:{market_id}", {"type": "trades", "trades": trades}, update.height)
        for owner, items in sorted(update.accounts.items()):
            self._send(f"account:{owner}", {"type": "update", "events": items}, update.height)
        if update.governance:
            self.governance.extend(update.governance)
            message = {"type": "events", "events": update.governance}
            self._send(GOVERNANCE_CHANNEL, message, update.height)

    def subscribe(
        self, connection: Connection, channel: str, snapshot: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Register, and return the snapshot message (seq = the channel's current one)."""
        connection.channels.add(channel)
        self.subscribers.setdefault(channel, set()).add(connection)
        return {
            "channel": channel, "seq": self.seq.get(channel, 0), "type": "snapshot",
            "height": self.height, **snapshot(),
        }  # fmt: skip

    def book_snapshot(self, market_id: str) -> dict[str, Any]:
        return _copy(self.books.get(market_id, {"bids": [], "asks": []}))

    def trades_snapshot(self, market_id: str) -> dict[str, Any]:
        return {"trades": list(self.trades.get(market_id, ()))}

    def governance_snapshot(self) -> dict[str, Any]:
        return {"events": list(self.governance)}

    def unsubscribe(self, connection: Connection, channel: str) -> None:
        connection.channels.discard(channel)
        members = self.subscribers.get(channel)
        if members is not None:
            members.discard(connection)
            if not members:
                del self.subscribers[channel]

    def drop(self, connection: Connection) -> None:
        for channel in list(connection.channels):
            self.unsubscribe(connection, channel)

    def _send(self, channel: str, message: dict[str, Any], height: int) -> None:
        seq = self.seq[channel] = self.seq.get(channel, 0) + 1
        subscribers = list(self.subscribers.get(channel, ()))
        if not subscribers:
            return
        # Rendered once, here: its bytes count against each subscriber's queue (a block's
        # trades or an account's events have no bound of their own: 2,000 of them unread held
        # hundreds of MB), and a message is not rendered again for every subscriber.
        text = render({"channel": channel, "seq": seq, "height": height, **message})
        for connection in subscribers:
            connection.offer(text)


def render(message: dict[str, Any]) -> str:
    """A message as the streams send it: compact JSON."""
    return json.dumps(message, separators=(",", ":"))


def _diff(old: list[list[int]], new: list[list[int]]) -> list[list[int]]:
    """Levels that changed: [price, size], size 0 for a level that left the view."""
    before = {level[0]: level[1] for level in old}
    after = {level[0]: level[1] for level in new}
    changed = [[p, s] for p, s in after.items() if before.get(p) != s]
    changed += [[p, 0] for p in before if p not in after]
    return sorted(changed)


def _copy(depth: Depth) -> Depth:
    return {"bids": [list(x) for x in depth["bids"]], "asks": [list(x) for x in depth["asks"]]}
