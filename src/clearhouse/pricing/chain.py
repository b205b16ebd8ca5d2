"""Option chains in a public exchange format (Deribit's book summary: instrument name, bid and
ask IV, mark IV, underlying price), turned into per-expiry quotes for the SVI fit.

A row looks like ``{"instrument_name": "BTC-27DEC24-60000-C", "mark_iv": 55.2,
"bid_iv": 54.8, "ask_iv": 55.6, "underlying_price": 61234.5}``: the underlying price being the
forward of that expiry (Tardis's raw ``options_chain`` files name the option ``symbol``).
Deribit options expire at 08:00 UTC. Deribit's API and Tardis give IVs in percent (55.2);
other exports give fractions (0.552), and Deribit's book-summary export names the mark
``implied_volatility`` and the forward ``underlying`` (or ``futures_price``), which are read
in their place. A chain's unit is told by its marks (``iv_unit``): no crypto chain has a
median volatility below 3% nor above 300%, so a median mark below 3 is fractions.

Deribit's public book summary (``public/get_book_summary_by_currency``) has no bid and ask
volatilities: it quotes ``bid_price`` and ``ask_price`` in the coin (a fraction of the forward),
with ``creation_timestamp`` in milliseconds. Its linear options (``SOL_USDC-27DEC24-150-C``,
``XRP_USDC-…``, ``BTC_USDC-…``: settled in a stablecoin) quote their premiums in USDC instead,
read as USD (``is_linear``; their tick is the finest step the chain's premiums are written to).
A row with neither volatility column has its quotes implied from those prices (Black-76 on its
forward, to expiry from ``now_ns`` or else its own time: ``creation_timestamp``, or a
``timestamp`` column, ``row_time_ns``); a price whose time value is within half a tick of zero
carries no volatility and counts as no quote (``implied.NoVolatility.WITHIN_TICK``).

Other exchanges' option chains are read in their own API field names, volatilities as
fractions, expiries at 08:00 UTC as everywhere in crypto options:
OKX (``public/opt-summary``: ``instId`` ``BTC-USD-250328-90000-C``, ``markVol``, ``bidVol``,
``askVol``, ``fwdPx``), Bybit (``v5/market/tickers``: ``symbol`` ``BTC-28MAR25-90000-C``, or
``…-C-USDT`` for its USDT options, ``markIv``, ``bid1Iv``, ``ask1Iv``, ``underlyingPrice``) and
Binance (``eapi/v1/mark``: ``symbol`` ``BTC-250328-90000-C``, ``markIV``, ``bidIV``, ``askIV``;
the forward as ``underlyingPrice``). Their expiries in ``YYMMDD`` are read as such, never as
Deribit's ``DMMMYY``. An exchange's whole JSON response may be given as it is (Deribit's
``result``, OKX's ``data``, Bybit's ``result.list``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from clearhouse.core.errors import InvalidArgument

if TYPE_CHECKING:
    from clearhouse.pricing.svi import SliceQuotes

# Deribit's names (``BTC-27DEC24-60000-C``, ``XRP_USDC-27DEC24-0d625-P``) and Bybit's (the
# same; its USDT-settled options end in ``-USDT``).
NAME = re.compile(r"^(?P<base>[A-Z0-9]+)(?:_(?P<settle>USDC|USDT))?"
                  r"-(?P<day>\d{1,2})(?P<month>[A-Z]{3})(?P<year>\d{2})"
                  r"-(?P<strike>\d+(?:[d.]\d+)?)-(?P<kind>[CP])"
                  r"(?:-(?P<suffix>USDC|USDT))?$")  # fmt: skip
# OKX's (``BTC-USD-250328-90000-C``: coin-margined, the quote USD) and Binance's
# (``BTC-250328-90000-C``, ``DOGE-250328-0.2-C``: USDT-margined): the expiry as YYMMDD.
DATED = re.compile(r"^(?P<base>[A-Z0-9]+)(?:-(?P<quote>USD|USDC|USDT))?"
                   r"-(?P<date>\d{6})-(?P<strike>\d+(?:\.\d+)?)-(?P<kind>[CP])$")  # fmt: skip
NAME_FORMS = ("BTC-27DEC24-60000-C (Deribit, Bybit), BTC-USD-241227-60000-C (OKX) or "
              "BTC-241227-60000-C (Binance)")  # fmt: skip
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
NS_PER_YEAR = 365 * 24 * 3600 * 10**9


@dataclass(frozen=True, slots=True)
class OptionQuote:
    expiry_ns: int
    strike: float
    is_call: bool
    forward: float
    mark_iv: float  # as a fraction
    bid_iv: float | None
    ask_iv: float | None


def parse_instrument(name: str) -> tuple[int, float, bool]:
    """(expiry ns, strike, is_call) of an option name in one of ``NAME_FORMS`` (expiring at
    08:00 UTC); InvalidArgument, naming the forms, if not one."""
    found, dated = NAME.match(name), DATED.match(name)
    try:
        if found is not None and found["month"] in MONTHS:
            month = MONTHS.index(found["month"]) + 1
            day = datetime(2000 + int(found["year"]), month, int(found["day"]), 8, tzinfo=UTC)
        elif dated is not None:
            day = datetime.strptime(dated["date"], "%y%m%d").replace(hour=8, tzinfo=UTC)
            found = dated
        else:
            found = None
    except ValueError:  # a day the month has not (31FEB25, 250231): no traceback
        found = None
    if found is None:
        raise InvalidArgument(f"not an option instrument name: {name!r} (expected {NAME_FORMS})")
    strike = float(found["strike"].replace("d", "."))
    return int(day.timestamp()) * 10**9, strike, found["kind"] == "C"


def is_linear(name: str) -> bool:
    """Whether an option (a valid name) is settled in a stablecoin, its premiums in USD:
    Deribit's ``_USDC``, Bybit's ``-USDT``, Binance's (no quote in the name); OKX's
    ``-USD-`` options are coin-margined, quoted in the coin like Deribit's BTC and ETH."""
    found = NAME.match(name)
    if found is not None:
        return found["settle"] is not None or found["suffix"] is not None
    dated = DATED.match(name)
    return dated is not None and dated["quote"] != "USD"


