"""Portfolio margin (SPEC §6, portfolio mode): revalue a portfolio of options and linear
positions on one underlying under a grid of scenarios, SPAN / Deribit / Lyra v2 style.

Scenarios: spot moves of −15 … +15% in 5% steps, each with volatility up, unchanged and down
(up = 1 + 0.6·(30/DTE)^p, down = 1 − 0.3·(30/DTE)^p, p = 0.3 below 30 days, 0.13 above), the
range widened when realized volatility is high (range = max(base, z·σ·√horizon)); plus extreme
moves of ±25% and ±33% at unchanged volatility, whose loss counts at 35%.

MM = worst scenario loss + a short-option contingency (a fraction of the underlying per net
short option) + an oracle-confidence contingency (the confidence interval times the net
delta-equivalent size); IM = 1.25 × MM. Every requirement rounds up, against the account.

The grid and the revaluation are scalar and deterministic (``option_math``): the engine can
replay them bit for bit. ``clearhouse.pricing.portfolio_scan`` runs the same grid vectorized
over millions of subaccounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil, sqrt

from clearhouse.core import option_math

MOVES_PPM = (-150_000, -100_000, -50_000, 0, 50_000, 100_000, 150_000)
EXTREME_MOVES_PPM = (-330_000, -250_000, 250_000, 330_000)
EXTREME_WEIGHT = 0.35
MAX_DOWN_MOVE = 0.95
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, slots=True)
class PortfolioParams:
    base_range: float = 0.15  # the largest ordinary move
    range_z: float = 3.0  # ... widened to z·σ·√horizon when realized volatility is high
    range_horizon_years: float = 1.0 / 365.0
    vol_up: float = 0.6
    vol_down: float = 0.3
    short_option_contingency: float = 0.01  # × underlying price per net short option
    initial_multiplier: float = 1.25


@dataclass(frozen=True, slots=True)
class Scenario:
    move: float  # relative spot (forward) move
    vol_state: int  # +1 up, 0 unchanged, −1 down
    weight: float  # 1, or EXTREME_WEIGHT


@dataclass(frozen=True, slots=True)
class Instrument:
    """A position's instrument: a linear future/perpetual (``strike`` None) or an option."""

    expiry_years: float  # time to expiry (0 for a perpetual)
    strike: float | None = None
    is_call: bool = True
    volatility: float = 0.0  # the surface's implied volatility for this option now


def scenarios(params: PortfolioParams, realized_vol: float) -> list[Scenario]:
    """The grid, widened by realized volatility; extreme moves scale with it too."""
    widest = max(
        params.base_range, params.range_z * realized_vol * sqrt(params.range_horizon_years)
    )
    scale = widest / params.base_range
    ordinary = [(move, state) for move in MOVES_PPM for state in (1, 0, -1)]
    grid = [Scenario(_bounded(move * scale), state, 1.0) for move, state in ordinary]
    grid += [Scenario(_bounded(move * scale), 0, EXTREME_WEIGHT) for move in EXTREME_MOVES_PPM]
    return grid


def _bounded(move_ppm: float) -> float:
    """A widened down-move stops at −95%: a price never reaches zero in a scenario."""
    return max(move_ppm / 1e6, -MAX_DOWN_MOVE)


def vol_multiplier(params: PortfolioParams, expiry_years: float, vol_state: int) -> float:
    """1 + 0.6·(30/DTE)^p up, 1 − 0.3·(30/DTE)^p down (never below 5% of the volatility)."""
    if vol_state == 0:
        return 1.0
    dte = max(expiry_years * DAYS_PER_YEAR, 1.0)
    power = 0.3 if dte < 30 else 0.13
    shape = option_math.exp(power * option_math.log(30.0 / dte))
    if vol_state > 0:
        return 1.0 + params.vol_up * shape
    return max(1.0 - params.vol_down * shape, 0.05)


def unit_value(instrument: Instrument, forward: float, vol_factor: float) -> float:
    """Value of one unit at this forward: the forward itself for a linear instrument (its PnL is
    the change), the Black-76 price for an option (undiscounted: margin is over hours)."""
    if instrument.strike is None:
        return forward
    return option_math.price(
        is_call=instrument.is_call, forward=forward, strike=instrument.strike,
        expiry_years=instrument.expiry_years, volatility=instrument.volatility * vol_factor,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PortfolioRisk:
    worst_loss: float
    short_option_contingency: float
    confidence_contingency: float
    maintenance: int  # quote units, rounded up
    initial: int


def portfolio_risk(
    positions: Sequence[tuple[Instrument, float]], *, forward: float, realized_vol: float,
    confidence: float = 0.0, params: PortfolioParams | None = None,
) -> PortfolioRisk:  # fmt: skip
    """MM and IM of (instrument, signed size) positions on one underlying at ``forward``."""
    p = params or PortfolioParams()
    now = [unit_value(i, forward, 1.0) for i, _ in positions]
    worst = 0.0
    for scenario in scenarios(p, realized_vol):
        shocked = forward * (1.0 + scenario.move)
        loss = 0.0
        for (instrument, size), value in zip(positions, now, strict=True):
            factor = vol_multiplier(p, instrument.expiry_years, scenario.vol_state)
            loss += size * (value - unit_value(instrument, shocked, factor))
        worst = max(worst, loss * scenario.weight)
    net_short = max(0.0, -sum(s for i, s in positions if i.strike is not None))
    short_contingency = p.short_option_contingency * forward * net_short
    delta = sum(size * _delta(instrument, forward) for instrument, size in positions)
    confidence_contingency = abs(delta) * confidence
    maintenance = ceil(worst + short_contingency + confidence_contingency)
    return PortfolioRisk(
        worst, short_contingency, confidence_contingency, maintenance,
        ceil(maintenance * p.initial_multiplier),
    )  # fmt: skip


def _delta(instrument: Instrument, forward: float) -> float:
    """Forward delta by a central difference of the deterministic price (1 for linear)."""
    if instrument.strike is None:
        return 1.0
    bump = forward * 1e-4
    up = unit_value(instrument, forward + bump, 1.0)
    down = unit_value(instrument, forward - bump, 1.0)
    return (up - down) / (2 * bump)
