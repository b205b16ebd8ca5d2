"""The synchronous client against a real dev node: it refuses what it cannot mean (a side, a
price off the grid) before signing, places orders in exact Decimal units, resubmits the same
signed bytes without applying them twice, and honours the node's Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from tests.node.conftest import NodeProcess, fresh_index

from clearhouse.client import ApiRejection, Client, RetryPolicy, Wallet, checksummed
from clearhouse.client.http import order_side
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import Side


@pytest.fixture
def client(node_url: str) -> Iterator[Client]:
    with Client(node_url, Wallet.create()) as made:
        made.faucet(100_000)
        yield made


def below_index(client: Client, percent: int = 5) -> Decimal:
    """A bid price on the tick, ``percent`` below the index (it rests, never fills)."""
    grid = client.units().market("BTC-PERP")
    index = client.market("BTC-PERP")["index_price_quantums"] * (100 - percent) // 100
    return grid.price(index - index % grid.tick_quantums)


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


def test_an_order_in_decimal_units_rests_at_exactly_that_price_and_size(client: Client) -> None:
    price = below_index(client)
    answer = client.place_order_decimal("BTC-PERP", "buy", size=Decimal("0.01"), price=price,
                                        client_order_id=7)  # fmt: skip
    assert answer["status"] == "accepted"
    [resting] = client.open_orders()
    grid = client.units().market("BTC-PERP")
    assert resting["price_quantums"] == int(price * 10**6)
    assert grid.price(resting["price_quantums"]) == price
    assert grid.size(resting["remaining_base_quantums"]) == Decimal("0.01")
    assert client.units().amount("USDC", client.subaccount()["balances"]["USDC"]) == 100_000


def test_a_price_off_the_tick_is_refused_before_anything_is_signed(client: Client) -> None:
    nonces = client.nonces()
    off_tick = below_index(client) + Decimal("0.05")
    with pytest.raises(InvalidArgument, match="off its grid"):
        client.place_order_decimal("BTC-PERP", "buy", size="0.01", price=off_tick)
    with pytest.raises(InvalidArgument, match="finer than one quantum"):
        client.place_order_decimal("BTC-PERP", "buy", size="0.000000001", price="1000")
    assert client.open_orders() == []
    assert client.nonces() == nonces  # nothing reached the node


def test_the_same_signed_bytes_sent_again_get_the_first_answer_not_a_second_order(
    client: Client,
) -> None:
    order = client.order("BTC-PERP", "buy", size_base_quantums=1_000_000,
                         price_quantums=int(below_index(client) * 10**6))  # fmt: skip
    first = client.submit(order)
    again = client.submit(order)
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["height"] == first["height"] and again["order_id"] == first["order_id"]
    assert len(client.open_orders()) == 1


def test_checksummed_addresses_are_accepted_everywhere(node_url: str, client: Client) -> None:
    agent = Wallet.create()
    client.authorize_agent(checksummed(agent.address), valid_for_ns=60 * 10**9)
    assert client.account is not None
    spelled = checksummed(client.account)
    assert spelled != client.account
    with Client(node_url, agent=agent, account=spelled) as trader:
        trader.place_order_decimal("BTC-PERP", "buy", size="0.01", price=below_index(trader))
        assert len(trader.open_orders(address=spelled)) == 1
    assert client.subaccount(0, address=spelled)["subaccount"] == f"{client.account}/0"


def test_a_lost_connection_resends_the_same_bytes(node_url: str) -> None:
    """The node applies the first attempt to cancel, but its answer is lost on the way back;
    the retry carries the same bytes, and the node answers with the first answer."""
    sent: list[bytes] = []
    with httpx.HTTPTransport() as real:

        def flaky(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v1/commands" and b"CancelAll" in request.read():
                sent.append(request.read())
                if len(sent) == 1:
                    real.handle_request(request).close()  # applied, then the answer is lost
                    raise httpx.ReadError("connection reset", request=request)
            return real.handle_request(request)

        retry = RetryPolicy(base_seconds=0.01)
        transport = httpx.MockTransport(flaky)
        with Client(node_url, Wallet.create(), retry=retry, transport=transport) as client:
            client.faucet(10_000)
            client.place_order_decimal("BTC-PERP", "buy", size="0.01", price=below_index(client))
            answer = client.cancel_all("BTC-PERP")
    assert len(sent) == 2 and sent[0] == sent[1]
    assert answer["status"] == "accepted" and answer["duplicate"] is True
    assert [e["type"] for e in answer["events"]] == ["OrderCancelled"]


@pytest.fixture
def strict_node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A node allowing one command per second per account (two at once)."""
    process = NodeProcess(tmp_path / "strict", extra=("--account-rate", "1")).start()
    fresh_index(process.url)
    yield process
    process.stop()


def test_a_rate_limited_command_waits_as_the_node_asks_then_goes_through(
    strict_node: NodeProcess,
) -> None:
    wallet = Wallet.create()
    with Client(strict_node.url, wallet, retry=RetryPolicy(attempts=1)) as impatient:
        impatient.faucet(10_000)
        with pytest.raises(ApiRejection) as refused:
            [impatient.cancel_all() for _ in range(4)]  # beyond the burst of two
        assert (refused.value.status, refused.value.code) == (429, "RATE_LIMITED")
    with Client(strict_node.url, wallet) as patient:
        started = time.monotonic()
        answers = [patient.cancel_all() for _ in range(3)]
        waited = time.monotonic() - started
    assert [a["status"] for a in answers] == ["accepted"] * 3
    assert waited >= 1.0  # Retry-After: 1 was honoured, not a quick jittered retry


def test_the_venue_units_are_read_once_from_the_node_and_again_on_request(client: Client) -> None:
    units = client.units()
    assert client.units() is units
    again = client.units(refresh=True)
    assert again is not units and again == units
    assert units.assets == {"USDC": 10**6, "BTC": 10**8, "ETH": 10**9}  # the dev venue's listings
    assert set(units.markets) == {m["market_id"] for m in client.markets()}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"price_quantums": 61234.5}, "price_quantums: expected an integer"),  # USDC, not quantums
        ({"price_quantums": True}, "price_quantums: expected an integer"),
        ({"size_base_quantums": 2**200}, "size_base_quantums: at most"),
    ],
)
def test_what_the_node_would_refuse_as_malformed_is_refused_before_signing(
    client: Client, fields: dict[str, object], message: str
) -> None:
    nonces = client.nonces()
    order: dict[str, object] = {"size_base_quantums": 1_000_000, "price_quantums": 10**10}
    with pytest.raises(InvalidArgument, match=message):
        client.place_order("BTC-PERP", "buy", **{**order, **fields})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=message):
        client.submit_batch([client.order("BTC-PERP", "buy", **{**order, **fields})])
    assert client.nonces() == nonces  # nothing reached the node
