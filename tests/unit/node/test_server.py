"""The node's HTTP server (``node/server.py``): uvicorn with a deadline on receiving a request,
bounds on a request's head and on its body's chunks, and on the connections of one address; and
a bound on the frames a WebSocket connection, and its address, send."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
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
    FrameLimit,
    NodeConfig,
    RequestDeadline,
    uvicorn_config,
)

DEADLINE = 0.3
CONNECTIONS = 4  # per address, in these tests


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
    monkeypatch.setattr(server, "CONNECTIONS_PER_IP_MAX", CONNECTIONS)
    chosen = free_port()
    running = uvicorn.Server(uvicorn_config(_app(), NodeConfig(port=chosen)))  # the node's
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
    assert served.ws is FrameLimit
    assert served.ws_max_size == WS_MESSAGE_BYTES_MAX


def _exchange(port: int, data: bytes, piece: int = 65_536) -> tuple[int, dict[str, object]]:
    """Send ``data`` in pieces of ``piece`` bytes, then read the answer to the end: its status
    and JSON body (the connection must close after it, or the read times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for start in range(0, len(data), piece):
                connection.sendall(data[start : start + piece])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused midway: the answer is already there
        answer = b""
        while chunk := connection.recv(65_536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_request_head_past_its_bound_is_refused_before_it_is_all_read(port: int) -> None:
    """Once unbounded: httptools gathers a header (and uvicorn the URL) by concatenating each
    read onto what came before, so a 160 MB header cost as much memory and a copy of all of it
    per read on the event loop (a 64 MiB header in 64 KiB reads: 17 s of CPU)."""
    start = b"GET /slow HTTP/1.1\r\nHost: node\r\nX-Padding: "
    status, body = _exchange(port, start + b"a" * 2_000_000 + b"\r\n\r\n", piece=4_096)
    assert status == 431 and body["error"] == {  # type: ignore[comparison-overlap]
        "code": "REQUEST_HEAD_TOO_LARGE",
        "message": f"a request line and headers of at most {server.HEAD_BYTES_MAX} bytes",
    }
    long_url = b"GET /slow?" + b"a=1&" * 20_000 + b" HTTP/1.1\r\nHost: node\r\n\r\n"
    assert _exchange(port, long_url, piece=1_024)[0] == 431
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        padded = client.post("/echo", content=b"x" * 100, headers={"x-padding": "a" * 16_000})
        assert padded.json() == {"bytes": 100}  # a large head within the bound, and a second
        assert client.get("/slow").status_code == 200  # request on the same connection


def test_a_request_head_past_its_bound_is_refused_when_it_comes_in_one_read(port: int) -> None:
    """A head of 40 KB sent in one piece was parsed whole within one read, before the bound
    on what came was weighed: it reached the app (200) where the same head sent in smaller
    pieces was refused. The bound is the head's, however the client's writes fall."""
    head = b"GET /slow HTTP/1.1\r\nHost: node\r\nX-Padding: " + b"a" * 40_000 + b"\r\n\r\n"
    status, body = _exchange(port, head, piece=len(head))
    assert status == 431 and body["error"]["code"] == "REQUEST_HEAD_TOO_LARGE"  # type: ignore[index]
    url = b"GET /slow?" + b"a=1&" * 9_000 + b" HTTP/1.1\r\nHost: node\r\n\r\n"
    assert _exchange(port, url, piece=len(url))[0] == 431


def test_a_body_in_tiny_chunks_is_refused(port: int) -> None:
    """Once 2.4 s of the event loop for a 4 MiB batch sent in 1-byte chunks: the parser calls
    into Python once a chunk. A body's chunks are now 256 bytes on average past the first 1,024;
    chunks of a kilobyte, or a few tiny ones, are read as before."""
    head = b"POST /echo HTTP/1.1\r\nHost: node\r\nTransfer-Encoding: chunked\r\n\r\n"
    tiny = head + b"1\r\n{\r\n" * 100_000 + b"0\r\n\r\n"
    status, body = _exchange(port, tiny)
    assert status == 400 and body["error"] == {  # type: ignore[comparison-overlap]
        "code": "BODY_TOO_FRAGMENTED",
        "message": f"a body's chunks are at least {server.BODY_PART_BYTES_MIN} bytes on average",
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        chunks = (b"x" * 1_024 for _ in range(4_096))  # a generator: sent chunked
        assert client.post("/echo", content=chunks).json() == {"bytes": 4 * 2**20}
        small = (b"x" for _ in range(500))
        assert client.post("/echo", content=small).json() == {"bytes": 500}


def test_one_address_holds_a_bounded_number_of_connections(port: int) -> None:
    """Once unbounded: one client opened 20,000 idle connections (each closed by the deadline
    only after 30 s), the node ran out of file descriptors and turned every new client away."""
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    try:
        time.sleep(DEADLINE / 3)
        status, body = _exchange(port, b"GET /slow HTTP/1.1\r\nHost: node\r\n\r\n")
        assert status == 429 and body["error"] == {  # type: ignore[comparison-overlap]
            "code": "TOO_MANY_CONNECTIONS",
            "message": f"at most {CONNECTIONS} HTTP connections per address",
        }
    finally:
        for connection in held:
            connection.close()
    time.sleep(DEADLINE / 3)  # the node sees them closed
    with ExitStack() as streams:  # an upgraded connection counts in the streams' own limit
        for _ in range(CONNECTIONS):
            streams.enter_context(connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10))
        assert httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10).status_code == 200


def test_a_refused_connection_is_read_no_further_than_its_bound(port: int) -> None:
    """Once unbounded: a refused HTTP connection was read (and its bytes dropped) for the whole
    second before its close, at whatever rate its client could push (a refused stream already
    stopped at ``REFUSED_DROP_BYTES``)."""
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    try:
        refused = socket.create_connection(("127.0.0.1", port), timeout=10)
        refused.settimeout(0.05)
        chunk, sent = b"x" * 65_536, 0
        deadline = time.monotonic() + server.REFUSED_LINGER_SECONDS * 0.8
        while time.monotonic() < deadline:
            try:
                sent += refused.send(chunk)
            except TimeoutError:
                continue  # the node no longer reads: the socket's buffers are full
            except OSError:
                break
        refused.close()
    finally:
        for connection in held:
            connection.close()
    # What the kernel's buffers hold on both ends, and the bound itself: a few MB at most,
    # where reading and dropping for the whole second takes hundreds.
    assert sent < 48 * 1024 * 1024, sent


def _stream(port: int) -> socket.socket:
    """A WebSocket opened by hand: its frames are sent as they are, as fast as they go."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    connection.sendall(f"GET /ws HTTP/1.1\r\nHost: node\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       f"Sec-WebSocket-Key: {key}\r\n\r\n".encode())  # fmt: skip
    head = b""
    while b"\r\n\r\n" not in head:
        head += connection.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return connection


def _frame(opcode: int, payload: bytes = b"") -> bytes:
    """A client's frame (masked, as a client's must be), of a payload under 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


