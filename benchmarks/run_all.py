"""Run every benchmark in this folder, one after another, each in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "bench_orderbook.py",
    "bench_engine.py",
    "bench_verify.py",
    "bench_liquidation_scan.py",
    "bench_pricing.py",
    "bench_surface.py",
    "bench_portfolio_scan.py",
    "bench_signing.py",
    "bench_scale.py",
    "bench_option_holders.py",
    "bench_merkle.py",
]


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / name)], check=False).returncode != 0
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
