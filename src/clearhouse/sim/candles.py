"""Candle files as exchanges export them, and their prices in the venue's quote (SPEC §13).

One reader for every candle file the simulations read (``sim.solvency.read_bars``,
``sim.backtest.read_candles``). The first row decides whether the file has a header (``_layout``
decides the whole layout, once, before any candle is read):

- a header (names case-insensitive, spaces read as ``_``): a time column, the first of
  ``date, datetime, time, timestamp, open_time, unix_timestamp`` that is present (a ``date``
  of the day alone is read with the ``time`` of day beside it: ``Date,Time,Open,…``), and
  ``open, high, low, close`` anywhere (without those names, exchanges' API field names:
  ``API_COLUMNS``); other columns are ignored (Coinbase's
  ``timestamp,open,close,volume,unix_timestamp,high,low`` reads its ``timestamp``);
- no header: rows of five numeric columns or more, the open time first, then four prices in
  one of the known orders (``HEADERLESS_ORDERS``): open, high, low, close (Binance's kline
  export has 12 columns, Kraken's OHLCVT 7, a plain OHLCV dump 6), low, high, open, close
  (Coinbase's candles API, 6), or open, close, high, low (Bitfinex's and KuCoin's, 6-7). The
  data tells them apart: a row is consistent under an order when its low ≤ open, close ≤ its
  high. Rows are read until ``LAYOUT_SAMPLE_ROWS`` of them fitted exactly one order (or the
  file ends); the order under which most rows with prices are consistent is the file's, on a tie
  the earlier one (a row consistent under several reads the same prices under each, as a flat
  candle does). It must fit at least ``ORDER_FIT_PERCENT_MIN`` % of them (the odd broken row
  is skipped below), else the file is refused, naming the orders tried.

A file may be gzip-compressed or a zip archive of one file (Binance's data dumps), in UTF-8 (a
byte-order mark is dropped) or UTF-16 with a byte-order mark (a spreadsheet's "unicode text"), its
cells separated by commas, tabs or semicolons (told by the header or first row), and may have up
to ``TITLE_ROWS_MAX`` title lines above its header (CryptoDataDownload's first line is its URL).
Anything else that is not text is refused in one line naming the file.

A time is the candle's open time: ISO-8601 with a zone (an offset, or `` UTC``/`` GMT`` after
it), ISO-8601 without one (taken as UTC), or an epoch number whose unit is told by its
magnitude (from 10⁸ seconds, 10¹¹ milliseconds, 10¹⁴ microseconds, 10¹⁷ nanoseconds: each
unit's range starts in 1973 and ends after 5000, so a time since 1973 is never misread; a
smaller number, such as a date written 20200312, is refused). Binance's klines are in
milliseconds, its newer exports in microseconds.

Rows whose price is not a positive number (an exchange's placeholder for a halted market is a
zero) or whose prices are inconsistent (a high below the open or close, a low above them) are
skipped and counted, whatever the layout; of rows with the same time the last wins (a later
correction), but a file where most rows were replaced so is refused (a time without its time
of day); rows come back in time order whatever the file's order. Times all one unit (ms, µs or
s) before the grid of their cadence are close times (Binance's ``close_time``, x:59:59.999) and
are read as the open a cadence earlier.

Prices in a file are in its quote currency (a Binance BTCUSDT file: USDT per BTC). The venue
settles in USDC, so each price becomes USDC quantums at its quote currency's rate
(``in_quantums``), a fixed number or a history read from a candle file of the rate.

Not in ``clearhouse.core``: it reads files and parses prices as floats; integers leave it.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import dataclasses
import gzip
import io
import itertools
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from clearhouse.core.errors import InvalidArgument
from clearhouse.core.units import NS_PER_DAY, NS_PER_SECOND
from clearhouse.sim.venue import USDC

TIME_COLUMNS = ("date", "datetime", "time", "timestamp", "open_time", "unix_timestamp")
PRICE_COLUMNS = ("open", "high", "low", "close")
# Exchanges' API field names, as candles saved from them are headed: each name → the column it
# is (Bitfinex's MTS, OKX's ts/o/h/l/c, Bybit's startTime/openPrice, Coinbase's start, Deribit's
# ticks, CoinAPI's time_period_start/price_open), each read where its column's name is absent.
API_COLUMNS = {
    "mts": "time", "ts": "time", "starttime": "time", "start_time": "time", "start": "time",
    "opentime": "time", "ticks": "time", "time_period_start": "time", "unix": "time",
    "o": "open", "h": "high", "l": "low", "c": "close",
    "openprice": "open", "highprice": "high", "lowprice": "low", "closeprice": "close",
    "open_price": "open", "high_price": "high", "low_price": "low", "close_price": "close",
    "price_open": "open", "price_high": "high", "price_low": "low", "price_close": "close",
}  # fmt: skip
HEADERLESS_COLUMNS_MIN = 5  # time and four prices; then whatever the exchange adds
# The price orders of headerless files after the time column, in the order tried.
HEADERLESS_ORDERS = (
    (("open", "high", "low", "close"), "Binance's klines, Kraken's OHLCVT"),
    (("low", "high", "open", "close"), "Coinbase's candles"),
    (("open", "close", "high", "low"), "Bitfinex's and KuCoin's candles"),
)
# Rows that tell the known orders apart (consistent under exactly one), read to decide a
# headerless file's order: files run to millions of rows. Rows consistent under several (a
# flat candle, an open at the low) tell less, and reading goes on past them.
LAYOUT_SAMPLE_ROWS = 1_000
ORDER_FIT_PERCENT_MIN = 99  # of the sampled rows with prices, consistent under the order chosen
TIME_NS_MAX = 2**62  # beyond any candle: the default end of a range read
EXPECTED = (
    "a header with a time column (date, datetime, time, timestamp, open_time or unix_timestamp) "
    "and open, high, low, close, or headerless rows of time, open, high, low, close (Binance's "
    "klines, Kraken's OHLCVT), time, low, high, open, close (Coinbase's candles) or time, open, "
    "close, high, low (Bitfinex's and KuCoin's candles)"
)
# Epoch numbers by magnitude: (below this, nanoseconds per unit).
_EPOCH_UNITS = ((10**11, NS_PER_SECOND), (10**14, 1_000_000), (10**17, 1_000), (10**20, 1))
_EPOCH_MIN = 10**8  # 1973-03-03 in seconds: no unit reads a smaller number as a candle's time
_UTC_NAMES = (" UTC", " GMT")  # after an ISO time: what some exports write for +00:00
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_MICROSECOND = 1_000


# ── Layouts ─────────────────────────────────────────────────────────────────────────────────


DELIMITERS = (",", "\t", ";")  # in the order tried on a header or a first row
TITLE_ROWS_MAX = 2  # lines above a header that are no part of the table (a URL, a title)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a file's columns are: the time's and open/high/low/close's indexes."""

    header: bool  # the first row after the title lines names the columns (else it is a candle)
    time_column: int
    price_columns: tuple[int, int, int, int]
    delimiter: str = ","
    skipped_lines: int = 0  # lines before the first candle: title lines and the header
    clock_column: int | None = None  # a time of day beside a ``date`` column, read with it


