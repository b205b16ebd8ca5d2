"""The SDK refuses what it cannot mean: an order side other than buy or sell."""

from __future__ import annotations

import pytest

from clearhouse.client import Client
from clearhouse.client.http import order_side
from clearhouse.client.wallet import Wallet
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import Side


def test_buy_and_sell_in_any_case_or_as_a_side() -> None:
    assert order_side("buy") is order_side("BUY") is order_side(Side.BUY) is Side.BUY
    assert order_side("sell") is order_side("Sell") is order_side(Side.SELL) is Side.SELL


@pytest.mark.parametrize("side", ["long", "short", "", "b", "bid", "ask", " buy"])
def test_any_other_side_is_refused_not_read_as_a_sell(side: str) -> None:
    with pytest.raises(InvalidArgument, match="side must be 'buy' or 'sell'"):
        order_side(side)


def test_the_client_refuses_an_order_on_an_unknown_side_before_signing_it() -> None:
    wallet = Wallet.from_hex("11" * 32)
    with Client("http://127.0.0.1:1", wallet) as client:
        with pytest.raises(InvalidArgument):
            client.order("BTC-PERP", "long", size_base_quantums=1, price_quantums=1)
        assert client.order("BTC-PERP", "buy", size_base_quantums=1).side is Side.BUY
