"""Issue 16, items 1-4: each defect of the old surface fit, on synthetic Deribit-format chains
built the way real ones are (``chain.synthetic_chain``: marks rounded to 0.01 volatility point
and the premium to the tick, bid/ask around them, expiries from six hours to a year, the skew
and term structure of Deribit's BTC chains). These tests use only what the old fit offered too
(``check_quotes``, ``fit_slice``, ``fit_surface``, ``core.surface.problems``): each failed
before the fix."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from clearhouse.core import surface as core_surface
from clearhouse.core.units import NS_PER_YEAR
from clearhouse.pricing import black76, svi
from clearhouse.pricing.chain import parse_chain, slices_for_fit, synthetic_chain

NOW_NS = int(datetime(2025, 3, 3, 2, tzinfo=UTC).timestamp()) * 10**9  # 6 h before 08:00
SEEDS = range(4)


def chain_slices(seed: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
    return slices_for_fit(parse_chain(synthetic_chain(seed, NOW_NS)), NOW_NS)


@pytest.mark.parametrize("seed", SEEDS)
def test_1_marks_rounded_to_the_tick_pass_the_quote_check(seed: int) -> None:
    """Rounded marks break butterfly bounds by less than a tick: that is noise, not arbitrage."""
    for t, k, iv in chain_slices(seed):
        svi.check_quotes(t, k, iv)


def test_1_a_violation_of_less_than_a_tick_is_accepted_and_more_is_refused() -> None:
    """A wing call raised until its butterfly is worth 0.4 tick below zero: accepted (noise);
    3 ticks below zero: refused."""
    t, k, iv = chain_slices(0)[4]  # 7 days
    calls = black76.price(True, 1.0, np.exp(k), t, iv)
    wing = int(np.argmin(np.abs(calls - 0.002)))  # a wing call worth 0.002 BTC (tick 0.0001)
    low, high = np.exp(k[wing - 1]), np.exp(k[wing + 1])
    share = (high - np.exp(k[wing])) / (high - low)
    fly = share * calls[wing - 1] + (1 - share) * calls[wing + 1] - calls[wing]
    assert fly > 0
    vega = float(black76.greeks(True, 1.0, np.exp(k[wing]), t, iv[wing]).vega)
    for ticks, refused in ((0.4, False), (3.0, True)):
        bumped = iv.copy()
        bumped[wing] += (fly + ticks * 0.0001) / vega  # the butterfly this many ticks below 0
        if refused:
            with pytest.raises(svi.ArbitrageError, match="arbitrage"):
                svi.check_quotes(t, k, bumped)
        else:
            svi.check_quotes(t, k, bumped)


@pytest.mark.parametrize("seed", SEEDS)
def test_2_short_dated_fits_pass_their_own_butterfly_check(seed: int) -> None:
    """Slices of up to seven days fit to a slice with no butterfly on its checked range."""
    short = [s for s in chain_slices(seed) if s[0] <= 7.5 / 365]
    assert len(short) == 5
    for t, k, iv in short:
        fitted = svi.fit_slice(t, k, iv)
        assert fitted.problems() == []


@pytest.mark.parametrize("seed", SEEDS)
def test_3_a_whole_chain_fits_without_false_calendar_arbitrage(seed: int) -> None:
    """Hours to a year: the surface is accepted by the fit's own checks and by the engine's."""
    slices = chain_slices(seed)
    surface = svi.fit_surface(slices)
    expiries = [NOW_NS + round(s.expiry_years * NS_PER_YEAR) for s in surface.slices]
    published = tuple(
        core_surface.SviSlice(
            expiry_ns=e,
            a_e9=round(s.a * 1e9),
            b_e9=round(s.b * 1e9),
            rho_e9=round(s.rho * 1e9),
            m_e9=round(s.m * 1e9),
            s_e9=round(s.s * 1e9),
        )
        for e, s in zip(expiries, surface.slices, strict=True)
    )
    assert core_surface.problems(published, NOW_NS) == []


def test_4_the_fit_is_weighted_by_the_spread() -> None:
    """Where the spread is tight (at the money) the fitted volatility is inside the bid/ask;
    with equal weights a wide, noisy wing would pull it out."""
    rows = parse_chain(synthetic_chain(1, NOW_NS))
    inside = total = 0
    by_expiry: dict[int, list[tuple[float, float, float, float]]] = {}
    for q in rows:
        k = float(np.log(q.strike / q.forward))
        if (k >= 0) == q.is_call and q.bid_iv and q.ask_iv and abs(k) < 0.05:
            by_expiry.setdefault(q.expiry_ns, []).append((k, q.mark_iv, q.bid_iv, q.ask_iv))
    surface = svi.fit_surface(chain_slices(1))
    for expiry_ns, quotes in by_expiry.items():
        t = (expiry_ns - NOW_NS) / NS_PER_YEAR
        for k, _, bid, ask in quotes:
            fitted = float(surface.volatility(k, t))
            inside += bid <= fitted <= ask
            total += 1
    assert total > 50
    assert inside / total >= 0.97


def test_3_short_slices_that_would_cross_far_from_their_quotes_do_not_refuse_the_surface() -> None:
    """A one-day smile with a steeper put wing than the two-day one: fitted independently, the
    two cross near k = −0.9, far beyond anything quoted (±8 σ√T, about ±0.35); a fixed ±1.5
    check called that calendar arbitrage. The fit keeps the later slice above the earlier one
    over the checked range, and the engine accepts the surface."""
    early = svi.SviSlice(1 / 365, 0.0006, 0.03, -0.6, 0.0, 0.02)
    late = svi.SviSlice(2 / 365, 0.0013, 0.0295, -0.6, 0.0, 0.02)
    quotes = []
    for true in (early, late):
        sd = float(np.sqrt(true.total_variance(0.0)))
        k = np.linspace(-8 * sd, 8 * sd, 21)
        iv = np.round(np.sqrt(true.total_variance(k) / true.expiry_years), 4)
        quotes.append((true.expiry_years, k, iv))
    assert late.total_variance(-1.2) < early.total_variance(-1.2)
    surface = svi.fit_surface(quotes)
    for (t, k, iv), fitted in zip(quotes, surface.slices, strict=True):
        assert np.max(np.abs(np.sqrt(fitted.total_variance(k) / t) - iv)) < 0.005
    published = tuple(
        core_surface.SviSlice(
            expiry_ns=NOW_NS + round(s.expiry_years * NS_PER_YEAR),
            a_e9=round(s.a * 1e9),
            b_e9=round(s.b * 1e9),
            rho_e9=round(s.rho * 1e9),
            m_e9=round(s.m * 1e9),
            s_e9=round(s.s * 1e9),
        )
        for s in surface.slices
    )
    assert core_surface.problems(published, NOW_NS) == []
