"""The WebSocket endpoint: ``{"op": "subscribe" | "unsubscribe", "channel": ...}`` with
channels ``book:<market>``, ``trades:<market>``, ``account:<address>`` and ``governance`` (see
``streams``; the protocol is written down in docs/WEBSOCKET.md)."""

from __future__ import annotations

import asyncio
import json
from asyncio import Task
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from clearhouse.core.ids import Address, MarketId
from clearhouse.node import human, queries
from clearhouse.node.context import NodeContext, SocketContext
from clearhouse.node.errors import ApiError
from clearhouse.node.streams import (
    CONNECTIONS_PER_IP_MAX,
    GOVERNANCE_CHANNEL,
    SUBSCRIPTIONS_PER_CONNECTION_MAX,
    Connection,
    Hub,
    render,
)
from clearhouse.node.viewcache import View

router = APIRouter()
MESSAGE_BYTES_MAX = 4_096
CLOSE_WAIT_SECONDS = 5.0  # how long a refused connection's queued messages may take to leave
HEARTBEAT_SECONDS = 10.0  # a connection silent this long gets {"type": "heartbeat"}
SNAPSHOT_TRIES = 4  # account views read again when a block touched the account meanwhile
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
        await _serve(socket, ctx, ip)
    finally:
        ctx.hub.release(ip)


async def _serve(socket: WebSocket, ctx: NodeContext, ip: str) -> None:
    connection = Connection(ip=ip)
    sender = asyncio.create_task(_pump(socket, connection, ctx.hub))
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:  # a binary frame: say why, then close as RFC 6455 asks (1003)
                await _refuse_binary(socket, connection, sender)
                break
            reply = await _on_message(ctx, text, connection)
            # Rendered here, so that its bytes count against the connection's queue: a
            # snapshot is this connection's own (a book's, a trades'), never shared.
            connection.offer(reply if isinstance(reply, str) else render(reply))
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


async def _on_message(ctx: NodeContext, text: str, connection: Connection) -> dict[str, Any] | str:
    if len(text) > MESSAGE_BYTES_MAX:
        return _error("BAD_MESSAGE", "message too long")
    try:
        message = json.loads(text)
        op, channel = message["op"], message["channel"]
        assert isinstance(op, str) and isinstance(channel, str)
    except (ValueError, KeyError, TypeError, AssertionError):
        return _error("BAD_MESSAGE", 'expected {"op": "subscribe", "channel": "..."}')
    try:
        channel = _canonical(channel)
    except ApiError as error:  # a mistyped EIP-55 checksum: never someone else's account
        return _error(error.code, error.message, channel)
    if op == "unsubscribe":
        ctx.hub.unsubscribe(connection, channel)
        return {"type": "unsubscribed", "channel": channel}
    if op != "subscribe":
        return _error("BAD_MESSAGE", f"unknown op {op!r}", channel)
    full = len(connection.channels) >= SUBSCRIPTIONS_PER_CONNECTION_MAX
    if full and channel not in connection.channels:  # a resubscription only refreshes
        limit = f"at most {SUBSCRIPTIONS_PER_CONNECTION_MAX} channels per connection"
        return _error("TOO_MANY_SUBSCRIPTIONS", limit, channel)
    wait = ctx.hub.subscribe_limits.allow(connection.ip)
    if wait:  # each subscription is a snapshot: the one read a client can repeat at will
        return _error("RATE_LIMITED", "too many subscriptions from this address", channel,
                      retry_after_seconds=round(wait, 3))  # fmt: skip
    if channel.startswith("account:"):
        return await _subscribe_account(ctx, connection, channel)
    snapshot = _snapshot_of(ctx, channel)
    if isinstance(snapshot, dict):
        return snapshot
    return ctx.hub.subscribe(connection, channel, snapshot)


