"""The view cache: one rendering per key shared by every reader, served without the writer's
lock while fresh, recomputed as soon as a block touches its owner, and never older than
VIEW_STALE_SECONDS otherwise."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.node.conftest import free_port
from tests.unit.node.test_sequencer import TRADER, RecordingJournal, _result, _sequencer

from clearhouse.node.api import ApiSettings, create_app
from clearhouse.node.metrics import NodeMetrics
from clearhouse.node.readmodel import BlockUpdate
from clearhouse.node.sequencer import Sequencer
from clearhouse.node.viewcache import LAGGING, VIEW_STALE_SECONDS, ViewCache

OWNER = "0x" + "ab" * 20


def _counting(cache: ViewCache, height: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def compute() -> tuple[object, int]:
        calls.append(cache.height)
        return {"n": len(calls)}, height

    return calls, compute


def test_a_view_is_shared_until_a_block_touches_its_owner() -> None:
    cache = ViewCache(height=5)
    calls, compute = _counting(cache, 5)
    first = cache.get("k", compute, owner=OWNER)  # type: ignore[arg-type]
    cache.committed(BlockUpdate(6, 0, accounts={"0x" + "cd" * 20: [{}]}))  # someone else's
    assert cache.get("k", compute, owner=OWNER) is first  # type: ignore[arg-type]
    cache.committed(BlockUpdate(7, 0, accounts={OWNER: [{}]}))  # the owner's own command
    again = cache.get("k", compute, owner=OWNER)  # type: ignore[arg-type]
    assert len(calls) == 2 and json.loads(again.body) == {"n": 2}


def test_a_view_behind_the_chain_is_recomputed_after_the_stale_bound() -> None:
    cache = ViewCache(height=5)
    calls, compute = _counting(cache, 5)
    cache.get("k", compute, owner=OWNER)  # type: ignore[arg-type]
    cache.committed(BlockUpdate(6, 0))
    cache.get("k", compute, owner=OWNER)  # type: ignore[arg-type]
    assert len(calls) == 1
    time.sleep(VIEW_STALE_SECONDS + 0.05)
    cache.get("k", compute, owner=OWNER)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_a_view_of_no_one_account_is_served_at_the_last_height_only() -> None:
    """The liquidations or an ADL queue may change in any block: no lag is allowed."""
    cache = ViewCache(height=5)
    calls, compute = _counting(cache, 5)
    first = cache.get("k", compute)  # type: ignore[arg-type]
    assert cache.get("k", compute) is first  # type: ignore[arg-type]
    cache.committed(BlockUpdate(6, 0))
    cache.get("k", compute)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_a_lagging_view_of_many_accounts_lags_its_bound_whatever_blocks_touch() -> None:
    """An ADL queue ranks every holder: recomputed once a lag, not every block."""
    cache = ViewCache(height=5)
    calls, compute = _counting(cache, 5)
    cache.get("k", compute, owner=LAGGING)  # type: ignore[arg-type]
    cache.committed(BlockUpdate(6, 0, owners={LAGGING, OWNER}))
    cache.get("k", compute, owner=LAGGING)  # type: ignore[arg-type]
    assert len(calls) == 1
    time.sleep(VIEW_STALE_SECONDS + 0.05)
    cache.get("k", compute, owner=LAGGING)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_a_command_signer_is_an_owner_the_block_touched() -> None:
    """An agent authorized names no subaccount in an event; its signer's views go all the same."""
    cache = ViewCache(height=5)
    calls, compute = _counting(cache, 5)
    cache.get("k", compute, owner=OWNER)  # type: ignore[arg-type]
    cache.committed(BlockUpdate(6, 0, owners={OWNER}))
    cache.get("k", compute, owner=OWNER)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_concurrent_readers_of_one_key_compute_it_once() -> None:
    cache = ViewCache(height=1)
    calls: list[int] = []

    def slow() -> tuple[object, int]:
        calls.append(1)
        time.sleep(0.2)
        return {"big": list(range(1_000))}, 1

    readers = [threading.Thread(target=cache.get, args=("k", slow)) for _ in range(8)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(5)
    assert calls == [1]


def test_an_error_is_not_kept() -> None:
    cache = ViewCache(height=1)

    def missing() -> tuple[object, int]:
        raise LookupError("no such thing")

    for _ in range(2):
        with pytest.raises(LookupError):
            cache.get("k", missing)
    assert cache.computed == 0


# ── Through the API: reads never wait for the writer ───────────────────────────────────────


@pytest.fixture
def funded() -> tuple[FastAPI, Sequencer]:
    """An app whose sequencer made a block with a deposit for TRADER, then stopped: no block
    comes unless a test makes one."""
    sequencer = _sequencer(RecordingJournal())
    app = create_app(sequencer, ApiSettings(chain_id=1, verifying_contract="0x" + "11" * 20),
                     NodeMetrics(sequencer))  # fmt: skip
    sequencer.start()
    _result(sequencer.submit_deposit(TRADER, 0, 1_000)[0])
    sequencer.stop()
    return app, sequencer


def serving(app: FastAPI) -> Iterator[httpx.Client]:
    """The app on uvicorn on a loopback port, in a thread (its lifespan off: the tests drive
    the sequencer themselves)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, lifespan="off", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def client(funded: tuple[FastAPI, Sequencer]) -> Iterator[httpx.Client]:
    yield from serving(funded[0])


def test_a_read_while_the_writer_holds_its_lock_gets_the_last_height_at_once(
    funded: tuple[FastAPI, Sequencer], client: httpx.Client
) -> None:
    sequencer = funded[1]
    first = client.get(f"/v1/accounts/{TRADER}")
    assert first.status_code == 200 and first.json()["subaccounts"]
    answers = []
    with sequencer.lock:  # the writer, mid-block
        reader = threading.Thread(
            target=lambda: answers.append(client.get(f"/v1/accounts/{TRADER}"))
        )
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "the read waited for the writer's lock"
    assert answers[0].content == first.content
    assert answers[0].headers["X-Clearhouse-Height"] == str(sequencer.chain.height)


def test_an_acknowledged_command_is_in_the_next_read_of_its_account(
    funded: tuple[FastAPI, Sequencer], client: httpx.Client
) -> None:
    sequencer = funded[1]
    before = client.get(f"/v1/accounts/{TRADER}/subaccounts/0").json()
    sequencer._stopping = False  # the same sequencer, writing again
    sequencer._thread = threading.Thread(target=sequencer._run, daemon=True)
    sequencer.start()
    try:
        _result(sequencer.submit_deposit(TRADER, 0, 500)[0])
    finally:
        sequencer.stop()
    after = client.get(f"/v1/accounts/{TRADER}/subaccounts/0").json()
    assert after["balances"] != before["balances"]


def test_a_fresh_view_is_answered_before_routing_with_the_same_bytes(
    funded: tuple[FastAPI, Sequencer], client: httpx.Client
) -> None:
    """The second read of a view takes the fast path (``fastpath``): the framework never sees
    it, so a route that would have answered differently would show here."""
    app, sequencer = funded
    routed = client.get(f"/v1/accounts/{TRADER}")
    views = app.state.context.views
    computed = views.computed
    fast = client.get(f"/v1/accounts/{TRADER.upper().replace('0X', '0x')}")  # all caps: no sum
    assert views.computed == computed  # not computed again
    assert fast.content == routed.content
    assert fast.headers["X-Clearhouse-Height"] == routed.headers["X-Clearhouse-Height"]
    assert fast.headers["content-type"] == "application/json"
    bad = client.get(f"/v1/accounts/{TRADER}?colour=1")  # the route's own answer
    assert bad.status_code == 200 and bad.content == routed.content
    sequencer.failure = RuntimeError("disk gone")  # a failed node answers nothing from cache
    try:
        assert client.get(f"/v1/accounts/{TRADER}").status_code == 503
    finally:
        sequencer.failure = None
