"""Commands first (``node/priority.py``): a read gives way to the command requests that arrived
before it, never to those after it, and never for longer than READ_WAIT_SECONDS_MAX."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from tests.unit.node.test_sequencer import TRADER, RecordingJournal, _sequencer
from tests.unit.node.test_viewcache import serving

from clearhouse.node.api import ApiSettings, create_app
from clearhouse.node.context import YIELD_SECONDS_MAX, NodeContext
from clearhouse.node.metrics import NodeMetrics
from clearhouse.node.priority import READ_WAIT_SECONDS_MAX, CommandsFirst
from clearhouse.node.sequencer import Sequencer


def _read(gate: CommandsFirst, done: list[str]) -> asyncio.Task[None]:
    async def read() -> None:
        await gate.wait()
        done.append("read")

    return asyncio.get_running_loop().create_task(read())


def test_a_read_waits_for_the_command_ahead_of_it_and_no_longer() -> None:
    async def scenario() -> list[str]:
        gate, done = CommandsFirst(), []
        command = gate.arrived()
        reader = _read(gate, done)
        for _ in range(5):
            await asyncio.sleep(0)
        assert done == [], "the read went ahead of the command"
        done.append("command")
        gate.answered(command)
        await reader
        return done

    assert asyncio.run(scenario()) == ["command", "read"]


def test_a_read_never_waits_for_commands_that_arrived_after_it() -> None:
    """A steady stream of commands cannot hold a read back: only the ones ahead of it count."""

    async def scenario() -> list[str]:
        gate, done = CommandsFirst(), []
        first = gate.arrived()
        reader = _read(gate, done)
        await asyncio.sleep(0)
        later = gate.arrived()  # arrives while the read waits
        gate.answered(first)
        await asyncio.wait_for(reader, READ_WAIT_SECONDS_MAX / 2)
        assert gate.open == 1
        gate.answered(later)
        return done

    assert asyncio.run(scenario()) == ["read"]


def test_a_read_without_commands_ahead_goes_at_once() -> None:
    async def scenario() -> None:
        gate, done = CommandsFirst(), []
        await asyncio.wait_for(_read(gate, done), 0.01)
        assert done == ["read"]

    asyncio.run(scenario())


def test_a_read_waits_at_most_its_bound_for_a_command_that_takes_long() -> None:
    async def scenario() -> float:
        gate, done = CommandsFirst(), []
        gate.arrived()  # never answered
        started = time.perf_counter()
        await _read(gate, done)
        return time.perf_counter() - started

    waited = asyncio.run(scenario())
    assert READ_WAIT_SECONDS_MAX * 0.9 <= waited < 1.0


def test_a_worker_thread_gives_way_to_the_commands_ahead_of_it_and_no_longer() -> None:
    """A heavy view's recomputation, between its parts."""
    gate = CommandsFirst()
    first = gate.arrived()
    done: list[float] = []
    worker = threading.Thread(target=lambda: (gate.wait_blocking(5.0), done.append(1.0)))
    worker.start()
    time.sleep(0.05)
    later = gate.arrived()  # never counts for the worker: it came after
    assert not done, "the worker went ahead of the command"
    gate.answered(first)
    worker.join(1.0)
    assert done and not worker.is_alive()
    gate.answered(later)


def test_a_worker_thread_waits_at_most_its_bound() -> None:
    gate = CommandsFirst()
    gate.arrived()  # never answered
    started = time.perf_counter()
    gate.wait_blocking(0.05)
    assert 0.045 <= time.perf_counter() - started < 1.0


# ── Through the API ────────────────────────────────────────────────────────────────────────


@pytest.fixture
def dev_node() -> Iterator[tuple[httpx.Client, Sequencer, NodeContext]]:
    sequencer = _sequencer(RecordingJournal())
    settings = ApiSettings(chain_id=1, verifying_contract="0x" + "11" * 20, dev=True)
    app: FastAPI = create_app(sequencer, settings, NodeMetrics(sequencer))
    sequencer.start()
    try:
        context = app.state.context
        yield from ((client, sequencer, context) for client in serving(app))
    finally:
        sequencer.stop()


def test_a_read_arriving_while_a_command_waits_for_its_block_is_answered_after_it(
    dev_node: tuple[httpx.Client, Sequencer, NodeContext],
) -> None:
    client, sequencer, context = dev_node
    gate = context.commands_first
    assert client.get("/health").status_code == 200
    answered: dict[str, float] = {}

    def command() -> None:
        body = {"address": TRADER, "amount_usdc": 100}
        assert client.post("/v1/dev/faucet", json=body).status_code == 200
        answered["command"] = time.perf_counter()

    def read() -> None:
        assert client.get("/health").status_code == 200
        answered["read"] = time.perf_counter()

    with sequencer.lock:  # the writer cannot make the command's block yet
        writer = threading.Thread(target=command)
        writer.start()
        deadline = time.monotonic() + 5
        while not gate.open and time.monotonic() < deadline:
            time.sleep(0.001)
        started = time.perf_counter()
        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(READ_WAIT_SECONDS_MAX / 5)
        assert "read" not in answered, "the read went ahead of the command in flight"
    writer.join(10)
    reader.join(10)
    assert answered["read"] >= answered["command"] or (
        answered["read"] - started >= READ_WAIT_SECONDS_MAX * 0.9  # its bound ran out first
    )


def test_a_view_gives_way_to_commands_for_a_bounded_time_in_all(
    dev_node: tuple[httpx.Client, Sequencer, NodeContext],
) -> None:
    """Under a steady stream of commands a heavy view is slowed, never held back for long:
    its parts give way ``YIELD_SECONDS_MAX`` in all, however many they are."""
    context = dev_node[2]
    context.commands_first.arrived()  # a command that is never answered
    give_way = context.give_way()
    started = time.perf_counter()
    for _ in range(20):
        give_way()
    assert YIELD_SECONDS_MAX * 0.9 <= time.perf_counter() - started < YIELD_SECONDS_MAX + 0.5


def test_a_command_whose_body_never_comes_holds_no_read_back(
    dev_node: tuple[httpx.Client, Sequencer, NodeContext],
) -> None:
    """Once a stall: a command counted from its headers, so one client sending a command's
    headers and part of its body, then nothing, made every read on the node wait its whole
    bound (READ_WAIT_SECONDS_MAX, 25 times a read's cost) for as long as it kept the
    connection open. A command counts from when its body is whole."""
    client, _, context = dev_node
    host, port = client.base_url.host, client.base_url.port
    assert port is not None
    with socket.create_connection((host, port), timeout=10) as stalled:
        stalled.sendall(b"POST /v1/commands HTTP/1.1\r\nHost: node\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                        b'{"command": ')  # fmt: skip
        time.sleep(0.2)  # the node has read the headers and waits for the rest
        assert context.commands_first.open == 0
        waits = []
        for _ in range(5):
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            waits.append(time.perf_counter() - started)
        assert min(waits) < READ_WAIT_SECONDS_MAX / 2, waits
