"""The sequencer: acknowledgement only after the commit, idempotent resubmission, a journal
that cannot commit stops the node, a graceful stop loses nothing, snapshots restore exactly."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import verify
from clearhouse.app.ports import Snapshot, StoredBlock
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import StorageError
from clearhouse.core.ids import Address, MarketId, OracleId, Side
from clearhouse.core.messages import PlaceOrder
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND
from clearhouse.node.dev import DevFeed, Faucet
from clearhouse.node.readmodel import CommandResult
from clearhouse.node.sequencer import (
    DuplicateClientOrder,
    NodeUnavailable,
    Sequencer,
    load_snapshot,
)
from clearhouse.node.server import start_chain

TRADER = Address("0x" + "ab" * 20)


class RecordingJournal(MemoryJournal):
    """Remembers the heights committed, to check acks never run ahead of them."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.committed: set[int] = set()
        self.fail_after = fail_after

    def append(self, blocks: Sequence[StoredBlock]) -> None:
        if self.fail_after is not None and len(self.committed) >= self.fail_after:
            raise StorageError("disk full")
        super().append(blocks)
        self.committed.update(b.header.height for b in blocks)


def _sequencer(journal: MemoryJournal, **options: object) -> Sequencer:
    chain, read_model, spec = start_chain(journal)
    return Sequencer(chain, read_model, dev_feed=DevFeed(spec), faucet=Faucet(spec.relayer),
                     **options)  # type: ignore[arg-type]  # fmt: skip


def _order(nonce_offset: int = 0) -> PlaceOrder:
    now = time.time_ns()
    return PlaceOrder(
        signer=TRADER, nonce=now // NS_PER_MS + nonce_offset, expiry_ns=now + 60 * NS_PER_SECOND,
        subaccount_number=0, market_id=MarketId("BTC-PERP"), side=Side.BUY,
        size_base_quantums=100_000, price_quantums=50_000_000_000,
    )  # fmt: skip


def _result(future: Future[CommandResult]) -> CommandResult:
    return future.result(timeout=10)


def test_an_acknowledged_command_is_in_a_committed_block() -> None:
    journal = RecordingJournal()
    sequencer = _sequencer(journal)
    acks_seen: list[bool] = []
    orders = [_order(i) for i in range(20)]
    sequencer.start()
    try:
        futures = [sequencer.submit(order)[0] for order in orders]
        for future in futures:  # runs on the sequencer thread, the moment it acknowledges
            future.add_done_callback(
                lambda f: acks_seen.append(f.result().height in journal.committed)
            )
        results = [_result(f) for f in futures]
    finally:
        sequencer.stop()
    assert acks_seen == [True] * 20
    stored = {b.header.height: b for b in journal.blocks()}
    for order, result in zip(orders, results, strict=True):
        assert stored[result.height].commands[result.index] == encode_command(order)


def test_a_resubmitted_command_is_answered_once_and_journaled_once() -> None:
    journal = RecordingJournal()
    sequencer = _sequencer(journal)
    order = _order()
    first, duplicate_first = sequencer.submit(order)
    in_flight, duplicate_in_flight = sequencer.submit(order)  # not started: still queued
    sequencer.start()
    try:
        result = _result(first)
        later, duplicate_later = sequencer.submit(order)
        assert _result(later) is result
    finally:
        sequencer.stop()
    assert (duplicate_first, duplicate_in_flight, duplicate_later) == (False, True, True)
    assert in_flight is first
    data = encode_command(order)
    assert sum(c == data for b in journal.blocks() for c in b.commands) == 1


def test_a_journal_that_cannot_commit_fails_every_waiting_command_and_stops_taking_more() -> None:
    journal = RecordingJournal(fail_after=1)  # genesis commits, then the disk is full
    sequencer = _sequencer(journal)
    future, _ = sequencer.submit(_order())
    sequencer.start()
    with pytest.raises(NodeUnavailable) as failed:
        future.result(timeout=10)
    assert failed.value.code == "NODE_FAILED"
    deadline = time.monotonic() + 5
    while sequencer.failure is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(NodeUnavailable) as refused:
        sequencer.submit(_order(1))
    assert refused.value.code == "NODE_FAILED"
    assert [b.header.height for b in journal.blocks()] == [1]


