"""The PostgreSQL journal: the SQLite journal's behaviours, on a server.

Needs a PostgreSQL server at ``CLEARHOUSE_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the module is skipped without one. Each test
gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.adapters.postgres_journal import PostgresJournal, mask_password
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import Chain, genesis_document, verify
from clearhouse.app.ports import Journal, Snapshot, StoredBlock
from clearhouse.core.block import BlockHeader
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import StorageError, VerificationError
from clearhouse.core.ids import Side
from clearhouse.core.params import VenueParams
from clearhouse.sim.venue import GENESIS_NS, default_venue, genesis_commands
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue

POSTGRES_URL = os.environ.get(
    "CLEARHOUSE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _unreachable_reason(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return " ".join(str(error).split())


_REASON = _unreachable_reason(POSTGRES_URL)
if _REASON is not None:
    pytest.skip(
        f"PostgreSQL not reachable at {mask_password(POSTGRES_URL)} "
        f"(set CLEARHOUSE_TEST_POSTGRES): {_REASON}",
        allow_module_level=True,
    )

Stream = list[tuple[int, list[bytes]]]
Opener = Callable[..., PostgresJournal]


# ── Fixtures ────────────────────────────────────────────────────────────────────────────────


def _admin(
    query: str | sql.Composed, params: tuple[object, ...] = (), *, schema: str = "public"
) -> list[tuple[object, ...]]:
    """Run ``query`` in ``schema`` on a connection of its own, as an operator would."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        cursor = db.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield name
    _admin(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _url_for(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}schema={schema}"


@pytest.fixture
def url(schema: str) -> str:
    return _url_for(schema)


@pytest.fixture
def open_pg(url: str) -> Iterator[Opener]:
    """Open journals on the test's schema; all are closed at teardown."""
    opened: list[PostgresJournal] = []

    def opener(**options: int) -> PostgresJournal:
        opened.append(PostgresJournal(url, **options))
        return opened[-1]

    yield opener
    for journal in opened:
        journal.close()


@pytest.fixture
def journal(open_pg: Opener) -> PostgresJournal:
    return open_pg()


@pytest.fixture(scope="module")
def stream() -> tuple[VenueParams, Stream]:
    """A short venue history with trades, cancels and price reports, as journal bytes."""
    venue = Venue()
    venue.block([
        venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE),
        venue.order("bob", BTC_PERP, Side.SELL, ONE_BTC, PRICE),
        venue.order("carol", BTC_PERP, Side.BUY, ONE_BTC, PRICE - 1_000_000),
    ])  # fmt: skip
    venue.block([venue.cancel_all("carol")])
    venue.block()
    encoded = [
        (b.timestamp_ns, [c if isinstance(c, bytes) else encode_command(c) for c in b.commands])
        for b in venue.recorded
    ]
    return venue.spec.venue, encoded


# ── Helpers ─────────────────────────────────────────────────────────────────────────────────


def _signature(height: int, index: int) -> bytes:
    """A 65-byte stand-in; every third command is the node's own (unsigned)."""
    return b"" if index % 3 == 0 else bytes([height % 256, index % 256]) * 32 + b"\x1b"


def _chain(journal: Journal, blocks: int) -> Chain:
    spec = default_venue(GENESIS_NS)
    chain = Chain(spec.venue, journal)
    genesis = genesis_commands(spec)
    chain.produce(GENESIS_NS, genesis, [_signature(1, i) for i in range(len(genesis))])
    for height in range(2, blocks + 1):
        chain.produce(GENESIS_NS + height * 10**9, [])
    chain.flush()
    return chain


def _replay_stream(journal: Journal, venue: VenueParams, stream: Stream) -> Chain:
    chain = Chain(venue, journal)
    for timestamp_ns, commands in stream:
        signatures = [_signature(chain.height + 1, i) for i in range(len(commands))]
        chain.produce_encoded(timestamp_ns, commands, signatures)
    chain.flush()
    return chain


def _heights(journal: Journal) -> list[int]:
    return [b.header.height for b in journal.blocks()]


# ── Durability and layout ───────────────────────────────────────────────────────────────────


def test_commits_are_synchronous_even_when_the_url_asks_otherwise(url: str) -> None:
    journal = PostgresJournal(f"{url}&options=-c%20synchronous_commit%3Doff")
    try:
        setting = journal._db.execute("SHOW synchronous_commit").fetchone()
    finally:
        journal.close()
    assert setting == ("on",)


def test_tables_live_in_the_urls_schema(journal: PostgresJournal, schema: str) -> None:
    tables = _admin(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "ORDER BY table_name",
        (schema,),
    )
    assert tables == [("blocks",), ("commands",), ("meta",), ("snapshots",)]


def test_two_schemas_are_two_journals(open_pg: Opener) -> None:
    _chain(open_pg(), blocks=3)
    other_schema = f"test_{uuid.uuid4().hex[:16]}"
    other = PostgresJournal(_url_for(other_schema))
    try:
        assert other.head() is None
        assert other.genesis() is None
    finally:
        other.close()
        _admin(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(other_schema)))


# ── Round trip ──────────────────────────────────────────────────────────────────────────────


