"""Blocks: the ordered commands of one timestamp, hash-chained, with an event digest and the
state root after them (SPEC §9). ``execute_block`` is the one code path that turns a block's
commands into its header, for the sequencer and for every replay alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clearhouse.core import limits
from clearhouse.core.codec import canonical_json, encode_event
from clearhouse.core.engine import Engine
from clearhouse.core.hashing import ZERO_HASH, keccak
from clearhouse.core.messages import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader:
    height: int
    timestamp_ns: int
    parent_hash: bytes
    commands_hash: bytes
    events_hash: bytes
    state_root: bytes

    def encode(self) -> bytes:
        return canonical_json({
            "height": self.height,
            "timestamp_ns": self.timestamp_ns,
            "parent_hash": self.parent_hash.hex(),
            "commands_hash": self.commands_hash.hex(),
            "events_hash": self.events_hash.hex(),
            "state_root": self.state_root.hex(),
        })  # fmt: skip

    def hash(self) -> bytes:
        return keccak(self.encode())


GENESIS_PARENT_HASH = ZERO_HASH

# The consensus rules this build executes. Raise it with any change after which this build
# would compute a different header for a block an earlier build accepted (a rule, the state's
# layout, the root's definition): a journal records the rules it was written under, and a
# journal of other rules is refused before its first block (``app.chain``), instead of
# failing at some height with a state root that looks like tampering. Rules that only give
# meaning to what an older journal cannot contain (a new command, a new optional field) keep
# the version: every older journal still replays to the same roots.
# 1: the rules until 2026-12-07.
# 2: a block's triggers fire within a budget of makers' orders walked
#    (``limits.trigger_book_walk_per_block_max``), those that close their owner's position first,
#    one per account a round (``trading.orders.firing_order``); before, all in id order.
RULES_VERSION = 2


def commands_digest(commands: Sequence[bytes]) -> bytes:
    """keccak over each command's length-prefixed bytes, in block order."""
    return keccak(b"".join(len(c).to_bytes(4, "big") + c for c in commands))


def events_digest(events: Sequence[Event]) -> bytes:
    return keccak(canonical_json([encode_event(e) for e in events]))


@dataclass(frozen=True, slots=True)
class ExecutedBlock:
    header: BlockHeader
    events: tuple[Event, ...]  # the prologue's, then each command's, in order
    prologue_events: int = 0  # how many of ``events`` the block's time-driven steps emitted
    outcomes: tuple[tuple[Event, ...], ...] = ()  # each command's own events (a rejection: one)


def execute_block(
    engine: Engine,
    *,
    height: int,
    timestamp_ns: int,
    parent_hash: bytes,
    commands: Sequence[bytes],
    after_prologue: Callable[[Sequence[Event]], None] | None = None,
    after_command: Callable[[int], None] | None = None,
) -> ExecutedBlock:
    """Run one block through the engine: prologue, each command from its journal bytes, then
    the state root. Producer and verifier both come through here, from the same bytes.

    ``after_prologue``, if given, is shown the prologue's events and may read the engine
    between the block's time-driven steps and its first command (the stress lab measures the
    options vault's quotes as it made them); it must not change anything, and a verifier
    passes none. ``after_command``, if given, is told each command's index once it is applied
    (the node times each command's work from these calls); it must not change anything."""
    assert len(commands) <= limits.commands_per_block_max, len(commands)
    events = engine.begin_block(height, timestamp_ns)
    if after_prologue is not None:
        after_prologue(events)
    prologue_events = len(events)
    outcomes: list[tuple[Event, ...]] = []
    for index, data in enumerate(commands):
        outcome = engine.apply_bytes(index, data)
        outcomes.append(tuple(outcome))
        events.extend(outcome)
        if after_command is not None:
            after_command(index)
    root = engine.end_block()
    header = BlockHeader(
        height=height,
        timestamp_ns=timestamp_ns,
        parent_hash=parent_hash,
        commands_hash=commands_digest(commands),
        events_hash=events_digest(events),
        state_root=root,
    )
    return ExecutedBlock(header, tuple(events), prologue_events, tuple(outcomes))