def test_a_graceful_stop_puts_every_queued_command_in_a_block() -> None:
    journal = RecordingJournal()
    sequencer = _sequencer(journal)
    futures = [sequencer.submit(_order(i))[0] for i in range(50)]
    sequencer.start()
    sequencer.stop()
    assert all(f.done() and not f.exception() for f in futures)
    assert sum(len(b.commands) for b in journal.blocks()) >= 50
    with pytest.raises(NodeUnavailable) as refused:
        sequencer.submit(_order(99))
    assert refused.value.code == "NODE_STOPPING"
    assert verify(journal).blocks == len(journal.committed)


def test_a_snapshot_restores_the_engine_and_read_model_exactly() -> None:
    journal = RecordingJournal()
    sequencer = _sequencer(journal, snapshot_every=0)
    sequencer.start()
    try:
        for i in range(5):
            _result(sequencer.submit(_order(i))[0])
    finally:
        sequencer.stop()  # writes a final snapshot
    snapshot = journal.latest_snapshot()
    assert snapshot is not None and snapshot.height == sequencer.chain.height
    restored = load_snapshot(snapshot)
    assert restored is not None
    engine, read_model = restored
    assert engine.state.tree.root() == sequencer.chain.engine.state.tree.root()
    assert read_model.orders == sequencer.read_model.orders
    assert read_model.results.keys() == sequencer.read_model.results.keys()


class SnapshotRecordingJournal(RecordingJournal):
    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[Snapshot] = []

    def write_snapshot(self, snapshot: Snapshot) -> None:
        super().write_snapshot(snapshot)
        self.snapshots.append(snapshot)


class SlowToPickle:
    """Stands for a large venue's state: seconds to serialize."""

    def __reduce__(self) -> tuple[type[SlowToPickle], tuple[()]]:
        time.sleep(3)
        return (SlowToPickle, ())


def test_the_writer_does_not_wait_for_a_snapshot_to_be_serialized() -> None:
    journal = SnapshotRecordingJournal()
    sequencer = _sequencer(journal, snapshot_every=1)  # a snapshot after every block
    sequencer.read_model.orders[-1] = {"state": SlowToPickle()}
    sequencer.start()
    try:
        started = time.monotonic()
        results = [_result(sequencer.submit(_order(i))[0]) for i in range(3)]
        elapsed = time.monotonic() - started
    finally:
        del sequencer.read_model.orders[-1]  # the final snapshot, at stop, is written in line
        sequencer.stop()
    assert len(results) == 3  # accepted or refused, each answered
    # In line, the blocks after a snapshot's waited 3 s each for its serialization.
    assert elapsed < 1.5, elapsed
    assert sequencer.failure is None
    background = [s for s in journal.snapshots if s.height < sequencer.chain.height]
    assert background, "the background snapshot was not written"
    assert background[0].body.startswith(b"clearhouse-snapshot-")


def test_a_background_snapshot_restores_the_engine_as_of_its_height() -> None:
    journal = SnapshotRecordingJournal()
    sequencer = _sequencer(journal, snapshot_every=0)
    sequencer.start()
    try:
        _result(sequencer.submit(_order(0))[0])
        with sequencer.lock:
            root = sequencer.chain.engine.state.tree.root()
            height = sequencer.chain.height
            sequencer._snapshot_in_background()
        _result(sequencer.submit(_order(1))[0])  # the state moves on while the child writes
        sequencer._snapshots.wait()
    finally:
        sequencer.stop()
    snapshot = next(s for s in journal.snapshots if s.height == height)
    assert snapshot.state_root == root
    restored = load_snapshot(snapshot)
    assert restored is not None
    assert restored[0].state.tree.root() == root
    assert sequencer.chain.height > height


