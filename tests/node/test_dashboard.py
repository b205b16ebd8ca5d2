"""The dashboard's routes on a real node: the page, its assets (types, caching, nothing else
reachable) and the two reads the page adds (block headers; a dev node's active accounts)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.node.conftest import NodeProcess, fresh_index

from clearhouse.client import Client, Wallet
from clearhouse.node import dashboard

BTC = 100_000_000


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(tmp_path_factory.mktemp("dashboard") / "node").start()
    yield process
    process.kill()


def test_the_page_is_served_at_the_root_and_revalidated(dev_node: NodeProcess) -> None:
    answer = httpx.get(dev_node.url + "/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["cache-control"] == "no-cache"
    assert "<title>Clearhouse</title>" in answer.text
    again = httpx.get(dev_node.url + "/", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_every_asset_the_page_names_resolves_with_its_type(dev_node: NodeProcess) -> None:
    page = httpx.get(dev_node.url + "/").text
    named = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page)
    assert {url.split("?")[0].rsplit("/", 1)[1] for url in named} == set(dashboard.ASSET_TYPES)
    for url in named:
        answer = httpx.get(dev_node.url + url)
        name = url.split("?")[0].rsplit("/", 1)[1]
        assert answer.status_code == 200, url
        assert answer.headers["content-type"] == dashboard.ASSET_TYPES[name]
        assert "immutable" in answer.headers["cache-control"]
        assert url.endswith("?v=" + answer.headers["etag"].strip('"'))  # the URL names the content
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_no_other_file_is_reachable(dev_node: NodeProcess) -> None:
    for path in ("/dashboard/index.html", "/dashboard/..%2Fdashboard.py", "/dashboard/nope.js",
                 "/dashboard/%2e%2e%2fapi.py"):  # fmt: skip
        answer = httpx.get(dev_node.url + path)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "NOT_FOUND"


def test_every_shipped_file_is_served() -> None:
    """A file added to the folder but not to ASSET_TYPES would be shipped and never served."""
    shipped = {p.name for p in Path(dashboard.ASSETS_DIR).iterdir()} - {"index.html"}
    assert shipped == set(dashboard.ASSET_TYPES)


def test_blocks_lists_the_latest_headers_with_state_roots(dev_node: NodeProcess) -> None:
    headers = httpx.get(dev_node.url + "/dashboard/api/blocks", params={"limit": 3}).json()
    assert 1 <= len(headers) <= 3
    heights = [h["height"] for h in headers]
    assert heights == sorted(heights, reverse=True)
    latest = httpx.get(dev_node.url + "/v1/blocks/latest").json()
    assert heights[0] <= latest["height"]
    assert all(re.fullmatch(r"0x[0-9a-f]{64}", h["state_root"]) for h in headers)
    too_many = httpx.get(dev_node.url + "/dashboard/api/blocks", params={"limit": 101})
    assert too_many.status_code == 400


def test_dev_accounts_lists_who_holds_orders(dev_node: NodeProcess) -> None:
    trader = Client(dev_node.url, Wallet.create())
    try:
        trader.faucet(100_000)
        listed = httpx.get(dev_node.url + "/dashboard/api/dev-accounts").json()
        assert trader.account.lower() not in [a["address"] for a in listed]  # funds only
        index = fresh_index(dev_node.url)
        price = index // 2 // 100_000 * 100_000  # far below: it rests
        trader.place_order("BTC-PERP", "buy", size_base_quantums=BTC // 100, price_quantums=price)
        listed = httpx.get(dev_node.url + "/dashboard/api/dev-accounts").json()
        mine = [a for a in listed if a["address"] == trader.account.lower()]
        assert mine == [{"address": trader.account.lower(), "positions": 0, "open_orders": 1}]
    finally:
        trader.close()


def test_dev_accounts_is_not_served_by_a_production_node(tmp_path: Path) -> None:
    roles = ["--operator", "0x" + "1" * 40, "--relayer", "0x" + "2" * 40]
    for n in (3, 4, 5):
        roles += ["--publisher", "0x" + str(n) * 40]
    roles += ["--chain-id", "8453", "--verifying-contract", "0x" + "6" * 40]
    process = NodeProcess(tmp_path / "node", dev=False, extra=tuple(roles)).start()
    try:
        answer = httpx.get(process.url + "/dashboard/api/dev-accounts")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "NOT_FOUND"
        assert httpx.get(process.url + "/").status_code == 200  # the page itself is served
    finally:
        process.kill()


def test_the_demo_says_how_to_open_the_dashboard(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "demo", "--out", str(tmp_path), "--hours", "0.01"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "clearhouse serve --dev" in done.stdout
    assert "clearhouse maker BTC-PERP" in done.stdout
    assert "http://127.0.0.1:8400/" in done.stdout
