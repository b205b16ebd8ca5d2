"""Scenario files: every bundled one reads; a mistake is refused in one line naming its key;
presets and grid points give the markets they say."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from clearhouse.core.errors import ConfigError
from clearhouse.sim.stress.scenario import (
    BUNDLED_DIR,
    bundled_scenarios,
    find_scenario,
    load_scenario,
    parse_scenario,
)

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SYNTHETIC = """
[scenario]
name = "x"
hours = 1
[prices]
model = "gbm"
annual_vol = 0.6
"""


def test_the_synthetic_bundled_scenarios_read() -> None:
    synthetic = [n for n in bundled_scenarios() if not n.startswith(("crash-", "attack-"))]
    assert {"jumps", "presets", "garch"} <= set(synthetic)
    for name in synthetic:
        scenario = load_scenario(find_scenario(name))
        assert scenario.settings.hours > 0 and scenario.grid_points()


@pytest.mark.skipif(not DATA.is_dir(), reason=f"no market data at {DATA}")
def test_the_real_crash_scenarios_read_with_the_data_folder() -> None:
    crashes = [n for n in bundled_scenarios() if n.startswith("crash-")]
    assert len(crashes) == 7  # every window of sim.backtest.CRASH_WINDOWS
    for name in crashes:
        scenario = load_scenario(find_scenario(name), DATA)
        assert all(f.is_file() for f in scenario.prices.files)


def test_a_crash_scenario_without_its_data_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"prices\.files: no file"):
        load_scenario(BUNDLED_DIR / "crash-luna-btc.toml", tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("hours = 1", "hours = 0"), "scenario.hours"),
        (("hours = 1", "hours = 1\ncolour = 2"), "scenario.colour: unknown key"),
        (('model = "gbm"', 'model = "levy"'), "prices.model: one of"),
        (("annual_vol = 0.6", "annual_vol = -1"), "annual_vol"),
        (("annual_vol = 0.6", 'annual_vol = "high"'), "prices.annual_vol: expected a number"),
        (("annual_vol = 0.6", "annual_vol = 0.6\njumps = 3"), "prices.jumps: unknown key"),
        (("[prices]", "[venue]\npreset = \"cex\"\n[prices]"), "venue.preset: one of"),
        (("[prices]", "[venue.market.margin]\ninitial_margin_ppm = 0\n[prices]"),
         "venue.market: initial_margin_ppm"),
        (("[prices]", "[grid]\n\"margin.initial_margin_ppm\" = 3\n[prices]"), "a list of values"),
        (("[prices]", "[grid]\n\"margin.colour\" = [1]\n[prices]"), "grid.margin.colour"),
        (("[prices]", "[population]\ntraders = -1\n[prices]"), "population: agent counts"),
        (("[prices]", "[attack]\n[prices]"), "attack: expected tables"),
    ],
)  # fmt: skip
def test_a_mistake_is_refused_naming_its_key(edit: tuple[str, str], message: str) -> None:
    text = SYNTHETIC.replace(*edit)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_scenario(tomllib.loads(text))


def test_presets_and_grid_points_give_their_markets() -> None:
    text = SYNTHETIC + '[grid]\npreset = ["clearhouse", "dydx-like", "hyperliquid-like"]\n'
    text += '"margin.maintenance_share_ppm" = [500_000, 800_000]\n'
    scenario = parse_scenario(tomllib.loads(text))
    points = scenario.grid_points()
    assert len(points) == 6
    margins = {
        (p["preset"], p["margin.maintenance_share_ppm"]): scenario.market_at(p).margin
        for p in points
    }
    assert margins[("clearhouse", 500_000)].initial_margin_ppm == 20_000
    assert margins[("dydx-like", 800_000)].initial_margin_ppm == 50_000
    assert margins[("hyperliquid-like", 500_000)].initial_margin_ppm == 25_000
    assert {m.maintenance_share_ppm for m in margins.values()} == {500_000, 800_000}
    assert margins[("dydx-like", 500_000)].vol_multiplier_max_ppm == 1_000_000  # no vol scaling


def test_an_unknown_scenario_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ConfigError, match=r"bundled: .*jumps"):
        find_scenario("no-such-scenario")


# ── Quote currencies: [prices] quotes and [prices.rates] ────────────────────────────────────


CANDLES = "date,open,high,low,close\n2024-01-01T00:00:00Z,1,1,1,1\n2024-01-01T01:00:00Z,1,1,1,1\n"
CSV_PRICES = """
[scenario]
name = "x"
hours = 1
[prices]
model = "csv"
files = ["BTCUSDT_1h.csv", "XBTUSD_1h.csv"]
start = "2024-01-01T00:00:00Z"
end = "2024-01-01T02:00:00Z"
[prices.rates]
USDT = 0.9
"""


def _csv_folder(tmp_path: Path) -> Path:
    for name in ("BTCUSDT_1h.csv", "XBTUSD_1h.csv", "quiet.csv", "USDTUSD_1h.csv", "ETHBTC_1h.csv"):
        (tmp_path / name).write_text(CANDLES)
    (tmp_path / "funding.csv").write_text("funding_time,funding_rate\n2024-01-01T00:00:00Z,0\n")
    return tmp_path


def test_quotes_are_read_from_the_names_and_rates_resolved(tmp_path: Path) -> None:
    folder = _csv_folder(tmp_path)
    prices = parse_scenario(tomllib.loads(CSV_PRICES), base_dir=folder).prices
    assert prices.quotes == ("USDT", "USD")
    assert dict(prices.rates) == {"USD": 1.0, "USDT": 0.9}  # USD at par unless it says
    assert prices.venue_files() == [(folder / "BTCUSDT_1h.csv", "USDT"),
                                    (folder / "XBTUSD_1h.csv", "USD")]  # fmt: skip
    text = CSV_PRICES.replace('"XBTUSD_1h.csv"]', '"quiet.csv"]\nquotes = ["USDT", "USDC"]')
    text = text.replace("USDT = 0.9", 'USDT = "USDTUSD_1h.csv"\nUSDC = 1.01')
    prices = parse_scenario(tomllib.loads(text), base_dir=folder).prices
    assert prices.quotes == ("USDT", "USDC")  # as given: quiet.csv does not say
    assert dict(prices.rates) == {"USDC": 1.01, "USDT": folder / "USDTUSD_1h.csv"}


def test_what_a_scenario_does_not_say_is_assumed_and_noted(tmp_path: Path) -> None:
    """A name that states no quote is read as USD, a dollar stablecoin without a rate at par:
    each assumption a note (printed by the CLI, kept in summary.json)."""
    folder = _csv_folder(tmp_path)
    text = CSV_PRICES.replace('"XBTUSD_1h.csv"]', '"quiet.csv"]').replace("USDT = 0.9", "")
    prices = parse_scenario(tomllib.loads(text), base_dir=folder).prices
    assert prices.quotes == ("USDT", "USD")
    assert dict(prices.rates) == {"USD": 1.0, "USDT": 1.0}
    assert prices.notes == (
        'quiet.csv: its name states no quote currency, read as USD (prices.quotes = ["USDT", '
        "...] says otherwise)",
        "USDT read at par, 1 USDC (no [prices.rates] USDT: give a number or a candle file of "
        "its price to follow a depeg)",
    )
    stated = parse_scenario(tomllib.loads(CSV_PRICES), base_dir=folder).prices
    assert stated.notes == ()


def test_the_bundled_scenarios_that_read_usdt_state_its_rate() -> None:
    for name in bundled_scenarios():
        table = tomllib.loads(find_scenario(name).read_text()).get("prices", {})
        usdt = [f for f in table.get("files", ()) if "USDT" in f]
        assert not usdt or table["rates"] == {"USDT": 1.0}, name


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('"XBTUSD_1h.csv"]', '"ETHBTC_1h.csv"]'), "prices.rates.BTC: no rate for BTC, the "
         "quote currency of ETHBTC_1h.csv: give its value in USDC, a number (USDC per BTC) or "
         "a candle file of its price"),
        (('"XBTUSD_1h.csv"]', '"XBTUSD_1h.csv"]\nquotes = "USDT"'),
         "prices.quotes: a list of currency codes"),
        (('"XBTUSD_1h.csv"]', '"XBTUSD_1h.csv"]\nquotes = ["usdt", "usd"]'),
         "prices.quotes: a list of currency codes"),
        (('"XBTUSD_1h.csv"]', '"XBTUSD_1h.csv"]\nquotes = ["USDT"]'),
         "prices.quotes: 1 for 2 files, one per file"),
        (('"XBTUSD_1h.csv"]', '"XBTUSD_1h.csv"]\nquotes = ["USDT", "EUR"]'),
         "prices.rates.EUR: no rate for EUR, the quote currency of XBTUSD_1h.csv"),
        (("[prices.rates]\nUSDT = 0.9", "rates = 0.9"), "prices.rates: expected a table"),
        (("USDT = 0.9", "USDT = 0"), "prices.rates.USDT: a rate above 0, USDC per unit"),
        (("USDT = 0.9", "USDT = -0.9"), "prices.rates.USDT: a rate above 0"),
        (("USDT = 0.9", "USDT = nan"), "prices.rates.USDT: a rate above 0"),
        (("USDT = 0.9", "USDT = inf"), "prices.rates.USDT: a rate above 0"),
        (("USDT = 0.9", "USDT = true"), "prices.rates.USDT: expected a number (USDC per unit) "
         "or a candle file"),
        (("USDT = 0.9", "USDT = [0.9]"), "prices.rates.USDT: expected a number"),
        (("USDT = 0.9", 'USDT = "no.csv"'), "prices.rates.USDT: no file "),
        (("USDT = 0.9", 'USDT = "funding.csv"'), "prices.rates.USDT: .*funding.csv: not a "
         "candle file: expected a header with a time column"),
        (("USDT = 0.9", "USDT = 0.9\nEUR = 1.1"), "prices.rates.EUR: no file is quoted in EUR "
         "(the files': USD, USDT)"),
        (("USDT = 0.9", "USDT = 0.9\nusdt = 1"), "prices.rates.usdt: no file is quoted in usdt"),
        (('"XBTUSD_1h.csv"]', '"funding.csv"]\nquotes = ["USDT", "USD"]'),
         "prices.files: .*funding.csv: not a candle file"),
        (('model = "csv"', 'model = "csv"\nquote = "USDT"'), "prices.quote: unknown key"),
        # The window's prices end before the run does: hours of a silent oracle, measured.
        (('end = "2024-01-01T02:00:00Z"', 'end = "2023-12-31T23:00:00Z"'),
         "prices.end: after prices.start"),
        (("hours = 1", "hours = 3"), "scenario.hours: 3 hours run past prices.end (2 hours "
         "after prices.start)"),
    ],
)  # fmt: skip
def test_a_quote_or_rate_mistake_is_refused_naming_its_key(
    edit: tuple[str, str], message: str, tmp_path: Path
) -> None:
    text = CSV_PRICES.replace(*edit)
    assert text != CSV_PRICES
    pattern = ".*".join(re.escape(part) for part in f"scenario {message}".split(".*"))
    with pytest.raises(ConfigError, match=pattern):
        parse_scenario(tomllib.loads(text), base_dir=_csv_folder(tmp_path))


def test_quotes_and_rates_are_csv_keys_only() -> None:
    for key in ('quotes = ["USD"]', "rates = { USDT = 1.0 }"):
        text = SYNTHETIC.replace("annual_vol = 0.6", f"annual_vol = 0.6\n{key}")
        with pytest.raises(ConfigError, match=r"prices\.(quotes|rates): unknown key for model gbm"):
            parse_scenario(tomllib.loads(text))
