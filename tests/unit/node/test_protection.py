"""Rate limits and the status each engine rejection gets over HTTP."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from clearhouse.core.errors import RejectReason
from clearhouse.node import api
from clearhouse.node.errors import status_of
from clearhouse.node.protection import RateLimiter


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(rate=1.0, burst=3.0)
    assert [limiter.allow("1.2.3.4") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.allow("1.2.3.4")
    assert 0.9 < wait <= 1.0
    assert limiter.allow("5.6.7.8") == 0.0  # another key has its own bucket


def test_weights_count_against_the_bucket() -> None:
    limiter = RateLimiter(rate=10.0, burst=20.0)
    assert limiter.allow("k", 20.0) == 0.0
    assert limiter.allow("k", 1.0) > 0.0


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(rate=0.0, burst=0.0)
    assert all(limiter.allow("k", 1_000.0) == 0.0 for _ in range(100))


def test_every_rejection_has_a_fitting_status() -> None:
    allowed = {400, 403, 409, 422, 503}
    assert {status_of(r) for r in RejectReason} <= allowed
    assert status_of(RejectReason.NONCE_ALREADY_USED) == 409
    assert status_of(RejectReason.AGENT_NOT_ALLOWED) == 403
    assert status_of(RejectReason.INSUFFICIENT_MARGIN) == 422
    assert status_of(RejectReason.ORACLE_STALE) == 503
    assert status_of(RejectReason.MALFORMED_COMMAND) == 400


class _Gate:
    """Commands-first gate that never holds a read back."""

    async def wait(self) -> None:
        return None


def _protected(answer: asyncio.Event) -> tuple[Any, list[int]]:
    """The node's protection around an app whose answers wait for ``answer``."""
    started: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(1)
        await answer.wait()  # an answer the client is not reading: the send does not return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    context = SimpleNamespace(
        commands_first=_Gate(), sequencer=SimpleNamespace(failure=None),
        views=SimpleNamespace(peek=lambda key: None),
    )  # fmt: skip
    metrics = SimpleNamespace(requests=SimpleNamespace(labels=lambda s: SimpleNamespace(
        inc=lambda: None)), rate_limited=SimpleNamespace(inc=lambda: None))  # fmt: skip
    protected = api._Protection(app, RateLimiter(0.0, 0.0), metrics, context)  # type: ignore[arg-type]
    return protected, started


async def _get(protected: Any, ip: str, answers: list[int]) -> None:
    scope = {"type": "http", "method": "GET", "path": "/v1/blocks/1", "query_string": b"",
             "headers": [], "client": (ip, 1)}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answers.append(message["status"])

    await protected(scope, receive, send)


def test_reads_one_address_leaves_unanswered_are_bounded() -> None:
    """An answer its client does not read holds the node's memory: one address may have 32
    reads in flight; the 33rd is refused at once (429) while another address is served, and
    once answers go out, reads are taken again."""

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        answer = asyncio.Event()
        protected, started = _protected(answer)
        held: list[int] = []
        reads = [asyncio.create_task(_get(protected, "6.6.6.6", held))
                 for _ in range(api.READS_IN_FLIGHT_PER_IP_MAX + 1)]  # fmt: skip
        other: list[int] = []
        elsewhere = asyncio.create_task(_get(protected, "7.7.7.7", other))
        await asyncio.sleep(0.05)
        refused = list(held)  # only the refusal has answered so far
        answer.set()
        await asyncio.gather(*reads, elsewhere)
        again: list[int] = []
        await _get(protected, "6.6.6.6", again)
        assert len(started) == api.READS_IN_FLIGHT_PER_IP_MAX + 2
        return refused, other, again

    refused, other, again = asyncio.run(scenario())
    assert refused == [429]
    assert other == [200] and again == [200]


class _Commands(_Gate):
    """Commands-first gate that counts commands and holds nothing back."""

    def arrived(self) -> int:
        return 0

    def answered(self, number: int) -> None:
        return None


