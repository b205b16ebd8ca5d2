"""The implied-volatility surface: SVI slices fitted to option quotes, checked for static
arbitrage, and interpolated in expiry by total variance.

Per expiry T, in log-moneyness k = ln(K/F), total implied variance w = σ²T is raw SVI

    w(k) = a + b·(ρ·(k − m) + √((k − m)² + s²))      with b ≥ 0, |ρ| < 1, s > 0.

No butterfly arbitrage: the density g(k) = (1 − k·w'/(2w))² − (w'²/4)(1/w + 1/4) + w''/2 is
non-negative (Gatheral & Jacquier, 2014). No calendar arbitrage: w(k, T) does not decrease in T.
Both are checked where they matter: over ±``CHECK_SD`` standard deviations σ_ATM·√T of each
expiry (``core.surface.check_points``, the engine's rule), which covers every quote the fit uses
(at most ``QUOTED_SD`` of them out) plus a margin of two standard deviations.

The fit (``calibrate``) is arbitrage-free by construction: each slice is an extended SSVI slice
(θ, ρ, ψ) (Hendriks & Martini, 2019) — w(k) = θ/2·(1 + ρφk + √((φk + ρ)² + 1 − ρ²)), φ = ψ/θ —
with ψ(1 + |ρ|) < 4 and ψ²(1 + |ρ|) ≤ 4θ (no butterfly at any k, Gatheral & Jacquier's
Theorem 4.2), fitted in order of expiry with θ above the previous slice's and
|ρψ − ρ₋ψ₋| ≤ ψ − ψ₋ (slices never cross, in the wings or elsewhere). Each slice is raw SVI
again (a = θ(1 − ρ²)/2, b = ψ/2, m = −ρθ/ψ, s = θ√(1 − ρ²)/ψ): the engine's leaf is unchanged.
The error is weighted by the bid/ask spread in volatility; a global grid over (θ, ρ, ψ) starts
a shrinking local grid (a deterministic multi-start). Quotes are first checked for arbitrage
with a tolerance of one price tick (``tick_of``): marks are rounded to the tick and to 0.01
volatility point, so a smaller violation is noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from clearhouse.core import surface as core_surface
from clearhouse.core.errors import ClearhouseError
from clearhouse.pricing import black76

Array = npt.NDArray[np.float64]
CHECK_SD = core_surface.CHECK_SD  # arbitrage is checked over ±10 σ_ATM·√T of each expiry
CHECK_STEPS = core_surface.CHECK_STEPS
QUOTED_SD = core_surface.QUOTED_SD  # quotes further out are not fitted (checked: 2 σ√T more)
# Deribit's BTC option tick, in BTC per 1-BTC option, i.e. the price on a unit forward:
# 0.0005, and 0.0001 for premiums below 0.005.
TICK = 0.0005
SMALL_TICK = 0.0001
SMALL_PREMIUM = 0.005
VOL_ROUNDING = 0.0001  # marks are published to 0.01 volatility point
SPREAD_FLOOR = 0.005  # a quoted spread counts as at least 0.5 volatility point in the weights
MIN_QUOTES = 5
BUTTERFLY_MARGIN = 1e-3  # the SSVI constraints are kept this far (relative) inside their bound
CALENDAR_GAP = 1e-7  # θ above the previous slice's by this much (plus 10⁻⁵ relative) at least


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

    def check_grid(self) -> Array:
        """Where this slice is checked: ±CHECK_SD standard deviations √w(0) (the engine's)."""
        return check_grid(float(self.total_variance(0.0)))

    def problems(self) -> list[str]:
        found = []
        if not (self.b >= 0 and abs(self.rho) < 1 and self.s > 0 and self.expiry_years > 0):
            found.append("parameters outside b >= 0, |rho| < 1, s > 0, T > 0")
        if self.a + self.b * self.s * np.sqrt(1 - min(self.rho * self.rho, 1.0)) <= 0:
            found.append("total variance not positive everywhere")
            return found
        grid = self.check_grid()
        bad = grid[self.density(grid) < -core_surface.DENSITY_TOLERANCE]
        if bad.size:
            found.append(f"butterfly arbitrage at log-moneyness {bad[0]:.3f}..{bad[-1]:.3f}")
        return found


def check_grid(atm_variance: float) -> Array:
    """±CHECK_SD·√w_ATM in CHECK_STEPS steps; the same floats as ``core.surface``'s points."""
    half = CHECK_SD * float(np.sqrt(max(atm_variance, 0.0)))
    step = 2 * half / CHECK_STEPS
    return np.asarray(-half + np.arange(CHECK_STEPS + 1) * step)


@dataclass(frozen=True, slots=True)
class Essvi:
    """One extended-SSVI slice: ATM total variance θ, skew ρ, wing ψ = θφ."""

    theta: float
    rho: float
    psi: float

    def raw(self, expiry_years: float) -> SviSlice:
        root = float(np.sqrt(1 - self.rho * self.rho))
        return SviSlice(
            expiry_years, self.theta * (1 - self.rho * self.rho) / 2, self.psi / 2, self.rho,
            -self.rho * self.theta / self.psi, self.theta * root / self.psi,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SliceQuotes:
    """One expiry's quotes: log-moneyness, mark volatility and (NaN where a side is missing)
    bid and ask volatilities, as fractions."""

    expiry_years: float
    log_moneyness: Array
    mark: Array
    bid: Array = field(default_factory=lambda: np.empty(0))
    ask: Array = field(default_factory=lambda: np.empty(0))

    def sides(self) -> tuple[Array, Array]:
        nan = np.full_like(self.mark, np.nan)
        bid = self.bid if self.bid.size == self.mark.size else nan
        ask = self.ask if self.ask.size == self.mark.size else nan
        return bid, ask


@dataclass(frozen=True, slots=True)
class SliceFit:
    """What the fit did with one expiry: its slice, or why it was refused, and how well the
    slice fits the marks (RMSE and worst error in volatility points; share of two-sided quotes
    whose bid/ask holds the fitted volatility; None without two-sided quotes)."""

    expiry_years: float
    quotes: int
    slice: SviSlice | None
    rmse_vol_points: float
    max_error_vol_points: float
    inside_share: float | None
    refused: str | None = None
    dropped: int = 0  # quotes left out: arbitrage beyond a tick against their neighbours


@dataclass(frozen=True, slots=True)
class SurfaceFit:
    """The fitted surface (None when no slice survived) and each expiry's diagnostics."""

    surface: VolSurface | None
    slices: tuple[SliceFit, ...]

    def refused(self) -> list[str]:
        """Why each refused expiry was refused; with no expiry to fit at all, why there is no
        surface (``quotes_for_fit`` leaves out an expiry with fewer than five usable strikes)."""
        if not self.slices:
            return ["no expiry to fit: none has five out-of-the-money quotes within range"]
        return [f"T={s.expiry_years:.6f}: {s.refused}" for s in self.slices if s.refused]


def tick_of(premium: Array) -> Array:
    """The price tick of a premium on a unit forward (Deribit BTC options)."""
    return np.where(premium < SMALL_PREMIUM, SMALL_TICK, TICK)


def quote_problems(expiry_years: float, log_moneyness: Array, implied_vol: Array) -> list[str]:
    """Static arbitrage in the quotes themselves, as undiscounted calls on a unit forward: a
    vertical spread worth less than zero or more than its width, or a butterfly worth less than
    zero, by more than one tick: the largest among its legs' ticks, each with the price of half
    a 0.01-volatility-point rounding at that leg (real marks are rounded to both)."""
    found = _violation(expiry_years, log_moneyness, implied_vol)
    return [] if found is None else [found[0]]


def _violation(
    expiry_years: float, log_moneyness: Array, implied_vol: Array
) -> tuple[str, int] | None:
    """The first violation and the index (in the caller's order) of the quote to blame."""
    order = np.argsort(log_moneyness)
    strikes = np.exp(log_moneyness[order])
    vols = implied_vol[order]
    greeks = black76.greeks(True, 1.0, strikes, expiry_years, vols)
    calls, noise = greeks.price, tick_of(greeks.price) + greeks.vega * VOL_ROUNDING / 2
    step = np.diff(calls)
    width = np.diff(strikes)
    pair = np.maximum(noise[1:], noise[:-1])
    bad = (step > pair) | (-step > width + pair)
    if np.any(bad):
        at = int(np.flatnonzero(bad)[0]) + 1
        where = f"vertical-spread arbitrage at strike {strikes[at]:.4f}"
        return f"T={expiry_years}: {where}", int(order[at])
    share = (strikes[2:] - strikes[1:-1]) / (strikes[2:] - strikes[:-2])
    fly = share * calls[:-2] + (1 - share) * calls[2:] - calls[1:-1]
    bound = np.maximum(np.maximum(noise[:-2], noise[1:-1]), noise[2:])
    if np.any(fly < -bound):
        at = int(np.flatnonzero(fly < -bound)[0]) + 1
        where = f"butterfly arbitrage in the quotes at {strikes[at]:.4f}"
        return f"T={expiry_years}: {where}", int(order[at])
    return None


def clean_quotes(quotes: SliceQuotes) -> tuple[SliceQuotes, int, str | None]:
    """Drop the quote in the middle of each spread that is arbitrage beyond a tick, at most
    MAX_DROPPED_SHARE of them: (the quotes kept, how many dropped, why refused or None)."""
    kept, reason = quotes, ""
    for dropped in range(int(quotes.mark.size * MAX_DROPPED_SHARE) + 1):
        found = _violation(kept.expiry_years, kept.log_moneyness, kept.mark)
        if found is None:
            return kept, dropped, None
        reason = found[0].split(": ", 1)[1]
        keep = np.arange(kept.mark.size) != found[1]
        bid, ask = kept.sides()
        kept = SliceQuotes(kept.expiry_years, kept.log_moneyness[keep], kept.mark[keep],
                           bid[keep], ask[keep])  # fmt: skip
    return kept, -1, reason


MAX_DROPPED_SHARE = 0.1  # a slice with more quotes in arbitrage beyond a tick is refused


def check_quotes(expiry_years: float, log_moneyness: Array, implied_vol: Array) -> None:
    """``quote_problems``, raised as an ``ArbitrageError``."""
    for problem in quote_problems(expiry_years, log_moneyness, implied_vol):
        raise ArbitrageError(problem)


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
        for early, late in pairwise(self.slices):
            grid = check_grid(
                max(float(early.total_variance(0.0)), float(late.total_variance(0.0)))
            )
            gap = late.total_variance(grid) - early.total_variance(grid)
            if np.any(gap < -core_surface.CALENDAR_TOLERANCE):
                where = grid[gap < -core_surface.CALENDAR_TOLERANCE]
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


# ── The fit ─────────────────────────────────────────────────────────────────────────────────

QuotesLike = SliceQuotes | tuple[float, npt.ArrayLike, npt.ArrayLike]


def _as_quotes(quotes: QuotesLike) -> SliceQuotes:
    if isinstance(quotes, SliceQuotes):
        return quotes
    t, k, v = quotes
    return SliceQuotes(float(t), np.asarray(k, dtype=float), np.asarray(v, dtype=float))


def calibrate(quotes: Sequence[QuotesLike]) -> SurfaceFit:
    """Fit every expiry in order: first the extended-SSVI chain (arbitrage-free by
    construction), then each slice refined as raw SVI where that fits better while it stays
    butterfly-free on its checked points and between its neighbours (above the slice kept
    before it, below the SSVI slice after it, so that one is still a valid fallback). A slice
    whose quotes are unusable is refused, with the reason, and the others make the surface;
    quotes that no surface holds (two underlyings' smiles merged) leave none, each slice
    refused with the reason."""
    ordered = sorted((_as_quotes(q) for q in quotes), key=lambda q: q.expiry_years)
    fits: list[SliceFit] = []
    previous: Essvi | None = None
    chain: list[tuple[SliceQuotes, Array, Essvi]] = []
    for index, raw in enumerate(ordered):
        one, dropped, _ = clean_quotes(raw)
        ordered[index] = one
        fitted, essvi = _fit_one(one, previous, cleaned=dropped >= 0)
        fits.append(replace(fitted, dropped=max(dropped, 0)))
        if essvi is not None:
            previous = essvi
            bid, ask = one.sides()
            chain.append((one, _weights(one.mark, bid, ask), essvi))
    kept: list[SviSlice] = []
    refined = iter(range(len(chain)))
    for index, fitted in enumerate(fits):
        if fitted.slice is None:
            continue
        at = next(refined)
        one, weight, essvi = chain[at]
        upper = chain[at + 1][2].raw(chain[at + 1][0].expiry_years) if at + 1 < len(chain) else None
        better = _refine(
            one, weight, essvi.raw(one.expiry_years), kept[-1] if kept else None, upper
        )
        kept.append(better)
        fits[index] = replace(_diagnose(one, better), dropped=fitted.dropped)
    try:
        surface = VolSurface(tuple(kept)) if kept else None
    except ArbitrageError:  # the refinement's grid missed a point: the SSVI chain is safe
        kept = [essvi.raw(one.expiry_years) for one, _, essvi in chain]
        try:
            surface = VolSurface(tuple(kept))
        except ArbitrageError as error:  # quotes no one surface holds (two underlyings' smiles)
            return _refused_whole(fits, f"no surface: {error}")
        done = iter(kept)
        fits = [f if f.slice is None else replace(_diagnose(one, next(done)), dropped=f.dropped)
                for f, one in zip(fits, ordered, strict=True)]  # fmt: skip
    return SurfaceFit(surface, tuple(fits))


def _refused_whole(fits: Sequence[SliceFit], reason: str) -> SurfaceFit:
    """No surface: every slice that had one refused for this reason."""
    refused = [f if f.slice is None else replace(f, slice=None, refused=reason) for f in fits]
    return SurfaceFit(None, tuple(refused))


def fit_surface(quotes: Sequence[QuotesLike]) -> VolSurface:
    """(expiry_years, log-moneyness, implied vols) per expiry (or ``SliceQuotes``) → a checked
    surface; ``ArbitrageError`` if any expiry was refused."""
    found = calibrate(quotes)
    if found.surface is None or found.refused():
        raise ArbitrageError("; ".join(found.refused()) or "no quotes")
    return found.surface


def fit_slice(
    expiry_years: float, log_moneyness: npt.ArrayLike, implied_vol: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> SviSlice:  # fmt: skip
    """One expiry on its own (no calendar constraint); ``ArbitrageError`` if refused.
    ``weights`` (optional) replace the spread weights."""
    quotes = _as_quotes((expiry_years, log_moneyness, implied_vol))
    weight = (
        _weights(quotes.mark, *quotes.sides()) if weights is None else np.asarray(weights, float)
    )
    fitted, essvi = _fit_one(quotes, None, weight)
    if essvi is None:
        raise ArbitrageError(f"T={expiry_years}: {fitted.refused}")
    return _refine(quotes, weight, essvi.raw(expiry_years), None, None)


def _fit_one(
    quotes: SliceQuotes, previous: Essvi | None, weights: Array | None = None, *,
    cleaned: bool = False,
) -> tuple[SliceFit, Essvi | None]:  # fmt: skip
    t, k, mark = quotes.expiry_years, quotes.log_moneyness, quotes.mark

    def refuse(reason: str) -> tuple[SliceFit, None]:
        return SliceFit(t, int(k.size), None, np.nan, np.nan, None, reason), None

    if not (t > 0 and k.size >= MIN_QUOTES and np.all(np.isfinite(mark)) and np.all(mark > 0)):
        return refuse(f"need >= {MIN_QUOTES} finite positive quotes and T > 0")
    if np.unique(k).size != k.size:
        return refuse("two quotes at one strike")
    kept, dropped, reason = (quotes, 0, None) if cleaned else clean_quotes(quotes)
    if reason is not None:
        return refuse(reason)
    if dropped:
        quotes = kept
        k, mark = quotes.log_moneyness, quotes.mark
        weights = None  # the given weights were for the quotes before the drop
    weight = _weights(mark, *quotes.sides()) if weights is None else weights
    best = _search(t, k, mark, weight, previous)
    fitted = best.raw(t)
    problems = fitted.problems()
    if problems:  # unreachable by construction; kept as the check a publisher must pass
        return refuse("; ".join(problems))
    return _diagnose(quotes, fitted), best


def _diagnose(quotes: SliceQuotes, fitted: SviSlice) -> SliceFit:
    t, k, mark = quotes.expiry_years, quotes.log_moneyness, quotes.mark
    bid, ask = quotes.sides()
    model = np.sqrt(np.maximum(fitted.total_variance(k), 0.0) / t)
    error = model - mark
    two_sided = np.isfinite(bid) & np.isfinite(ask)
    inside = (model >= bid - 1e-12) & (model <= ask + 1e-12)
    share = float(np.mean(inside[two_sided])) if np.any(two_sided) else None
    rmse = float(np.sqrt(np.mean(error * error))) * 100
    return SliceFit(t, int(k.size), fitted, rmse, float(np.max(np.abs(error))) * 100, share)


def _refine(
    quotes: SliceQuotes, weight: Array, start: SviSlice, lower: SviSlice | None,
    upper: SviSlice | None,
) -> SviSlice:  # fmt: skip
    """Raw SVI by Zeliade's quasi-explicit method: for each (m, s) on a grid, (a, bρs, bs) by
    weighted linear least squares in total variance; a candidate counts only if b ≥ 0,
    |ρ| < 1, its density is at least DENSITY_FLOOR on its checked points and it lies between
    ``lower`` and ``upper`` (with CALENDAR_GAP) on their pairs' points, widened by a quarter.
    Three shrinking grids around the SSVI slice; the SSVI slice itself if nothing beats it."""
    t, k, mark = quotes.expiry_years, quotes.log_moneyness, quotes.mark
    target = mark * mark * t
    w_weight = weight / (2 * mark * t)  # dw = 2σT·dσ: the same error, in total variance
    best, best_cost = start, _cost(start, k, mark, weight, t)
    spread_m, spread_s = 0.5 * max(start.s, 1e-4) + 0.5 * float(np.sqrt(target.min())), 1.0
    for _ in range(3):
        ms = best.m + spread_m * np.linspace(-1, 1, 11)
        ss = best.s * np.exp(spread_s * np.linspace(-1, 1, 11))
        m, s = (g.ravel() for g in np.meshgrid(ms, ss, indexing="ij"))
        m, s = np.append(m, best.m), np.append(s, best.s)
        y = (k[None, :] - m[:, None]) / s[:, None]
        z = np.sqrt(y * y + 1)
        v = w_weight * w_weight
        sums = [float(np.sum(v))] + [np.sum(x * v, axis=1) for x in (y, z, y * y, y * z, z * z)]
        one, sy, sz, syy, syz, szz = (np.broadcast_to(x, m.shape) for x in sums)
        normal = np.stack([np.stack([one, sy, sz], -1), np.stack([sy, syy, syz], -1),
                           np.stack([sz, syz, szz], -1)], -2) + np.eye(3) * 1e-18  # fmt: skip
        rhs = np.stack([np.broadcast_to(float(np.sum(v * target)), m.shape),
                        (y * (v * target)).sum(1), (z * (v * target)).sum(1)], -1)  # fmt: skip
        a, c1, c2 = np.linalg.solve(normal, rhs[..., None])[..., 0].T
        ok = (c2 > 0) & (np.abs(c1) < c2 * 0.999) & (s > 1e-5) & (a + c2 * np.sqrt(
            np.maximum(1 - (c1 / np.where(c2 > 0, c2, 1)) ** 2, 0)) > 0)  # fmt: skip
        costs = np.where(ok, _costs(a, c1, c2, m, s, k, mark, weight, t), np.inf)
        ok &= costs < best_cost
        if np.count_nonzero(ok) > REFINE_CHECKED:  # only the cheapest few are checked
            ok &= costs <= np.partition(costs[ok], REFINE_CHECKED - 1)[REFINE_CHECKED - 1]
        if not np.any(ok):
            spread_m, spread_s = spread_m / 3, spread_s / 3
            continue
        b = np.where(ok, c2 / s, 0.0)
        rho = np.where(ok, c1 / np.where(ok, c2, 1.0), 0.0)
        params = np.stack([a, b, rho, m, s])[:, ok]
        feasible = _admissible(params, t, lower, upper)
        if np.any(feasible):
            pick = int(np.argmin(np.where(feasible, costs[ok], np.inf)))
            best = SviSlice(t, *(float(v) for v in params[:, pick]))
            best_cost = float(costs[ok][pick])
        spread_m, spread_s = spread_m / 3, spread_s / 3
    return best


REFINE_CHECKED = 12
DENSITY_FLOOR = 1e-6  # a refined slice keeps this much density (parameters are rounded to 1e-9)


def _admissible(params: Array, t: float, lower: SviSlice | None, upper: SviSlice | None) -> Array:
    """For each candidate (a, b, ρ, m, s) column: density ≥ DENSITY_FLOOR on its checked
    points, and between ``lower`` and ``upper`` on their pairs' points (widened by a quarter)."""
    a, b, rho, m, s = (p[:, None] for p in params)
    atm = a + b * (rho * -m + np.sqrt(m * m + s * s))
    unit = -1 + np.arange(CHECK_STEPS + 1)[None, :] * (2 / CHECK_STEPS)
    k = unit * CHECK_SD * np.sqrt(np.maximum(atm, 0.0))
    d = k - m
    root = np.sqrt(d * d + s * s)
    w = a + b * (rho * d + root)
    w1 = b * (rho + d / root)
    w2 = b * s * s / root**3
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1 - k * w1 / (2 * w)) ** 2 - w1 * w1 / 4 * (1 / w + 0.25) + w2 / 2
    ok = np.all((w > 0) & (g >= DENSITY_FLOOR), axis=1)
    for neighbour, sign in ((lower, 1.0), (upper, -1.0)):
        if neighbour is None:
            continue
        wide = np.maximum(atm, float(neighbour.total_variance(0.0)))
        points = unit * (CHECK_SD * 1.25) * np.sqrt(np.maximum(wide, 0.0))
        d = points - m
        mine = a + b * (rho * d + np.sqrt(d * d + s * s))
        gap = sign * (mine - neighbour.total_variance(points))
        ok &= np.all(gap >= CALENDAR_GAP, axis=1)
    return np.asarray(ok)


def _cost(fitted: SviSlice, k: Array, mark: Array, weight: Array, t: float) -> float:
    error = (np.sqrt(np.maximum(fitted.total_variance(k), 0.0) / t) - mark) * weight
    return float(np.sum(error * error))


def _costs(
    a: Array, c1: Array, c2: Array, m: Array, s: Array, k: Array, mark: Array, weight: Array,
    t: float,
) -> Array:  # fmt: skip
    y = (k[None, :] - m[:, None]) / s[:, None]
    w = a[:, None] + c1[:, None] * y + c2[:, None] * np.sqrt(y * y + 1)
    error = (np.sqrt(np.maximum(w, 0.0) / t) - mark[None, :]) * weight[None, :]
    return np.asarray(np.sum(error * error, axis=1))


def _weights(mark: Array, bid: Array, ask: Array) -> Array:
    """1/spread in volatility (floored at SPREAD_FLOOR); a one-sided or unquoted option counts
    as twice the slice's median spread; no spreads at all: equal weights."""
    spread = ask - bid
    known = np.isfinite(spread) & (spread > 0)
    if not np.any(known):
        return np.ones_like(mark)
    wide = 2 * float(np.median(spread[known]))
    return 1 / np.maximum(np.where(known, spread, wide), SPREAD_FLOOR)


def _psi_max(theta: Array, rho: Array) -> Array:
    """The largest ψ with no butterfly (Gatheral & Jacquier, Theorem 4.2), kept inside."""
    room = 1 + np.abs(rho)
    return np.asarray(np.minimum(4 / room, 2 * np.sqrt(theta / room)) * (1 - BUTTERFLY_MARGIN))


def _search(t: float, k: Array, mark: Array, weight: Array, previous: Essvi | None) -> Essvi:
    """A coarse grid over (θ, ρ, u = ψ/ψ_max) and four shrinking local grids around the best."""
    w_market = mark * mark * t
    order = np.argsort(k)
    atm = float(np.interp(0.0, k[order], w_market[order]))
    theta_min = 0.0 if previous is None else previous.theta * (1 + 1e-5) + CALENDAR_GAP
    theta0 = max(atm, theta_min)
    thetas = np.maximum(theta0 * np.array([0.9, 1.0, 1.1]), theta_min)
    rhos = np.linspace(-0.9, 0.9, 19)
    us = np.geomspace(0.01, 1.0, 12)
    grid = np.stack(np.meshgrid(thetas, rhos, np.log(us), indexing="ij")).reshape(3, -1)
    best = _best(grid, t, k, mark, weight, previous)
    steps = np.array([0.05 * theta0, 0.06, 0.3])
    offsets = np.stack(np.meshgrid(*[np.linspace(-1, 1, 5)] * 3, indexing="ij")).reshape(3, -1)
    for _ in range(4):
        candidates = best[:, None] + steps[:, None] * offsets
        candidates[0] = np.maximum(candidates[0], max(theta_min, 1e-12))
        candidates[1] = np.clip(candidates[1], -0.98, 0.98)
        candidates[2] = np.minimum(candidates[2], 0.0)
        best = _best(np.concatenate([candidates, best[:, None]], axis=1), t, k, mark, weight,
                     previous)  # fmt: skip
        steps = steps / 2
    theta, rho = float(best[0]), float(best[1])
    psi = float(np.exp(best[2]) * _psi_max(best[0], best[1]))
    return Essvi(theta, rho, psi)


def _best(
    grid: Array, t: float, k: Array, mark: Array, weight: Array, previous: Essvi | None
) -> Array:
    """The candidate (θ, ρ, log u) with the least weighted squared volatility error among
    those that stay above the previous slice (and keep s ≤ 50, the engine's bound)."""
    theta, rho, log_u = grid
    psi = np.exp(log_u) * _psi_max(theta, rho)
    feasible = psi >= theta * np.sqrt(1 - rho * rho) / 50
    if previous is not None:
        wing = np.abs(rho * psi - previous.rho * previous.psi)
        feasible &= (psi - previous.psi >= wing) & (theta > previous.theta)
    kk = k[None, :]
    w = 0.5 * (theta[:, None] + rho[:, None] * psi[:, None] * kk) + 0.5 * np.sqrt(
        (psi[:, None] * kk + (rho * theta)[:, None]) ** 2
        + (theta * theta * (1 - rho * rho))[:, None]
    )
    error = (np.sqrt(np.maximum(w, 0.0) / t) - mark[None, :]) * weight[None, :]
    cost = np.where(feasible, np.sum(error * error, axis=1), np.inf)
    if not np.isfinite(cost).any():  # only the previous slice's shape, raised, is left
        assert previous is not None
        theta_up = max(float(theta.max()), previous.theta * (1 + 1e-5) + CALENDAR_GAP)
        return np.array([theta_up, previous.rho, float(np.log(previous.psi
                         / _psi_max(np.array(theta_up), np.array(previous.rho))))])  # fmt: skip
    return np.asarray(grid[:, int(np.argmin(cost))])


def core_slices(
    fitted: VolSurface, expiries_ns: Sequence[int],
    forward_basis_ppm: Mapping[int, int] | None = None,
) -> tuple[core_surface.SviSlice, ...]:  # fmt: skip
    """The surface as the engine holds it (parameters in parts per 10⁹), one expiry in ns per
    slice; each with the publisher's forward basis of its expiry where ``forward_basis_ppm``
    has one (``chain.forward_basis_ppm``)."""
    bases = {} if forward_basis_ppm is None else forward_basis_ppm
    assert len(expiries_ns) == len(fitted.slices), (len(expiries_ns), len(fitted.slices))
    e9 = core_surface.E9
    return tuple(
        core_surface.SviSlice(
            expiry_ns=expiry_ns,
            a_e9=round(s.a * e9),
            b_e9=round(s.b * e9),
            rho_e9=round(s.rho * e9),
            m_e9=round(s.m * e9),
            s_e9=round(s.s * e9),
            forward_basis_ppm=bases.get(expiry_ns),
        )
        for expiry_ns, s in zip(expiries_ns, fitted.slices, strict=True)
    )
