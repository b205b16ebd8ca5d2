"""A columnar, vectorized screen for liquidatable subaccounts (standard mode), for keepers.

After a price move a keeper must find every subaccount with equity < MM. Asking
``margin.subaccount_risk`` of each one costs CPython microseconds per subaccount; this module
narrows the population with float64 numpy arithmetic over columns, then confirms the few
candidates exactly with ``margin.subaccount_risk``. The screen decides nothing: it may return
false candidates, but never misses a liquidatable subaccount (the bound is in ``screen``).

It lives in the shell, not in ``clearhouse.core``: floats and numpy never enter the core
(``docs/ARCHITECTURE.md``, the import contracts in ``pyproject.toml``), and only
``core.margin`` computes margin. Nothing here reads a clock, randomness or I/O.

What it mirrors is ``Risk.liquidatable`` (equity < MM). MM counts positions only, so resting
orders do not change it. The engine's keeper list (``Engine.liquidatable``) adds two rules:
prices must be fresh, and a subaccount whose ladder is under way stays listed while it is below
IM. Those subaccounts are already in ``state.liquidations``: check them there, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from clearhouse.core.ids import QUOTE_ASSET, AssetId, MarketId
from clearhouse.core.ledger import Subaccount
from clearhouse.core.margin import (
    QUOTE_QUANTUMS_PER_UNIT,
    CollateralPrice,
    MarketRisk,
    subaccount_risk,
)
from clearhouse.core.units import PPB_ONE, PPM_ONE

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]
_Scalar = TypeVar("_Scalar", bound=np.generic)

# Float error allowed for, as a fraction of a subaccount's gross magnitude (see ``screen``).
FLOAT_MARGIN_OF_GROSS = 1e-9
# Integer rounding in margin.py, per term, bounded in quote quantums (see ``_position_terms``).
VALUE_ROUNDING_QUOTE_QUANTUMS = 1.0  # floor(size × mark / per_unit)
COLLATERAL_ROUNDING_QUOTE_QUANTUMS = 2.0  # floor(amount × price / per_unit), then floor(× weight)
MAINTENANCE_ROUNDING_QUOTE_QUANTUMS = 3.0  # ceil notional, ceil(× fraction), ceil(× share)


@dataclass(frozen=True, slots=True)
class RiskColumns:
    """Subaccounts as columns: row ``i`` is the ``i``-th subaccount given to ``columns_from``.

    Amounts are float64: sizes and amounts may exceed int64 (``limits.size_base_quantums_max``
    is 1e20), and the screen computes in float anyway. Positions and non-quote collateral are
    sparse: parallel arrays naming their row and their market or asset index. Arrays are
    read-only, so a built snapshot cannot drift from what was screened.
    """

    market_ids: tuple[MarketId, ...]
    asset_ids: tuple[AssetId, ...]  # non-quote collateral assets, in column order
    quote_balance_quote_quantums: FloatArray  # one per subaccount
    collateral_row: IndexArray
    collateral_asset: IndexArray
    collateral_amount_quantums: FloatArray
    position_row: IndexArray
    position_market: IndexArray
    position_size_base_quantums: FloatArray
    position_cost_quote_quantums: FloatArray
    position_funding_index_e9: FloatArray  # the market's funding index at the last settlement

    @property
    def subaccount_count(self) -> int:
        return len(self.quote_balance_quote_quantums)


@dataclass(slots=True)
class _Builder:
    """Python lists filled row by row, turned into arrays once (appending to arrays is slow)."""

    quote: list[float]
    collateral: tuple[list[int], list[int], list[float]]
    positions: tuple[list[int], list[int], list[float], list[float], list[float]]


def columns_from(
    subaccounts: Sequence[Subaccount],
    market_ids: Sequence[MarketId],
    asset_ids: Sequence[AssetId],
) -> RiskColumns:
    """Columns of these subaccounts. Every market and non-quote asset they hold must be named."""
    assert QUOTE_ASSET not in asset_ids, "the quote asset has its own column"
    market_index = {m: i for i, m in enumerate(market_ids)}
    asset_index = {a: i for i, a in enumerate(asset_ids)}
    built = _Builder([], ([], [], []), ([], [], [], [], []))
    for row, subaccount in enumerate(subaccounts):
        _add_row(built, row, subaccount, market_index, asset_index)
    c_row, c_asset, c_amount = built.collateral
    p_row, p_market, p_size, p_cost, p_funding = built.positions
    return RiskColumns(
        market_ids=tuple(market_ids),
        asset_ids=tuple(asset_ids),
        quote_balance_quote_quantums=_frozen(np.array(built.quote, dtype=np.float64)),
        collateral_row=_frozen(np.array(c_row, dtype=np.int64)),
        collateral_asset=_frozen(np.array(c_asset, dtype=np.int64)),
        collateral_amount_quantums=_frozen(np.array(c_amount, dtype=np.float64)),
        position_row=_frozen(np.array(p_row, dtype=np.int64)),
        position_market=_frozen(np.array(p_market, dtype=np.int64)),
        position_size_base_quantums=_frozen(np.array(p_size, dtype=np.float64)),
        position_cost_quote_quantums=_frozen(np.array(p_cost, dtype=np.float64)),
        position_funding_index_e9=_frozen(np.array(p_funding, dtype=np.float64)),
    )


def _add_row(
    built: _Builder,
    row: int,
    subaccount: Subaccount,
    market_index: Mapping[MarketId, int],
    asset_index: Mapping[AssetId, int],
) -> None:
    for asset_id, amount in subaccount.assets.items():
        built.collateral[0].append(row)
        built.collateral[1].append(asset_index[asset_id])
        built.collateral[2].append(float(amount))
    built.quote.append(float(subaccount.quote_quantums))
    for market_id, position in subaccount.positions.items():
        built.positions[0].append(row)
        built.positions[1].append(market_index[market_id])
        built.positions[2].append(float(position.size_base_quantums))
        built.positions[3].append(float(position.cost_quote_quantums))
        built.positions[4].append(float(position.funding_index_e9))


def _frozen(array: npt.NDArray[_Scalar]) -> npt.NDArray[_Scalar]:
    array.flags.writeable = False
    return array


def screen(
    columns: RiskColumns,
    markets: Sequence[MarketRisk],
    collateral: Sequence[CollateralPrice],
) -> IndexArray:
    """Rows that may be liquidatable (equity < MM): a superset of those that are, ascending.

    ``markets`` and ``collateral`` are aligned with ``columns.market_ids`` and ``asset_ids``.

    Why it never misses one. Per subaccount the screen computes, in exact reals, a lower bound
    E⁻ of margin.py's integer equity E and an upper bound M⁺ of its integer MM: every floor
    and ceil in margin.py is replaced by the real value widened by the most that rounding can
    move it (the ``*_ROUNDING_QUOTE_QUANTUMS`` constants), and the size premium by a real
    that is at least ``k·isqrt_ceil(ceil(notional / 1e6))``. Since E and MM are integers,
    E < MM means E ≤ MM − 1, so E⁻ − M⁺ + 1 ≤ 0 for every liquidatable subaccount.

    Float error. That slack is a sum of one term per position and per collateral balance plus
    the quote balance: at most 41 terms (``limits``: 32 positions, 8 collateral assets). Each
    term takes at most ~20 correctly rounded operations, int → float conversions included, so
    its relative error is below ~20 · 2⁻⁵³; summing 41 terms adds at most 41 · 2⁻⁵³ of the sum
    of their absolute values. The float error of the slack is therefore below
    ~70 · 2⁻⁵³ · G < 1e-14 · G, where G ("gross") bounds the absolute values of every term and
    intermediate. A row is returned when its computed slack is ≤ 1e-9 · G: 100,000 times that
    bound, so no liquidatable row is dropped whatever the summation order. A healthy row is
    returned only within ~1e-9 of its gross, plus the rounding constants and the size-premium
    bound, of MM: on the benchmark's population, 1 of 1M.
    """
    count = columns.subaccount_count
    slack = columns.quote_balance_quote_quantums + 1.0
    gross = np.abs(columns.quote_balance_quote_quantums) + 1.0
    collateral_low, collateral_gross = _collateral_terms(columns, collateral)
    slack += np.bincount(columns.collateral_row, weights=collateral_low, minlength=count)
    gross += np.bincount(columns.collateral_row, weights=collateral_gross, minlength=count)
    position_slack, position_gross = _position_terms(columns, markets)
    slack += np.bincount(columns.position_row, weights=position_slack, minlength=count)
    gross += np.bincount(columns.position_row, weights=position_gross, minlength=count)
    return np.flatnonzero(slack <= FLOAT_MARGIN_OF_GROSS * gross).astype(np.int64, copy=False)


def _collateral_terms(
    columns: RiskColumns, collateral: Sequence[CollateralPrice]
) -> tuple[FloatArray, FloatArray]:
    """A lower bound of ``margin.collateral_value`` per balance, and its gross magnitude.

    A positive value is floor(floor(v) × w) ≥ v·w − 2; a negative one floor(v) ≥ v − 1.
    """
    assert len(collateral) == len(columns.asset_ids)
    price = np.array([float(c.price_quantums) for c in collateral], dtype=np.float64)
    per_unit = np.array([float(c.quantums_per_unit) for c in collateral], dtype=np.float64)
    weight = np.array([c.haircut_weight_ppm / PPM_ONE for c in collateral], dtype=np.float64)
    asset = columns.collateral_asset
    value = columns.collateral_amount_quantums * price[asset] / per_unit[asset]
    low = np.where(value > 0, value * weight[asset], value) - COLLATERAL_ROUNDING_QUOTE_QUANTUMS
    return low, np.abs(value) + COLLATERAL_ROUNDING_QUOTE_QUANTUMS


def _position_terms(
    columns: RiskColumns, markets: Sequence[MarketRisk]
) -> tuple[FloatArray, FloatArray]:
    """Per position: (PnL lower bound − MM upper bound), and the gross magnitude of its terms.

    margin.py: value = floor(size × mark / per_unit) ≥ v − 1. MM = ceil(ceil(n × f) × s) with
    n = ceil(|v|) < |v| + 1 and f, s ≤ 1, so MM < |v| × f × s + 3 (fractions as reals). Funding
    not yet settled counts in equity: owed = ceil(size × Δindex / (per_unit × 10⁹)) < o + 1.
    """
    assert len(markets) == len(columns.market_ids)
    market = columns.position_market
    mark = np.array([float(m.mark_price_quantums) for m in markets], dtype=np.float64)[market]
    per_unit = np.array([float(m.base_quantums_per_unit) for m in markets], dtype=np.float64)
    share = np.array([m.maintenance_share_ppm / PPM_ONE for m in markets], dtype=np.float64)
    value = columns.position_size_base_quantums * mark / per_unit[market]
    notional = np.abs(value)
    maintenance_high = (
        notional * _fraction_high(notional, markets, market) * share[market]
        + MAINTENANCE_ROUNDING_QUOTE_QUANTUMS
    )
    index = np.array([float(m.funding_index_e9) for m in markets], dtype=np.float64)[market]
    owed = (
        columns.position_size_base_quantums
        * (index - columns.position_funding_index_e9)
        / (per_unit[market] * PPB_ONE)
    )
    pnl_low = (
        value - columns.position_cost_quote_quantums - VALUE_ROUNDING_QUOTE_QUANTUMS - owed - 1.0
    )
    gross = (
        notional
        + np.abs(columns.position_cost_quote_quantums)
        + VALUE_ROUNDING_QUOTE_QUANTUMS
        + maintenance_high
        + np.abs(owed)
        + 1.0
    )
    return pnl_low - maintenance_high, gross


def _fraction_high(
    notional: FloatArray, markets: Sequence[MarketRisk], market: IndexArray
) -> FloatArray:
    """An upper bound of ``margin.position_im_fraction_ppm`` / 1e6 for each position.

    margin.py: f = min(max(base, k·isqrt_ceil(w)), 1) with w = ceil(n / 1e6), n = ceil(|v|).
    Then w < |v|/1e6 + 2 and isqrt_ceil(w) < sqrt(w) + 1, so k·(sqrt(|v|/1e6 + 2) + 1) bounds
    the premium. max(base, min(premium, 1)) ≥ f always (also when k = 0 or base > 1).
    """
    base = np.array([m.im_fraction_ppm / PPM_ONE for m in markets], dtype=np.float64)
    k = np.array(
        [m.size_premium_ppm_per_sqrt_quote_unit / PPM_ONE for m in markets], dtype=np.float64
    )
    whole_units_high = notional / QUOTE_QUANTUMS_PER_UNIT + 2.0
    premium_high = k[market] * (np.sqrt(whole_units_high) + 1.0)
    return np.maximum(base[market], np.minimum(premium_high, 1.0))


def confirm(
    candidates: IndexArray,
    subaccounts: Sequence[Subaccount],
    markets: Mapping[MarketId, MarketRisk],
    collateral: Mapping[AssetId, CollateralPrice],
) -> list[int]:
    """The candidates that are liquidatable, decided exactly by ``margin.subaccount_risk``."""
    return [
        row
        for row in candidates.tolist()
        if subaccount_risk(subaccounts[row], markets, collateral).liquidatable
    ]