def underlying_of(name: str) -> str:
    """The underlying and settlement an option's name tells (``BTC``, ``BTC_USDC``,
    ``BTC-USDT``, OKX's ``BTC-USD``): one chain holds one."""
    found = NAME.match(name)
    if found is not None:
        return name.split("-", 1)[0] + (f"-{found['suffix']}" if found["suffix"] else "")
    dated = DATED.match(name)
    if dated is not None:
        return dated["base"] + (f"-{dated['quote']}" if dated["quote"] else "")
    return name.split("-", 1)[0]


# Deribit's API; Tardis's options_chain files, Bybit and Binance; OKX.
NAME_COLUMNS = ("instrument_name", "symbol", "instId")


def name_of(row: Mapping[str, object]) -> str:
    """A row's instrument name, from the first of ``NAME_COLUMNS`` it has ("" if none)."""
    for key in NAME_COLUMNS:
        value = row.get(key)
        if value is not None and value != "":
            return str(value).strip()
    return ""


# Deribit's API and Tardis; its book summary; OKX; Bybit; Binance. Bid and ask alike.
MARK_COLUMNS = ("mark_iv", "implied_volatility", "markVol", "markIv", "markIV")
BID_COLUMNS = ("bid_iv", "bidVol", "bid1Iv", "bidIV")
ASK_COLUMNS = ("ask_iv", "askVol", "ask1Iv", "askIV")
# Deribit's API and Tardis; its book summary (two names); OKX; Bybit and Binance.
FORWARD_COLUMNS = ("underlying_price", "underlying", "futures_price", "fwdPx", "underlyingPrice")
# Where an exchange's JSON response holds its rows: Deribit's, Bybit's (in ``list``); OKX's.
RESPONSE_KEYS = ("result", "data")
FRACTION_MEDIAN_BELOW = 3.0  # a chain's median mark below this is in fractions, else percent
IV_UNITS = ("auto", "percent", "fraction")


