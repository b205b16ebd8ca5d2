"""A simulated actor's address and its nonces (milliseconds, strictly increasing, §3), and the
custody relayer's USDC deposits that simulated venues credit their actors with."""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core.ids import Address, AssetId
from clearhouse.core.messages import Deposit
from clearhouse.core.units import NS_PER_MS


@dataclass(slots=True)
class Signer:
    address: Address
    last_nonce: int = 0

    def nonce(self, timestamp_ns: int) -> int:
        self.last_nonce = max(self.last_nonce + 1, timestamp_ns // NS_PER_MS)
        return self.last_nonce


def usdc_deposit(
    relayer: Signer, deposit_id: int, owner: Address, amount_quantums: int, timestamp_ns: int,
    *, ttl_ns: int,
) -> Deposit:  # fmt: skip
    """The relayer's credit of ``amount_quantums`` USDC to ``owner``'s subaccount 0."""
    return Deposit(
        signer=relayer.address, nonce=relayer.nonce(timestamp_ns),
        expiry_ns=timestamp_ns + ttl_ns, deposit_id=deposit_id, owner=owner,
        subaccount_number=0, asset_id=AssetId("USDC"), amount_quantums=amount_quantums,
    )  # fmt: skip
