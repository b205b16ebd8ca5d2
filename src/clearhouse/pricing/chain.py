"""Option chains in a public exchange format (Deribit's book summary: instrument name, bid and
ask IV, mark IV, underlying price), turned into per-expiry quotes for the SVI fit.

A row looks like ``{"instrument_name": "BTC-27DEC24-60000-C", "mark_iv": 55.2,
"bid_iv": 54.8, "ask_iv": 55.6, "underlying_price": 61234.5}``: IVs in percent, the underlying
price being the forward of that expiry. Deribit options expire at 08:00 UTC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from clearhouse.core.errors import InvalidArgument
from clearhouse.pricing.svi import QUOTED_SD, SliceQuotes

NAME = re.compile(r"^(?P<base>[A-Z]+)-(?P<day>\d{1,2})(?P<month>[A-Z]{3})(?P<year>\d{2})"
                  r"-(?P<strike>\d+(?:d\d+)?)-(?P<kind>[CP])$")  # fmt: skip
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
    """(expiry ns, strike, is_call) of a Deribit option name; InvalidArgument if not one."""
    found = NAME.match(name)
    if found is None or found["month"] not in MONTHS:
        raise InvalidArgument(f"not an option instrument name: {name!r}")
    month = MONTHS.index(found["month"]) + 1
    expiry = datetime(2000 + int(found["year"]), month, int(found["day"]), 8, tzinfo=UTC)
    strike = float(found["strike"].replace("d", "."))
    return int(expiry.timestamp()) * 10**9, strike, found["kind"] == "C"


def parse_chain(rows: Iterable[Mapping[str, object]]) -> list[OptionQuote]:
    quotes = []
    for row in rows:
        expiry_ns, strike, is_call = parse_instrument(str(row.get("instrument_name", "")))
        mark, forward = _number(row, "mark_iv"), _number(row, "underlying_price")
        if mark is None or forward is None or mark <= 0 or forward <= 0:
            raise InvalidArgument(f"{row.get('instrument_name')}: mark_iv and price must be > 0")
        bid, ask = _number(row, "bid_iv"), _number(row, "ask_iv")
        quotes.append(OptionQuote(
            expiry_ns, strike, is_call, forward, mark / 100,
            None if not bid else bid / 100, None if not ask else ask / 100,
        ))  # fmt: skip
    return quotes


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
    quotes: Iterable[OptionQuote], now_ns: int, *, quoted_sd: float = QUOTED_SD
) -> list[SliceQuotes]:
    """Per expiry, by increasing expiry: out-of-the-money marks with their bid and ask
    volatilities (NaN for a missing side), on one forward per expiry (the median of its rows':
    a call and a put at one strike may carry forwards a few dollars apart), within
    ``quoted_sd`` standard deviations σ_ATM·√T of the forward; expiries with fewer than five
    such strikes are left out."""
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


def _number(row: Mapping[str, object], key: str) -> float | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{row.get('instrument_name')}: {key} is not a number") from None
    if not math.isfinite(number):
        raise InvalidArgument(f"{row.get('instrument_name')}: {key} is not finite")
    return number
