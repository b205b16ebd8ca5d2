"""The vectorized portfolio-margin scan gives every subaccount the margin the core's
deterministic, scalar computation gives it."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from scipy import sparse

from clearhouse.core.scenario_grid import (
    Instrument,
    PortfolioParams,
    portfolio_risk,
)
from clearhouse.pricing import black76, portfolio_scan
from clearhouse.pricing.portfolio_scan import Instruments, ScanResult, scan

FORWARD = 60_000.0


def random_book(seed: int) -> tuple[Instruments, sparse.csr_matrix]:
    """A perpetual and 40 options; 200 subaccounts of 1 to 5 positions."""
    rng = np.random.default_rng(seed)
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
    return instruments, sparse.csr_matrix((sizes, (rows, cols)), shape=(200, n_options + 1))


def test_scan_equals_the_core_computation() -> None:
    instruments, positions = random_book(7)
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


def whole_product(positions: sparse.csr_matrix, instruments: Instruments) -> ScanResult:
    """The scan as one product of the whole matrix (scipy's public ``@``), reduced after it."""
    p = PortfolioParams()
    changes, weights = portfolio_scan.unit_value_changes(
        instruments, forward=FORWARD, realized_vol=0.8, params=p
    )
    greeks = portfolio_scan._unit_greeks(instruments, FORWARD)
    columns = np.column_stack([changes * weights, instruments.is_option.astype(float), *greeks])
    product = np.asarray(positions @ columns)
    n = weights.size
    worst = np.maximum(product[:, :n].max(axis=1), 0.0)
    delta, gamma, vega, theta = (product[:, n + 1 + i] for i in range(4))
    short = p.short_option_contingency * FORWARD * np.maximum(-product[:, n], 0.0)
    maintenance = np.ceil(worst + short + np.abs(delta) * 5.0)
    initial = np.ceil(maintenance * p.initial_multiplier)
    return ScanResult(worst, maintenance, initial, delta, gamma, vega, theta)


def assert_identical(a: ScanResult, b: ScanResult) -> None:
    for field in fields(ScanResult):
        assert np.array_equal(getattr(a, field.name), getattr(b, field.name)), field.name


def test_blocks_and_threads_change_no_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """In blocks of 7 rows on 1, 2 or WORKERS_MAX threads, the scan is bit for bit the one
    block of all 200 rows on one thread, and that is the whole matrix's product at once."""
    instruments, positions = random_book(11)
    positions.data[::3] *= 1e6  # large and small sizes: rounding would show in the sums
    kwargs = {"forward": FORWARD, "realized_vol": 0.8, "confidence": 5.0}
    one_block = scan(positions, instruments, workers=1, **kwargs)
    assert positions.shape[0] <= portfolio_scan.BLOCK_ROWS
    assert_identical(one_block, whole_product(positions, instruments))
    monkeypatch.setattr(portfolio_scan, "BLOCK_ROWS", 7)
    for workers in (1, 2, portfolio_scan.WORKERS_MAX):
        assert_identical(scan(positions, instruments, workers=workers, **kwargs), one_block)


def test_integer_sizes_are_scanned_as_floats() -> None:
    instruments, positions = random_book(3)
    positions.data = np.round(positions.data)
    as_integers = positions.astype(np.int64)
    kwargs = {"forward": FORWARD, "realized_vol": 0.8}
    assert_identical(
        scan(as_integers, instruments, **kwargs), scan(positions, instruments, **kwargs)
    )


def test_positions_and_instruments_must_agree() -> None:
    instruments, positions = random_book(3)
    with pytest.raises(ValueError, match="42 columns of positions, 41 instruments"):
        scan(
            sparse.hstack([positions, positions[:, :1]], format="csr"),
            instruments,
            forward=FORWARD,
            realized_vol=0.8,
        )
