"""The stress report in a real browser: the self-contained HTML (plotly inlined, nothing
fetched) opens from a file in headless Chromium, every chart renders, nothing logs an error,
and a screenshot is not blank."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import AVAILABLE, COLOURS_MIN, NOT_INSTALLED, chromium, distinct_colours, page_errors
from clearhouse.sim.stress.montecarlo import run_all, tasks
from clearhouse.sim.stress.report import write_report
from clearhouse.sim.stress.scenario import load_scenario
from clearhouse.sim.stress.summary import summarize

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=NOT_INSTALLED)
CHARTS = 7  # price paths, backstops, open interest, stages, tails, backtest, frontier


def test_the_report_renders_every_chart_offline(tiny_scenario: Path, tmp_path: Path) -> None:
    scenario = load_scenario(tiny_scenario)
    results = run_all(scenario, tasks(scenario, 2), workers=0)
    report = write_report(tmp_path / "report.html", summarize(scenario, results), results)
    assert "https://" not in report.read_text().split("<body>")[1][:2_000]  # nothing remote
    with chromium() as driver:
        driver.get(report.as_uri())
        rendered = driver.execute_script(
            "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(p => p.querySelector('.main-svg') && p._fullData && p._fullData.length)"
            ".length"
        )
        assert rendered == CHARTS
        traces = driver.execute_script(
            "return document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length"
        )
        assert traces >= 2 * len(results)  # each path drawn in the time-series charts
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
        assert distinct_colours(shot.read_bytes()) >= COLOURS_MIN
        assert not page_errors(driver)
