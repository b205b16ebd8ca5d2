"""The implied-volatility surface: raw SVI per expiry (Gatheral), fitted to option quotes,
checked for static arbitrage, and interpolated in expiry by total variance.

Per expiry T, in log-moneyness k = ln(K/F), total implied variance w = σ²T is

    w(k) = a + b·(ρ·(k − m) + √((k − m)² + s²))      with b ≥ 0, |ρ| < 1, s > 0.

No butterfly arbitrage: the density g(k) = (1 − k·w'/(2w))² − (w'²/4)(1/w + 1/4) + w''/2 is
non-negative (Gatheral & Jacquier, 2014). No calendar arbitrage: w(k, T) does not decrease in T
at any k. A surface that breaks either is rejected with an ``ArbitrageError`` naming where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from clearhouse.core.errors import ClearhouseError
from clearhouse.pricing import black76

Array = npt.NDArray[np.float64]
CHECK_GRID = np.linspace(-1.5, 1.5, 301)  # log-moneyness where arbitrage is checked


class ArbitrageError(ClearhouseError):
    """A volatility surface that admits static arbitrage."""

    code = "SURFACE_ARBITRAGE"


@dataclass(frozen=True, slots=True)
class SviSlice:
    expiry_years: float
    a: float
    b: float
    rho: float
    m: float
    s: float

    def total_variance(self, k: npt.ArrayLike) -> Array:
        d = np.asarray(k, dtype=float) - self.m
        return np.asarray(self.a + self.b * (self.rho * d + np.sqrt(d * d + self.s * self.s)))

    def density(self, k: npt.ArrayLike) -> Array:
        """Gatheral's g(k): a butterfly arbitrage wherever it is negative."""
        d = np.asarray(k, dtype=float) - self.m
        root = np.sqrt(d * d + self.s * self.s)
        w = self.total_variance(k)
        w1 = self.b * (self.rho + d / root)
        w2 = self.b * self.s * self.s / root**3
        kk = np.asarray(k, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (1 - kk * w1 / (2 * w)) ** 2 - w1 * w1 / 4 * (1 / w + 0.25) + w2 / 2
        return np.asarray(np.where(w > 0, g, -np.inf))  # no variance, no density

    def problems(self) -> list[str]:
        found = []
        if not (self.b >= 0 and abs(self.rho) < 1 and self.s > 0 and self.expiry_years > 0):
            found.append("parameters outside b >= 0, |rho| < 1, s > 0, T > 0")
        if self.a + self.b * self.s * np.sqrt(1 - min(self.rho * self.rho, 1.0)) <= 0:
            found.append("total variance not positive everywhere")
            return found
        bad = CHECK_GRID[self.density(CHECK_GRID) < -1e-9]
        if bad.size:
            found.append(f"butterfly arbitrage at log-moneyness {bad[0]:.3f}..{bad[-1]:.3f}")
        return found


def fit_slice(
    expiry_years: float, log_moneyness: npt.ArrayLike, implied_vol: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> SviSlice:  # fmt: skip
    """Least-squares fit of raw SVI to implied volatilities of one expiry; the fit is refused
    (``ArbitrageError``) if the best slice still admits butterfly arbitrage."""
    k = np.asarray(log_moneyness, dtype=float)
    w_market = np.asarray(implied_vol, dtype=float) ** 2 * expiry_years
    weight = np.ones_like(k) if weights is None else np.asarray(weights, dtype=float)
    if k.size < 5 or not np.all(np.isfinite(w_market)) or np.any(w_market <= 0):
        raise ArbitrageError(f"T={expiry_years}: need >= 5 finite positive quotes")
    check_quotes(expiry_years, k, np.sqrt(w_market / expiry_years))
    atm = float(np.interp(0.0, k, w_market)) if np.all(np.diff(k) > 0) else float(w_market.min())

    def residuals(x: Array) -> Array:
        slice_ = SviSlice(expiry_years, *x)
        penalty = np.minimum(slice_.density(CHECK_GRID[::10]), 0.0) * 10.0
        return np.concatenate([weight * (slice_.total_variance(k) - w_market), penalty])

    start = np.array([atm * 0.5, 0.1, -0.3, 0.0, 0.1])
    lower = np.array([-atm, 0.0, -0.999, -1.0, 1e-4])
    upper = np.array([max(w_market.max(), 1e-6) * 2, 5.0, 0.999, 1.0, 2.0])
    result = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac")
    fitted = SviSlice(expiry_years, *(float(v) for v in result.x))
    problems = fitted.problems()
    if problems:
        raise ArbitrageError(f"T={expiry_years}: " + "; ".join(problems))
    return fitted


def check_quotes(expiry_years: float, log_moneyness: Array, implied_vol: Array) -> None:
    """The quotes themselves, as undiscounted calls on a unit forward, must fall with the strike
    and be convex in it (no vertical or butterfly spread below zero)."""
    order = np.argsort(log_moneyness)
    strikes = np.exp(log_moneyness[order])
    calls = black76.price(True, 1.0, strikes, expiry_years, implied_vol[order])
    slopes = np.diff(calls) / np.diff(strikes)
    tolerance = 1e-9
    if np.any(slopes > tolerance) or np.any(slopes < -1 - tolerance):
        where = float(strikes[1:][(slopes > tolerance) | (slopes < -1 - tolerance)][0])
        raise ArbitrageError(f"T={expiry_years}: vertical-spread arbitrage at strike {where:.4f}")
    if np.any(np.diff(slopes) < -tolerance):
        where = float(strikes[1:-1][np.diff(slopes) < -tolerance][0])
        raise ArbitrageError(f"T={expiry_years}: butterfly arbitrage in the quotes at {where:.4f}")


@dataclass(frozen=True, slots=True)
class VolSurface:
    """SVI slices by increasing expiry, interpolated linearly in total variance between them."""

    slices: tuple[SviSlice, ...]

    def __post_init__(self) -> None:
        expiries = [s.expiry_years for s in self.slices]
        if not self.slices or expiries != sorted(set(expiries)):
            raise ArbitrageError("slices must have distinct, increasing expiries")
        for problem in (p for s in self.slices for p in s.problems()):
            raise ArbitrageError(problem)
        for early, late in zip(self.slices, self.slices[1:], strict=False):
            gap = late.total_variance(CHECK_GRID) - early.total_variance(CHECK_GRID)
            if np.any(gap < -1e-12):
                where = CHECK_GRID[gap < -1e-12]
                raise ArbitrageError(
                    f"calendar arbitrage between T={early.expiry_years} and "
                    f"T={late.expiry_years} at log-moneyness {where[0]:.3f}..{where[-1]:.3f}"
                )

    def total_variance(self, log_moneyness: npt.ArrayLike, expiry_years: float) -> Array:
        slices = self.slices
        times = [s.expiry_years for s in slices]
        if expiry_years <= times[0]:  # flat volatility before the first slice
            return slices[0].total_variance(log_moneyness) * expiry_years / times[0]
        if expiry_years >= times[-1]:
            return slices[-1].total_variance(log_moneyness) * expiry_years / times[-1]
        right = int(np.searchsorted(times, expiry_years))
        early, late = slices[right - 1], slices[right]
        share = (expiry_years - early.expiry_years) / (late.expiry_years - early.expiry_years)
        w_early, w_late = early.total_variance(log_moneyness), late.total_variance(log_moneyness)
        return np.asarray(w_early + share * (w_late - w_early))

    def volatility(self, log_moneyness: npt.ArrayLike, expiry_years: float) -> Array:
        return np.sqrt(self.total_variance(log_moneyness, expiry_years) / expiry_years)


def fit_surface(quotes: Sequence[tuple[float, Array, Array]]) -> VolSurface:
    """(expiry_years, log-moneyness, implied vols) per expiry → a checked surface."""
    return VolSurface(tuple(fit_slice(t, k, v) for t, k, v in sorted(quotes, key=lambda q: q[0])))
