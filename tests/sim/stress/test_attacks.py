"""The incident attacks of the stress lab, each on its bundled scenario: the attacker gains
nothing on Clearhouse's defaults, and gains with the matching guard removed (or, where the
guard is structural and has no parameter, still gains nothing with the nearest one removed);
and ``[[attack]]`` tables are read strictly."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from clearhouse.adapters.sqlite_journal import SqliteJournal
from clearhouse.core.errors import ConfigError
from clearhouse.sim.stress.attacks import parse_attacks
from clearhouse.sim.stress.run import PathResult, run_path
from clearhouse.sim.stress.scenario import Scenario, load_scenario, parse_scenario

NO_MARK_BAND = {"mark_band_ppm": 100_000}  # the most the price band allows
# Set by tests/scenarios/mutate_guards.py in its scratch copy to the guard it removed there: the
# tests that show an attack paid once its guard is gone run only then.
GUARD_REMOVED = os.environ.get("CLEARHOUSE_GUARD_REMOVED", "")


def bundled(kind: str) -> Scenario:
    folder = resources.files("clearhouse.sim.stress") / "scenarios"
    path = Path(str(folder / f"attack-{kind}.toml"))
    return load_scenario(path)


def pnl(result: PathResult) -> int:
    """The one attacker's PnL, quote quantums."""
    assert len(result.attacker_pnl) == 1, result.attacker_pnl
    return next(iter(result.attacker_pnl.values()))


def highest_basis(result: PathResult) -> float:
    """The highest (mark − index) / index of the path's samples."""
    return max(
        m / i - 1 for m, i in zip(result.series["mark"], result.series["index"], strict=True)
    )


def test_every_kind_has_a_bundled_scenario_beside_its_candles() -> None:
    kinds = (
        "oracle_push",
        "spoof_wall",
        "block_stuff",
        "wash_trade",
        "self_liquidate",
        "oi_corner",
    )
    for kind in kinds:
        scenario = bundled(kind)
        assert [a["kind"] for a in scenario.attacks] == [kind]
        assert all(f.is_file() for f in scenario.prices.files)


# ── Thin-venue oracle push (Mango 2022) ─────────────────────────────────────────────────────


def test_oracle_push_through_one_thin_venue_of_three_gains_nothing() -> None:
    result = run_path(bundled("oracle_push"), {}, seed=1)
    assert pnl(result) < 0  # the spot round trip and the fees, nothing back
    assert result.liquidated_notional == 0  # the index never moved: nobody was hurt either
    assert max(result.series["index"]) < 1.01 * result.series["index"][0]


def test_oracle_push_through_the_only_publisher_pays_the_attacker() -> None:
    scenario = bundled("oracle_push")
    thin_only = dataclasses.replace(scenario.prices, files=scenario.prices.files[:1])
    result = run_path(dataclasses.replace(scenario, prices=thin_only), {}, seed=1)
    assert pnl(result) > 20_000 * 10**6  # sold at a 10% higher index, net of the push's cost
    assert max(result.series["index"]) > 1.08 * result.series["index"][0]


# ── Pushing the mark with one's own orders ──────────────────────────────────────────────────


def test_spoof_wall_within_the_mark_band_gains_nothing() -> None:
    result = run_path(bundled("spoof_wall"), {}, seed=1)
    assert pnl(result) < 0
    assert 0.009 < highest_basis(result) < 0.0101  # held at the band's edge (1%), no further


def test_spoof_wall_without_the_mark_band_pays_the_attacker() -> None:
    result = run_path(bundled("spoof_wall"), NO_MARK_BAND, seed=1)
    assert pnl(result) > 20_000 * 10**6  # sold to the shorts its higher mark liquidated
    assert result.liquidated_notional > 1_000_000 * 10**6


def test_block_stuffing_moves_the_mark_by_block_time_not_by_block_count() -> None:
    """Bursts of 200 blocks a second of the attacker's own carry the time they last, not their
    count: the mark rises less than half a percent, the band never binds (removing it changes
    nothing to the quantum), and the attacker pays for its bursts. With the basis EMA weighing
    each block as a second (tests/scenarios/mutate_guards.py), the same bursts lift the mark
    to the band's edge, or to the push without the band (and then the attack pays: below)."""
    scenario = bundled("block_stuff")
    banded, unbanded = (run_path(scenario, point, seed=1) for point in ({}, NO_MARK_BAND))
    assert banded.blocks > 11_000  # 5,461 of the cadence, 5,970 of the attacker's
    assert pnl(banded) < 0
    assert pnl(unbanded) == pnl(banded)
    assert unbanded.series["mark"] == banded.series["mark"]
    assert highest_basis(unbanded) < 0.005
    assert unbanded.liquidated_notional == 0


