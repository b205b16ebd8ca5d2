"""Ports: what the application needs from the outside world, as ``typing.Protocol``s."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from clearhouse.core.block import BlockHeader


@dataclass(frozen=True, slots=True)
class StoredBlock:
    header: BlockHeader
    block_hash: bytes
    commands: tuple[bytes, ...]
    # The 65-byte signature each command arrived with (empty for the node's own commands:
    # genesis listings, dev prices; which those may be is itself journaled, ``app/audit.py``):
    # kept so that an auditor can re-check who signed what.
    signatures: tuple[bytes, ...] = ()

    def signature(self, index: int) -> bytes:
        return self.signatures[index] if index < len(self.signatures) else b""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A serialized node state after block ``height``, whose engine's root is ``state_root``."""

    height: int
    state_root: bytes
    body: bytes


class Journal(Protocol):
    """An append-only log of blocks: header, hash and the commands' exact bytes."""

    def genesis(self) -> bytes | None:
        """The venue's genesis document (canonical JSON), or None for an empty journal."""

    def write_genesis(self, document: bytes) -> None: ...

    def read_meta(self, key: str) -> str | None:
        """A fact about the journal kept beside its blocks (``meta`` table), or None."""

    def write_meta(self, key: str, value: str) -> None: ...

    def append(self, blocks: Sequence[StoredBlock]) -> None:
        """Append blocks durably, in one transaction: all of them or none."""

    def blocks(self, start_height: int = 1) -> Iterator[StoredBlock]: ...

    def head(self) -> StoredBlock | None: ...

    def block(self, height: int) -> StoredBlock | None:
        """One block with its commands, or None past the head."""

    def write_snapshot(self, snapshot: Snapshot) -> None:
        """Keep a snapshot (durably; older ones may be pruned, the newest two are kept)."""

    def latest_snapshot(self) -> Snapshot | None: ...

    def close(self) -> None: ...


class BlockStream(Protocol):
    """A replicated, append-only stream of a chain's blocks (NATS JetStream:
    ``adapters/nats_stream.py``), one message per block, the message at sequence h holding
    block h's journal record. Appending is fenced: a block is stored only if the stream ends
    at the block before it, so of two sequencers only one can extend it."""

    def last_height(self) -> int:
        """The height of the stream's last block (0: an empty stream)."""

    def read(self, height: int) -> StoredBlock | None:
        """Block ``height`` as the stream holds it, or None past its end."""

    def meta(self) -> dict[str, str] | None:
        """The journal facts block 1 was published with (genesis, signing domain, the node's
        signers: ``app/replication.py``), or None for an empty stream."""

    def publish(self, block: StoredBlock, meta: dict[str, str] | None = None) -> None:
        """Append ``block`` at its height, only if the stream ends at the block before it;
        returns once the stream has acknowledged it (stored, replicated). A retry of a block
        already stored is acknowledged again, unchanged (its message id). Raises
        ReplicationFenced if the stream ends elsewhere (another writer), and
        ReplicationUnavailable if it could not be reached or did not answer in time."""

    def follow(self, start_height: int, idle_seconds: float) -> Iterator[StoredBlock | None]:
        """The stream's blocks from ``start_height`` on, in order, as they arrive; None after
        each ``idle_seconds`` with none (a caller may then stop)."""

    def close(self) -> None: ...
