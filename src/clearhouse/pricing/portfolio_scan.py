"""Portfolio margin for every subaccount at once (SPEC §6): the same grid as
``clearhouse.core.margin``, vectorized.

Each distinct instrument is priced once per scenario (a few thousand options × 25 scenarios),
then every subaccount's scenario losses are one sparse product: positions (subaccounts ×
instruments) @ value changes (instruments × scenarios). The worst weighted loss, the short-option
and confidence contingencies give MM; IM = 1.25 × MM.

The product runs in blocks of ``BLOCK_ROWS`` subaccounts, each reduced to its margins while its
part of the product is still in cache (the whole product, 1M × 30, would be 240 MB written and
read back), on up to ``WORKERS_MAX`` threads: scipy's sparse kernel and numpy's ufuncs release
the GIL. A row's result depends on that row alone, so it is bit for bit the same whatever the
block size or the number of threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse import _sparsetools

from clearhouse.core.scenario_grid import (
    PortfolioParams,
    scenarios,
    vol_multiplier,
)
from clearhouse.pricing import black76

Array = npt.NDArray[np.float64]

BLOCK_ROWS = 16_384  # subaccounts per block: its product (× 30 columns, 3.9 MB) stays in cache
# Threads: not a consensus limit (the scan is not replayed), a bound on what one call may take.
WORKERS_MAX = 8
WORKERS = 2  # the default: the 2 cores §15's numbers are measured on


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
    # The volatility multiplier depends on the expiry alone: once per distinct expiry.
    expiries, expiry_of = np.unique(instruments.expiry_years, return_inverse=True)
    multipliers = {
        state: np.array([vol_multiplier(params, float(t), state) for t in expiries])[expiry_of]
        for state in (-1, 0, 1)
    }
    for column, scenario in enumerate(grid):
        shocked = forward * (1.0 + scenario.move)
        changes[:, column] = now - _values(instruments, shocked, multipliers[scenario.vol_state])
    return changes, np.array([s.weight for s in grid])


def scan(
    positions: sparse.csr_matrix, instruments: Instruments, *, forward: float,
    realized_vol: float, confidence: float = 0.0, params: PortfolioParams | None = None,
    workers: int = WORKERS,
) -> ScanResult:  # fmt: skip
    """MM and IM (quote units, rounded up) of every row of ``positions`` (signed sizes)."""
    assert 1 <= workers <= WORKERS_MAX
    p = params or PortfolioParams()
    changes, weights = unit_value_changes(
        instruments, forward=forward, realized_vol=realized_vol, params=p
    )
    n = weights.size
    # One sparse product gives every weighted scenario loss, the net option count and the
    # Greeks of every subaccount: the positions are read once.
    columns = np.empty((changes.shape[0], n + 5))
    np.multiply(changes, weights, out=columns[:, :n])
    columns[:, n] = instruments.is_option
    for i, greek in enumerate(_unit_greeks(instruments, forward)):
        columns[:, n + 1 + i] = greek
    rows, n_instruments = positions.shape
    if n_instruments != columns.shape[0]:  # the kernel below does not check (``@`` does)
        raise ValueError(f"{n_instruments} columns of positions, {columns.shape[0]} instruments")
    # The kernel below casts what is not of these types, block after block: cast once.
    indptr = positions.indptr
    indices = positions.indices.astype(indptr.dtype, copy=False)
    sizes = positions.data.astype(np.float64, copy=False)
    out = np.empty((7, rows))  # worst, maintenance, initial, delta, gamma, vega, theta

    def block(start: int) -> None:
        stop = min(start + BLOCK_ROWS, rows)
        # positions[start:stop] @ columns by scipy's kernel behind ``csr @ dense`` (Y += A·X),
        # reading the rows in place where scipy's slicing would copy them; the tests check
        # that it equals ``positions @ columns``.
        product = np.zeros((stop - start, columns.shape[1]))
        first = indptr[start]
        _sparsetools.csr_matvecs(
            stop - start, n_instruments, columns.shape[1], indptr[start : stop + 1] - first,
            indices[first:], sizes[first:], columns.ravel(), product.ravel(),
        )  # fmt: skip
        worst, maintenance, initial, *greeks = out[:, start:stop]
        # The worst loss column by column: numpy's max along each row of 25 costs twice as much.
        np.maximum(product[:, 0], 0.0, out=worst)
        for column in range(1, n):
            np.maximum(worst, product[:, column], out=worst)
        for i, greek in enumerate(greeks):
            greek[:] = product[:, n + 1 + i]
        short = np.maximum(-product[:, n], 0.0)
        short *= p.short_option_contingency * forward
        np.add(worst, short, out=maintenance)
        maintenance += np.abs(greeks[0]) * confidence
        np.ceil(maintenance, out=maintenance)
        np.ceil(maintenance * p.initial_multiplier, out=initial)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(block, range(0, rows, BLOCK_ROWS)))
    return ScanResult(*out)


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