def parse_chain(
    rows: Iterable[Mapping[str, object]] | Mapping[str, object], *, iv_unit: str = "auto",
    now_ns: int | None = None,
) -> list[OptionQuote]:  # fmt: skip
    """Each row's quote, volatilities as fractions: ``iv_unit`` "percent" (55.2), "fraction"
    (0.552) or "auto" (told by the chain's median mark, see the module's docstring). A row
    without a positive mark and forward, or whose name is no option, is refused, naming it;
    so is a chain of several underlyings (a file of BTC and ETH options: one call each) or
    of several snapshots (an option listed twice). ``rows`` may be an exchange's whole JSON
    response (``_rows_of``); other exchanges' columns are read (the module's docstring).
    Bid and ask come from ``bid_iv``/``ask_iv`` (``BID_COLUMNS``, ``ASK_COLUMNS``), or where
    a row has none of them, from its ``bid_price``/``ask_price`` in the coin, as of ``now_ns``
    (or the row's own time, ``row_time_ns``)."""
    if iv_unit not in IV_UNITS:
        raise InvalidArgument(f"iv_unit {iv_unit!r}: one of {', '.join(IV_UNITS)}")
    found = []
    for number, row in enumerate(_rows_of(rows), 1):
        if not isinstance(row, Mapping):
            raise InvalidArgument(f"row {number} of the chain is no object of columns: {row!r:.60}")
        name = name_of(row)
        if not name:
            raise InvalidArgument(f"row {number}: no option name (a column "
                                  f"{', '.join(NAME_COLUMNS)})")  # fmt: skip
        expiry_ns, strike, is_call = parse_instrument(name)
        mark, forward = _first(row, MARK_COLUMNS), _first(row, FORWARD_COLUMNS)
        # Name the columns looked for: another exchange's file says which of its own is which.
        if mark is None or mark <= 0:
            raise InvalidArgument(f"{name}: no mark volatility > 0 (a column "
                                  f"{', '.join(MARK_COLUMNS)})")  # fmt: skip
        if forward is None or forward <= 0:
            raise InvalidArgument(f"{name}: no forward price > 0 (a column "
                                  f"{', '.join(FORWARD_COLUMNS)})")  # fmt: skip
        found.append((expiry_ns, strike, is_call, forward, mark, row))
    _one_snapshot([name_of(row) for *_, row in found])
    marks = [mark for *_, mark, _ in found]
    fraction = iv_unit == "fraction" or (
        iv_unit == "auto" and bool(marks) and float(np.median(marks)) < FRACTION_MEDIAN_BELOW
    )
    scale = 1.0 if fraction else 100.0
    quotes = []
    for expiry_ns, strike, is_call, forward, mark, row in found:
        bid, ask = _first(row, BID_COLUMNS), _first(row, ASK_COLUMNS)
        quotes.append(OptionQuote(
            expiry_ns, strike, is_call, forward, mark / scale,
            None if not bid else bid / scale, None if not ask else ask / scale,
        ))  # fmt: skip
    # Every exchange's bid/ask volatility columns: a Bybit row's ``bid1Iv`` is its bid, not a
    # sign that its sides are to be implied from prices it does not have.
    sided = {*BID_COLUMNS, *ASK_COLUMNS}
    priced = [i for i, (*_, row) in enumerate(found) if not sided & row.keys()]
    if priced:
        quotes = _sides_from_prices(quotes, [found[i][-1] for i in priced], priced, now_ns)
    return quotes


def _rows_of(
    rows: Iterable[Mapping[str, object]] | Mapping[str, object],
) -> Iterable[object]:
    """The rows of a chain, or of an exchange's whole JSON response: Deribit's
    ``{"result": [...]}``, OKX's ``{"data": [...]}``, Bybit's ``{"result": {"list": [...]}}``.
    Iterating such an object gave its keys, and a row that was a string stopped in an
    ``AttributeError``; an object without rows is refused naming what it has."""
    if not isinstance(rows, Mapping):
        return rows
    for key in RESPONSE_KEYS:
        inner = rows.get(key)
        if isinstance(inner, Mapping):
            inner = inner.get("list")
        if isinstance(inner, list):
            return inner
    keys = ", ".join(map(str, list(rows)[:6]))
    raise InvalidArgument(f"an object of {keys or 'no keys'}, not a chain: rows of options, "
                          "or an exchange's response with them in result, result.list or "
                          "data")  # fmt: skip


