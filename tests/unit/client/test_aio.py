"""The async client has the sync client's surface, against the same real dev node."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx
import pytest

from clearhouse.client import ApiRejection, AsyncClient, Client, RetryPolicy, Wallet
from clearhouse.client.surface import Surface
from clearhouse.core.errors import InvalidArgument


def test_every_public_method_of_the_sync_client_is_on_the_async_one() -> None:
    public = {name for name in dir(Client) if not name.startswith("_")}
    missing = public - {name for name in dir(AsyncClient) if not name.startswith("_")}
    assert missing == {"close", "domain"}  # aclose, and signing_domain(): awaited
    assert issubclass(AsyncClient, Surface) and issubclass(Client, Surface)


async def trade(url: str) -> tuple[dict[str, object], list[dict[str, object]], Decimal]:
    async with AsyncClient(url, Wallet.create()) as client:
        await client.faucet(50_000)
        units = await client.units()
        grid = units.market("BTC-PERP")
        index = (await client.market("BTC-PERP"))["index_price_quantums"] * 95 // 100
        price = grid.price(index - index % grid.tick_quantums)
        placed = await client.place_order_decimal("BTC-PERP", "buy", size="0.02", price=price)
        orders = await client.open_orders()
        batch = await client.submit_batch([client.order(
            "BTC-PERP", "sell", size_base_quantums=10**6, price_quantums=10**6, reduce_only=True,
        )])  # fmt: skip
        assert batch[0]["http_status"] == 422, batch  # reduce-only with nothing to reduce
        with pytest.raises(ApiRejection) as refused:
            await client.withdraw_decimal("1000000")
        assert refused.value.code == "INSUFFICIENT_FUNDS", refused.value
        with pytest.raises(InvalidArgument, match="off its grid"):
            await client.place_order_decimal("BTC-PERP", "buy", size="0.02", price="60000.01")
        await client.cancel_all("BTC-PERP")
        assert await client.open_orders() == []
        return placed, orders, price


def test_an_async_client_trades_on_a_real_node(node_url: str) -> None:
    placed, orders, price = asyncio.run(trade(node_url))
    assert placed["status"] == "accepted"
    assert [(o["price_quantums"], o["remaining_base_quantums"]) for o in orders] == [
        (int(price * 10**6), 2_000_000)
    ]


def test_the_async_client_retries_a_busy_node_and_honours_retry_after() -> None:
    answers = iter([
        httpx.Response(503, json={"error": {"code": "NODE_BUSY"}}),
        httpx.Response(429, json={"error": {"code": "RATE_LIMITED"}}, headers={"Retry-After": "1"}),
        httpx.Response(200, json={"chain_id": 1}),
    ])  # fmt: skip
    seen: list[float] = []

    def node(_: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return next(answers)

    async def ask() -> dict[str, object]:
        retry = RetryPolicy(base_seconds=0.01)
        async with AsyncClient("http://node", transport=httpx.MockTransport(node),
                               retry=retry) as client:  # fmt: skip
            return await client.info()

    assert asyncio.run(ask()) == {"chain_id": 1}
    assert len(seen) == 3
    assert seen[1] - seen[0] < 0.5 and seen[2] - seen[1] >= 1.0
