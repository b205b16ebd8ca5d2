"""Candle files (``clearhouse.sim.candles``): every common exchange layout reads to the same
bars; a headerless file's price order read from its prices; epoch times by magnitude; rows
skipped (inconsistent prices too), deduplicated and sorted; a file of no known layout refused in
one line naming it; quote currencies from names; prices converted at a fixed rate or at a rate
read from a file, each candle at its own time."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.errors import InvalidArgument
from clearhouse.sim.backtest import read_candles
from clearhouse.sim.candles import (
    LAYOUT_SAMPLE_ROWS,
    PAR,
    Candle,
    fixed_rate,
    in_quantums,
    layout_of,
    parse_time_ns,
    quote_of_name,
    rate_history,
    read_candle_file,
)
from clearhouse.sim.solvency import read_bars
from clearhouse.sim.venue import USDC

NS_PER_SECOND = 10**9
NS_PER_HOUR = 3600 * NS_PER_SECOND
START_S = 1_583_971_200  # 2020-03-12T00:00:00Z
START_NS = START_S * NS_PER_SECOND
PRICES = ((7900.5, 7950, 7800.25, 7811), (7811, 7820, 7500, 7600.5), (7600.5, 7700, 7400, 7650))
EXPECTED = {
    START_NS + h * NS_PER_HOUR: tuple(round(p * USDC) for p in bar) for h, bar in enumerate(PRICES)
}


def _iso(hour: int) -> str:
    return f"2020-03-12T{hour:02d}:00:00"


def _epoch(hour: int, units_per_second: int) -> int:
    return (START_S + 3600 * hour) * units_per_second


def _csv(header: str, time_of: Callable[[int], object], extra: str = "") -> list[str]:
    """The three hours' candles as ``time,open,high,low,close`` + ``extra``, under ``header``."""
    rows = (f"{time_of(h)},{o},{hi},{lo},{c}{extra}" for h, (o, hi, lo, c) in enumerate(PRICES))
    return [header, *rows] if header else list(rows)


KLINE_REST = ",12.5,0,100.0,42,6.0,50.0,0"  # volume, close time, ...: 12 columns in all
LAYOUTS = {
    "iso, Z": _csv("date,open,high,low,close,volume", lambda h: _iso(h) + "Z", ",1"),
    "iso, an offset": _csv(
        "Date,Open,High,Low,Close", lambda h: f"2020-03-12T{h + 2:02d}:00:00+02:00"
    ),
    "iso without a zone, a space": _csv(
        "datetime,open,high,low,close", lambda h: _iso(h).replace("T", " ")
    ),
    "epoch seconds": _csv("TIMESTAMP,OPEN,HIGH,LOW,CLOSE", lambda h: _epoch(h, 1)),
    "epoch ms, Binance's header": _csv(
        "open_time,open,high,low,close,volume,close_time", lambda h: _epoch(h, 1000), ",1,0"
    ),
    "epoch µs": _csv("unix_timestamp,open,high,low,close", lambda h: _epoch(h, 10**6)),
    "epoch ns, a time column": _csv("time,open,high,low,close", lambda h: _epoch(h, 10**9)),
    "columns in another order (Coinbase)": [
        "timestamp,open,close,volume,unix_timestamp,high,low",
        *(
            f"{_iso(h).replace('T', ' ')},{o},{c},1.5,{_epoch(h, 1)},{hi},{lo}"
            for h, (o, hi, lo, c) in enumerate(PRICES)
        ),
    ],
    "a byte-order mark and spaces in names": _csv(
        "\ufeffOpen Time,open,high,low,close", lambda h: _iso(h) + "Z"
    ),
    "Binance headerless, ms": _csv("", lambda h: _epoch(h, 1000), KLINE_REST),
    "Binance headerless, µs": _csv("", lambda h: _epoch(h, 10**6), KLINE_REST),
    "Kraken's OHLCVT, headerless": _csv("", lambda h: _epoch(h, 1), ",1.5,7"),
    "OHLCV, headerless": _csv("", lambda h: _epoch(h, 1000), ",1.5"),
    "Coinbase's candles API, headerless (time, low, high, open, close)": [
        f"{_epoch(h, 1)},{lo},{hi},{o},{c},1.5" for h, (o, hi, lo, c) in enumerate(PRICES)
    ],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_reads_to_the_same_bars(layout: str, tmp_path: Path) -> None:
    path = tmp_path / "BTCUSD_1h.csv"
    path.write_text("\n".join(LAYOUTS[layout]) + "\n", encoding="utf-8")
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR)
    assert bars.bars == EXPECTED
    assert bars.cadence_ns == NS_PER_HOUR and bars.skipped_rows == 0
    closes = read_candles(path).closes
    assert closes == tuple((t + NS_PER_HOUR, bar[3]) for t, bar in EXPECTED.items())


