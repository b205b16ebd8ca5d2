"""``clearhouse stress`` as a user runs it: the bundled list, a run that writes the report and
the numbers, a path written as a journal, and mistakes answered in one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _stress(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clearhouse", "stress", *args],
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


def test_list_names_the_bundled_scenarios() -> None:
    listed = _stress("--list")
    assert listed.returncode == 0
    assert {"jumps", "presets", "garch", "crash-luna-btc"} <= set(listed.stdout.split())


def test_a_run_writes_the_report_the_numbers_and_a_journal(
    tiny_scenario: Path, tmp_path: Path
) -> None:
    out, journal = tmp_path / "out", tmp_path / "path.sqlite"
    done = _stress(str(tiny_scenario), "--paths", "2", "--workers", "2", "--out", str(out),
                   "--journal", str(journal))  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [p["point"] for p in summary["points"]] == [
        {"margin.initial_margin_ppm": 20_000}, {"margin.initial_margin_ppm": 50_000}]  # fmt: skip
    assert summary["paths_per_point"] == 2 and summary["seeds"] == [1, 2]
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly inlined: works offline
    assert "VaR" in done.stdout and "report:" in done.stdout
    root = summary["points"][0]["per_path"]["state_roots"][0]
    assert f"state root {root}" in done.stdout  # the journal's path is the first one run
    verify = subprocess.run([sys.executable, "-m", "clearhouse", "verify", str(journal)],
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert verify.returncode == 0 and root in verify.stdout


def test_mistakes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = _stress("no-such-scenario")
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nhours = -1\n[prices]\nmodel = "gbm"\nannual_vol = 0.5\n')
    invalid = _stress(str(bad))
    for answer, words in ((missing, "no bundled scenario"), (invalid, "scenario.hours")):
        assert answer.returncode == 2, answer.stderr
        assert words in answer.stderr and "Traceback" not in answer.stderr
        assert len(answer.stderr.strip().splitlines()) == 1


def test_an_out_that_is_a_file_is_refused_before_any_path_runs(
    tiny_scenario: Path, tmp_path: Path
) -> None:
    """It ran every path, then a FileExistsError traceback (exit 1)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    done = _stress(str(tiny_scenario), "--paths", "1", "--workers", "0", "--out", str(a_file),
                   "--journal", str(tmp_path / "path.sqlite"))  # fmt: skip
    assert done.returncode == 8, done.stderr
    assert done.stderr.startswith("error [BAD_DATA_DIR]") and "not a folder" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
    assert a_file.read_text() == "mine" and not (tmp_path / "path.sqlite").exists()


