"""Black-76 for the deterministic core: the same price on every machine that replays a journal.

The vectorized pricer (``clearhouse.pricing.black76``) calls the platform's libm and SIMD
kernels, whose last bits differ between machines; a state root may not depend on them. This
module uses only IEEE-754 operations that are correctly rounded everywhere (+, −, ×, ÷, sqrt)
and exact scalings by powers of two (``ldexp``/``frexp``), in a fixed order: exp, log and erfcx
are written out below. Results agree with the libm versions to ~1e-15 relative; the engine turns
them into integers (rounded against the account) before anything reaches state.

Portfolio margin (SPEC §6) prices each instrument a few dozen times per scenario grid: scalar
Python is fast enough for the engine's per-command checks; the vectorized pricer serves bulk work.
"""

from __future__ import annotations

from math import frexp, ldexp, sqrt

LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that n·LN2_HI is exact for |n| < 2^11
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
SQRT_PI = 1.7724538509055160273
INV_SQRT_2PI = 0.39894228040143267794
SQRT2 = 1.4142135623730950488
EXP_TERMS = 14  # |r| ≤ ln2/2: the Taylor remainder is below 1e-19
LOG_TERMS = 24  # |z| ≤ 0.1716: z^{2n+1}/(2n+1) below 1e-19
ERFCX_FRACTION_TERMS = 60  # the continued fraction for y ≥ 2: below 1e-16 relative
ERFCX_FRACTION_TERMS_NEAR = 150  # for 1 ≤ y < 2, where it converges more slowly
ERF_SERIES_TERMS = 60  # 0 ≤ y < 1


def exp(x: float) -> float:
    """e^x: range reduction by ln 2 (Cody-Waite), a Taylor polynomial, an exact scaling.

    The polynomial is written out term by term, t_k = t_{k−1}·r/k summed from k = 0 upward:
    the same operations in the same order as a loop over k, without the loop's cost."""
    if x > 709.78:
        return float("inf")
    if x < -745.2:
        return 0.0
    n = int(x * INV_LN2 + (0.5 if x >= 0 else -0.5))
    r = (x - n * LN2_HI) - n * LN2_LO
    # 1.0·r/1 is r exactly: the first two terms need no operation.
    term = r * r / 2
    total = 1.0 + r + term
    term = term * r / 3
    total += term
    term = term * r / 4
    total += term
    term = term * r / 5
    total += term
    term = term * r / 6
    total += term
    term = term * r / 7
    total += term
    term = term * r / 8
    total += term
    term = term * r / 9
    total += term
    term = term * r / 10
    total += term
    term = term * r / 11
    total += term
    term = term * r / 12
    total += term
    term = term * r / 13
    total += term
    term = term * r / 14
    total += term
    return ldexp(total, n)


assert EXP_TERMS == 14, "exp writes out EXP_TERMS terms"


def log(x: float) -> float:
    """ln x for x > 0: x = m·2^e with m in [√½, √2), then 2·atanh((m − 1)/(m + 1))."""
    assert x > 0, x
    m, e = frexp(x)  # m in [0.5, 1)
    if m < 0.7071067811865476:
        m *= 2.0
        e -= 1
    z = (m - 1.0) / (m + 1.0)
    z2 = z * z
    power = z
    total = 0.0
    for odd in _LOG_ODD:
        total += power / odd
        power *= z2
    return 2.0 * total + e * LN2_HI + e * LN2_LO


_LOG_ODD = tuple(2 * k + 1 for k in range(LOG_TERMS))  # the series' denominators, 1, 3, 5, ...


def erfcx(y: float) -> float:
    """e^{y²}·erfc(y): a continued fraction for y ≥ 1 (e^{y²} − e^{y²}·erf(y) would cancel up
    to two digits near 2), the erf series below 1, reflection below 0."""
    if y < 0.0:
        return 2.0 * exp(y * y) - erfcx(-y)
    if y >= 2.0:
        return _erfcx_fraction(y, ERFCX_FRACTION_TERMS)
    if y >= 1.0:
        return _erfcx_fraction(y, ERFCX_FRACTION_TERMS_NEAR)
    return exp(y * y) - _erf_series_scaled(y)