def _parsing(limiter: RateLimiter) -> tuple[Any, list[int]]:
    """The node's protection around an app that stands for the parsing of a body: what it
    receives reached the parser."""
    parsed: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        parsed.append(len(message["body"]))
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    context = SimpleNamespace(commands_first=_Commands(), sequencer=SimpleNamespace(failure=None),
                              views=SimpleNamespace(peek=lambda key: None))  # fmt: skip
    metrics = SimpleNamespace(requests=SimpleNamespace(labels=lambda s: SimpleNamespace(
        inc=lambda: None)), rate_limited=SimpleNamespace(inc=lambda: None))  # fmt: skip
    return api._Protection(app, limiter, metrics, context), parsed  # type: ignore[arg-type]


def _post(protected: Any, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] = json.loads(message["body"])

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": [], "client": ("6.6.6.6", 1)}  # fmt: skip
    asyncio.run(protected(scope, receive, send))
    return answer["status"], answer["body"]


def test_a_body_is_paid_for_by_its_size_before_it_is_parsed() -> None:
    """A 4 MB batch that fails validation (a list of 1.9 million integers) took the node
    ~170 ms to parse and paid only its arrival's 20, so that one address could keep the
    node's event loop busy with a tenth of its budget: a body now weighs one per 4 KiB before
    anything parses it, whatever the route makes of it afterwards."""
    protected, parsed = _parsing(RateLimiter(rate=100.0, burst=200.0))
    junk = b"[" + b",".join([b"1"] * 300_000) + b"]"  # 600 KB: 146 of the burst's 200
    assert _post(protected, "/v1/commands/batch", junk)[0] == 400  # parsed, and refused
    status, body = _post(protected, "/v1/commands/batch", junk)  # at once: over the budget
    assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")
    assert body["error"]["retry_after_seconds"] > 0
    assert parsed == [len(junk)]


def test_a_body_heavier_than_the_burst_is_refused_before_it_is_parsed() -> None:
    protected, parsed = _parsing(RateLimiter(rate=100.0, burst=200.0))
    status, body = _post(protected, "/v1/commands/batch", b" " * 1_000_000)
    assert (status, body["error"]["code"]) == (413, "BATCH_TOO_LARGE")
    assert parsed == []


def test_only_the_batch_route_takes_a_batch_sized_body() -> None:
    """Any path ending in /batch (a route that does not exist) took 4 MB for the weight of a
    batch's arrival."""
    protected, parsed = _parsing(RateLimiter(rate=0.0, burst=0.0))
    status, body = _post(protected, "/v1/nothing/batch", b" " * (api.BODY_BYTES_MAX + 1))
    assert (status, body["error"]["code"]) == (413, "REQUEST_TOO_LARGE")
    assert _post(protected, "/v1/commands/batch", b" " * (api.BODY_BYTES_MAX + 1))[0] == 400
    assert parsed == [api.BODY_BYTES_MAX + 1]


def test_the_nesting_check_costs_linear_time_in_the_body() -> None:
    """A body of unterminated strings (``"\\"\\"\\"…`` after 17 brackets) was quadratic in the
    check that runs before parsing, on the event loop: every quote began a string that ran to
    the end and failed. 64 KiB froze a node for 18.7 s (a 4 MiB batch for hours); the check's
    pattern now always matches at once, an unterminated string running to the end of the text."""
    import time

    from clearhouse.node.governance import _nesting

    hostile = b"[" * 17 + b'"' + b'\\"' * 32_000  # 64 KiB: the most any route but a batch takes
    started = time.perf_counter()
    assert api._nested_too_deep(hostile)  # refused: its brackets never close (no JSON)
    assert time.perf_counter() - started < 0.5
    assert not api._nested_too_deep(b"[]" * 9 + b'"' + b"[" * 30)  # brackets in the open string
    assert api._nested_too_deep(b"[" * 17 + b"]" * 17)
    assert not api._nested_too_deep(b'["[[[[[[[[[[[[[[[[[[[", "\\\\"]')  # brackets in a string
    assert api._nested_too_deep(b'["\\"", ' + b"[" * 17 + b"]" * 17 + b"]")
    assert _nesting(hostile.decode()[:16_000]) == 17  # a proposal's simulation, read on every GET
    assert _nesting('{"a": "x\\\\", "b": [[1]]}') == 3
    assert time.perf_counter() - started < 0.5
