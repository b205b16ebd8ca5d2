"""keccak-256 from a maintained library, and nothing else.

eth-hash is the Ethereum-standard facade; its C backend is safe-pysha3. The state root hashes
hundreds of nodes per block, so this module binds that backend's constructor directly (the
facade's two wrapper layers cost more than the hash itself); a test checks both agree.
"""

from __future__ import annotations

from sha3 import keccak_256 as _keccak_256


def keccak(data: bytes) -> bytes:
    """keccak-256 (Ethereum's variant, not NIST SHA3-256) of ``data``: 32 bytes."""
    digest: bytes = _keccak_256(data).digest()
    return digest


# The constructor itself, for the Merkle tree's inner loop: ``keccak_hasher(data).digest()``.
keccak_hasher = _keccak_256

ZERO_HASH = bytes(32)
