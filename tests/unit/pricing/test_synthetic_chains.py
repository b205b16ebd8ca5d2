"""Synthetic chains built the way real ones are fit into a surface the engine accepts at every
snapshot, with the fit's error and share inside the bid/ask reported (issue 16), and the fit's
diagnostics say why a slice was refused."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from clearhouse.core import surface as core_surface
from clearhouse.core.units import NS_PER_HOUR, NS_PER_YEAR
from clearhouse.pricing import svi
from clearhouse.pricing.chain import parse_chain, quotes_for_fit, synthetic_chain

START_NS = int(datetime(2025, 3, 3, 1, tzinfo=UTC).timestamp()) * 10**9
SNAPSHOTS = [(seed, START_NS + seed * 5 * NS_PER_HOUR) for seed in range(12)]  # 01:00 .. 08:00+


def publish(fit: svi.SurfaceFit, now_ns: int) -> tuple[core_surface.SviSlice, ...]:
    assert fit.surface is not None
    expiries = [now_ns + round(s.expiry_years * NS_PER_YEAR) for s in fit.surface.slices]
    return svi.core_slices(fit.surface, expiries)


@pytest.mark.parametrize(("seed", "now_ns"), SNAPSHOTS)
def test_every_snapshot_fits_into_an_accepted_surface(seed: int, now_ns: int) -> None:
    rows = synthetic_chain(seed, now_ns)
    quotes = quotes_for_fit(parse_chain(rows), now_ns)
    fit = svi.calibrate(quotes)
    assert fit.refused() == []
    assert len(fit.slices) == len(quotes) >= 11  # six hours (or a day) to a year
    assert min(q.expiry_years for q in quotes) * 365 * 24 <= 31
    assert core_surface.problems(publish(fit, now_ns), now_ns) == []
    rmse = [s.rmse_vol_points for s in fit.slices]
    inside = [s.inside_share for s in fit.slices if s.inside_share is not None]
    print(f"seed {seed}: RMSE median {np.median(rmse):.3f} max {max(rmse):.3f} vol points; "
          f"inside bid/ask {np.mean(inside):.1%}")  # fmt: skip
    assert max(rmse) < 0.5
    assert np.mean(inside) >= 0.95


def test_the_diagnostics_say_why_a_slice_was_refused() -> None:
    now_ns = SNAPSHOTS[0][1]
    quotes = quotes_for_fit(parse_chain(synthetic_chain(0, now_ns)), now_ns)
    broken = quotes[3]
    saw = broken.mark.copy()
    saw[::2] *= 2.0  # every other quote twice as volatile: far beyond a tick, everywhere
    quotes[3] = svi.SliceQuotes(broken.expiry_years, broken.log_moneyness, saw,
                                broken.bid, broken.ask)  # fmt: skip
    fit = svi.calibrate(quotes)
    refused = [s for s in fit.slices if s.refused]
    assert len(refused) == 1
    assert refused[0].slice is None
    assert "arbitrage" in (refused[0].refused or "")
    assert fit.surface is not None and len(fit.surface.slices) == len(quotes) - 1
    assert core_surface.problems(publish(fit, now_ns), now_ns) == []
    with pytest.raises(svi.ArbitrageError, match="arbitrage"):
        svi.fit_surface(quotes)


def test_one_quote_out_of_line_is_dropped_not_the_slice() -> None:
    now_ns = SNAPSHOTS[0][1]
    quotes = quotes_for_fit(parse_chain(synthetic_chain(0, now_ns)), now_ns)
    one = quotes[6]
    marks = one.mark.copy()
    middle = int(np.argmin(np.abs(one.log_moneyness)))
    marks[middle] += 0.05  # five volatility points too high at the money
    quotes[6] = svi.SliceQuotes(one.expiry_years, one.log_moneyness, marks, one.bid, one.ask)
    fit = svi.calibrate(quotes)
    assert fit.refused() == []
    assert fit.slices[6].dropped == 1
    assert fit.slices[6].rmse_vol_points < 0.5


def book_summary(rows: list[dict[str, object]], now_ns: int) -> list[dict[str, object]]:
    """The rows as Deribit's public book summary gives them: mark_iv in percent, the forward,
    bid and ask as prices in the coin on the tick (no bid_iv/ask_iv), and its timestamp."""
    from clearhouse.pricing import black76
    from clearhouse.pricing.chain import parse_instrument

    out: list[dict[str, object]] = []
    for row in rows:
        expiry_ns, strike, is_call = parse_instrument(str(row["instrument_name"]))
        forward, years = float(str(row["underlying_price"])), (expiry_ns - now_ns) / NS_PER_YEAR
        prices = []
        for key, rounding in (("bid_iv", np.floor), ("ask_iv", np.ceil)):
            vol = row[key]
            price = 0.0 if vol == "" else float(black76.price(
                is_call, 1.0, strike / forward, years, float(str(vol)) / 100))  # fmt: skip
            prices.append(float(rounding(round(price / 0.0001, 6)) * 0.0001) or None)
        out.append({
            "instrument_name": row["instrument_name"], "mark_iv": row["mark_iv"],
            "underlying_price": forward, "mark_price": row["mark_price"],
            "bid_price": prices[0], "ask_price": prices[1], "creation_timestamp": now_ns // 10**6,
        })  # fmt: skip
    return out


def test_the_public_book_summary_gives_bid_and_ask_from_its_prices() -> None:
    """Deribit's public book summary has no bid or ask volatilities: its bid_price and
    ask_price (in the coin) are implied (before, they were left out: a fit with equal weights
    and no share inside the bid/ask). The volatilities come back to within the tick's rounding
    of the chain's own; a bid within half a tick of its intrinsic value is no bid."""
    seed, now_ns = SNAPSHOTS[3]
    rows = synthetic_chain(seed, now_ns)
    given = parse_chain(rows)
    api = book_summary(rows, now_ns)
    found = parse_chain(api)
    both = [(g, f) for g, f in zip(given, found, strict=True) if g.bid_iv and f.bid_iv]
    assert len(both) > 0.5 * sum(1 for g in given if g.bid_iv)
    errors = [abs(g.bid_iv - f.bid_iv) for g, f in both if g.bid_iv and f.bid_iv]
    assert float(np.median(errors)) < 0.001
    fit = svi.calibrate(quotes_for_fit(found, now_ns))
    assert all(s.inside_share is not None for s in fit.slices if s.slice is not None)
    deep = next(i for i, q in enumerate(found) if q.is_call and q.strike < 0.7 * q.forward)
    intrinsic = 1 - found[deep].strike / found[deep].forward
    api[deep] = {**api[deep], "bid_price": round(intrinsic + 0.00002, 8)}
    assert parse_chain(api)[deep].bid_iv is None
