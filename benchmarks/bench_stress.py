"""Stress-lab throughput (issue 14): simulated blocks/s and account-blocks/s of one path on one
core, the time 100 paths × 1,000 accounts × 24 simulated hours at a 1-second oracle cadence
would take here, and the parallel speed-up for 1 and 2 worker processes.

Usage: python benchmarks/bench_stress.py [--accounts 1000] [--minutes 10] [--repeat 3]
                                         [--paths 8] [--json PATH]

One path is ``--minutes`` of simulated time at 1-second blocks (every block a report from
each of 3 publishers), with ``--accounts`` agents' accounts (leveraged traders, noise and
trend traders, an arbitrageur, a maker, a keeper, the vault); CPU time of this process
(``time.process_time``), median of ``--repeat``. The 100-path figure is extrapolated from it
(blocks scale linearly in simulated time; the warm-up is left out) and divided by the measured
2-worker speed-up. The speed-up runs ``--paths`` paths with 1 and with 2 workers (wall time:
both cores; the machine is shared, so it is noisy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from clearhouse.core.units import NS_PER_SECOND
from clearhouse.sim.stress.montecarlo import run_all, tasks
from clearhouse.sim.stress.paths import MertonJumps
from clearhouse.sim.stress.run import run_path
from clearhouse.sim.stress.scenario import Scenario, parse_scenario
from clearhouse.sim.venue import USDC

TARGET_SECONDS = 600.0  # 100 paths × 1,000 accounts × 24 h at 1 s: at most 10 minutes
SCENARIO = """
[scenario]
name = "bench"
hours = {hours}
warmup_hours = 0.1
block_seconds = 1
sample_seconds = 60

[prices]
model = "merton"
annual_vol = 0.8
jumps_per_year = 100
jump_mean = -0.01
jump_std = 0.03

[population]
traders = {traders}
noise_traders = {noise}
trend_traders = {trend}
arbitrageurs = 1
"""


def scenario(accounts: int, minutes: float) -> Scenario:
    """``accounts`` agents' accounts: 3 fixed (maker, keeper, vault LP), an arbitrageur, and
    the rest 80% leveraged traders, 17% noise traders, 3% trend traders."""
    rest = accounts - 4
    trend = rest * 3 // 100
    noise = rest * 17 // 100
    text = SCENARIO.format(hours=minutes / 60, traders=rest - trend - noise, noise=noise,
                           trend=trend)  # fmt: skip
    return parse_scenario(tomllib.loads(text))


def path_sampling() -> dict[str, float]:
    """A day of the scenario's prices (its Merton jumps) at 1-second steps, sampled (numpy,
    vectorized): the best of three, in milliseconds; part of a path's set-up, not its blocks."""
    model = MertonJumps(annual_vol=0.8, annual_drift=0.0, jumps_per_year=100, jump_mean=-0.01,
                        jump_std=0.03)  # fmt: skip
    took = []
    for seed in range(3):
        started = time.process_time()
        model.sample(
            np.random.default_rng(seed), start_ns=0, end_ns=24 * 3_600 * NS_PER_SECOND,
            step_ns=NS_PER_SECOND, start_price_quantums=60_000 * USDC,
        )  # fmt: skip
        took.append(time.process_time() - started)
    print(f"  a day of prices at 1 s sampled in {min(took) * 1e3:.1f} ms")
    return {"day_of_prices_ms": round(min(took) * 1e3, 1)}


def one_core(stress: Scenario, repeat: int) -> dict[str, Any]:
    runs = []
    for seed in range(1, repeat + 1):
        result = run_path(stress, {}, seed)
        runs.append((result.cpu_seconds, result.blocks, result.account_blocks))
        print(f"  path {seed}: {result.blocks:,} blocks in {result.cpu_seconds:.2f} s CPU "
              f"({result.blocks / result.cpu_seconds:,.0f} blocks/s, "
              f"{result.account_blocks / result.cpu_seconds:,.0f} account-blocks/s)")  # fmt: skip
    blocks_per_s = statistics.median(b / c for c, b, _ in runs)
    account_blocks_per_s = statistics.median(a / c for c, _, a in runs)
    return {
        "blocks_per_s": round(blocks_per_s),
        "account_blocks_per_s": round(account_blocks_per_s),
    }


def speedup(stress: Scenario, paths: int) -> dict[str, float]:
    todo = tasks(stress, paths)
    walls = {}
    for workers in (1, 2):
        started = time.perf_counter()
        run_all(stress, todo, workers=workers)
        walls[workers] = time.perf_counter() - started
        print(f"  {paths} paths on {workers} worker(s): {walls[workers]:.1f} s wall")
    return {"wall_1_worker_s": round(walls[1], 2), "wall_2_workers_s": round(walls[2], 2),
            "speedup_2_workers": round(walls[1] / walls[2], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--paths", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    stress = scenario(args.accounts, args.minutes)
    print(f"one path, {args.accounts} accounts, {args.minutes:g} simulated minutes at 1 s:")
    measured = one_core(stress, args.repeat) | path_sampling()
    print("parallel speed-up:")
    parallel = speedup(stress, args.paths)
    day_blocks = 24 * 3_600
    one_core_s = 100 * day_blocks / measured["blocks_per_s"]
    two_workers_s = one_core_s / max(parallel["speedup_2_workers"], 1e-9)
    result = {
        "bench": "stress", "accounts": args.accounts, "minutes": args.minutes, **measured,
        **parallel, "hundred_days_one_core_s": round(one_core_s),
        "hundred_days_two_workers_s": round(two_workers_s),
        "target_s": TARGET_SECONDS, "target_ratio": round(two_workers_s / TARGET_SECONDS, 1),
    }  # fmt: skip
    print(f"100 paths × {args.accounts} accounts × 24 h at 1 s: {one_core_s / 60:,.0f} min on "
          f"one core, {two_workers_s / 60:,.0f} min on two workers (target 10 min: "
          f"{result['target_ratio']}× over)")  # fmt: skip
    print(json.dumps(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
