"""From paths to a risk firm's numbers: per grid point, VaR and LaR across paths, backstop
drawdowns, ADL, liquidation slippage and time, capital efficiency, the margin backtest with its
tests, attackers' PnL, the options AMM (with ``[options]``); then the recommendation — the grid
point of highest capital efficiency whose VaR and coverage keep to the scenario's targets — and
the frontier it was chosen from.
Definitions and formulas: docs/STRESS.md.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from clearhouse.sim.solvency import PPM
from clearhouse.sim.stress import stats
from clearhouse.sim.stress.amm_watch import KINDS
from clearhouse.sim.stress.run import PathResult
from clearhouse.sim.stress.scenario import Scenario
from clearhouse.sim.venue import USDC

VIOLATION_NOTES_MAX = 20


def summarize(scenario: Scenario, results: Sequence[PathResult]) -> dict[str, Any]:
    """The run's numbers, JSON-ready (USDC as floats of whole units, for people)."""
    by_point: dict[int, list[PathResult]] = {}
    points = scenario.grid_points()
    for result in results:
        by_point.setdefault(points.index(result.point), []).append(result)
    rows = [_point(points[i], by_point[i], scenario) for i in sorted(by_point)]
    return {
        "scenario": scenario.settings.name,
        "preset": scenario.preset,
        "paths_per_point": len(results) // max(len(rows), 1),
        "seeds": sorted({r.seed for r in results}),
        "hours": scenario.settings.hours,
        "block_seconds": scenario.settings.block_seconds,
        "targets": {
            "var_usdc": scenario.targets.var_usdc,
            "coverage": scenario.targets.coverage,
        },
        "notes": list(scenario.prices.notes),  # what was assumed where the scenario did not say
        "points": rows,
        "recommendation": recommend(rows, scenario),
        "cpu_seconds": round(sum(r.cpu_seconds for r in results), 3),
        "blocks": sum(r.blocks for r in results),
        "account_blocks": sum(r.account_blocks for r in results),
    }


def _point(point: dict[str, object], paths: list[PathResult], scenario: Scenario) -> dict[str, Any]:
    row = _risk(point, paths, scenario)
    options = _options(paths)
    if options is not None:  # only with [options]: other scenarios' JSON is as it was
        row["options_amm"] = options
    return row


def _risk(point: dict[str, object], paths: list[PathResult], scenario: Scenario) -> dict[str, Any]:
    debts = [r.insolvent_debt for r in paths]
    liquidated = [r.liquidated_notional for r in paths]
    steps: Counter[str] = Counter()
    for r in paths:
        steps.update(r.steps)
    to_safe = [s for r in paths for s in r.seconds_to_safe]
    slip = sum(r.slippage_notional_ppm for r in paths)
    slip_notional = sum(r.slippage_notional for r in paths)
    return {
        "point": point,
        "paths": len(paths),
        "var_usdc": stats.value_at_risk(debts) / USDC,
        "lar_usdc": stats.liquidations_at_risk(liquidated) / USDC,
        "insolvent_debt_usdc": _spread(debts),
        "liquidated_usdc": _spread(liquidated),
        "fund_drawdown_usdc": max(r.fund_start - r.fund_low for r in paths) / USDC,
        "vault_drawdown_usdc": max(r.vault_start - r.vault_low for r in paths) / USDC,
        "adl_events": sum(r.adl_events for r in paths),
        "liquidatable_accounts": sum(r.liquidatable_accounts for r in paths),
        "adl_absorbed_usdc": sum(r.adl_overshoot for r in paths) / USDC,
        "socialized_usdc": sum(r.socialized for r in paths) / USDC,
        "deficit_usdc": max(r.deficit for r in paths) / USDC,
        "hidden_debt_usdc": max(r.hidden_debt for r in paths) / USDC,
        "steps": dict(sorted(steps.items())),
        "liquidation_slippage_ppm": slip / slip_notional if slip_notional else 0.0,
        "seconds_to_safe": _seconds(to_safe),
        "capital_efficiency": stats.capital_efficiency(
            [n for r in paths for n in r.notionals], [m for r in paths for m in r.margins]
        ),
        "backtest": _backtest(paths, scenario),
        "attacker_pnl_usdc": _attackers(paths),
        "per_path": {
            "seeds": [r.seed for r in paths],
            "insolvent_debt_usdc": [d / USDC for d in debts],
            "liquidated_usdc": [x / USDC for x in liquidated],
            "state_roots": [r.state_root for r in paths],
        },
    }


def _spread(values: Sequence[int]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values) / USDC,
        "p95": stats.percentile(values, 0.95) / USDC,
        "max": max(values) / USDC,
    }


def _seconds(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"episodes": 0}
    return {"episodes": len(values), "median": statistics.median(values),
            "p95": stats.percentile(values, 0.95), "max": max(values)}  # fmt: skip


