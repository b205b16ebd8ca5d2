"""Addresses as a caller may write them: lowercase, or EIP-55 checksummed (mixed case), as
wallets and block explorers show them. The node's canonical form is lowercase; the SDK
normalizes before signing or asking, so both spellings reach the same account."""

from __future__ import annotations

from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import Address, checksummed, is_address


def normalize_address(text: str) -> Address:
    """The canonical (lowercase) address for ``text``. Mixed case must be a valid EIP-55
    checksum: a checksum that does not match is a typo, and a typo here names another account,
    so it is refused rather than lowercased."""
    if not isinstance(text, str):
        raise InvalidArgument(f"an address is a string, not {type(text).__name__}")
    lowered = text.lower()
    if not is_address(lowered) or not text.startswith("0x"):
        raise InvalidArgument(f"not an address (0x and 40 hex digits): {text!r}")
    digits = text[2:]
    if digits not in (digits.lower(), digits.upper()) and text != checksummed(lowered):
        raise InvalidArgument(f"address {text!r} fails its EIP-55 checksum (a typo?)")
    return Address(lowered)