def layout_of(path: Path) -> Layout:
    """The layout of a candle file, from its header or its first rows (checked before anything
    runs); an ``InvalidArgument`` naming the file and what was expected when none fits."""
    with _text(path) as handle:
        return _layout(handle, path)


def _layout(handle: io.TextIOBase, path: Path) -> Layout:
    """The file's layout: a header's is read from it, a headerless file's price order from its
    first rows."""
    lines = [handle.readline() for _ in range(TITLE_ROWS_MAX + 1)]
    for title_lines, line in enumerate(lines):
        for delimiter in DELIMITERS:
            cells = next(csv.reader([line], delimiter=delimiter), [])
            found = _header_layout(cells, path, delimiter, title_lines + 1)
            if found is not None:
                return found
    for delimiter in DELIMITERS:
        cells = next(csv.reader([lines[0]], delimiter=delimiter), [])
        if len(cells) >= HEADERLESS_COLUMNS_MIN and all(_is_number(c) for c in cells):
            handle.seek(0)
            return _headerless_layout(csv.reader(handle, delimiter=delimiter), path, delimiter)
    raise InvalidArgument(f"{path}: not a candle file: expected {EXPECTED}")


def _header_layout(
    cells: list[str], path: Path, delimiter: str, skipped_lines: int
) -> Layout | None:
    """The layout these cells name as a header, or None when they are no header."""
    given = [cell.strip().lower().replace(" ", "_") for cell in cells]
    names = [API_COLUMNS.get(n, n) if API_COLUMNS.get(n, n) not in given else n for n in given]
    time_names = [n for n in TIME_COLUMNS if n in names]
    if not time_names:
        return None
    missing = [n for n in PRICE_COLUMNS if n not in names]
    if missing:
        raise InvalidArgument(f"{path}: its header has no {', '.join(missing)} column; "
                              f"expected {EXPECTED}")  # fmt: skip
    start, high, low, close = (names.index(n) for n in PRICE_COLUMNS)
    clock = names.index("time") if time_names[0] == "date" and "time" in names else None
    return Layout(
        header=True, time_column=names.index(time_names[0]),
        price_columns=(start, high, low, close), delimiter=delimiter, skipped_lines=skipped_lines,
        clock_column=clock,
    )  # fmt: skip


