"""The SQLite journal: durable settings, exact round trip, refusals, and the CLI on bad paths."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import (
    RULES_KEY,
    Chain,
    genesis_document,
    journal_rules,
    venue_from_genesis,
    verify,
)
from clearhouse.core.block import RULES_VERSION
from clearhouse.core.errors import RulesMismatch, StorageError, VerificationError
from clearhouse.sim.venue import GENESIS_NS, default_venue, genesis_commands


def _chain(journal: SqliteJournal | MemoryJournal, blocks: int) -> Chain:
    spec = default_venue(GENESIS_NS)
    chain = Chain(spec.venue, journal)
    chain.produce(GENESIS_NS, genesis_commands(spec))
    for height in range(2, blocks + 1):
        chain.produce(GENESIS_NS + height * 10**9, [])
    chain.flush()
    return chain


def test_journal_uses_wal_and_full_sync(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite")
    mode = journal._db.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = journal._db.execute("PRAGMA synchronous").fetchone()[0]
    journal.close()
    assert mode == "wal"
    assert synchronous == 2  # FULL


def test_blocks_round_trip_exactly_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    chain = _chain(SqliteJournal(path), blocks=5)
    chain.journal.close()
    journal = SqliteJournal(path)
    stored = list(journal.blocks())
    assert [b.header.height for b in stored] == [1, 2, 3, 4, 5]
    assert stored[-1].block_hash == chain.parent_hash
    assert stored[0].commands  # genesis listing commands are kept byte for byte
    result = verify(journal)
    assert result.blocks == 5
    assert result.state_root == stored[-1].header.state_root


def test_memory_and_sqlite_journals_agree(tmp_path: Path) -> None:
    in_memory = _chain(MemoryJournal(), blocks=4)
    on_disk = _chain(SqliteJournal(tmp_path / "j.sqlite"), blocks=4)
    assert in_memory.parent_hash == on_disk.parent_hash


def test_genesis_is_written_once(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite")
    journal.write_genesis(genesis_document(default_venue(GENESIS_NS).venue))
    with pytest.raises(StorageError, match="already has a genesis"):
        journal.write_genesis(b"{}")


def test_genesis_document_round_trips() -> None:
    venue = default_venue(GENESIS_NS).venue
    assert venue_from_genesis(genesis_document(venue)) == venue
    with pytest.raises(StorageError, match="unreadable genesis"):
        venue_from_genesis(b'{"format": "something else"}')


def test_verify_without_genesis_fails_at_height_zero(tmp_path: Path) -> None:
    with pytest.raises(VerificationError) as failure:
        verify(SqliteJournal(tmp_path / "empty.sqlite"))
    assert failure.value.height == 0


def test_a_missing_block_is_named(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    _chain(SqliteJournal(path), blocks=4).journal.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM blocks WHERE height = 3")
    with pytest.raises(VerificationError) as failure:
        verify(SqliteJournal(path))
    assert failure.value.height == 3


def test_a_failed_append_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    chain = _chain(SqliteJournal(path), blocks=3)
    stored = list(chain.journal.blocks())
    with pytest.raises(StorageError):
        chain.journal.append([stored[-1]])  # height 3 again: the primary key refuses it
    assert [b.header.height for b in chain.journal.blocks()] == [1, 2, 3]


def test_cli_verify_reports_a_missing_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(tmp_path / "nope.sqlite")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 3
    assert "NOT_FOUND" in result.stderr
    assert not (tmp_path / "nope.sqlite").exists()


def test_cli_verify_reports_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database, not even close" * 10)
    result = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 6
    assert "JOURNAL_CORRUPT" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_journal_records_its_consensus_rules_and_another_rules_journal_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    _chain(SqliteJournal(path), blocks=3).journal.close()
    journal = SqliteJournal(path)
    assert journal.read_meta(RULES_KEY) == str(RULES_VERSION)
    assert verify(journal).blocks == 3
    journal.write_meta(RULES_KEY, str(RULES_VERSION + 1))
    with pytest.raises(RulesMismatch) as refused:
        verify(journal)
    assert refused.value.height == 0  # before the first block, not at a root that differs
    assert refused.value.code == "RULES_VERSION_MISMATCH"
    assert f"written under consensus rules {RULES_VERSION + 1}" in str(refused.value)
    chain = Chain(default_venue(GENESIS_NS).venue, journal, resume=True)
    with pytest.raises(RulesMismatch):
        chain.recover()  # a node does not resume a journal of other rules either


def test_a_journal_from_before_rules_were_recorded_is_rules_one(tmp_path: Path) -> None:
    journal = _chain(MemoryJournal(), blocks=2).journal
    assert isinstance(journal, MemoryJournal)
    del journal._meta[RULES_KEY]  # as a journal written before the row existed
    assert journal_rules(journal) == 1
    assert RULES_VERSION > 1  # this build's triggers fire in another order: refused
    with pytest.raises(RulesMismatch, match="written under consensus rules 1; this build"):
        verify(journal)
    for bad in ("x", "-1", "١", "9" * 12):
        journal.write_meta(RULES_KEY, bad)
        with pytest.raises(StorageError, match="corrupt journal: consensus rules"):
            journal_rules(journal)
