"""The core's deterministic Black-76: the same digits as the vectorized pricer to ~1e-12, built
only from correctly rounded IEEE operations (no libm transcendental), so every replaying
machine computes the same margin."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.special import erfcx as scipy_erfcx

from clearhouse.core import option_math
from clearhouse.pricing import black76


def test_uses_no_platform_transcendental() -> None:
    """Only frexp, ldexp and sqrt come from math: all exact or correctly rounded by IEEE-754."""
    # The file beside the module (its source is not inspectable once compiled).
    tree = ast.parse((Path(option_math.__file__).parent / "option_math.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "math"
        for alias in node.names
    }
    assert imported == {"frexp", "ldexp", "sqrt"}
    assert not any(isinstance(n, ast.Import) for n in ast.walk(tree))


@settings(max_examples=500, deadline=None)
@given(st.floats(-700.0, 700.0))
def test_exp(x: float) -> None:
    assert option_math.exp(x) == pytest.approx(math.exp(x), rel=1e-15)


@settings(max_examples=500, deadline=None)
@given(st.floats(1e-300, 1e300))
def test_log(x: float) -> None:
    assert option_math.log(x) == pytest.approx(math.log(x), rel=1e-15, abs=1e-15)


@settings(max_examples=500, deadline=None)
@given(st.floats(-5.0, 1e6))
def test_erfcx(y: float) -> None:
    assert option_math.erfcx(y) == pytest.approx(float(scipy_erfcx(y)), rel=2e-14)


@settings(max_examples=400, deadline=None)
@given(
    is_call=st.booleans(), strike=st.floats(10.0, 1_000.0), expiry=st.floats(1 / 365, 3.0),
    vol=st.floats(0.01, 3.0),
)  # fmt: skip
# 25 standard deviations out of the money, worth 3.05e-145: against mpmath at 50 digits this
# module is off by 1.3e-12 of the value and the vectorized pricer by 9.6e-12, 1.09e-11 apart.
@example(is_call=False, strike=98.6796875, expiry=1 / 365, vol=0.01)
def test_agrees_with_the_vectorized_pricer(
    is_call: bool, strike: float, expiry: float, vol: float
) -> None:
    mine = option_math.price(
        is_call=is_call, forward=100.0, strike=strike, expiry_years=expiry, volatility=vol,
        discount=0.98,
    )  # fmt: skip
    theirs = float(black76.price(is_call, 100.0, strike, expiry, vol, 0.98))
    assert mine == pytest.approx(theirs, rel=2e-11, abs=1e-300)


def test_exact_far_out_of_the_money() -> None:
    with mpmath.workdps(60):
        sd = mpmath.mpf(0.9) * mpmath.sqrt(mpmath.mpf(1) / 365)
        d1 = mpmath.log(mpmath.mpf(100) / 140) / sd + sd / 2
        truth = 100 * mpmath.ncdf(d1) - 140 * mpmath.ncdf(d1 - sd)
    mine = option_math.price(
        is_call=True, forward=100.0, strike=140.0, expiry_years=1 / 365, volatility=0.9
    )
    assert abs(mpmath.mpf(mine) / truth - 1) < 1e-12


def test_expired_or_zero_volatility_is_intrinsic() -> None:
    assert option_math.price(is_call=True, forward=110.0, strike=100.0, expiry_years=0.0,
                             volatility=0.5, discount=0.9) == pytest.approx(9.0)  # fmt: skip
    assert option_math.price(is_call=False, forward=110.0, strike=100.0, expiry_years=1.0,
                             volatility=0.0) == 0.0  # fmt: skip


def test_put_call_parity_holds() -> None:
    for strike in np.linspace(50.0, 200.0, 31):
        call = option_math.price(is_call=True, forward=100.0, strike=float(strike),
                                 expiry_years=0.5, volatility=0.6, discount=0.97)  # fmt: skip
        put = option_math.price(is_call=False, forward=100.0, strike=float(strike),
                                expiry_years=0.5, volatility=0.6, discount=0.97)  # fmt: skip
        assert call - put == pytest.approx(0.97 * (100.0 - strike), abs=1e-11)