def test_coinbase_reads_its_timestamp_column_first(tmp_path: Path) -> None:
    # Both of Coinbase's times are there; ``timestamp`` comes first in the order of names.
    path = tmp_path / "BTCUSD_1d.csv"
    path.write_text("timestamp,open,close,volume,unix_timestamp,high,low\n")
    layout = layout_of(path)
    assert (layout.header, layout.time_column, layout.price_columns) == (True, 0, (1, 5, 6, 2))
    path.write_text("\n".join(LAYOUTS["Binance headerless, ms"]) + "\n")
    assert (layout_of(path).header, layout_of(path).time_column) == (False, 0)


def test_coinbase_s_headerless_candles_are_read_in_their_order(tmp_path: Path) -> None:
    path = tmp_path / "BTC-USD_1h.csv"
    path.write_text("\n".join(LAYOUTS[next(k for k in LAYOUTS if "Coinbase's" in k)]) + "\n")
    assert layout_of(path).price_columns == (3, 2, 1, 4)  # open, high, low, close
    assert in_quantums(read_candle_file(path), PAR) == EXPECTED


def test_bitfinex_s_headerless_candles_are_read_in_their_order(tmp_path: Path) -> None:
    # Bitfinex's candles API (and KuCoin's): time, open, close, high, low, volume.
    path = tmp_path / "tBTCUSD_1h.csv"
    path.write_text("".join(
        f"{_epoch(h, 1000)},{start},{close},{high},{low},12.5\n"
        for h, (start, high, low, close) in enumerate(PRICES)
    ))  # fmt: skip
    assert layout_of(path).price_columns == (1, 3, 4, 2)  # open, high, low, close
    assert in_quantums(read_candle_file(path), PAR) == EXPECTED


def test_rows_that_fit_every_order_do_not_decide_a_headerless_file_s(tmp_path: Path) -> None:
    """A Coinbase file whose first thousand candles open at their low (each reads the same in
    either order) is still read as Coinbase's, whole: the rows after them decide."""
    start = 1_600_000_000
    rows = [f"{start + 60 * i},100,101,100,100.5,1" for i in range(LAYOUT_SAMPLE_ROWS)]
    rows += [f"{start + 60 * i},99,102,100,101,1" for i in range(LAYOUT_SAMPLE_ROWS, 2000)]
    path = tmp_path / "BTC-USD.csv"
    path.write_text("\n".join(rows) + "\n")
    assert layout_of(path).price_columns == (3, 2, 1, 4)
    found = read_candle_file(path)
    assert found.skipped_rows == 0 and len(found.candles) == 2000
    assert found.candles[-1] == Candle((start + 60 * 1999) * NS_PER_SECOND, 100, 102, 99, 101)


def test_binance_s_klines_keep_the_default_order_where_rows_fit_both(tmp_path: Path) -> None:
    # First rows that fit both orders (a flat candle, an open at the low: they read the same
    # under either), then rows that fit open, high, low, close only.
    path = tmp_path / "BTCUSDT-1h.csv"
    ambiguous = [f"{_epoch(h, 1000)},7900,7900,7900,7900{KLINE_REST}" for h in (-3, -2)]
    ambiguous.append(f"{_epoch(-1, 1000)},7900,7950,7900,7900.5{KLINE_REST}")
    path.write_text("\n".join([*ambiguous, *LAYOUTS["Binance headerless, ms"]]) + "\n")
    assert layout_of(path).price_columns == (1, 2, 3, 4)
    found = read_candle_file(path)
    assert found.candles[:3] == (
        Candle(START_NS - 3 * NS_PER_HOUR, 7900, 7900, 7900, 7900),
        Candle(START_NS - 2 * NS_PER_HOUR, 7900, 7900, 7900, 7900),
        Candle(START_NS - NS_PER_HOUR, 7900, 7950, 7900, 7900.5),
    )
    assert found.candles[3:] == tuple(Candle(START_NS + h * NS_PER_HOUR, *bar)
                                      for h, bar in enumerate(PRICES))  # fmt: skip
    assert found.skipped_rows == 0


@st.composite
def _consistent_prices(draw: st.DrawFn) -> tuple[float, float, float, float]:
    """(open, high, low, close) in cents, low <= open, close <= high; ties (a flat candle, an
    open at the low) are where the orders are hard to tell apart."""
    low = draw(st.integers(min_value=1, max_value=10**8))
    high = draw(st.integers(min_value=low, max_value=10**8))
    start, close = (draw(st.integers(min_value=low, max_value=high)) for _ in range(2))
    return start / 100, high / 100, low / 100, close / 100


