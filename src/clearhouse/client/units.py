"""Human units, exactly: prices and sizes as ``Decimal`` in and out, integer quantums on the
wire. A value that is not a whole number of quantums, or not on the market's tick or step, is
refused with the nearest valid values named; nothing is ever rounded silently (a rounded price
is an order at a price nobody chose).

A market's price is in quote units per whole base unit (``Decimal("61234.5")`` USDC per BTC);
its size in base units (``Decimal("0.01")`` BTC). Scales come from the node: each market's
``params`` (``base_quantums_per_unit``, ``tick_quantums``, ``step_base_quantums``) and each
asset's ``quantums_per_unit`` (the quote asset's scales every price).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import QUOTE_ASSET

# Wide enough that no product of a 78-digit integer amount and a scale is ever rounded; any
# inexact step still raises (trapped), so a result is exact or there is none.
_EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])

Human = Decimal | str | int
_MAGNITUDE_MAX = 100  # decimal exponents a human value may have, either way


def to_quantums(value: Human, quantums_per_unit: int, what: str = "amount") -> int:
    """``value`` units as a whole number of quantums; refused if it is not one."""
    quantums = whole_multiple(human_decimal(value, what), quantums_per_unit)
    if quantums is None:
        finest = from_quantums(1, quantums_per_unit)
        raise InvalidArgument(f"{what} {value} is finer than one quantum ({finest}): not sent")
    return quantums


def whole_multiple(amount: Decimal, factor: int) -> int | None:
    """``amount`` × ``factor``, computed exactly, if it is a whole number; else None."""
    scaled = _EXACT.multiply(amount, Decimal(factor))
    return int(scaled) if scaled == scaled.to_integral_value() else None


def from_quantums(quantums: int, quantums_per_unit: int) -> Decimal:
    """``quantums`` as units, exactly (a power-of-ten scale keeps its decimal places)."""
    digits = len(str(quantums_per_unit)) - 1
    if quantums_per_unit == 10**digits:
        return Decimal(quantums).scaleb(-digits, _EXACT)
    return _EXACT.divide(Decimal(quantums), Decimal(quantums_per_unit))


def human_decimal(value: Human, what: str) -> Decimal:
    """``value`` as a finite, non-negative ``Decimal``; refused (InvalidArgument) otherwise."""
    # A float is refused: 0.1 as a float is 0.1000000000000000055..., never what was meant.
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise InvalidArgument(f"{what} must be a Decimal, a str or an int, not {value!r}")
    try:
        amount = Decimal(value)
    except decimal.InvalidOperation:
        raise InvalidArgument(f"{what} {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidArgument(f"{what} must be a finite number >= 0, not {value}")
    if amount and not -_MAGNITUDE_MAX <= amount.adjusted() <= _MAGNITUDE_MAX:
        # Far past any quantum count (2^256 has 78 digits): refused before exact arithmetic
        # would build a number of a million digits from "1e999999".
        raise InvalidArgument(f"{what} {value} is out of range")
    return amount


@dataclass(frozen=True, slots=True)
class MarketUnits:
    """One market's grid: converts prices and sizes both ways, exactly."""

    market_id: str
    base_quantums_per_unit: int
    quote_quantums_per_unit: int
    tick_quantums: int
    step_base_quantums: int

    @classmethod
    def from_market(cls, market: Mapping[str, Any], quote_quantums_per_unit: int) -> MarketUnits:
        params = market["params"]
        return cls(
            market["market_id"], params["base_quantums_per_unit"], quote_quantums_per_unit,
            params["tick_quantums"], params["step_base_quantums"],
        )  # fmt: skip

    def price_quantums(self, price: Human) -> int:
        """``Decimal("61234.5")`` → quote quantums per whole base unit, on the tick."""
        quantums = to_quantums(price, self.quote_quantums_per_unit, f"{self.market_id} price")
        return self._on_grid(quantums, self.tick_quantums, "price", self.price)

    def size_base_quantums(self, size: Human) -> int:
        """``Decimal("0.01")`` base units → base quantums, on the step."""
        quantums = to_quantums(size, self.base_quantums_per_unit, f"{self.market_id} size")
        return self._on_grid(quantums, self.step_base_quantums, "size", self.size)

    def base_quantums(self, size: Human) -> int:
        """``Decimal("0.01")`` base units → base quantums, whatever the step (a cap, not an
        order's size)."""
        return to_quantums(size, self.base_quantums_per_unit, f"{self.market_id} size")

    def price(self, price_quantums: int) -> Decimal:
        return from_quantums(price_quantums, self.quote_quantums_per_unit)

    def size(self, base_quantums: int) -> Decimal:
        return from_quantums(base_quantums, self.base_quantums_per_unit)

    def _on_grid(self, quantums: int, grid: int, what: str, show: Any) -> int:
        if quantums % grid:
            below = quantums - quantums % grid
            raise InvalidArgument(
                f"{self.market_id} {what} {show(quantums)} is off its grid of {show(grid)}: "
                f"{show(below)} or {show(below + grid)}, not rounded for you"
            )
        return quantums


@dataclass(frozen=True, slots=True)
class Units:
    """A venue's scales: every market's grid and every asset's quantums per unit."""

    markets: Mapping[str, MarketUnits]
    assets: Mapping[str, int]  # asset id → quantums per unit

    @classmethod
    def from_node(cls, markets: Iterable[Mapping[str, Any]], assets: Mapping[str, int]) -> Units:
        if QUOTE_ASSET not in assets:
            raise InvalidArgument(f"the node named no scale for the quote asset {QUOTE_ASSET}")
        quote = assets[QUOTE_ASSET]
        grids = {m["market_id"]: MarketUnits.from_market(m, quote) for m in markets}
        return cls(grids, dict(assets))

    def market(self, market_id: str) -> MarketUnits:
        try:
            return self.markets[market_id]
        except KeyError:
            raise InvalidArgument(f"no market {market_id!r} on this node") from None

    def amount_quantums(self, asset_id: str, amount: Human) -> int:
        """``Decimal("12.5")`` USDC → 12_500_000 quantums."""
        return to_quantums(amount, self._scale(asset_id), f"{asset_id} amount")

    def amount(self, asset_id: str, quantums: int) -> Decimal:
        """12_500_000 USDC quantums → ``Decimal("12.500000")``."""
        return from_quantums(quantums, self._scale(asset_id))

    def _scale(self, asset_id: str) -> int:
        try:
            return self.assets[asset_id]
        except KeyError:
            raise InvalidArgument(f"no asset {asset_id!r} on this node") from None


def listed_assets(info: Mapping[str, Any], genesis: Mapping[str, Any] | None) -> dict[str, int]:
    """Each asset's quantums per unit: from ``/v1/info``'s ``assets`` where the node lists them,
    else from the ``ListAsset`` commands of its genesis block (block 1), which every node
    serves and every venue starts with."""
    listed = info.get("assets")
    if isinstance(listed, list):
        return {a["asset_id"]: int(a["quantums_per_unit"]) for a in listed}
    commands = [] if genesis is None else genesis.get("commands", [])
    return {
        c["body"]["params"]["asset_id"]: int(c["body"]["params"]["quantums_per_unit"])
        for c in commands
        if c.get("type") == "ListAsset"
    }
