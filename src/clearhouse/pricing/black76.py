"""Black-76 on the forward, vectorized: price and the Greeks of European calls and puts.

Conventions: ``forward`` F and ``strike`` K in the same units, ``expiry_years`` T > 0,
``volatility`` σ annualized, ``discount`` the discount factor to expiry (e^{-rT}), ``is_call``
booleans. Every argument broadcasts.

Accuracy. Out of the money, ``F·N(d1) − K·N(d2)`` is a difference of two nearly equal numbers and
loses all its digits far from the money. The price is computed instead in Jäckel's normalized
form, b = V / (D·√(FK)) with x = ln(F/K), s = σ√T, h = x/s, t = s/2:

    b_otm = ½ · e^{−(h² + t²)/2} · [erfcx(−θ·d1/√2) − erfcx(−θ·d2/√2)]

for the out-of-the-money side (θ·x ≤ 0), where erfcx(y) = e^{y²}·erfc(y) is evaluated without
underflow; the in-the-money side is its put-call parity partner plus the intrinsic value. The
relative error stays near machine precision even for prices of 1e-300 of the forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import erfc, erfcx

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

SQRT2 = float(np.sqrt(2.0))
INV_SQRT_2PI = float(1.0 / np.sqrt(2.0 * np.pi))


@dataclass(frozen=True, slots=True)
class Greeks:
    price: Array
    delta: Array  # ∂V/∂F
    gamma: Array  # ∂²V/∂F²
    vega: Array  # ∂V/∂σ
    theta: Array  # ∂V/∂t, per year of calendar time (F fixed, discount e^{-rT})


LOG_MONEYNESS_MAX = 1_400.0  # |ln F/K| beyond: an option worth 0 or its intrinsic (e^{x/2} < ∞)
NEAR = 4.0  # |y| up to here: e^{y²}·erfc(y) loses at most ~16 ulps to the rounding of y²


def fast_erfcx(y: Array) -> Array:
    """erfcx(y) = e^{y²}·erfc(y): near zero as that product (two fast ufuncs), in the tails
    (|y| > 4, where the product would lose digits or overflow) by scipy's erfcx on just those
    elements. Agrees with scipy's erfcx to ~1e-15 relative; about twice as fast on typical
    inputs, where few arguments are in the tails."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # the tails are replaced below
        out = np.asarray(np.exp(y * y) * erfc(y), dtype=np.float64).reshape(y.shape)
    if out.ndim == 0:
        return out if abs(float(y)) <= NEAR else np.asarray(erfcx(y), dtype=np.float64)
    tail = np.abs(y) > NEAR
    if tail.any():
        out[tail] = erfcx(y[tail])
    return out


def normalized_otm(log_moneyness: Array, total_vol: Array, theta_sign: Array) -> Array:
    """b for the out-of-the-money option of sign θ (θ·x ≤ 0): V / (D·√(FK))."""
    h = log_moneyness / total_vol
    t = 0.5 * total_vol
    d1, d2 = h + t, h - t
    scale = 0.5 * theta_sign * np.exp(-0.5 * (h * h + t * t))
    difference = fast_erfcx(-theta_sign * d1 / SQRT2) - fast_erfcx(-theta_sign * d2 / SQRT2)
    return np.asarray(scale * difference, dtype=np.float64)


def normalized_price(log_moneyness: Array, total_vol: Array, theta_sign: Array) -> Array:
    """b_θ(x, s) for either side: the OTM formula, or parity from the OTM partner when ITM."""
    x = log_moneyness
    otm_sign = np.where(theta_sign * x <= 0.0, theta_sign, -theta_sign)
    b = normalized_otm(x, total_vol, otm_sign)
    intrinsic = theta_sign * (np.exp(0.5 * x) - np.exp(-0.5 * x))
    return np.where(otm_sign == theta_sign, b, b + intrinsic)


@dataclass(frozen=True, slots=True)
class _Inputs:
    theta_sign: Array
    forward: Array
    strike: Array
    expiry_years: Array
    volatility: Array
    discount: Array

    @classmethod
    def of(
        cls, is_call: ArrayLike, forward: ArrayLike, strike: ArrayLike, expiry_years: ArrayLike,
        volatility: ArrayLike, discount: ArrayLike,
    ) -> _Inputs:  # fmt: skip
        def floats(a: ArrayLike) -> Array:
            return np.asarray(a, dtype=np.float64)

        sign = np.where(np.asarray(is_call, dtype=bool), 1.0, -1.0)
        return cls(sign, *map(floats, (forward, strike, expiry_years, volatility, discount)))


