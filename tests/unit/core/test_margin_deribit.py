"""Portfolio margin against a Deribit-style risk matrix (issue 16, "Done when").

The reference below is written from Deribit's published description of its portfolio margin
(support.deribit.com, "Portfolio Margin"; its BTC parameters as its `private/pme/simulate`
reports them) with SciPy's normal distribution, independently of ``core/margin.py``:

* price moves of ±16% in 9 evenly spaced buckets (−16, −12, …, +16%), each with volatility up,
  unchanged and down: up = max(σ·(1 + 0.5·(30/DTE)^p), 50%), down = σ·(1 − 0.25·(30/DTE)^p),
  p = 0.3 below 30 days and 0.13 above ("min volatility for shock up" 0.5);
* the extended table "primarily meant to account for large short options positions that are
  far out of the money": moves of −66%, −33%, +50%, +100% on volatility up only, "a fraction of
  simulated P&L" counted. Deribit does not publish the fraction on the pages read (it names an
  ``extended_table_factor`` and a dampener); 10% is assumed here;
* a contingency of 0.01 × the index per net short option *per strike* (a call and a put at one
  strike and expiry net), and 1% of the index per unit of offsetting futures (none here);
* maintenance margin = the worst scenario loss + contingencies.

Books: a delta-hedged short strangle, and a dealer's book of 40 options with its perpetual
hedge. Each is margined by the engine in portfolio mode (``subaccount_risk``) and must come
within ``FACTOR`` of the reference's maintenance margin, either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from clearhouse.core import option_math
from clearhouse.core.ids import QUOTE_ASSET, Address, MarketId, SubaccountId
from clearhouse.core.ledger import Position, Subaccount
from clearhouse.core.margin import (
    MarketRisk,
    Risk,
    subaccount_risk,
)
from clearhouse.core.scenario_grid import (
    Instrument,
    profile,
)
from options import reference_black76

USDC = 1_000_000
SATS = 100_000_000
INDEX = 60_000 * USDC
FORWARD = float(INDEX)
REALIZED_VOL = 0.5
OWNER = SubaccountId(Address("0x" + "24" * 20), 0)
PERP = MarketId("BTC-PERP")
FACTOR = 1.25  # the engine's MM within 1.25× of the reference's, either way (the issue: 1.5)

# ── The reference: a Deribit-style risk matrix ───────────────────────────────────────────────

PRICE_RANGE = 0.16
PRICE_BUCKETS = 9
VOL_RANGE_UP, VOL_RANGE_DOWN, MIN_VOL_FOR_SHOCK_UP = 0.5, 0.25, 0.5
SHORT_TERM_POWER, LONG_TERM_POWER = 0.30, 0.13
EXTENDED_MOVES = (-0.66, -0.33, 0.50, 1.00)
EXTENDED_FRACTION = 0.10  # assumed (see the module docstring)
OPTION_CONTINGENCY = 0.01  # × index per net short option per strike


def shocked_vol(vol: float, years: float, state: str) -> float:
    days = years * 365.0
    power = SHORT_TERM_POWER if days < 30 else LONG_TERM_POWER
    shape = (30.0 / days) ** power
    if state == "up":
        return max(vol * (1 + VOL_RANGE_UP * shape), MIN_VOL_FOR_SHOCK_UP)
    if state == "down":
        return max(vol * (1 - VOL_RANGE_DOWN * shape), 0.01)
    return vol


Leg = tuple[Instrument, float]  # (instrument, signed size in BTC)


def book_value(legs: list[Leg], forward: float, state: str) -> float:
    total = 0.0
    for instrument, size in legs:
        if instrument.strike is None:
            total += size * forward
            continue
        vol = shocked_vol(instrument.volatility, instrument.expiry_years, state)
        total += size * reference_black76(instrument.is_call, forward, instrument.strike,
                                          instrument.expiry_years, vol)  # fmt: skip
    return total


def reference_maintenance(legs: list[Leg]) -> float:
    """Deribit-style MM of a book on one underlying, in quote quantums."""
    now = book_value(legs, FORWARD, "same")
    losses = []
    for move in np.linspace(-PRICE_RANGE, PRICE_RANGE, PRICE_BUCKETS):
        for state in ("up", "same", "down"):
            losses.append(now - book_value(legs, FORWARD * (1 + move), state))
    for move in EXTENDED_MOVES:
        losses.append(EXTENDED_FRACTION * (now - book_value(legs, FORWARD * (1 + move), "up")))
    per_strike: dict[tuple[float, float], float] = {}
    for instrument, size in legs:
        if instrument.strike is not None:
            key = (instrument.strike, instrument.expiry_years)
            per_strike[key] = per_strike.get(key, 0.0) + size
    shorts = sum(-size for size in per_strike.values() if size < 0)
    return max(max(losses), 0.0) + OPTION_CONTINGENCY * FORWARD * shorts


# ── The engine's side: the same book as markets and a portfolio-mode subaccount ───────────────


def smile(strike: float, years: float) -> float:
    """A BTC-like surface: 55% at the money, a smile in log-moneyness, higher short-dated."""
    moneyness = math.log(strike / FORWARD)
    return 0.55 + 0.05 * math.sqrt(30 / 365 / years) * 0.1 + 0.35 * moneyness**2 - 0.05 * moneyness


def option(is_call: bool, strike_usdc: int, days: int) -> Instrument:
    strike = float(strike_usdc * USDC)
    years = days / 365.0
    return Instrument(years, strike, is_call, smile(strike, years))


def market_of(instrument: Instrument, im_fraction_ppm: int = 20_000) -> MarketRisk:
    """The risk inputs ``core/engine/risk.py`` gives a market: its profile at the index, its
    mark (Black-76 at the surface for an option, the index for the perpetual), the default
    venue's BTC perpetual tier (2% IM, MM 75% of it, the size premium of 20 ppm per √USDC)."""
    contract = profile([(instrument, 1.0)], forward=FORWARD, realized_vol=REALIZED_VOL)
    if instrument.strike is None:
        mark = INDEX
    else:
        mark = math.floor(option_math.price(
            is_call=instrument.is_call, forward=FORWARD, strike=instrument.strike,
            expiry_years=instrument.expiry_years, volatility=instrument.volatility,
        ))  # fmt: skip
    return MarketRisk(
        mark_price_quantums=mark, base_quantums_per_unit=SATS, im_fraction_ppm=im_fraction_ppm,
        maintenance_share_ppm=750_000, size_premium_ppm_per_sqrt_quote_unit=20, usable=True,
        underlying="BTC-USD", profile=contract, is_option=instrument.strike is not None,
        index_price_quantums=INDEX,
    )  # fmt: skip


