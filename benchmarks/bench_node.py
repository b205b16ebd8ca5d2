"""The node over HTTP on loopback: signed orders from a separate process.

Usage: python benchmarks/bench_node.py [--orders 40000] [--batch 500] [--connections 4]
                                       [--rate 5000] [--seconds 10] [--store URL]

Starts ``clearhouse serve --dev`` (rate limits off) in its own process on a SQLite journal in a
temporary directory (or --store, e.g. a PostgreSQL URL), funds --wallets accounts through the
dev faucet, and signs every order beforehand (signing is the client's cost, not the node's).
Orders are post-only bids and asks around the index, half of them crossing an earlier order's
price with a limit order so that about half of them fill: margin check, matching and ledger.

1. Throughput: --connections concurrent clients each send batches of --batch signed orders
   (POST /v1/commands/batch) back to back; sustained orders/s = acknowledged orders / wall
   time. Every answer is durable: the node acknowledges after its block's commit.
2. Latency: an open-loop sender at --rate orders/s in batches every 10 ms for --seconds;
   p50/p99 of each order's acknowledgement latency (its batch's round trip).
3. Latency, one order per request: --single-rate requests/s for --seconds.

Client and node share this machine's cores: the numbers are the pair's, not the node's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from clearhouse.client import Client, Wallet
from clearhouse.core.messages import TimeInForce

TICK = 100_000  # BTC-PERP: 0.1 USDC
SIZE = 100_000  # 0.001 BTC


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--single-rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--wallets", type=int, default=200)
    parser.add_argument("--store", default=None)
    parser.add_argument("--url", default=None, help="a running dev node (started with rate "
                        "limits off) instead of starting one")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = _free_port()
        node = None if args.url else _start(Path(data), port, args.store)
        try:
            url = args.url or f"http://127.0.0.1:{port}"
            clients = _fund(url, args.wallets)
            total = (
                args.orders + int(args.rate * args.seconds) + int(args.single_rate * args.seconds)
            )
            print(f"signing {total} orders ...", flush=True)
            signed = _sign(clients, total)
            throughput = signed[: args.orders]
            paced = signed[args.orders : args.orders + int(args.rate * args.seconds)]
            single = signed[args.orders + len(paced) :]
            if throughput:
                asyncio.run(_throughput(url, throughput, args.batch, args.connections))
            if paced:
                asyncio.run(_paced(url, paced, args.rate, args.seconds))
            if single:
                asyncio.run(_single(url, single, args.single_rate, args.seconds))
        finally:
            if node is not None:
                node.send_signal(signal.SIGTERM)
                node.wait(60)
    return 0


def _start(data: Path, port: int, store: str | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "clearhouse", "serve", "--dev", "--port", str(port),
               "--data", str(data), "--ip-rate", "0", "--account-rate", "0"]  # fmt: skip
    if store:
        command += ["--store", store]
    node = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return node
        except httpx.TransportError:
            time.sleep(0.1)
    node.kill()
    raise SystemExit("the node did not start")


def _fund(url: str, wallets: int) -> list[Client]:
    clients = [Client(url, Wallet(os.urandom(32))) for _ in range(wallets)]
    for client in clients:
        client.faucet(1_000_000)
    deadline = time.monotonic() + 10
    while clients[0].market("BTC-PERP")["oracle_status"] != "fresh":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return clients


def _sign(clients: list[Client], count: int) -> list[dict[str, Any]]:
    """Orders spread over accounts (each holds at most ~100 open): even ones rest as post-only
    quotes, odd ones cross the previous order's price and fill it."""
    index = clients[0].market("BTC-PERP")["index_price_quantums"]
    mid = index // TICK * TICK
    signed = []
    for n in range(count):
        client = clients[n % len(clients)]
        offset = (1 + n // 2 % 200) * TICK
        if n % 2 == 0:
            side, price, tif = ("buy", mid - offset, TimeInForce.POST_ONLY) if n % 4 == 0 else (
                "sell", mid + offset, TimeInForce.POST_ONLY)  # fmt: skip
        else:  # cross the order just before (posted by another account)
            side, price, tif = ("sell", mid - offset, TimeInForce.IOC) if n % 4 == 1 else (
                "buy", mid + offset, TimeInForce.IOC)  # fmt: skip
        order = client.order("BTC-PERP", side, size_base_quantums=SIZE, price_quantums=price,
                             time_in_force=tif)  # fmt: skip
        signed.append(client.signed(order))
    return signed


async def _throughput(url: str, orders: list[dict[str, Any]], batch: int, connections: int) -> None:
    chunks = [orders[i : i + batch] for i in range(0, len(orders), batch)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(mine: list[list[dict[str, Any]]]) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            for chunk in mine:
                started = time.perf_counter()
                response = await http.post("/v1/commands/batch", json={"commands": chunk})
                latencies.append(time.perf_counter() - started)
                for result in response.json()["results"]:
                    statuses[result["http_status"]] = statuses.get(result["http_status"], 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(chunks[i::connections]) for i in range(connections)))
    elapsed = time.perf_counter() - started
    print(f"throughput: {len(orders)} signed orders in {elapsed:.2f} s = "
          f"{len(orders) / elapsed:,.0f} orders/s ({connections} connections, batches of "
          f"{batch}); batch round trip p50 {_ms(latencies, 50)} p99 {_ms(latencies, 99)}; "
          f"answers {dict(sorted(statuses.items()))}")  # fmt: skip


async def _paced(url: str, orders: list[dict[str, Any]], rate: int, seconds: float) -> None:
    """Open loop: a batch every 10 ms whatever the answers; latency per order."""
    per_tick = max(1, rate // 100)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=64)) as http:  # fmt: skip

        async def send(chunk: list[dict[str, Any]]) -> None:
            started = time.perf_counter()
            response = await http.post("/v1/commands/batch", json={"commands": chunk})
            response.raise_for_status()
            latencies.extend([time.perf_counter() - started] * len(chunk))

        tasks = []
        start = time.perf_counter()
        for tick, i in enumerate(range(0, len(orders), per_tick)):
            await asyncio.sleep(max(0.0, start + tick * 0.01 - time.perf_counter()))
            tasks.append(asyncio.create_task(send(orders[i : i + per_tick])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    print(f"paced: {len(orders)} orders at {rate}/s offered ({len(orders) / elapsed:,.0f}/s "
          f"achieved) in batches of {per_tick} every 10 ms: ack latency p50 "
          f"{_ms(latencies, 50)} p99 {_ms(latencies, 99)}")  # fmt: skip


async def _single(url: str, orders: list[dict[str, Any]], rate: int, seconds: float) -> None:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=64)) as http:  # fmt: skip

        async def send(order: dict[str, Any]) -> None:
            started = time.perf_counter()
            response = await http.post("/v1/commands", json=order)
            assert response.status_code in (200, 409, 422), response.text
            latencies.append(time.perf_counter() - started)

        tasks = []
        start = time.perf_counter()
        for n, order in enumerate(orders):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(order)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    print(f"single: {len(orders)} one-order requests at {rate}/s offered "
          f"({len(orders) / elapsed:,.0f}/s achieved): ack latency p50 {_ms(latencies, 50)} "
          f"p99 {_ms(latencies, 99)}")  # fmt: skip


def _ms(values: list[float], percentile: int) -> str:
    if not values:
        return "-"
    cut = statistics.quantiles(values, n=100, method="inclusive")[percentile - 1]
    return f"{cut * 1000:.1f} ms"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


if __name__ == "__main__":
    raise SystemExit(main())
