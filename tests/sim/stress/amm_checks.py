"""What every path with the options AMM must show, and scenarios cut short for tests (shared
by ``test_options_amm.py`` and ``tests/data/test_stress_options.py``)."""

from __future__ import annotations

import dataclasses

from clearhouse.sim.solvency import PPM
from clearhouse.sim.stress.amm_watch import OptionsResult
from clearhouse.sim.stress.run import PathResult
from clearhouse.sim.stress.scenario import Scenario, with_options


def shortened(scenario: Scenario, *, hours: float, warmup_hours: float = 0.5) -> Scenario:
    settings = dataclasses.replace(scenario.settings, hours=hours, warmup_hours=warmup_hours)
    return with_options(dataclasses.replace(scenario, settings=settings))


def assert_within_its_limits(result: PathResult) -> OptionsResult:
    """What every path with the options AMM must show (docs/STRESS.md, "Options and the
    options AMM"): the watch's definitions, checked every block."""
    amm = result.options
    assert amm is not None
    assert amm.violations == {"cap": 0, "quote": 0, "hedge": 0}, amm.violation_notes
    assert not amm.liquidated and amm.liquidatable_blocks == 0
    assert amm.blocks > 0 and amm.fresh_blocks >= amm.blocks - 2  # a surface all along
    assert amm.listed_max >= 20 and amm.quoted_share_min_ppm == PPM  # every option quoted
    assert amm.fills > 0 and amm.premium > 0 and amm.requotes > 0
    assert 0 < amm.nav_low <= amm.nav_start and amm.nav_end > 0
    assert amm.drawdown == 0 or amm.drawdown_ppm > 0
    return amm
