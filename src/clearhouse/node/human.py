"""The API in human terms: amounts as exact decimal strings in whole units, timestamps in
milliseconds, one spelling of a side, and EIP-55 checksummed addresses.

Every integer field stays as it is (SDKs, bots and the dashboard read them); this module only
adds a companion beside it, named by one rule so that a client can derive it:

* ``<name>_quantums`` → ``<name>``: the same amount in whole units, as a decimal string
  (``"price_quantums": 6123450000`` → ``"price": "61234.5"``). The unit comes from the suffix:
  ``*price_quantums`` is quote per whole base unit, ``*_base_quantums`` is the market's base
  unit, ``*_quote_quantums`` is the quote asset, and ``amount_quantums`` is the ``asset_id``
  named beside it. Strings, never floats: a float cannot hold 0.1, and JSON numbers past 2**53
  lose digits in JavaScript.
* ``<name>_ns`` → ``<name>_ms``: integer milliseconds, rounded down (nanoseconds since the
  epoch exceed 2**53; milliseconds are what ``Date`` takes).
* ``side`` / ``taker_side`` as an integer (+1 buy, −1 sell, as events encode it) →
  ``side_name`` / ``taker_side_name``: ``"buy"`` or ``"sell"``, the spelling orders already use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from clearhouse.core.engine import Engine
from clearhouse.core.ids import QUOTE_ASSET, Address, checksummed
from clearhouse.core.units import NS_PER_MS
from clearhouse.node.errors import ApiError

DECIMAL_DIGITS_MAX = 80  # exact for every amount: |quantums| < 2**255 has 78 digits
NESTING_MAX = 8  # the deepest view (account → subaccounts → positions → rank) nests 5
ADDRESS = r"^0x[0-9a-fA-F]{40}$"  # any case: EIP-55 checksums are checked by ``address``
# Python's "$" also matches before a final newline ("0x…\n" passed): its own checks take the
# whole string (pydantic's patterns, which ``ADDRESS`` is, do not have that quirk).
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
SIDE_NAMES = {1: "buy", -1: "sell"}
_POWERS_OF_TEN = {10**digits: digits for digits in range(DECIMAL_DIGITS_MAX)}


def units(quantums: int, quantums_per_unit: int) -> str:
    """``quantums / quantums_per_unit`` as a plain decimal string, exact when the divisor is a
    power of ten (every asset and market here); otherwise to 80 significant digits."""
    assert quantums_per_unit > 0, quantums_per_unit
    digits = _POWERS_OF_TEN.get(quantums_per_unit)
    if digits is not None:  # integer arithmetic: a heavy view formats thousands of these
        whole, fraction = divmod(abs(quantums), quantums_per_unit)
        sign = "-" if quantums < 0 else ""
        if fraction == 0:
            return f"{sign}{whole}"
        return f"{sign}{whole}.{str(fraction).rjust(digits, '0').rstrip('0')}"
    with localcontext() as exact:
        exact.prec = DECIMAL_DIGITS_MAX
        value = Decimal(quantums) / Decimal(quantums_per_unit)
        text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0.0") else text


def ms(timestamp_ns: int) -> int:
    """Milliseconds, rounded down (toward the past: a time is never reported early)."""
    return timestamp_ns // NS_PER_MS


@dataclass(frozen=True, slots=True)
class Scales:
    """Quantums per whole unit of the quote asset, of each asset and of each market's base:
    read from state under the lock, used after it."""

    quote: int
    assets: dict[str, int] = field(default_factory=dict)
    markets: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, engine: Engine) -> Scales:
        state = engine.state
        return cls(
            quote=state.assets[QUOTE_ASSET].quantums_per_unit,
            assets={a: p.quantums_per_unit for a, p in state.assets.items()},
            markets={m: s.params.base_quantums_per_unit for m, s in state.markets.items()},
        )

    def per_unit(self, key: str, item: dict[str, Any], market_id: str | None) -> int | None:
        """The divisor of a ``*_quantums`` field, by its name; None when no unit is known."""
        if key.endswith("price_quantums") or key.endswith("_quote_quantums"):
            return self.quote
        if key.endswith("_base_quantums"):
            return None if market_id is None else self.markets.get(market_id)
        asset = item.get("asset_id", item.get("asset"))
        return self.assets.get(asset) if isinstance(asset, str) else None


def annotate(item: Any, scales: Scales, market_id: str | None = None, depth: int = 0) -> Any:
    """A copy of a JSON value with the human companions added beside every field the module
    docstring names, in nested objects too (a nested object inherits its parent's market)."""
    if depth > NESTING_MAX:
        return item
    if isinstance(item, list):
        return [annotate(x, scales, market_id, depth + 1) for x in item]
    if not isinstance(item, dict):
        return item
    found = item.get("market_id", item.get("market"))
    market_id = found if isinstance(found, str) else market_id
    out: dict[str, Any] = {}
    for key, value in item.items():
        out[key] = annotate(value, scales, market_id, depth + 1)
        if type(value) is not int:
            continue
        extra = _companion(key, value, item, scales, market_id)
        if extra is not None and extra[0] not in item:
            out[extra[0]] = extra[1]
    return out


def _companion(
    key: str, value: int, item: dict[str, Any], scales: Scales, market_id: str | None
) -> tuple[str, Any] | None:
    if key.endswith("_quantums"):
        per_unit = scales.per_unit(key, item, market_id)
        return None if per_unit is None else (key[: -len("_quantums")], units(value, per_unit))
    if key.endswith("_ns"):
        return key[: -len("_ns")] + "_ms", ms(value)
    if key in ("side", "taker_side") and value in SIDE_NAMES:
        return key + "_name", SIDE_NAMES[value]
    return None


def balances(amounts: dict[str, int], scales: Scales) -> dict[str, str]:
    """A subaccount's balances (asset → quantums) in whole units of each asset."""
    return {a: units(q, scales.assets.get(a, 1)) for a, q in amounts.items()}


# ── Addresses ──────────────────────────────────────────────────────────────────────────────


def address(text: str) -> Address:
    """An address as state keys it (lower case). Mixed case is an EIP-55 checksum and must be
    right: a wallet that mistyped a letter gets BAD_ADDRESS_CHECKSUM, never someone else's
    account. All lower or all upper case carries no checksum and is taken as it is."""
    if not ADDRESS_RE.fullmatch(text):
        raise ApiError(400, "INVALID_REQUEST", "an address is 0x and 40 hex digits")
    digits = text[2:]
    mixed = digits != digits.lower() and digits != digits.upper()
    if mixed and checksummed(text) != text:
        raise ApiError(400, "BAD_ADDRESS_CHECKSUM", f"{text} fails its EIP-55 checksum",
                       expected=checksummed(text))  # fmt: skip
    return Address("0x" + digits.lower())


def addresses_in(value: Any, depth: int = 0) -> Any:
    """A JSON value with every string that is an address normalized (see ``address``): command
    bodies name addresses in several fields (signer, owner, agent, target). EIP-712 encodes an
    address as its 20 bytes, so a signature over the checksummed spelling is the same one."""
    if depth > NESTING_MAX * 2:
        return value
    if isinstance(value, str) and ADDRESS_RE.fullmatch(value):
        return address(value)
    if isinstance(value, list):
        return [addresses_in(x, depth + 1) for x in value]
    if isinstance(value, dict):
        return {k: addresses_in(v, depth + 1) for k, v in value.items()}
    return value
