"""The read fast path answers exactly the requests its route would answer with the same view:
the same key, the same defaults and bounds; anything else goes the usual way."""

from __future__ import annotations

import pytest

from clearhouse.node.fastpath import view_key

LOWER = "0x" + "ab" * 20
CHECKSUMMED = "0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B"  # EIP-55


@pytest.mark.parametrize(
    ("path", "query", "key"),
    [
        (f"/v1/accounts/{LOWER}", b"", ("account", LOWER)),
        (f"/v1/accounts/{CHECKSUMMED}", b"", ("account", CHECKSUMMED.lower())),
        (f"/v1/accounts/{LOWER}/subaccounts/7", b"", ("subaccount", LOWER, 7)),
        ("/v1/markets/BTC-PERP/adl", b"", ("adl", "BTC-PERP", 50)),
        ("/v1/markets/BTC-PERP/adl", b"limit=500", ("adl", "BTC-PERP", 500)),
        ("/v1/liquidations", b"", ("liquidations", 100)),
        ("/v1/liquidations", b"limit=20", ("liquidations", 20)),
    ],
)
def test_the_routes_keys(path: str, query: bytes, key: object) -> None:
    assert view_key(path, query) == key


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (f"/v1/accounts/{CHECKSUMMED.replace('b', 'B', 1)}", b""),  # a bad checksum: an error
        (f"/v1/accounts/{LOWER}", b"x=1"),  # a query the route ignores or refuses
        (f"/v1/accounts/{LOWER}/subaccounts/128", b""),  # past the last subaccount number
        ("/v1/markets/BTC-PERP/adl", b"limit=501"),  # past the bound: a 400
        ("/v1/markets/BTC-PERP/adl", b"limit=0"),
        ("/v1/liquidations", b"limit=20&limit=30"),
        ("/v1/markets/BTC-PERP", b""),  # not a cached view
        # A final newline (%0A): the route refuses these addresses (400); the fast path
        # answered them while the view was fresh, so the answer depended on the cache.
        (f"/v1/accounts/{LOWER}\n", b""),
        (f"/v1/accounts/{LOWER}/subaccounts/0\n", b""),
        ("/v1/markets/BTC-PERP/adl\n", b""),
        ("/v1/liquidations", b"limit=20\n"),
    ],
)
def test_anything_else_goes_the_usual_way(path: str, query: bytes) -> None:
    assert view_key(path, query) is None