def test_blocks_round_trip_exactly_and_verify(open_pg: Opener) -> None:
    chain = _chain(open_pg(), blocks=5)
    expected = list(_chain(MemoryJournal(), blocks=5).journal.blocks())
    reopened = open_pg()  # another connection: what was appended is committed
    stored = list(reopened.blocks())
    assert stored == expected
    assert stored[0].signatures[1] == _signature(1, 1)
    assert stored[0].signature(0) == b""
    assert stored[-1].block_hash == chain.parent_hash
    result = verify(reopened)
    assert result.blocks == 5
    assert result.state_root == stored[-1].header.state_root


def test_block_head_and_start_height(journal: PostgresJournal) -> None:
    chain = _chain(journal, blocks=4)
    stored = list(journal.blocks())
    assert journal.block(1) == stored[0]
    assert journal.block(5) is None
    head = journal.head()
    assert head is not None
    assert head.block_hash == chain.parent_hash
    assert head.commands == ()  # like SQLite: the head is its header and hash
    assert _heights_from(journal, 3) == [3, 4]
    assert _heights_from(journal, 9) == []


def _heights_from(journal: PostgresJournal, start: int) -> list[int]:
    return [b.header.height for b in journal.blocks(start)]


def test_small_pages_read_the_same_blocks(
    open_pg: Opener, stream: tuple[VenueParams, Stream]
) -> None:
    venue, commands = stream
    _replay_stream(open_pg(), venue, commands)
    whole = list(open_pg().blocks())
    sizes = [len(b.commands) for b in whole]
    assert max(sizes) > 5 and min(sizes) < 5  # blocks both larger and smaller than a page
    paged = open_pg(blocks_per_page_max=2, commands_per_page_max=5)
    assert list(paged.blocks()) == whole
    assert list(paged.blocks(3)) == whole[2:]


def test_pages_follow_the_primary_key_even_on_a_fresh_table(journal: PostgresJournal) -> None:
    # Without statistics the planner would sort the whole range for each page (quadratic).
    journal.append(_filler_blocks(1, 50, commands=20))
    plan = journal._db.execute(
        "EXPLAIN SELECT height, body, signature FROM commands "
        "WHERE height BETWEEN 2 AND 50 ORDER BY height, idx LIMIT 100"
    ).fetchall()
    text = " ".join(line for (line,) in plan)
    assert "Index Scan using commands_pkey" in text
    assert "Sort" not in text


def test_sqlite_and_postgres_journals_have_the_same_hashes(
    journal: PostgresJournal, tmp_path: Path, stream: tuple[VenueParams, Stream]
) -> None:
    venue, commands = stream
    on_server = _replay_stream(journal, venue, commands)
    sqlite = SqliteJournal(tmp_path / "j.sqlite")
    try:
        on_disk = _replay_stream(sqlite, venue, commands)
        from_sqlite = list(sqlite.blocks())
    finally:
        sqlite.close()
    from_postgres = list(journal.blocks())
    assert on_server.parent_hash == on_disk.parent_hash
    assert [b.block_hash for b in from_postgres] == [b.block_hash for b in from_sqlite]
    assert from_postgres == from_sqlite
    assert len(from_postgres) == len(commands)
    assert verify(journal).state_root == on_server.engine.state.tree.root()


# ── Refusals and failures ───────────────────────────────────────────────────────────────────


def test_genesis_is_written_once(journal: PostgresJournal) -> None:
    document = genesis_document(default_venue(GENESIS_NS).venue)
    journal.write_genesis(document)
    with pytest.raises(StorageError, match="already has a genesis"):
        journal.write_genesis(b"{}")
    assert journal.genesis() == document


def test_verify_without_genesis_fails_at_height_zero(journal: PostgresJournal) -> None:
    with pytest.raises(VerificationError) as failure:
        verify(journal)
    assert failure.value.height == 0


def test_a_missing_block_is_named(journal: PostgresJournal, schema: str) -> None:
    _chain(journal, blocks=4)
    _admin("DELETE FROM blocks WHERE height = 3", schema=schema)
    with pytest.raises(VerificationError) as failure:
        verify(journal)
    assert failure.value.height == 3


def test_a_failed_append_changes_nothing(
    open_pg: Opener, schema: str, stream: tuple[VenueParams, Stream]
) -> None:
    venue, commands = stream
    journal = open_pg()
    reference = _replay_stream(MemoryJournal(), venue, commands)
    all_blocks = list(reference.journal.blocks())
    journal.write_genesis(genesis_document(venue))
    journal.append(all_blocks[:3])
    rows_before = _admin("SELECT count(*) FROM commands", schema=schema)
    fourth, fifth = all_blocks[3], all_blocks[4]
    assert fourth.commands
    with pytest.raises(StorageError, match="append failed"):
        journal.append([fourth, fifth, fourth])  # height 4 twice: the primary key refuses it
    assert _heights(journal) == [1, 2, 3]
    assert _admin("SELECT count(*) FROM commands", schema=schema) == rows_before
    journal.append([fourth, fifth])  # the connection is usable after the rollback
    assert _heights(journal) == [1, 2, 3, 4, 5]


