"""Scale-out (SPEC §12): a chain's blocks on a replicated stream, replicas that re-execute them,
and a sequencer that takes over from a replica's journal.

The stream is a port (``ports.BlockStream``; NATS JetStream in ``adapters/nats_stream.py``).
Block h is the stream's message h, holding the block's journal record byte for byte; block 1's
message also carries the journal facts a replica needs before it can run block 1 (the genesis
document, the signing domain, the node's own signers). Appends are fenced on the stream's last
sequence: a block goes in only on top of the block before it, so a sequencer that has been
replaced cannot add to the chain, whatever it still believes.

Every streamed block a journal takes goes through ``Chain.extend``: its hashes checked, run by
``execute_block`` and compared with its record (``replay``'s path), then stored as recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from threading import Event as Flag

from clearhouse.app.audit import DOMAIN_KEYS, NODE_SIGNERS_KEY
from clearhouse.app.chain import RULES_KEY, Chain, venue_from_genesis
from clearhouse.app.ports import BlockStream, Journal, StoredBlock
from clearhouse.core.block import ExecutedBlock
from clearhouse.core.errors import ConfigError, ReplicaMismatch

GENESIS_KEY = "genesis"  # the meta row ``Journal.genesis`` reads
META_KEYS = (GENESIS_KEY, *DOMAIN_KEYS, NODE_SIGNERS_KEY, RULES_KEY)  # what block 1 carries
FOLLOW_IDLE_SECONDS = 0.5  # how often a follower looks up from an idle stream (to stop)

OnBlock = Callable[[StoredBlock, ExecutedBlock], None]


def journal_meta(journal: Journal) -> dict[str, str]:
    """The journal facts that block 1 carries on the stream (those the journal has)."""
    document = journal.genesis()
    found = {key: journal.read_meta(key) for key in META_KEYS if key != GENESIS_KEY}
    if document is not None:
        found[GENESIS_KEY] = document.decode()  # canonical JSON: ASCII
    return {key: value for key, value in sorted(found.items()) if value is not None}


def bootstrap(journal: Journal, stream: BlockStream) -> Chain:
    """A chain on ``journal`` that the stream can extend: an empty journal takes the stream's
    genesis and journal facts (block 1's); one with a genesis must have the stream's. Its own
    blocks are replayed (``Chain.recover``: each re-verified) and must be the stream's."""
    meta = stream.meta()
    if journal.genesis() is None:
        if meta is None or GENESIS_KEY not in meta:
            raise ConfigError("the journal is empty and the stream holds no block yet: start "
                              "the replica once its sequencer has published")  # fmt: skip
        journal.write_genesis(meta[GENESIS_KEY].encode())
        for key, value in meta.items():
            if key != GENESIS_KEY:
                journal.write_meta(key, value)
    document = journal.genesis()
    assert document is not None
    if meta is not None and meta.get(GENESIS_KEY, "").encode() != document:
        raise ReplicaMismatch(1, "the stream's genesis is not the journal's (another venue?)")
    chain = Chain(venue_from_genesis(document), journal, resume=True)
    chain.recover()
    check_same_chain(chain, stream)
    return chain


def check_same_chain(chain: Chain, stream: BlockStream) -> None:
    """The journal and the stream hold the same block at the last height both have (each
    block's hash covers its parent's, so the whole prefix is then the same)."""
    common = min(chain.height, stream.last_height())
    if common == 0:
        return
    streamed = stream.read(common)
    ours = chain.journal.block(common)
    assert ours is not None
    if streamed is None or streamed.block_hash != ours.block_hash:
        why = "the journal and the stream hold different blocks here (a fenced sequencer's fork)"
        raise ReplicaMismatch(common, why)


def catch_up(chain: Chain, stream: BlockStream, on_block: OnBlock | None = None) -> int:
    """Extend the chain with every block the stream holds past it (a new sequencer, before it
    produces: nothing the old one had acknowledged is lost). Returns the blocks taken."""
    taken = 0
    for height in range(chain.height + 1, stream.last_height() + 1):
        stored = stream.read(height)
        if stored is None:
            raise ReplicaMismatch(height, "the stream lost a block it listed")
        executed = chain.extend(stored)
        if on_block is not None:
            on_block(stored, executed)
        taken += 1
    return taken


def publish_missing(chain: Chain, stream: BlockStream) -> int:
    """Publish the journal's blocks the stream lacks (replication turned on for a running
    venue, or a block made durable just before a crash, never published, never acknowledged):
    fenced like every append. Returns the blocks published."""
    published = 0
    for height in range(stream.last_height() + 1, chain.height + 1):
        stored = chain.journal.block(height)
        assert stored is not None
        stream.publish(stored, journal_meta(chain.journal) if height == 1 else None)
        published += 1
    return published


def follow(
    chain: Chain, stream: BlockStream, *, stop: Flag, on_block: OnBlock | None = None
) -> int:
    """A replica: extend the chain with each block as the stream delivers it, until ``stop``.
    A block that does not verify stops it (ReplicaMismatch, ReplicaGap) with nothing of that
    block stored. Returns the blocks taken."""
    taken = 0
    for stored in stream.follow(chain.height + 1, FOLLOW_IDLE_SECONDS):
        if stop.is_set():
            break
        if stored is None:
            continue
        executed = chain.extend(stored)
        taken += 1
        if on_block is not None:
            on_block(stored, executed)
    return taken
