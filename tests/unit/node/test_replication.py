"""Scale-out (SPEC §12) against the block stream's contract, in memory (``MemoryBlockStream``):
a block's record is the journal's byte for byte; a command is acknowledged only once its block
is on the stream; a stream that cannot be reached holds the acknowledgements and refuses new
commands; a fenced sequencer stops; a replica re-executes, stores identical records and refuses
a tampered block whole; a new sequencer catches up before it produces."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.unit.node.test_viewcache import serving

from clearhouse.adapters.journal_format import decode_record, encode_record
from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.adapters.nats_stream import RECORD_HEADROOM_BYTES
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import RULES_KEY, verify
from clearhouse.app.replication import (
    bootstrap,
    catch_up,
    check_same_chain,
    journal_meta,
    publish_missing,
)
from clearhouse.core.block import RULES_VERSION
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import ReplicaGap, ReplicaMismatch, ReplicationFenced
from clearhouse.core.messages import PlaceOrder
from clearhouse.node.api import ApiSettings, create_app
from clearhouse.node.metrics import NodeMetrics
from clearhouse.node.readmodel import command_key
from clearhouse.node.sequencer import NodeUnavailable, Sequencer
from replication_support import MemoryBlockStream, follow_in_thread, wait_for
from unit.node.test_sequencer import _order, _sequencer


def _replicated(journal: MemoryJournal | SqliteJournal, stream: MemoryBlockStream) -> Sequencer:
    sequencer = _sequencer(journal, stream=stream)  # type: ignore[arg-type]
    publish_missing(sequencer.chain, stream)  # genesis, as the server does before it starts
    return sequencer


def _records(journal: MemoryJournal | SqliteJournal) -> list[bytes]:
    return [encode_record(b) for b in journal.blocks()]


def test_a_record_is_the_journals_block_byte_for_byte(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite")
    stream = MemoryBlockStream()
    sequencer = _replicated(journal, stream)
    sequencer.start()
    try:
        for i in range(5):
            sequencer.submit(_order(i))[0].result(10)
    finally:
        sequencer.stop()
    records = _records(journal)
    assert records == stream.records  # what was published is what the journal reads back
    for record, block in zip(records, journal.blocks(), strict=True):
        assert decode_record(record) == block
        assert encode_record(decode_record(record)) == record
    with pytest.raises(ReplicaMismatch, match="ends early"):
        decode_record(records[-1][:-1])
    with pytest.raises(ReplicaMismatch, match="past its last command"):
        decode_record(records[-1] + b"\0")
    with pytest.raises(ReplicaMismatch, match="not a clearhouse-block-1"):
        decode_record(b"x" + records[-1][1:])
    journal.close()


def test_a_command_is_acknowledged_only_once_its_block_is_on_the_stream() -> None:
    stream = MemoryBlockStream()
    sequencer = _replicated(MemoryJournal(), stream)
    seen: list[bool] = []
    sequencer.start()
    try:
        futures = [sequencer.submit(_order(i))[0] for i in range(20)]
        for future in futures:  # runs on the writer's thread, the moment it acknowledges
            future.add_done_callback(
                lambda f: seen.append(f.result().height <= len(stream.records)),
            )
        results = [f.result(10) for f in futures]
    finally:
        sequencer.stop()
    assert seen == [True] * 20
    assert max(r.height for r in results) <= stream.last_height()


def test_a_stream_out_of_reach_holds_acknowledgements_and_refuses_new_commands() -> None:
    stream = MemoryBlockStream()
    sequencer = _replicated(MemoryJournal(), stream)
    sequencer.start()
    try:
        sequencer.submit(_order(0))[0].result(10)
        stream.down = True
        waiting, _ = sequencer.submit(_order(1))
        wait_for(lambda: sequencer.replication_down, what="the writer to notice the outage")
        durable = sequencer.chain.journal.head()
        assert durable is not None and durable.header.height > len(stream.records)
        time.sleep(0.5)
        assert not waiting.done()  # durable locally, not on the stream: not acknowledged
        with pytest.raises(NodeUnavailable) as refused:
            sequencer.submit(_order(2))
        assert refused.value.code == "REPLICATION_UNAVAILABLE"
        stream.down = False
        result = waiting.result(10)
        assert result.height <= stream.last_height()
        sequencer.submit(_order(3))[0].result(10)  # taking commands again
    finally:
        sequencer.stop()
    assert _records(sequencer.chain.journal) == stream.records  # type: ignore[arg-type]


def test_a_sequencer_whose_append_is_refused_stops_taking_commands() -> None:
    stream = MemoryBlockStream()
    sequencer = _replicated(MemoryJournal(), stream)
    rival = _replicated(MemoryJournal(), MemoryBlockStream())  # another venue's block 2
    rival.chain.produce_encoded(time.time_ns(), [])
    stream.publish(rival.chain.flush()[0])  # another writer extended the stream first
    sequencer.start()
    try:
        future, _ = sequencer.submit(_order(0))
        with pytest.raises(NodeUnavailable) as refused:
            future.result(10)
        assert refused.value.code == "REPLICATION_FENCED"
        assert isinstance(sequencer.failure, ReplicationFenced)
        with pytest.raises(NodeUnavailable) as again:
            sequencer.submit(_order(1))
        assert again.value.code == "REPLICATION_FENCED"
    finally:
        sequencer.stop()
    assert stream.last_height() == 2  # the fenced sequencer added nothing


def test_a_replica_re_executes_every_block_and_stores_identical_records(tmp_path: Path) -> None:
    primary = SqliteJournal(tmp_path / "primary.sqlite")
    stream = MemoryBlockStream()
    sequencer = _replicated(primary, stream)
    replica = SqliteJournal(tmp_path / "replica.sqlite")
    follower = follow_in_thread(replica, stream)
    sequencer.start()
    try:
        for i in range(10):
            sequencer.submit(_order(i))[0].result(10)
    finally:
        sequencer.stop()
    wait_for(lambda: replica_head(replica) == primary.head(), what="the replica")
    follower.stop.set()
    follower.thread.join(5)
    assert not follower.errors, follower.errors
    assert _records(replica) == _records(primary)
    assert journal_meta(replica) == journal_meta(primary)  # genesis, domain, signers, rules
    assert replica.read_meta(RULES_KEY) == str(RULES_VERSION)
    assert verify(replica).state_root == verify(primary).state_root
    primary.close()
    replica.close()


def replica_head(journal: SqliteJournal) -> object:
    return journal.head()


def test_a_tampered_block_stops_the_replica_with_nothing_of_it_stored(tmp_path: Path) -> None:
    primary = SqliteJournal(tmp_path / "primary.sqlite")
    stream = MemoryBlockStream()
    sequencer = _replicated(primary, stream)
    sequencer.start()
    try:
        for i in range(3):
            sequencer.submit(_order(i))[0].result(10)
    finally:
        sequencer.stop()
    height = stream.last_height()
    last = decode_record(stream.records[-1])
    index = next(i for i, c in enumerate(last.commands) if b"PlaceOrder" in c)
    body = bytearray(last.commands[index])
    body[body.index(b"100000")] ^= 0x01  # the order's size: "100000" -> "000000"... one bit
    commands = list(last.commands)
    commands[index] = bytes(body)
    tampered = type(last)(last.header, last.block_hash, tuple(commands), last.signatures)
    stream.records[-1] = encode_record(tampered)
    replica = SqliteJournal(tmp_path / "replica.sqlite")
    follower = follow_in_thread(replica, stream)
    follower.thread.join(10)
    assert len(follower.errors) == 1 and isinstance(follower.errors[0], ReplicaMismatch), (
        follower.errors
    )
    assert follower.errors[0].code == "REPLICA_MISMATCH"
    assert follower.errors[0].height == height and "commands hash" in follower.errors[0].what
    head = replica.head()
    assert head is not None and head.header.height == height - 1  # nothing of the bad block
    assert _records(replica) == _records(primary)[: height - 1]
    primary.close()
    replica.close()


def test_a_new_sequencer_takes_the_streams_blocks_before_producing(tmp_path: Path) -> None:
    primary = MemoryJournal()
    stream = MemoryBlockStream()
    sequencer = _replicated(primary, stream)
    replica = SqliteJournal(tmp_path / "replica.sqlite")
    chain = bootstrap(replica, stream)  # the genesis document and facts only: no block yet
    sequencer.start()
    try:
        for i in range(4):
            sequencer.submit(_order(i))[0].result(10)
    finally:
        sequencer.stop()
    taken = catch_up(chain, stream)
    assert taken == stream.last_height()
    assert chain.height == stream.last_height()
    check_same_chain(chain, stream)
    assert _records(replica) == _records(primary)
    with pytest.raises(ReplicaGap):
        chain.extend(decode_record(stream.records[1]))  # block 2 again: not the next height
    replica.close()


def _refusal(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


def _status(client: httpx.Client, order: PlaceOrder) -> httpx.Response:
    return client.get(f"/v1/commands/0x{command_key(encode_command(order)).hex()}")


def test_a_command_result_is_not_answered_before_its_block_is_on_the_stream() -> None:
    """``GET /v1/commands/{hash}`` is the answer a client that lost its connection reads: while
    the command's block is durable here but not on the stream, it says 503 (as the submission
    would), and after the stream fenced this node off the block is never answered: a replica
    that takes over does not hold it. Review 14: it answered the read model's result."""
    stream = MemoryBlockStream()
    sequencer = _replicated(MemoryJournal(), stream)
    app = create_app(sequencer, ApiSettings(chain_id=1, verifying_contract="0x" + "11" * 20),
                     NodeMetrics(sequencer))  # fmt: skip
    clients = serving(app)
    client = next(clients)
    sequencer.start()
    try:
        done = _order(0)
        sequencer.submit(done)[0].result(10)
        assert _status(client, done).status_code == 200  # on the stream: answered
        stream.down = True
        waiting_order = _order(1)
        waiting, _ = sequencer.submit(waiting_order)
        wait_for(lambda: sequencer.read_model.result(command_key(encode_command(waiting_order)))
                 is not None, what="the block to be durable")  # fmt: skip
        answer = _status(client, waiting_order)
        assert _refusal(answer) == (503, "REPLICATION_UNAVAILABLE")
        assert not waiting.done()
        # Another sequencer appends its own block at that height: this one is fenced off.
        rival = _replicated(MemoryJournal(), MemoryBlockStream())
        while rival.chain.height < len(stream.records) + 1:
            rival.chain.produce_encoded(time.time_ns(), [])
        block = rival.chain.flush()[-1]
        stream.records.append(encode_record(block))
        stream.ids.append(f"{block.header.height}:{block.block_hash.hex()}")
        stream.down = False
        with pytest.raises(NodeUnavailable) as refused:
            waiting.result(10)
        assert refused.value.code == "REPLICATION_FENCED"
        answer = _status(client, waiting_order)
        assert _refusal(answer) == (503, "REPLICATION_FENCED")
        assert _status(client, done).status_code == 200  # on the stream before: still answered
    finally:
        sequencer.stop()
        next(clients, None)