def test_an_append_failing_in_its_commands_leaves_no_block(
    journal: PostgresJournal, schema: str, stream: tuple[VenueParams, Stream]
) -> None:
    venue, commands = stream
    all_blocks = list(_replay_stream(MemoryJournal(), venue, commands).journal.blocks())
    journal.write_genesis(genesis_document(venue))
    journal.append(all_blocks[:2])
    # A stray row where block 4's first command goes: its blocks row is written first, then
    # the commands fail; the whole batch must go.
    _admin("INSERT INTO commands VALUES (4, 0, %s, %s)", (b"\0", b""), schema=schema)
    with pytest.raises(StorageError, match="append failed"):
        journal.append(all_blocks[2:5])
    assert _heights(journal) == [1, 2]
    assert _admin("SELECT count(*) FROM commands WHERE height >= 3", schema=schema) == [(1,)]


def test_a_closed_journal_raises_storage_error(open_pg: Opener) -> None:
    journal = open_pg()
    journal.close()
    with pytest.raises(StorageError, match="read head failed"):
        journal.head()


# ── Snapshots ───────────────────────────────────────────────────────────────────────────────


def _snapshot(chain: Chain) -> Snapshot:
    engine = chain.engine
    return Snapshot(engine.state.height, engine.state.tree.root(), pickle.dumps(engine))


def test_the_newest_two_snapshots_are_kept(journal: PostgresJournal, schema: str) -> None:
    chain = _chain(journal, blocks=2)
    for timestamp_s in (3, 4, 5):
        chain.produce(GENESIS_NS + timestamp_s * 10**9, [])
        chain.flush()
        journal.write_snapshot(_snapshot(chain))
    journal.write_snapshot(Snapshot(5, b"\x05" * 32, b"again"))  # same height: replaced
    kept = _admin("SELECT height FROM snapshots ORDER BY height", schema=schema)
    assert kept == [(4,), (5,)]
    assert journal.latest_snapshot() == Snapshot(5, b"\x05" * 32, b"again")


def test_recover_from_a_snapshot_replays_only_what_follows_it(open_pg: Opener) -> None:
    journal = open_pg()
    assert journal.latest_snapshot() is None
    chain = _chain(journal, blocks=3)
    journal.write_snapshot(_snapshot(chain))
    for timestamp_s in (4, 5):
        chain.produce(GENESIS_NS + timestamp_s * 10**9, [])
    chain.flush()
    latest = open_pg().latest_snapshot()
    assert latest is not None
    assert latest.height == 3
    restarted = Chain(default_venue(GENESIS_NS).venue, open_pg(), resume=True)
    replayed: list[int] = []
    height = restarted.recover(
        snapshot=pickle.loads(latest.body),  # noqa: S301 (our own snapshot)
        on_executed=lambda executed: replayed.append(executed.header.height),
    )
    assert height == 5
    assert replayed == [4, 5]
    assert restarted.parent_hash == chain.parent_hash
    assert restarted.engine.state.tree.root() == verify(journal).state_root


# ── Threads ─────────────────────────────────────────────────────────────────────────────────


def test_a_reader_thread_sees_whole_blocks_while_a_writer_appends(
    journal: PostgresJournal, stream: tuple[VenueParams, Stream]
) -> None:
    venue, commands = stream
    expected = list(_replay_stream(MemoryJournal(), venue, commands).journal.blocks())
    expected += _filler_blocks(len(expected) + 1, 200)
    journal.write_genesis(genesis_document(venue))
    stop = threading.Event()
    a_read_ended = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for index, block in enumerate(expected):
                if stop.is_set():
                    return
                journal.append([block])
                if index % 20 == 19:  # a lock is not fair: wait until the reader has had a turn
                    a_read_ended.clear()
                    a_read_ended.wait(timeout=10)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    writer = threading.Thread(target=write)
    # Switch threads often, so that reads land between the writer's statements.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    writer.start()
    try:
        reads = _read_while(writer, journal, expected, a_read_ended)
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(interval)
    assert not failures
    assert reads >= len(expected) // 20
    assert list(journal.blocks()) == expected


def _read_while(
    writer: threading.Thread, journal: Journal, expected: list[StoredBlock], ended: threading.Event
) -> int:
    reads = 0
    while writer.is_alive():
        seen = list(journal.blocks())
        assert seen == expected[: len(seen)]  # a prefix, every block whole
        head = journal.head()
        assert head is None or head.header.height >= len(seen)
        reads += 1
        ended.set()
    return reads


def _filler_blocks(first_height: int, count: int, commands: int = 3) -> list[StoredBlock]:
    """Blocks with made-up hashes and commands, for tests of storage alone (they do not verify)."""
    blocks = []
    for height in range(first_height, first_height + count):
        header = BlockHeader(
            height=height, timestamp_ns=GENESIS_NS + height, parent_hash=bytes(32),
            commands_hash=bytes(32), events_hash=bytes(32), state_root=bytes(32),
        )  # fmt: skip
        blocks.append(
            StoredBlock(header, height.to_bytes(32, "big"), (b"{}",) * commands, (b"s",) * commands)
        )
    return blocks