@settings(max_examples=200, deadline=None)
@given(bars=st.lists(_consistent_prices(), min_size=1, max_size=30), coinbase=st.booleans())
def test_consistent_candles_read_back_in_either_headerless_order(
    bars: list[tuple[float, float, float, float]],
    coinbase: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = tmp_path_factory.mktemp("orders") / "BTC-USD.csv"
    written = (3, 2, 1, 4) if coinbase else (1, 2, 3, 4)  # each price's column after the time
    rows = []
    for h, bar in enumerate(bars):
        cells = [""] * 4
        for price, column in zip(bar, written, strict=True):
            cells[column - 1] = repr(price)
        rows.append(f"{_epoch(h, 1)},{','.join(cells)},1.5")
    path.write_text("\n".join(rows) + "\n")
    found = read_candle_file(path)
    assert found.candles == tuple(
        Candle(START_NS + h * NS_PER_HOUR, *bar) for h, bar in enumerate(bars)
    )
    assert found.skipped_rows == 0


NAMES = ("open", "high", "low", "close")
# Every order of the four prices but those with the high and low where a known order has them:
# an order that only swaps the open and close is consistent in every row, told apart by none.
UNKNOWN_ORDERS = [
    order
    for order in itertools.permutations(NAMES)
    if order[1:3] != ("high", "low")
    and order[:2] != ("low", "high")
    and order[2:] != ("high", "low")
]


@pytest.mark.parametrize("order", UNKNOWN_ORDERS, ids=",".join)
def test_a_headerless_file_of_no_known_price_order_is_refused(
    order: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "shuffled.csv"
    rows = (dict(zip(NAMES, bar, strict=True)) for bar in PRICES)
    path.write_text("".join(
        f"{_epoch(h, 1000)},{','.join(str(row[n]) for n in order)},1.5\n"
        for h, row in enumerate(rows)
    ))  # fmt: skip
    for read in (layout_of, read_candle_file):
        with pytest.raises(InvalidArgument, match="headerless rows fit no known order") as refused:
            read(path)
        message = str(refused.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert "time,open,high,low,close" in message and "time,low,high,open,close" in message
        assert "time,open,close,high,low" in message


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("1583971200", START_NS),  # seconds: below 10^11
        ("1583971200000", START_NS),  # milliseconds: below 10^14
        ("1583971200000000", START_NS),  # microseconds: below 10^17
        ("1583971200000000000", START_NS),  # nanoseconds
        ("1583971200123", START_NS + 123_000_000),
        ("1583971200123456", START_NS + 123_456_000),
        ("1583971200.5", START_NS + 500_000_000),
        ("1583971200000.0", START_NS),
        ("99999999999", 99_999_999_999 * NS_PER_SECOND),  # the largest in seconds: year 5138
        ("100000000000", 100_000_000_000 * 1_000_000),  # the smallest in ms: 1973-03-03
        ("2020-03-12T00:00:00Z", START_NS),
        ("2020-03-12T00:00:00.250Z", START_NS + 250_000_000),
        ("2020-03-12 01:00:00+01:00", START_NS),
        ("2020-03-12", START_NS),
        ("2020-03-12T00:00:00", START_NS),  # no zone: UTC
        ("1969-12-31T23:59:59Z", -NS_PER_SECOND),  # whole seconds before 1970: exact too
        ("1969-12-31T23:59:59.5Z", -NS_PER_SECOND // 2),
        ("2020-03-12 00:00:00 UTC", START_NS),  # a zone's name after the time (before: refused)
        ("2020-03-12 01:00:00 UTC", START_NS + NS_PER_HOUR),
        ("2020-03-12T00:00:00 GMT", START_NS),
        ("100000000", 100_000_000 * NS_PER_SECOND),  # the smallest in seconds: 1973-03-03
    ],
)
def test_times_by_form_and_epoch_units_by_magnitude(text: str, expected_ns: int) -> None:
    assert parse_time_ns(text) == expected_ns


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "0", "-1583971200", "nan", "1e30", "2020-13-01", "2020-03-12T25:00",
     "20200312", "99999999", "2020-03-12 00:00:00 CET"],
)  # fmt: skip
def test_a_time_that_is_no_time_is_refused(text: str) -> None:
    """A date written 20200312 was read as 20,200,312 epoch seconds (1970-08-23): epoch
    numbers before 1973 are in no unit a candle can be in, and are refused."""
    with pytest.raises(ValueError, match=r"^(epoch )?time "):
        parse_time_ns(text)


