"""The margin backtest on the real crash windows of ``../shared/data`` (skipped without it):
the engine's margin covers at least 99% of the account-periods of every window, at the
large-cap tier's 2% base IM; at 5-minute resolution no account loses more than its equity."""

from __future__ import annotations

import pytest

from clearhouse.sim.backtest import CRASH_WINDOWS, Window, backtest_window, large_cap_market

from .loaders import DATA_DIR, missing_reason


@pytest.mark.parametrize("window", CRASH_WINDOWS, ids=[w.name for w in CRASH_WINDOWS])
def test_margin_covers_99_percent_of_every_crash_window(window: Window) -> None:
    reason = missing_reason(*window.files)
    if reason is not None:
        pytest.skip(reason)
    assert large_cap_market(window.oracle_id).margin.initial_margin_ppm == 20_000
    result = backtest_window(window, DATA_DIR)
    assert result.periods >= 100
    assert result.coverage >= 0.99, result.as_row()
    assert result.christoffersen_p > 0.05, result.as_row()  # breaches do not cluster
    if window.name.endswith("5m"):
        assert result.deficit_quantums == 0, result.as_row()
