"""The journal in SQLite: WAL mode, synchronous=FULL, one transaction per append.

Opened read-only (``clearhouse verify``) it is a ``file:…?mode=ro`` connection that can write
nothing: a file that holds no journal is reported, not turned into one. Opened ``exclusive``
(a node, the demo) it first takes the journal's OS lock (``adapters/locks.py``). Either way its
tables and format version are checked (``adapters/journal_format.py``) before anything is read,
and SQLite's errors reach callers as ``StorageError``s (``JournalCorrupt`` for damaged pages).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from clearhouse.adapters.journal_format import FORMAT_KEY, check_version, format_row, is_new
from clearhouse.adapters.locks import JournalLock
from clearhouse.app.ports import Snapshot, StoredBlock
from clearhouse.core.block import BlockHeader
from clearhouse.core.errors import JournalCorrupt, JournalNotFound, StorageError

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
_TABLES = "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p"
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class SqliteJournal:
    def __init__(
        self, path: Path | str, *, read_only: bool = False, exclusive: bool = False
    ) -> None:
        self.path = Path(path)
        if read_only and not self.path.is_file():
            raise JournalNotFound(f"no journal at {path}: no such file")
        self._lock = JournalLock(self.path) if exclusive else None
        try:
            self._db = _connect(self.path, read_only=read_only)
        except BaseException:
            self.close()
            raise
        try:
            self._open(read_only=read_only)
        except sqlite3.Error as error:
            self.close()
            raise _storage_error(f"cannot open journal {path}", error) from error
        except BaseException:
            self.close()
            raise

    def _open(self, *, read_only: bool) -> None:
        where = f"{self.path}"
        if not read_only:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")  # no other writer between the look and the create
        found: dict[str, set[str]] = {}
        for table, column in self._db.execute(_TABLES):
            found.setdefault(table, set()).add(column)
        new = is_new(found, where)
        if new and read_only:
            raise JournalNotFound(f"no journal at {where}: the database holds no journal tables")
        if new:
            for statement in filter(str.strip, SCHEMA.split(";")):
                self._db.execute(statement)
            self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", format_row())
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        check_version(self._meta(FORMAT_KEY), where)

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value = row[0]
        if isinstance(value, bytes):
            return value
        # A value set by hand may be TEXT or a number: SQLite keeps the type it was given.
        return str(value).encode()

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection; SQLite's errors become StorageError (JournalCorrupt if damaged)."""
        try:
            yield self._db
        except sqlite3.Error as error:
            raise _storage_error(f"{action} failed ({self.path})", error) from error

    def genesis(self) -> bytes | None:
        with self._reading("read genesis"):
            return self._meta("genesis")

    def write_genesis(self, document: bytes) -> None:
        if self.genesis() is not None:
            raise StorageError("journal already has a genesis")
        with self._reading("write genesis") as db:
            db.execute("INSERT INTO meta (key, value) VALUES ('genesis', ?)", (document,))

    def read_meta(self, key: str) -> str | None:
        with self._reading(f"read {key}"):
            value = self._meta(key)
        return None if value is None else value.decode()

    def write_meta(self, key: str, value: str) -> None:
        with self._reading(f"write {key}") as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                       (key, value.encode()))  # fmt: skip

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
            raise _storage_error("append failed", error) from error

    def blocks(self, start_height: int = 1) -> Iterator[StoredBlock]:
        with self._reading("read blocks") as db:
            rows = db.execute(
                f"SELECT {_HEADER_COLUMNS} FROM blocks WHERE height >= ? ORDER BY height",  # noqa: S608
                (start_height,),
            )
            for row in rows:
                yield self._with_commands(row)

    def block(self, height: int) -> StoredBlock | None:
        with self._reading("read block") as db:
            row = db.execute(
                f"SELECT {_HEADER_COLUMNS} FROM blocks WHERE height = ?",  # noqa: S608
                (height,),
            ).fetchone()
            return None if row is None else self._with_commands(row)

    def head(self) -> StoredBlock | None:
        with self._reading("read head") as db:
            row = db.execute(
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
            raise _storage_error("snapshot failed", error) from error

    def latest_snapshot(self) -> Snapshot | None:
        with self._reading("read snapshot") as db:
            row = db.execute(
                "SELECT height, state_root, body FROM snapshots ORDER BY height DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return Snapshot(int(row[0]), _bytes(row[1]), _bytes(row[2]))

    def close(self) -> None:
        if hasattr(self, "_db"):
            self._db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

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


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    # mode=ro: SQLite itself refuses every write, so a mistaken verify can create nothing.
    target, uri = (f"file:{quote(str(path))}?mode=ro", True) if read_only else (str(path), False)
    try:
        return sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise _storage_error(f"cannot open journal {path}", error) from error


def _storage_error(what: str, error: sqlite3.Error) -> StorageError:
    """SQLite's error as ours: damaged pages or a file that is no database are JournalCorrupt."""
    if getattr(error, "sqlite_errorcode", None) in _DAMAGED:
        return JournalCorrupt(f"{what}: the SQLite file is damaged ({error})")
    return StorageError(f"{what}: {error}")