def _one_snapshot(names: Sequence[str]) -> None:
    """An ``InvalidArgument`` naming them when these options are on several underlyings (or
    settle in several currencies: BTC and BTC_USDC), which no one surface describes, or when
    one is listed more than once (several snapshots: one chain is one time)."""
    counts = Counter(underlying_of(name) for name in names)
    if len(counts) > 1:
        each = [f"{base}: {count} rows" if i == 0 else f"{base}: {count}"
                for i, (base, count) in enumerate(sorted(counts.items()))]  # fmt: skip
        raise InvalidArgument(f"a chain of {len(counts)} underlyings ({', '.join(each)}): "
                              "one chain per underlying and settlement currency")  # fmt: skip
    [(name, rows)] = Counter(names).most_common(1) or [("", 0)]
    if rows > 1:
        raise InvalidArgument(f"{name} in {rows} rows: one snapshot per chain (several times "
                              "in one file: split it by its time column)")  # fmt: skip


PRICE_COLUMNS = ("bid_price", "ask_price")  # Deribit's book summary: in the coin
TIME_COLUMN = "creation_timestamp"  # ... and when, in milliseconds since the epoch
ROW_TIME_COLUMN = "timestamp"  # other exports' (Tardis: µs; the book-summary file: ISO-8601)
# Epoch numbers by magnitude, as candle files' (``sim.candles``): (below this, ns per unit).
EPOCH_UNITS = ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3), (10**20, 1))


def row_time_ns(row: Mapping[str, object]) -> int | None:
    """When a row was quoted: its ``creation_timestamp`` (Deribit's ms; s or µs read as such),
    else its ``timestamp`` (ISO-8601, UTC without a zone, or an epoch number whose unit its
    magnitude tells); None without either. A time that is neither is refused, naming the
    row."""
    stamp = _number(row, TIME_COLUMN)
    # Deribit writes it in ms; an export in seconds was read as 1970 and its prices implied
    # over 55 years: its unit is told by its magnitude, as for ``timestamp``.
    text = str(int(stamp)) if stamp is not None else str(row.get(ROW_TIME_COLUMN) or "").strip()
    column = TIME_COLUMN if stamp is not None else ROW_TIME_COLUMN
    if not text:
        return None
    if text[4:5] == "-":
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(f"{name_of(row)}: {column} {text!r}: not a time") from None
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    whole = int(text) if text.isascii() and text.isdigit() else 0
    found = [whole * unit for below, unit in EPOCH_UNITS if 10**8 <= whole < below]
    if not found:
        raise InvalidArgument(f"{name_of(row)}: {column} {text!r}: not a time")
    return found[0]


def _sides_from_prices(
    quotes: list[OptionQuote], rows: list[Mapping[str, object]], at: list[int],
    now_ns: int | None,
) -> list[OptionQuote]:  # fmt: skip
    """``quotes`` with the bid and ask volatilities of ``rows`` (``quotes[at[i]]``'s) implied
    from their prices: None where a side is missing, not positive, or carries no volatility."""
    from clearhouse.pricing.implied import implied_volatility
    from clearhouse.pricing.svi import tick_of

    chosen = [quotes[i] for i in at]
    years = []
    for quote, row in zip(chosen, rows, strict=True):
        when = now_ns if now_ns is not None else row_time_ns(row)
        years.append(math.nan if when is None else (quote.expiry_ns - when) / NS_PER_YEAR)
    forward = np.array([q.forward for q in chosen])
    strike = np.array([q.strike for q in chosen])
    is_call = np.array([q.is_call for q in chosen])
    tau = np.array(years)
    linear = np.array([is_linear(name_of(row)) for row in rows])
    sides = []
    for key in PRICE_COLUMNS:
        premium = np.array([_number(row, key) or 0.0 for row in rows])
        coin_tick = tick_of(premium) * forward
        usd = np.where(linear, premium, premium * forward)
        tick = np.where(linear, _written_tick(premium[linear & (premium > 0)]), coin_tick)
        with np.errstate(invalid="ignore"):
            vol, _ = implied_volatility(usd, is_call, forward, strike, tau, tick=tick)
        sides.append([float(v) if p > 0 and np.isfinite(v) else None
                      for p, v in zip(premium, vol, strict=True)])  # fmt: skip
    out = list(quotes)
    for i, bid, ask in zip(at, *sides, strict=True):
        out[i] = replace(out[i], bid_iv=bid, ask_iv=ask)
    return out


