"""The node's HTTP server (``node/server.py``): uvicorn with a deadline on receiving a request."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, WebSocket
from tests.node.conftest import free_port
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from clearhouse.node import server
from clearhouse.node.server import (
    WS_MESSAGE_BYTES_MAX,
    NodeConfig,
    RequestDeadline,
    uvicorn_config,
)

DEADLINE = 0.3


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(DEADLINE * 3)  # the app's time is not the client's
        return {"status": "ok"}

    @app.post("/echo")
    async def echo_body(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.websocket("/ws")
    async def echo(socket: WebSocket) -> None:
        await socket.accept()
        while True:
            await socket.send_text(await socket.receive_text())

    return app


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(server, "REQUEST_SECONDS_MAX", DEADLINE)
    chosen = free_port()
    config = uvicorn.Config(_app(), port=chosen, log_config=None, http=RequestDeadline,
                            ws_max_size=WS_MESSAGE_BYTES_MAX)  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield chosen
    running.should_exit = True
    thread.join(10)


def _closed_within(connection: socket.socket, seconds: float) -> bool:
    connection.settimeout(seconds)
    try:
        return connection.recv(1_000) == b""
    except TimeoutError:
        return False


def test_a_request_that_never_arrives_whole_is_closed(port: int) -> None:
    """Once a way to use up the node's file descriptors: uvicorn held a connection open for
    ever that sent nothing, part of its headers, or part of its body."""
    started = time.monotonic()
    partial = [
        b"",
        b"GET /slow HTTP/1.1\r\nHo",
        b"POST /echo HTTP/1.1\r\nHost: node\r\nContent-Length: 100\r\n\r\n{",
    ]
    stalled = []
    for data in partial:
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection.sendall(data)
        stalled.append(connection)
    try:
        assert all(_closed_within(c, DEADLINE * 10) for c in stalled)
    finally:
        for connection in stalled:
            connection.close()
    assert time.monotonic() - started < DEADLINE * 10


def test_an_answer_and_a_websocket_may_take_longer_than_the_deadline(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.get("/slow").json() == {"status": "ok"}
        assert client.get("/slow").json() == {"status": "ok"}  # the same connection, kept
        assert client.post("/echo", content=b"x" * 1_000).json() == {"bytes": 1_000}
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as stream:
        time.sleep(DEADLINE * 2)
        stream.send("still here")
        assert stream.recv(timeout=10) == "still here"


def test_a_websocket_message_past_the_limit_closes_with_1009(port: int) -> None:
    """Once 16 MiB a message (uvicorn's default) for a protocol whose messages are 4,096
    characters at most: compressed, a client sent 15 MB of text in a few kilobytes, and the
    node inflated it, 16 connections per address at a time."""
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10, max_size=None) as stream:
        assert stream.protocol.extensions, "compression negotiated"
        stream.send("é" * (WS_MESSAGE_BYTES_MAX // 2))  # at the limit: read
        assert len(stream.recv(timeout=10)) == WS_MESSAGE_BYTES_MAX // 2
        stream.send("a" * 15_000_000)
        with pytest.raises(ConnectionClosed) as closed:
            stream.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_the_node_serves_with_the_deadline_and_the_message_limit(tmp_path: Path) -> None:
    served = uvicorn_config(FastAPI(), NodeConfig(data_dir=tmp_path))
    assert served.http is RequestDeadline
    assert served.ws_max_size == WS_MESSAGE_BYTES_MAX
