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