async def _subscribe_account(
    ctx: NodeContext, connection: Connection, channel: str
) -> dict[str, Any] | str:
    """The account's view (shared with GET /v1/accounts/{address}: one rendering a height),
    read on a worker thread, never on the event loop; then, on the loop, the subscription
    numbered from the hub's count. A block that touched the account after the view's height
    could already be on the stream (the view cache hears of a block before the hub does):
    then the view is read again, so that the snapshot never misses an update."""
    target = channel.partition(":")[2]
    if not human.ADDRESS_RE.fullmatch(target):  # "0x" and 40 of anything was a silent snapshot
        return _error("UNKNOWN_CHANNEL", _CHANNELS, channel)
    owner = Address(target)
    for _ in range(SNAPSHOT_TRIES):
        await ctx.commands_first.wait()  # the writer's answers go first
        try:  # a snapshot that is not fresh costs the address what the HTTP read would
            view = await asyncio.to_thread(_account_view, ctx, owner, connection.ip)
        except ApiError as error:
            return _error(error.code, error.message, channel, **error.detail)
        await ctx.commands_first.wait()  # and before its snapshot (large: 300 KB) is sent
        if ctx.views.touched_at(owner) <= view.height:
            return _snapshot_message(ctx.hub, connection, channel, view)
    return _error("BUSY", "the account changes every block: subscribe again", channel)


def _snapshot_message(hub: Hub, connection: Connection, channel: str, view: View) -> str:
    """Subscribe; the snapshot carries the view's height, and the view is spliced in as it
    was rendered: never parsed and dumped again on the event loop."""
    message = hub.subscribe(connection, channel, lambda: {"height": view.height})
    head = render(message)
    return f'{head[:-1]},"account":{view.body.decode()}}}'


def _account_view(ctx: NodeContext, owner: Address, ip: str) -> View:
    # queries.account's view: both kinds of reader share one rendering a height.
    return queries.account_view(ctx, owner, ip)


def _canonical(channel: str) -> str:
    """Addresses have one spelling on the streams: lower case (a wallet's EIP-55 mixed case
    names the same account, if its checksum is right)."""
    kind, separator, target = channel.partition(":")
    if kind != "account" or not human.ADDRESS_RE.fullmatch(target):
        return channel  # not an account's, or not an address (answered UNKNOWN_CHANNEL)
    return f"{kind}{separator}{human.address(target)}"


def _snapshot_of(ctx: NodeContext, channel: str) -> Callable[[], dict[str, Any]] | dict[str, Any]:
    if channel == GOVERNANCE_CHANNEL:
        return ctx.hub.governance_snapshot
    kind, _, target = channel.partition(":")
    if kind in ("book", "trades"):
        if MarketId(target) not in ctx.engine.state.markets:
            return _error("UNKNOWN_MARKET", f"no market {target!r}", channel)
        if kind == "book":
            return lambda: ctx.hub.book_snapshot(target)
        return lambda: ctx.hub.trades_snapshot(target)
    return _error("UNKNOWN_CHANNEL", _CHANNELS, channel)


_CHANNELS = "channels: book:<market>, trades:<market>, account:<address>, governance"


async def _pump(socket: WebSocket, connection: Connection, hub: Hub) -> None:
    while True:
        try:
            message = await asyncio.wait_for(connection.queue.get(), HEARTBEAT_SECONDS)
            connection.taken(message)
        except TimeoutError:  # silence: say the connection (and the chain's height) is alive
            message = {"type": "heartbeat", "height": hub.height}
        if message is None:  # the client fell too far behind: it resubscribes for a snapshot
            await socket.close(code=1013, reason="too slow: resubscribe for a snapshot")
            return
        if message is _CLOSE_UNSUPPORTED:
            await socket.close(code=1003, reason="binary frames are not accepted")
            return
        if not isinstance(message, str):  # a str is rendered already (a channel's, a reply)
            message = render(message)
        await socket.send_text(message)


def _error(code: str, message: str, channel: str | None = None, **detail: Any) -> dict[str, Any]:
    """An error frame; ``channel`` is the one the refused message named (null if none)."""
    return {"type": "error", "channel": channel,
            "error": {"code": code, "message": message, **detail}}  # fmt: skip
