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
from clearhouse.sim.solvency import (
    Bars,
    Outcome,
    Population,
    read_at_blocks,
    read_bars,
    replay_venue,
)
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


def test_one_minute_candles_read_by_30_s_blocks_show_their_high_and_low() -> None:
    """The walk's knots are 20 s apart in a 1-minute candle: blocks at :00 and :30 read its open
    and half-way from the high to the low (36% of the candles' ranges on the LUNA and FTX days,
    against 95% for the 5-minute twins), so a minute wick of 15% showed as 7.5%."""
    minute, block = 60 * 10**9, 30 * 10**9
    wick = {0: (100, 101, 85, 99), minute: (99, 112, 98, 110)}  # down to 85, then up to 112
    walked = Bars("x", minute, wick)
    assert [walked.price_at(t) for t in (0, block, minute, minute + block)] == [100, 93, 99, 105]
    read = read_at_blocks(walked, block, 0)
    assert [read.price_at(t) for t in (0, block, minute, minute + block)] == [101, 85, 98, 112]
    assert read.price_at(block - 1) == 101 and read.price_at(minute - 1) == 85
    thirds = read_at_blocks(walked, 20 * 10**9, 0)  # three blocks a candle: the close too
    assert [thirds.price_at(t * 20 * 10**9) for t in range(3)] == [101, 85, 99]
    warm = read_at_blocks(walked, block, minute)  # before the blocks start: the walk
    assert warm.price_at(block) == 93 and warm.price_at(minute + block) == 112
    five = Bars("x", 5 * minute, {0: (100, 101, 85, 99)})  # ten blocks a candle: the walk
    assert read_at_blocks(five, block, 0).price_at(block) == five.price_at(block)


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


def refused_in_one_line(arguments: list[str], words: str, cwd: Path) -> None:
    """``backtest-solvency`` with these arguments ends in one line, exit 2, that says ``words``."""
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "backtest-solvency", *arguments],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error [INVALID_ARGUMENT]") and words in done.stderr


@pytest.mark.parametrize(
    ("arguments", "words"),
    [(["--data", "missing-folder"], "missing-folder: no such folder"),
     (["--data", "."], "is missing"),
     (["--data", ".", "--window", "no such window"], "no crash window's name contains")],
)  # fmt: skip
def test_the_cli_refuses_a_missing_folder_or_window_in_one_line(
    arguments: list[str], words: str, tmp_path: Path
) -> None:
    refused_in_one_line(arguments, words, tmp_path)


def _minute_file(path: Path, days: int, *, drop: float) -> None:
    """Binance's kline layout (headerless, open and close times in ms): 1-minute candles of a
    slow drift, then ``drop`` over the last two hours."""
    rng = random.Random(5)
    price, lines = 40_000.0, []
    start_s = 1_704_067_200 - (days - 1) * 86_400
    minutes = days * 1_440
    for i in range(minutes):
        opened = price
        move = -drop / 120 if i >= minutes - 120 else 0.0
        price = opened * (1 + move + rng.gauss(0, 0.0005))
        high, low = max(opened, price) * 1.0004, min(opened, price) * 0.9996
        t = (start_s + 60 * i) * 1000
        lines.append(f"{t},{opened:.2f},{high:.2f},{low:.2f},{price:.2f},1.0,{t + 59_999},"
                     f"{price:.2f},10,0.5,{price / 2:.2f},0")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def test_the_cli_runs_a_user_s_candle_files(tmp_path: Path) -> None:
    """backtest-solvency ran only the bundled windows of --data: a user's own crash files
    (1-minute exports of two venues, say) could not be given to it at all."""
    for name in ("BTCUSDT-1m-binance.csv", "BTCUSDT-1m-bybit.csv"):
        _minute_file(tmp_path / name, 2, drop=0.12)
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "backtest-solvency", "BTCUSDT-1m-binance.csv",
         "BTCUSDT-1m-bybit.csv", "--start", "2024-01-01T22:00:00Z", "--end",
         "2024-01-02T00:00:00Z", "--warmup-days", "1", "--json", "out.json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("BTCUSDT-1m-binance.csv, BTCUSDT-1m-bybit.csv: 337 blocks")
    assert '"solvent": true' in (tmp_path / "out.json").read_text()


@pytest.mark.parametrize(
    ("arguments", "words"),
    [(["x.csv"], "--market BTC|ETH, --start and --end are needed"),
     (["x.csv", "--market", "DOGE", "--start", "2024-01-01T00:00:00Z", "--end",
       "2024-01-02T00:00:00Z"], "--market is BTC or ETH, not 'DOGE'"),
     (["x.csv", "--data", "."], "give CSV files or --data, one of the two"),
     (["x.csv", "--start", "2024-01-02T00:00:00Z", "--end", "2024-01-01T00:00:00Z"],
      "is not after --start"),
     (["x.csv", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-02T00:00:00Z",
       "--crash-days"], "--crash-days and --window choose among --data's windows"),
     (["y.csv", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-02T00:00:00Z"],
      "y.csv is missing")],
)  # fmt: skip
def test_the_cli_refuses_csv_arguments_it_cannot_run_in_one_line(
    arguments: list[str], words: str, tmp_path: Path
) -> None:
    (tmp_path / "x.csv").write_text("date,open,high,low,close\n")
    refused_in_one_line(arguments, words, tmp_path)
