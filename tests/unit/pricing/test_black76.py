"""Black-76 against QuantLib (the peer), against 50-digit mpmath (the truth), against put-call
parity and against finite differences of its own price."""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest
import QuantLib as ql  # noqa: N813
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.pricing import black76

FORWARD = 100.0
DISCOUNT = 0.97
# Deep OTM, OTM, ATM, ITM, deep ITM strikes; one day to two years; 5% to 200% volatility.
STRIKES = (20.0, 60.0, 90.0, 100.0, 110.0, 150.0, 400.0)
EXPIRIES = (1 / 365, 7 / 365, 0.25, 1.0, 2.0)
VOLS = (0.05, 0.3, 0.8, 2.0)
GRID = [
    (is_call, k, t, s)
    for is_call, k, t, s in itertools.product((True, False), STRIKES, EXPIRIES, VOLS)
]


def quantlib(is_call: bool, strike: float, expiry: float, vol: float) -> ql.BlackCalculator:
    kind = ql.Option.Call if is_call else ql.Option.Put
    payoff = ql.PlainVanillaPayoff(kind, strike)
    return ql.BlackCalculator(payoff, FORWARD, vol * expiry**0.5, DISCOUNT)


def exact(is_call: bool, strike: float, expiry: float, vol: float) -> mpmath.mpf:
    with mpmath.workdps(60):
        f, k, d = mpmath.mpf(FORWARD), mpmath.mpf(strike), mpmath.mpf(DISCOUNT)
        sd = mpmath.mpf(vol) * mpmath.sqrt(mpmath.mpf(expiry))
        d1 = mpmath.log(f / k) / sd + sd / 2
        d2 = d1 - sd
        if is_call:
            return d * (f * mpmath.ncdf(d1) - k * mpmath.ncdf(d2))
        return d * (k * mpmath.ncdf(-d2) - f * mpmath.ncdf(-d1))


def ours(is_call: bool, strike: float, expiry: float, vol: float) -> black76.Greeks:
    return black76.greeks(is_call, FORWARD, strike, expiry, vol, DISCOUNT)


def test_price_and_greeks_match_quantlib_on_the_grid() -> None:
    """1e-10 relative to QuantLib wherever QuantLib's own price is within 1e-11 of the 60-digit
    truth; where it is not (its F·N(d1) − K·N(d2) loses digits far from the money), ours must be
    the closer of the two, and within 1e-12 of the truth."""
    matched = corrected = 0
    for is_call, k, t, s in GRID:
        peer, g = quantlib(is_call, k, t, s), ours(is_call, k, t, s)
        truth = exact(is_call, k, t, s)
        if truth < mpmath.mpf("1e-300"):
            continue
        peer_error = float(abs(mpmath.mpf(peer.value()) / truth - 1))
        our_error = float(abs(mpmath.mpf(float(g.price)) / truth - 1))
        if peer_error < 1e-11:
            matched += 1
            assert float(g.price) == pytest.approx(peer.value(), rel=1e-10, abs=0)
            assert float(g.delta) == pytest.approx(peer.deltaForward(), rel=1e-10, abs=1e-300)
            assert float(g.gamma) == pytest.approx(peer.gammaForward(), rel=1e-9, abs=1e-300)
            assert float(g.vega) == pytest.approx(peer.vega(t), rel=1e-9, abs=1e-300)
        else:
            corrected += 1
            assert our_error < min(peer_error, 1e-12)
    assert matched > len(GRID) // 2 and corrected > 0


def test_price_is_exact_to_1e12_even_far_out_of_the_money() -> None:
    worst = 0.0
    for is_call, k, t, s in GRID:
        truth = exact(is_call, k, t, s)
        if truth < mpmath.mpf("1e-300"):
            continue  # below the smallest normal float: nothing to compare
        error = abs(mpmath.mpf(float(ours(is_call, k, t, s).price)) / truth - 1)
        worst = max(worst, float(error))
    assert worst < 1e-12


def test_far_otm_one_day_where_quantlib_loses_digits() -> None:
    """A one-day 40% OTM call: QuantLib's price is off by ~4e-10 relative, ours by ~4e-14."""
    truth = exact(True, 140.0, 1 / 365, 0.9)
    peer = quantlib(True, 140.0, 1 / 365, 0.9).value()
    mine = float(ours(True, 140.0, 1 / 365, 0.9).price)
    assert abs(mine / truth - 1) < 1e-12 < abs(peer / truth - 1)


@settings(max_examples=300, deadline=None)
@given(strike=st.floats(5.0, 2_000.0), expiry=st.floats(1 / 365, 3.0), vol=st.floats(0.01, 3.0))
def test_put_call_parity(strike: float, expiry: float, vol: float) -> None:
    call = float(black76.price(True, FORWARD, strike, expiry, vol, DISCOUNT))
    put = float(black76.price(False, FORWARD, strike, expiry, vol, DISCOUNT))
    assert call - put == pytest.approx(DISCOUNT * (FORWARD - strike), rel=1e-12, abs=1e-11)
    assert call >= 0 and put >= 0


@pytest.mark.parametrize(("is_call", "strike", "expiry", "vol"), GRID[::7])
def test_greeks_are_the_derivatives_of_the_price(
    is_call: bool, strike: float, expiry: float, vol: float
) -> None:
    g = ours(is_call, strike, expiry, vol)
    rate = -np.log(DISCOUNT) / expiry

    def value(f: float = FORWARD, s: float = vol, t: float = expiry) -> float:
        return float(black76.price(is_call, f, strike, t, s, np.exp(-rate * t)))

    h_f, h_s, h_t = 1e-4 * FORWARD, 1e-5, 1e-6 * expiry
    delta = (value(f=FORWARD + h_f) - value(f=FORWARD - h_f)) / (2 * h_f)
    gamma = (value(f=FORWARD + h_f) - 2 * value() + value(f=FORWARD - h_f)) / h_f**2
    vega = (value(s=vol + h_s) - value(s=vol - h_s)) / (2 * h_s)
    theta = -(value(t=expiry + h_t) - value(t=expiry - h_t)) / (2 * h_t)
    scale = FORWARD * DISCOUNT
    assert float(g.delta) == pytest.approx(delta, abs=1e-7)
    assert float(g.gamma) == pytest.approx(gamma, abs=1e-5 / FORWARD)
    assert float(g.vega) == pytest.approx(vega, abs=1e-6 * scale)
    assert float(g.theta) == pytest.approx(theta, abs=1e-5 * scale / expiry)


def test_vectorized_equals_elementwise() -> None:
    is_call, k, t, s = (np.array(column) for column in zip(*GRID, strict=True))
    batch = black76.price(is_call, FORWARD, k, t, s, DISCOUNT)
    single = [float(black76.price(c, FORWARD, kk, tt, ss, DISCOUNT)) for c, kk, tt, ss in GRID]
    assert batch.tolist() == single
