"""From paths to the risk numbers: VaR and LaR are nearest-rank p95s across paths, the
backtest pools account-periods, and the recommendation is the most capital-efficient grid
point within the targets (or none, saying why)."""

from __future__ import annotations

import dataclasses
import tomllib

from clearhouse.sim.stress.run import PathResult
from clearhouse.sim.stress.scenario import parse_scenario
from clearhouse.sim.stress.summary import summarize
from clearhouse.sim.venue import USDC

SCENARIO = """
[scenario]
name = "numbers"
[prices]
model = "gbm"
annual_vol = 0.5
[grid]
"margin.initial_margin_ppm" = [10_000, 50_000]
[targets]
var_usdc = 100
coverage = 0.9
"""


def _path(point: dict[str, object], seed: int, debt_usdc: int, leverage: int) -> PathResult:
    """A path whose account-periods held ``leverage``× and lost 1.5% and 0.5% in turn."""
    margins = [1_000 * USDC // leverage] * 20
    return PathResult(
        seed=seed, point=point, insolvent_debt=debt_usdc * USDC,
        liquidated_notional=seed * 1_000 * USDC, margins=margins,
        notionals=[1_000 * USDC] * 20, losses=[15 * USDC, 5 * USDC] * 10,
        steps={"BOOK": seed}, fund_start=50 * USDC, fund_low=40 * USDC, seconds_to_safe=[30.0],
    )  # fmt: skip


def test_var_lar_backtest_and_the_recommendation() -> None:
    scenario = parse_scenario(tomllib.loads(SCENARIO))
    low, high = scenario.grid_points()
    # 20 paths per point; at 10% IM (10×) one path in twenty leaves 500 USDC of debt.
    results = [_path(low, s, 500 if s == 20 else 0, 100) for s in range(1, 21)]
    results += [_path(high, s, 0, 20) for s in range(1, 21)]
    summary = summarize(scenario, results)
    at_low, at_high = summary["points"]
    assert at_low["var_usdc"] == 0.0  # the 19th of 20 sorted debts: p95 excludes the worst one
    assert at_low["insolvent_debt_usdc"]["max"] == 500.0
    assert at_low["lar_usdc"] == 19_000.0
    assert at_low["fund_drawdown_usdc"] == 10.0
    assert at_low["steps"] == {"BOOK": 210}
    # 1% IM against a 1.5% loss: half the account-periods breached; 5% covers them all.
    assert at_low["backtest"]["coverage"] == 0.5
    assert at_high["backtest"]["coverage"] == 1.0
    assert at_high["backtest"]["traffic_light"] == "green"
    assert at_low["capital_efficiency"] == 100.0 and at_high["capital_efficiency"] == 20.0
    assert summary["recommendation"]["point"] == high  # the 100× point fails coverage
    # Loosen coverage and the more efficient point wins.
    looser = dataclasses.replace(scenario, targets=dataclasses.replace(scenario.targets,
                                                                       coverage=0.4))  # fmt: skip
    assert summarize(looser, results)["recommendation"]["point"] == low
    # With no point within the targets, none is recommended, and the answer says why.
    risky = results[:20] + [_path(high, s, 500 if s > 18 else 0, 20) for s in range(1, 21)]
    verdict = summarize(scenario, risky)["recommendation"]
    assert verdict["point"] is None and "no grid point" in verdict["why"]
