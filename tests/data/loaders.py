"""Loaders for the real market data in ``../shared/data`` (relative to the repository root).

Test-only: the core never sees a ``datetime`` or a float. Every price becomes an integer in quote
quantums (1 USD = 1_000_000) per whole base unit, every rate an integer in ppb, every time an
integer of nanoseconds since the Unix epoch. The conversions are exact (``Decimal``); a value
that does not convert exactly fails loudly instead of being rounded silently.

The folder is optional: tests that need a file skip, with a clear reason, when it is absent
(``requires_data`` as a marker, ``require`` inside a test or fixture).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"

QUOTE_QUANTUMS_PER_USD = 1_000_000
PPB_PER_ONE = 1_000_000_000
NS_PER_SECOND = 1_000_000_000
NS_PER_HOUR = 3600 * NS_PER_SECOND

MISSING_REASON = "../shared/data not present: real-market-data tests need the shared data folder"

BINANCE_BTC_SPOT_1H = "binance/spot_1h/BTCUSDT_1h_2018_2026.csv"
FTX_BTC_SPOT_1H = "ftx/BTCUSD_spot_1h_2019_2022.csv"
KRAKEN_BTC_SPOT_1H = "kraken/XBTUSD_1h_to_2020-09.csv"
BINANCE_BTC_FUNDING_8H = "funding/binance_BTCUSDT_funding_8h.csv"


def missing_reason(*relative_paths: str) -> str | None:
    """Why the data for a test is unavailable, or None when every file is there."""
    if not DATA_DIR.is_dir():
        return MISSING_REASON
    absent = [p for p in relative_paths if not (DATA_DIR / p).is_file()]
    if absent:
        return f"../shared/data/{absent[0]} not present: {MISSING_REASON.split(': ', 1)[1]}"
    return None


def requires_data(*relative_paths: str) -> pytest.MarkDecorator:
    """A ``skipif`` marker for tests that read these files (use as ``pytestmark``)."""
    reason = missing_reason(*relative_paths)
    return pytest.mark.skipif(reason is not None, reason=reason or "data present")


def require(*relative_paths: str) -> None:
    """Skip the running test (or fixture) when one of these files is absent."""
    reason = missing_reason(*relative_paths)
    if reason is not None:
        pytest.skip(reason)


def parse_utc_ns(text: str) -> int:
    """ISO-8601 UTC (``2020-03-12T10:00:00Z``) to integer nanoseconds since the epoch."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    offset = moment.utcoffset()
    assert offset is not None and offset.total_seconds() == 0, text
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1_000


def exact_int(value: Decimal, what: str) -> int:
    """An integral ``Decimal`` as an int; anything with a fractional part is an error."""
    integral = value.to_integral_value()
    assert integral == value, f"{what}: {value} is not a whole number"
    return int(integral)


def price_quantums(text: str) -> int:
    """A USD price such as ``7354.21`` in quote quantums (exact)."""
    return exact_int(Decimal(text) * QUOTE_QUANTUMS_PER_USD, f"price {text}")


def rate_ppb(text: str) -> int:
    """A funding rate given as a fraction per interval (``0.0001`` = 0.01%) in ppb (exact)."""
    return exact_int(Decimal(text) * PPB_PER_ONE, f"rate {text}")


@cache
def _read_closes(relative_path: str) -> tuple[tuple[int, int], ...]:
    rows: list[tuple[int, int]] = []
    with (DATA_DIR / relative_path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append((parse_utc_ns(row["date"]), price_quantums(row["close"])))
    rows.sort()
    return tuple(rows)


def load_closes(
    relative_path: str,
    *,
    start: str | None = None,
    end: str | None = None,
    candle_ns: int = NS_PER_HOUR,
) -> list[tuple[int, int]]:
    """(close time ns, close price in quantums) of each candle whose OPEN time is in
    [start, end) (ISO-8601 UTC, either bound optional).

    The files give candle open times; a close is only known once the candle has closed, so the
    timestamp returned is open + ``candle_ns``. Gaps stay gaps: nothing is filled.
    """
    require(relative_path)
    lo = parse_utc_ns(start) if start is not None else None
    hi = parse_utc_ns(end) if end is not None else None
    return [
        (open_ns + candle_ns, price)
        for open_ns, price in _read_closes(relative_path)
        if (lo is None or open_ns >= lo) and (hi is None or open_ns < hi)
    ]


@cache
def _read_funding(relative_path: str) -> tuple[tuple[int, int], ...]:
    rows: list[tuple[int, int]] = []
    with (DATA_DIR / relative_path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append((parse_utc_ns(row["funding_time"]), rate_ppb(row["funding_rate"])))
    rows.sort()
    return tuple(rows)


def load_funding(relative_path: str = BINANCE_BTC_FUNDING_8H) -> list[tuple[int, int]]:
    """(funding time ns, rate in ppb per settlement interval) for a fraction-per-interval file."""
    require(relative_path)
    return list(_read_funding(relative_path))
