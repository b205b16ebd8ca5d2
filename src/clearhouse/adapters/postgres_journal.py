"""The journal in PostgreSQL (psycopg 3): synchronous_commit on, one transaction per append.

The tables and columns are SQLite's (``sqlite_journal.SCHEMA``) in PostgreSQL's types, so the
two stores hold the same rows. A ``schema`` query parameter in the URL (not a libpq parameter:
it is taken out before connecting) puts the tables in a schema of their own, created if missing,
so that several nodes or test runs can share one database.

Opened read-only (``clearhouse verify``) the session is ``default_transaction_read_only`` and
nothing is created: a missing schema or missing tables are reported as no journal there. Opened
``exclusive`` (a node) the connection takes a session advisory lock on a key derived from the
schema, held as long as the connection lives (the server drops it when the process dies), so a
second node on the same journal refuses to start. Either way the tables and the format version
are checked (``adapters/journal_format.py``) before anything is read.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from clearhouse.adapters.journal_format import FORMAT_KEY, check_version, format_row, is_new
from clearhouse.adapters.urls import encode_query, mask_password
from clearhouse.app.ports import Snapshot, StoredBlock
from clearhouse.core.block import BlockHeader
from clearhouse.core.errors import JournalLocked, JournalNotFound, StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height BIGINT PRIMARY KEY,
    timestamp_ns BIGINT NOT NULL,
    parent_hash BYTEA NOT NULL,
    commands_hash BYTEA NOT NULL,
    events_hash BYTEA NOT NULL,
    state_root BYTEA NOT NULL,
    block_hash BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    height BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    body BYTEA NOT NULL,
    signature BYTEA NOT NULL DEFAULT '\\x',
    PRIMARY KEY (height, idx)
);
CREATE TABLE IF NOT EXISTS snapshots (
    height BIGINT PRIMARY KEY,
    state_root BYTEA NOT NULL,
    body BYTEA NOT NULL
);
"""

SNAPSHOTS_KEPT = 2
# A page of ``blocks()`` holds at most this many blocks and (unless one block alone is larger)
# this many commands: reading a long journal costs one page of memory, not the journal's size.
BLOCKS_PER_PAGE_MAX = 1_000
COMMANDS_PER_PAGE_MAX = 20_000
# libpq waits forever for an unreachable host unless told otherwise.
CONNECT_TIMEOUT_S_DEFAULT = 10
# A node killed a moment ago may still hold its advisory lock until the server notices the
# connection is gone: try for this long before refusing.
LOCK_WAIT_S = 3.0
_TABLES = (
    "SELECT c.relname, a.attname FROM pg_catalog.pg_attribute AS a "
    "JOIN pg_catalog.pg_class AS c ON a.attrelid = c.oid "
    "JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid "
    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
)

_HEADER_COLUMNS = (
    "height, timestamp_ns, parent_hash, commands_hash, events_hash, state_root, block_hash"
)
_SELECT_HEADERS = f"SELECT {_HEADER_COLUMNS} FROM blocks"  # noqa: S608
# Binary COPY: the fastest way in, and bytea goes over the wire as raw bytes, not hex text.
_COPY_BLOCKS = f"COPY blocks ({_HEADER_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_COPY_COMMANDS = "COPY commands (height, idx, body, signature) FROM STDIN (FORMAT BINARY)"
_BLOCK_TYPES = ["int8", "int8", "bytea", "bytea", "bytea", "bytea", "bytea"]
_COMMAND_TYPES = ["int8", "int8", "bytea", "bytea"]

Row = tuple[Any, ...]


class PostgresJournal:
    """A Journal on one PostgreSQL connection, shared by a writer and readers in other threads.

    Every use of the connection holds ``_lock``: psycopg serialises statements on a connection,
    but not transactions, so without it a reader's query could run inside the writer's open
    append transaction (and see, or break, a half-written batch).
    """

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        exclusive: bool = False,
        blocks_per_page_max: int = BLOCKS_PER_PAGE_MAX,
        commands_per_page_max: int = COMMANDS_PER_PAGE_MAX,
    ) -> None:
        assert blocks_per_page_max > 0
        assert commands_per_page_max > 0
        self.location = mask_password(url)
        self._lock = threading.Lock()
        self._blocks_per_page_max = blocks_per_page_max
        self._commands_per_page_max = commands_per_page_max
        self._db = _connect(url, self.location, read_only=read_only, exclusive=exclusive)

    def genesis(self) -> bytes | None:
        with self._locked("read genesis") as db:
            return _meta_value(db, "genesis")

    def write_genesis(self, document: bytes) -> None:
        # ON CONFLICT makes "write once" one statement: no window between check and insert.
        with self._locked("write genesis") as db:
            written = db.execute(
                "INSERT INTO meta (key, value) VALUES ('genesis', %s) ON CONFLICT DO NOTHING",
                (document,),
            ).rowcount
        if written != 1:
            raise StorageError("journal already has a genesis")

    def read_meta(self, key: str) -> str | None:
        with self._locked("read meta") as db:
            value = _meta_value(db, key)
        return None if value is None else value.decode()

    def write_meta(self, key: str, value: str) -> None:
        with self._locked("write meta") as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, value.encode()),
            )

    def append(self, blocks: Sequence[StoredBlock]) -> None:
        with self._locked("append") as db, db.transaction(), db.cursor() as cursor:
            with cursor.copy(_COPY_BLOCKS) as copy:
                copy.set_types(_BLOCK_TYPES)
                for block in blocks:
                    copy.write_row(_block_row(block))
            with cursor.copy(_COPY_COMMANDS) as copy:
                copy.set_types(_COMMAND_TYPES)
                for block in blocks:
                    height = block.header.height
                    for index, body in enumerate(block.commands):
                        copy.write_row((height, index, body, block.signature(index)))

    def blocks(self, start_height: int = 1) -> Iterator[StoredBlock]:
        # Keyset pages, each read under the lock and yielded outside it: a slow consumer never
        # holds the connection, and blocks appended meanwhile show up in later pages.
        height = start_height
        while page := self._page(height):
            yield from page
            height = page[-1].header.height + 1

    def block(self, height: int) -> StoredBlock | None:
        with self._locked("read block") as db:
            header = db.execute(f"{_SELECT_HEADERS} WHERE height = %s", (height,)).fetchone()
            if header is None:
                return None
            rows = _commands_of(db, height)
        return _stored(header, rows)

    def head(self) -> StoredBlock | None:
        with self._locked("read head") as db:
            row = db.execute(f"{_SELECT_HEADERS} ORDER BY height DESC LIMIT 1").fetchone()
        return None if row is None else _stored(row, [])

    def write_snapshot(self, snapshot: Snapshot) -> None:
        with self._locked("snapshot") as db, db.transaction():
            db.execute(
                "INSERT INTO snapshots (height, state_root, body) VALUES (%s, %s, %s) "
                "ON CONFLICT (height) DO UPDATE "
                "SET state_root = EXCLUDED.state_root, body = EXCLUDED.body",
                (snapshot.height, snapshot.state_root, snapshot.body),
            )
            db.execute(
                "DELETE FROM snapshots WHERE height NOT IN "
                "(SELECT height FROM snapshots ORDER BY height DESC LIMIT %s)",
                (SNAPSHOTS_KEPT,),
            )

    def latest_snapshot(self) -> Snapshot | None:
        with self._locked("read snapshot") as db:
            row = db.execute(
                "SELECT height, state_root, body FROM snapshots ORDER BY height DESC LIMIT 1"
            ).fetchone()
        return None if row is None else Snapshot(int(row[0]), bytes(row[1]), bytes(row[2]))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _locked(self, action: str) -> Iterator[psycopg.Connection[TupleRow]]:
        """The connection, held exclusively; psycopg's errors become StorageError."""
        with self._lock:
            try:
                yield self._db
            except psycopg.Error as error:
                raise StorageError(f"{action} failed ({self.location}): {_text(error)}") from error

    def _page(self, start_height: int) -> list[StoredBlock]:
        with self._locked("read blocks") as db:
            headers = db.execute(
                f"{_SELECT_HEADERS} WHERE height >= %s ORDER BY height LIMIT %s",
                (start_height, self._blocks_per_page_max),
                binary=True,
            ).fetchall()
            if not headers:
                return []
            limit = self._commands_per_page_max
            rows = db.execute(
                "SELECT height, body, signature FROM commands "
                "WHERE height BETWEEN %s AND %s ORDER BY height, idx LIMIT %s",
                (headers[0][0], headers[-1][0], limit),
                binary=True,
            ).fetchall()
            if len(rows) == limit:
                headers, rows = _whole_blocks(db, headers, rows)
        return _assemble(headers, rows)


def split_schema(url: str) -> tuple[str, str | None]:
    """(the libpq conninfo, the ``schema`` parameter or None): libpq refuses unknown parameters."""
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise StorageError(f"bad journal URL {mask_password(url)}: {error}") from error
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if not schemas:
        return url, None
    if len(schemas) > 1 or not schemas[0]:
        raise StorageError(
            f"bad journal URL {mask_password(url)}: give one non-empty schema parameter"
        )
    rest = [(key, value) for key, value in query if key != "schema"]
    return urlunsplit(parts._replace(query=encode_query(rest))), schemas[0]


def _connect(
    url: str, location: str, *, read_only: bool, exclusive: bool
) -> psycopg.Connection[TupleRow]:
    conninfo, schema = split_schema(url)
    try:
        if "connect_timeout" not in conninfo_to_dict(conninfo):
            conninfo = make_conninfo(conninfo, connect_timeout=CONNECT_TIMEOUT_S_DEFAULT)
        # autocommit: each read is its own statement; appends open an explicit transaction.
        db = psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as error:
        raise StorageError(f"cannot open journal {location}: {_text(error)}") from error
    try:
        current = _prepare(db, schema, location, read_only=read_only)
        if exclusive:
            _lock(db, current, location)
        _check_or_create(db, current, location, read_only=read_only)
    except psycopg.Error as error:
        db.close()
        raise StorageError(f"cannot open journal {location}: {_text(error)}") from error
    except BaseException:
        db.close()
        raise
    return db