def test_bad_prices_are_skipped_and_counted_the_last_row_of_a_time_wins(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "date,open,high,low,close\n"
        "2020-03-12T02:00:00Z,1,1,1,1\n"  # replaced by the later row of its time
        "2020-03-12T01:00:00Z,7811,7820,7500,7600.5\n"  # out of order: sorted
        "2020-03-12T00:00:00Z,7900.5,7950,7800.25,7811\n"
        "2020-03-12T03:00:00Z,0,7700,7400,7650\n"  # a zero: an exchange's placeholder
        "2020-03-12T04:00:00Z,7650,-1,7400,7650\n"
        "2020-03-12T05:00:00Z,7650,n/a,7400,7650\n"
        "2020-03-12T06:00:00Z,7650,nan,7400,7650\n"
        "2020-03-12T07:00:00Z,7650,7700\n"  # cut short
        "\n"
        "2020-03-12T02:00:00Z,7600.5,7700,7400,7650\n"
    )
    found = read_candle_file(path)
    assert [c.opened_ns for c in found.candles] == sorted(EXPECTED)
    assert in_quantums(found, PAR) == EXPECTED
    assert found.skipped_rows == 5
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 8 * NS_PER_HOUR)
    assert bars.bars == EXPECTED and bars.skipped_rows == 5
    assert read_candles(path).skipped_rows == 5


def test_inconsistent_prices_are_bad_rows_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "\n".join(LAYOUTS["iso, Z"]) + "\n"
        "2020-03-12T03:00:00Z,7650,7600,7400,7620,1\n"  # the high below the open
        "2020-03-12T04:00:00Z,7650,7700,7400,7710,1\n"  # ... below the close
        "2020-03-12T05:00:00Z,7650,7700,7660,7680,1\n"  # the low above the open
        "2020-03-12T06:00:00Z,7650,7700,7400,7390,1\n"  # ... above the close
        "2020-03-12T07:00:00Z,7650,7400,7700,7650,1\n"  # the low above the high
    )
    found = read_candle_file(path)
    assert in_quantums(found, PAR) == EXPECTED and found.skipped_rows == 5
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 8 * NS_PER_HOUR)
    assert bars.bars == EXPECTED and bars.skipped_rows == 5
    assert read_candles(path).skipped_rows == 5


def _coinbase_rows(broken: int) -> str:
    """100 hourly rows in Coinbase's order, the first ``broken`` of rows 5, 15, ... broken."""
    rows = [f"{_epoch(h, 1)},{99 + h},{102 + h},{100 + h},{101 + h},1.5" for h in range(100)]
    for h in range(5, 5 + 10 * broken, 10):
        rows[h] = f"{_epoch(h, 1)},200,190,195,195,1.5"  # the low above the high
    return "\n".join(rows) + "\n"


def test_a_headerless_file_s_odd_broken_row_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "BTC-USD.csv"
    path.write_text(_coinbase_rows(broken=1))  # 99 of 100 rows fit: the 99% needed
    found = read_candle_file(path)
    assert len(found.candles) == 99 and found.skipped_rows == 1
    assert found.candles[0] == Candle(START_NS, 100, 102, 99, 101)


def test_a_headerless_file_of_more_broken_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "BTC-USD.csv"
    path.write_text(_coinbase_rows(broken=2))
    with pytest.raises(InvalidArgument, match=r"of the 100 rows with prices read, 0 fit time,"
                       r"open,high,low,close .*, 98 fit time,low,high,open,close .* and 0 fit "
                       r"time,open,close,high,low"):  # fmt: skip
        read_candle_file(path)


def test_a_range_reads_only_the_candles_that_open_in_it(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("\n".join(LAYOUTS["epoch ms, Binance's header"]) + "\n")
    found = read_candle_file(path, start_ns=START_NS + 1, end_ns=START_NS + 2 * NS_PER_HOUR + 1)
    later = [START_NS + NS_PER_HOUR, START_NS + 2 * NS_PER_HOUR]
    assert [c.opened_ns for c in found.candles] == later
    iso = tmp_path / "iso.csv"
    # 2020-03-12T00:00Z written as the evening before in New York: its day as text is the 11th.
    iso.write_text("date,open,high,low,close\n2020-03-11T20:00:00-04:00,1,2,1,2\n"
                   "2020-03-12T01:00:00Z,1,2,1,2\n")  # fmt: skip
    found = read_candle_file(iso, start_ns=START_NS, end_ns=START_NS + NS_PER_HOUR)
    assert [c.opened_ns for c in found.candles] == [START_NS]


def refused_in_one_line(path: Path, words: str) -> None:
    """Reading ``path`` is refused with ``words``, in one line that names the file."""
    with pytest.raises(InvalidArgument, match=words) as refused:
        read_candle_file(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "not a candle file: expected a header with a time column"),
        ("funding_time,funding_rate\n2020-03-12T00:00:00Z,0.0001\n", "not a candle file"),
        ("date,open,high,close\n2020-03-12T00:00:00Z,1,2,3\n", "no low column"),
        ("date,price\n2020-03-12T00:00:00Z,1\n", "no open, high, low, close column"),
        ("1583971200,1,2,0.5\n", "headerless rows of time, open, high, low, close"),
        ("date,open,high,low,close\n2020-03-12T00:00:00Z,1,2,1,2\nsoon,1,2,1,2\n",
         "line 3: time 'soon'"),
    ],
)  # fmt: skip
def test_a_file_of_no_known_layout_is_refused_naming_it(
    content: str, words: str, tmp_path: Path
) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(content)
    refused_in_one_line(path, words)


