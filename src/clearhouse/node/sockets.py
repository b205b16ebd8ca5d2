"""The WebSocket endpoint: ``{"op": "subscribe" | "unsubscribe", "channel": ...}`` with
channels ``book:<market>``, ``trades:<market>`` and ``account:<address>`` (see ``streams``)."""

from __future__ import annotations

import asyncio
import json
from asyncio import Task
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from clearhouse.core.ids import Address, MarketId
from clearhouse.node import views
from clearhouse.node.context import NodeContext, SocketContext
from clearhouse.node.streams import (
    CONNECTIONS_PER_IP_MAX,
    SUBSCRIPTIONS_PER_CONNECTION_MAX,
    Connection,
)

router = APIRouter()
MESSAGE_BYTES_MAX = 4_096
CLOSE_WAIT_SECONDS = 5.0  # how long a refused connection's queued messages may take to leave
_CLOSE_UNSUPPORTED: dict[str, Any] = {}  # queued last: the pump closes with 1003 (by identity)


@router.websocket("/v1/ws")
async def stream(socket: WebSocket, ctx: SocketContext) -> None:
    await socket.accept()
    ip = socket.client.host if socket.client is not None else "unknown"
    if not ctx.hub.admit(ip):  # say why, then close as a policy violation (1008)
        await socket.send_text(json.dumps(_error(
            "TOO_MANY_CONNECTIONS", f"at most {CONNECTIONS_PER_IP_MAX} connections per address",
        )))  # fmt: skip
        await socket.close(code=1008, reason="too many connections from this address")
        return
    try:
        await _serve(socket, ctx)
    finally:
        ctx.hub.release(ip)


async def _serve(socket: WebSocket, ctx: NodeContext) -> None:
    connection = Connection()
    sender = asyncio.create_task(_pump(socket, connection))
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:  # a binary frame: say why, then close as RFC 6455 asks (1003)
                await _refuse_binary(socket, connection, sender)
                break
            connection.offer(_on_message(ctx, text, connection))
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left (or the server is closing): nothing to keep
    finally:
        ctx.hub.drop(connection)
        sender.cancel()


async def _refuse_binary(socket: WebSocket, connection: Connection, sender: Task[None]) -> None:
    """The messages already queued, then an error frame, then a close with 1003 (unsupported
    data): the client learns what it did, never just a dropped connection."""
    connection.offer(_error("UNSUPPORTED_DATA", "binary frames are not accepted: send JSON text"))
    connection.offer(_CLOSE_UNSUPPORTED)
    await asyncio.wait({sender}, timeout=CLOSE_WAIT_SECONDS)


def _on_message(ctx: NodeContext, text: str, connection: Connection) -> dict[str, Any]:
    if len(text) > MESSAGE_BYTES_MAX:
        return _error("BAD_MESSAGE", "message too long")
    try:
        message = json.loads(text)
        op, channel = message["op"], message["channel"]
        assert isinstance(op, str) and isinstance(channel, str)
    except (ValueError, KeyError, TypeError, AssertionError):
        return _error("BAD_MESSAGE", 'expected {"op": "subscribe", "channel": "..."}')
    if op == "unsubscribe":
        channel = _canonical(channel)
        ctx.hub.unsubscribe(connection, channel)
        return {"type": "unsubscribed", "channel": channel}
    if op != "subscribe":
        return _error("BAD_MESSAGE", f"unknown op {op!r}")
    if len(connection.channels) >= SUBSCRIPTIONS_PER_CONNECTION_MAX:
        return _error("TOO_MANY_SUBSCRIPTIONS", "at most 64 channels per connection")
    channel = _canonical(channel)
    snapshot = _snapshot_of(ctx, channel)
    if isinstance(snapshot, dict):
        return snapshot
    return ctx.hub.subscribe(connection, channel, snapshot)


def _canonical(channel: str) -> str:
    """Addresses have one spelling on the streams: lower case (as wallets' EIP-55 mixed case
    names the same account)."""
    kind, separator, target = channel.partition(":")
    return f"{kind}{separator}{target.lower()}" if kind == "account" else channel


def _snapshot_of(ctx: NodeContext, channel: str) -> Callable[[], dict[str, Any]] | dict[str, Any]:
    kind, _, target = channel.partition(":")
    if kind in ("book", "trades"):
        if MarketId(target) not in ctx.engine.state.markets:
            return _error("UNKNOWN_MARKET", f"no market {target!r}")
        if kind == "book":
            return lambda: ctx.hub.book_snapshot(target)
        return lambda: ctx.hub.trades_snapshot(target)
    if kind == "account" and len(target) == 42 and target.startswith("0x"):
        owner = Address(target.lower())

        def account_snapshot() -> dict[str, Any]:
            # The account as of this height; the stream skips updates it already holds.
            with ctx.sequencer.lock:
                return {"account": views.account(ctx.engine, owner),
                        "height": ctx.sequencer.chain.height}  # fmt: skip

        return account_snapshot
    return _error("UNKNOWN_CHANNEL", "channels: book:<market>, trades:<market>, account:<address>")


async def _pump(socket: WebSocket, connection: Connection) -> None:
    while True:
        message = await connection.queue.get()
        if message is None:  # the client fell too far behind: it resubscribes for a snapshot
            await socket.close(code=1013, reason="too slow: resubscribe for a snapshot")
            return
        if message is _CLOSE_UNSUPPORTED:
            await socket.close(code=1003, reason="binary frames are not accepted")
            return
        await socket.send_text(json.dumps(message, separators=(",", ":")))


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}}
