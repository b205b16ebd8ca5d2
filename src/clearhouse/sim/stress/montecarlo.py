"""Monte Carlo over seeds × grid points: every (point, seed) is one ``run_path``, run in local
processes (the default), in this process (``workers=0``), or on a Ray cluster (``ray_address``):
the same function on the same arguments, so the results are the same wherever they ran.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from clearhouse.core.errors import ConfigError
from clearhouse.sim.stress.run import PathResult, run_path
from clearhouse.sim.stress.scenario import Scenario

WORKERS_MAX = 256


@dataclass(frozen=True, slots=True)
class Task:
    """One path to run: the grid point's index, its values, and the seed."""

    point_index: int
    point: Mapping[str, object]
    seed: int


def tasks(scenario: Scenario, paths: int) -> list[Task]:
    """Every grid point × ``paths`` seeds (the scenario's seed, seed + 1, ...): the same seeds
    at every point, so points differ by their parameters only (common random numbers)."""
    seeds = range(scenario.settings.seed, scenario.settings.seed + paths)
    return [
        Task(index, point, seed)
        for index, point in enumerate(scenario.grid_points())
        for seed in seeds
    ]


def run_task(scenario: Scenario, task: Task) -> PathResult:
    return run_path(scenario, task.point, task.seed)


def run_all(
    scenario: Scenario,
    todo: Sequence[Task],
    *,
    workers: int,
    ray_address: str | None = None,
    on_done: Callable[[PathResult], None] | None = None,
) -> list[PathResult]:
    """Every task's result, in the order of ``todo``."""
    if not 0 <= workers <= WORKERS_MAX:
        raise ConfigError(f"--workers: in [0, {WORKERS_MAX}]")
    if ray_address is not None:
        results = _on_ray(scenario, todo, ray_address, on_done)
    elif workers == 0:
        results = list(_in_process(scenario, todo, on_done))
    else:
        results = _in_processes(scenario, todo, workers, on_done)
    return results


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _in_process(
    scenario: Scenario, todo: Sequence[Task], on_done: Callable[[PathResult], None] | None
) -> Iterator[PathResult]:
    for task in todo:
        result = run_task(scenario, task)
        if on_done is not None:
            on_done(result)
        yield result


def _in_processes(
    scenario: Scenario,
    todo: Sequence[Task],
    workers: int,
    on_done: Callable[[PathResult], None] | None,
) -> list[PathResult]:
    # Spawned, not forked: a child starts clean (no threads or locks copied mid-use).
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_task, scenario, task) for task in todo]
        results = []
        for future in futures:
            result = future.result()
            if on_done is not None:
                on_done(result)
            results.append(result)
    return results


def _on_ray(
    scenario: Scenario,
    todo: Sequence[Task],
    address: str,
    on_done: Callable[[PathResult], None] | None,
) -> list[PathResult]:
    """The same ``run_task`` as Ray remote functions; ``address`` is a cluster's (``auto``, or
    ``ray://host:10001``) or ``local`` for a cluster started here for this run."""
    try:
        import ray  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'clearhouse[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    try:
        remote = ray.remote(run_task)
        shared = ray.put(scenario)
        pending = [remote.remote(shared, task) for task in todo]
        results = []
        for ref in pending:
            result: PathResult = ray.get(ref)
            if on_done is not None:
                on_done(result)
            results.append(result)
        return results
    finally:
        if started_here:
            ray.shutdown()
