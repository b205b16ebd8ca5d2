"""The volatility-surface fit of a 10-expiry, 400-option chain (issue 16; target ≤ 50 ms):
``svi.calibrate`` on a seeded synthetic Deribit-format chain (``chain.synthetic_chain``: six
hours to a year, 20 strikes a call and a put each per expiry), against the fit it replaced
(raw SVI per expiry by ``scipy.optimize.least_squares`` from one start, no weights), measured
in the same process on the same quotes.

    .venv/bin/python benchmarks/bench_surface.py [--old-rev main~N]

The old fit is loaded from git (``git show REV:src/clearhouse/pricing/svi.py``; the default is
the commit before the new fit); without git, only the new fit is timed. Medians of 15 runs after
a warm-up; the old fit's slices that it refuses (its quote or butterfly check) still count
their time, and are reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np

from clearhouse.core import surface as core_surface
from clearhouse.core.units import NS_PER_YEAR
from clearhouse.pricing import svi
from clearhouse.pricing.chain import parse_chain, quotes_for_fit, synthetic_chain

RUNS = 15
NOW_NS = int(datetime(2025, 3, 3, 2, tzinfo=UTC).timestamp()) * 10**9
EXPIRY_DAYS = (0, 1, 2, 7, 14, 28, 56, 91, 182, 364)
OLD_REV = "0113ddf"  # main before the new fit
ROOT = Path(__file__).resolve().parents[1]


def median_seconds(work: Callable[[], object]) -> float:
    work()  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def old_fit(rev: str) -> ModuleType | None:
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:src/clearhouse/pricing/svi.py"],  # noqa: S607
            cwd=ROOT, capture_output=True, check=True, text=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_svi.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_svi", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_svi"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-rev", default=OLD_REV)
    args = parser.parse_args()
    rows = synthetic_chain(7, NOW_NS, expiry_days=EXPIRY_DAYS, strikes_per_expiry=40)
    quotes = quotes_for_fit(parse_chain(rows), NOW_NS)
    assert len(rows) == 400 and len(quotes) == 10, (len(rows), len(quotes))
    fit = svi.calibrate(quotes)
    assert fit.surface is not None and not fit.refused()
    expiries = [NOW_NS + round(s.expiry_years * NS_PER_YEAR) for s in fit.surface.slices]
    assert core_surface.problems(svi.core_slices(fit.surface, expiries), NOW_NS) == []
    new = median_seconds(lambda: svi.calibrate(quotes))
    rmse = [s.rmse_vol_points for s in fit.slices]
    inside = [s.inside_share for s in fit.slices if s.inside_share is not None]
    print(f"chain: {len(rows)} options, {len(quotes)} expiries, "
          f"{sum(q.mark.size for q in quotes)} out-of-the-money quotes fitted")  # fmt: skip
    print(f"new fit (calibrate): {new * 1e3:.1f} ms median of {RUNS}; RMSE median "
          f"{np.median(rmse):.3f} vol points, inside bid/ask {np.mean(inside):.0%}; "
          "accepted by core.surface.problems")  # fmt: skip
    old = old_fit(args.old_rev)
    if old is None:
        print("old fit: git not available, not timed")
        return

    def fit_old() -> int:
        refused = 0
        for q in quotes:
            try:
                old.fit_slice(q.expiry_years, q.log_moneyness, q.mark)
            except old.ArbitrageError:
                refused += 1
        return refused

    refused = fit_old()
    before = median_seconds(fit_old)
    print(f"old fit ({args.old_rev}, fit_slice per expiry): {before * 1e3:.1f} ms median of "
          f"{RUNS}; {refused} of {len(quotes)} slices refused")  # fmt: skip
    print(f"ratio new/old: {new / before:.2f}")


if __name__ == "__main__":
    main()
