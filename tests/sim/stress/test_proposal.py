"""A proposal through the stress lab: the same seeds before and after its market changes, the
other actions listed with a reason, and a diff that fits what a proposal carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clearhouse.core import limits
from clearhouse.core.errors import ConfigError
from clearhouse.core.messages import ActionKind, GovAction
from clearhouse.sim.stress.proposal import (
    FORMAT,
    STANDARD_SCENARIOS,
    compact_json,
    render_text,
    simulate_proposal,
    split_actions,
)
from clearhouse.sim.stress.scenario import BUNDLED_DIR, find_scenario, load_scenario

BTC = "BTC-PERP"
IM = "market.margin.initial_margin_ppm"


def set_param(name: str, value: int, target: str = BTC) -> GovAction:
    return GovAction(kind=ActionKind.SET_PARAM, target=target, name=name, value=value)


def simulate(scenario: Path, *actions: GovAction) -> dict[str, Any]:
    """The tiny scenario (half an hour, 8 traders): two paths each side, in this process."""
    return simulate_proposal(actions, paths=2, workers=0, scenarios=(str(scenario),))


def test_a_margin_rise_costs_leverage_on_the_same_seeds(tiny_scenario: Path) -> None:
    done: list[tuple[int, int]] = []
    result = simulate_proposal(
        [set_param(IM, 50_000)], paths=2, workers=0, scenarios=(str(tiny_scenario),),
        progress=lambda n, total: done.append((n, total)),
    )  # fmt: skip
    compared = result["scenarios"][str(tiny_scenario)]
    assert compared["scenario_values"] == {"margin.initial_margin_ppm": 20_000}
    assert compared["seeds"] == [1, 2]
    before, after = compared["before"], compared["after"]
    # 5% IM allows 20x where 2% allowed 50x: the traders' leverage follows what is allowed.
    assert after["capital_efficiency"] < before["capital_efficiency"]
    assert compared["delta"]["capital_efficiency"] == pytest.approx(
        after["capital_efficiency"] - before["capital_efficiency"]
    )
    assert done[-1] == (4, 4)  # two paths before, two after
    assert result["format"] == FORMAT and result["not_simulated"] == []
    # Deterministic: the same proposal gives the same diff, to the character.
    again = simulate(tiny_scenario, set_param(IM, 50_000))
    assert compact_json(again) == compact_json(result)
    table = render_text(result)
    assert table[0] == f"{BTC} {IM} -> 50000"
    assert any(line.split()[:1] == ["capital_efficiency"] for line in table)


def test_actions_the_lab_cannot_run_are_listed_with_a_reason(tiny_scenario: Path) -> None:
    actions = [
        set_param("market.no_such_thing", 1),
        set_param("oracle.band_ppm", 30_000, target="BTC-USD"),
        GovAction(kind=ActionKind.PAUSE_MARKET, target=BTC),
        set_param(IM, 1_000_000),  # past the hard bound: the venue would refuse it
    ]
    result = simulate(tiny_scenario, *actions)
    reasons = [(s["kind"], s["name"], s["reason"]) for s in result["not_simulated"]]
    assert reasons == [
        ("SET_PARAM", "market.no_such_thing", "not a governed parameter"),
        ("SET_PARAM", "oracle.band_ppm", "oracle scope: the scenarios vary market parameters only"),
        ("PAUSE_MARKET", "", "not a parameter change"),
        ("SET_PARAM", IM, "outside its bounds [5000, 500000]: the venue refuses it"),
    ]
    assert result["changes"] == [] and result["scenarios"] == {}  # nothing ran
    assert "not simulated: PAUSE_MARKET BTC-PERP: not a parameter change" in render_text(result)


def test_one_market_and_one_change_per_parameter() -> None:
    changes, skipped = split_actions([
        set_param(IM, 30_000), set_param("market.taker_fee_ppm", 600),
        set_param(IM, 40_000), set_param(IM, 30_000, target="ETH-PERP"),
    ])  # fmt: skip
    assert [(c["path"], c["value"]) for c in changes] == [
        ("margin.initial_margin_ppm", 30_000), ("taker_fee_ppm", 600),
    ]  # fmt: skip
    assert [s["reason"] for s in skipped] == [
        "the same parameter twice in one proposal: the venue refuses it",
        "another market: the scenarios' perpetual stands for BTC-PERP",
    ]


def test_a_change_that_breaks_the_market_is_refused_before_anything_runs(
    tiny_scenario: Path,
) -> None:
    lower_above_upper = set_param("market.margin.oi_lower_quote_quantums", 2 * 10**18)
    with pytest.raises(ConfigError, match="the proposal on tiny jumps"):
        simulate(tiny_scenario, lower_above_upper)


def test_the_diff_fits_a_proposal_and_reads_back(tiny_scenario: Path) -> None:
    result = simulate(tiny_scenario, set_param(IM, 30_000))
    text = compact_json(result)
    assert len(text) <= limits.proposal_simulation_length_max
    assert " " not in text.split('"note"')[0]  # compact: no spaces outside strings
    assert json.loads(text) == result
    # Too many scenarios for their detail: only the differences are kept.
    (compared,) = result["scenarios"].values()
    many = {**result, "scenarios": {f"s{i}": compared for i in range(20)}}
    trimmed = json.loads(compact_json(many))
    assert trimmed["detail"] == "delta only"
    assert trimmed["scenarios"]["s7"] == {"delta": compared["delta"], "seeds": [1, 2]}
    with pytest.raises(ValueError, match="even with only the differences"):
        compact_json({**result, "scenarios": {f"s{i}": compared for i in range(200)}})


def test_the_standard_scenarios_need_no_data_folder() -> None:
    for name in STANDARD_SCENARIOS:
        scenario = load_scenario(find_scenario(name))
        assert all(f.is_file() and f.parent == BUNDLED_DIR for f in scenario.prices.files)
