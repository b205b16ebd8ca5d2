"""Typed identifiers: every id is its own type, so a market id is never passed as an order id."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NewType

from clearhouse.core.hashing import keccak

MarketId = NewType("MarketId", str)  # e.g. "BTC-PERP"; sorted lexicographically where order matters
AssetId = NewType("AssetId", str)  # e.g. "USDC", "BTC"
OracleId = NewType("OracleId", str)  # e.g. "BTC-USD"
OrderId = NewType("OrderId", int)  # assigned by the engine, strictly increasing
TradeId = NewType("TradeId", int)  # assigned by the engine, strictly increasing
Address = NewType("Address", str)  # 0x-prefixed lowercase hex, 20 bytes

QUOTE_ASSET = AssetId("USDC")


@dataclass(frozen=True, slots=True, order=True)
class SubaccountId:
    """One cross-margined risk unit: an account's address and a subaccount number."""

    owner: Address
    number: int

    def __str__(self) -> str:
        return f"{self.owner}/{self.number}"


_HEX_DIGITS = frozenset("0123456789abcdef")
_SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
SYMBOL_LENGTH_MAX = 32


def is_symbol(text: str) -> bool:
    """Market, asset and oracle ids: 1-32 of A-Z, 0-9, '-', '_', '.'. No '/', so that an id can
    never reach into another id's state-root keys (``oracle/<id>/twap/<slot>``)."""
    if type(text) is not str or not 0 < len(text) <= SYMBOL_LENGTH_MAX:
        return False
    return _SYMBOL_CHARS.issuperset(text)


def checksummed(address: str) -> str:
    """The EIP-55 spelling of a 0x-prefixed 40-hex-digit address: each letter upper case where
    the keccak of the lower-case hex has a nibble of 8 or more (what wallets and explorers
    show; state keys the lower-case form)."""
    lower = address[2:].lower()
    digest = keccak(lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower)
    )


def is_address(text: str) -> bool:
    """True for a 0x-prefixed, lowercase, 40-hex-digit address (the canonical form in state)."""
    if type(text) is not str or len(text) != 42 or not text.startswith("0x"):
        return False
    return _HEX_DIGITS.issuperset(text[2:])


class Side(IntEnum):
    """Order side. The value is the sign a fill gives to the position (buy +1, sell -1)."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY
