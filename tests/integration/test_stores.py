"""Opening a journal from its location: SQLite paths and URLs, PostgreSQL URLs, and refusals."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from clearhouse.adapters.postgres_journal import PostgresJournal
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.adapters.stores import describe, open_journal
from clearhouse.app.ports import Journal
from clearhouse.core.errors import StorageError

POSTGRES_URL = os.environ.get(
    "CLEARHOUSE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _round_trips_genesis(journal: Journal) -> bool:
    try:
        journal.write_genesis(b'{"venue": 1}')
        return journal.genesis() == b'{"venue": 1}'
    finally:
        journal.close()


def test_a_path_opens_sqlite(tmp_path: Path) -> None:
    for location in (tmp_path / "a.sqlite", str(tmp_path / "b.sqlite")):
        journal = open_journal(location)
        assert isinstance(journal, SqliteJournal)
        assert _round_trips_genesis(journal)
    assert (tmp_path / "a.sqlite").exists()
    assert (tmp_path / "b.sqlite").exists()


def test_a_sqlite_url_opens_its_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    journal = open_journal(f"sqlite://{path}")  # sqlite:///tmp/.../c.sqlite
    assert isinstance(journal, SqliteJournal)
    assert _round_trips_genesis(journal)
    assert path.exists()


def test_a_sqlite_url_without_a_path_is_refused() -> None:
    with pytest.raises(StorageError, match="no file"):
        open_journal("sqlite://")


def test_an_unknown_scheme_is_refused_not_taken_for_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError, match="unsupported") as failure:
        open_journal("mysql://root:hunter2@db/journal")
    assert "hunter2" not in str(failure.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgres_url_opens_postgres(scheme: str) -> None:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL not reachable at {describe(POSTGRES_URL)}: {error}")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    base = POSTGRES_URL.split("://", 1)[1]
    separator = "&" if "?" in base else "?"
    try:
        journal = open_journal(f"{scheme}://{base}{separator}schema={schema}")
        assert isinstance(journal, PostgresJournal)
        assert _round_trips_genesis(journal)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_describe_masks_a_password() -> None:
    assert describe("postgresql://node:s3cret@db.internal:5432/clearhouse?schema=a") == (
        "postgresql://node:***@db.internal:5432/clearhouse?schema=a"
    )
    assert describe("postgres://node@db/x?password=s3cret&sslmode=require") == (
        "postgres://node@db/x?password=***&sslmode=require"
    )
    assert describe("postgresql://node@db/x") == "postgresql://node@db/x"
    assert describe(Path("/var/lib/clearhouse/journal.sqlite")) == (
        "/var/lib/clearhouse/journal.sqlite"
    )


def _closed_port() -> int:
    """A local port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{_closed_port()}/test?connect_timeout=2"
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot open journal") as failure:
        open_journal(url)
    assert time.monotonic() - started < 5
    message = str(failure.value)
    assert "s3cret" not in message
    assert "postgresql://postgres:***@127.0.0.1:" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://postgres@127.0.0.1:notaport/test", "cannot open journal"),
        ("postgresql://postgres@127.0.0.1/test?schema=", "one non-empty schema"),
        ("postgresql://postgres@127.0.0.1/test?schema=a&schema=b", "one non-empty schema"),
        ("postgresql://postgres@127.0.0.1/test?no_such_option=1", "cannot open journal"),
    ],
)
def test_a_bad_url_is_a_storage_error(url: str, why: str) -> None:
    with pytest.raises(StorageError, match=why):
        open_journal(url)
