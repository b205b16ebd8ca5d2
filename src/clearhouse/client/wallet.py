"""Keys that sign commands: EIP-712 digests signed with secp256k1 (RFC 6979 nonces, low s),
byte for byte what eth-account's ``sign_typed_data`` produces for the same message."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from coincurve import PrivateKey
from eth_account import Account

from clearhouse.app import signing
from clearhouse.core.ids import Address
from clearhouse.core.messages import Command


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
        return cls(bytes.fromhex(key.removeprefix("0x")))

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