def _headerless_layout(rows: Iterator[list[str]], path: Path, delimiter: str) -> Layout:
    """The known order most rows are consistent under (see the module's docstring), or an
    ``InvalidArgument`` naming the orders tried when none fits."""
    as_written = (1, 2, 3, 4)  # the four price columns after the time, in file order
    layouts = [_headerless_order(order) for order, _ in HEADERLESS_ORDERS]
    fits = [0] * len(layouts)
    read = telling = 0
    for cells in rows:
        prices = _prices(cells, as_written)
        if prices is None:
            continue
        fit = [_consistent(*(prices[i - 1] for i in layout.price_columns)) for layout in layouts]
        fits = [total + ok for total, ok in zip(fits, fit, strict=True)]
        read += 1
        telling += sum(fit) == 1
        if telling >= LAYOUT_SAMPLE_ROWS:
            break
    best = fits.index(max(fits))  # the first of the best: ties keep the default order
    if fits[best] * 100 >= read * ORDER_FIT_PERCENT_MIN:
        return dataclasses.replace(layouts[best], delimiter=delimiter)
    tried = [
        f"{fit} fit time,{','.join(order)} ({who})"
        for (order, who), fit in zip(HEADERLESS_ORDERS, fits, strict=True)
    ]
    raise InvalidArgument(
        f"{path}: its headerless rows fit no known order of prices: of the {read} rows with "
        f"prices read, {', '.join(tried[:-1])} and {tried[-1]}, where {ORDER_FIT_PERCENT_MIN}% "
        f"must (low <= open, close <= high)"
    )


def _headerless_order(order: tuple[str, ...]) -> Layout:
    """A headerless layout: the time first, then the prices in this order."""
    start, high, low, close = (1 + order.index(n) for n in PRICE_COLUMNS)
    return Layout(header=False, time_column=0, price_columns=(start, high, low, close))


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


# ── Times ───────────────────────────────────────────────────────────────────────────────────


def parse_time_ns(text: str) -> int:
    """A candle file's time → ns since the epoch, exactly (see the module's docstring); a
    ``ValueError`` when it is neither ISO-8601 nor a positive epoch number."""
    text = text.strip()
    if text.isascii() and text.isdigit():  # the common epoch case, without Decimal's cost
        return _epoch_ns(int(text), Decimal(0))
    if text[4:5] == "-":  # 2020-03-12...: ISO-8601 (a negative epoch number fails below)
        return _iso_ns(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"time {text!r}: neither ISO-8601 nor an epoch number") from None
    if not number.is_finite():
        raise ValueError(f"time {text!r}: not a finite number")
    whole = int(number)
    return _epoch_ns(whole, number - whole)


def _iso_ns(text: str) -> int:
    named = text.upper().endswith(_UTC_NAMES)
    try:
        parsed = datetime.fromisoformat((text[:-4] if named else text).replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"time {text!r}: not an ISO-8601 time ({error})") from None
    if named and parsed.tzinfo is not None:
        raise ValueError(f"time {text!r}: two zones")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # exchanges' exports without a zone are in UTC
    if parsed.microsecond == 0:
        # Whole seconds are exact in a float's 53 bits: the fast path of exchanges' candles.
        return int(parsed.timestamp()) * NS_PER_SECOND
    return (parsed - _EPOCH) // timedelta(microseconds=1) * _NS_PER_MICROSECOND


