"""The implied-volatility surface held in state (SPEC §5): raw SVI slices published by an
oracle's publishers, checked for static arbitrage when they arrive, read by option marks and
portfolio margin.

A slice is an expiry (ns) and raw SVI parameters in parts per 10⁹: total implied variance at
log-moneyness k = ln(K/F), as of the surface's timestamp, is

    w(k) = a + b·(ρ·(k − m) + √((k − m)² + s²)).

Between slices, total variance is interpolated linearly in time to expiry; before the first and
after the last, volatility is held flat. A surface is read as implied volatilities: a price
taken later than the surface's timestamp uses σ(k, E) = √(w(k, E)/T_surface(E)) with the time
left now.

Floats here are IEEE operations that are correctly rounded on every machine (+, −, ×, ÷, √):
two replays of a journal read the same volatility. The checks are the scalar twin of
``clearhouse.pricing.svi`` (Gatheral's g(k) ≥ 0 for butterflies, w non-decreasing in T for
calendars) on the same log-moneyness points.

Where a surface is checked: each slice over ±``CHECK_SD`` standard deviations of its own
expiry, √w(0) = σ_ATM·√T, in ``CHECK_STEPS`` equal steps; a pair of slices over the wider of
their two ranges. Publishers fit quotes out to ``QUOTED_SD`` = 8 standard deviations (real
Deribit chains quote a premium of at least 0.0001 BTC out to a median of 4–7 of them), so the
check covers the quoted range plus a margin of two standard deviations — and nothing beyond:
two slices fitted independently may cross far outside anything quoted (a fixed ±1.5 of
log-moneyness is ±200 standard deviations of a one-day expiry) without an arbitrage anyone
could trade at a quoted strike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import sqrt

from clearhouse.core import limits
from clearhouse.core.units import NS_PER_YEAR

E9 = 1_000_000_000
QUOTED_SD = 8.0  # publishers fit quotes out to this many standard deviations σ_ATM·√T
CHECK_SD = QUOTED_SD + 2.0  # checked: the quoted range plus two standard deviations
CHECK_STEPS = 200  # points per checked range, minus one
DENSITY_TOLERANCE = 1e-9
CALENDAR_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True, kw_only=True)
class SviSlice:
    expiry_ns: int
    a_e9: int  # total variance level
    b_e9: int  # wings
    rho_e9: int  # skew, in (−10⁹, 10⁹)
    m_e9: int  # horizontal shift, log-moneyness
    s_e9: int  # smoothness at the vertex, > 0
    # The publisher's forward of this expiry as its basis to its own index, (F − S)/S in parts
    # per million (a chain's ``underlying_price`` against its index): optional, None where the
    # publisher does not say (and then left out of the command's bytes, its EIP-712 message an
    # empty list, its state leaf unchanged). Bounds how far the venue's own futures curve may
    # move the forward options of this expiry are marked on (``core/engine/forwards.py``).
    forward_basis_ppm: int | None = None

    def total_variance(self, k: float) -> float:
        return _total_variance(_coefficients(self), k)

    def density(self, k: float) -> float:
        """Gatheral's g(k); negative means a butterfly arbitrage at k."""
        return _density(_coefficients(self), k)

    def shape_problems(self) -> list[str]:
        bounded = all(abs(v) <= 100 * E9 for v in (self.a_e9, self.b_e9, self.m_e9, self.s_e9))
        if not (bounded and self.b_e9 >= 0 and abs(self.rho_e9) < E9 and self.s_e9 > 0):
            return ["parameters outside b >= 0, |rho| < 1, s > 0 (and |a|, |b|, |m|, s <= 100)"]
        if not self.minimum_variance() > 0:
            return ["total variance not positive everywhere"]
        coefficients = _coefficients(self)
        points = check_points(_total_variance(coefficients, 0.0))
        bad = [k for k in points if _density(coefficients, k) < -DENSITY_TOLERANCE]
        if bad:
            return [f"butterfly arbitrage at log-moneyness {bad[0]:.4f}..{bad[-1]:.4f}"]
        return []

    def minimum_variance(self) -> float:
        a, b, rho, s = (v / E9 for v in (self.a_e9, self.b_e9, self.rho_e9, self.s_e9))
        return a + b * s * sqrt(1 - rho * rho)


def forward_problems(slices: Sequence[SviSlice]) -> list[str]:
    """Why a surface's reported forwards may not enter state; empty when each is absent or
    within ``limits.forward_basis_ppm_max`` of the index."""
    bound = limits.forward_basis_ppm_max
    for piece in slices:
        basis = piece.forward_basis_ppm
        if basis is not None and abs(basis) > bound:
            return [f"forward basis {basis} ppm at expiry {piece.expiry_ns} beyond ±{bound}"]
    return []


def check_points(atm_variance: float) -> list[float]:
    """Log-moneyness checked for an expiry whose at-the-money total variance is this:
    ±CHECK_SD·√w(0) in CHECK_STEPS equal steps (the numpy twin computes the same floats)."""
    half = CHECK_SD * sqrt(max(atm_variance, 0.0))
    step = 2 * half / CHECK_STEPS
    return [-half + i * step for i in range(CHECK_STEPS + 1)]


def years(duration_ns: int) -> float:
    return duration_ns / NS_PER_YEAR


