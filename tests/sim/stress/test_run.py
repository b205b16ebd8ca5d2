"""One path through the real engine: deterministic in its seed, measured, and written out as a
journal that ``clearhouse verify`` replays to the same state root; its publishers' prices in USDC
whatever each candle file's quote currency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.sim.solvency import Bars
from clearhouse.sim.stress.run import data_notes, price_feeds, run_path
from clearhouse.sim.stress.scenario import load_scenario
from clearhouse.sim.venue import USDC

from .conftest import SCENARIO, write_slide


def test_a_slide_liquidates_and_is_measured(slide_scenario: Path) -> None:
    result = run_path(load_scenario(slide_scenario), {}, seed=1)
    assert result.blocks > 4_000 and result.account_blocks > result.blocks
    assert result.liquidated_notional > 0 and sum(result.steps.values()) > 0
    assert result.deficit == 0 and result.socialized == 0 and result.hidden_debt == 0
    # The margin backtest: hourly account-periods, some of them in the slide breached.
    assert len(result.margins) == len(result.losses) > 20
    breaches = sum(
        loss > margin for margin, loss in zip(result.margins, result.losses, strict=True)
    )
    assert 0 < breaches < len(result.margins)
    assert result.slippage_notional > 0
    assert result.leverage_allowed and all(1 < x <= 50 for x in result.leverage_allowed)
    series = result.series
    assert len(series["index"]) == len(series["t_hours"]) > 300  # one a minute for 6 hours
    assert series["index"][-1] < 0.7 * series["index"][0]


def test_a_path_is_a_function_of_its_seed(slide_scenario: Path) -> None:
    scenario = load_scenario(slide_scenario)
    first, again, other = (run_path(scenario, {}, seed=s) for s in (1, 1, 2))
    assert (first.liquidated_notional, first.steps, first.margins, first.series) == (
        again.liquidated_notional, again.steps, again.margins, again.series)  # fmt: skip
    assert first.series["open_interest"] != other.series["open_interest"]  # noise traders differ


def test_a_path_written_as_a_journal_verifies(slide_scenario: Path, tmp_path: Path) -> None:
    scenario = load_scenario(slide_scenario)
    journal_path = tmp_path / "path.sqlite"
    journal = SqliteJournal(journal_path)
    written = run_path(scenario, {}, seed=1, journal=journal)
    journal.close()
    assert written.liquidated_notional == run_path(scenario, {}, seed=1).liquidated_notional
    verify = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(journal_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert f"verified {written.blocks} blocks, state root {written.state_root}" in verify.stdout


NS_PER_HOUR = 3600 * 10**9
OPEN_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
CANDLES = ((42_000.5, 42_100, 41_900, 42_050), (42_050, 42_060, 40_000, 40_100.25),
           (40_100.25, 41_000, 39_000, 40_900))  # fmt: skip
QUOTED = """
[scenario]
name = "two venues, two quotes"
hours = 2
warmup_hours = 0
[prices]
model = "csv"
files = ["BTCUSDT_1h.csv", "XBTUSD_1h.csv"]
start = "2024-01-01T01:00:00Z"
end = "2024-01-01T03:00:00Z"
[prices.rates]
USDT = {rate}
"""


def _quoted_scenario(folder: Path, rate: str) -> Path:
    """The same three hourly candles on a USDT venue and a USD venue."""
    rows = [f"2024-01-01T{h:02d}:00:00Z,{o},{hi},{lo},{c}" for h, (o, hi, lo, c) in
            enumerate(CANDLES)]  # fmt: skip
    for name in ("BTCUSDT_1h.csv", "XBTUSD_1h.csv"):
        (folder / name).write_text("\n".join(["date,open,high,low,close", *rows]) + "\n")
    path = folder / "quoted.toml"
    path.write_text(QUOTED.format(rate=rate))
    return path


def _bars_at(rates: tuple[float, ...]) -> dict[int, tuple[int, ...]]:
    return {OPEN_NS + h * NS_PER_HOUR: tuple(round(p * rate * USDC) for p in candle)
            for h, (candle, rate) in enumerate(zip(CANDLES, rates, strict=True))}  # fmt: skip


def test_the_publishers_prices_are_in_usdc_at_a_fixed_rate(tmp_path: Path) -> None:
    scenario = load_scenario(_quoted_scenario(tmp_path, "0.9"))
    feeds, names, start_ns = price_feeds(scenario, seed=1)
    assert names == [f"{tmp_path.name}/BTCUSDT_1h.csv", f"{tmp_path.name}/XBTUSD_1h.csv"]
    assert start_ns == OPEN_NS + NS_PER_HOUR
    tether, dollar = feeds
    assert isinstance(tether, Bars) and isinstance(dollar, Bars)
    assert tether.bars == _bars_at((0.9, 0.9, 0.9))
    assert dollar.bars == _bars_at((1.0, 1.0, 1.0))  # USD at par
    for hour in range(3):
        at = OPEN_NS + hour * NS_PER_HOUR + NS_PER_HOUR // 2
        usdt, usd = tether.price_at(at), dollar.price_at(at)
        assert usdt is not None and usd is not None
        assert usdt == pytest.approx(0.9 * usd, abs=1)


def test_a_rate_file_converts_each_bar_at_its_own_time(tmp_path: Path) -> None:
    """Tether's hourly closes 1.00, 1.00, then 0.50: each close the rate from the candle's
    close time, so the 00:00 and 01:00 bars at 1.00 and the 02:00 bar at 0.50."""
    (tmp_path / "USDTUSD_1h.csv").write_text(
        "open_time,open,high,low,close\n"
        "1704063600000,1,1,1,1.0\n"  # 2023-12-31T23:00:00Z, in ms
        "1704067200000,1,1,1,1.0\n"
        "1704070800000,1,1,0.5,0.5\n"
    )
    scenario = load_scenario(_quoted_scenario(tmp_path, '"USDTUSD_1h.csv"'))
    tether, dollar = price_feeds(scenario, seed=1)[0]
    assert isinstance(tether, Bars) and isinstance(dollar, Bars)
    assert tether.bars == _bars_at((1.0, 1.0, 0.5))
    assert dollar.bars == _bars_at((1.0, 1.0, 1.0))


def test_gaps_and_skipped_rows_in_the_window_are_noted(tmp_path: Path) -> None:
    """A venue's outage of hours and its broken rows used to pass unsaid: the run measured a
    market without an index (a quorum of two needs both) as if it had been calm."""
    rows = [f"2024-01-01T{h:02d}:{m:02d}:00Z,100,101,99,100" for h in range(6) for m in (0, 30)]
    rows[3] = "2024-01-01T01:30:00Z,100,99,101,100"  # a high below its low: skipped
    gapped = [r for r in rows if not r.startswith(("2024-01-01T03", "2024-01-01T04:00"))]
    (tmp_path / "BTCUSD_30m.csv").write_text("\n".join(["date,open,high,low,close", *rows]))
    (tmp_path / "XBTUSD_30m.csv").write_text("\n".join(["date,open,high,low,close", *gapped]))
    path = tmp_path / "gap.toml"
    path.write_text('[scenario]\nhours = 4\nwarmup_hours = 0\n[prices]\nmodel = "csv"\n'
                    'files = ["BTCUSD_30m.csv", "XBTUSD_30m.csv"]\n'
                    'start = "2024-01-01T01:00:00Z"\nend = "2024-01-01T05:00:00Z"\n')  # fmt: skip
    notes = data_notes(load_scenario(path))
    assert notes == [
        f"{tmp_path.name}/BTCUSD_30m.csv: 1 rows skipped (no positive price, or prices that "
        "cannot be: a high below the open, close or low)",
        f"{tmp_path.name}/BTCUSD_30m.csv: 1 of 8 candles missing in the window, the longest gap "
        "30 min from 2024-01-01T01:30:00Z: its publisher is silent then (with too few others "
        "for the oracle's quorum, the market has no index: nothing trades or is liquidated)",
        f"{tmp_path.name}/XBTUSD_30m.csv: 1 rows skipped (no positive price, or prices that "
        "cannot be: a high below the open, close or low)",
        f"{tmp_path.name}/XBTUSD_30m.csv: 4 of 8 candles missing in the window, the longest gap "
        "1.5 h from 2024-01-01T03:00:00Z: its publisher is silent then (with too few others "
        "for the oracle's quorum, the market has no index: nothing trades or is liquidated)",
    ]
    assert data_notes(load_scenario(_quoted_scenario(tmp_path, "0.9"))) == []


def test_venues_of_the_same_name_are_publishers_of_their_own(tmp_path: Path) -> None:
    """The same file listed twice, or two files of one folder and file name in different
    places (2024/binance/BTCUSDT.csv, 2025/binance/BTCUSDT.csv): their publishers had one
    address, the oracle refused the listing and the run stopped in a KeyError traceback."""
    for where in ("a/x", "b/x"):
        (tmp_path / where).mkdir(parents=True)
        write_slide(tmp_path / where / "slide.csv")
    path = tmp_path / "twice.toml"
    path.write_text(SCENARIO.format(hours=0.5).replace(
        'files = ["slide.csv"]\nquotes = ["USD"]',
        'files = ["a/x/slide.csv", "a/x/slide.csv", "b/x/slide.csv"]\n'
        'quotes = ["USD", "USD", "USD"]',
    ))  # fmt: skip
    scenario = load_scenario(path)
    assert price_feeds(scenario, seed=1)[1] == ["x/slide.csv", "x/slide.csv #2", "x/slide.csv #3"]
    result = run_path(scenario, {}, seed=1)
    assert result.blocks > 300


def test_one_minute_candles_are_read_by_the_scenario_s_blocks(tmp_path: Path) -> None:
    """At 30 s blocks a 1-minute candle was read at its open and half-way from its high to its
    low: a 15% minute wick reached the publishers as 7.5%. The blocks now read its extremes."""
    rows = [f"2024-01-01T00:{m:02d}:00Z,100,101,99,100" for m in range(60)]
    rows[40] = "2024-01-01T00:40:00Z,100,101,85,99"
    (tmp_path / "BTCUSD_1m.csv").write_text("\n".join(["date,open,high,low,close", *rows]))
    path = tmp_path / "wick.toml"
    path.write_text('[scenario]\nhours = 0.5\nwarmup_hours = 0.5\nblock_seconds = 30\n'
                    '[prices]\nmodel = "csv"\nfiles = ["BTCUSD_1m.csv"]\n'
                    'start = "2024-01-01T00:30:00Z"\nend = "2024-01-01T01:00:00Z"\n')  # fmt: skip
    (feed,), _, start_ns = price_feeds(load_scenario(path), seed=1)
    wick_ns = start_ns + 10 * 60 * 10**9
    assert [feed.price_at(wick_ns + s * 10**9) for s in (0, 30)] == [101 * USDC, 85 * USDC]
    assert feed.price_at(start_ns - 20 * 60 * 10**9) == 100 * USDC  # the warm-up: the walk
