"""Implied volatility recovers the volatility that priced an option to 1e-10 wherever the
premium carries that information, and says why (NaN and a reason) where it does not."""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.pricing import black76
from clearhouse.pricing.implied import NoVolatility, implied_volatility

FORWARD = 100.0
DISCOUNT = 0.99
STRIKES = (20.0, 50.0, 80.0, 95.0, 100.0, 105.0, 130.0, 200.0, 500.0)
EXPIRIES = (1 / 365, 7 / 365, 0.25, 1.0, 2.0)
VOLS = (0.02, 0.1, 0.3, 0.8, 1.5, 3.0)


def otm_premium(strike: np.ndarray, expiry: np.ndarray, vol: np.ndarray) -> np.ndarray:
    """The out-of-the-money side's price: the time value, where all information about σ is."""
    otm_is_call = strike >= FORWARD
    return black76.price(otm_is_call, FORWARD, strike, expiry, vol, DISCOUNT)


def test_recovers_the_volatility_on_the_grid() -> None:
    """Every OTM option whose premium is above 1e-12 of the forward, and every ITM one whose
    time value is above 1e-6 of its price (below that, the float that holds the ITM price has
    fewer than ten digits of time value left): |σ − σ_true| ≤ 1e-10."""
    rows = list(itertools.product((True, False), STRIKES, EXPIRIES, VOLS))
    is_call, k, t, s = (np.array(column) for column in zip(*rows, strict=True))
    prices = black76.price(is_call, FORWARD, k, t, s, DISCOUNT)
    sigma, reason = implied_volatility(prices, is_call, FORWARD, k, t, DISCOUNT)
    premium = otm_premium(k, t, s)
    otm = is_call == (k >= FORWARD)
    informative = (premium > 1e-12 * FORWARD) & (otm | (premium > 1e-6 * prices))
    assert informative.sum() > len(rows) // 2
    assert (reason[informative] == NoVolatility.NONE).all()
    assert np.max(np.abs(sigma[informative] - s[informative])) <= 1e-10
    # Where it gives an answer at all, that answer prices the option back.
    solved = reason == NoVolatility.NONE
    repriced = black76.price(is_call[solved], FORWARD, k[solved], t[solved], sigma[solved],
                             DISCOUNT)  # fmt: skip
    assert np.allclose(repriced, prices[solved], rtol=1e-9, atol=1e-12 * FORWARD)
    # NaN exactly where there is a reason.
    assert (np.isnan(sigma) == (reason != NoVolatility.NONE)).all()


@settings(max_examples=400, deadline=None)
@given(
    strike=st.floats(30.0, 300.0), expiry=st.floats(1 / 365, 2.0), vol=st.floats(0.05, 2.5),
    is_call=st.booleans(),
)  # fmt: skip
def test_round_trip(strike: float, expiry: float, vol: float, is_call: bool) -> None:
    premium = float(otm_premium(np.array(strike), np.array(expiry), np.array(vol)))
    price = float(black76.price(is_call, FORWARD, strike, expiry, vol, DISCOUNT))
    otm = is_call == (strike >= FORWARD)
    sigma, reason = implied_volatility(price, is_call, FORWARD, strike, expiry, DISCOUNT)
    if premium > 1e-12 * FORWARD and (otm or premium > 1e-6 * price):
        assert reason == NoVolatility.NONE
        assert abs(float(sigma) - vol) <= 1e-10
    elif reason == NoVolatility.NONE:
        repriced = float(black76.price(is_call, FORWARD, strike, expiry, float(sigma), DISCOUNT))
        assert abs(repriced - price) <= 1e-12 * FORWARD


def test_impossible_prices_have_reasons() -> None:
    intrinsic = DISCOUNT * (FORWARD - 80.0)
    cases = [
        (intrinsic * 0.999, True, 80.0, NoVolatility.BELOW_INTRINSIC),
        (-1.0, False, 120.0, NoVolatility.BELOW_INTRINSIC),
        (DISCOUNT * FORWARD * 1.0001, True, 120.0, NoVolatility.ABOVE_MAXIMUM),
        (DISCOUNT * 120.0, False, 120.0, NoVolatility.ABOVE_MAXIMUM),
        (1e-320, True, 500.0, NoVolatility.UNDERFLOW),
        (1.0, True, -5.0, NoVolatility.BAD_INPUT),
        (float("nan"), True, 100.0, NoVolatility.BAD_INPUT),
    ]
    prices, calls, strikes, expected = (np.array(c) for c in zip(*cases, strict=True))
    sigma, reason = implied_volatility(prices, calls, FORWARD, strikes, 0.5, DISCOUNT)
    assert reason.tolist() == expected.tolist()
    assert np.isnan(sigma).all()