PING, PONG, TEXT, CLOSE = 0x9, 0xA, 0x1, 0x8


def _frames_until(
    connection: socket.socket, seconds: float, count: int = 0
) -> list[tuple[int, bytes]]:
    """The node's frames (opcode, payload), read until it closes the connection, until
    ``count`` of them came (if given), or for ``seconds``."""
    connection.settimeout(seconds)
    data, frames = b"", []
    try:
        while not count or len(frames) < count:
            chunk = connection.recv(65_536)
            if not chunk:
                break
            data += chunk
            while len(data) >= 2:
                size = data[1] & 0x7F
                start = 2 if size < 126 else 4
                size = size if size < 126 else int.from_bytes(data[2:4], "big")
                if len(data) < start + size:
                    break
                frames.append((data[0] & 0x0F, data[start : start + size]))
                data = data[start + size :]
    except TimeoutError:
        pass
    return frames


def _closed_with(frames: list[tuple[int, bytes]]) -> tuple[int, str] | None:
    closes = [payload for opcode, payload in frames if opcode == CLOSE]
    if not closes:
        return None
    return int.from_bytes(closes[0][:2], "big"), closes[0][2:].decode()


def test_a_websocket_flooding_frames_is_closed_with_1008(port: int) -> None:
    """Once unmetered: pings (answered inside uvicorn's protocol) and messages (the app's),
    a few tens of microseconds each, as fast as the node read them: four connections held a
    /health probe for 2.4 s. A connection's frames past its burst close it, those after the
    limit unanswered, and another connection of the same address is served."""
    with _stream(port) as flood:
        flood.sendall(_frame(PING) * 5_000)
        frames = _frames_until(flood, 3.0)
    assert _closed_with(frames) == (1008, server.WS_FRAMES_REFUSED)
    pongs = sum(opcode == PONG for opcode, _ in frames)
    parsed_at_once = server.WS_PARSE_BYTES // len(_frame(PING)) + 1  # charged together
    assert server.WS_FRAMES_BURST - parsed_at_once <= pongs <= server.WS_FRAMES_BURST
    with _stream(port) as messages:  # text messages count alike (the app echoes them here)
        messages.sendall(_frame(TEXT, b"hello") * 1_000)
        frames = _frames_until(messages, 3.0)
    assert _closed_with(frames) == (1008, server.WS_FRAMES_REFUSED)
    assert sum(opcode == TEXT for opcode, _ in frames) <= server.WS_FRAMES_BURST
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as calm:
        calm.send("still served")
        assert calm.recv(timeout=10) == "still served"


def test_a_websocket_within_its_frame_rate_stays_open(port: int) -> None:
    """A burst below the limit, then frames at a tenth of the rate: all answered."""
    with _stream(port) as client:
        client.sendall(_frame(PING) * (server.WS_FRAMES_BURST // 2))
        assert len(_frames_until(client, 3.0, server.WS_FRAMES_BURST // 2)) == (
            server.WS_FRAMES_BURST // 2
        )
        for _ in range(10):
            client.sendall(_frame(PING, b"p") + _frame(TEXT, b"t") + _frame(PONG))
            assert _frames_until(client, 3.0, 2) == [(PONG, b"p"), (TEXT, b"t")]
            time.sleep(20 / server.WS_FRAMES_PER_SECOND)


def test_an_address_is_bounded_across_its_websockets(port: int) -> None:
    """Each connection starts with a full burst: one address reconnecting, or holding its 16
    connections, would be bounded only by how fast it reconnects. Its connections share a
    bucket too; once it is spent, a connection's next frames close it."""
    each = server.WS_FRAMES_BURST - 20  # within a connection's own burst
    answered = 0
    for _ in range(server.WS_FRAMES_PER_IP_BURST // each + 2):
        with _stream(port) as client:
            client.sendall(_frame(PING) * each)
            frames = _frames_until(client, 3.0, each)
            answered += sum(opcode == PONG for opcode, _ in frames)
            if _closed_with(frames) is not None:
                assert _closed_with(frames) == (1008, server.WS_FRAMES_PER_IP_REFUSED)
                break
    else:
        raise AssertionError(f"{answered} pings answered, none refused")
    assert answered <= server.WS_FRAMES_PER_IP_BURST + 100  # what refilled meanwhile