def _written_tick(premiums: np.ndarray) -> float:
    """The finest decimal step these premiums are written to (0.01 for 31.25 and 0.5): at
    most their tick (0 when there are none)."""
    exponents = [Decimal(repr(float(p))).as_tuple().exponent for p in premiums]
    return min((10.0 ** int(e) for e in exponents if isinstance(e, int)), default=0.0)


def _first(row: Mapping[str, object], keys: Sequence[str]) -> float | None:
    """The first of these columns the row has a value in."""
    for key in keys:
        value = _number(row, key)
        if value is not None:
            return value
    return None


def slices_for_fit(
    quotes: Iterable[OptionQuote], now_ns: int, *, max_abs_log_moneyness: float = 1.0
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Per expiry: (T in years, log-moneyness, mark IV), OTM options only (they carry the
    information), sorted by strike; expiries with fewer than five strikes are left out."""
    by_expiry: dict[int, dict[float, float]] = {}
    for quote in quotes:
        if quote.expiry_ns <= now_ns:
            continue
        k = math.log(quote.strike / quote.forward)
        otm = (k >= 0) == quote.is_call
        if otm and abs(k) <= max_abs_log_moneyness:
            by_expiry.setdefault(quote.expiry_ns, {})[k] = quote.mark_iv
    out = []
    for expiry_ns, smile in sorted(by_expiry.items()):
        if len(smile) < 5:
            continue
        ks = np.array(sorted(smile))
        out.append(((expiry_ns - now_ns) / NS_PER_YEAR, ks, np.array([smile[k] for k in ks])))
    return out


def quotes_for_fit(
    quotes: Iterable[OptionQuote], now_ns: int, *, quoted_sd: float | None = None
) -> list[SliceQuotes]:
    """Per expiry, by increasing expiry: out-of-the-money marks with their bid and ask
    volatilities (NaN for a missing side), on one forward per expiry (the median of its rows':
    a call and a put at one strike may carry forwards a few dollars apart), within
    ``quoted_sd`` standard deviations σ_ATM·√T of the forward; expiries with fewer than five
    such strikes are left out. ``quoted_sd`` defaults to ``svi.QUOTED_SD`` (8)."""
    from clearhouse.pricing.svi import QUOTED_SD, SliceQuotes

    quoted_sd = QUOTED_SD if quoted_sd is None else quoted_sd
    by_expiry: dict[int, list[OptionQuote]] = {}
    for quote in quotes:
        if quote.expiry_ns > now_ns:
            by_expiry.setdefault(quote.expiry_ns, []).append(quote)
    out = []
    for expiry_ns, rows in sorted(by_expiry.items()):
        years = (expiry_ns - now_ns) / NS_PER_YEAR
        forward = float(np.median([q.forward for q in rows]))
        smile = {}
        for quote in rows:
            k = math.log(quote.strike / forward)
            if (k >= 0) == quote.is_call:
                smile[k] = quote
        if len(smile) < 5:
            continue
        ks = np.array(sorted(smile))
        marks = np.array([smile[k].mark_iv for k in ks])
        atm = float(np.interp(0.0, ks, marks)) * math.sqrt(years)
        near = np.abs(ks) <= quoted_sd * atm
        if np.count_nonzero(near) < 5:
            continue
        ks = ks[near]
        side = [(smile[k].bid_iv, smile[k].ask_iv) for k in ks]
        out.append(SliceQuotes(
            years, ks, marks[near],
            np.array([math.nan if b is None else b for b, _ in side]),
            np.array([math.nan if a is None else a for _, a in side]),
        ))  # fmt: skip
    return out


def forward_basis_ppm(quotes: Iterable[OptionQuote], index: float) -> dict[int, int]:
    """Per expiry, the chain's forward (the median of its rows' ``underlying_price``, the one
    ``quotes_for_fit`` fits on) as a basis to ``index``, (F − S)/S in parts per million, to the
    nearest: what a publisher reports with that expiry's slice (``SviSlice.forward_basis_ppm``;
    the venue bounds its own futures' forward by it)."""
    assert index > 0, index
    by_expiry: dict[int, list[float]] = {}
    for quote in quotes:
        by_expiry.setdefault(quote.expiry_ns, []).append(quote.forward)
    return {
        expiry_ns: round((float(np.median(forwards)) / index - 1.0) * 1_000_000)
        for expiry_ns, forwards in sorted(by_expiry.items())
    }


