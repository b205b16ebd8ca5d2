"""A governance proposal through the stress lab (SPEC §10, ``propose --simulate``): the standard
scenarios run twice on the same seeds, once on each scenario's own market and once with the
proposal's market parameters set, and the difference of the risk numbers, as compact JSON for
the proposal and as a table for people.

Only market parameters are simulated: the scenarios vary one perpetual, which stands for the
proposal's target market. Every other action is listed as not simulated, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clearhouse.core import limits
from clearhouse.core.errors import ConfigError
from clearhouse.core.governance import REGISTRY, Scope, read_field
from clearhouse.core.messages import ActionKind, GovAction
from clearhouse.sim.stress.montecarlo import Task, run_all, tasks
from clearhouse.sim.stress.run import PathResult
from clearhouse.sim.stress.scenario import Scenario, find_scenario, load_scenario
from clearhouse.sim.stress.summary import summarize

FORMAT = "clearhouse-proposal-simulation-1"
# Bundled, and none reads a data folder: synthetic jumps and a slide, volatility clustering,
# and the withdraw-to-self-liquidate attack, whose guards are market parameters (initial
# margin, size premium, mark band) and whose candles ship beside it.
STANDARD_SCENARIOS: tuple[str, ...] = ("jumps", "garch", "attack-self_liquidate")
NOTE = (
    "Each scenario's perpetual ({market}) stands for the proposal's target market ({target}), "
    "set to the proposed values from the start of every path: the margins of existing "
    "positions phase in on the venue, so 'after' is the market once the change has fully "
    "taken effect. Same seeds before and after: the numbers differ by the change alone."
)
USDC_DIGITS = 6  # whole USDC to the quantum
RATIO_DIGITS = 6

Progress = Callable[[int, int], None]  # (paths done, paths in all)
Metrics = dict[str, float | int | None]


def simulate_proposal(
    actions: Sequence[GovAction],
    *,
    paths: int = 4,
    workers: int = 1,
    scenarios: Sequence[str] = STANDARD_SCENARIOS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every scenario (a bundled name or a file) on ``paths`` seeds, before and after the
    proposal's market parameter changes; ``workers`` as ``montecarlo.run_all`` (0: here)."""
    if paths < 1:
        raise ConfigError("--paths: at least 1")
    changes, not_simulated = split_actions(actions)
    loaded = {name: load_scenario(find_scenario(name)) for name in scenarios}
    result: dict[str, Any] = {
        "format": FORMAT, "paths": paths, "changes": changes, "not_simulated": not_simulated,
        "scenarios": {},
    }  # fmt: skip
    if not changes:
        result["note"] = "No market parameter change to simulate."
        return result
    counter = _Counter(2 * paths * len(loaded), progress)
    for name, scenario in loaded.items():
        result["scenarios"][name] = _compare(scenario, changes, paths, workers, counter)
    market = next(iter(loaded.values())).market.market_id if loaded else "-"
    result["note"] = NOTE.format(market=market, target=changes[0]["target"])
    return result


# ── Which actions the stress lab can run ─────────────────────────────────────────────────────


