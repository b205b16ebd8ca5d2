"""The core's scalar Black-76 Greeks (``option_math.greeks``) against the vectorized pricer
(``pricing.black76.greeks``): the same numbers from deep out of the money to deep in it, one day
to two years, 5% to 200% volatility; deltas of a call and a put differ by one; the far wings stay
finite.

Units. The core returns undiscounted (delta, gamma, vega per 1.00 of volatility, theta per year).
``black76.greeks`` with ``discount=1.0`` uses the same conventions: delta = ∂V/∂F, gamma =
∂²V/∂F², vega = ∂V/∂σ (per 1.00 of σ) and theta = ∂V/∂t per year of calendar time, whose
``rate·value`` term is zero at discount 1. No conversion factor is needed: the Greeks are
compared one for one, and the finite-difference test below pins the units independently.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clearhouse.core import option_math
from clearhouse.pricing import black76

FORWARD = 100.0
# ln(F/K) from deep in the money for a call (+3) to deep out of it (−3).
LOG_MONEYNESS = (-3.0, -1.0, -0.3, -0.05, 0.0, 0.05, 0.3, 1.0, 3.0)
EXPIRIES = (1 / 365, 7 / 365, 30 / 365, 0.25, 1.0, 2.0)
VOLS = (0.05, 0.2, 0.6, 1.0, 2.0)
GRID = list(itertools.product((True, False), LOG_MONEYNESS, EXPIRIES, VOLS))
NAMES = ("delta", "gamma", "vega", "theta")


def core(
    is_call: bool, strike: float, expiry: float, vol: float, forward: float = FORWARD
) -> tuple[float, float, float, float]:
    return option_math.greeks(
        is_call=is_call, forward=forward, strike=strike, expiry_years=expiry, volatility=vol
    )


def vectorized(
    is_call: bool, strike: float, expiry: float, vol: float, forward: float = FORWARD
) -> tuple[float, float, float, float]:
    found = black76.greeks(is_call, forward, strike, expiry, vol, 1.0)
    return float(found.delta), float(found.gamma), float(found.vega), float(found.theta)


def test_the_grid_reaches_both_wings() -> None:
    d1s = [x / (v * math.sqrt(t)) + 0.5 * v * math.sqrt(t) for _, x, t, v in GRID]
    assert min(d1s) < -38 and max(d1s) > 38  # past the core's clamp, both sides
    assert any(abs(d) < 0.1 for d in d1s)


@pytest.mark.parametrize(("is_call", "x", "expiry", "vol"), GRID)
def test_greeks_agree_with_the_vectorized_pricer_on_the_grid(
    is_call: bool, x: float, expiry: float, vol: float
) -> None:
    strike = FORWARD * math.exp(-x)
    mine, theirs = core(is_call, strike, expiry, vol), vectorized(is_call, strike, expiry, vol)
    for name, a, b in zip(NAMES, mine, theirs, strict=True):
        assert math.isfinite(a), name
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), name


@settings(max_examples=400, deadline=None)
@given(
    is_call=st.booleans(), x=st.floats(-4.0, 4.0), expiry=st.floats(1 / 365, 2.0),
    vol=st.floats(0.05, 2.0), forward=st.sampled_from([1.0, 100.0, 60_000.0]),
)  # fmt: skip
def test_greeks_agree_with_the_vectorized_pricer(
    is_call: bool, x: float, expiry: float, vol: float, forward: float
) -> None:
    strike = forward * math.exp(-x)
    mine = core(is_call, strike, expiry, vol, forward)
    theirs = vectorized(is_call, strike, expiry, vol, forward)
    # Absolute slack in each Greek's own units: 1e-12 of a unit delta, of F (vega, theta), 1/F.
    floors = (1e-12, 1e-12 / forward, 1e-12 * forward, 1e-12 * forward)
    for name, a, b, floor in zip(NAMES, mine, theirs, floors, strict=True):
        assert a == pytest.approx(b, rel=1e-9, abs=floor), name


@settings(max_examples=400, deadline=None)
@given(x=st.floats(-5.0, 5.0), expiry=st.floats(1 / 365, 2.0), vol=st.floats(0.05, 2.0))
def test_call_delta_minus_put_delta_is_one(x: float, expiry: float, vol: float) -> None:
    strike = FORWARD * math.exp(-x)
    call_greeks, put_greeks = core(True, strike, expiry, vol), core(False, strike, expiry, vol)
    assert call_greeks[0] - put_greeks[0] == pytest.approx(1.0, abs=1e-15)
    assert 0.0 <= call_greeks[0] <= 1.0
    assert -1.0 <= put_greeks[0] <= 0.0
    assert call_greeks[1:] == put_greeks[1:]  # gamma, vega, theta: one formula for both sides


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize(
    ("x", "expiry", "vol"),
    [
        (3.0, 1 / 365, 0.05),  # d1 ≈ +1100
        (-3.0, 1 / 365, 0.05),  # d1 ≈ −1100
        (0.5, 1 / 365, 0.01),  # d1 ≈ +955
        (-700.0, 1.0, 1.0),  # strike e^700 times the forward
        (700.0, 1.0, 1.0),
        (0.0, 2.0, 120.0),  # d1 = σ√T/2 ≈ 85 at the money
        (1.0, 1e-9, 0.5),  # a moment before expiry
    ],
)
def test_deep_wings_are_finite(is_call: bool, x: float, expiry: float, vol: float) -> None:
    strike = FORWARD * math.exp(-x)
    total = vol * math.sqrt(expiry)
    assert abs(x / total + 0.5 * total) > 40
    delta, gamma, vega, theta = core(is_call, strike, expiry, vol)
    assert all(math.isfinite(g) for g in (delta, gamma, vega, theta))
    assert gamma >= 0.0 and vega >= 0.0 and theta <= 0.0
    # So far out that delta is the intrinsic's: 0 or ±1.
    in_the_money = (x > 0) == is_call
    if x == 0.0:  # the at-the-money wing: d1 > 0, the call is "in" and the put "out"
        in_the_money = is_call
    expected = (1.0 if is_call else -1.0) if in_the_money else 0.0
    assert delta == pytest.approx(expected, abs=1e-15)


@settings(max_examples=150, deadline=None)
@given(
    is_call=st.booleans(), x=st.floats(-1.0, 1.0), expiry=st.floats(7 / 365, 2.0),
    vol=st.floats(0.1, 1.5),
)  # fmt: skip
def test_units_match_finite_differences_of_the_core_price(
    is_call: bool, x: float, expiry: float, vol: float
) -> None:
    """delta = ∂V/∂F, gamma = ∂²V/∂F², vega = ∂V/∂σ per 1.00 of σ, theta = −∂V/∂T per year."""
    total = vol * math.sqrt(expiry)
    assume(abs(x / total) < 6)  # the wings' Greeks are ~0: differences there measure rounding
    strike = FORWARD * math.exp(-x)

    def value(forward: float = FORWARD, t: float = expiry, sigma: float = vol) -> float:
        return option_math.price(is_call=is_call, forward=forward, strike=strike,
                                 expiry_years=t, volatility=sigma)  # fmt: skip

    delta, gamma, vega, theta = core(is_call, strike, expiry, vol)
    scale = FORWARD * total  # the price's natural width in F
    h = 1e-4 * scale
    assert delta == pytest.approx((value(FORWARD + h) - value(FORWARD - h)) / (2 * h),
                                  rel=1e-6, abs=1e-9)  # fmt: skip
    h = 1e-2 * scale
    second = (value(FORWARD + h) - 2 * value() + value(FORWARD - h)) / (h * h)
    assert gamma == pytest.approx(second, rel=1e-3, abs=1e-9)
    dv = 1e-5
    assert vega == pytest.approx((value(sigma=vol + dv) - value(sigma=vol - dv)) / (2 * dv),
                                 rel=1e-5, abs=1e-7)  # fmt: skip
    dt = 1e-6 * expiry
    slope = (value(t=expiry + dt) - value(t=expiry - dt)) / (2 * dt)
    assert theta == pytest.approx(-slope, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("expiry", [0.0, -1.0])
def test_at_expiry_only_the_intrinsic_delta_is_left(expiry: float) -> None:
    assert core(True, 90.0, expiry, 0.5) == (1.0, 0.0, 0.0, 0.0)
    assert core(True, 110.0, expiry, 0.5) == (0.0, 0.0, 0.0, 0.0)
    assert core(False, 110.0, expiry, 0.5) == (-1.0, 0.0, 0.0, 0.0)
    assert core(False, 90.0, expiry, 0.5) == (0.0, 0.0, 0.0, 0.0)
    assert core(True, 90.0, 1.0, 0.0) == (1.0, 0.0, 0.0, 0.0)