@dataclass(frozen=True, slots=True)
class _Pass:
    """One pass over the inputs, shared by the price and the Greeks.

    With x = ln(F/K), s = σ√T, h = x/s, t = s/2 and g = e^{−(h²+t²)/2}:
    the out-of-the-money side is ω = −sign(x) (a put at the money, where both sides agree);
    e^{x/2} gives √(FK) = K·e^{x/2} and the intrinsic value without another exponential;
    φ(d1) = g·e^{−x/2}/√(2π) since d1²/2 = (h²+t²)/2 + x/2; and N(ω·d1), equal to
    ½·g·e^{−x/2}·erfcx(−ω·d1/√2), comes from the erfcx the price already needs: one log, one
    square root, two exponentials
    and two erfcx per option for the price and all four Greeks.
    """

    inputs: _Inputs
    sqrt_tau: Array
    total_vol: Array
    half_x_exp: Array  # e^{x/2}
    in_the_money: Array  # 1.0 where the option is the out-of-the-money side's partner
    normalized: Array  # b = V / (D·√(FK))
    cdf_otm_d1: Array  # N(ω·d1)
    gaussian_d1: Array  # e^{−d1²/2}
    d1: Array

    @classmethod
    def run(cls, inputs: _Inputs) -> _Pass:
        theta = inputs.theta_sign
        with np.errstate(divide="ignore", over="ignore"):  # F/K past the float range: ±∞
            x = np.clip(
                np.log(inputs.forward / inputs.strike), -LOG_MONEYNESS_MAX, LOG_MONEYNESS_MAX
            )
        sqrt_tau = np.sqrt(inputs.expiry_years)
        s = inputs.volatility * sqrt_tau
        h = x / s
        t = 0.5 * s
        omega = np.copysign(1.0, -x)
        gaussian = np.exp(-0.5 * (h * h + t * t))
        upper = fast_erfcx(-omega * (h + t) / SQRT2)
        lower = fast_erfcx(-omega * (h - t) / SQRT2)
        half_x_exp = np.exp(0.5 * x)
        in_the_money = 0.5 * (1.0 - omega * theta)
        b = 0.5 * omega * gaussian * (upper - lower)
        with np.errstate(invalid="ignore", over="ignore"):  # far wings: 0·∞ where OTM
            intrinsic = theta * (half_x_exp - 1.0 / half_x_exp)
        b = b + np.where(in_the_money > 0, intrinsic, 0.0)
        gaussian_d1 = gaussian / half_x_exp
        return cls(
            inputs, sqrt_tau, s, half_x_exp, in_the_money, b, 0.5 * gaussian_d1 * upper,
            gaussian_d1, h + t,
        )  # fmt: skip

    def value(self) -> Array:
        inputs = self.inputs
        root = inputs.strike * self.half_x_exp  # √(FK)
        return np.asarray(inputs.discount * root * self.normalized, dtype=np.float64)


def price(
    is_call: ArrayLike, forward: ArrayLike, strike: ArrayLike, expiry_years: ArrayLike,
    volatility: ArrayLike, discount: ArrayLike = 1.0,
) -> Array:  # fmt: skip
    """Black-76 prices."""
    inputs = _Inputs.of(is_call, forward, strike, expiry_years, volatility, discount)
    return _Pass.run(inputs).value()


def greeks(
    is_call: ArrayLike, forward: ArrayLike, strike: ArrayLike, expiry_years: ArrayLike,
    volatility: ArrayLike, discount: ArrayLike = 1.0,
) -> Greeks:  # fmt: skip
    """Price and the four Greeks in one pass."""
    inputs = _Inputs.of(is_call, forward, strike, expiry_years, volatility, discount)
    run = _Pass.run(inputs)
    theta_sign, f, df = inputs.theta_sign, inputs.forward, inputs.discount
    value = run.value()
    density = INV_SQRT_2PI * run.gaussian_d1
    # N(θ·d1): the out-of-the-money side's N(ω·d1), or its complement for the other side;
    # where that complement is a small tail (θ·d1 < 0) it is computed directly, keeping digits.
    cdf = run.cdf_otm_d1 + run.in_the_money * (1.0 - 2.0 * run.cdf_otm_d1)
    tail = (run.in_the_money > 0) & (theta_sign * run.d1 < 0)
    if np.any(tail):
        shape = np.broadcast_shapes(cdf.shape, tail.shape)
        cdf = np.array(np.broadcast_to(cdf, shape))
        d1, gaussian = np.broadcast_to(run.d1, shape), np.broadcast_to(run.gaussian_d1, shape)
        signs = np.broadcast_to(theta_sign, shape)
        mask = np.broadcast_to(tail, shape)
        cdf[mask] = 0.5 * gaussian[mask] * erfcx(-signs[mask] * d1[mask] / SQRT2)
    decay = -df * f * density * inputs.volatility / (2.0 * run.sqrt_tau)
    if np.any(df != 1.0):
        decay = decay - np.log(df) / inputs.expiry_years * value
    return Greeks(
        price=value,
        delta=df * theta_sign * cdf,
        gamma=df * density / f / run.total_vol,  # not f·s: that underflows to 0 first
        vega=df * f * density * run.sqrt_tau,
        theta=decay,
    )
