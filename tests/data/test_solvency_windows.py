"""A venue through the steepest 24 hours of every crash window of ``../shared/data`` (skipped
without it): leveraged traders at up to the margin's maximum leverage, a maker that thins out,
a keeper, the vault and a fund of 1% of open interest. Every window liquidates in time and ends
with a zero deficit and no debt hidden on any account. ``clearhouse
backtest-solvency --data ../shared/data`` runs the whole windows (docs/RELIABILITY.md)."""

from __future__ import annotations

import pytest

from clearhouse.sim.backtest import CRASH_WINDOWS, Window
from clearhouse.sim.solvency import replay_window

from .loaders import DATA_DIR, missing_reason


@pytest.mark.parametrize("window", CRASH_WINDOWS, ids=[w.name for w in CRASH_WINDOWS])
def test_the_venue_stays_solvent_through_the_crash_day(window: Window) -> None:
    reason = missing_reason(*window.files)
    if reason is not None:
        pytest.skip(reason)
    outcome = replay_window(window, DATA_DIR, crash_day=True)
    row = outcome.as_row()
    assert sum(outcome.steps.values()) >= 20, row  # the day liquidated people
    assert max(outcome.seconds_to_safe) <= 600, row  # each within ten minutes of block time
    assert outcome.socialized == 0 and outcome.deficit == 0 and outcome.hidden_debt == 0, row
    assert outcome.fund_end > 0 and outcome.vault_end > 0, row
