"""Operating mistakes at the command line: each ends in one line on stderr with a stable code and
its own exit code, never a traceback, and changes nothing. A demo never deletes a journal it did
not make; verify writes nothing; one node per journal; a node whose sequencer died stops; the
journal's format version is checked on every open.

The PostgreSQL cases need the server at ``CLEARHOUSE_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and skip, saying why, without one.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from tests.node.conftest import NodeProcess, free_port

from clearhouse.adapters import postgres_journal
from clearhouse.adapters.journal_format import FORMAT_VERSION
from clearhouse.adapters.locks import JournalLock
from clearhouse.adapters.postgres_journal import mask_password
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.adapters.stores import open_journal
from clearhouse.core.errors import ConfigError, JournalFormatError, JournalLocked, JournalNotFound
from clearhouse.node.server import NodeConfig, listening_socket

POSTGRES_URL = os.environ.get(
    "CLEARHOUSE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
GOLDEN_JOURNAL = Path(__file__).resolve().parents[1] / "golden" / "demo-seed3.sqlite"

# The exit codes cli.EXIT_CODES promises (README, "Exit codes").
VERIFICATION_FAILED, CONFIG, NOT_FOUND, LOCKED, FORMAT, CORRUPT = 1, 2, 3, 4, 5, 6
BAD_LOCATION, BAD_DATA_DIR, EXISTS, NODE_FAILED = 7, 8, 9, 10


def _cli(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearhouse", *arguments],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _refused(done: subprocess.CompletedProcess[str], exit_code: int, code: str) -> str:
    """The one line an operating error prints, checked: its exit code, its code, no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"[{code}]" in lines[0], done.stderr
    assert done.returncode == exit_code, (done.returncode, done.stderr)
    return lines[0]


def _journal(path: Path) -> bytes:
    """A small journal at ``path`` (genesis only); its bytes."""
    journal = SqliteJournal(path)
    journal.write_genesis(b'{"venue": "not the demo"}')
    journal.close()
    return path.read_bytes()


def _postgres() -> str:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL not reachable at {mask_password(POSTGRES_URL)} "
                    f"(set CLEARHOUSE_TEST_POSTGRES): {' '.join(str(error).split())}")  # fmt: skip
    return POSTGRES_URL


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema name of this test's own, dropped afterwards (if anything made it)."""
    url = _postgres()
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def _schema_exists(schema: str) -> bool:
    with psycopg.connect(POSTGRES_URL) as db:
        found = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        return found.fetchone() is not None


# ── 1. demo --out never deletes a journal it did not make ──────────────────────────────────


def test_demo_refuses_a_folder_that_already_holds_a_journal(tmp_path: Path) -> None:
    before = _journal(tmp_path / "journal.sqlite")
    done = _cli("demo", "--out", str(tmp_path), "--hours", "0.01")
    line = _refused(done, EXISTS, "JOURNAL_EXISTS")
    assert "--force" in line
    assert (tmp_path / "journal.sqlite").read_bytes() == before


