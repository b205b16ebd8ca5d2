"""Option chains in exchange formats (``clearhouse.pricing.chain``): Deribit's linear options
(``SOL_USDC-…``, ``XRP_USDC-…``), whose premiums are in USDC, not in the coin; their bid and ask
volatilities implied from those premiums, checked against py_vollib."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from py_vollib.black import black
from py_vollib.black.implied_volatility import implied_volatility as vollib_iv

from clearhouse.core.errors import InvalidArgument
from clearhouse.pricing.chain import parse_chain, parse_instrument, synthetic_chain

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


# ── Other exchanges' chains (OKX, Bybit, Binance) and exchanges' responses as they come ─────


def _yymmdd(name: str) -> str:
    """``BTC-27DEC24-…``'s expiry as OKX and Binance write it (241227)."""
    expiry_ns = parse_instrument(name)[0]
    return datetime.fromtimestamp(expiry_ns // 10**9, tz=UTC).strftime("%y%m%d")


def _fraction(value: object) -> str:
    return "" if value == "" else repr(float(str(value)) / 100)


def _layouts(rows: list[dict[str, object]]) -> dict[str, list[dict[str, str]]]:
    """Deribit-format rows (``synthetic_chain``: percent, forward as ``underlying_price``) in
    OKX's, Bybit's (USDC and USDT options) and Binance's API field names and units."""
    out: dict[str, list[dict[str, str]]] = {"okx": [], "bybit": [], "bybit-usdt": [],
                                            "binance": []}  # fmt: skip
    for row in rows:
        name = str(row["instrument_name"])
        base, _, strike, kind = name.split("-")
        mark, bid, ask = (_fraction(row[key]) for key in ("mark_iv", "bid_iv", "ask_iv"))
        forward = str(row["underlying_price"])
        dated = f"{_yymmdd(name)}-{strike}-{kind}"
        out["okx"].append({"instId": f"{base}-USD-{dated}", "uly": f"{base}-USD",
                           "markVol": mark, "bidVol": bid, "askVol": ask, "fwdPx": forward,
                           "ts": str(NOW_MS)})  # fmt: skip
        bybit = {"markIv": mark, "bid1Iv": bid or "0", "ask1Iv": ask or "0",
                 "underlyingPrice": forward, "indexPrice": "1"}  # fmt: skip
        out["bybit"].append({"symbol": name, **bybit})
        out["bybit-usdt"].append({"symbol": f"{name}-USDT", **bybit})
        out["binance"].append({"symbol": f"{base}-{dated}", "markIV": mark, "bidIV": bid,
                               "askIV": ask, "underlyingPrice": forward})  # fmt: skip
    return out


def test_okx_bybit_and_binance_option_names_parse() -> None:
    """OKX's and Binance's names carry the expiry as YYMMDD (250328: 2025-03-28, 08:00 UTC),
    Bybit's USDT options end in ``-USDT``: before, all refused as no option name. A day the
    month has not stopped in a bare ``ValueError`` traceback (``BTC-31FEB25-1-C``)."""
    expiry = int(datetime(2025, 3, 28, 8, tzinfo=UTC).timestamp()) * 10**9
    for name in ("BTC-USD-250328-90000-C", "BTC-250328-90000-C", "BTC-28MAR25-90000-C-USDT"):
        assert parse_instrument(name) == (expiry, 90_000.0, True), name
    assert parse_instrument("DOGE-250328-0.2-P")[1:] == (0.2, False)  # Binance's decimals
    assert parse_instrument("ETH-USD-250328-2500-P")[1:] == (2500.0, False)
    for bad in ("BTC-31FEB25-1-C", "BTC-250231-1-C", "BTC-2503-1-C", "BTC-USD-250328-1-X",
                "BTC-28MAR25-1-C-EUR", "BTC-28MAR25-1-C-"):  # fmt: skip
        with pytest.raises(InvalidArgument, match=r"not an option instrument name: .* \(expected"):
            parse_instrument(bad)


@pytest.mark.parametrize("layout", ["okx", "bybit", "bybit-usdt", "binance"])
@pytest.mark.parametrize("form", ["csv", "json"])
def test_other_exchanges_chains_read_to_the_same_quotes(
    layout: str, form: str, tmp_path: Path
) -> None:
    """A chain in OKX's (``instId``, ``markVol``/``bidVol``/``askVol`` fractions, ``fwdPx``),
    Bybit's (``markIv``/``bid1Iv``/``ask1Iv``, a missing side as "0", ``underlyingPrice``) or
    Binance's field names, read from a file as written, gives the quotes of the same chain in
    Deribit's format: before, every row was refused (no name, or no ``mark_iv``)."""
    rows = synthetic_chain(3, NOW_MS * 10**6)
    expected = parse_chain(rows)
    written = _layouts(rows)[layout]
    path = tmp_path / f"{layout}.{form}"
    if form == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(written[0]))
            writer.writeheader()
            writer.writerows(written)
        with path.open(newline="") as handle:
            read: list[dict[str, str]] = list(csv.DictReader(handle))
    else:
        path.write_text(json.dumps(written))
        read = json.loads(path.read_text())
    assert parse_chain(read) == expected
    assert sum(q.bid_iv is not None for q in expected) > len(expected) // 2


