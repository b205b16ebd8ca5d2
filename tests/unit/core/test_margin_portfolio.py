"""Portfolio margin's properties (SPEC §6, issue: hypothesis tests): MM covers every scenario's
loss, a hedge never costs more than its parts, a call spread never needs more than it can lose,
and margin grows with size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.scenario_grid import (
    Instrument,
    PortfolioParams,
    portfolio_risk,
    scenarios,
    vol_multiplier,
)
from clearhouse.pricing import black76

FORWARD = 60_000.0
PERP = Instrument(expiry_years=0.0)
EXPIRY = st.sampled_from([1 / 365, 7 / 365, 30 / 365, 90 / 365, 1.0])
VOL = st.floats(0.2, 1.5)
STRIKE = st.floats(30_000.0, 100_000.0)


@st.composite
def option(draw: st.DrawFn) -> Instrument:
    return Instrument(draw(EXPIRY), draw(STRIKE), draw(st.booleans()), draw(VOL))


@st.composite
def portfolio(draw: st.DrawFn) -> list[tuple[Instrument, float]]:
    legs = draw(st.lists(st.one_of(option(), st.just(PERP)), min_size=1, max_size=5))
    sizes = draw(st.lists(st.floats(-5.0, 5.0).filter(lambda x: abs(x) > 1e-3),
                          min_size=len(legs), max_size=len(legs)))  # fmt: skip
    return list(zip(legs, sizes, strict=True))


def scenario_losses(positions: list[tuple[Instrument, float]], realized_vol: float) -> list[float]:
    """Every scenario's weighted loss, recomputed with the vectorized pricer (a second path)."""
    params = PortfolioParams()
    losses = []
    for scenario in scenarios(params, realized_vol):
        shocked = FORWARD * (1 + scenario.move)
        loss = 0.0
        for instrument, size in positions:
            if instrument.strike is None:
                loss += size * (FORWARD - shocked)
                continue
            factor = vol_multiplier(params, instrument.expiry_years, scenario.vol_state)
            option = (instrument.is_call, instrument.strike, instrument.expiry_years)
            now = black76.price(option[0], FORWARD, *option[1:], instrument.volatility)
            then = black76.price(option[0], shocked, *option[1:], instrument.volatility * factor)
            loss += size * float(now - then)
        losses.append(loss * scenario.weight)
    return losses


@settings(max_examples=150, deadline=None)
@given(positions=portfolio(), realized_vol=st.floats(0.1, 3.0))
def test_maintenance_covers_the_loss_of_every_scenario(
    positions: list[tuple[Instrument, float]], realized_vol: float
) -> None:
    risk = portfolio_risk(positions, forward=FORWARD, realized_vol=realized_vol)
    assert risk.maintenance >= max(scenario_losses(positions, realized_vol)) - 1e-6
    assert risk.initial >= risk.maintenance * 1.25 - 1


@settings(max_examples=150, deadline=None)
@given(expiry=EXPIRY, vol=VOL, strike=st.floats(40_000.0, 60_000.0), size=st.floats(0.1, 10.0))
def test_a_protective_put_never_costs_more_than_its_parts(
    expiry: float, vol: float, strike: float, size: float
) -> None:
    put = Instrument(expiry, strike, False, vol)
    alone = portfolio_risk([(PERP, size)], forward=FORWARD, realized_vol=0.5)
    hedge = portfolio_risk([(put, size)], forward=FORWARD, realized_vol=0.5)
    both = portfolio_risk([(PERP, size), (put, size)], forward=FORWARD, realized_vol=0.5)
    assert both.maintenance <= alone.maintenance + hedge.maintenance


@settings(max_examples=150, deadline=None)
@given(expiry=EXPIRY, vol=VOL, low=st.floats(40_000.0, 80_000.0), width=st.floats(500.0, 20_000.0))
def test_a_call_spread_needs_no_more_than_its_maximum_loss(
    expiry: float, vol: float, low: float, width: float
) -> None:
    long_call, short_call = (
        Instrument(expiry, low, True, vol),
        Instrument(expiry, low + width, True, vol),
    )
    risk = portfolio_risk([(long_call, 1.0), (short_call, -1.0)], forward=FORWARD, realized_vol=0.5)
    value = float(black76.price(True, FORWARD, low, expiry, vol)
                  - black76.price(True, FORWARD, low + width, expiry, vol))  # fmt: skip
    assert risk.short_option_contingency == 0.0
    assert risk.maintenance <= np.ceil(min(value, width)) + 1


@settings(max_examples=100, deadline=None)
@given(positions=portfolio(), scale=st.floats(1.0, 10.0))
def test_margin_grows_with_size(positions: list[tuple[Instrument, float]], scale: float) -> None:
    small = portfolio_risk(positions, forward=FORWARD, realized_vol=0.5)
    large = portfolio_risk([(i, s * scale) for i, s in positions], forward=FORWARD,
                           realized_vol=0.5)  # fmt: skip
    assert large.maintenance >= small.maintenance - 1


def test_the_grid_widens_with_realized_volatility() -> None:
    calm, wild = scenarios(PortfolioParams(), 0.5), scenarios(PortfolioParams(), 8.0)
    assert max(s.move for s in calm if s.weight == 1.0) == pytest.approx(0.15)
    assert max(s.move for s in wild if s.weight == 1.0) > 0.15
    assert len(calm) == 7 * 3 + 4


def test_short_options_carry_a_contingency() -> None:
    short_put = Instrument(30 / 365, 50_000.0, False, 0.6)
    risk = portfolio_risk([(short_put, -2.0)], forward=FORWARD, realized_vol=0.5)
    assert risk.short_option_contingency == pytest.approx(0.01 * FORWARD * 2)
