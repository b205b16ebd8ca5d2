"""The application service: produce blocks from commands, and verify a journal by replay.

A venue's genesis document (its ``VenueParams``) opens the journal; every block after it holds
the exact bytes of its commands. Producing and verifying run the same ``execute_block``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clearhouse.app.ports import Journal, StoredBlock
from clearhouse.core import invariants
from clearhouse.core.block import (
    GENESIS_PARENT_HASH,
    RULES_VERSION,
    ExecutedBlock,
    commands_digest,
    execute_block,
)
from clearhouse.core.codec import canonical_json, decode_plain, encode_command, to_plain
from clearhouse.core.engine import Engine
from clearhouse.core.errors import (
    ReplicaGap,
    ReplicaMismatch,
    RulesMismatch,
    StorageError,
    VerificationError,
)
from clearhouse.core.ids import Address
from clearhouse.core.messages import AgentSigned, Command, Event
from clearhouse.core.params import VaultParams, VenueParams

GENESIS_FORMAT = "clearhouse-genesis-1"
RULES_KEY = "rules"  # the journal's meta row: the consensus rules it was written under


def journal_rules(journal: Journal) -> int:
    """The consensus rules (``block.RULES_VERSION``) the journal was written under: 1 for a
    journal from before they were recorded (those rules were the first)."""
    value = journal.read_meta(RULES_KEY)
    if value is None:
        return 1
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise StorageError(f"corrupt journal: consensus rules {value[:20]!r}")
    return int(value)


def check_rules(journal: Journal) -> None:
    """RulesMismatch unless the journal was written under the rules this build executes."""
    found = journal_rules(journal)
    if found != RULES_VERSION:
        raise RulesMismatch(0, f"the journal was written under consensus rules {found}; this "
                               f"build executes rules {RULES_VERSION}: replay it with a build "
                               f"of rules {found}")  # fmt: skip


def genesis_document(venue: VenueParams) -> bytes:
    return canonical_json({"format": GENESIS_FORMAT, "venue": to_plain(venue)})


def venue_from_genesis(document: bytes) -> VenueParams:
    try:
        parsed = json.loads(document)
        assert parsed["format"] == GENESIS_FORMAT
        venue = parsed["venue"]
        # A genesis written before the vault existed names none: the vault quotes nothing.
        vault = decode_plain(VaultParams, venue["vault"]) if "vault" in venue else VaultParams()
        assert isinstance(vault, VaultParams)
        found = VenueParams(
            operator=Address(venue["operator"]),
            custody_relayer=Address(venue["custody_relayer"]),
            nonce_window_past_ns=int(venue["nonce_window_past_ns"]),
            nonce_window_future_ns=int(venue["nonce_window_future_ns"]),
            vault=vault,
        )
        assert not found.problems(), found.problems()
        return found
    except (ValueError, KeyError, TypeError, AssertionError) as error:
        raise StorageError(f"unreadable genesis document: {error}") from None


class Chain:
    """A single writer: turns batches of commands into blocks and appends them to the journal."""

    def __init__(
        self, venue: VenueParams, journal: Journal, *, check_invariants: bool = False,
        resume: bool = False,
    ):  # fmt: skip
        """Start a new journal, or with ``resume`` attach to an existing one: ``recover`` then
        rebuilds the engine from it."""
        if journal.head() is not None and not resume:
            raise StorageError("Chain starts a new journal; use resume=True and recover()")
        existing = journal.genesis()
        if existing is None:
            journal.write_genesis(genesis_document(venue))
            journal.write_meta(RULES_KEY, str(RULES_VERSION))
        elif existing != genesis_document(venue):
            raise StorageError("the journal's genesis is another venue's")
        self.engine = Engine(venue)
        self.journal = journal
        self.parent_hash = GENESIS_PARENT_HASH
        self.height = 0
        self.check_invariants = check_invariants
        self._pending: list[StoredBlock] = []

    def produce(
        self,
        timestamp_ns: int,
        commands: Sequence[Command | AgentSigned],
        signatures: Sequence[bytes] = (),
        *,
        after_prologue: Callable[[Sequence[Event]], None] | None = None,
    ) -> ExecutedBlock:
        """Execute a block from the commands' journal bytes, exactly as a verifier will: a
        command object the codec would not give back (a float, a bare int for an enum) is then
        rejected as malformed here too, instead of reaching state. ``signatures`` (one per
        command, empty bytes for the node's own) are journaled beside the commands;
        ``after_prologue`` reads the engine before the first command (``execute_block``)."""
        encoded = [encode_command(c) for c in commands]
        return self.produce_encoded(
            timestamp_ns, encoded, signatures, after_prologue=after_prologue
        )

    def produce_encoded(
        self, timestamp_ns: int, encoded: Sequence[bytes], signatures: Sequence[bytes] = (),
        *, after_prologue: Callable[[Sequence[Event]], None] | None = None,
        after_command: Callable[[int], None] | None = None,
    ) -> ExecutedBlock:  # fmt: skip
        """``produce`` from the commands' journal bytes (``encode_command``), already made
        (``after_prologue``, ``after_command``: see ``execute_block``)."""
        assert not signatures or len(signatures) == len(encoded)
        executed = execute_block(
            self.engine, height=self.height + 1, timestamp_ns=timestamp_ns,
            parent_hash=self.parent_hash, commands=encoded, after_prologue=after_prologue,
            after_command=after_command,
        )  # fmt: skip
        if self.check_invariants:
            invariants.check(self.engine.state)
        block_hash = executed.header.hash()
        self._pending.append(
            StoredBlock(executed.header, block_hash, tuple(encoded), tuple(signatures))
        )
        self.parent_hash = block_hash
        self.height += 1
        return executed

    def recover(
        self,
        *,
        on_executed: Callable[[ExecutedBlock], None] | None = None,
        on_replayed: Callable[[StoredBlock, ExecutedBlock], None] | None = None,
        snapshot: Engine | None = None,
    ) -> int:
        """Crash recovery: forget what was not durable and rebuild the engine by replaying the
        journal (every block re-verified), from genesis or from ``snapshot``, an engine restored
        at some height of this journal whose root must equal that block's. Returns the height
        recovered to."""
        self._pending = []
        if snapshot is None:
            replayed = verify(self.journal, on_executed=on_executed, on_replayed=on_replayed)
        else:
            replayed = replay(
                self.journal, snapshot, on_executed=on_executed, on_replayed=on_replayed
            )
        head = self.journal.head()
        self.engine = replayed.engine
        self.height = replayed.engine.state.height
        self.parent_hash = GENESIS_PARENT_HASH if head is None else head.block_hash
        return self.height

    def flush(self) -> list[StoredBlock]:
        """Make every produced block durable (group commit: one transaction for the batch);
        returns the blocks made durable (what a block stream then publishes)."""
        flushed, self._pending = self._pending, []
        if flushed:
            try:
                self.journal.append(flushed)
            except BaseException:
                self._pending = flushed
                raise
        return flushed

    def extend(self, stored: StoredBlock) -> ExecutedBlock:
        """Append a block another writer made (a replica following the block stream, a new
        sequencer catching up on it): its own hashes checked, then executed exactly as
        ``replay`` executes a journal's block, compared field by field with its record, and
        only then stored. A block that does not verify raises ReplicaMismatch (ReplicaGap if
        it is not the next height) with nothing of it stored; the engine is then unusable."""
        assert not self._pending, "extend a chain with nothing produced and not flushed"
        expected = self.height + 1
        if stored.header.height != expected:
            raise ReplicaGap(expected, f"the stream's next block is {stored.header.height}")
        try:
            _check_record(stored, self.parent_hash)
            executed = _replay_block(self.engine, stored, self.parent_hash)
        except VerificationError as error:
            if isinstance(error, ReplicaMismatch):
                raise
            raise ReplicaMismatch(error.height, error.what) from None
        if self.check_invariants:
            invariants.check(self.engine.state)
        self.journal.append([stored])
        self.parent_hash = stored.block_hash
        self.height = expected
        return executed


@dataclass(frozen=True, slots=True)
class VerifyResult:
    blocks: int
    commands: int
    state_root: bytes
    engine: Engine


def verify(
    journal: Journal,
    *,
    on_block: Callable[[int], None] | None = None,
    on_executed: Callable[[ExecutedBlock], None] | None = None,
    on_replayed: Callable[[StoredBlock, ExecutedBlock], None] | None = None,
) -> VerifyResult:
    """Replay a journal from genesis; raise VerificationError at the first block that differs."""
    document = journal.genesis()
    if document is None:
        raise VerificationError(0, "the journal has no genesis")
    engine = Engine(venue_from_genesis(document))
    return replay(
        journal, engine, on_block=on_block, on_executed=on_executed, on_replayed=on_replayed
    )


def replay(
    journal: Journal,
    engine: Engine,
    *,
    on_block: Callable[[int], None] | None = None,
    on_executed: Callable[[ExecutedBlock], None] | None = None,
    on_replayed: Callable[[StoredBlock, ExecutedBlock], None] | None = None,
) -> VerifyResult:
    """Replay the journal's blocks after ``engine``'s height onto it (a fresh engine: from
    genesis; a restored snapshot: from there, once its root matches the journal's), after
    checking that the journal was written under this build's consensus rules."""
    check_rules(journal)
    start = engine.state.height
    parent = GENESIS_PARENT_HASH
    root = GENESIS_PARENT_HASH
    if start > 0:
        anchor = journal.block(start)
        if anchor is None:
            raise VerificationError(start, "the snapshot is past the journal's head")
        root = engine.state.tree.root()
        if anchor.header.state_root != root:
            raise VerificationError(start, "the snapshot's state root is not the journal's")
        parent = anchor.block_hash
    blocks = commands = 0
    for stored in journal.blocks(start + 1):
        expected_height = start + blocks + 1
        if stored.header.height != expected_height:
            raise VerificationError(
                expected_height, f"missing block (found {stored.header.height})"
            )
        executed = _replay_block(engine, stored, parent)
        if on_executed is not None:
            on_executed(executed)
        if on_replayed is not None:
            on_replayed(stored, executed)
        parent = stored.block_hash
        root = executed.header.state_root
        blocks += 1
        commands += len(stored.commands)
        if on_block is not None:
            on_block(blocks)
    return VerifyResult(blocks, commands, root, engine)


def check_links(journal: Journal) -> int:
    """Check every stored block's own hashes without executing it: the block hash is its
    header's, each parent hash is the previous block's, and the commands hash covers the
    commands stored. A node resuming from a snapshot runs this over the whole journal, so a
    record corrupted before the snapshot still stops it. Returns the blocks checked."""
    parent = GENESIS_PARENT_HASH
    count = 0
    for stored in journal.blocks():
        header = stored.header
        if header.height != count + 1:
            raise VerificationError(count + 1, f"missing block (found {header.height})")
        _check_record(stored, parent, VerificationError)
        parent = stored.block_hash
        count += 1
    return count


def _check_record(
    stored: StoredBlock, parent: bytes, error: type[VerificationError] = ReplicaMismatch
) -> None:
    """A record's own hashes, before anything runs: it extends ``parent``, its block hash is
    its header's, and its commands hash covers the commands it carries; ``error`` (a streamed
    block's ``ReplicaMismatch`` by default) names the first that fails."""
    header = stored.header
    if header.parent_hash != parent:
        raise error(header.height, "parent hash is not the previous block's")
    if stored.block_hash != header.hash():
        raise error(header.height, "block hash does not match its header")
    if commands_digest(stored.commands) != header.commands_hash:
        raise error(header.height, "commands hash does not match its commands")


def _replay_block(engine: Engine, stored: StoredBlock, parent: bytes) -> ExecutedBlock:
    """One recorded block through ``execute_block`` and compared with its record: the one
    path of ``verify``, ``replay`` and ``Chain.extend``."""
    executed = execute_block(
        engine, height=stored.header.height, timestamp_ns=stored.header.timestamp_ns,
        parent_hash=parent, commands=stored.commands,
    )  # fmt: skip
    _compare(stored, executed)
    return executed


def _compare(stored: StoredBlock, executed: ExecutedBlock) -> None:
    recorded, replayed = stored.header, executed.header
    differences = [
        f"{name}: recorded 0x{ours.hex()}, replayed 0x{theirs.hex()}"
        for name, ours, theirs in (
            ("parent hash", recorded.parent_hash, replayed.parent_hash),
            ("commands hash", recorded.commands_hash, replayed.commands_hash),
            ("events hash", recorded.events_hash, replayed.events_hash),
            ("state root", recorded.state_root, replayed.state_root),
        )
        if ours != theirs
    ]
    if not differences and stored.block_hash != replayed.hash():
        differences.append("block hash does not match its header")
    if differences:
        raise VerificationError(recorded.height, "; ".join(differences))
