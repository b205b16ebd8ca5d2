from eth_hash.auto import keccak as reference_keccak

from clearhouse.core.hashing import ZERO_HASH, keccak


def test_keccak_of_empty_input_is_the_ethereum_constant() -> None:
    expected = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"").hex() == expected


def test_keccak_agrees_with_eth_hash_facade() -> None:
    for data in (b"a", b"clearhouse", bytes(range(256)) * 3):
        assert keccak(data) == reference_keccak(data)


def test_zero_hash_is_32_zero_bytes() -> None:
    assert ZERO_HASH == b"\x00" * 32
