"""SVI fits a synthetic option chain (in Deribit's public format), its surface interpolates in
total variance, and an arbitrageable surface is refused with a clear error."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from clearhouse.core.errors import InvalidArgument
from clearhouse.pricing.chain import parse_chain, parse_instrument, quotes_for_fit, slices_for_fit
from clearhouse.pricing.svi import (
    ArbitrageError,
    SviSlice,
    VolSurface,
    calibrate,
    fit_slice,
    fit_surface,
)

NOW_NS = int(datetime(2024, 12, 1, 8, tzinfo=UTC).timestamp()) * 10**9
TRUE = {  # a realistic BTC skew: puts rich, wings rising; three expiries
    "6DEC24": SviSlice(5 / 365, 0.0008, 0.02, -0.35, 0.0, 0.05),
    "27DEC24": SviSlice(26 / 365, 0.004, 0.06, -0.3, 0.02, 0.1),
    "28MAR25": SviSlice(117 / 365, 0.02, 0.12, -0.25, 0.03, 0.2),
}


def synthetic_chain(forward: float = 96_000.0) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for label, true in TRUE.items():
        for strike in range(60_000, 140_001, 4_000):
            k = np.log(strike / forward)
            iv = float(np.sqrt(true.total_variance(k) / true.expiry_years)) * 100
            for kind in ("C", "P"):
                rows.append({
                    "instrument_name": f"BTC-{label}-{strike}-{kind}", "mark_iv": round(iv, 4),
                    "bid_iv": round(iv - 0.5, 4), "ask_iv": round(iv + 0.5, 4),
                    "underlying_price": forward,
                })  # fmt: skip
    return rows


def test_instrument_names_parse() -> None:
    expiry, strike, is_call = parse_instrument("BTC-27DEC24-60000-C")
    assert expiry == int(datetime(2024, 12, 27, 8, tzinfo=UTC).timestamp()) * 10**9
    assert (strike, is_call) == (60_000.0, True)
    assert parse_instrument("ETH-3JAN25-3250d5-P")[1:] == (3250.5, False)
    for bad in ("BTC-PERPETUAL", "BTC-27XYZ24-1-C", "BTC-27DEC24-60000-X", ""):
        with pytest.raises(InvalidArgument):
            parse_instrument(bad)


def test_bad_rows_are_refused_with_a_reason() -> None:
    good = synthetic_chain()[0]
    for field, value in (("mark_iv", "abc"), ("mark_iv", -3), ("underlying_price", None),
                         ("mark_iv", float("nan"))):  # fmt: skip
        with pytest.raises(InvalidArgument):
            parse_chain([{**good, field: value}])


def test_volatilities_in_fractions_read_as_in_percent() -> None:
    """A chain whose IVs are fractions (0.552, as many exports give them) was read as 0.552%:
    no slice kept its five quotes near the money, and the fit gave no surface, silently.
    The unit is told by the chain's marks, or given; Deribit's book-summary names are read."""
    percent = synthetic_chain()
    fractions = [{**row, **{key: float(str(row[key])) / 100 for key in ("mark_iv", "bid_iv",
                 "ask_iv")}} for row in percent]  # fmt: skip
    expected = parse_chain(percent)
    assert parse_chain(fractions) == expected
    assert parse_chain(fractions, iv_unit="fraction") == expected
    assert parse_chain(percent, iv_unit="percent") == expected
    book_summary = [{"instrument_name": f" {row['instrument_name']}", "underlying":
                     row["underlying_price"], "implied_volatility": row["mark_iv"]}
                    for row in fractions]  # fmt: skip
    assert [(q.strike, q.mark_iv) for q in parse_chain(book_summary)] == [
        (q.strike, q.mark_iv) for q in expected]  # fmt: skip
    assert len(slices_for_fit(parse_chain(fractions), NOW_NS)) == 3
    with pytest.raises(InvalidArgument, match="iv_unit 'bp'"):
        parse_chain(percent, iv_unit="bp")


def test_a_chain_with_no_expiry_to_fit_says_why_it_has_no_surface() -> None:
    """Four strikes an expiry (``quotes_for_fit`` needs five): no surface, and a reason."""
    few = [row for row in synthetic_chain() if str(row["instrument_name"]).split("-")[2]
           in {"88000", "92000", "100000", "104000"}]  # fmt: skip
    fit = calibrate(quotes_for_fit(parse_chain(few), NOW_NS))
    assert fit.surface is None
    assert fit.refused() == ["no expiry to fit: none has five out-of-the-money quotes within range"]


def test_the_fit_recovers_the_smile_of_each_expiry() -> None:
    slices = slices_for_fit(parse_chain(synthetic_chain()), NOW_NS)
    assert [round(t * 365) for t, _, _ in slices] == [5, 26, 117]
    surface = fit_surface(slices)
    for (t, k, iv), true in zip(slices, TRUE.values(), strict=True):
        fitted = surface.volatility(k, t)
        # a grid-refined fit, arbitrage-free by construction: within 0.1 vol point (bid/ask ±0.5)
        assert np.max(np.abs(fitted - iv)) < 1e-3
        grid = np.linspace(-0.4, 0.3, 50)
        expected = np.sqrt(true.total_variance(grid) / t)
        assert np.max(np.abs(surface.volatility(grid, t) - expected)) < 2e-3


def test_interpolation_in_expiry_is_linear_in_total_variance() -> None:
    surface = fit_surface(slices_for_fit(parse_chain(synthetic_chain()), NOW_NS))
    early, late = surface.slices[1], surface.slices[2]
    middle = 0.5 * (early.expiry_years + late.expiry_years)
    k = np.array([-0.2, 0.0, 0.2])
    expected = 0.5 * (early.total_variance(k) + late.total_variance(k))
    assert np.allclose(surface.total_variance(k, middle), expected, rtol=1e-14)
    for t in np.linspace(0.001, 0.5, 40):  # total variance never falls as expiry grows
        assert np.all(surface.total_variance(k, t + 0.01) >= surface.total_variance(k, t))


def test_calendar_arbitrage_is_refused() -> None:
    late_but_lower = SviSlice(0.5, 0.001, 0.02, -0.3, 0.0, 0.05)
    with pytest.raises(ArbitrageError, match="calendar arbitrage"):
        VolSurface((TRUE["27DEC24"], late_but_lower))


def test_butterfly_arbitrage_is_refused() -> None:
    # Gatheral & Jacquier (2014), §4: positive variance everywhere, yet g(k) < 0 in places.
    bad = SviSlice(1.0, -0.0410, 0.1331, 0.3060, 0.3586, 0.4153)
    assert bad.problems() and "butterfly" in " ".join(bad.problems())
    with pytest.raises(ArbitrageError):
        VolSurface((bad,))


def test_a_smile_that_no_arbitrage_free_slice_can_fit_is_refused() -> None:
    k = np.linspace(-0.5, 0.5, 11)
    saw = np.where(np.arange(11) % 2 == 0, 0.3, 1.5)  # alternating wildly: no density fits
    with pytest.raises(ArbitrageError, match=r"spread arbitrage|arbitrage in the quotes"):
        fit_slice(0.1, k, saw)
