"""The WebSocket endpoint on a real server: error frames name their channel, subscriptions per
connection and per address are limited, a silent connection hears a heartbeat, and an account
snapshot is the same rendering GET /v1/accounts serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.unit.node.test_sequencer import TRADER
from tests.unit.node.test_viewcache import funded, serving  # noqa: F401  (a fixture)
from websockets.sync.client import ClientConnection, connect

from clearhouse.node import sockets
from clearhouse.node.sequencer import Sequencer
from clearhouse.node.streams import SUBSCRIPTIONS_PER_CONNECTION_MAX


@pytest.fixture
def client(funded: tuple[FastAPI, Sequencer]) -> Iterator[httpx.Client]:  # noqa: F811
    yield from serving(funded[0])


def _socket(client: httpx.Client) -> ClientConnection:
    return connect(str(client.base_url).replace("http://", "ws://") + "/v1/ws", max_size=2**24)


def _ask(socket: ClientConnection, op: str, channel: str) -> dict[str, Any]:
    socket.send(json.dumps({"op": op, "channel": channel}))
    answer: dict[str, Any] = json.loads(socket.recv(timeout=10))
    return answer


def test_an_error_frame_names_the_channel_it_refuses(client: httpx.Client) -> None:
    with _socket(client) as socket:
        unknown = _ask(socket, "subscribe", "book:NOPE-PERP")
        assert unknown["type"] == "error" and unknown["channel"] == "book:NOPE-PERP"
        assert unknown["error"]["code"] == "UNKNOWN_MARKET"
        assert _ask(socket, "subscribe", "weather:today")["channel"] == "weather:today"
        socket.send("not json")
        assert json.loads(socket.recv(timeout=10))["channel"] is None


def test_an_account_channel_names_an_address(client: httpx.Client) -> None:
    """42 characters after "0x" that are no hexadecimal address got a snapshot of an empty
    account and a channel that never speaks: they are refused, as any unknown channel."""
    with _socket(client) as socket:
        for target in (
            "0x" + "G" * 40,
            "0x" + "\u00e9" * 40,
            "0x" + "ab" * 19 + "a ",
            "0x" + "ab" * 20 + "\n",
        ):  # Python's "$" matched before a newline
            refused = _ask(socket, "subscribe", f"account:{target}")
            assert refused["type"] == "error", refused
            assert refused["error"]["code"] == "UNKNOWN_CHANNEL"
        assert _ask(socket, "subscribe", f"account:{'0x' + 'ab' * 20}")["type"] == "snapshot"


def test_subscriptions_per_connection_are_limited(client: httpx.Client) -> None:
    with _socket(client) as socket:
        for n in range(SUBSCRIPTIONS_PER_CONNECTION_MAX):
            address = f"0x{n:040x}"
            assert _ask(socket, "subscribe", f"account:{address}")["type"] == "snapshot"
        refused = _ask(socket, "subscribe", "book:BTC-PERP")
        assert refused["error"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        assert refused["channel"] == "book:BTC-PERP"
        again = _ask(socket, "subscribe", f"account:{0:#042x}")  # one it holds: a refresh
        assert again["type"] == "snapshot"


def test_subscriptions_per_address_are_rate_limited(
    funded: tuple[FastAPI, Sequencer],  # noqa: F811
    client: httpx.Client,
) -> None:
    limits = funded[0].state.context.hub.subscribe_limits
    limits.rate = 0.01  # the burst as configured; a refill too slow to matter on a busy machine
    answers = []
    with _socket(client) as socket:
        for _ in range(int(limits.burst) + 10):  # past the burst
            answers.append(_ask(socket, "subscribe", "book:BTC-PERP")["type"])
            _ask(socket, "unsubscribe", "book:BTC-PERP")
        refused = _ask(socket, "subscribe", "book:BTC-PERP")
    assert "snapshot" in answers
    assert refused["error"]["code"] == "RATE_LIMITED"
    assert refused["error"]["retry_after_seconds"] > 0


def test_a_silent_connection_hears_a_heartbeat(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sockets, "HEARTBEAT_SECONDS", 0.2)
    with _socket(client) as socket:
        beat = json.loads(socket.recv(timeout=5))
    assert beat["type"] == "heartbeat" and isinstance(beat["height"], int)


def test_an_account_snapshot_is_the_rendering_the_http_read_serves(
    funded: tuple[FastAPI, Sequencer],  # noqa: F811
    client: httpx.Client,
) -> None:
    app = funded[0]
    http = client.get(f"/v1/accounts/{TRADER}")
    computed = app.state.context.views.computed
    with _socket(client) as socket:
        snapshot = _ask(socket, "subscribe", f"account:{TRADER.upper().replace('0X', '0x')}")
    assert snapshot["type"] == "snapshot" and snapshot["channel"] == f"account:{TRADER}"
    assert snapshot["account"] == http.json()
    assert snapshot["height"] == int(http.headers["X-Clearhouse-Height"])
    assert app.state.context.views.computed == computed  # read once, by the first reader