def _erfcx_fraction(y: float, terms: int) -> float:
    """erfcx(y) = (1/√π) / (y + (1/2)/(y + 1/(y + (3/2)/(y + ...)))), evaluated bottom-up."""
    tail = y
    for half in _HALVES[terms]:
        tail = y + half / tail
    return 1.0 / (SQRT_PI * tail)


# k/2.0 for k = terms … 1: each exact, so the table gives the loop's own quotients.
_HALVES = {
    terms: tuple(k / 2.0 for k in range(terms, 0, -1))
    for terms in (ERFCX_FRACTION_TERMS, ERFCX_FRACTION_TERMS_NEAR)
}


def _erf_series_scaled(y: float) -> float:
    """e^{y²}·erf(y) = (2/√π)·Σ 2^n y^{2n+1} / (1·3·5···(2n+1)): all terms positive."""
    term = y
    total = y
    y2 = 2.0 * y * y
    for odd in _ERF_ODD:
        term = term * y2 / odd
        total += term
        if term < 1e-18 * total:
            break
    return 2.0 / SQRT_PI * total


_ERF_ODD = tuple(2 * n + 1 for n in range(1, ERF_SERIES_TERMS + 1))  # 3, 5, 7, ...


def normalized(log_moneyness: float, total_vol: float, theta: float) -> float:
    """b_θ = V / (D·√(FK)) for a call (θ = 1) or put (θ = −1), in Jäckel's OTM form; the ITM
    side is its OTM partner plus the intrinsic value (see pricing.black76)."""
    x, s = log_moneyness, total_vol
    otm_sign = theta if theta * x <= 0 else -theta
    h, t = x / s, 0.5 * s
    d1, d2 = h + t, h - t
    scale = 0.5 * otm_sign * exp(-0.5 * (h * h + t * t))
    b = scale * (erfcx(-otm_sign * d1 / SQRT2) - erfcx(-otm_sign * d2 / SQRT2))
    if otm_sign == theta:
        return b
    return b + theta * (exp(0.5 * x) - exp(-0.5 * x))


def price(
    *, is_call: bool, forward: float, strike: float, expiry_years: float, volatility: float,
    discount: float = 1.0,
) -> float:  # fmt: skip
    """Black-76 price; at or past expiry, or with no volatility, the discounted intrinsic."""
    assert forward > 0 and strike > 0 and discount > 0
    theta = 1.0 if is_call else -1.0
    if expiry_years <= 0 or volatility <= 0:
        return discount * max(theta * (forward - strike), 0.0)
    b = normalized(log(forward / strike), volatility * sqrt(expiry_years), theta)
    return discount * sqrt(forward * strike) * b


D1_CLAMP = 38.0  # N(±38) is 1 and 0 to double precision; beyond it e^{d1²/2} would overflow


def greeks(
    *, is_call: bool, forward: float, strike: float, expiry_years: float, volatility: float
) -> tuple[float, float, float, float]:
    """Undiscounted Black-76 (delta, gamma, vega per 1.00 of volatility, theta per year); at or
    past expiry, or with no volatility, the intrinsic value's delta and nothing else."""
    assert forward > 0 and strike > 0
    if expiry_years <= 0 or volatility <= 0:
        in_the_money = forward > strike if is_call else forward < strike
        return (1.0 if is_call else -1.0) if in_the_money else 0.0, 0.0, 0.0, 0.0
    root_t = sqrt(expiry_years)
    total = volatility * root_t
    d1 = log(forward / strike) / total + 0.5 * total
    d1 = min(max(d1, -D1_CLAMP), D1_CLAMP)
    gaussian = exp(-0.5 * d1 * d1)
    # N(d1) = ½·erfc(−d1/√2) and 1 − N(d1) = ½·erfc(d1/√2): each side from the tail that
    # erfcx keeps finite, so neither delta loses its digits or meets ∞ × 0.
    tail = 0.5 * gaussian * erfcx(abs(d1) / SQRT2)
    call_delta = tail if d1 < 0 else 1.0 - tail
    put_delta = call_delta - 1.0 if d1 < 0 else -tail
    density = INV_SQRT_2PI * gaussian
    delta = call_delta if is_call else put_delta
    gamma = density / (forward * total)
    vega = forward * density * root_t
    theta = -forward * density * volatility / (2.0 * root_t)
    return delta, gamma, vega, theta
