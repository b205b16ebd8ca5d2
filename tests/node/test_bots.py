"""The reference bots against a node served in this process (so the test can move the dev
feed's price): the maker keeps a ladder that takers fill; the keeper liquidates an account the
price move made liquidatable and is paid for it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from tests.node.conftest import free_port

from clearhouse.client import Client, Wallet
from clearhouse.client.bots import KeeperBot, MarketMaker
from clearhouse.core.ids import OracleId
from clearhouse.node.server import Node, NodeConfig, open_node

USDC = 1_000_000
BTC = 100_000_000


@dataclass
class ServedNode:
    node: Node
    server: uvicorn.Server
    thread: threading.Thread
    url: str


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedNode]:
    port = free_port()
    config = NodeConfig(data_dir=tmp_path / "node", dev=True, port=port, ip_rate=0,
                        account_rate=0)  # fmt: skip
    node = open_node(config)
    server = uvicorn.Server(uvicorn.Config(node.app, host="127.0.0.1", port=port,
                                           log_config=None, lifespan="on"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "in-process node did not start"
        time.sleep(0.02)
    yield ServedNode(node, server, thread, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(30)
    node.journal.close()


def _wait_fresh(client: Client, market_id: str = "BTC-PERP") -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        market = client.market(market_id)
        if market["oracle_status"] == "fresh":
            return market
        time.sleep(0.1)
    raise AssertionError("the dev feed never made the index fresh")


def test_maker_quotes_a_ladder_that_takers_fill(served: ServedNode, clients: list[Client]) -> None:
    maker_client = Client(served.url, Wallet.create())
    clients.append(maker_client)
    maker_client.faucet(1_000_000)
    _wait_fresh(maker_client)
    maker = MarketMaker(maker_client, "BTC-PERP", size_base_quantums=BTC // 100, levels=3)
    results = maker.step()
    assert [r["status"] for r in results] == ["accepted"] * 6
    book = maker_client.book("BTC-PERP")
    assert len(book["bids"]) == 3 and len(book["asks"]) == 3
    assert book["bids"][0][0] < book["asks"][0][0]
    taker = Client(served.url, Wallet.create())
    clients.append(taker)
    taker.faucet(100_000)
    best_ask = book["asks"][0][0]
    fill = taker.place_order("BTC-PERP", "buy", size_base_quantums=BTC // 100,
                             price_quantums=best_ask)  # fmt: skip
    fills = [e for e in fill["events"] if e["type"] == "OrderFilled"]
    assert [(f["price_quantums"], f["size_base_quantums"]) for f in fills] == [
        (best_ask, BTC // 100)
    ]
    maker.step()  # requotes: cancels what is left and posts a full ladder again
    again = maker_client.open_orders()
    assert len(again) == 6
    assert maker_client.subaccount()["positions"][0]["size"] == -(BTC // 100)


def test_keeper_liquidates_an_account_the_price_move_made_liquidatable(
    served: ServedNode, clients: list[Client]
) -> None:
    liquidity = Client(served.url, Wallet.create())
    liquidity.faucet(5_000_000)
    victim = Client(served.url, Wallet.create())
    victim.faucet(1_200)
    keeper_client = Client(served.url, Wallet.create())
    keeper_client.faucet(10_000)
    clients += [liquidity, victim, keeper_client]
    market = _wait_fresh(victim)
    index = int(market["index_price_quantums"])  # type: ignore[call-overload]
    price = index // (USDC // 10) * (USDC // 10)
    size = 80 * BTC // 100  # 0.8 BTC ≈ 48k notional on 1.2k: about 40x
    liquidity.place_order("BTC-PERP", "sell", size_base_quantums=size, price_quantums=price)
    opened = victim.place_order("BTC-PERP", "buy", size_base_quantums=size, price_quantums=price)
    assert any(e["type"] == "OrderFilled" for e in opened["events"])
    # Bids below, so that liquidation closes on the book.
    for step in range(1, 6):
        liquidity.place_order("BTC-PERP", "buy", size_base_quantums=size,
                              price_quantums=price * (100 - step) // 100 // (USDC // 10)
                              * (USDC // 10))  # fmt: skip
    keeper = KeeperBot(keeper_client)
    feed = served.node.sequencer.dev_feed
    assert feed is not None
    deadline = time.monotonic() + 20
    while keeper.liquidated == 0 and time.monotonic() < deadline:
        feed.prices[OracleId("BTC-USD")] *= 0.999  # a slide: liquidatable well before bankrupt
        keeper.step()
        time.sleep(0.2)
    assert keeper.liquidated >= 1, keeper_client.liquidations()
    recent = keeper_client.liquidations()["recent"]
    mine = [r for r in recent if r.get("keeper") == f"{keeper_client.account}/0"]
    assert mine, recent
    assert all(r["subaccount"] == f"{victim.account}/0" for r in mine)
    paid = keeper_client.subaccount()["balances"]["USDC"]
    assert paid > 10_000 * USDC  # the keeper's share of the liquidation fee


def test_the_maker_refuses_a_market_the_node_does_not_have_at_the_start(
    served: ServedNode,
) -> None:
    """It logged "step refused: NOT_FOUND … market BTC-PRP not found" every interval, for ever."""
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "maker", "BTC-PRP", "--size", "1000",
         "--faucet", "1000", "--url", served.url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 14, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error [NOT_FOUND] ") and "BTC-PRP" in done.stderr