def split_actions(
    actions: Sequence[GovAction],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The market parameter changes to simulate (of the first market named), and the other
    actions with the reason each is not simulated."""
    changes: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for action in actions:
        reason = _why_not(action, changes)
        if reason is None:
            path = REGISTRY[action.name].path
            changes.append({"target": action.target, "name": action.name, "path": path,
                            "value": action.value})  # fmt: skip
        else:
            skipped.append({"kind": action.kind.name, "target": action.target,
                            "name": action.name, "reason": reason})  # fmt: skip
    return changes, skipped


def _why_not(action: GovAction, changes: Sequence[Mapping[str, Any]]) -> str | None:
    """Why ``action`` is not simulated after ``changes`` were taken (None: it is)."""
    if action.kind is not ActionKind.SET_PARAM:
        return "not a parameter change"
    entry = REGISTRY.get(action.name)
    if entry is None:
        return "not a governed parameter"
    if entry.scope is not Scope.MARKET:
        return f"{entry.scope.name.lower()} scope: the scenarios vary market parameters only"
    if not entry.lower <= action.value <= entry.upper:
        return f"outside its bounds [{entry.lower}, {entry.upper}]: the venue refuses it"
    if changes and action.target != changes[0]["target"]:
        # One perpetual per scenario: it can stand for one market, not two at once.
        return f"another market: the scenarios' perpetual stands for {changes[0]['target']}"
    if any(c["name"] == action.name for c in changes):
        return "the same parameter twice in one proposal: the venue refuses it"
    return None


# ── Before and after ─────────────────────────────────────────────────────────────────────────


@dataclasses.dataclass(slots=True)
class _Counter:
    """Paths done across every scenario, for one progress bar."""

    total: int
    progress: Progress | None
    done: int = 0

    def __call__(self, _: PathResult) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _compare(
    scenario: Scenario,
    changes: Sequence[Mapping[str, Any]],
    paths: int,
    workers: int,
    counter: _Counter,
) -> dict[str, Any]:
    """One scenario before and after: the same seeds at two points, run together (common
    random numbers, as the grid runs them), summarized apart."""
    plain = dataclasses.replace(scenario, grid=())  # the scenario's own market: point {}
    after_point = {str(c["path"]): c["value"] for c in changes}
    try:  # an invalid market is refused here, before any path runs
        plain.market_at(after_point)
    except ConfigError as error:
        raise ConfigError(f"the proposal on {scenario.settings.name}: {error}") from None
    before = tasks(plain, paths)
    after = [Task(1, after_point, task.seed) for task in before]
    results = run_all(plain, [*before, *after], workers=workers, on_done=counter)
    before_row = _row(plain, results[:paths], {})
    after_row = _row(plain, results[paths:], after_point)
    before_metrics, after_metrics = metrics(before_row), metrics(after_row)
    return {
        "title": scenario.settings.name,
        "hours": scenario.settings.hours,
        "seeds": [task.seed for task in before],
        "scenario_values": {path: read_field(scenario.market, path) for path in after_point},
        "before": before_metrics,
        "after": after_metrics,
        "delta": delta(before_metrics, after_metrics),
    }


def _row(
    scenario: Scenario, results: Sequence[PathResult], point: dict[str, object]
) -> dict[str, Any]:
    """``summarize``'s row for the results of one point (a one-point grid of that point)."""
    grid = tuple((name, (value,)) for name, value in point.items())
    row: dict[str, Any] = summarize(dataclasses.replace(scenario, grid=grid), results)["points"][0]
    return row


# ── The numbers ──────────────────────────────────────────────────────────────────────────────


def metrics(row: Mapping[str, Any]) -> Metrics:
    """The numbers a proposal is judged by, from one of ``summarize``'s points (definitions:
    docs/STRESS.md); coverage is None where no account held a position."""
    backtest = row["backtest"]
    found: Metrics = {
        "var_p95_usdc": _usdc(row["var_usdc"]),
        "lar_p95_usdc": _usdc(row["lar_usdc"]),
        "insolvent_debt_max_usdc": _usdc(row["insolvent_debt_usdc"]["max"]),
        "coverage": _ratio(backtest.get("coverage")),
        "breaches": backtest.get("breaches", 0),
        "capital_efficiency": _ratio(row["capital_efficiency"]),
        "liquidations": sum(row["steps"].values()),
        "liquidatable_accounts": row["liquidatable_accounts"],
        "adl_events": row["adl_events"],
        "fund_drawdown_usdc": _usdc(row["fund_drawdown_usdc"]),
        "vault_drawdown_usdc": _usdc(row["vault_drawdown_usdc"]),
        "socialized_usdc": _usdc(row["socialized_usdc"]),
    }
    attackers = row["attacker_pnl_usdc"]
    if attackers:  # an attack scenario: its best case, as docs/STRESS.md reads it
        found["attacker_pnl_max_usdc"] = _usdc(max(a["max"] for a in attackers.values()))
    return found


def delta(before: Metrics, after: Metrics) -> Metrics:
    """After minus before, metric by metric (None where either side has no number)."""
    found: Metrics = {}
    for key, old in before.items():
        new = after.get(key)
        if old is None or new is None:
            found[key] = None
        elif isinstance(old, int) and isinstance(new, int):
            found[key] = new - old
        else:  # rounded again: 0.3 - 0.1 is not 0.2 in binary
            found[key] = round(new - old, USDC_DIGITS if key.endswith("_usdc") else RATIO_DIGITS)
    return found


def _usdc(value: float) -> float:
    return round(value, USDC_DIGITS)


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, RATIO_DIGITS)


# ── For the proposal and for people ──────────────────────────────────────────────────────────


def compact_json(result: Mapping[str, Any]) -> str:
    """Canonical JSON (sorted keys, no spaces) within what a proposal carries
    (``limits.proposal_simulation_length_max``): each scenario's before and after are dropped,
    keeping the difference, when the whole does not fit. ValueError when even that does not."""
    text = _canonical(result)
    if len(text) <= limits.proposal_simulation_length_max:
        return text
    scenarios = {name: {"delta": s["delta"], "seeds": s["seeds"]}
                 for name, s in result["scenarios"].items()}  # fmt: skip
    text = _canonical({**result, "scenarios": scenarios, "detail": "delta only"})
    if len(text) <= limits.proposal_simulation_length_max:
        return text
    raise ValueError(f"the simulation takes {len(text)} characters even with only the "
                     f"differences, at most {limits.proposal_simulation_length_max}")  # fmt: skip


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def render_text(result: Mapping[str, Any]) -> list[str]:
    """The changes, what was not simulated, and a table per scenario: metric, before, after,
    delta."""
    lines = [f"{c['target']} {c['name']} -> {c['value']}" for c in result["changes"]]
    for skipped in result["not_simulated"]:
        action = " ".join(str(skipped[k]) for k in ("kind", "target", "name") if skipped[k])
        lines.append(f"not simulated: {action}: {skipped['reason']}")
    for name, scenario in result["scenarios"].items():
        lines += ["", f"{name}: {scenario['title']} ({len(scenario['seeds'])} paths)"]
        lines += _table(scenario)
    if result.get("note"):
        lines += ["", str(result["note"])]
    return lines


def _table(scenario: Mapping[str, Any]) -> list[str]:
    header = ("metric", "before", "after", "delta")
    rows = [
        (key, _cell(scenario["before"][key]), _cell(scenario["after"][key]),
         _cell(value, signed=True))
        for key, value in scenario["delta"].items()
    ]  # fmt: skip
    width = max(len(key) for key, *_ in [header, *rows])
    return [f"  {key:<{width}}  {b:>16}  {a:>16}  {d:>16}" for key, b, a, d in [header, *rows]]


def _cell(value: object, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    sign = "+" if signed else ""
    if isinstance(value, int):
        return f"{value:{sign},}"
    assert isinstance(value, float), value
    return f"{value:{sign},.2f}" if abs(value) >= 100 else f"{value:{sign}.4g}"