def _prepare(
    db: psycopg.Connection[TupleRow], schema: str | None, location: str, *, read_only: bool
) -> str:
    """Set the session up; the schema the journal's tables are in."""
    if read_only:
        # Every statement of this session, and every transaction, may only read.
        db.execute("SET default_transaction_read_only = on")
    else:
        # A commit returns only once its WAL is flushed to disk here: an appended block survives
        # a crash of the server (the server's default, but a role or database may turn it off).
        db.execute("SET synchronous_commit = on")
    # Every query here reads in primary-key order, which the index gives for free. A table that
    # grew since its last ANALYZE can make the planner sort the whole remaining range instead,
    # for each page of blocks(): forbid the sort, and the index is always used.
    db.execute("SET enable_sort = off")
    if schema is not None:
        if read_only:
            found = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            if found.fetchone() is None:
                raise JournalNotFound(f"no journal at {location}: no schema {schema!r}")
        else:
            db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    row = db.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise JournalNotFound(f"no journal at {location}: no schema on the search path")
    current: str = row[0]
    return current


def lock_key(schema: str) -> int:
    """The advisory lock key of the journal in ``schema`` (advisory locks are per database)."""
    digest = hashlib.blake2b(f"clearhouse journal {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock(db: psycopg.Connection[TupleRow], schema: str, location: str) -> None:
    key = lock_key(schema)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        row = db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if row is not None and row[0]:
            return
        if time.monotonic() >= deadline:
            raise JournalLocked(
                f"{location} (schema {schema}) is in use by another clearhouse process "
                f"(it holds the advisory lock {key})"
            )
        time.sleep(0.1)


def _check_or_create(
    db: psycopg.Connection[TupleRow], schema: str, location: str, *, read_only: bool
) -> None:
    """Check the journal's tables and format; in a store without them, create them (or, read
    only, report that there is no journal)."""
    with db.transaction():
        found: dict[str, set[str]] = {}
        for table, column in db.execute(_TABLES, (schema,)):
            found.setdefault(table, set()).add(column)
        new = is_new(found, location)
        if new and read_only:
            raise JournalNotFound(f"no journal at {location}: no journal tables in {schema}")
        if new:
            db.execute(SCHEMA)
            db.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                format_row(),
            )
        version = _meta_value(db, FORMAT_KEY)
    check_version(version, location)


def _meta_value(db: psycopg.Connection[TupleRow], key: str) -> bytes | None:
    row = db.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
    return None if row is None else bytes(row[0])


def _whole_blocks(
    db: psycopg.Connection[TupleRow], headers: list[Row], rows: list[Row]
) -> tuple[list[Row], list[Row]]:
    """Trim a page that hit the commands limit to blocks it read whole: a page never splits a
    block. A first block larger than the limit is read alone, whole."""
    cut = rows[-1][0]  # the last height read may be partial: it starts the next page
    if cut > headers[0][0]:
        return [h for h in headers if h[0] < cut], [r for r in rows if r[0] < cut]
    return headers[:1], _commands_of(db, cut)


def _commands_of(db: psycopg.Connection[TupleRow], height: int) -> list[Row]:
    # Binary results: bytea arrives as raw bytes (text results are hex, decoded in Python).
    return db.execute(
        "SELECT height, body, signature FROM commands WHERE height = %s ORDER BY idx",
        (height,),
        binary=True,
    ).fetchall()


def _assemble(headers: list[Row], rows: list[Row]) -> list[StoredBlock]:
    by_height = {height: list(group) for height, group in groupby(rows, key=lambda r: r[0])}
    return [_stored(header, by_height.get(header[0], [])) for header in headers]


def _stored(header: Row, rows: list[Row]) -> StoredBlock:
    height, timestamp_ns, parent, commands_hash, events_hash, root, block_hash = header
    block_header = BlockHeader(
        height=int(height), timestamp_ns=int(timestamp_ns), parent_hash=bytes(parent),
        commands_hash=bytes(commands_hash), events_hash=bytes(events_hash),
        state_root=bytes(root),
    )  # fmt: skip
    commands = tuple(bytes(row[1]) for row in rows)
    signatures = tuple(bytes(row[2]) for row in rows)
    return StoredBlock(block_header, bytes(block_hash), commands, signatures)


def _block_row(block: StoredBlock) -> Row:
    header = block.header
    return (
        header.height, header.timestamp_ns, header.parent_hash, header.commands_hash,
        header.events_hash, header.state_root, block.block_hash,
    )  # fmt: skip


def _text(error: psycopg.Error) -> str:
    """psycopg's message on one line (libpq's span several, with tabs)."""
    return " ".join(str(error).split())