def _number(row: Mapping[str, object], key: str) -> float | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name_of(row)}: {key} is not a number") from None
    if not math.isfinite(number):
        raise InvalidArgument(f"{name_of(row)}: {key} is not finite")
    return number


# ── Synthetic chains, built the way real ones are ────────────────────────────────────────────

TICK_BTC = 0.0001  # mark prices as published (Tardis rounds Deribit's marks to 0.0001 BTC)
SYNTHETIC_EXPIRY_DAYS = (0, 1, 2, 3, 7, 14, 28, 56, 91, 182, 273, 364)  # 08:00 UTC, from today


def btc_shape(years: float) -> tuple[float, float, float]:
    """(ATM volatility, ρ, ψ/√θ) of a BTC smile at this expiry: extended SSVI, the medians
    of fits to Deribit's BTC chains on the 1st of each month, 2024-05 .. 2025-12 (ATM 39% at a
    day rising to 54% at a year; skew from ρ ≈ −0.13 to +0.03; wings ψ/√θ from 1.0 to 0.7)."""
    root = math.sqrt(years)
    return 0.39 + 0.16 * years**0.35, -0.13 + 0.16 * root, 1.0 - 0.3 * root


def synthetic_chain(
    seed: int, now_ns: int, *, forward: float = 60_000.0,
    expiry_days: tuple[int, ...] = SYNTHETIC_EXPIRY_DAYS, strikes_per_expiry: int = 0,
) -> list[dict[str, object]]:  # fmt: skip
    """A Deribit-format chain (``parse_chain``'s rows; also ``mark_price`` in BTC) at
    ``now_ns``: expiries at 08:00 UTC ``expiry_days`` days ahead (day 0 is today's, hours
    away when ``now_ns`` is before 08:00), calls and puts at Deribit-like strike spacings out
    to ±6 standard deviations. Marks: the BTC shape (``btc_shape``), a smooth per-expiry
    distortion SSVI cannot take (real wings curve more: +1 volatility point out there, ±0.5),
    0.05
    point of noise, rounded to 0.01 volatility point, the premium to ``TICK_BTC``. Bid and ask:
    a spread in volatility as measured on those chains (3 points at a day, 0.7 at months,
    wider in the wings), turned into premiums rounded outwards to the tick (no bid below one
    tick) and back into volatilities. ``strikes_per_expiry`` > 0 fixes the count per expiry."""
    midnight = now_ns - now_ns % (86_400 * 10**9)
    expiries = [midnight + (days * 24 + 8) * 3600 * 10**9 for days in expiry_days]
    return [row for row, _ in _synthetic(seed, now_ns, expiries, forward, strikes_per_expiry)]


def synthetic_quotes(
    seed: int, now_ns: int, expiries_ns: Sequence[int], *, forward: float,
    strikes_per_expiry: int = 0,
) -> list[OptionQuote]:  # fmt: skip
    """``synthetic_chain``'s quotes at any expiries (a venue's own series, not only 08:00)."""
    found = _synthetic(seed, now_ns, expiries_ns, forward, strikes_per_expiry)
    return [quote for _, quote in found]


