"""Monte Carlo: the same (point, seed) gives the same path in this process, in spawned
processes and on a local Ray cluster (the issue's check that Ray and the local run agree)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from clearhouse.sim.stress.montecarlo import run_all, tasks
from clearhouse.sim.stress.run import PathResult
from clearhouse.sim.stress.scenario import load_scenario


def _key(result: PathResult) -> tuple[object, ...]:
    return (result.point, result.seed, result.state_root, result.insolvent_debt,
            result.liquidated_notional, result.margins, result.losses, result.series)  # fmt: skip


def test_tasks_cross_every_grid_point_with_the_same_seeds(tiny_scenario: Path) -> None:
    todo = tasks(load_scenario(tiny_scenario), 3)
    assert [(t.point_index, t.seed) for t in todo] == [(i, s) for i in (0, 1) for s in (1, 2, 3)]


def test_processes_give_what_this_process_gives(tiny_scenario: Path) -> None:
    scenario = load_scenario(tiny_scenario)
    todo = tasks(scenario, 2)
    here = run_all(scenario, todo, workers=0)
    pooled = run_all(scenario, todo, workers=2)
    assert [_key(r) for r in pooled] == [_key(r) for r in here]
    assert len({r.state_root for r in here}) == len(here)  # seeds and points do differ


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install 'clearhouse[ray]'; make venv installs it)",
)
def test_a_local_ray_cluster_gives_what_this_process_gives(tiny_scenario: Path) -> None:
    scenario = load_scenario(tiny_scenario)
    todo = tasks(scenario, 2)
    seen: list[PathResult] = []
    on_ray = run_all(scenario, todo, workers=0, ray_address="local", on_done=seen.append)
    assert len(seen) == len(todo)
    assert [_key(r) for r in on_ray] == [_key(r) for r in run_all(scenario, todo, workers=0)]
