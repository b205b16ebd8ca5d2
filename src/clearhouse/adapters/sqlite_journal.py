"""The journal in SQLite: WAL mode, synchronous=FULL, one transaction per append."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from clearhouse.app.ports import Snapshot, StoredBlock
from clearhouse.core.block import BlockHeader
from clearhouse.core.errors import StorageError

# The same tables as the PostgreSQL journal (``postgres_journal.SCHEMA``), in SQLite's types.
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
    signature BLOB NOT NULL DEFAULT x'',
    PRIMARY KEY (height, idx)
);
CREATE TABLE IF NOT EXISTS snapshots (
    height INTEGER PRIMARY KEY,
    state_root BLOB NOT NULL,
    body BLOB NOT NULL
);
"""

SNAPSHOTS_KEPT = 2
_HEADER_COLUMNS = (
    "height, timestamp_ns, parent_hash, commands_hash, events_hash, state_root, block_hash"
)


class SqliteJournal:
    def __init__(self, path: Path | str) -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
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

    def read_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0]).decode()

    def write_meta(self, key: str, value: str) -> None:
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value.encode())
            )
        except sqlite3.Error as error:
            raise StorageError(f"cannot write {key}: {error}") from error

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
                    "INSERT INTO commands VALUES (?, ?, ?, ?)",
                    [
                        (header.height, i, body, block.signature(i))
                        for i, body in enumerate(block.commands)
                    ],
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StorageError(f"append failed: {error}") from error

    def blocks(self, start_height: int = 1) -> Iterator[StoredBlock]:
        rows = self._db.execute(
            f"SELECT {_HEADER_COLUMNS} FROM blocks WHERE height >= ? ORDER BY height",  # noqa: S608
            (start_height,),
        )
        for row in rows:
            yield self._with_commands(row)

    def block(self, height: int) -> StoredBlock | None:
        row = self._db.execute(
            f"SELECT {_HEADER_COLUMNS} FROM blocks WHERE height = ?",  # noqa: S608
            (height,),
        ).fetchone()
        return None if row is None else self._with_commands(row)

    def head(self) -> StoredBlock | None:
        row = self._db.execute(
            f"SELECT {_HEADER_COLUMNS} FROM blocks ORDER BY height DESC LIMIT 1"  # noqa: S608
        ).fetchone()
        return None if row is None else _stored(row, (), ())

    def write_snapshot(self, snapshot: Snapshot) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)",
                (snapshot.height, snapshot.state_root, snapshot.body),
            )
            self._db.execute(
                "DELETE FROM snapshots WHERE height NOT IN "
                "(SELECT height FROM snapshots ORDER BY height DESC LIMIT ?)",
                (SNAPSHOTS_KEPT,),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StorageError(f"snapshot failed: {error}") from error

    def latest_snapshot(self) -> Snapshot | None:
        row = self._db.execute(
            "SELECT height, state_root, body FROM snapshots ORDER BY height DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Snapshot(int(row[0]), _bytes(row[1]), _bytes(row[2]))

    def close(self) -> None:
        self._db.close()

    def _with_commands(self, row: tuple[object, ...]) -> StoredBlock:
        found = self._db.execute(
            "SELECT body, signature FROM commands WHERE height = ? ORDER BY idx", (row[0],)
        ).fetchall()
        return _stored(row, tuple(bytes(b) for b, _ in found), tuple(bytes(s) for _, s in found))


def _stored(
    row: tuple[object, ...], commands: tuple[bytes, ...], signatures: tuple[bytes, ...]
) -> StoredBlock:
    height, timestamp_ns, parent, commands_hash, events_hash, root, block_hash = row
    if not isinstance(height, int) or not isinstance(timestamp_ns, int):
        raise StorageError(f"corrupt journal: block row {row[:2]!r}")
    header = BlockHeader(
        height=height, timestamp_ns=timestamp_ns, parent_hash=_bytes(parent),
        commands_hash=_bytes(commands_hash), events_hash=_bytes(events_hash),
        state_root=_bytes(root),
    )  # fmt: skip
    return StoredBlock(header, _bytes(block_hash), commands, signatures)


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError(f"corrupt journal: expected bytes, found {type(value).__name__}")
    return value
