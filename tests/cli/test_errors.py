"""The command line's operating errors: one line on stderr, ``error [CODE] message``, whatever
the terminal's width, and the exit code ``EXIT_CODES`` gives the code (README, "The command
line")."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from clearhouse.cli import EXIT_CODES, exit_code
from clearhouse.core.errors import ClearhouseError, ConfigError, VerificationError

GOLDEN_JOURNAL = Path(__file__).resolve().parents[1] / "golden" / "demo-seed3.sqlite"
ADDRESS = "0x" + "01" * 20


def _cli(*arguments: str, columns: int = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearhouse", *arguments], capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "COLUMNS": str(columns)},
    )  # fmt: skip


def _one_line(done: subprocess.CompletedProcess[str], exit_code: int, code: str) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error [{code}] "), done.stderr
    assert done.returncode == exit_code, (done.returncode, done.stderr)
    return done.stderr


@pytest.mark.parametrize(
    "arguments",
    [["init", "/nonexistent/folder/of/a/venue/that/does/not/exist/venue.toml"],
     ["serve", "--publisher", ADDRESS, "--data", "never-made"],
     ["serve", "--verifying-contract", "0x1234", "--data", "never-made"]],
)  # fmt: skip
def test_a_long_error_is_one_line_on_a_narrow_terminal(
    arguments: list[str], tmp_path: Path
) -> None:
    """These were printed by rich at the terminal's width: two lines, or more, on 40 columns."""
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", *arguments], capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "COLUMNS": "40"}, cwd=tmp_path,
    )  # fmt: skip
    line = _one_line(done, 2, "CONFIG_ERROR")
    assert len(line) > 40
    assert not (tmp_path / "never-made").exists()


def test_init_refuses_an_existing_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    path.write_text("mine")
    assert "exists: not overwritten" in _one_line(_cli("init", str(path)), 2, "CONFIG_ERROR")
    assert path.read_text() == "mine"


def test_a_failed_verify_is_one_documented_line(tmp_path: Path) -> None:
    """``error [VERIFICATION_FAILED] verification failed at height N: …``, exit 1."""
    path = tmp_path / "journal.sqlite"
    shutil.copyfile(GOLDEN_JOURNAL, path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE blocks SET state_root = zeroblob(32) WHERE height = 5")
    db.close()
    line = _one_line(_cli("verify", str(path)), 1, "VERIFICATION_FAILED")
    assert "verification failed at height 5: " in line


def test_every_exit_code_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = {line.split("|")[1].strip() for line in readme.splitlines() if line.startswith("| ")}
    assert {str(code) for _, code in EXIT_CODES} <= table
    assert exit_code(ClearhouseError("any other")) == 12
    assert exit_code(VerificationError(1, "x")) == 1 and exit_code(ConfigError("x")) == 2


def test_a_journal_of_other_consensus_rules_is_one_line_before_any_block(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    shutil.copyfile(GOLDEN_JOURNAL, path)
    with sqlite3.connect(path) as db:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rules', x'3939')")
    db.close()
    line = _one_line(_cli("verify", str(path)), 1, "RULES_VERSION_MISMATCH")
    assert "at height 0: the journal was written under consensus rules 99" in line