def _synthetic(
    seed: int, now_ns: int, expiries_ns: Sequence[int], forward: float, count: int
) -> list[tuple[dict[str, object], OptionQuote]]:
    rng = np.random.default_rng(seed)
    found: list[tuple[dict[str, object], OptionQuote]] = []
    for expiry_ns in expiries_ns:
        if expiry_ns <= now_ns:
            continue
        years = (expiry_ns - now_ns) / NS_PER_YEAR
        for row in _synthetic_expiry(rng, expiry_ns, years, forward, count):
            _, strike, is_call = parse_instrument(str(row["instrument_name"]))
            bid, ask = row["bid_iv"], row["ask_iv"]
            found.append((row, OptionQuote(
                expiry_ns, strike, is_call, forward, float(str(row["mark_iv"])) / 100,
                None if bid == "" else float(str(bid)) / 100,
                None if ask == "" else float(str(ask)) / 100,
            )))  # fmt: skip
    return found


def _synthetic_expiry(
    rng: np.random.Generator, expiry_ns: int, years: float, forward: float, count: int
) -> list[dict[str, object]]:
    from clearhouse.pricing import black76
    from clearhouse.pricing.implied import implied_volatility

    atm, rho, wing = btc_shape(years)
    theta = atm * atm * years
    psi = wing * math.sqrt(theta)
    sd = math.sqrt(theta)
    if count > 0:
        half = count // 4
        ks = np.linspace(-6 * sd, 4.5 * sd, 2 * half)
        strikes = np.unique(np.round(forward * np.exp(ks) / 50) * 50)
    else:
        spacing = 500 if years < 3 / 365 else 1000 if years < 35 / 365 else 5000
        low, high = forward * math.exp(-6 * sd), forward * math.exp(4.5 * sd)
        first, last = math.ceil(low / spacing), math.floor(high / spacing)
        strikes = np.arange(first, last + 1, dtype=float) * spacing
    k = np.log(strikes / forward)
    phi = psi / theta
    w = theta / 2 * (1 + rho * phi * k + np.sqrt((phi * k + rho) ** 2 + 1 - rho * rho))
    x = k / sd
    distortion = rng.normal(0.01, 0.005) * np.tanh(x / 3) ** 2 + rng.normal(0, 0.003) * np.tanh(
        x / 2
    )
    vol = np.sqrt(w / years) + distortion + rng.normal(0, 0.0005, k.size)
    mark = np.round(vol * 100, 2) / 100
    half_spread = (0.0035 + 0.0115 * math.exp(-years * 365 / 10)) * (1 + x * x / 8)
    half_spread *= rng.uniform(0.7, 1.3, k.size)
    rows: list[dict[str, object]] = []
    name = _expiry_label(expiry_ns)
    for is_call in (True, False):
        bid_vol, ask_vol = mark - half_spread, mark + half_spread
        prices = [
            black76.price(is_call, 1.0, strikes / forward, years, v)
            for v in (mark, bid_vol, ask_vol)
        ]
        marks = np.round(prices[0] / TICK_BTC) * TICK_BTC
        bids = np.floor(prices[1] / TICK_BTC) * TICK_BTC
        asks = np.ceil(prices[2] / TICK_BTC) * TICK_BTC
        bid_iv, _ = implied_volatility(bids, is_call, 1.0, strikes / forward, years)
        ask_iv, _ = implied_volatility(asks, is_call, 1.0, strikes / forward, years)
        for i, strike in enumerate(strikes):
            bid = bid_iv[i] if bids[i] >= TICK_BTC and np.isfinite(bid_iv[i]) else None
            ask = ask_iv[i] if np.isfinite(ask_iv[i]) else None
            rows.append({
                "instrument_name": f"BTC-{name}-{int(strike)}-{'C' if is_call else 'P'}",
                "mark_iv": round(float(mark[i]) * 100, 2), "mark_price": round(float(marks[i]), 4),
                "bid_iv": "" if bid is None else round(float(bid) * 100, 2),
                "ask_iv": "" if ask is None else round(float(ask) * 100, 2),
                "underlying_price": forward,
            })  # fmt: skip
    return rows


def _expiry_label(expiry_ns: int) -> str:
    day = datetime.fromtimestamp(expiry_ns // 10**9, tz=UTC)
    return f"{day.day}{MONTHS[day.month - 1]}{day.year % 100:02d}"
