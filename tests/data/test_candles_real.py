"""Every candle file of ``../shared/data`` (skipped without it) through ``sim.candles``: its
layout read, the quote currency its name says, its closes as the exact test loader reads them,
Coinbase's ISO ``timestamp`` (the column read) agreeing with its ``unix_timestamp``, and real
candles written headerless in either known price order read back as they were."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from clearhouse.sim.candles import PAR, in_quantums, parse_time_ns, quote_of_name, read_candle_file

from .loaders import (
    BINANCE_BTC_SPOT_1H,
    DATA_DIR,
    FTX_BTC_SPOT_1H,
    KRAKEN_BTC_SPOT_1H,
    NS_PER_HOUR,
    load_closes,
    require,
)

COINBASE = "coinbase/BTCUSD_1d_bitstamp2011_coinbase2015_2025.csv"
QUOTES = {  # each candle file → the quote currency its name says
    "binance/spot_1h/BTCUSDT_1h_2018_2026.csv": "USDT",
    "binance/spot_1h/ETHUSDT_1h_2018_2026.csv": "USDT",
    "binance/spot_5m/BTCUSDT_5m_2021-11_2022-05.csv": "USDT",
    "binance/spot_5m/ETHUSDT_5m_2022-10_2023-01.csv": "USDT",
    "binance/usdm_perp_1h/BTCUSDT_PERP_1h.csv": "USDT",
    "binance/usdm_perp_1h/ETHUSDT_PERP_1h.csv": "USDT",
    "binance/usdm_perp_mark_1h/BTCUSDT_PERP_mark_1h.csv": "USDT",
    "binance/usdm_perp_mark_1h/ETHUSDT_PERP_mark_1h.csv": "USDT",
    "ftx/BTCUSDT_spot_5m_2021-11_2022-05.csv": "USDT",
    "ftx/BTCUSD_spot_1h_2019_2022.csv": "USD",
    "ftx/ETHUSD_spot_1h_2019_2022.csv": "USD",
    "kraken/XBTUSD_1h_to_2020-09.csv": "USD",
    "kraken/ETHUSD_1h_to_2020-09.csv": "USD",
    COINBASE: "USD",
}


@pytest.mark.parametrize("relative", sorted(QUOTES))
def test_a_shared_candle_file_reads_and_its_name_says_its_quote(relative: str) -> None:
    require(relative)
    path = DATA_DIR / relative
    assert quote_of_name(path.name) == QUOTES[relative]
    found = read_candle_file(path)
    assert len(found.candles) > 5_000 and found.skipped_rows == 0
    times = [c.opened_ns for c in found.candles]
    assert times == sorted(set(times))


@pytest.mark.parametrize("relative", [BINANCE_BTC_SPOT_1H, FTX_BTC_SPOT_1H, KRAKEN_BTC_SPOT_1H])
def test_the_closes_are_the_exact_loaders(relative: str) -> None:
    require(relative)
    bars = in_quantums(read_candle_file(DATA_DIR / relative), PAR)
    # The loader stamps a close at its candle's close time, an hour after the open.
    assert [(t + NS_PER_HOUR, bar[3]) for t, bar in bars.items()] == load_closes(relative)


def test_coinbase_reads_its_iso_timestamp_which_agrees_with_its_unix_timestamp() -> None:
    require(COINBASE)
    found = read_candle_file(DATA_DIR / COINBASE)
    with (DATA_DIR / COINBASE).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [c.opened_ns for c in found.candles] == [
        parse_time_ns(r["unix_timestamp"]) for r in rows
    ]
    assert [parse_time_ns(r["timestamp"]) for r in rows] == [c.opened_ns for c in found.candles]
    first = found.candles[0]
    assert (first.open, first.high, first.low, first.close) == (10.9, 10.9, 10.9, 10.9)


HEADERLESS_ROWS = 5_000  # past the rows that decide the order, enough for a quiet market's start


@pytest.mark.parametrize("relative", [BINANCE_BTC_SPOT_1H, KRAKEN_BTC_SPOT_1H, COINBASE])
@pytest.mark.parametrize("order", ["open,high,low,close", "low,high,open,close"])
def test_real_candles_written_headerless_read_back_in_either_order(
    relative: str, order: str, tmp_path: Path
) -> None:
    """Rows that fit both orders (a flat candle, an open at the low) are 431 of Kraken's first
    1,000, 131 of Bitstamp's, 13 of Binance's: the order is found all the same, and every price
    read as written."""
    require(relative)
    candles = read_candle_file(DATA_DIR / relative).candles[:HEADERLESS_ROWS]
    path = tmp_path / "headerless.csv"
    path.write_text("".join(
        f"{c.opened_ns // 1_000_000},{','.join(repr(getattr(c, n)) for n in order.split(','))},1\n"
        for c in candles
    ))  # fmt: skip
    found = read_candle_file(path)
    assert found.candles == candles and found.skipped_rows == 0
