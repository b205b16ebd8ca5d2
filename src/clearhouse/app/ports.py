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


class Journal(Protocol):
    """An append-only log of blocks: header, hash and the commands' exact bytes."""

    def genesis(self) -> bytes | None:
        """The venue's genesis document (canonical JSON), or None for an empty journal."""

    def write_genesis(self, document: bytes) -> None: ...

    def append(self, blocks: Sequence[StoredBlock]) -> None:
        """Append blocks durably, in one transaction: all of them or none."""

    def blocks(self, start_height: int = 1) -> Iterator[StoredBlock]: ...

    def head(self) -> StoredBlock | None: ...

    def close(self) -> None: ...