def test_scalars_in_scalars_out() -> None:
    price = float(black76.price(True, FORWARD, 110.0, 0.5, 0.4, DISCOUNT))
    sigma, reason = implied_volatility(price, True, FORWARD, 110.0, 0.5, DISCOUNT)
    assert sigma.shape == () and reason.shape == ()
    assert abs(float(sigma) - 0.4) < 1e-12


def _exact_price(is_call: bool, forward: float, strike: float, expiry: float, vol: float) -> float:
    with mpmath.workdps(60):
        f, k, sd = mpmath.mpf(forward), mpmath.mpf(strike), vol * mpmath.sqrt(expiry)
        d1 = (mpmath.log(f / k) + sd * sd / 2) / sd
        d2 = d1 - sd
        if is_call:
            return float(f * mpmath.ncdf(d1) - k * mpmath.ncdf(d2))
        return float(k * mpmath.ncdf(-d2) - f * mpmath.ncdf(-d1))


@pytest.mark.parametrize("strike", [50_000.0, 55_000.0, 57_000.0, 63_000.0, 70_000.0])
@pytest.mark.parametrize("hours", [3, 8, 24])
def test_deep_in_the_money_hours_from_expiry_keeps_its_precision(strike: float, hours: int) -> None:
    """Parity on the price, not in normalized units: an in-the-money option a few hours from
    expiry, priced exactly and rounded to a float, gives back its volatility to what the
    float's rounding allows (the time value's share of the price bounds it)."""
    forward, vol, expiry = 60_000.0, 0.6, hours / 8760
    for is_call in (True, False):
        price = _exact_price(is_call, forward, strike, expiry, vol)
        sigma, reason = implied_volatility(price, is_call, forward, strike, expiry)
        if reason != NoVolatility.NONE:
            continue  # no time value a float can hold
        intrinsic = max((forward - strike) if is_call else (strike - forward), 0.0)
        vega = float(black76.greeks(is_call, forward, strike, expiry, vol).vega)
        allowed = 1e-13 + 4 * np.finfo(float).eps * price / vega  # the price's own rounding
        assert abs(float(sigma) - vol) <= allowed, (is_call, price - intrinsic)


# Deribit's BTC option chain on 2024-05-01 at 07:00 UTC, the 1MAY24 expiry an hour away: a put
# struck at 66,500 on a 59,460.237 forward, marked 0.1184 BTC (rounded to 0.0001) at 134.97%.
HOUR_FORWARD, HOUR_STRIKE, HOUR_MARK, HOUR_VOL = 59_460.237, 66_500.0, 0.1184, 1.3497
HOUR_EXPIRY = 3_604.345 / (365 * 86_400)
BTC_TICK = 0.0001


def test_a_time_value_within_half_a_tick_has_no_volatility() -> None:
    """The mark is its intrinsic value plus 5.5e-6 BTC, less than the rounding of its tick:
    inverted as exact, it "implies" 322% (the mark's own volatility: 135%); told the tick, the
    price is refused as carrying no volatility. An out-of-the-money option worth one tick is
    still solved."""
    price = HOUR_MARK * HOUR_FORWARD
    sigma, reason = implied_volatility(price, False, HOUR_FORWARD, HOUR_STRIKE, HOUR_EXPIRY)
    assert reason == NoVolatility.NONE and float(sigma) > 2 * HOUR_VOL  # any number at all
    tick = BTC_TICK * HOUR_FORWARD
    sigma, reason = implied_volatility(
        price, False, HOUR_FORWARD, HOUR_STRIKE, HOUR_EXPIRY, tick=tick
    )
    assert reason == NoVolatility.WITHIN_TICK and np.isnan(sigma)
    one_tick = implied_volatility(tick, True, HOUR_FORWARD, 61_000.0, HOUR_EXPIRY, tick=tick)
    assert one_tick[1] == NoVolatility.NONE and 0.5 < float(one_tick[0]) < 3.0
