"""Implied volatility under Black-76, vectorized, to ≤ 1e-10 wherever the premium carries
information, and an explicit reason where it does not.

The price is moved to the out-of-the-money side by put-call parity (on the price, where
F − K loses nothing), normalized (β = V / (D·√(FK))), and mirrored to an OTM call with
x = −|ln(F/K)| ≤ 0. There b(s) rises from 0 to e^{x/2} and has one inflection, at
s_c = √(2|x|). Below b(s_c) the solver runs Halley on ln b (nearly linear there), above it
Halley on b (concave there), each from s_c. Every step is kept inside a bracket that each
iteration tightens, so an overshoot bisects instead of diverging.

A price published on a tick (Deribit's marks and quotes: 0.0001 BTC) carries its rounding: an
in-the-money option whose time value is within half a tick of zero may have none at all, and
inverting it gives any volatility at all (Deribit, 2024-05-01: a put an hour from expiry marked
at its intrinsic value plus 5.5e-6 BTC "implies" 322% where its mark says 135%; two seconds
from expiry, 2e-5 BTC "implies" 35,000%). Given the ``tick``, such a price is refused as
``WITHIN_TICK`` instead.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt
from scipy.special import erfcx, erfinv

from clearhouse.pricing.black76 import INV_SQRT_2PI, SQRT2, normalized_otm

Array = npt.NDArray[np.float64]

MAX_ITERATIONS = 40
STEP_TOLERANCE = 1e-13  # relative change of s at which the iteration stops
TOTAL_VOL_MAX = 50.0  # s = σ√T beyond this carries no information a float can resolve


class NoVolatility(IntEnum):
    """Why an implied volatility is NaN (0: it is not)."""

    NONE = 0
    BELOW_INTRINSIC = 1  # the price is at or below the discounted intrinsic value
    ABOVE_MAXIMUM = 2  # the price is at or above the forward (call) or strike (put) bound
    UNDERFLOW = 3  # so far out of the money that the price carries no information
    BAD_INPUT = 4  # non-positive forward, strike, expiry or discount, or not finite
    WITHIN_TICK = 5  # the time value is within half of the price's tick of zero: maybe none


def implied_volatility(
    price: npt.ArrayLike, is_call: npt.ArrayLike, forward: npt.ArrayLike,
    strike: npt.ArrayLike, expiry_years: npt.ArrayLike, discount: npt.ArrayLike = 1.0,
    *, tick: npt.ArrayLike = 0.0,
) -> tuple[Array, npt.NDArray[np.int8]]:  # fmt: skip
    """(σ, reason): σ is NaN exactly where ``reason`` is not ``NoVolatility.NONE``. ``tick``:
    the step the price was rounded to, in the price's units (0: exact), see the module's
    docstring."""
    broadcast = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (price, forward, strike, expiry_years, discount)),
        np.asarray(is_call, dtype=bool),
        np.asarray(tick, dtype=float),
    )
    shape = broadcast[0].shape
    arrays = [np.array(a, ndmin=1).ravel() for a in broadcast]
    v, f, k, tau, df = arrays[:5]
    theta = np.where(arrays[5], 1.0, -1.0)
    half_tick = 0.5 * arrays[6]
    reason = np.zeros(v.shape, dtype=np.int8)
    bad = ~(np.isfinite(v) & (f > 0) & (k > 0) & (tau > 0) & (df > 0) & np.isfinite(f * k * tau))
    reason[bad] = NoVolatility.BAD_INPUT
    with np.errstate(all="ignore"):
        x = np.log(f / k)
        scale = df * np.sqrt(f * k)
        beta = v / scale
        # Parity on the price, where F − K is exact (or nearly), then normalized: the OTM
        # partner's time value. Taken in normalized units (e^{x/2} − e^{−x/2}) it carries the
        # rounding of two exponentials, which deep in the money near expiry is most of it.
        otm_price = v - df * np.maximum(theta * (f - k), 0.0)
        beta_otm = otm_price / scale
        x_otm = -np.abs(x)
        ceiling = np.exp(0.5 * x_otm)
    reason[(reason == 0) & ~(beta_otm > 0)] = NoVolatility.BELOW_INTRINSIC
    reason[(reason == 0) & (otm_price <= half_tick)] = NoVolatility.WITHIN_TICK
    bound = df * np.where(theta > 0, f, k)  # a call is worth less than F, a put than K
    reason[(reason == 0) & ((beta_otm >= ceiling) | (v >= bound))] = NoVolatility.ABOVE_MAXIMUM
    # The time value must stand clear of the rounding of the price it was taken from, or of
    # the smallest normal float: below that it carries no information about volatility.
    resolution = np.maximum(1e-300, 16.0 * np.finfo(float).eps * np.abs(beta))
    reason[(reason == 0) & (beta_otm < resolution)] = NoVolatility.UNDERFLOW
    ok = reason == 0
    s = np.full(v.shape, np.nan)
    s[ok] = _solve(x_otm[ok], beta_otm[ok])
    sigma = s / np.sqrt(tau)
    reason[ok & ~np.isfinite(sigma)] = NoVolatility.UNDERFLOW
    sigma[reason != 0] = np.nan
    return sigma.reshape(shape), reason.reshape(shape)


def _solve(x: Array, beta: Array) -> Array:
    """Total volatility s with b_call(x, s) = β, for x ≤ 0 and 0 < β < e^{x/2}."""
    ones = np.ones_like(x)
    pivot = np.sqrt(-2.0 * x)
    b_pivot = np.where(pivot > 0, normalized_otm(x, np.maximum(pivot, 1e-300), ones), 0.0)
    lower = beta < b_pivot  # below the inflection: iterate on ln b
    s = np.where(x == 0.0, 2.0 * SQRT2 * erfinv(np.minimum(beta, 1.0 - 1e-16)), pivot)
    low = np.where(lower, 0.0, pivot)
    high = np.where(lower, pivot, TOTAL_VOL_MAX)
    active = x != 0.0
    log_beta = np.log(beta)
    for _ in range(MAX_ITERATIONS):
        if not active.any():
            break
        sa, xa = s[active], x[active]
        b, vega = _value_and_vega(xa, sa)
        curvature = vega * (xa * xa / (sa * sa * sa) - 0.25 * sa)  # b''(s)
        la = lower[active]
        with np.errstate(all="ignore"):
            residual = np.where(la, np.log(b) - log_beta[active], b - beta[active])
            slope = np.where(la, vega / b, vega)
            bend = np.where(la, curvature / b - (vega / b) ** 2, curvature)
            newton = residual / slope
            # Halley's correction: cubic convergence; fall back to Newton where it misbehaves.
            halley = newton / (1.0 - 0.5 * newton * bend / slope)
            step = np.where(np.isfinite(halley) & (halley * newton > 0), halley, newton)
        too_high = residual > 0
        low_a = np.where(too_high, low[active], np.maximum(low[active], sa))
        high_a = np.where(too_high, np.minimum(high[active], sa), high[active])
        proposal = sa - step
        inside = np.isfinite(proposal) & (proposal >= low_a) & (proposal <= high_a)
        new = np.where(inside, proposal, 0.5 * (low_a + high_a))
        # Converged: the Newton step is below the last digits of s (a step of exactly zero
        # lands on the bracket's edge and must not be mistaken for an overshoot).
        eps = np.finfo(float).eps
        relative_residual = np.where(la, np.abs(residual), np.abs(residual) / beta[active])
        # Done when s moves by less than 1e-13 of itself (σ is then right to ~1e-13, a thousand
        # times inside the 1e-10 promised; the last ulps can cycle), when the residual is at
        # rounding level, or when the bracket holds no float to move to.
        settled = (high_a - low_a) <= 4.0 * eps * sa
        done = (inside & (np.abs(step) <= STEP_TOLERANCE * sa)) | (relative_residual <= 4.0 * eps)
        done |= settled | (new == sa)
        s[active], low[active], high[active] = new, low_a, high_a
        active_indices = np.flatnonzero(active)
        active[active_indices[done]] = False
    return s


def _value_and_vega(x: Array, s: Array) -> tuple[Array, Array]:
    """b_call(x, s) for x ≤ 0 and ∂b/∂s, sharing their one exponential."""
    h, t = x / s, 0.5 * s
    density = np.exp(-0.5 * (h * h + t * t))
    difference = erfcx(-(h + t) / SQRT2) - erfcx(-(h - t) / SQRT2)
    return 0.5 * density * difference, INV_SQRT_2PI * density
