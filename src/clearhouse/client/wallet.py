"""Keys that sign commands: EIP-712 digests signed with secp256k1 (RFC 6979 nonces, low s),
byte for byte what eth-account's ``sign_typed_data`` produces for the same message."""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from coincurve import PrivateKey
from eth_account import Account

from clearhouse.app import signing
from clearhouse.core.errors import ConfigError, InvalidArgument
from clearhouse.core.ids import Address
from clearhouse.core.messages import Command

_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")
# secp256k1's group order: a private key is an integer in [1, n - 1].
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True, slots=True)
class Wallet:
    private_key: bytes = field(repr=False)
    address: Address = field(init=False)

    def __post_init__(self) -> None:
        address = Address(Account.from_key(self.private_key).address.lower())
        object.__setattr__(self, "address", address)

    @classmethod
    def create(cls) -> Wallet:
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_hex(cls, key: str) -> Wallet:
        """A key written as 64 hex digits (``0x`` optional); anything else is refused, and
        the message never repeats the text (it may be most of a key)."""
        text = key.strip()
        if not _KEY.fullmatch(text):
            raise InvalidArgument("a private key is 64 hex digits, optionally after 0x")
        secret = bytes.fromhex(text.removeprefix("0x"))
        if not 0 < int.from_bytes(secret, "big") < _ORDER:
            raise InvalidArgument("a private key is a number in [1, n - 1] of secp256k1")
        return cls(secret)

    @classmethod
    def from_key_file(cls, path: str | Path) -> Wallet:
        """The key in a file only its owner may read (as ssh insists for its keys: a key
        others can read is no longer private). ConfigError, in one line, otherwise."""
        try:
            mode = os.stat(path).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(f"key file {path} is open to other users (mode "
                                  f"{stat.S_IMODE(mode):o}): chmod 600 {path}")  # fmt: skip
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read key file {path}: {error}") from None
        try:
            return cls.from_hex(text)
        except InvalidArgument as error:
            raise ConfigError(f"key file {path}: {error}") from None

    def sign(self, command: Command, domain: signing.Domain) -> bytes:
        """65 bytes r ‖ s ‖ v (v = 27 or 28) over the command's EIP-712 digest."""
        raw = PrivateKey(self.private_key).sign_recoverable(
            signing.digest(command, domain), hasher=None
        )
        return raw[:64] + bytes([raw[64] + 27])

    def sign_as_wallet(self, command: Command, domain: signing.Domain) -> bytes:
        """The same signature made by eth-account from the typed data, as a wallet does."""
        message = signing.typed_data(command, domain)
        signed = Account.sign_typed_data(self.private_key, full_message=message)
        return bytes(signed.signature)
