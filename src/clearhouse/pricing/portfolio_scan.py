"""Portfolio margin for every subaccount at once (SPEC §6): the same grid as
``clearhouse.core.margin``, vectorized.

Each distinct instrument is priced once per scenario (a few thousand options × 25 scenarios),
then every subaccount's scenario losses are one sparse product: positions (subaccounts ×
instruments) @ value changes (instruments × scenarios). The worst weighted loss, the short-option
and confidence contingencies give MM; IM = 1.25 × MM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from clearhouse.core.scenario_grid import (
    PortfolioParams,
    scenarios,
    vol_multiplier,
)
from clearhouse.pricing import black76

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Instruments:
    """Columns of the instruments on one underlying; ``is_option`` False: a linear future."""

    is_option: npt.NDArray[np.bool_]
    is_call: npt.NDArray[np.bool_]
    strike: Array
    expiry_years: Array
    volatility: Array


@dataclass(frozen=True, slots=True)
class ScanResult:
    worst_loss: Array
    maintenance: Array
    initial: Array
    delta: Array  # per subaccount: Σ size × ∂V/∂F (a linear position counts 1 per unit)
    gamma: Array
    vega: Array
    theta: Array


def unit_value_changes(
    instruments: Instruments, *, forward: float, realized_vol: float, params: PortfolioParams
) -> tuple[Array, Array]:
    """(value now − value in each scenario, per unit) as instruments × scenarios, and the
    scenarios' weights."""
    grid = scenarios(params, realized_vol)
    now = _values(instruments, forward, np.ones_like(instruments.volatility))
    changes = np.empty((now.size, len(grid)))
    multipliers = {
        state: np.array([vol_multiplier(params, t, state) for t in instruments.expiry_years])
        for state in (-1, 0, 1)
    }
    for column, scenario in enumerate(grid):
        shocked = forward * (1.0 + scenario.move)
        changes[:, column] = now - _values(instruments, shocked, multipliers[scenario.vol_state])
    return changes, np.array([s.weight for s in grid])


def scan(
    positions: sparse.csr_matrix, instruments: Instruments, *, forward: float,
    realized_vol: float, confidence: float = 0.0, params: PortfolioParams | None = None,
) -> ScanResult:  # fmt: skip
    """MM and IM (quote units, rounded up) of every row of ``positions`` (signed sizes)."""
    p = params or PortfolioParams()
    changes, weights = unit_value_changes(
        instruments, forward=forward, realized_vol=realized_vol, params=p
    )
    greeks = _unit_greeks(instruments, forward)
    # One sparse product gives every weighted scenario loss, the net option count and the
    # Greeks of every subaccount: the positions are read once.
    columns = np.column_stack([changes * weights, instruments.is_option.astype(float), *greeks])
    product = np.asarray(positions @ columns)
    n = weights.size
    worst = np.maximum(product[:, :n].max(axis=1), 0.0)
    net_options = product[:, n]
    delta, gamma, vega, theta = (product[:, n + 1 + i] for i in range(4))
    short_contingency = p.short_option_contingency * forward * np.maximum(-net_options, 0.0)
    confidence_contingency = np.abs(delta) * confidence
    maintenance = np.ceil(worst + short_contingency + confidence_contingency)
    initial = np.ceil(maintenance * p.initial_multiplier)
    return ScanResult(worst, maintenance, initial, delta, gamma, vega, theta)


def _unit_greeks(instruments: Instruments, forward: float) -> tuple[Array, ...]:
    """Delta, gamma, vega, theta of one unit of each instrument (linear: 1, 0, 0, 0)."""
    options = instruments.is_option
    delta, gamma, vega, theta = (np.zeros(options.shape) for _ in range(4))
    delta[~options] = 1.0
    g = black76.greeks(
        instruments.is_call[options], forward, instruments.strike[options],
        instruments.expiry_years[options], instruments.volatility[options],
    )  # fmt: skip
    delta[options], gamma[options], vega[options], theta[options] = (
        g.delta,
        g.gamma,
        g.vega,
        g.theta,
    )
    return delta, gamma, vega, theta


def _values(instruments: Instruments, forward: float, vol_factor: Array) -> Array:
    """Per unit: the forward for a linear instrument, the Black-76 price for an option."""
    options = instruments.is_option
    values = np.full(options.shape, forward)
    values[options] = black76.price(
        instruments.is_call[options], forward, instruments.strike[options],
        instruments.expiry_years[options], (instruments.volatility * vol_factor)[options],
    )  # fmt: skip
    return values