def test_demo_force_never_deletes_a_journal_a_running_process_holds(tmp_path: Path) -> None:
    before = _journal(tmp_path / "journal.sqlite")
    node = JournalLock(tmp_path / "journal.sqlite")  # as a running node holds it
    try:
        done = _cli("demo", "--out", str(tmp_path), "--hours", "0.01", "--force")
    finally:
        node.release()
    line = _refused(done, LOCKED, "JOURNAL_LOCKED")
    assert "journal.sqlite.lock" in line
    assert (tmp_path / "journal.sqlite").read_bytes() == before
    replaced = _cli("demo", "--out", str(tmp_path), "--hours", "0.01", "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert _cli("verify", str(tmp_path / "journal.sqlite")).returncode == 0


# ── 2. verify opens storage read-only and creates nothing ──────────────────────────────────


def test_verify_of_an_empty_sqlite_file_reports_no_journal_and_writes_nothing(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    _refused(_cli("verify", str(empty)), NOT_FOUND, "NOT_FOUND")
    assert empty.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite"]


def test_verify_of_a_mistyped_postgres_schema_creates_nothing(schema: str) -> None:
    line = _refused(_cli("verify", _with_schema(POSTGRES_URL, schema)), NOT_FOUND, "NOT_FOUND")
    assert schema in line
    assert not _schema_exists(schema)


def test_verify_of_an_empty_postgres_schema_creates_no_tables(schema: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    _refused(_cli("verify", _with_schema(POSTGRES_URL, schema)), NOT_FOUND, "NOT_FOUND")
    with psycopg.connect(POSTGRES_URL) as db:
        tables = db.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()
    assert tables == (0,)


# ── 3. one node per journal; a node whose sequencer died stops ─────────────────────────────


def test_a_second_node_on_the_same_data_refuses_to_start(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node").start()
    try:
        second = _cli("serve", "--dev", "--port", str(free_port()), "--data", str(node.data_dir))
        line = _refused(second, LOCKED, "JOURNAL_LOCKED")
        assert "journal.sqlite.lock" in line
        assert node.process is not None
        assert node.process.poll() is None  # the first one serves on
    finally:
        assert node.stop() == 0


def test_a_second_writer_on_a_postgres_journal_is_refused(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_journal, "LOCK_WAIT_S", 0.2)
    url = _with_schema(POSTGRES_URL, schema)
    first = open_journal(url, exclusive=True)
    try:
        with pytest.raises(JournalLocked, match="advisory lock"):
            open_journal(url, exclusive=True)
        open_journal(url, read_only=True).close()  # a verifier may read alongside
    finally:
        first.close()
    open_journal(url, exclusive=True).close()  # the lock went with the connection


def test_a_node_whose_sequencer_died_stops_serving(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node").start()
    assert node.process is not None
    # Another writer holds SQLite's write lock: the node's next commit (the heartbeat block,
    # within a second) times out, and its sequencer stops on the StorageError.
    blocker = sqlite3.connect(node.data_dir / "journal.sqlite", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        node.process.wait(timeout=60)
    finally:
        blocker.close()
    assert node.process.returncode == NODE_FAILED, node.log()
    assert "[NODE_FAILED]" in node.log()
    assert "Traceback (most recent call last)" not in node.log().split("[NODE_FAILED]")[-1]


# ── 4. operating errors end in one line and their own exit code ────────────────────────────


def test_a_port_in_use_is_one_line_before_anything_is_written(tmp_path: Path) -> None:
    """It wrote a journal, logged "node ready", then uvicorn's [Errno 98] and exit 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = _cli("serve", "--dev", "--port", port, "--data", str(tmp_path / "data"))
    line = _refused(done, CONFIG, "CONFIG_ERROR")
    assert f"cannot listen on 127.0.0.1:{port}" in line and "choose another --port" in line
    assert not (tmp_path / "data").exists()


def test_two_nodes_on_one_port_cannot_both_pass_its_check() -> None:
    """Bound and not yet listening, two sockets with SO_REUSEADDR could both take a port: the
    node listens as soon as it has bound, so the second is refused before it opens anything."""
    config = NodeConfig(host="127.0.0.1", port=free_port(), data_dir=Path("unused"))
    first = listening_socket(config)
    try:
        with pytest.raises(ConfigError, match="Address already in use"):
            listening_socket(config).close()
    finally:
        first.close()


def test_a_corrupt_sqlite_page_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    shutil.copyfile(GOLDEN_JOURNAL, path)
    with path.open("r+b") as file:  # a page in the middle of the blocks and commands
        file.seek(4096 * 40)
        file.write(b"\xff" * 4096)
    _refused(_cli("verify", str(path)), CORRUPT, "JOURNAL_CORRUPT")
    serve = _cli("serve", "--dev", "--port", str(free_port()), "--data", str(tmp_path))
    _refused(serve, CORRUPT, "JOURNAL_CORRUPT")


def test_an_unknown_url_scheme_is_one_line(tmp_path: Path) -> None:
    _refused(_cli("verify", "mysql://root@db/journal"), BAD_LOCATION, "BAD_LOCATION")
    serve = _cli("serve", "--dev", "--port", str(free_port()), "--data", str(tmp_path / "d"),
                 "--store", "mysql://root@db/journal")  # fmt: skip
    _refused(serve, BAD_LOCATION, "BAD_LOCATION")
    assert not (tmp_path / "d").exists()


def test_a_bad_data_path_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"mine")
    serve = _cli("serve", "--dev", "--port", str(free_port()), "--data", str(a_file))
    line = _refused(serve, BAD_DATA_DIR, "BAD_DATA_DIR")
    assert "not a folder" in line
    _refused(_cli("demo", "--out", str(a_file), "--hours", "0.01"), BAD_DATA_DIR, "BAD_DATA_DIR")
    assert a_file.read_bytes() == b"mine"


def test_an_older_schema_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    shutil.copyfile(GOLDEN_JOURNAL, path)
    with sqlite3.connect(path) as db:  # as journals were before commands kept signatures
        db.execute("ALTER TABLE commands DROP COLUMN signature")
    db.close()
    before = path.read_bytes()
    line = _refused(_cli("verify", str(path)), FORMAT, "JOURNAL_FORMAT")
    assert "commands lacks signature" in line
    serve = _cli("serve", "--dev", "--port", str(free_port()), "--data", str(tmp_path))
    _refused(serve, FORMAT, "JOURNAL_FORMAT")
    assert path.read_bytes() == before


# ── 5. the journal's format version ───────────────────────────────────────────────────────


def _format_row(path: Path) -> tuple[bytes, ...] | None:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    db.close()
    return None if row is None else (bytes(row[0]),)


def test_a_new_journal_records_its_format_version(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    _journal(path)
    assert _format_row(path) == (str(FORMAT_VERSION).encode(),)


@pytest.mark.parametrize("version", [b"2", b"x", "99", 99])  # by hand: TEXT, INTEGER
def test_a_newer_or_unreadable_format_version_is_refused(
    tmp_path: Path, version: bytes | str | int
) -> None:
    path = tmp_path / "journal.sqlite"
    _journal(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (version,))
    db.close()
    with pytest.raises(JournalFormatError):
        SqliteJournal(path)
    line = _refused(_cli("verify", str(path)), FORMAT, "JOURNAL_FORMAT")
    if version != b"x":
        assert "newer than this build reads (1)" in line
    _refused(_cli("serve", "--dev", "--port", str(free_port()), "--data", str(tmp_path)), FORMAT,
             "JOURNAL_FORMAT")  # fmt: skip


def test_a_journal_from_before_format_versions_is_format_1(tmp_path: Path) -> None:
    path = tmp_path / "golden.sqlite"
    shutil.copyfile(GOLDEN_JOURNAL, path)
    with sqlite3.connect(path) as db:  # as a journal written before the version existed
        db.execute("DELETE FROM meta WHERE key = 'format'")
    db.close()
    assert _format_row(path) is None
    done = _cli("verify", str(path))
    assert done.returncode == 0, done.stderr
    assert "verified 180 blocks" in done.stdout
    assert _format_row(path) is None  # verify wrote nothing


def test_a_postgres_journal_records_and_checks_its_format_version(schema: str) -> None:
    url = _with_schema(POSTGRES_URL, schema)
    open_journal(url).close()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        table = sql.Identifier(schema, "meta")
        row = db.execute(
            sql.SQL("SELECT value FROM {} WHERE key = 'format'").format(table)
        ).fetchone()
        assert row is not None
        assert bytes(row[0]) == str(FORMAT_VERSION).encode()
        db.execute(sql.SQL("UPDATE {} SET value = '\\x39' WHERE key = 'format'").format(table))
    with pytest.raises(JournalFormatError, match="newer"):
        open_journal(url)
    with pytest.raises(JournalFormatError, match="newer"):
        open_journal(url, read_only=True)


def test_opening_read_only_where_there_is_no_journal_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(JournalNotFound):
        open_journal(tmp_path / "none.sqlite", read_only=True)
    assert not (tmp_path / "none.sqlite").exists()


def test_a_postgres_journal_records_its_signing_domain_for_a_read_only_audit(schema: str) -> None:
    from clearhouse.app.audit import journal_domain, record_domain
    from clearhouse.app.signing import Domain

    url = _with_schema(POSTGRES_URL, schema)
    domain = Domain(424242, "0x" + "ab" * 20, "Venue", "2")
    journal = open_journal(url)
    try:
        assert journal_domain(journal) is None  # nothing recorded yet
        record_domain(journal, domain)
    finally:
        journal.close()
    reader = open_journal(url, read_only=True)
    try:
        assert journal_domain(reader) == domain
    finally:
        reader.close()


def test_version_prints_the_installed_version_and_exits_0() -> None:
    from importlib.metadata import version

    done = _cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"clearhouse {version('clearhouse')}"
