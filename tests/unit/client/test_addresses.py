"""Checksummed addresses are accepted and normalized; a wrong checksum is refused."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from clearhouse.client.addresses import checksummed, normalize_address
from clearhouse.core.errors import InvalidArgument

LOWER = "0x22799e4f566b123fc70168c343fd20bd9e14ba11"


@pytest.mark.parametrize("seed", range(20))
def test_checksum_is_eip55_as_eth_utils_writes_it(seed: int) -> None:
    address = Account.from_key(bytes([seed + 1]) * 32).address.lower()
    assert checksummed(address) == to_checksum_address(address)


def test_every_spelling_of_one_address_names_it_in_lowercase() -> None:
    for spelling in (LOWER, to_checksum_address(LOWER), "0x" + LOWER[2:].upper()):
        assert normalize_address(spelling) == LOWER


def test_a_checksum_that_does_not_match_is_refused_not_lowercased() -> None:
    good = to_checksum_address(LOWER)
    at = next(i for i, c in enumerate(good) if i > 1 and c.isalpha())
    flipped = good[:at] + good[at].swapcase() + good[at + 1 :]
    assert flipped != good and flipped.lower() == LOWER
    with pytest.raises(InvalidArgument, match="EIP-55"):
        normalize_address(flipped)


@pytest.mark.parametrize(
    "text", ["", "0x", LOWER[:-1], LOWER + "0", "22" + LOWER[2:], "0x" + "g" * 40]
)
def test_what_is_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="not an address"):
        normalize_address(text)
