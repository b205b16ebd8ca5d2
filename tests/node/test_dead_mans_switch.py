"""The dead-man's switch through a node (cancel-on-disconnect a venue can offer without
cancelling for anyone): a client that keeps pushing its deadline keeps its quotes; once it
stops, the node's blocks cancel them all at the deadline, with their cause."""

from __future__ import annotations

import time

import pytest
from tests.node.conftest import NodeProcess, fresh_index

from clearhouse.client import ApiRejection, Client, Wallet

MARKET = "BTC-PERP"
SIZE = 1_000_000  # 0.01 BTC
TICK = 100_000


def test_quotes_outlive_a_refreshed_switch_and_go_when_it_lapses(node: NodeProcess) -> None:
    with Client(node.url, Wallet.create()) as client:
        client.faucet(100_000)
        index = fresh_index(node.url)
        bid = (index * 97 // 100) // TICK * TICK
        placed = [
            client.place_order(
                MARKET, "buy", size_base_quantums=SIZE, price_quantums=bid - i * TICK
            )
            for i in range(2)
        ]
        set_at = client.schedule_cancel(6)
        assert [e["type"] for e in set_at["events"]] == ["CancelScheduled"]
        for _ in range(3):  # alive: the deadline moves out each time
            time.sleep(2)
            client.schedule_cancel(6)
        assert len(client.open_orders()) == 2
        deadline = time.monotonic() + 20  # quiet now: 6 s, then a block
        while client.open_orders() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert client.open_orders() == []
        for order in placed:
            status = client.order_status(order["order_id"])
            assert (status["status"], status["cancel_cause"]) == ("cancelled", "scheduled"), status
        with pytest.raises(ApiRejection) as too_soon:  # under 5 s: a cancel-all, not a switch
            client.schedule_cancel(1)
        assert (too_soon.value.status, too_soon.value.code) == (422, "SCHEDULE_OUT_OF_RANGE")