def test_an_attack_prints_the_attacker_s_pnl(tmp_path: Path) -> None:
    """It was only in summary.json and the report."""
    out = tmp_path / "out"
    done = _stress("attack-oracle_push", "--paths", "1", "--workers", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr
    [point] = json.loads((out / "summary.json").read_text())["points"]
    [(attacker, pnl)] = point["attacker_pnl_usdc"].items()
    assert f"attacker {attacker}: PnL {pnl['mean']:+,.2f} USDC mean" in done.stdout


def test_options_turn_on_for_any_scenario(tiny_scenario: Path, tmp_path: Path) -> None:
    """``--options``: the tiny scenario (no [options] table) with an option series, surfaces
    and the options AMM, its numbers in the JSON and a line of them printed per point."""
    out = tmp_path / "out"
    done = _stress(str(tiny_scenario), "--options", "--paths", "1", "--workers", "0",
                   "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    amm = summary["points"][0]["options_amm"]
    assert amm["fills"] > 0 and amm["liquidated_paths"] == 0
    assert amm["violations"] == {"cap": 0, "quote": 0, "hedge": 0}
    assert done.stdout.count("options AMM:") == len(summary["points"])


def test_a_quote_without_a_rate_and_a_rate_that_starts_late_are_one_line(tmp_path: Path) -> None:
    rows = [f"2024-01-01T{h:02d}:00:00Z,100,101,99,100\n" for h in range(4)]
    (tmp_path / "BTCUSDT_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows))
    # Tether's rate from 03:00 on: the prices from 00:00 have none.
    (tmp_path / "USDTUSD_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows[2:]))
    scenario = tmp_path / "usdt.toml"
    text = ('[scenario]\nhours = 1\nwarmup_hours = 0\n[prices]\nmodel = "csv"\n'
            'files = ["BTCUSDT_1h.csv"]\nstart = "2024-01-01T01:00:00Z"\n'
            'end = "2024-01-01T02:00:00Z"\n')  # fmt: skip
    scenario.write_text(text)
    scenario.write_text(text.replace("BTCUSDT_1h.csv", "ETHBTC_1h.csv"))
    (tmp_path / "ETHBTC_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows))
    no_rate = _stress(str(scenario), "--out", str(tmp_path / "out"))
    scenario.write_text(text + '[prices.rates]\nUSDT = "USDTUSD_1h.csv"\n')
    late = _stress(str(scenario), "--workers", "1", "--out", str(tmp_path / "out"))
    for answer, words in ((no_rate, "scenario prices.rates.BTC: no rate for BTC"),
                          (late, "no USDT rate at or before 2024-01-01T00:00:00Z")):  # fmt: skip
        assert answer.returncode == 2, answer.stderr
        assert words in answer.stderr and "Traceback" not in answer.stderr
        assert len(answer.stderr.strip().splitlines()) == 1


def test_an_assumed_rate_is_printed_as_a_note(tmp_path: Path) -> None:
    rows = [f"2024-01-01T{h:02d}:00:00Z,100,101,99,100\n" for h in range(4)]
    (tmp_path / "BTCUSDT_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows))
    scenario = tmp_path / "usdt.toml"
    scenario.write_text('[scenario]\nhours = 1\nwarmup_hours = 0\n[prices]\nmodel = "csv"\n'
                        'files = ["BTCUSDT_1h.csv"]\nstart = "2024-01-01T01:00:00Z"\n'
                        'end = "2024-01-01T02:00:00Z"\n')  # fmt: skip
    done = _stress(str(scenario), "--paths", "1", "--workers", "1", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    note = "note: USDT read at par, 1 USDC (no [prices.rates] USDT: give a number"
    assert note in done.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["notes"][0].startswith("USDT read at par")


def test_a_window_whose_prices_give_the_oracle_no_price_is_one_line(tmp_path: Path) -> None:
    """Candles that start with the window (nothing in the warm-up) or two publishers 50%
    apart (never a quorum within the outlier band) leave the market without a mark when
    everyone is to be funded: refused in one line, not a ZeroDivisionError."""
    rows = [f"2024-01-01T{h:02d}:00:00Z,100,101,99,100\n" for h in range(6)]
    halved = [f"2024-01-01T{h:02d}:00:00Z,50,50.5,49.5,50\n" for h in range(6)]
    (tmp_path / "BTCUSD_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows))
    (tmp_path / "XBTUSD_1h.csv").write_text("date,open,high,low,close\n" + "".join(halved))
    head = '[scenario]\nhours = 1\nwarmup_hours = 1\n[prices]\nmodel = "csv"\n'
    late = tmp_path / "late.toml"
    late.write_text(head + 'files = ["BTCUSD_1h.csv"]\nstart = "2024-01-01T00:00:00Z"\n'
                    'end = "2024-01-01T02:00:00Z"\n')  # fmt: skip
    apart = tmp_path / "apart.toml"
    apart.write_text(head + 'files = ["BTCUSD_1h.csv", "XBTUSD_1h.csv"]\n'
                     'start = "2024-01-01T02:00:00Z"\nend = "2024-01-01T04:00:00Z"\n')  # fmt: skip
    for scenario in (late, apart):
        answer = _stress(str(scenario), "--workers", "0", "--out", str(tmp_path / "out"))
        assert answer.returncode == 2, answer.stderr
        assert "no index price" in answer.stderr and "Traceback" not in answer.stderr
        assert len(answer.stderr.strip().splitlines()) == 1


def test_a_gap_in_a_venue_s_candles_is_printed_and_kept_as_a_note(tmp_path: Path) -> None:
    rows = [f"2024-01-01T{h:02d}:00:00Z,100,101,99,100\n" for h in range(6)]
    (tmp_path / "BTCUSD_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows))
    del rows[3]
    (tmp_path / "XBTUSD_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows))
    scenario = tmp_path / "gap.toml"
    scenario.write_text(
        '[scenario]\nhours = 3\nwarmup_hours = 0\n[prices]\nmodel = "csv"\n'
        'files = ["BTCUSD_1h.csv", "XBTUSD_1h.csv"]\n'
        'start = "2024-01-01T01:00:00Z"\nend = "2024-01-01T04:00:00Z"\n'
    )
    done = _stress(str(scenario), "--paths", "1", "--workers", "0", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    note = "XBTUSD_1h.csv: 1 of 3 candles missing in the window, the longest gap 1 h from"
    assert f"note: {tmp_path.name}/{note}" in done.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert any(note in n for n in summary["notes"])
