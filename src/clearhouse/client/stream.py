"""Subscriptions with automatic resync.

Each channel's messages are numbered. The stream remembers the last ``seq`` per channel; a gap
(a message lost, or the node dropping a slow reader) makes it subscribe again, which brings a
fresh snapshot, and a lost connection makes it reconnect and resubscribe to everything. What
the caller iterates over is therefore always a snapshot followed by contiguous updates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

from clearhouse.client.addresses import normalize_address

RECONNECT_DELAY_MAX = 5.0


class Stream:
    def __init__(self, url: str, channels: Sequence[str]) -> None:
        base = url.rstrip("/")
        self.url = base.replace("https://", "wss://").replace("http://", "ws://") + "/v1/ws"
        self.channels = [_channel(c) for c in channels]
        self.seq: dict[str, int] = {}
        self.snapshot_height: dict[str, int] = {}
        self.gaps = 0  # resyncs after a missing seq
        self.reconnects = 0

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        delay = 0.1
        while True:
            try:
                async with websockets.connect(self.url, max_size=2**24) as socket:
                    delay = 0.1
                    self.seq.clear()
                    for channel in self.channels:
                        await _subscribe(socket, channel)
                    async for raw in socket:
                        message = json.loads(raw)
                        if await self._accept(socket, message):
                            yield message
            except (ConnectionClosed, OSError):
                self.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(RECONNECT_DELAY_MAX, delay * 2)

    async def _accept(self, socket: Any, message: dict[str, Any]) -> bool:
        """Whether to hand ``message`` on; resubscribes on a gap."""
        channel = message.get("channel")
        kind = message.get("type")
        if kind == "snapshot" and isinstance(channel, str):
            self.seq[channel] = message["seq"]
            self.snapshot_height[channel] = message["height"]
            return True
        if not isinstance(channel, str) or channel not in self.seq:
            return kind == "error"  # updates before the snapshot are covered by it
        if message["seq"] != self.seq[channel] + 1:
            self.gaps += 1
            del self.seq[channel]
            await _subscribe(socket, channel)
            return False
        self.seq[channel] = message["seq"]
        # An account snapshot is read from state at its height; updates up to it are in it.
        return not (
            channel.startswith("account:")
            and message["height"] <= self.snapshot_height.get(channel, -1)
        )


def _channel(name: str) -> str:
    """``account:<address>`` with the address in the node's form (a checksummed one too)."""
    kind, _, address = name.partition(":")
    return f"account:{normalize_address(address)}" if kind == "account" else name


async def _subscribe(socket: Any, channel: str) -> None:
    await socket.send(json.dumps({"op": "subscribe", "channel": channel}))
