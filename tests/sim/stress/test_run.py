"""One path through the real engine: deterministic in its seed, measured, and written out as a
journal that ``clearhouse verify`` replays to the same state root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.sim.stress.run import run_path
from clearhouse.sim.stress.scenario import load_scenario


def test_a_slide_liquidates_and_is_measured(slide_scenario: Path) -> None:
    result = run_path(load_scenario(slide_scenario), {}, seed=1)
    assert result.blocks > 4_000 and result.account_blocks > result.blocks
    assert result.liquidated_notional > 0 and sum(result.steps.values()) > 0
    assert result.deficit == 0 and result.socialized == 0 and result.hidden_debt == 0
    # The margin backtest: hourly account-periods, some of them in the slide breached.
    assert len(result.margins) == len(result.losses) > 20
    breaches = sum(
        loss > margin for margin, loss in zip(result.margins, result.losses, strict=True)
    )
    assert 0 < breaches < len(result.margins)
    assert result.slippage_notional > 0
    assert result.leverage_allowed and all(1 < x <= 50 for x in result.leverage_allowed)
    series = result.series
    assert len(series["index"]) == len(series["t_hours"]) > 300  # one a minute for 6 hours
    assert series["index"][-1] < 0.7 * series["index"][0]


def test_a_path_is_a_function_of_its_seed(slide_scenario: Path) -> None:
    scenario = load_scenario(slide_scenario)
    first, again, other = (run_path(scenario, {}, seed=s) for s in (1, 1, 2))
    assert (first.liquidated_notional, first.steps, first.margins, first.series) == (
        again.liquidated_notional, again.steps, again.margins, again.series)  # fmt: skip
    assert first.series["open_interest"] != other.series["open_interest"]  # noise traders differ


def test_a_path_written_as_a_journal_verifies(slide_scenario: Path, tmp_path: Path) -> None:
    scenario = load_scenario(slide_scenario)
    journal_path = tmp_path / "path.sqlite"
    journal = SqliteJournal(journal_path)
    written = run_path(scenario, {}, seed=1, journal=journal)
    journal.close()
    assert written.liquidated_notional == run_path(scenario, {}, seed=1).liquidated_notional
    verify = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(journal_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert f"verified {written.blocks} blocks, state root {written.state_root}" in verify.stdout
