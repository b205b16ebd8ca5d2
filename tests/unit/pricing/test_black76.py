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


# ── Second review (at 8342373): the in-the-money delta's tail, the far wings ───────────────

# In-the-money puts (K > F) at large total volatility, where d1 ≫ 0 and the delta −D·N(−d1)
# is a small tail: ln(K/F) from 0.01 to 2, three months to four years, 100% to 1000%.
ITM_PUT_TAIL = [
    (FORWARD * float(np.exp(m)), t, s)
    for m, t, s in itertools.product(
        (0.01, 0.1, 0.5, 1.0, 2.0), (0.25, 1.0, 2.0, 4.0), (1.0, 2.0, 3.0, 5.0, 8.0, 10.0)
    )
]


def exact_delta(is_call: bool, strike: float, expiry: float, vol: float) -> mpmath.mpf:
    with mpmath.workdps(60):
        f, k, d = mpmath.mpf(FORWARD), mpmath.mpf(strike), mpmath.mpf(DISCOUNT)
        sd = mpmath.mpf(vol) * mpmath.sqrt(mpmath.mpf(expiry))
        d1 = mpmath.log(f / k) / sd + sd / 2
        return d * mpmath.ncdf(d1) if is_call else -d * mpmath.ncdf(-d1)


def test_in_the_money_put_delta_keeps_its_digits_in_the_tail() -> None:
    """The in-the-money side's N(θ·d1) was taken as 1 − N(ω·d1), the complement of the
    out-of-the-money side's: where it is a small tail (θ·d1 < 0) the digits cancelled, e.g. at
    K = F·e^0.1, four years, 1000%: −1.1e-14 for a delta of −7.8e-24 (1.4e9 relative). It is
    now computed directly: 1e-10 relative to 60-digit mpmath wherever it is a normal float."""
    worst, where = 0.0, None
    assert all(strike > FORWARD for strike, _, _ in ITM_PUT_TAIL)  # the put is in the money
    for strike, expiry, vol in ITM_PUT_TAIL:
        truth = exact_delta(False, strike, expiry, vol)
        if abs(truth) < mpmath.mpf("1e-300"):
            continue
        error = float(abs(mpmath.mpf(float(ours(False, strike, expiry, vol).delta)) / truth - 1))
        if error > worst:
            worst, where = error, (strike, expiry, vol)
    assert worst < 1e-10, (worst, where)
    batch = black76.greeks(False, FORWARD, *map(np.array, zip(*ITM_PUT_TAIL, strict=True)),
                           DISCOUNT).delta  # fmt: skip
    single = [float(ours(False, k, t, s).delta) for k, t, s in ITM_PUT_TAIL]
    assert batch.tolist() == single


# Forward and strike so far apart that F/K is not a float (|ln F/K| > 1419): F/K underflows
# to 0, x = ln(F/K) = −∞; the call is out of the money and worth 0.
FAR_WINGS = ((1e-310, 1e308), (5e-324, 1e300), (1e-320, 1e300))


def test_a_far_out_of_the_money_call_is_worth_zero_not_nan() -> None:
    """The intrinsic term in_the_money·θ·(e^{x/2} − e^{−x/2}) was 0·∞ = NaN on the
    out-of-the-money side: a call struck 1e618 times the forward priced at NaN."""
    with np.errstate(all="ignore"):  # ln(0), e^{+∞}: the wing's own floating-point events
        for forward, strike in FAR_WINGS:
            assert abs(np.log(forward) - np.log(strike)) > 1419
            assert float(black76.price(True, forward, strike, 1.0, 0.5, DISCOUNT)) == 0.0
            assert float(black76.greeks(True, forward, strike, 1.0, 0.5, DISCOUNT).price) == 0.0
        forwards, strikes = (np.array(side) for side in zip(*FAR_WINGS, strict=True))
        prices = black76.price(True, forwards, strikes, 1.0, 0.5, DISCOUNT)
    assert prices.tolist() == [0.0] * len(FAR_WINGS)


def test_a_far_out_of_the_money_put_is_worth_zero_not_nan() -> None:
    with np.errstate(all="ignore"):
        for strike, forward in FAR_WINGS:  # the mirror: F ≫ K
            assert float(black76.price(False, forward, strike, 1.0, 0.5, DISCOUNT)) == 0.0


def test_a_far_out_of_the_money_calls_greeks_are_zero_not_nan() -> None:
    with np.errstate(all="ignore"):
        for forward, strike in FAR_WINGS:
            g = black76.greeks(True, forward, strike, 1.0, 0.5, DISCOUNT)
            assert [float(g.delta), float(g.gamma), float(g.vega), float(g.theta)] == [0.0] * 4
