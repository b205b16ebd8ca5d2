"""A scenario whose venue is a genesis file's: the stress market is that venue's perpetual as
listed (margins, fees, caps), the scenario's overrides on top; mistakes in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clearhouse.cli.lab import _genesis_markets
from clearhouse.core.errors import ConfigError
from clearhouse.node.genesis import default_genesis_text
from clearhouse.sim.stress.scenario import load_scenario
from sim.stress.conftest import TINY

VENUE = """
[venue]
genesis = "venue.toml"
genesis_market = "BTC-PERP"
[venue.market.liquidation]
fee_ppm = 7_000
"""


def _files(tmp_path: Path, venue: str = VENUE, grid: str = "") -> Path:
    genesis = default_genesis_text(0).replace(
        "initial_margin_ppm = 20_000", "initial_margin_ppm = 30_000", 1
    )
    (tmp_path / "venue.toml").write_text(genesis)
    scenario = tmp_path / "scenario.toml"
    body = TINY.split("[grid]")[0] + venue + grid
    scenario.write_text(body)
    return scenario


def test_the_stress_market_is_the_genesis_files_perpetual(tmp_path: Path) -> None:
    scenario = load_scenario(_files(tmp_path), genesis_markets=_genesis_markets)
    market = scenario.market
    assert scenario.preset == "genesis"
    assert market.market_id == "BTC-PERP" and market.oracle_id == "BTC-USD"
    assert market.margin.initial_margin_ppm == 30_000  # the file's own
    assert market.margin.size_premium_ppm_per_sqrt_quote_unit == 20  # the file's own
    assert market.liquidation.fee_ppm == 7_000  # the scenario's override on top
    assert scenario.market_at({}) == market
    styled = scenario.market_at({"preset": "dydx-like"})
    assert styled.margin.initial_margin_ppm == 50_000  # a preset beside it, same overrides
    assert styled.liquidation.fee_ppm == 7_000


def test_genesis_mistakes_are_refused_in_one_line(tmp_path: Path) -> None:
    cases = {
        VENUE.replace('"BTC-PERP"', '"DOGE-PERP"'): "lists no perpetual DOGE-PERP",
        VENUE.replace('genesis = "venue.toml"\n', ""): "needs venue.genesis",
        '[venue]\npreset = "genesis"\n': '"genesis" exactly when venue.genesis is given',
    }
    for venue, words in cases.items():
        with pytest.raises(ConfigError, match=words):
            load_scenario(_files(tmp_path, venue), genesis_markets=_genesis_markets)
    with pytest.raises(ConfigError, match="read by clearhouse stress"):
        load_scenario(_files(tmp_path))  # the stress lab alone reads no genesis file


def test_clearhouse_stress_runs_a_genesis_venue(tmp_path: Path) -> None:
    scenario = _files(tmp_path, grid='[grid]\npreset = ["genesis", "hyperliquid-like"]\n')
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "stress", str(scenario), "--paths", "1",
         "--workers", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [p["point"] for p in summary["points"]] == [
        {"preset": "genesis"},
        {"preset": "hyperliquid-like"},
    ]
