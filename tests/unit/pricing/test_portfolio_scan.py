"""The vectorized portfolio-margin scan gives every subaccount the margin the core's
deterministic, scalar computation gives it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from clearhouse.core.scenario_grid import (
    Instrument,
    portfolio_risk,
)
from clearhouse.pricing import black76
from clearhouse.pricing.portfolio_scan import Instruments, scan

FORWARD = 60_000.0


def test_scan_equals_the_core_computation() -> None:
    rng = np.random.default_rng(7)
    n_options = 40
    is_option = np.r_[np.zeros(1, bool), np.ones(n_options, bool)]  # column 0: the perpetual
    instruments = Instruments(
        is_option=is_option, is_call=rng.random(n_options + 1) < 0.5,
        strike=np.r_[FORWARD, FORWARD * np.exp(rng.uniform(-0.5, 0.5, n_options))],
        expiry_years=np.r_[0.0, rng.choice([1 / 365, 7 / 365, 30 / 365, 0.5], n_options)],
        volatility=np.r_[0.0, rng.uniform(0.3, 1.2, n_options)],
    )  # fmt: skip
    rows, cols, sizes = [], [], []
    for row in range(200):
        for col in rng.choice(n_options + 1, size=rng.integers(1, 6), replace=False):
            rows.append(row)
            cols.append(int(col))
            sizes.append(float(rng.uniform(-3, 3)))
    positions = sparse.csr_matrix((sizes, (rows, cols)), shape=(200, n_options + 1))
    result = scan(positions, instruments, forward=FORWARD, realized_vol=0.8, confidence=5.0)
    for row in range(200):
        legs = []
        for col, size in zip(positions[row].indices, positions[row].data, strict=True):
            if col == 0:
                legs.append((Instrument(0.0), float(size)))
            else:
                legs.append((Instrument(
                    float(instruments.expiry_years[col]), float(instruments.strike[col]),
                    bool(instruments.is_call[col]), float(instruments.volatility[col]),
                ), float(size)))  # fmt: skip
        core = portfolio_risk(legs, forward=FORWARD, realized_vol=0.8, confidence=5.0)
        assert abs(core.worst_loss - result.worst_loss[row]) <= 1e-6 * max(core.worst_loss, 1)
        assert abs(core.maintenance - result.maintenance[row]) <= 1  # a ceil on either side


def test_greeks_per_subaccount_are_the_sums_of_their_positions() -> None:
    is_option = np.array([False, True, True])
    instruments = Instruments(
        is_option=is_option, is_call=np.array([True, True, False]),
        strike=np.array([FORWARD, 65_000.0, 55_000.0]), expiry_years=np.array([0.0, 0.1, 0.1]),
        volatility=np.array([0.0, 0.6, 0.7]),
    )  # fmt: skip
    positions = sparse.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 2.0, -1.0], [-1.0, 1.0, 0.0]]))
    result = scan(positions, instruments, forward=FORWARD, realized_vol=0.5)
    call = black76.greeks(True, FORWARD, 65_000.0, 0.1, 0.6)
    put = black76.greeks(False, FORWARD, 55_000.0, 0.1, 0.7)
    assert result.delta[0] == 1.0 and result.gamma[0] == 0.0 and result.vega[0] == 0.0
    assert result.delta[1] == pytest.approx(2 * float(call.delta) - float(put.delta))
    assert result.gamma[1] == pytest.approx(2 * float(call.gamma) - float(put.gamma))
    assert result.vega[2] == pytest.approx(float(call.vega))
    assert result.theta[2] == pytest.approx(float(call.theta))
