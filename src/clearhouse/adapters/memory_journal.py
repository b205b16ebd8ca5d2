"""An in-memory journal: the fake the simulator and tests use in place of SQLite."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from clearhouse.app.ports import Snapshot, StoredBlock
from clearhouse.core.errors import StorageError


class MemoryJournal:
    def __init__(self) -> None:
        self._genesis: bytes | None = None
        self._blocks: list[StoredBlock] = []
        self._snapshots: list[Snapshot] = []
        self._meta: dict[str, str] = {}

    def genesis(self) -> bytes | None:
        return self._genesis

    def write_genesis(self, document: bytes) -> None:
        if self._genesis is not None:
            raise StorageError("journal already has a genesis")
        self._genesis = document

    def read_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def write_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def append(self, blocks: Sequence[StoredBlock]) -> None:
        expected = len(self._blocks) + 1
        for offset, block in enumerate(blocks):
            if block.header.height != expected + offset:
                raise StorageError(f"append out of order at height {block.header.height}")
        self._blocks.extend(blocks)

    def blocks(self, start_height: int = 1) -> Iterator[StoredBlock]:
        yield from self._blocks[start_height - 1 :]

    def head(self) -> StoredBlock | None:
        return self._blocks[-1] if self._blocks else None

    def block(self, height: int) -> StoredBlock | None:
        return self._blocks[height - 1] if 0 < height <= len(self._blocks) else None

    def write_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshots = [*self._snapshots[-1:], snapshot]

    def latest_snapshot(self) -> Snapshot | None:
        return self._snapshots[-1] if self._snapshots else None

    def close(self) -> None:
        pass