def test_the_cli_answers_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "funding.csv"
    path.write_text("funding_time,funding_rate\n2020-03-12T00:00:00Z,0.0001\n")
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "backtest-margin", str(path), "--start",
         "2020-03-12T00:00:00Z", "--end", "2020-03-13T00:00:00Z"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert str(path) in done.stderr and "not a candle file" in done.stderr


@pytest.mark.parametrize(
    ("name", "quote"),
    [
        ("BTCUSDT_1h_2018_2026.csv", "USDT"),
        ("BTCUSDT_PERP_mark_1h.csv", "USDT"),
        ("XBTUSD_1h_to_2020-09.csv", "USD"),
        ("BTCUSD_1d_bitstamp2011_coinbase2015_2025.csv", "USD"),
        ("BTC_USDT-5m.csv", "USDT"),
        ("ETH-USD.csv", "USD"),
        ("eth-usdc-1m.csv", "USDC"),
        ("BTC/BUSD 1h.csv", "BUSD"),
        ("BTCFDUSD-1s-2025-01.csv", "FDUSD"),
        ("XBTEUR_60.csv", "EUR"),
        ("USDTUSD_1h.csv", "USD"),  # the rate of Tether: USDT in USD
        ("BTCUSDT-1h-2024-01.csv", "USDT"),  # Binance's monthly dumps
        ("quiet-a.csv", None),
        ("slide.csv", None),
        ("BTC-PERPETUAL_funding.csv", None),
        ("ETHBTC_1h.csv", "BTC"),  # a quote the venue has no rate for by default: say it
        ("BTCUSDTX_1h.csv", None),  # USDT not followed by the end of the pair
        ("USD.csv", None),  # no base
        # An exchange's name first (CryptoDataDownload's files): before, no quote was found and
        # a EUR file was read as USD (a note said so); now its EUR needs a rate.
        ("Kraken_ETHEUR_1h.csv", "EUR"),
        ("Binance_BTCUSDT_1h.csv", "USDT"),
        ("Bitstamp_BTCUSD_d.csv", "USD"),
        ("coinbase-btc-usd-1m.csv.gz", "USD"),
        ("binance_futures_funding.csv", None),
    ],
)
def test_the_quote_currency_is_read_from_the_name(name: str, quote: str | None) -> None:
    assert quote_of_name(name) == quote


def test_a_fixed_rate_scales_every_price(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_text("\n".join(LAYOUTS["iso, Z"]) + "\n")
    at_par = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR)
    tether = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR,
                       rate=fixed_rate("USDT", 0.9))  # fmt: skip
    assert at_par.bars == EXPECTED
    assert tether.bars == {
        t: tuple(round(p * 0.9 * USDC) for p in bar)
        for t, bar in zip(EXPECTED, PRICES, strict=True)
    }
    for opened, bar in tether.bars.items():  # 0.9× the USD reading, to the quantum
        assert all(abs(q - 0.9 * u) <= 1 for q, u in zip(bar, at_par.bars[opened], strict=True))


def test_a_rate_file_converts_each_candle_at_its_own_time(tmp_path: Path) -> None:
    """USDT at 1.00 until 01:00, 0.80 from 01:00 (the close of the 00:00 candle), 0.50 from
    02:00: the three hours' candles at 1.00, 0.80 and 0.50."""
    rates = tmp_path / "USDTUSD_1h.csv"
    rates.write_text(
        "date,open,high,low,close\n"
        "2020-03-11T23:00:00Z,1,1,1,1.0\n"
        "2020-03-12T00:00:00Z,1,1,0.8,0.8\n"
        "2020-03-12T01:00:00Z,0.8,0.8,0.5,0.5\n"
    )
    rate = rate_history("USDT", rates)
    assert (rate.at(START_NS), rate.at(START_NS + NS_PER_HOUR - 1)) == (1.0, 1.0)
    assert (rate.at(START_NS + NS_PER_HOUR), rate.at(START_NS + 5 * NS_PER_HOUR)) == (0.8, 0.5)
    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_text("\n".join(LAYOUTS["iso, Z"]) + "\n")
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR, rate=rate)
    assert bars.bars == {
        t: tuple(round(p * r * USDC) for p in bar)
        for (t, bar), r in zip(zip(EXPECTED, PRICES, strict=True), (1.0, 0.8, 0.5), strict=True)
    }
    assert bars.bars[START_NS + 2 * NS_PER_HOUR][3] == 3_825 * USDC  # 7,650 USDT at 0.50


