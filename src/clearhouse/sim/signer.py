"""A simulated actor's address and its nonces (milliseconds, strictly increasing, §3)."""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core.ids import Address
from clearhouse.core.units import NS_PER_MS


@dataclass(slots=True)
class Signer:
    address: Address
    last_nonce: int = 0

    def nonce(self, timestamp_ns: int) -> int:
        self.last_nonce = max(self.last_nonce + 1, timestamp_ns // NS_PER_MS)
        return self.last_nonce
