"""The venue-level crash replay (``clearhouse.sim.solvency``) on synthetic candles: the price
path inside a candle, the candle reader, and a venue through a 40% crash in six hours — with
and without a 15% gap between two candles, which is what it takes to leave bad debt — where
every loss beyond an account's equity is paid by someone named, and nothing is socialized."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from clearhouse.core.ids import OracleId
from clearhouse.sim.solvency import Bars, Outcome, Population, read_bars, replay_venue
from clearhouse.sim.venue import USDC

NS_PER_HOUR = 3600 * 10**9
START_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z


def test_the_path_inside_a_falling_candle_visits_the_high_then_the_low() -> None:
    bars = Bars("x", 3 * NS_PER_HOUR, {0: (100, 130, 40, 70)})
    seen = [bars.price_at(h * NS_PER_HOUR // 2) for h in range(6)]
    assert seen == [100, 115, 130, 85, 40, 55]  # open → high → low → close, in thirds
    assert bars.price_at(3 * NS_PER_HOUR) is None  # no candle there: the publisher is silent


def test_the_path_inside_a_rising_candle_visits_the_low_then_the_high() -> None:
    bars = Bars("x", 3 * NS_PER_HOUR, {0: (100, 130, 40, 120)})
    assert [bars.price_at(h * NS_PER_HOUR) for h in range(3)] == [100, 40, 130]
    assert bars.price_at(3 * NS_PER_HOUR - 1) == 120  # one ns before the close: the close


def test_read_bars_keeps_the_range_and_refuses_misaligned_candles(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "date,open,high,low,close,volume\n"
        "2023-12-31T23:00:00Z,1,1,1,1,1\n"
        "2024-01-01T00:00:00Z,100.5,101,99,100,1\n"
        "2024-01-01T01:00:00Z,100,102,98,101,1\n"
        "2024-01-01T03:00:00Z,101,103,97,99,1\n"  # a gap: nothing is filled in
    )
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 4 * NS_PER_HOUR)
    assert bars.cadence_ns == NS_PER_HOUR
    assert bars.bars == {
        START_NS: (100_500_000, 101 * USDC, 99 * USDC, 100 * USDC),
        START_NS + NS_PER_HOUR: (100 * USDC, 102 * USDC, 98 * USDC, 101 * USDC),
        START_NS + 3 * NS_PER_HOUR: (101 * USDC, 103 * USDC, 97 * USDC, 99 * USDC),
    }
    path.write_text("date,open,high,low,close\n2024-01-01T00:30:00Z,1,1,1,1\n"
                    "2024-01-01T01:30:00Z,1,1,1,1\n")  # fmt: skip
    with pytest.raises(ValueError, match="not aligned"):
        read_bars(path, start_ns=START_NS, end_ns=START_NS + 4 * NS_PER_HOUR)


def crash(gap_ppm: int) -> Bars:
    """Two quiet days, then −6% an hour for six hours; the seventh candle opens ``gap_ppm``
    below the sixth's close (a gap: no price in between, as when a venue halts)."""
    rng = random.Random(3)
    price, found = 60_000.0, {}
    for hour in range(-48, 24):
        opened = price * (1 - gap_ppm / 1e6) if hour == 6 else price
        drift = -0.06 if 0 <= hour < 6 else 0.0
        close = opened * (1 + drift + rng.gauss(0, 0.004))
        high = max(opened, close) * (1 + abs(rng.gauss(0, 0.003)))
        low = min(opened, close) * (1 - abs(rng.gauss(0, 0.003)))
        found[START_NS + hour * NS_PER_HOUR] = (
            round(opened * USDC), round(high * USDC), round(low * USDC), round(close * USDC),
        )  # fmt: skip
        price = close
    return Bars("synthetic", NS_PER_HOUR, found)


def replay(gap_ppm: int) -> Outcome:
    return replay_venue(
        "synthetic crash", [crash(gap_ppm)], oracle_id=OracleId("BTC-USD"), start_ns=START_NS,
        end_ns=START_NS + 24 * NS_PER_HOUR, warmup_ns=48 * NS_PER_HOUR,
        population=Population(traders=16),
    )  # fmt: skip


def test_a_40_percent_crash_liquidates_in_time_and_leaves_no_bad_debt() -> None:
    outcome = replay(0)
    assert outcome.steps["BOOK"] > 100 and outcome.opens > 16  # traders were liquidated, re-entered
    assert outcome.liquidated_notional > outcome.open_interest_peak  # a cascade, not one fill
    assert outcome.bankrupt_steps == 0 and outcome.bad_debt == 0
    assert max(outcome.seconds_to_safe) <= 300  # liquidatable → safe within five minutes
    assert outcome.hidden_debt == 0 and outcome.deficit == 0 and outcome.solvent
    assert outcome.fund_end >= outcome.fund_start  # the fund earned fees, paid nothing


def test_a_gap_past_bankruptcy_leaves_bad_debt_that_the_backstops_pay() -> None:
    outcome = replay(150_000)
    assert outcome.bankrupt_steps > 0
    assert outcome.fund_paid > 0 and outcome.bad_debt >= outcome.fund_paid
    assert outcome.fund_low < outcome.fund_start  # the fund paid it, and it shows
    assert outcome.socialized == 0 and outcome.deficit == 0  # nothing left to everyone else
    assert outcome.hidden_debt == 0 and outcome.solvent  # and nothing hidden on an account


@pytest.mark.parametrize(
    ("arguments", "words"),
    [(["--data", "missing-folder"], "missing-folder: no such folder"),
     (["--data", "."], "is missing"),
     (["--data", ".", "--window", "no such window"], "no crash window's name contains")],
)  # fmt: skip
def test_the_cli_refuses_a_missing_folder_or_window_in_one_line(
    arguments: list[str], words: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "backtest-solvency", *arguments],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error [INVALID_ARGUMENT]") and words in done.stderr
