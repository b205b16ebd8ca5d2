"""The options AMM in the stress lab (SPEC §11, §13): through a synthetic crash with jumps and
through every incident attack, options on, it is never liquidated (nor liquidatable), no
block's fills take an exposure past its cap, its delta comes back within the hedge band after
each hedge the perpetual's book could fill, and it quotes every listed active option whenever
the surface is fresh (both sides unless a cap forbids one): ``sim.stress.amm_watch`` checks
each of these every block, from the engine's events and exposure, and counts what breaks
them. A path with options is reproduced from its seed and its journal verifies. The
``[options]`` table is read strictly, and a scenario without one runs as before."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.core.errors import ConfigError
from clearhouse.sim.solvency import PPM
from clearhouse.sim.stress.report import write_report
from clearhouse.sim.stress.run import run_path
from clearhouse.sim.stress.scenario import (
    Scenario,
    bundled_scenarios,
    find_scenario,
    load_scenario,
    parse_scenario,
    with_options,
)
from clearhouse.sim.stress.summary import summarize
from sim.stress.amm_checks import assert_within_its_limits, shortened

ATTACKS = [name for name in bundled_scenarios() if name.startswith("attack-")]

# Each attack's own timeline, shortened where it is long: the minutes its attacker needs
# (after the window opens), and overrides that bring it forward.
ATTACK_HOURS = {
    "attack-oracle_push": 1.4,  # releases the push at minute 80
    "attack-block_stuff": 0.1,  # one-second blocks: the stuffing moved to minutes 1-5
    "attack-oi_corner": 0.9,
    "attack-self_liquidate": 0.9,
    "attack-spoof_wall": 0.9,
    "attack-wash_trade": 0.9,
}
ATTACK_OVERRIDES: dict[str, dict[str, object]] = {
    "attack-block_stuff": {"start_minute": 1.0, "push_minutes": 4.0},
}


# ── A synthetic crash ────────────────────────────────────────────────────────────────────────


def crash(hours: float = 1.0) -> Scenario:
    """The bundled ``options-amm`` scenario with its 25% slide brought forward to 24 minutes
    into the window, over 10 minutes."""
    scenario = load_scenario(find_scenario("options-amm"))
    parameters = {**scenario.prices.parameters, "crash_at_hours": 0.4, "crash_over_minutes": 10}
    prices = dataclasses.replace(scenario.prices, parameters=parameters)
    return shortened(dataclasses.replace(scenario, prices=prices), hours=hours)


def test_through_a_synthetic_crash_it_stays_within_its_limits() -> None:
    result = run_path(crash(), {}, seed=1)
    amm = assert_within_its_limits(result)
    assert result.series["index"][-1] < 0.8 * result.series["index"][0]  # the crash happened
    assert amm.hedges > 0 and amm.hedge_filled_base > 0  # it hedged
    assert amm.fills_bought > 0 and amm.fills - amm.fills_bought > 0  # both ways
    assert max(amm.utilization_max_ppm.values()) > PPM // 10  # its caps were used
    assert len(amm.series["nav"]) == len(amm.series["gamma"]) > 30  # a sample a minute


# ── Every incident attack ───────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", ATTACKS)
def test_through_an_attack_it_stays_within_its_limits(name: str) -> None:
    scenario = load_scenario(find_scenario(name))
    overrides = ATTACK_OVERRIDES.get(name)
    if overrides:
        scenario = dataclasses.replace(
            scenario, attacks=tuple({**a, **overrides} for a in scenario.attacks)
        )
    result = run_path(shortened(scenario, hours=ATTACK_HOURS[name]), {}, seed=1)
    assert_within_its_limits(result)
    assert result.attacker_pnl  # the attacker was there


def test_every_attack_has_a_duration_here() -> None:
    assert sorted(ATTACK_HOURS) == ATTACKS


# ── Reproducible, and its journal verifies ───────────────────────────────────────────────────


def test_a_path_with_options_is_a_function_of_its_seed_and_its_journal_verifies(
    tmp_path: Path,
) -> None:
    scenario = crash(hours=0.25)
    journal_path = tmp_path / "options.sqlite"
    journal = SqliteJournal(journal_path)
    written = run_path(scenario, {}, seed=3, journal=journal)
    journal.close()
    again = run_path(scenario, {}, seed=3)
    assert written.state_root == again.state_root
    assert written.options is not None and again.options is not None
    assert dataclasses.asdict(written.options) == dataclasses.asdict(again.options)
    assert written.options.fills > 0
    verify = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(journal_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert f"verified {written.blocks} blocks, state root {written.state_root}" in verify.stdout


# ── The numbers, the report ──────────────────────────────────────────────────────────────────


def test_the_json_and_the_report_carry_the_amm(tmp_path: Path) -> None:
    scenario = crash(hours=0.2)
    results = [run_path(scenario, {}, seed=seed) for seed in (1, 2)]
    summary = summarize(scenario, results)
    (point,) = summary["points"]
    amm = point["options_amm"]
    assert amm["liquidated_paths"] == 0 and amm["violations"] == {"cap": 0, "quote": 0, "hedge": 0}
    assert amm["quoted_share_min"] == 1.0 and amm["fills"] > 0 and amm["premium_usdc"] > 0
    assert set(amm["utilization_max"]) == {"vega", "gamma", "delta"}
    assert len(amm["per_path"]["nav_low_usdc"]) == 2
    json.dumps(summary)  # plain JSON
    page = write_report(tmp_path / "report.html", summary, results).read_text()
    assert "Options AMM: NAV and cap utilization" in page and "AMM drawdown" in page


# ── The [options] table ──────────────────────────────────────────────────────────────────────


BASE: dict[str, Any] = {
    "scenario": {"hours": 1},
    "prices": {"model": "gbm", "annual_vol": 0.5},
}


def test_without_options_a_path_has_none_and_the_json_says_nothing_of_them() -> None:
    scenario = parse_scenario(BASE)
    assert scenario.options is None
    off = parse_scenario({**BASE, "options": {"enabled": False}})
    assert off.options is None
    on = parse_scenario({**BASE, "options": {"amm_usdc": 500_000, "vault": {"lockup_ns": 0}}})
    assert on.options is not None and on.options.amm_usdc == 500_000
    assert with_options(scenario).options is not None
    assert with_options(on).options is on.options  # its own table wins


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"amm_usd": 1}, "options.amm_usd"),
        ({"takers": "many"}, "options.takers"),
        ({"vol_floor": 2.0}, "options:"),
        ({"vault": {"vega_cap": 1}}, "options.vault"),
        ({"vault": {"half_spread_ppm": 0}}, "options.vault"),
        ({"vault": {"hedge_market_id": "ETH-PERP"}}, "options.vault.hedge_market_id"),
    ],
)
def test_mistakes_in_the_options_table_are_refused_naming_the_key(
    options: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        parse_scenario({**BASE, "options": options})