def test_a_price_before_the_first_rate_is_refused(tmp_path: Path) -> None:
    rates = tmp_path / "USDTUSD_1h.csv"
    rates.write_text("date,open,high,low,close\n2020-03-12T00:00:00Z,1,1,1,1\n"
                     "2020-03-12T01:00:00Z,1,1,1,1\n")  # fmt: skip
    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_text("\n".join(LAYOUTS["iso, Z"]) + "\n")
    with pytest.raises(InvalidArgument, match=r"no USDT rate at or before 2020-03-12T00:00:00Z "
                       r"\(its first is at 2020-03-12T01:00:00Z\)"):  # fmt: skip
        read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR,
                  rate=rate_history("USDT", rates))  # fmt: skip
    one = tmp_path / "one.csv"
    one.write_text("date,open,high,low,close\n2020-03-12T00:00:00Z,1,1,1,1\n")
    with pytest.raises(InvalidArgument, match="fewer than two candles of the USDT rate"):
        rate_history("USDT", one)


@pytest.mark.parametrize(
    ("files", "start", "end", "words"),
    [
        (["BTCUSD_1h.csv"], "2020-03-12", "2020-03-13T00:00:00Z", "a time needs its zone"),
        (["BTCUSD_1h.csv"], "soon", "2020-03-13T00:00:00Z", "'soon': not an ISO-8601 time"),
        (["BTCUSD_1h.csv"], "2021-03-12T00:00:00Z", "2021-03-13T00:00:00Z",
         "fewer than two candles in the window"),
        # two publishers 50% apart: never a quorum within the outlier band, never an index
        (["BTCUSD_1h.csv", "HALFUSD_1h.csv"], "2020-03-12T02:00:00Z", "2020-03-12T20:00:00Z",
         "no period with fresh prices at both ends"),
    ],
)  # fmt: skip
def test_the_cli_answers_a_bad_window_in_one_line(
    files: list[str], start: str, end: str, words: str, tmp_path: Path
) -> None:
    """Times without a zone, windows without candles and publishers that never make an index
    were tracebacks (ValueError); they are one line with a stable code, exit 2."""
    rows = [f"2020-03-12T{h:02d}:00:00Z,100,101,99,100\n" for h in range(24)]
    (tmp_path / "BTCUSD_1h.csv").write_text("date,open,high,low,close\n" + "".join(rows))
    halves = [r.replace("100,101,99,100", "50,50.5,49.5,50") for r in rows]
    (tmp_path / "HALFUSD_1h.csv").write_text("date,open,high,low,close\n" + "".join(halves))
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "backtest-margin",
         *(str(tmp_path / f) for f in files), "--start", start, "--end", end, "--warmup-days", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "error [INVALID_ARGUMENT]" in done.stderr and words in done.stderr


def test_the_cli_refuses_a_missing_file_or_folder_and_a_window_that_ends_before_it_starts(
    tmp_path: Path,
) -> None:
    """Each in one line with its code, exit 2: a missing file or --data folder was click's
    boxed usage error, wrapped over several lines."""
    path = tmp_path / "BTCUSD_1h.csv"
    path.write_text("date,open,high,low,close\n2020-03-12T00:00:00Z,100,101,99,100\n")
    window = ["--start", "2020-03-12T00:00:00Z", "--end", "2020-03-13T00:00:00Z"]
    for arguments, words in (
        ([str(tmp_path / "nope.csv"), *window], "nope.csv is missing"),
        ([str(path), "--start", "2020-03-13T00:00:00Z", "--end", "2020-03-12T00:00:00Z"],
         "is not after --start"),
        (["--data", str(tmp_path / "dat")], "dat: no such folder"),
        (["--data", str(tmp_path)], "is missing"),
        ([], "give CSV files or --data"),
        ([str(path), "--market", "DOGE", *window], "--market is BTC or ETH, not 'DOGE'"),
    ):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "clearhouse", "backtest-margin", *arguments],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "COLUMNS": "40"},
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert done.stderr.startswith("error [INVALID_ARGUMENT]") and words in done.stderr


# ── Files as exchanges ship them: compressed, other encodings and separators ──────────────────


def _gzip(path: Path, text: str) -> None:
    import gzip

    path.write_bytes(gzip.compress(text.encode()))


def _zip(path: Path, text: str) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.stem, text)  # Binance's dumps: BTCUSDT-1m-2024-01.zip holds one csv


