"""Option chains in exchange formats (``clearhouse.pricing.chain``): Deribit's linear options
(``SOL_USDC-…``, ``XRP_USDC-…``), whose premiums are in USDC, not in the coin; their bid and ask
volatilities implied from those premiums, checked against py_vollib."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from py_vollib.black import black
from py_vollib.black.implied_volatility import implied_volatility as vollib_iv

from clearhouse.core.errors import InvalidArgument
from clearhouse.pricing.chain import parse_chain, parse_instrument

NOW_MS = int(datetime(2024, 12, 1, 8, tzinfo=UTC).timestamp()) * 1000
EXPIRY = datetime(2024, 12, 27, 8, tzinfo=UTC)
YEARS = (EXPIRY.timestamp() * 1000 - NOW_MS) / 1000 / (365 * 86_400)


def test_linear_usdc_option_names_parse() -> None:
    """Deribit's USDC-settled options (SOL, XRP, BNB, …; BTC_USDC too): before, refused as
    ``not an option instrument name``."""
    assert parse_instrument("SOL_USDC-27DEC24-150-C") == (
        int(EXPIRY.timestamp()) * 10**9, 150.0, True)  # fmt: skip
    assert parse_instrument("XRP_USDC-27DEC24-0d625-P")[1:] == (0.625, False)
    for bad in ("SOL_-27DEC24-150-C", "SOL_USDC_X-27DEC24-150-C", "sol_usdc-27DEC24-150-C"):
        with pytest.raises(InvalidArgument):
            parse_instrument(bad)


@pytest.mark.parametrize(
    ("name", "forward", "strike", "sigma"),
    [
        ("SOL_USDC-27DEC24-150-C", 182.4, 150.0, 0.82),
        ("SOL_USDC-27DEC24-220-C", 182.4, 220.0, 0.95),
        ("XRP_USDC-27DEC24-1d2-P", 1.91, 1.2, 1.10),
    ],
)
def test_linear_premiums_are_read_in_usdc(
    name: str, forward: float, strike: float, sigma: float
) -> None:
    """A linear option's ``bid_price``/``ask_price`` are USDC: implied as they are (py_vollib
    agrees to 1e-6). Before they were read as a fraction of the forward (the inverse BTC and
    ETH options' convention), multiplied by it: a 34 USDC bid on SOL became 6,200 USDC."""
    flag = "c" if name.endswith("C") else "p"
    mid = black(flag, forward, strike, YEARS, 0.0, sigma)
    bid, ask = round(mid * 0.97, 4), round(mid * 1.03, 4)
    [quote] = parse_chain([{
        "instrument_name": name, "mark_iv": sigma * 100, "underlying_price": forward,
        "bid_price": bid, "ask_price": ask, "creation_timestamp": NOW_MS,
    }])  # fmt: skip
    assert quote.bid_iv is not None and quote.ask_iv is not None
    for side, premium in ((quote.bid_iv, bid), (quote.ask_iv, ask)):
        expected = vollib_iv(premium, forward, strike, 0.0, YEARS, flag)
        assert side == pytest.approx(expected, abs=1e-6)
    assert quote.bid_iv < sigma < quote.ask_iv


def test_inverse_premiums_are_still_read_in_the_coin() -> None:
    forward, strike, sigma = 96_000.0, 100_000.0, 0.55
    mid = black("c", forward, strike, YEARS, 0.0, sigma) / forward
    bid = round(mid * 0.97, 4)
    [quote] = parse_chain([{
        "instrument_name": "BTC-27DEC24-100000-C", "mark_iv": 55.0, "underlying_price": forward,
        "bid_price": bid, "ask_price": None, "creation_timestamp": NOW_MS,
    }])  # fmt: skip
    expected = vollib_iv(bid * forward, forward, strike, 0.0, YEARS, "c")
    assert quote.bid_iv == pytest.approx(expected, abs=1e-6) and quote.ask_iv is None


def test_a_chain_of_several_underlyings_is_refused_naming_them() -> None:
    """BTC and ETH rows in one chain (Deribit's book-summary file as shipped holds both): their
    expiries' smiles were merged, on the median of both forwards, and fitted as one surface."""
    row = {"mark_iv": 55.0, "underlying_price": 96_000.0}
    rows = [{**row, "instrument_name": f"BTC-27DEC24-{k}-C"} for k in (90_000, 100_000)]
    rows.append({**row, "instrument_name": "ETH-27DEC24-3000-C", "underlying_price": 3_600.0})
    with pytest.raises(InvalidArgument, match=r"2 underlyings \(BTC: 2 rows, ETH: 1\)"):
        parse_chain(rows)
    rows[-1] = {**row, "instrument_name": "BTC_USDC-27DEC24-3000-C"}  # linear: its own chain
    with pytest.raises(InvalidArgument, match="BTC_USDC: 1"):
        parse_chain(rows)


def test_tardis_options_chain_rows_are_read_by_their_symbol() -> None:
    """Tardis's raw ``options_chain`` files (Deribit's history) name an option ``symbol``, not
    ``instrument_name``: before, every row was refused as ``not an option instrument name: ''``."""
    row = {"mark_iv": 55.2, "bid_iv": 54.8, "ask_iv": 55.9, "underlying_price": 96_000.0}
    named = parse_chain([{**row, "instrument_name": "BTC-27DEC24-100000-C"}])
    assert parse_chain([{**row, "symbol": "BTC-27DEC24-100000-C"}]) == named
    with pytest.raises(InvalidArgument, match="BTC-27DEC24-100000-C: mark_iv is not a number"):
        parse_chain([{**row, "symbol": "BTC-27DEC24-100000-C", "mark_iv": "n/a"}])


@pytest.mark.parametrize(
    "stamp",
    [
        {"creation_timestamp": NOW_MS},
        {"timestamp": "2024-12-01T08:00:00Z"},  # the book-summary file's column
        {"timestamp": "2024-12-01T08:00:00+00:00"},
        {"timestamp": NOW_MS * 1000},  # Tardis: microseconds
        {"timestamp": str(NOW_MS)},
    ],
)
def test_a_row_s_own_time_dates_its_prices(stamp: dict[str, object]) -> None:
    """Without ``now_ns``, a row's prices are implied as of its own time: Deribit's API's
    ``creation_timestamp`` (ms), or a ``timestamp`` in ISO-8601 (the shipped book-summary
    file) or an epoch number in any unit. Before, only ``creation_timestamp`` was read: the
    book-summary file as shipped got no bid or ask at all, silently."""
    forward, strike, sigma = 96_000.0, 100_000.0, 0.55
    mid = black("c", forward, strike, YEARS, 0.0, sigma) / forward
    bid = round(mid * 0.97, 4)
    [quote] = parse_chain([{
        "instrument_name": "BTC-27DEC24-100000-C", "mark_iv": 55.0, "underlying_price": forward,
        "bid_price": bid, "ask_price": None, **stamp,
    }])  # fmt: skip
    expected = vollib_iv(bid * forward, forward, strike, 0.0, YEARS, "c")
    assert quote.bid_iv == pytest.approx(expected, abs=1e-6)


def test_a_row_time_that_is_no_time_is_refused_naming_the_row() -> None:
    with pytest.raises(InvalidArgument, match="BTC-27DEC24-100000-C: timestamp 'soon'"):
        parse_chain([{
            "instrument_name": "BTC-27DEC24-100000-C", "mark_iv": 55.0,
            "underlying_price": 96_000.0, "bid_price": 0.01, "timestamp": "soon",
        }])  # fmt: skip


def test_a_chain_that_lists_an_option_twice_is_refused_naming_it() -> None:
    """Several snapshots in one chain (the hourly file of 2024-05-01 as shipped: 24 of them)
    were fitted as one surface, each strike's last row over a forward that moved 6% in the
    day, and accepted without a word."""
    row = {"mark_iv": 55.0, "underlying_price": 96_000.0, "instrument_name": "BTC-27DEC24-1-C"}
    rows = [row, {**row, "instrument_name": "BTC-27DEC24-2-C"}, {**row, "mark_iv": 56.0}]
    with pytest.raises(InvalidArgument, match="BTC-27DEC24-1-C in 2 rows: one snapshot"):
        parse_chain(rows)
