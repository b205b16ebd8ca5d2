"""A small scenario on synthetic candles (no data folder needed): a quiet morning, then a
two-hour slide of 0.4% a minute, in one-minute candles."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

SCENARIO = """
[scenario]
name = "synthetic slide"
hours = {hours}
warmup_hours = 1
block_seconds = 5
period_seconds = 3600  # hourly account-periods: the slide breaches some of them
paths = 2

[prices]
model = "csv"
files = ["slide.csv"]
quotes = ["USD"]
start = "2024-01-01T10:00:00Z"
end = "2024-01-01T16:00:00Z"

[population]
traders = 12
noise_traders = 6
trend_traders = 2
whales = 1
keeper_latency_seconds = 10
"""


def write_slide(path: Path, *, slide_per_minute: float = 0.004) -> None:
    rng = random.Random(3)
    price = 60_000.0
    rows = ["date,open,high,low,close,volume"]
    start = datetime(2024, 1, 1, 8, tzinfo=UTC)
    for minute in range(8 * 60):
        opened = price
        drift = -slide_per_minute if 4 * 60 <= minute < 6 * 60 else 0.0
        price *= 1 + drift + rng.gauss(0, 0.0015)
        high, low = max(opened, price) * 1.001, min(opened, price) * 0.999
        when = (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(f"{when},{opened:.1f},{high:.1f},{low:.1f},{price:.1f},1")
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def slide_scenario(tmp_path: Path) -> Path:
    write_slide(tmp_path / "slide.csv")
    path = tmp_path / "slide.toml"
    path.write_text(SCENARIO.format(hours=6))
    return path


TINY = """
[scenario]
name = "tiny jumps"
hours = 0.5
warmup_hours = 0.5
block_seconds = 10
paths = 2

[prices]
model = "merton"
annual_vol = 0.8
jumps_per_year = 2000
jump_mean = -0.01
jump_std = 0.02
crash_drop = 0.1
crash_at_hours = 0.2
crash_over_minutes = 2

[population]
traders = 8
noise_traders = 4
trend_traders = 1

[grid]
"margin.initial_margin_ppm" = [20_000, 50_000]
"""


@pytest.fixture
def tiny_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path
