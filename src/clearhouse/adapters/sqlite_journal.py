"""The journal in SQLite: WAL mode, synchronous=FULL, one transaction per append."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from clearhouse.app.ports import StoredBlock
from clearhouse.core.block import BlockHeader
from clearhouse.core.errors import StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    timestamp_ns INTEGER NOT NULL,
    parent_hash BLOB NOT NULL,
    commands_hash BLOB NOT NULL,
    events_hash BLOB NOT NULL,
    state_root BLOB NOT NULL,
    block_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (height, idx)
);
"""


class SqliteJournal:
    def __init__(self, path: Path | str) -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as error:
            raise StorageError(f"cannot open journal {path}: {error}") from error

    def genesis(self) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
        return None if row is None else bytes(row[0])

    def write_genesis(self, document: bytes) -> None:
        if self.genesis() is not None:
            raise StorageError("journal already has a genesis")
        self._db.execute("INSERT INTO meta (key, value) VALUES ('genesis', ?)", (document,))

    def append(self, blocks: Sequence[StoredBlock]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for block in blocks:
                header = block.header
                self._db.execute(
                    "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        header.height, header.timestamp_ns, header.parent_hash,
                        header.commands_hash, header.events_hash, header.state_root,
                        block.block_hash,
                    ),
                )  # fmt: skip
                self._db.executemany(
                    "INSERT INTO commands VALUES (?, ?, ?)",
                    [(header.height, i, body) for i, body in enumerate(block.commands)],
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StorageError(f"append failed: {error}") from error

    def blocks(self, start_height: int = 1) -> Iterator[StoredBlock]:
        rows = self._db.execute(
            "SELECT height, timestamp_ns, parent_hash, commands_hash, events_hash, state_root, "
            "block_hash FROM blocks WHERE height >= ? ORDER BY height",
            (start_height,),
        )
        reader = self._db.cursor()
        for row in rows:
            bodies = reader.execute(
                "SELECT body FROM commands WHERE height = ? ORDER BY idx", (row[0],)
            ).fetchall()
            yield _stored(row, tuple(bytes(b[0]) for b in bodies))

    def head(self) -> StoredBlock | None:
        row = self._db.execute(
            "SELECT height, timestamp_ns, parent_hash, commands_hash, events_hash, state_root, "
            "block_hash FROM blocks ORDER BY height DESC LIMIT 1"
        ).fetchone()
        return None if row is None else _stored(row, ())

    def close(self) -> None:
        self._db.close()


def _stored(row: tuple[object, ...], commands: tuple[bytes, ...]) -> StoredBlock:
    height, timestamp_ns, parent, commands_hash, events_hash, root, block_hash = row
    assert isinstance(height, int)
    assert isinstance(timestamp_ns, int)
    header = BlockHeader(
        height=height, timestamp_ns=timestamp_ns, parent_hash=_bytes(parent),
        commands_hash=_bytes(commands_hash), events_hash=_bytes(events_hash),
        state_root=_bytes(root),
    )  # fmt: skip
    return StoredBlock(header, _bytes(block_hash), commands)


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError(f"corrupt journal: expected bytes, found {type(value).__name__}")
    return value