def _backtest(paths: Sequence[PathResult], scenario: Scenario) -> dict[str, Any]:
    """Every path's account-periods together; Christoffersen's tests run per path (a path is
    one time series) and are reported for the first path with a breach, else the first."""
    margins = [m for r in paths for m in r.margins]
    losses = [x for r in paths for x in r.losses]
    if not margins:
        return {"observations": 0}
    target = scenario.targets.coverage
    pooled = stats.margin_backtest(margins, losses, coverage_target=target)
    series = [
        [loss > margin for margin, loss in zip(r.margins, r.losses, strict=True)] for r in paths
    ]
    clustered = next((s for s in series if any(s)), series[0])
    independence = stats.christoffersen_independence(clustered)
    return {
        "observations": pooled.observations,
        "breaches": pooled.breaches,
        "coverage": pooled.coverage,
        "breaches_per_250": pooled.breaches_per_250,
        "traffic_light": str(pooled.zone),
        "kupiec": {"lr": pooled.kupiec.statistic, "p_value": pooled.kupiec.p_value},
        "christoffersen": {"lr": independence.statistic, "p_value": independence.p_value},
    }


def _attackers(paths: Sequence[PathResult]) -> dict[str, dict[str, float]]:
    names = sorted({name for r in paths for name in r.attacker_pnl})
    return {
        name: {
            "mean": statistics.fmean(r.attacker_pnl.get(name, 0) for r in paths) / USDC,
            "max": max(r.attacker_pnl.get(name, 0) for r in paths) / USDC,
        }
        for name in names
    }


def _options(paths: Sequence[PathResult]) -> dict[str, Any] | None:
    """The options AMM across paths (docs/STRESS.md, "Options and the options AMM"): the
    worst path's drawdown, utilizations and quoted share, fills and hedges summed, and how
    often it was liquidatable, liquidated, or broke one of its limits."""
    found = [r.options for r in paths if r.options is not None]
    if not found:
        return None
    fresh = sum(o.fresh_blocks for o in found)
    asked = sum(o.hedge_asked_base for o in found)
    return {
        "nav_low_usdc": min(o.nav_low for o in found) / USDC,
        "drawdown_usdc": max(o.drawdown for o in found) / USDC,
        "drawdown": max(o.drawdown_ppm for o in found) / PPM,
        "utilization_max": {
            kind: max(o.utilization_max_ppm[kind] for o in found) / PPM for kind in KINDS
        },
        "quoted_share_min": min(o.quoted_share_min_ppm for o in found) / PPM,
        "quoted_share_mean": sum(o.quoted_share_sum_ppm for o in found) / fresh / PPM
        if fresh
        else None,
        "fresh_blocks": fresh,
        "blocks": sum(o.blocks for o in found),
        "sides_withheld_by_caps": sum(o.sides_withheld for o in found),
        "blocks_quoted_smaller": sum(o.shrunk_blocks for o in found),
        "blocks_margin_bound": sum(o.margin_blocks for o in found),
        "quote_size_min": min(o.quote_size_min_ppm for o in found) / PPM,
        "fills": sum(o.fills for o in found),
        "fills_bought": sum(o.fills_bought for o in found),
        "premium_usdc": sum(o.premium for o in found) / USDC,
        "hedges": sum(o.hedges for o in found),
        "hedges_short": sum(o.hedges_short for o in found),
        "hedge_filled_share": sum(o.hedge_filled_base for o in found) / asked if asked else None,
        "liquidatable_blocks": sum(o.liquidatable_blocks for o in found),
        "liquidated_paths": sum(o.liquidated for o in found),
        "violations": {k: sum(o.violations[k] for o in found) for k in found[0].violations},
        "violation_notes": [n for o in found for n in o.violation_notes][:VIOLATION_NOTES_MAX],
        "per_path": {
            "nav_start_usdc": [o.nav_start / USDC for o in found],
            "nav_low_usdc": [o.nav_low / USDC for o in found],
            "nav_end_usdc": [o.nav_end / USDC for o in found],
            "drawdown_usdc": [o.drawdown / USDC for o in found],
        },
    }


def recommend(rows: Sequence[dict[str, Any]], scenario: Scenario) -> dict[str, Any] | None:
    """The grid point with the highest capital efficiency among those within the targets
    (VaR at most ``var_usdc``, pooled coverage at least ``coverage``), with the frontier: the
    points no other beats on both capital efficiency and VaR."""
    targets = scenario.targets
    within = [
        row for row in rows
        if row["var_usdc"] <= targets.var_usdc
        and row["backtest"].get("coverage", 1.0) >= targets.coverage
    ]  # fmt: skip
    frontier = [
        row["point"] for row in rows
        if not any(_dominates(other, row) for other in rows)
    ]  # fmt: skip
    if not within:
        return {"point": None, "why": "no grid point keeps to the targets", "frontier": frontier}
    best = max(within, key=lambda row: row["capital_efficiency"])
    return {
        "point": best["point"],
        "capital_efficiency": best["capital_efficiency"],
        "var_usdc": best["var_usdc"],
        "coverage": best["backtest"].get("coverage"),
        "frontier": frontier,
    }


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    better_or_equal = (
        a["capital_efficiency"] >= b["capital_efficiency"] and a["var_usdc"] <= b["var_usdc"]
    )
    strictly = a["capital_efficiency"] > b["capital_efficiency"] or a["var_usdc"] < b["var_usdc"]
    return bool(better_or_equal and strictly)
