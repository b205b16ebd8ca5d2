"""The golden runs: seeded closed-loop runs whose head block hash pins every command, every
event and every state root of the run. ``python tests/golden/chains.py`` rewrites
``chains.json`` (and ``demo-seed3.sqlite``); do that only in a commit that says why the chain
changed."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from clearhouse.sim.demo import run_demo
from clearhouse.sim.harness import run_seed

HERE = Path(__file__).resolve().parent
CHAINS = HERE / "chains.json"
JOURNAL = HERE / "demo-seed3.sqlite"
DEMOS = ((1, 1.0), (3, 0.5))  # (seed, hours)
SIMULATE_SEEDS = range(20)
SIMULATE_BLOCKS = 80


def demo_chain(seed: int, hours: float, out_dir: Path) -> dict[str, object]:
    summary = run_demo(seed=seed, hours=hours, out_dir=out_dir).summary
    return {
        "blocks": summary["blocks"],
        "state_root": summary["state_root"],
        "head_block_hash": summary["head_block_hash"],
    }


def simulate_chain(seed: int) -> str:
    result = run_seed(seed, blocks=SIMULATE_BLOCKS)
    assert result.violation is None, result.violation
    return "0x" + result.head_hash.hex()


def main() -> None:
    demos: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for seed, hours in DEMOS:
            out = Path(scratch) / f"demo-{seed}"
            demos[f"seed={seed},hours={hours}"] = demo_chain(seed, hours, out)
            if seed == 3:
                shutil.copyfile(out / "journal.sqlite", JOURNAL)
    chains = {
        "demo": demos,
        "simulate": {str(seed): simulate_chain(seed) for seed in SIMULATE_SEEDS},
        "simulate_blocks": SIMULATE_BLOCKS,
    }
    CHAINS.write_text(json.dumps(chains, indent=2) + "\n")
    print(f"wrote {CHAINS} and {JOURNAL}", file=sys.stderr)


if __name__ == "__main__":
    main()