def test_a_block_never_outgrows_the_streams_message() -> None:
    """The byte budget (the server's largest message less the headroom) is applied when the
    block is cut, not found out at publication: 60 queued orders with a budget of 2,000 bytes
    make blocks whose records stay under budget + headroom, each with at least one order."""
    stream = MemoryBlockStream()
    budget = 2_000
    sequencer = _replicated(MemoryJournal(), stream)
    sequencer.block_bytes_max = budget
    futures = [sequencer.submit(_order(i))[0] for i in range(60)]  # queued before the writer
    sequencer.start()
    try:
        for future in futures:
            future.result(10)
    finally:
        sequencer.stop()
    blocks = [decode_record(record) for record in stream.records]
    carrying = [b for b in blocks if any(b"PlaceOrder" in c for c in b.commands)]
    assert len(carrying) >= 60 * 300 // budget  # split: one order's bytes are ~300
    for record, block in zip(stream.records[1:], blocks[1:], strict=True):  # past genesis
        # The orders' bytes: the node's own price reports are in the headroom.
        orders = [len(c) + len(block.signature(i)) + 8 for i, c in enumerate(block.commands)
                  if b"PlaceOrder" in c]  # fmt: skip
        assert sum(orders) <= budget or len(orders) == 1
        assert len(record) <= budget + RECORD_HEADROOM_BYTES