def _epoch_ns(whole: int, fraction: Decimal) -> int:
    """An epoch number's unit from its magnitude; a fraction of a unit is kept to the ns
    (rounded toward −∞: a time is never moved later than written)."""
    if whole <= 0:
        raise ValueError(f"epoch time {whole}: not after 1970")
    if whole < _EPOCH_MIN:
        raise ValueError(f"epoch time {whole}: before 1973 in any unit (a date? write it "
                         f"ISO-8601, 2020-03-12)")  # fmt: skip
    for below, ns_per_unit in _EPOCH_UNITS:
        if whole < below:
            return whole * ns_per_unit + int(fraction * ns_per_unit)
    raise ValueError(f"epoch time {whole}: too large for nanoseconds")


def iso_utc(timestamp_ns: int) -> str:
    """ns since the epoch → ``2020-03-12T00:00:00Z`` (for messages)."""
    when = datetime.fromtimestamp(timestamp_ns // NS_PER_SECOND, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ── Reading ─────────────────────────────────────────────────────────────────────────────────


class Candle(NamedTuple):
    """One candle as the file gives it: its open time, prices in the file's quote currency."""

    opened_ns: int
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True, slots=True)
class CandleFile:
    """The candles of a file that open in the range read, one per open time, in time order."""

    name: str  # folder/file, as reports name a venue
    candles: tuple[Candle, ...]
    skipped_rows: int  # rows in the range without four positive prices, or inconsistent ones


def read_candle_file(path: Path, *, start_ns: int = 0, end_ns: int = TIME_NS_MAX) -> CandleFile:
    """The candles of a file (any layout of the module's docstring) that open in
    [start_ns, end_ns). An ``InvalidArgument`` naming the file when it is no candle file or a
    row's time cannot be read."""
    assert start_ns < end_ns, (start_ns, end_ns)
    found: dict[int, Candle] = {}
    skipped = replaced = 0  # replaced: by a later row of the same time with other prices
    layout = layout_of(path)
    with _text(path) as handle:
        for _ in range(layout.skipped_lines):
            handle.readline()
        rows = csv.reader(handle, delimiter=layout.delimiter)
        for opened, cells in _rows_in_range(rows, layout, path, start_ns, end_ns):
            candle = _candle(opened, cells, layout)
            if candle is None:
                skipped += 1
            else:
                replaced += found.get(opened, candle) != candle
                found[opened] = candle  # a later row of the same time replaces it
    if replaced > len(found):
        raise InvalidArgument(
            f"{path}: {replaced} of its {replaced + len(found)} rows with prices were replaced "
            f"by a different candle of the same time: times without their time of day?"
        )
    ordered = _at_open_times(tuple(found[t] for t in sorted(found)))
    return CandleFile(name=f"{path.parent.name}/{path.name}", candles=ordered, skipped_rows=skipped)