@pytest.mark.skipif(
    GUARD_REMOVED != "basis EMA per block",
    reason="runs in tests/scenarios/mutate_guards.py's scratch copy, the basis EMA per block",
)
def test_block_stuffing_pays_once_blocks_move_the_mark_and_the_band_is_gone() -> None:
    """The guard removed: each burst lifts the mark to its push at once, a step of 1.25% at a
    time, so the shorts it liquidates close on the book into its ask while still solvent. A
    third layer stands behind the two: the vault trades with orders resting through its own
    quote (the attacker's ask, far over the index: −4,241 USDC with it), so it is off here."""
    scenario = bundled("block_stuff")
    population = dataclasses.replace(scenario.population, vault_takes_through_quotes=False)
    scenario = dataclasses.replace(scenario, population=population)
    result = run_path(scenario, NO_MARK_BAND, seed=1)
    print(f"attacker PnL {pnl(result) / 10**6:,.2f} USDC")  # read by mutate_guards.py
    assert pnl(result) > 0
    assert result.steps.get("BOOK", 0) > 0 and result.steps.get("AUCTION", 0) == 0


def test_self_trading_above_the_book_gains_nothing_while_either_guard_stands() -> None:
    """Its prints move no mark: only its offer, all that is left on the ask side once it has
    bought the rest, lifts the impact mid, to the band's edge (or without the band, half-way
    to its prints). Shorts are liquidated, but not into its offer enough to pay for the book
    it buys. With the mark made from the last trade (tests/scenarios/mutate_guards.py), the
    mark follows its prints beyond that."""
    scenario = bundled("wash_trade")
    banded, unbanded = (run_path(scenario, point, seed=1) for point in ({}, NO_MARK_BAND))
    assert pnl(banded) < 0 and pnl(unbanded) < 0
    assert highest_basis(banded) < 0.0101
    assert highest_basis(unbanded) < 0.035  # its prints reach +5%


@pytest.mark.skipif(
    GUARD_REMOVED != "mark from the last trade",
    reason="runs in tests/scenarios/mutate_guards.py's scratch copy, the mark from prints",
)
def test_self_trading_pays_once_prints_make_the_mark_and_the_band_is_gone() -> None:
    result = run_path(bundled("wash_trade"), NO_MARK_BAND, seed=1)
    print(f"attacker PnL {pnl(result) / 10**6:,.2f} USDC")  # read by mutate_guards.py
    assert pnl(result) > 0
    assert highest_basis(result) > 0.05  # the mark followed its prints


# ── Withdrawing to self-liquidate into the backstop (JELLY, March 2025) ────────────────────

THIN_MARGIN = {"margin.initial_margin_ppm": 5_000, "margin.size_premium_ppm_per_sqrt_quote_unit": 0}


@pytest.mark.parametrize(
    "point", [{}, NO_MARK_BAND, THIN_MARGIN], ids=["defaults", "no band", "thin margin"]
)
def test_self_liquidation_gains_nothing_while_either_guard_stands(point: dict[str, object]) -> None:
    result = run_path(bundled("self_liquidate"), point, seed=1)
    assert pnl(result) < 0
    assert result.deficit == 0 and result.socialized == 0


def test_self_liquidation_without_the_band_and_with_thin_margin_makes_the_backstop_pay() -> None:
    result = run_path(bundled("self_liquidate"), {**THIN_MARGIN, **NO_MARK_BAND}, seed=1)
    assert pnl(result) > 100_000 * 10**6
    assert result.steps.get("AUCTION", 0) > 0  # the short went to the backstop...
    assert result.liquidated_notional >= 10_000_000 * 10**6  # ...all ten million of it


# ── Open-interest cornering (dYdX YFI, November 2023) ──────────────────────────────────────

