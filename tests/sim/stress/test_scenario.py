"""Scenario files: every bundled one reads; a mistake is refused in one line naming its key;
presets and grid points give the markets they say."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from clearhouse.core.errors import ConfigError
from clearhouse.sim.stress.scenario import (
    BUNDLED_DIR,
    bundled_scenarios,
    find_scenario,
    load_scenario,
    parse_scenario,
)

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SYNTHETIC = """
[scenario]
name = "x"
hours = 1
[prices]
model = "gbm"
annual_vol = 0.6
"""


def test_the_synthetic_bundled_scenarios_read() -> None:
    synthetic = [n for n in bundled_scenarios() if not n.startswith(("crash-", "attack-"))]
    assert {"jumps", "presets", "garch"} <= set(synthetic)
    for name in synthetic:
        scenario = load_scenario(find_scenario(name))
        assert scenario.settings.hours > 0 and scenario.grid_points()


@pytest.mark.skipif(not DATA.is_dir(), reason=f"no market data at {DATA}")
def test_the_real_crash_scenarios_read_with_the_data_folder() -> None:
    crashes = [n for n in bundled_scenarios() if n.startswith("crash-")]
    assert len(crashes) == 7  # every window of sim.backtest.CRASH_WINDOWS
    for name in crashes:
        scenario = load_scenario(find_scenario(name), DATA)
        assert all(f.is_file() for f in scenario.prices.files)


def test_a_crash_scenario_without_its_data_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"prices\.files: no file"):
        load_scenario(BUNDLED_DIR / "crash-luna-btc.toml", tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("hours = 1", "hours = 0"), "scenario.hours"),
        (("hours = 1", "hours = 1\ncolour = 2"), "scenario.colour: unknown key"),
        (('model = "gbm"', 'model = "levy"'), "prices.model: one of"),
        (("annual_vol = 0.6", "annual_vol = -1"), "annual_vol"),
        (("annual_vol = 0.6", 'annual_vol = "high"'), "prices.annual_vol: expected a number"),
        (("annual_vol = 0.6", "annual_vol = 0.6\njumps = 3"), "prices.jumps: unknown key"),
        (("[prices]", "[venue]\npreset = \"cex\"\n[prices]"), "venue.preset: one of"),
        (("[prices]", "[venue.market.margin]\ninitial_margin_ppm = 0\n[prices]"),
         "venue.market: initial_margin_ppm"),
        (("[prices]", "[grid]\n\"margin.initial_margin_ppm\" = 3\n[prices]"), "a list of values"),
        (("[prices]", "[grid]\n\"margin.colour\" = [1]\n[prices]"), "grid.margin.colour"),
        (("[prices]", "[population]\ntraders = -1\n[prices]"), "population: agent counts"),
        (("[prices]", "[attack]\n[prices]"), "attack: expected tables"),
    ],
)  # fmt: skip
def test_a_mistake_is_refused_naming_its_key(edit: tuple[str, str], message: str) -> None:
    text = SYNTHETIC.replace(*edit)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_scenario(tomllib.loads(text))


def test_presets_and_grid_points_give_their_markets() -> None:
    text = SYNTHETIC + '[grid]\npreset = ["clearhouse", "dydx-like", "hyperliquid-like"]\n'
    text += '"margin.maintenance_share_ppm" = [500_000, 800_000]\n'
    scenario = parse_scenario(tomllib.loads(text))
    points = scenario.grid_points()
    assert len(points) == 6
    margins = {
        (p["preset"], p["margin.maintenance_share_ppm"]): scenario.market_at(p).margin
        for p in points
    }
    assert margins[("clearhouse", 500_000)].initial_margin_ppm == 20_000
    assert margins[("dydx-like", 800_000)].initial_margin_ppm == 50_000
    assert margins[("hyperliquid-like", 500_000)].initial_margin_ppm == 25_000
    assert {m.maintenance_share_ppm for m in margins.values()} == {500_000, 800_000}
    assert margins[("dydx-like", 500_000)].vol_multiplier_max_ppm == 1_000_000  # no vol scaling


def test_an_unknown_scenario_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ConfigError, match=r"bundled: .*jumps"):
        find_scenario("no-such-scenario")
