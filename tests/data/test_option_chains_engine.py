"""Real Deribit chains (``../shared/data/options``) after the fit, through the core: option
marks read off the published surface (``core.surface`` + ``core.option_math``, what
``core/engine/valuation.py`` does at the chain's own forwards) against the real bid/ask,
the core's Greeks against py_vollib on every real row, and portfolio margin of real books
(``core.scenario_grid``) against a Deribit-style risk matrix. Measured numbers are in
docs/RELIABILITY.md, "Real chains through the engine, round 9"; ``pytest -s`` prints them."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from clearhouse.core import limits, option_math
from clearhouse.core import surface as core_surface
from clearhouse.core.ids import MarketId
from clearhouse.core.payoffs import call, put
from clearhouse.core.scenario_grid import Instrument, combine, profile
from clearhouse.core.series import market_id
from clearhouse.pricing import svi
from clearhouse.pricing.chain import OptionQuote, quotes_for_fit
from clearhouse.sim.venue import USDC, btc_option_series, options_vault, report_surface
from helpers import ONE_BTC, PRICE, Venue, accepted
from ladder import quote as rest_quotes
from options import (
    deposit_options_vault,
    operator_listing,
    option_params,
    reference_black76,
    setup_options_vault,
)

from .loaders import requires_data
from .test_option_chains_real import BOOK_SUMMARY, TARDIS, book_summary, snapshots

pytestmark = requires_data(*TARDIS, BOOK_SUMMARY)

TICK = 1e-4  # Deribit's smallest option tick, in the coin


def _years(expiry_ns: int, now_ns: int) -> float:
    return core_surface.years(expiry_ns - now_ns)


def _price(quote: OptionQuote, years: float, vol: float) -> float:
    return option_math.price(
        is_call=quote.is_call, forward=quote.forward, strike=quote.strike, expiry_years=years,
        volatility=vol,
    )  # fmt: skip


def test_marks_off_the_published_surface_lie_within_the_real_bid_ask() -> None:
    """Every snapshot's fit, as the engine holds it (parameters in 10⁻⁹, expiries in ns),
    read at each two-sided option's strike and expiry: the mark lies within the bid/ask
    widened by a tick at 96% of options under a day and 86% overall (measured: 98% and
    88%); the misses are slices the fit bends away from (docs/RELIABILITY.md)."""
    counts: Counter[str] = Counter()
    for _, now_ns, quotes in snapshots():
        fit = svi.calibrate(quotes_for_fit(quotes, now_ns))
        assert fit.surface is not None
        kept = [s for s in fit.slices if s.slice is not None]
        expiries = [now_ns + round(s.expiry_years * 365 * 86_400 * 10**9) for s in kept]
        slices = svi.core_slices(fit.surface, expiries)
        assert core_surface.problems(slices, now_ns) == []
        for quote in quotes:
            if quote.expiry_ns <= now_ns or not (quote.bid_iv and quote.ask_iv):
                continue
            years = _years(quote.expiry_ns, now_ns)
            vol = core_surface.volatility(
                slices, timestamp_ns=now_ns, expiry_ns=quote.expiry_ns,
                log_moneyness=math.log(quote.strike / quote.forward),
            )  # fmt: skip
            mark = _price(quote, years, min(max(vol, 0.01), 10.0))
            bid, ask = _price(quote, years, quote.bid_iv), _price(quote, years, quote.ask_iv)
            tick = TICK * quote.forward
            bucket = "day" if years * 365 < 1 else "longer"
            counts[bucket] += 1
            counts[bucket + " inside"] += bid - tick <= mark <= ask + tick
    day = counts["day inside"] / counts["day"]
    overall = (counts["day inside"] + counts["longer inside"]) / (counts["day"] + counts["longer"])
    print(f"\nmarks inside the real bid/ask (± a tick): under a day {day:.1%} of "
          f"{counts['day']}, overall {overall:.1%}")  # fmt: skip
    assert day >= 0.96
    assert overall >= 0.86


def test_core_greeks_match_py_vollib_on_every_real_row() -> None:
    """``option_math.greeks`` (delta, gamma, vega per 1.00, theta per year) against py_vollib's
    analytical Black greeks (vega per point, theta per day) at each real row's forward, strike,
    time and mark_iv: measured 9e-16 in delta, 2e-14 relative in the others."""
    greeks = pytest.importorskip("py_vollib.black.greeks.analytical")
    worst = [0.0, 0.0, 0.0, 0.0]
    rows = 0
    for _, now_ns, quotes in snapshots():
        for q in quotes:
            if q.expiry_ns <= now_ns:
                continue
            years, flag = _years(q.expiry_ns, now_ns), "c" if q.is_call else "p"
            ours = option_math.greeks(
                is_call=q.is_call, forward=q.forward, strike=q.strike, expiry_years=years,
                volatility=q.mark_iv,
            )  # fmt: skip
            args = (flag, q.forward, q.strike, years, 0.0, q.mark_iv)
            theirs = (
                greeks.delta(*args), greeks.gamma(*args), greeks.vega(*args) * 100,
                greeks.theta(*args) * 365,
            )  # fmt: skip
            worst[0] = max(worst[0], abs(ours[0] - theirs[0]))
            for i in (1, 2, 3):
                if abs(theirs[i]) > 1e-12:
                    worst[i] = max(worst[i], abs(ours[i] - theirs[i]) / abs(theirs[i]))
            rows += 1
    print(f"\n{rows} rows: delta {worst[0]:.1e}, relative gamma {worst[1]:.1e}, "
          f"vega {worst[2]:.1e}, theta {worst[3]:.1e}")  # fmt: skip
    assert rows > 50_000
    assert worst[0] < 1e-12 and max(worst[1:]) < 1e-11


# ── Portfolio margin of real books against a Deribit-style risk matrix ───────────────────────


def _shocked(vol: float, years: float, state: str) -> float:
    days = max(years * 365, 1 / 24)
    shape = (30 / days) ** (0.3 if days < 30 else 0.13)
    if state == "up":
        return max(vol * (1 + 0.5 * shape), 0.5)
    return max(vol * (1 - 0.25 * shape), 0.01) if state == "down" else vol


Leg = tuple[OptionQuote, float, float]  # (quote, years, signed contracts)


def _reference(legs: list[Leg], index: float) -> float:
    """Deribit-style MM (as ``tests/unit/core/test_margin_deribit.py``): ±16% in 9 steps ×
    volatility up/same/down, the extended −66/−33/+50/+100% at 10% on volatility up, 1% of the
    index per net short option per strike."""

    def value(move: float, state: str) -> float:
        return sum(
            n * reference_black76(q.is_call, q.forward * (1 + move), q.strike, t,
                       _shocked(q.mark_iv, t, state))
            for q, t, n in legs
        )  # fmt: skip

    now = value(0.0, "same")
    losses = [
        now - value(m, s) for m in np.linspace(-0.16, 0.16, 9) for s in ("up", "same", "down")
    ]
    losses += [0.1 * (now - value(m, "up")) for m in (-0.66, -0.33, 0.5, 1.0)]
    per_strike: Counter[tuple[float, int]] = Counter()
    for q, _, n in legs:
        per_strike[(q.strike, q.expiry_ns)] += n
    shorts = sum(-n for n in per_strike.values() if n < 0)
    return max(max(losses), 0.0) + 0.01 * index * shorts


def _engine(legs: list[Leg], index: float) -> int:
    """The core's portfolio MM: each contract's profile at its own expiry's forward (as
    ``core/engine/risk.py`` takes it), combined on the index."""
    exposures = [
        (profile([(Instrument(t, q.strike, q.is_call, q.mark_iv), 1.0)], forward=q.forward,
                 realized_vol=0.5), n)
        for q, t, n in legs
    ]  # fmt: skip
    return combine(exposures, forward=index).maintenance


BOOKS = {  # (days to expiry, strike / forward, call, contracts) per leg
    "short strangle, a day": [(1, 1.05, True, -10), (1, 0.95, False, -10)],
    "short straddle, a day": [(1, 1.0, True, -10), (1, 1.0, False, -10)],
    "short strangle, a week": [(7, 1.1, True, -10), (7, 0.9, False, -10)],
    "calendar: short a week, long 90 days": [(7, 1.0, True, -10), (90, 1.0, True, 10)],
    "reverse calendar": [(7, 1.0, True, 10), (90, 1.0, True, -10)],
    "put calendar: short a day, long 30 days": [(1, 1.0, False, -10), (30, 1.0, False, 10)],
    "deep ITM short call": [(90, 0.5, True, -10)],
    "deep ITM short put": [(90, 1.6, False, -10)],
    "deep ITM long call": [(90, 0.5, True, 10)],
    "short call 2x the forward, a year": [(365, 2.0, True, -10)],
    "ratio put spread": [(30, 0.95, False, 10), (30, 0.85, False, -20)],
    "synthetic long forward": [(30, 1.0, True, 10), (30, 1.0, False, -10)],
    "iron condor": [(30, 1.2, True, 10), (30, 1.1, True, -10), (30, 0.9, False, -10),
                    (30, 0.8, False, 10)],
}  # fmt: skip


def _leg(
    quotes: list[OptionQuote], now_ns: int, days: float, moneyness: float, call: bool
) -> tuple[OptionQuote, float]:
    listed = {q.expiry_ns for q in quotes if q.expiry_ns > now_ns}
    expiry = min(listed, key=lambda e: abs((e - now_ns) / 86_400e9 - days))
    side = [q for q in quotes if q.expiry_ns == expiry and q.is_call == call]
    quote = min(side, key=lambda q: abs(q.strike / q.forward - moneyness))
    return quote, _years(expiry, now_ns)


@pytest.mark.parametrize("label", ["BTC 2025-12-31T09:18Z", "ETH 2025-12-31T09:18Z",
                                   "BTC 2024-10-01T12:00:00Z"])  # fmt: skip
def test_portfolio_margin_of_real_books_against_a_deribit_style_matrix(label: str) -> None:
    """Thirteen books at real strikes, expiries, forwards and mark_iv: the core's MM within
    0.75–1.2× of the reference (measured 0.77–1.11), except the iron condor (0.53–0.56): the
    core nets its long wings against its short strikes (no contingency), the reference charges
    each short strike's 1%; its MM still covers the ±15% grid's worst loss."""
    now_ns, quotes = next((t, q) for name, t, q in snapshots() if name == label)
    index = float(np.median([q.forward for q in quotes if q.expiry_ns - now_ns < 3 * 86_400e9]))
    for name, spec in BOOKS.items():
        legs = [(*_leg(quotes, now_ns, d, m, c), float(n)) for d, m, c, n in spec]
        ratio = _engine(legs, index) / _reference(legs, index)
        print(f"\n{label} {name}: {ratio:.2f}", end="")
        if name == "iron condor":
            assert 0.45 <= ratio <= 0.75, name
        else:
            assert 0.75 <= ratio <= 1.2, name


# ── A real chain listed in a venue: marks and the options AMM ────────────────────────────────


def test_a_real_chain_listed_in_a_venue_marked_and_quoted() -> None:
    """Deribit's BTC chain of 2025-12-31 (620 options, 12 expiries) in the default venue:
    every publisher reports its fitted surface (``ReportSurface``, accepted), the options
    nearest the money, as many as the venue holds (``markets_max``, 256 markets: 247 of them),
    listed with the series' market ids at their expiry and at their strike scaled to the venue's
    index by its expiry's forward (the venue has no futures at those expiries: on the index
    alone 49% of these marks fall outside the bid/ask, docs/RELIABILITY.md). The engine's
    marks lie within the real bid/ask ± a tick at 90% of two-sided options (measured 229 of
    245, 93%);
    the options AMM, funded, quotes its 120 markets in all 12 expiries, out to 359 days
    (before, by market id: the 1- to 4-day and the 9-day expiries only)."""
    label, now_ns, quotes = next(s for s in snapshots() if s[0] == "BTC 2025-12-31T09:18Z")
    rows = dict(book_summary())["BTC"]
    fit = svi.calibrate(quotes_for_fit(quotes, now_ns))
    assert fit.surface is not None and not fit.refused()
    venue = Venue()
    at = venue.now + venue.block_ns
    later = [round(s.expiry_years * 365 * 86_400 * 10**9) for s in fit.slices]
    slices = svi.core_slices(fit.surface, [at + ns for ns in later])
    accepted(venue, *[report_surface(p.address, p.nonce(at), at, slices) for p in venue.publishers])
    series = btc_option_series()
    listed: list[tuple[MarketId, dict[str, str], OptionQuote]] = []
    near = sorted(zip(rows, quotes, strict=True),
                  key=lambda pair: abs(math.log(pair[1].strike / pair[1].forward)))  # fmt: skip
    for row, q in near[: limits.markets_max - len(venue.state.markets) - 6]:
        strike = round(q.strike * PRICE / q.forward / USDC) * USDC
        expiry = at + q.expiry_ns - now_ns
        name = market_id(series, expiry, strike, q.is_call)
        payoff = (call if q.is_call else put)(strike)
        params = option_params(venue, name, payoff, expiry - venue.now)
        accepted(venue, operator_listing(venue, params, valid_ns=10**12))
        listed.append((MarketId(name), row, q))
    rest_quotes(venue, "alice", PRICE, size=20 * ONE_BTC)
    accepted(venue, setup_options_vault(venue, options_vault()))
    accepted(venue, deposit_options_vault(venue, "dave", 500_000 * USDC))
    venue.block()
    inside = two_sided = 0
    for name, row, _ in listed:
        if row["bid_price"] and row["ask_price"]:
            mark = venue.mark(name)
            bid, ask = float(row["bid_price"]) * PRICE, float(row["ask_price"]) * PRICE
            two_sided += 1
            inside += bid - TICK * PRICE <= mark <= ask + TICK * PRICE
    print(f"\n{label}: engine marks inside the real bid/ask {inside}/{two_sided}")
    assert inside >= 0.9 * two_sided
    quoted = venue.state.options_vault.quotes
    assert len(quoted) == limits.options_vault_markets_max
    expiries = {q.expiry_ns for name, _, q in listed if name in quoted}
    assert expiries == {q.expiry_ns for q in quotes}  # every expiry, the year's included
    days = [(q.expiry_ns - now_ns) / 86_400e9 for name, _, q in listed if name in quoted]
    print(f"AMM quotes {len(quoted)} markets, {len(expiries)} expiries, up to {max(days):.0f} d")