NO_SIZE_PREMIUM = {"margin.size_premium_ppm_per_sqrt_quote_unit": 0}
NO_OI_SCALING = {
    "margin.oi_lower_quote_quantums": 10**18,
    "margin.oi_upper_quote_quantums": 2 * 10**18,
}


@pytest.mark.parametrize(
    "point",
    [{}, NO_SIZE_PREMIUM, NO_OI_SCALING, {**NO_SIZE_PREMIUM, **NO_OI_SCALING}, NO_MARK_BAND],
    ids=["defaults", "no size premium", "no OI scaling", "neither", "no band"],
)
def test_a_corner_gains_nothing_while_any_guard_stands(point: dict[str, object]) -> None:
    result = run_path(bundled("oi_corner"), point, seed=1)
    assert pnl(result) < 0
    assert result.deficit == 0 and result.socialized == 0


def test_a_corner_is_refused_outright_by_the_size_premium() -> None:
    result = run_path(bundled("oi_corner"), {}, seed=1)
    # USDC: what the wall bought from the maker; the 60M pair never opened.
    assert max(result.series["open_interest"]) < 10_000_000


def test_a_corner_with_every_guard_removed_makes_the_backstop_pay() -> None:
    point = {**NO_SIZE_PREMIUM, **NO_OI_SCALING, **NO_MARK_BAND}
    result = run_path(bundled("oi_corner"), point, seed=1)
    assert pnl(result) > 100_000 * 10**6
    assert result.steps.get("AUCTION", 0) > 0


# ── A path with an attacker is a path like any other ────────────────────────────────────────


def test_a_path_with_an_attacker_written_as_a_journal_verifies(tmp_path: Path) -> None:
    scenario = bundled("spoof_wall")
    journal = SqliteJournal(tmp_path / "path.sqlite")
    written = run_path(scenario, {}, seed=1, journal=journal)
    journal.close()
    assert written.attacker_pnl == run_path(scenario, {}, seed=1).attacker_pnl
    verify = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(tmp_path / "path.sqlite")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert f"verified {written.blocks} blocks, state root {written.state_root}" in verify.stdout


# ── Reading [[attack]] tables ───────────────────────────────────────────────────────────────


def test_attack_tables_are_read_into_attackers() -> None:
    [attack] = parse_attacks([{"kind": "oracle_push", "push": 0.2, "usdc": 1_000}])
    assert attack.name == "oracle_push-0"
    assert attack.funding()[0][1] == 1_000


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "oracle_push", "pushh": 0.1}, "attack[1].pushh: unknown key"),
        ({"kind": "rug_pull"}, "attack[1].kind: one of"),
        ({"kind": "spoof_wall", "usdc": 1.5}, "attack[1].usdc: expected int"),
        ({"kind": "oracle_push", "push": "10%"}, "attack[1].push: expected a number"),
        ({"kind": "oracle_push", "push": 1.5}, "attack[1]: push in"),
        ({"kind": "oracle_push", "close_minute": 5}, "attack[1]: open <= push"),
        ({"kind": "block_stuff", "orders": 0}, "attack[1]: orders in [1, 200]"),
    ],
)
def test_a_bad_attack_table_is_refused_naming_the_key(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_attacks([{"kind": "wash_trade"}, table])


def test_a_scenario_with_a_bad_attack_is_refused_before_it_runs(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("date,open,high,low,close,volume\n")
    document = {
        "scenario": {"hours": 1},  # within the prices' window: the attack is what is wrong
        "prices": {"model": "csv", "files": ["x.csv"], "quotes": ["USD"],
                   "start": "2026-01-05T00:00:00Z", "end": "2026-01-05T01:00:00Z"},
        "attack": [{"kind": "oracle_push", "venue": "a"}],
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"scenario attack\[0\]\.venue: expected int"):
        parse_scenario(document, base_dir=tmp_path)


def test_an_oracle_push_on_a_venue_that_is_not_there_is_refused() -> None:
    scenario = bundled("oracle_push")
    one = dataclasses.replace(scenario.prices, files=scenario.prices.files[:1])
    tables = ({**scenario.attacks[0], "venue": 1},)
    with pytest.raises(ConfigError, match="venue 1 is not a file"):
        run_path(dataclasses.replace(scenario, prices=one, attacks=tables), {}, seed=1)
