"""The stress lab's bundled crash scenarios on the real candles of ``../shared/data`` (skipped
without it): each reads its files through ``--data``, covers its window's crash day, and one
path of it leaves the venue solvent with liquidations measured."""

from __future__ import annotations

import pytest

from clearhouse.sim.backtest import CRASH_WINDOWS, parse_utc_ns
from clearhouse.sim.stress.run import run_path
from clearhouse.sim.stress.scenario import bundled_scenarios, find_scenario, load_scenario

from .loaders import DATA_DIR, missing_reason

CRASHES = [name for name in bundled_scenarios() if name.startswith("crash-")]


def test_every_crash_window_has_a_bundled_scenario() -> None:
    days = {w.crash_day for w in CRASH_WINDOWS}
    assert len(CRASHES) == len(CRASH_WINDOWS)
    for name in CRASHES:
        text = find_scenario(name).read_text()
        assert any(f'start = "{day}"' in text for day in days), name


@pytest.mark.parametrize("name", CRASHES)
def test_a_crash_scenario_runs_on_the_real_candles(name: str) -> None:
    path = find_scenario(name)
    reason = missing_reason(*(f for f in path.read_text().split('"') if f.endswith(".csv")))
    if reason is not None:
        pytest.skip(reason)
    scenario = load_scenario(path, DATA_DIR)
    assert parse_utc_ns(scenario.prices.start) in {parse_utc_ns(w.crash_day) for w in CRASH_WINDOWS}
    result = run_path(scenario, {}, seed=1)
    assert sum(result.steps.values()) >= 10, result.steps  # the day liquidated people
    assert result.deficit == 0 and result.socialized == 0 and result.hidden_debt == 0
    assert result.margins and len(result.series["index"]) >= 24 * 60 - 5  # a sample a minute
