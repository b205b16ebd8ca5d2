"""Same seed, same bytes: the demo's journal is reproducible block for block, verifies by replay,
and a single flipped digit in one stored command is caught at its height (API and CLI)."""

from __future__ import annotations

import itertools
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import verify
from clearhouse.app.ports import StoredBlock
from clearhouse.core.errors import VerificationError
from clearhouse.sim.demo import run_demo

SEED = 3
HOURS = 0.5


def _blocks(path: Path) -> list[StoredBlock]:
    journal = SqliteJournal(path)
    try:
        return list(journal.blocks())
    finally:
        journal.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object]]:
    first = run_demo(seed=SEED, hours=HOURS, out_dir=tmp_path_factory.mktemp("first"))
    second = run_demo(seed=SEED, hours=HOURS, out_dir=tmp_path_factory.mktemp("second"))
    assert first.summary == second.summary
    return first.journal_path, second.journal_path, first.summary


def _copy(journal: Path, tmp_path: Path) -> Path:
    target = tmp_path / "journal.sqlite"
    shutil.copyfile(journal, target)
    return target


def _tamper(path: Path) -> int:
    """Change one digit of one command's nonce, halfway through the journal; its height."""
    db = sqlite3.connect(path)
    try:
        (last,) = db.execute("SELECT MAX(height) FROM commands").fetchone()
        height, index, body = db.execute(
            "SELECT height, idx, body FROM commands WHERE height >= ? ORDER BY height, idx LIMIT 1",
            (last // 2,),
        ).fetchone()
        text = bytes(body).decode()
        match = re.search(r'"nonce":(\d+)', text)
        assert match is not None, text
        at = match.end(1) - 1
        digit = "1" if text[at] != "1" else "2"
        tampered = (text[:at] + digit + text[at + 1 :]).encode()
        assert tampered != bytes(body) and len(tampered) == len(body)
        db.execute(
            "UPDATE commands SET body = ? WHERE height = ? AND idx = ?", (tampered, height, index)
        )
        db.commit()
    finally:
        db.close()
    assert isinstance(height, int)
    return height


def test_same_seed_gives_identical_journals(runs: tuple[Path, Path, dict[str, object]]) -> None:
    first, second, summary = runs
    blocks_a, blocks_b = _blocks(first), _blocks(second)
    assert len(blocks_a) == summary["blocks"] > 100
    for a, b in zip(blocks_a, blocks_b, strict=True):
        assert a.header.encode() == b.header.encode()
        assert a.block_hash == b.block_hash
        assert a.commands == b.commands
    assert sum(len(b.commands) for b in blocks_a) == summary["commands"]
    assert summary["trades"] > 0  # the run did real work, not just empty blocks
    # Blocks are hash-chained and the last root is the run's state root.
    for parent, child in itertools.pairwise(blocks_a):
        assert child.header.parent_hash == parent.block_hash
    assert "0x" + blocks_a[-1].header.state_root.hex() == summary["state_root"]


def test_another_seed_gives_another_journal(
    runs: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    other = run_demo(seed=SEED + 1, hours=HOURS, out_dir=tmp_path)
    assert other.summary["state_root"] != runs[2]["state_root"]


def test_verify_replays_every_root(runs: tuple[Path, Path, dict[str, object]]) -> None:
    journal = SqliteJournal(runs[0])
    try:
        result = verify(journal)
    finally:
        journal.close()
    assert result.blocks == runs[2]["blocks"]
    assert result.commands == runs[2]["commands"]
    assert "0x" + result.state_root.hex() == runs[2]["state_root"]


def test_one_flipped_digit_is_caught_at_its_height(
    runs: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    path = _copy(runs[0], tmp_path)
    height = _tamper(path)
    assert 1 < height < int(str(runs[2]["blocks"]))
    journal = SqliteJournal(path)
    try:
        with pytest.raises(VerificationError) as caught:
            verify(journal)
    finally:
        journal.close()
    assert caught.value.height == height
    assert "commands hash" in caught.value.what


def _cli_verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_verify(runs: tuple[Path, Path, dict[str, object]], tmp_path: Path) -> None:
    path = _copy(runs[0], tmp_path)
    ok = _cli_verify(path)
    assert ok.returncode == 0, ok.stderr
    expected = f"verified {runs[2]['blocks']} blocks, state root {runs[2]['state_root']}"
    assert ok.stdout.startswith("verified ")
    assert ok.stdout.strip() == expected
    height = _tamper(path)
    failed = _cli_verify(path)
    assert failed.returncode != 0
    assert f"height {height}" in " ".join(failed.stderr.split())
    assert not failed.stdout.startswith("verified")