@contextmanager
def _text(path: Path) -> Iterator[io.TextIOBase]:
    """The file's text, whatever it is shipped in (see the module's docstring); a file that
    is no text, or a damaged archive, is an ``InvalidArgument`` naming it."""
    try:
        with _binary(path) as binary:
            utf16 = binary.peek(2)[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
            encoding = "utf-16" if utf16 else "utf-8-sig"
            with io.TextIOWrapper(binary, encoding=encoding, newline="") as handle:
                yield handle
    except UnicodeError as error:
        raise InvalidArgument(f"{path}: not UTF-8 or UTF-16 text ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidArgument(f"{path}: cannot be read ({error})") from None


def _binary(path: Path) -> gzip.GzipFile | zipfile.ZipExtFile | io.BufferedReader:
    """The file's bytes: a gzip file's or a one-file zip archive's uncompressed."""
    with path.open("rb") as raw:
        magic = raw.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(path, "rb")
    if magic != b"PK\x03\x04":
        return path.open("rb")
    with zipfile.ZipFile(path) as archive:  # the member keeps the file open until it closes
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        if len(names) != 1:
            listed = ", ".join(names[:5])
            raise InvalidArgument(f"{path}: a zip archive of {len(names)} files ({listed}): "
                                  "one candle file expected")  # fmt: skip
        member = archive.open(names[0])
        assert isinstance(member, zipfile.ZipExtFile), member
        return member


CLOSE_STAMP_UNITS_NS = (1_000_000, 1_000, NS_PER_SECOND)  # ms (Binance's close_time), µs, s


def _at_open_times(candles: tuple[Candle, ...]) -> tuple[Candle, ...]:
    """Candles stamped at their close, one unit before the cadence's grid (x:59:59.999), moved
    to their open; others as they are."""
    times = [c.opened_ns for c in candles]
    if len(times) < 2:
        return candles
    step = cadence_ns(times)
    if all(t % step == 0 for t in times):
        return candles
    for unit in CLOSE_STAMP_UNITS_NS:
        if unit < step and all((t + unit) % step == 0 for t in times):
            return tuple(c._replace(opened_ns=c.opened_ns + unit - step) for c in candles)
    return candles


def unique_names(names: Sequence[str]) -> list[str]:
    """Venues' names, each once: a name met before gets its count (``x/BTCUSDT.csv #2``), so
    that the same file listed twice, or two files of one folder and file name in different
    places, are publishers of their own (one name, one address: the oracle refuses that)."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


def _rows_in_range(
    rows: Iterator[list[str]], layout: Layout, path: Path, start_ns: int, end_ns: int
) -> Iterator[tuple[int, list[str]]]:
    """(open time, cells) of the rows that open in [start_ns, end_ns)."""
    # Years of ISO candles for a window of days: compare the day as text first and parse only
    # the days around the range (a day either side: a zone's offset moves a time by < 1 day).
    first_day, last_day = _day(start_ns - NS_PER_DAY), _day(min(end_ns, TIME_NS_MAX) + NS_PER_DAY)
    column = layout.time_column
    for line, cells in enumerate(rows, start=layout.skipped_lines + 1):
        if not cells:
            continue  # a blank line
        text = _time_text(cells, column, layout.clock_column)
        if text[4:5] == "-" and not first_day <= text[:10] <= last_day:
            continue
        try:
            opened = parse_time_ns(text)
        except ValueError as error:
            raise InvalidArgument(f"{path}, line {line}: {error}") from None
        if start_ns <= opened < end_ns:
            yield opened, cells


def _time_text(cells: Sequence[str], column: int, clock_column: int | None) -> str:
    """A row's time: its time column's, with the time of day of ``clock_column`` after a
    date alone (``2020-03-12`` and ``00:05:00``: ``2020-03-12T00:05:00``)."""
    text = cells[column].strip() if column < len(cells) else ""
    if clock_column is None or len(text) != len("2020-03-12") or clock_column >= len(cells):
        return text
    clock = cells[clock_column].strip()
    return f"{text}T{clock}" if ":" in clock else text


def _day(timestamp_ns: int) -> str:
    clamped = min(max(timestamp_ns, 0), 253_402_214_400 * NS_PER_SECOND)  # 9999-12-31
    return iso_utc(clamped)[:10]


def _candle(opened_ns: int, cells: Sequence[str], layout: Layout) -> Candle | None:
    """The row's candle, or None when a price is missing, not a number or not positive, or
    the prices are inconsistent (a broken row: which of its prices is wrong is unknown)."""
    prices = _prices(cells, layout.price_columns)
    if prices is None or not _consistent(*prices):
        return None
    return Candle(opened_ns, *prices)


def _prices(
    cells: Sequence[str], columns: tuple[int, int, int, int]
) -> tuple[float, float, float, float] | None:
    """The four prices of these columns, or None when one is missing, not a number or not
    positive."""
    try:
        a, b, c, d = (float(cells[i]) for i in columns)
    except (IndexError, ValueError):
        return None
    if not (min(a, b, c, d) > 0 and math.isfinite(a + b + c + d)):  # a NaN or inf: so the sum
        return None
    return a, b, c, d


def _consistent(start: float, high: float, low: float, close: float) -> bool:
    """A candle's prices can be: the open and close within [low, high] (so low <= high).
    Exact: the shared exchange exports (Binance, Coinbase, FTX, Kraken) have no row off by
    even a tick."""
    return low <= min(start, close) and max(start, close) <= high


def cadence_ns(times: Sequence[int]) -> int:
    """The most common spacing of sorted times (gaps in the data do not change it)."""
    assert len(times) >= 2, times
    spacing = Counter(b - a for a, b in itertools.pairwise(times))
    found = spacing.most_common(1)[0][0]
    assert found > 0, found
    return found


# ── Quote currencies ────────────────────────────────────────────────────────────────────────


VENUE_QUOTE = "USDC"  # what the venue settles in
PAR_QUOTES = ("USD", "USDC")  # worth one USDC each unless a scenario gives them a rate
# Dollar stablecoins: at par when a scenario gives no rate, and the run says it assumed so.
PEGGED_QUOTES = ("USDT", "BUSD", "FDUSD", "DAI")
KNOWN_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "DAI", "EUR", "GBP", "JPY", "BTC", "ETH")
# A pair at the start of a name or of a part after a separator: a base of two or more letters
# or digits, an optional separator, a known quote, then the end of the name or a separator
# (BTCUSDT_1h, XBTUSD_60, BTC_USDT-5m, ETH-USD.csv, Kraken_ETHEUR_1h). The shortest base that
# fits: BTCUSDT is BTC/USDT, not BTCU/SDT.
_SEPARATORS = "-_/ ."
_PAIR = re.compile(r"[A-Z0-9]{2,}?[-_/]?(" + "|".join(KNOWN_QUOTES) + r")(?:[-_. ]|$)")


def quote_of_name(name: str) -> str | None:
    """The quote currency a candle file's name states (``BTCUSDT_1h.csv``: USDT), or None: of
    the pairs that start the name or a part of it after a separator, the last
    (``Kraken_ETHEUR_1h.csv``: EUR; ``coinbase-btc-usd-1m.csv``: USD, not COINBASE/BTC)."""
    upper = name.upper()
    starts = [0, *(i + 1 for i, c in enumerate(upper) if c in _SEPARATORS)]
    found = [pair.group(1) for pair in (_PAIR.match(upper, i) for i in starts) if pair]
    return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class Rate:
    """A quote currency's value in USDC over time: ``values[i]`` holds from ``from_ns[i]``."""

    currency: str
    source: str  # "fixed", or the rate file, for messages
    from_ns: tuple[int, ...]
    values: tuple[float, ...]

    def at(self, timestamp_ns: int) -> float:
        """The last rate at or before this time; an ``InvalidArgument`` before the first."""
        index = bisect.bisect_right(self.from_ns, timestamp_ns) - 1
        if index < 0:
            raise InvalidArgument(
                f"{self.source}: no {self.currency} rate at or before {iso_utc(timestamp_ns)} "
                f"(its first is at {iso_utc(self.from_ns[0])})"
            )
        return self.values[index]


def fixed_rate(currency: str, value: float) -> Rate:
    assert 0 < value < float("inf"), value
    return Rate(currency, "fixed", (-TIME_NS_MAX,), (value,))


PAR = fixed_rate(VENUE_QUOTE, 1.0)


def rate_history(currency: str, path: Path) -> Rate:
    """A rate from a candle file of the currency's price in USDC: each close is the rate from
    the candle's close time (its open + the file's cadence), when it was known; no price is
    converted at a rate not yet known at its time."""
    found = read_candle_file(path)
    if len(found.candles) < 2:
        raise InvalidArgument(f"{path}: fewer than two candles of the {currency} rate")
    step_ns = cadence_ns([c.opened_ns for c in found.candles])
    return Rate(
        currency, found.name, tuple(c.opened_ns + step_ns for c in found.candles),
        tuple(c.close for c in found.candles),
    )  # fmt: skip


def rate_of(currency: str, source: float | Path) -> Rate:
    """A scenario's rate: a fixed number, or the history a candle file gives."""
    if isinstance(source, Path):
        return rate_history(currency, source)
    return fixed_rate(currency, source)


def in_quantums(candles: CandleFile, rate: Rate) -> dict[int, tuple[int, int, int, int]]:
    """Open time → (open, high, low, close) in USDC quantums, each candle at the rate of its
    open time: quantums = round(price × rate × USDC), to nearest (ties to even), in one
    rounding; a candle with a price that rounds to 0 quantums is left out (the readers count it
    as a skipped row)."""
    bars = {}
    for candle in candles.candles:
        usdc_per_unit = rate.at(candle.opened_ns)
        given = (candle.open, candle.high, candle.low, candle.close)
        prices = [round(p * usdc_per_unit * USDC) for p in given]
        if min(prices) > 0:
            bars[candle.opened_ns] = (prices[0], prices[1], prices[2], prices[3])
    return bars