def engine_risk(legs: list[Leg], perp_im_fraction_ppm: int = 20_000) -> Risk:
    markets: dict[MarketId, MarketRisk] = {}
    positions: dict[MarketId, Position] = {}
    for number, (instrument, size) in enumerate(legs):
        market_id = PERP if instrument.strike is None else MarketId(f"OPT-{number}")
        markets[market_id] = market = market_of(instrument, perp_im_fraction_ppm)
        base = round(size * SATS)
        cost = base * market.mark_price_quantums // SATS  # entered at mark: no PnL
        positions[market_id] = Position(market_id, base, cost)
    subaccount = Subaccount(OWNER, {QUOTE_ASSET: 10**15}, positions)
    return subaccount_risk(subaccount, markets, {}, portfolio=True)


def hedged(options: list[Leg]) -> list[Leg]:
    """The options and a perpetual that cancels their delta (to 0.01 BTC)."""
    delta = sum(
        size * option_math.greeks(is_call=i.is_call, forward=FORWARD, strike=i.strike or 0.0,
                                  expiry_years=i.expiry_years, volatility=i.volatility)[0]
        for i, size in options
    )  # fmt: skip
    return [*options, (Instrument(0.0), -round(delta, 2))]


def short_strangle() -> list[Leg]:
    """A far out-of-the-money strangle sold, delta-hedged: 50 short 30-day calls at 100k and
    50 short puts at 36k (the book the extended moves are for)."""
    return hedged([(option(True, 100_000, 30), -50.0), (option(False, 36_000, 30), -50.0)])


def dealer_book() -> list[Leg]:
    """A dealer's book of 40 options, delta-hedged on the perpetual: customers bought
    in-the-money calls as leveraged longs (the dealer is short them, 5 to 15 each, at six
    strikes from 30k to 45k) and out-of-the-money wings (short 70k calls and 50k puts, 1 to 3
    each), over five expiries from 7 to 90 days. The hedge is ~380 BTC long: the book the
    blanket floor charged as if it were naked (issue 16)."""
    rng = np.random.default_rng(16)
    legs: list[Leg] = []
    for days in (7, 14, 30, 60, 90):
        for strike in (30_000, 33_000, 36_000, 39_000, 42_000, 45_000):
            legs.append((option(True, strike, days), -float(rng.integers(5, 16))))
        legs.append((option(True, 70_000, days), -float(rng.integers(1, 4))))
        legs.append((option(False, 50_000, days), -float(rng.integers(1, 4))))
    assert len(legs) == 40
    return hedged(legs)


@pytest.mark.parametrize("book", [short_strangle, dealer_book], ids=["strangle", "dealer"])
def test_a_hedged_book_is_margined_within_a_factor_of_a_deribit_style_risk_matrix(
    book: Callable[[], list[Leg]],
) -> None:
    legs = book()
    reference = reference_maintenance(legs)
    found = engine_risk(legs)
    ratio = found.maintenance / reference
    # Measured: strangle 1.02 (0.65 before: no extended moves), dealer 1.00 (1.48 before:
    # the blanket floor charged the hedge as if naked).
    assert 1 / FACTOR <= ratio <= FACTOR, (found.maintenance / USDC, reference / USDC, ratio)


def test_the_hedge_is_credited_not_floored() -> None:
    """The same options with and without their hedge: hedging the delta never raises the
    requirement by more than the hedge's own share of the floor, and the hedged book needs
    less than the unhedged one (issue 16: 2.3× the margin with the blanket floor)."""
    legs = dealer_book()
    with_hedge, without = engine_risk(legs), engine_risk(legs[:-1])
    assert with_hedge.maintenance < without.maintenance
    assert with_hedge.initial < without.initial


def test_a_hedge_keeps_a_quarter_of_its_floor_and_an_illiquid_one_all_of_it() -> None:
    """The linear floor shrinks with the share of the hedge the options offset, to a quarter
    of the standard requirement; a market margined beyond the grid's range (here 100% IM, an
    illiquid tier) keeps all of it: its price can leave the index, which no option hedges."""
    legs = dealer_book()
    perp_units = legs[-1][1]
    notional = abs(perp_units) * INDEX
    assert engine_risk(legs).maintenance < notional * 0.75  # the liquid hedge is credited
    illiquid = engine_risk(legs, perp_im_fraction_ppm=1_000_000)
    assert illiquid.maintenance >= notional * 0.75  # MM share 75% of a 100% IM
    assert illiquid.initial >= notional
