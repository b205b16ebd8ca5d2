"""Batches: each command answered in its slot, with signatures recovered on the node's process
pool; a bad signature or a malformed command refuses that slot only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.node.conftest import NodeProcess

from clearhouse.client import Client, Wallet


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data = Path(tmp_path_factory.mktemp("pooled")) / "node"
    node = NodeProcess(data, extra=("--verify-workers", "2")).start()
    yield node
    assert node.stop() == 0  # the pool shuts down with the node


def test_a_batch_answers_each_slot_on_its_own(pooled: NodeProcess) -> None:
    with Client(pooled.url, Wallet.create()) as client:
        client.faucet(100_000)
        deadline = time.monotonic() + 10
        while client.market("BTC-PERP")["oracle_status"] != "fresh":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        index = client.market("BTC-PERP")["index_price_quantums"]
        bids = [
            client.signed(client.order("BTC-PERP", "buy", size_base_quantums=100_000,
                                       price_quantums=(index * 97 // 100 // 100_000 - n) * 100_000))
            for n in range(6)
        ]  # fmt: skip
        forged = dict(bids[1], signature=bids[1]["signature"][:-4] + "1b1b")
        malformed = {"command": {"type": "PlaceOrder", "body": {"side": 2}},
                     "signature": bids[2]["signature"]}  # fmt: skip
        body = {"commands": [bids[0], forged, malformed, *bids[3:]]}
        answer = httpx.post(pooled.url + "/v1/commands/batch", json=body, timeout=30).json()
        statuses = [r["http_status"] for r in answer["results"]]
        assert statuses[0] == 200 and statuses[3:] == [200, 200, 200]
        assert statuses[1] in (401, 403)  # no key, or another key than the account's
        assert statuses[2] == 400
        assert answer["results"][2]["error"]["code"] == "MALFORMED_COMMAND"
        open_orders = client.open_orders()
        assert len(open_orders) == 4