def test_an_unusable_snapshot_is_refused() -> None:
    journal = RecordingJournal()
    sequencer = _sequencer(journal)
    sequencer.write_snapshot()
    good = journal.latest_snapshot()
    assert good is not None
    assert load_snapshot(Snapshot(good.height, b"\x00" * 32, good.body)) is None  # wrong root
    assert load_snapshot(Snapshot(good.height, good.state_root, b"garbage")) is None
    truncated = good.body[: len(good.body) // 2]
    assert load_snapshot(Snapshot(good.height, good.state_root, truncated)) is None


def test_the_faucet_numbers_deposits_in_queue_order() -> None:
    journal = RecordingJournal()
    sequencer = _sequencer(journal)
    futures = [sequencer.submit_deposit(str(TRADER), 0, 100)[0] for _ in range(3)]
    sequencer.start()
    try:
        results = [_result(f) for f in futures]
    finally:
        sequencer.stop()
    assert all(r.rejection is None for r in results)
    assert sequencer.chain.engine.state.last_deposit_id == 3


def test_a_client_order_id_places_one_order_however_often_it_is_re_signed() -> None:
    journal = RecordingJournal()
    sequencer = _sequencer(journal)
    sequencer.start()
    try:
        _result(sequencer.submit_deposit(str(TRADER), 0, 100_000)[0])
        deadline = time.monotonic() + 10
        while not sequencer.chain.engine.state.oracles[OracleId("BTC-USD")].is_usable():
            assert time.monotonic() < deadline, "the dev feed never made the index fresh"
            time.sleep(0.05)
        index = sequencer.chain.engine.state.oracles[OracleId("BTC-USD")].index_price_quantums
        first = dataclasses.replace(
            _order(), client_order_id=77, price_quantums=index * 99 // 100 // 100_000 * 100_000
        )
        placed = _result(sequencer.submit(first)[0])
        assert placed.rejection is None and placed.order_id is not None
        with pytest.raises(DuplicateClientOrder) as resigned:  # new bytes, same client id
            sequencer.submit(dataclasses.replace(first, nonce=first.nonce + 1))
        assert sequencer.submit(first)[0].result(timeout=10) is placed  # same bytes: same answer
    finally:
        sequencer.stop()
    assert resigned.value.existing is not None
    assert resigned.value.existing["order_id"] == placed.order_id
    with_id = [c for b in journal.blocks() for c in b.commands if b'"client_order_id":77' in c]
    assert len(with_id) == 1


def test_a_client_order_id_in_flight_is_reserved() -> None:
    sequencer = _sequencer(RecordingJournal())  # not started: the first order stays queued
    first = dataclasses.replace(_order(), client_order_id=78)
    sequencer.submit(first)
    with pytest.raises(DuplicateClientOrder) as in_flight:
        sequencer.submit(dataclasses.replace(first, nonce=first.nonce + 1))
    assert in_flight.value.existing is None  # not placed yet: nothing to show


def test_each_answer_says_how_long_the_writer_spent_on_its_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command's cost to the writer is known only in its block (a taker that walks a thousand
    makers' orders and is then refused for its own margin took ~25 ms, a plain order well
    under one): each answer carries it, for the API to charge its key and address."""
    from clearhouse.core.engine import Engine

    orders = [_order(0), _order(1), _order(2)]
    slow = encode_command(orders[1])
    apply_bytes = Engine.apply_bytes

    def timed(engine: Engine, index: int, data: bytes) -> list[Any]:
        if data == slow:
            time.sleep(0.03)
        return apply_bytes(engine, index, data)

    monkeypatch.setattr(Engine, "apply_bytes", timed)
    sequencer = _sequencer(RecordingJournal())
    sequencer.start()
    try:
        futures = [sequencer.submit(order)[0] for order in orders]
        results = [_result(f) for f in futures]
        again, duplicate = sequencer.submit(orders[1])  # a resubmission: the stored answer
        assert _result(again) is results[1]
    finally:
        sequencer.stop()
    work = [sequencer.work_seconds(f) for f in futures]
    assert work[1] >= 0.03
    assert 0 < work[0] < 0.03 and 0 < work[2] < 0.03
    assert duplicate and sequencer.work_seconds(again) == 0.0  # charged once, when it ran
