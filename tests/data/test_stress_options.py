"""The options AMM through the real crash windows of ``../shared/data`` (skipped without it):
each bundled ``crash-*`` scenario with options on, cut to three and a half hours around its
steepest three-hour fall, keeps the AMM within its limits as the stress lab's synthetic
crash and attacks do (``tests/sim/stress/test_options_amm.py``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.backtest import parse_utc_ns
from clearhouse.sim.solvency import read_bars
from clearhouse.sim.stress.run import run_path
from clearhouse.sim.stress.scenario import Scenario, bundled_scenarios, find_scenario, load_scenario
from sim.stress.amm_checks import assert_within_its_limits, shortened

from .loaders import DATA_DIR, missing_reason

CRASHES = [name for name in bundled_scenarios() if name.startswith("crash-")]
HOURS = 3.5  # half an hour before the steepest fall, its three hours
FALL_NS = 3 * NS_PER_HOUR


def steepest_fall_ns(scenario: Scenario) -> int:
    """The start of the three hours, within the window, over which the first venue's price
    fell furthest from where it began (its lowest low against the opening price)."""
    start, end = parse_utc_ns(scenario.prices.start), parse_utc_ns(scenario.prices.end)
    bars = read_bars(scenario.prices.files[0], start_ns=start, end_ns=end).bars
    falls = []
    for opened in sorted(bars):
        lows = [bars[t][2] for t in bars if opened <= t < opened + FALL_NS]
        falls.append((min(lows) / bars[opened][0], opened))
    return min(falls)[1]


def around_the_fall(scenario: Scenario) -> Scenario:
    fall = steepest_fall_ns(scenario)
    end = parse_utc_ns(scenario.prices.end)
    start = min(fall - NS_PER_HOUR // 2, end - round(HOURS * NS_PER_HOUR))
    start -= start % (NS_PER_HOUR // 2)
    when = datetime.fromtimestamp(start // NS_PER_SECOND, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    prices = dataclasses.replace(scenario.prices, start=when)
    return shortened(dataclasses.replace(scenario, prices=prices), hours=HOURS, warmup_hours=1)


@pytest.mark.parametrize("name", CRASHES)
def test_through_a_real_crash_the_amm_stays_within_its_limits(name: str) -> None:
    path = find_scenario(name)
    reason = missing_reason(*(f for f in path.read_text().split('"') if f.endswith(".csv")))
    if reason is not None:
        pytest.skip(reason)
    scenario = around_the_fall(load_scenario(path, DATA_DIR))
    result = run_path(scenario, {}, seed=1)
    amm = assert_within_its_limits(result)
    assert amm.hedges > 0  # the fall moved its delta past the band
    assert min(result.series["index"]) < 0.95 * result.series["index"][0]  # the fall is in
