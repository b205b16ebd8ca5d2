"""The block stream on a real NATS JetStream server (``adapters/nats_stream.py``): what the
sequencer publishes is what a replica reads, byte for byte; a retry is deduplicated; a stale
writer is refused by the expected-last-sequence header; a replica following the real stream
stores identical records and refuses a tampered message whole. Skipped, with the reason, when
nats-py or a server at 127.0.0.1:4222 is missing; each test has a stream of its own, deleted
after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearhouse.adapters.journal_format import decode_record, encode_record
from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.ports import StoredBlock
from clearhouse.app.replication import bootstrap, journal_meta, publish_missing
from clearhouse.core.errors import ReplicaMismatch, ReplicationFenced, ReplicationUnavailable
from replication_support import (
    NATS_URL,
    follow_in_thread,
    raw_publish,
    skip_without_nats,
    unique_stream,
    wait_for,
)
from unit.node.test_sequencer import _order, _sequencer

skip_without_nats()

from clearhouse.adapters.nats_stream import META_HEADER, NatsBlockStream  # noqa: E402


@pytest.fixture
def stream() -> Iterator[NatsBlockStream]:
    name = unique_stream()
    opened = NatsBlockStream(NATS_URL, stream=name, subject=f"{name}.blocks")
    yield opened
    opened.delete()
    opened.close()


def _blocks(count: int) -> list[StoredBlock]:
    """Blocks of a real chain: genesis, then ``count - 1`` with an order each."""
    journal = MemoryJournal()
    sequencer = _sequencer(journal)
    sequencer.start()
    try:
        for i in range(count - 1):
            sequencer.submit(_order(i))[0].result(10)
    finally:
        sequencer.stop()
    return list(journal.blocks())[:count]


def test_publish_read_dedup_and_fence(stream: NatsBlockStream) -> None:
    blocks = _blocks(3)
    first, second = blocks[0], blocks[1]
    stream.publish(first, {"genesis": "{}", "node_signers": ""})
    stream.publish(first)  # a retry: deduplicated, not refused
    assert stream.last_height() == 1
    assert stream.meta() == {"genesis": "{}", "node_signers": ""}
    stored = stream.read(1)
    assert stored is not None and encode_record(stored) == encode_record(first)
    assert stream.read(2) is None
    with pytest.raises(ReplicationFenced, match="no longer ends at block 2"):
        stream.publish(blocks[2])  # skips block 2: refused
    stream.publish(second)
    # Stored by a try whose answer was lost, and past the dedup window (no message id here):
    # the fence refuses the retry, and the stream's own copy shows it is ours: not fenced.
    raw_publish(stream.subject, encode_record(blocks[2]), 3)
    stream.publish(blocks[2])
    assert stream.last_height() == 3
    rival = _blocks(2)[1]  # another chain's block 2: same height, another hash
    with pytest.raises(ReplicationFenced):
        stream.publish(rival)
    assert stream.last_height() == 3


def test_an_unreachable_server_is_replication_unavailable() -> None:
    with pytest.raises(ReplicationUnavailable):
        NatsBlockStream("nats://127.0.0.1:1", stream="X", subject="x.blocks",
                        timeout_seconds=0.5)  # fmt: skip


def test_a_replica_follows_the_real_stream(stream: NatsBlockStream, tmp_path: Path) -> None:
    primary = SqliteJournal(tmp_path / "primary.sqlite")
    sequencer = _sequencer(primary, stream=stream, block_bytes_max=stream.max_payload - 65536)
    publish_missing(sequencer.chain, stream)
    replica = SqliteJournal(tmp_path / "replica.sqlite")
    follower = follow_in_thread(replica, stream)
    sequencer.start()
    try:
        for i in range(12):
            sequencer.submit(_order(i))[0].result(10)
    finally:
        sequencer.stop()
    head = primary.head()
    assert head is not None
    wait_for(lambda: (replica.head() or head).header.height == head.header.height and
             replica.head() is not None, what="the replica to reach the head")  # fmt: skip
    follower.stop.set()
    follower.thread.join(5)
    assert not follower.errors, follower.errors
    records = [encode_record(b) for b in primary.blocks()]
    assert [encode_record(b) for b in replica.blocks()] == records
    assert journal_meta(replica) == journal_meta(primary)
    print(
        f"\nreplica at height {head.header.height}, root 0x{head.header.state_root.hex()}, "
        f"{len(records)} identical records"
    )
    primary.close()
    replica.close()


def test_a_tampered_message_stops_the_replica(tmp_path: Path) -> None:
    name = unique_stream()
    real = NatsBlockStream(NATS_URL, stream=name, subject=f"{name}.blocks")
    try:
        journal = MemoryJournal()
        sequencer = _sequencer(journal)
        sequencer.start()
        try:
            for i in range(3):
                sequencer.submit(_order(i))[0].result(10)
        finally:
            sequencer.stop()
        good = list(journal.blocks())
        for block in good[:-1]:
            real.publish(block, journal_meta(journal) if block.header.height == 1 else None)
        last = good[-1]
        index = next(i for i, c in enumerate(last.commands) if b"PlaceOrder" in c)
        body = bytearray(last.commands[index])
        body[body.index(b'"nonce"') + 9] ^= 0x01  # one bit of the order's nonce
        tampered = bytearray(encode_record(last))
        at = tampered.index(last.commands[index])
        tampered[at : at + len(body)] = body
        decoded = decode_record(bytes(tampered))
        assert decoded.commands[index] != last.commands[index]
        raw_publish(real.subject, bytes(tampered), last.header.height)
        replica = SqliteJournal(tmp_path / "replica.sqlite")
        follower = follow_in_thread(replica, real)
        follower.thread.join(15)
        assert len(follower.errors) == 1 and isinstance(follower.errors[0], ReplicaMismatch), (
            follower.errors
        )
        print(f"\nreplica stopped: [{follower.errors[0].code}] {follower.errors[0]}")
        assert follower.errors[0].height == last.header.height
        head = replica.head()
        assert head is not None and head.header.height == last.header.height - 1
        replica.close()
    finally:
        real.delete()
        real.close()


@pytest.mark.parametrize("header", ["not base64!", "WzEsMl0=", "e30K"[:3]])  # [1,2]; cut short
def test_a_forged_meta_header_stops_a_new_replica_with_its_code(header: str) -> None:
    """Block 1's ``Clearhouse-Meta`` header is what an empty journal starts from: one that is
    not base64 of a JSON object is ReplicaMismatch at height 1 (one line, exit 17), not a
    traceback (review 14: binascii.Error, AttributeError)."""
    name = unique_stream()
    real = NatsBlockStream(NATS_URL, stream=name, subject=f"{name}.blocks")
    try:
        (block,) = _blocks(1)
        raw_publish(real.subject, encode_record(block), 1, {META_HEADER: header})
        with pytest.raises(ReplicaMismatch) as refused:
            bootstrap(MemoryJournal(), real)
        assert refused.value.height == 1 and META_HEADER in refused.value.what
    finally:
        real.delete()
        real.close()