def test_an_exchange_s_whole_response_is_read_as_it_is() -> None:
    """Deribit's ``{"result": [...]}``, Bybit's ``{"result": {"list": [...]}}`` and OKX's
    ``{"data": [...]}``, given whole: before, iterated as their keys and stopped in an
    ``AttributeError`` traceback. An error response, or rows that are no objects, are refused
    in one line."""
    rows = synthetic_chain(3, NOW_MS * 10**6)
    expected = parse_chain(rows)
    layouts = _layouts(rows)
    assert parse_chain({"jsonrpc": "2.0", "result": rows, "usIn": 1}) == expected
    assert parse_chain({"code": "0", "msg": "", "data": layouts["okx"]}) == expected
    bybit = {"retCode": 0, "result": {"category": "option", "list": layouts["bybit"]}}
    assert parse_chain(bybit) == expected
    with pytest.raises(InvalidArgument, match=r"an object of code, msg, not a chain"):
        parse_chain({"code": -1121, "msg": "Invalid symbol."})
    with pytest.raises(InvalidArgument, match=r"row 1 of the chain is no object"):
        parse_chain(["BTC-27DEC24-100000-C"])  # type: ignore[list-item]


def test_a_row_without_a_name_mark_or_forward_names_the_columns_looked_for() -> None:
    """A Binance ``eapi/v1/mark`` row has no forward; a row of unknown field names no name:
    each is refused naming the columns read (before: ``not an option instrument name: ''``
    and ``mark_iv and price must be > 0`` for a missing forward)."""
    with pytest.raises(InvalidArgument, match=r"row 1: no option name \(a column "
                                              r"instrument_name, symbol, instId\)"):  # fmt: skip
        parse_chain([{"contract": "BTC-27DEC24-100000-C", "mark_iv": 55.0}])
    no_forward = r"BTC-241227-100000-C: no forward price > 0 \(a column underlying_price, "
    with pytest.raises(InvalidArgument, match=no_forward + r".*underlyingPrice\)"):
        parse_chain([{"symbol": "BTC-241227-100000-C", "markIV": "0.55", "markPrice": "900"}])
    with pytest.raises(InvalidArgument, match=r"no mark volatility > 0 \(a column mark_iv, "):
        parse_chain([{"instId": "BTC-USD-241227-100000-C", "markVol": "", "fwdPx": "96000"}])


def test_bybit_usdc_and_usdt_options_are_two_chains() -> None:
    row = {"markIv": "0.55", "underlyingPrice": "96000"}
    rows = [
        {**row, "symbol": "BTC-27DEC24-100000-C"},
        {**row, "symbol": "BTC-27DEC24-100000-C-USDT"},
    ]
    with pytest.raises(InvalidArgument, match=r"2 underlyings \(BTC: 1 rows, BTC-USDT: 1\)"):
        parse_chain(rows)


def test_a_creation_timestamp_in_seconds_dates_prices_as_in_milliseconds() -> None:
    """``creation_timestamp`` in seconds (an export's conversion of Deribit's milliseconds) was
    read as milliseconds: 1970, prices implied over 55 years to expiry, this bid at 1.9%
    volatility instead of 53.8% (on the real 2025-12-31 chain: fitted total variance off by up
    to 5.5%, weighted by spreads that are not its own). Its unit is told by its magnitude."""
    forward, strike = 96_000.0, 100_000.0
    bid = round(black("c", forward, strike, YEARS, 0.0, 0.55) / forward * 0.97, 4)
    row = {"instrument_name": "BTC-27DEC24-100000-C", "mark_iv": 55.0,
           "underlying_price": forward, "bid_price": bid}  # fmt: skip
    expected = vollib_iv(bid * forward, forward, strike, 0.0, YEARS, "c")
    for stamp in (NOW_MS, NOW_MS // 1000, NOW_MS * 1000):
        [quote] = parse_chain([{**row, "creation_timestamp": stamp}])
        assert quote.bid_iv == pytest.approx(expected, abs=1e-6), stamp