SHIPPED = {
    "gzip (an export's .csv.gz)": ("BTCUSD_1h.csv.gz", lambda p, t: _gzip(p, t)),
    "zip of one csv (Binance's data dumps)": ("BTCUSD-1h-2020-03.zip", lambda p, t: _zip(p, t)),
    "UTF-16 with a byte-order mark (a spreadsheet's unicode text)": (
        "BTCUSD_1h.csv", lambda p, t: p.write_bytes(t.encode("utf-16"))),
    "semicolons": ("BTCUSD_1h.csv", lambda p, t: p.write_text(t.replace(",", ";"))),
    "tabs": ("BTCUSD_1h.tsv", lambda p, t: p.write_text(t.replace(",", "\t"))),
    "a title line before the header (CryptoDataDownload)": (
        "Bitstamp_BTCUSD_1h.csv",
        lambda p, t: p.write_text("https://www.CryptoDataDownload.com\n" + t)),
}  # fmt: skip


@pytest.mark.parametrize(
    ("shipped", "layout"),
    [
        (shipped, layout)
        for shipped in sorted(SHIPPED)
        for layout in ("iso, Z", "Binance headerless, ms")
        if "title" not in shipped or layout == "iso, Z"  # a title line stands above a header
    ],
)
def test_files_as_exchanges_ship_them_read_to_the_same_bars(
    shipped: str, layout: str, tmp_path: Path
) -> None:
    """A gzip or zip export, UTF-16, semicolons or tabs, or a title line above the header:
    before, a compressed or UTF-16 file stopped the CLI in a UnicodeDecodeError traceback and the
    others were refused as no candle file."""
    name, write = SHIPPED[shipped]
    path = tmp_path / name
    write(path, "\n".join(LAYOUTS[layout]) + "\n")
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR)
    assert bars.bars == EXPECTED and bars.skipped_rows == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"date,open,high,low,close\n2020-03-12T00:00:00Z,1,2,1,\xe9\xff\n", "not UTF-8"),
        (b"\x1f\x8b\x08\x00damaged", "cannot be read"),
        (b"PK\x03\x04damaged", "cannot be read"),
    ],
)  # fmt: skip
def test_a_file_that_is_no_text_is_refused_in_one_line(
    content: bytes, words: str, tmp_path: Path
) -> None:
    path = tmp_path / "BTCUSD_1h.csv"
    path.write_bytes(content)
    refused_in_one_line(path, words)


