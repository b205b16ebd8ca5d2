"""Leaves written out by hand give the bytes of the canonical encoding of their dict."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import Venue

from clearhouse.core.state import MarketState, MarketStatus, encode_leaf

VENUE = Venue(traders=["a"])
INTEGER_FIELDS = [
    f.name
    for f in dataclasses.fields(MarketState)
    if f.type == "int" and f.name in MarketState.__dataclass_fields__
]


def test_a_live_market_leaf_is_the_canonical_encoding() -> None:
    for market in VENUE.state.markets.values():
        assert market.leaf() == encode_leaf(market.encode())


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.integers(min_value=-(2**80), max_value=2**80),
        min_size=len(INTEGER_FIELDS),
        max_size=len(INTEGER_FIELDS),
    ),
    status=st.sampled_from(list(MarketStatus)),
)
def test_market_leaf_is_the_canonical_encoding(values: list[int], status: MarketStatus) -> None:
    market = dataclasses.replace(next(iter(VENUE.state.markets.values())))
    for name, value in zip(INTEGER_FIELDS, values, strict=True):
        setattr(market, name, value)
    market.status = status
    assert market.leaf() == encode_leaf(market.encode())
