"""keccak-256, from a maintained library (eth-hash with its C backend), and nothing else."""

from __future__ import annotations

from eth_hash.backends.pysha3 import keccak256 as _keccak256


def keccak(data: bytes) -> bytes:
    """keccak-256 (Ethereum's variant, not NIST SHA3-256) of ``data``: 32 bytes."""
    digest: bytes = _keccak256(data)
    return digest


ZERO_HASH = bytes(32)