def problems(slices: Sequence[SviSlice], timestamp_ns: int) -> list[str]:
    """Why this surface may not enter state; empty when it is arbitrage-free."""
    if not 0 < len(slices) <= limits.surface_slices_max:
        return ["between 1 and surface_slices_max slices"]
    expiries = [s.expiry_ns for s in slices]
    if expiries != sorted(set(expiries)) or expiries[0] <= timestamp_ns:
        return ["slice expiries must be distinct, increasing and after the surface's timestamp"]
    if expiries[-1] > timestamp_ns + limits.expiry_horizon_ns:
        return ["slice expiries at most expiry_horizon_ns after the surface's timestamp"]
    for found in (p for s in slices for p in s.shape_problems()):
        return [found]
    for early, late in pairwise(slices):
        before, after = _coefficients(early), _coefficients(late)
        atm = max(_total_variance(before, 0.0), _total_variance(after, 0.0))
        for k in check_points(atm):
            if _total_variance(after, k) - _total_variance(before, k) < -CALENDAR_TOLERANCE:
                return [f"calendar arbitrage between expiries {early.expiry_ns} and "
                        f"{late.expiry_ns} at log-moneyness {k:.4f}"]  # fmt: skip
    return []


def volatility(
    slices: Sequence[SviSlice], *, timestamp_ns: int, expiry_ns: int, log_moneyness: float
) -> float:
    """Implied volatility for an expiry, read off the surface as of its timestamp."""
    return ExpiryRead(slices, timestamp_ns=timestamp_ns, expiry_ns=expiry_ns).volatility(
        log_moneyness
    )


class ExpiryRead:
    """A surface read at one expiry: which slices, their parameters as floats and the time
    scaling are fixed once, so that each strike costs only its own arithmetic. The operations
    and their order are ``SviSlice.total_variance``'s: the same digits as reading the slices."""

    __slots__ = ("divisor", "early", "late", "share")

    def __init__(self, slices: Sequence[SviSlice], *, timestamp_ns: int, expiry_ns: int) -> None:
        assert slices and expiry_ns > timestamp_ns, (expiry_ns, timestamp_ns)
        first, last = slices[0], slices[-1]
        self.late: tuple[float, float, float, float, float] | None = None
        self.share = 0.0
        if expiry_ns <= first.expiry_ns:
            self.early = _coefficients(first)
            self.divisor = years(first.expiry_ns - timestamp_ns)
        elif expiry_ns >= last.expiry_ns:
            self.early = _coefficients(last)
            self.divisor = years(last.expiry_ns - timestamp_ns)
        else:
            right = next(i for i, s in enumerate(slices) if s.expiry_ns >= expiry_ns)
            early, late = slices[right - 1], slices[right]
            self.early, self.late = _coefficients(early), _coefficients(late)
            self.share = (expiry_ns - early.expiry_ns) / (late.expiry_ns - early.expiry_ns)
            self.divisor = years(expiry_ns - timestamp_ns)

    def volatility(self, log_moneyness: float) -> float:
        """Flat beyond the first and last slices (their variance over their own time), else
        total variance interpolated linearly in time, over the time to this expiry."""
        a, b, rho, m, s = self.early
        d = log_moneyness - m
        w_early = a + b * (rho * d + sqrt(d * d + s * s))
        if self.late is None:
            return sqrt(max(w_early / self.divisor, 0.0))
        a, b, rho, m, s = self.late
        d = log_moneyness - m
        w_late = a + b * (rho * d + sqrt(d * d + s * s))
        return sqrt(max(w_early + self.share * (w_late - w_early), 0.0) / self.divisor)


def _total_variance(coefficients: tuple[float, float, float, float, float], k: float) -> float:
    """w(k) = a + b·(ρ·(k − m) + √((k − m)² + s²))."""
    a, b, rho, m, s = coefficients
    d = k - m
    return a + b * (rho * d + sqrt(d * d + s * s))


def _density(coefficients: tuple[float, float, float, float, float], k: float) -> float:
    """Gatheral's g(k) from w and its first two derivatives in k."""
    a, b, rho, m, s = coefficients
    d = k - m
    root = sqrt(d * d + s * s)
    w = a + b * (rho * d + root)  # _total_variance, its square root shared
    if w <= 0:
        return float("-inf")
    w1 = b * (rho + d / root)
    w2 = b * s * s / (root * root * root)
    return (1 - k * w1 / (2 * w)) ** 2 - w1 * w1 / 4 * (1 / w + 0.25) + w2 / 2


def _coefficients(piece: SviSlice) -> tuple[float, float, float, float, float]:
    """(a, b, ρ, m, s) as floats, each one correctly rounded division of its integer."""
    return (
        piece.a_e9 / E9, piece.b_e9 / E9, piece.rho_e9 / E9, piece.m_e9 / E9, piece.s_e9 / E9,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Candidate:
    """One publisher's newest surface."""

    publisher: str
    weight: int
    timestamp_ns: int
    slices: tuple[SviSlice, ...]


SCORE_HORIZON_NS = 30 * 24 * 3600 * 10**9  # surfaces are ranked by their 30-day ATM volatility


def select(
    candidates: Sequence[Candidate], *, total_weight: int, quorum_ppm: int
) -> Candidate | None:
    """The surface a venue uses: among fresh publishers' surfaces holding a quorum of weight,
    the one whose 30-day at-the-money volatility is the weighted median (the index's rule for
    prices, applied to surfaces): one publisher alone can neither move it nor stop it."""
    weight = sum(c.weight for c in candidates)
    if not candidates or weight * 1_000_000 < quorum_ppm * total_weight:
        return None
    scored = sorted(((_score(c), c.publisher), c) for c in candidates)
    running = 0
    for _, candidate in scored:
        running += candidate.weight
        if running * 2 >= weight:
            return candidate
    raise AssertionError("unreachable: cumulative weight reaches the total")


def _score(candidate: Candidate) -> int:
    vol = volatility(
        candidate.slices, timestamp_ns=candidate.timestamp_ns,
        expiry_ns=candidate.timestamp_ns + SCORE_HORIZON_NS, log_moneyness=0.0,
    )  # fmt: skip
    return round(vol * 1_000_000)
