"""Refactors keep the chain: the golden runs give the head hashes recorded in ``chains.json``,
and the journal written by an earlier build replays block for block on this one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import verify

from .chains import CHAINS, DEMOS, JOURNAL, demo_chain, simulate_chain

GOLDEN = json.loads(CHAINS.read_text())


@pytest.mark.parametrize(("seed", "hours"), DEMOS)
def test_demo_chain_is_the_golden_one(seed: int, hours: float, tmp_path: Path) -> None:
    assert demo_chain(seed, hours, tmp_path) == GOLDEN["demo"][f"seed={seed},hours={hours}"]


@pytest.mark.parametrize("seed", sorted(int(s) for s in GOLDEN["simulate"]))
def test_simulated_chain_is_the_golden_one(seed: int) -> None:
    assert simulate_chain(seed) == GOLDEN["simulate"][str(seed)]


def test_an_earlier_builds_journal_replays_on_this_one(tmp_path: Path) -> None:
    copy = tmp_path / JOURNAL.name
    shutil.copyfile(JOURNAL, copy)  # reading a SQLite file may leave -wal/-shm beside it
    journal = SqliteJournal(copy)
    try:
        result = verify(journal)
    finally:
        journal.close()
    recorded = GOLDEN["demo"]["seed=3,hours=0.5"]
    assert result.blocks == recorded["blocks"]
    assert "0x" + result.state_root.hex() == recorded["state_root"]