def test_a_zip_of_several_files_is_refused_naming_them(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "BTCUSD.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "\n".join(LAYOUTS["iso, Z"]))
        archive.writestr("b.csv", "\n".join(LAYOUTS["iso, Z"]))
    with pytest.raises(InvalidArgument, match=r"2 files \(a\.csv, b\.csv\)"):
        layout_of(path)


def test_the_cli_reads_a_gzip_file_and_answers_a_binary_one_in_one_line(tmp_path: Path) -> None:
    """``backtest-margin`` on a .csv.gz: before, a traceback (UnicodeDecodeError)."""
    good, bad = tmp_path / "BTCUSD_1h.csv.gz", tmp_path / "BTCUSD_1h.csv"
    _gzip(good, "\n".join(LAYOUTS["iso, Z"]) + "\n")
    bad.write_bytes(b"date,open,high,low,close\n\xff\xfe\x00\x01")
    for path, code in ((good, 0), (bad, 2)):
        done = subprocess.run(
            [sys.executable, "-m", "clearhouse", "backtest-margin", str(path), "--start",
             "2020-03-12T01:00:00Z", "--end", "2020-03-12T03:00:00Z", "--warmup-days", "0"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        if code == 2:
            assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
            assert "not UTF-8" in done.stderr


@pytest.mark.parametrize(
    ("header", "time_of"),
    [
        ("Date,Time,Open,High,Low,Close,Volume", lambda h: f"2020-03-12,{h:02d}:00:00"),
        ("date,time,open,high,low,close", lambda h: f"2020-03-12,{h:02d}:00"),
        ("Time,Date,Open,High,Low,Close", lambda h: f"{h:02d}:00:00,2020-03-12"),
        ("date,time,open,high,low,close", lambda h: f"2020-03-12,{h:02d}:00:00+00:00"),
    ],
)
def test_a_date_and_a_time_of_day_in_two_columns_make_one_time(
    header: str, time_of: Callable[[int], str], tmp_path: Path
) -> None:
    """Date and time of day in columns of their own (``Date,Time,Open,…``, as many exports
    write them): before, every candle of a day was read at midnight, the last of the day
    replaced the others, and backtest-margin measured a 5-minute file as daily candles (2
    breaches in 6 instead of none in 1,728), saying nothing."""
    path = tmp_path / "BTCUSD_1h.csv"
    path.write_text("\n".join(_csv(header, time_of)) + "\n")
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR)
    assert bars.bars == EXPECTED and bars.cadence_ns == NS_PER_HOUR


def test_a_time_column_without_the_time_of_day_is_refused(tmp_path: Path) -> None:
    """Intraday candles whose only time is the date (the time of day lost in an export): each
    day's last candle replaced the others, silently. Most rows replaced by a different candle
    of the same time is refused, naming the file; a correction now and then is not."""
    path = tmp_path / "BTCUSD_1h.csv"
    rows = [f"2020-03-12,{o},{hi},{lo},{c}" for o, hi, lo, c in PRICES]
    path.write_text("\n".join(["date,open,high,low,close", *rows]) + "\n")
    with pytest.raises(InvalidArgument, match=r"2 of its 3 rows .* same time") as refused:
        read_candle_file(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)
    corrected = [*_csv("date,open,high,low,close", lambda h: _iso(h) + "Z")]
    corrected.append(f"{_iso(2)}Z,7600.5,7700,7400,7650")  # a later correction of the last
    path.write_text("\n".join(corrected) + "\n")
    assert len(read_candle_file(path).candles) == 3


def _named(header: str, time_of: Callable[[int], object]) -> list[str]:
    """The three hours under this header, each row's cells in the header's order."""
    names = header.lower().split(",")
    rows = []
    for h, (o, hi, lo, c) in enumerate(PRICES):
        value = {"t": time_of(h), "o": o, "h": hi, "l": lo, "c": c, "v": 1.5}
        rows.append(",".join(str(value[_KIND[n.strip()]]) for n in names))
    return [header, *rows]


_KIND = {
    "mts": "t", "ts": "t", "starttime": "t", "start": "t", "ticks": "t", "time_period_start": "t",
    "open": "o", "close": "c", "high": "h", "low": "l", "volume": "v", "o": "o", "h": "h",
    "l": "l", "c": "c", "vol": "v", "openprice": "o", "highprice": "h", "lowprice": "l",
    "closeprice": "c", "price_open": "o", "price_high": "h", "price_low": "l",
    "price_close": "c", "volume_traded": "v",
}  # fmt: skip
API_HEADERS = {
    "Bitfinex (MTS, open, close, high, low)": ("MTS,OPEN,CLOSE,HIGH,LOW,VOLUME",
                                                lambda h: _epoch(h, 1000)),
    "OKX (ts, o, h, l, c)": ("ts,o,h,l,c,vol", lambda h: _epoch(h, 1000)),
    "Bybit (startTime, openPrice, …)": (
        "startTime,openPrice,highPrice,lowPrice,closePrice,volume", lambda h: _epoch(h, 1000)),
    "Coinbase Advanced (start, low, high, open, close)": (
        "start,low,high,open,close,volume", lambda h: _epoch(h, 1)),
    "Deribit (ticks, open, …)": ("ticks,open,high,low,close,volume", lambda h: _epoch(h, 1000)),
    "CoinAPI (time_period_start, price_open, …)": (
        "time_period_start,price_open,price_high,price_low,price_close,volume_traded",
        lambda h: _iso(h) + ".0000000Z"),
}  # fmt: skip


@pytest.mark.parametrize("api", sorted(API_HEADERS))
def test_exchanges_api_field_names_read_as_headers(api: str, tmp_path: Path) -> None:
    """Candles saved with their exchange API's field names as the header: before, each was
    refused as no candle file (no ``date``/``time``/… column, no ``open``/… columns)."""
    header, time_of = API_HEADERS[api]
    path = tmp_path / "BTCUSD_1h.csv"
    path.write_text("\n".join(_named(header, time_of)) + "\n")
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR)
    assert bars.bars == EXPECTED and bars.skipped_rows == 0


@pytest.mark.parametrize(
    ("header", "time_of"),
    [
        ("close_ms,open,high,low,close", lambda h: _epoch(h + 1, 1000) - 1),  # Binance's close_time
        ("timestamp,open,high,low,close", lambda h: f"2020-03-12T{h:02d}:59:59.999Z"),
        ("time,open,high,low,close", lambda h: _epoch(h + 1, 10**6) - 1),
        ("time,open,high,low,close", lambda h: _epoch(h + 1, 1) - 1),
    ],
)
def test_candles_stamped_at_their_close_read_at_their_open(
    header: str, time_of: Callable[[int], object], tmp_path: Path
) -> None:
    """Times one unit (ms, µs, s) before the cadence's grid are close times (Binance's
    ``close_time``, x:59:59.999): before, ``stress`` refused them (``not aligned``) and
    ``backtest-margin`` measured every close one step late, silently."""
    path = tmp_path / "BTCUSD_1h.csv"
    path.write_text("\n".join(_csv(header.replace("close_ms", "time"), time_of)) + "\n")
    bars = read_bars(path, start_ns=START_NS, end_ns=START_NS + 3 * NS_PER_HOUR)
    assert bars.bars == EXPECTED
    closes = read_candles(path).closes
    assert closes == tuple((t + NS_PER_HOUR, bar[3]) for t, bar in EXPECTED.items())
