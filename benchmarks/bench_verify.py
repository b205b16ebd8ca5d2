"""Replay verification speed of `clearhouse verify` (SPEC §15: >= 100k commands/s unsigned).

Usage: python benchmarks/bench_verify.py [--hours 4] [--repeat 3]

Writes a demo journal of --hours simulated hours, then replays it from genesis (re-execution,
event digests and state roots of every block) --repeat times; prints the median commands/s of
CPU time (``time.process_time``: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.app.chain import verify
from clearhouse.sim.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = run_demo(seed=11, hours=args.hours, out_dir=Path(folder))
        rates = []
        for _ in range(args.repeat):
            journal = SqliteJournal(result.journal_path)
            started = time.process_time()
            replay = verify(journal)
            elapsed = time.process_time() - started
            journal.close()
            rates.append(replay.commands / elapsed)
            print(
                f"verified {replay.blocks} blocks, {replay.commands} commands in "
                f"{elapsed:.2f} s CPU ({replay.commands / elapsed:,.0f} commands/s, "
                f"{replay.blocks / elapsed:,.0f} blocks/s)"
            )
    median = statistics.median(rates)
    print(f"verify: median {median:,.0f} commands/s (target 100,000/s: {median / 100_000:.2f}x)")
    print(json.dumps({"bench": "verify", "median_commands_per_s": round(median)}))


if __name__ == "__main__":
    main()
