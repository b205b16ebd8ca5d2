"""Readers against the writer: order acknowledgement latency with and without heavy readers.

Usage: python benchmarks/bench_readers.py [--subaccounts 128] [--rate 50] [--seconds 15]
                                          [--readers 8] [--repeat 3] [--json PATH]

Starts ``clearhouse serve --dev`` (rate limits off, so that only the read path is measured) in
its own process, then builds the heaviest account the dev venue allows: every one of its
--subaccounts subaccounts holds a position in every market (128 × 3 = 384 positions, every one
of them in its market's ADL queue), and rests orders besides.

Then, --repeat times, alternated:

* idle: one signed order per request at --rate orders/s, open loop, for --seconds; the p50 and
  p99 of each order's acknowledgement (its request's round trip; the node answers after the
  block's commit);
* loaded: the same, while a separate process runs --readers concurrent readers in a closed
  loop: three quarters read the heavy account, its subaccounts, the ADL queues and the
  liquidations over HTTP; the rest subscribe to the account's WebSocket channel and
  unsubscribe again, each subscription a fresh snapshot of the whole account.

The result is p99_loaded / p99_idle (medians over the repeats). With ``--placement shared``
(the default) client, readers and node share this machine's two cores: a reader process busy
on one core and the node on the other leave the measuring client waiting for the scheduler,
and its waits are in the numbers. ``--placement pinned`` gives the node core 0 of its own, as a
server would have, and puts the measuring client and the readers on core 1, the readers at
nice 19: they stand for clients on other machines, and take all the time the measuring client
leaves them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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
import websockets

from clearhouse.client import Client, Wallet
from clearhouse.core.messages import TimeInForce

MARKETS = {  # market: (tick, size) of the positions built
    "BTC-PERP": (100_000, 100_000),
    "ETH-PERP": (10_000, 10_000_000),
    "BTC-FUT-720H": (100_000, 100_000),
}
ORDERS_PER_TRADER = 200  # resting orders one trader's subaccount holds (the limit is 256)


READERS_ADDRESS = "127.0.0.2"  # loopback, but another address than the trader's


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subaccounts", type=int, default=128)
    parser.add_argument("--rate", type=int, default=50, help="orders per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the results here too")
    parser.add_argument("--url", default=None, help="a running dev node (rate limits off)")
    parser.add_argument("--placement", choices=("shared", "pinned"), default="shared")
    parser.add_argument(
        "--limits",
        choices=("off", "default"),
        default="off",
        help="the node's per-IP limits: off, or as a venue runs by default",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = _free_port()
        pinned = args.placement == "pinned"
        if pinned:
            os.sched_setaffinity(0, {1})  # the measuring client (and the readers it spawns)
        limited = args.limits == "default"
        node = None if args.url else _start(Path(data), port, pinned=pinned, limited=limited)
        try:
            result = _run(args.url or f"http://127.0.0.1:{port}", args)
        finally:
            if node is not None:
                node.send_signal(signal.SIGTERM)
                node.wait(60)
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    heavy = _heavy_account(url, args.subaccounts)
    per_phase = int(args.rate * args.seconds)
    per_phase_traders = -(-per_phase // ORDERS_PER_TRADER)
    traders = _traders(url, 2 * args.repeat * per_phase_traders)
    idle: list[dict[str, Any]] = []
    loaded: list[dict[str, Any]] = []
    for repeat in range(args.repeat):  # signed just before: a command expires (COMMAND_TTL_NS)
        phase = traders[2 * repeat * per_phase_traders :]
        idle.append(asyncio.run(_paced(url, _sign_resting(phase, per_phase), args.rate)))
        print(f"idle   {repeat}: {_line(idle[-1])}", flush=True)
        phase = traders[(2 * repeat + 1) * per_phase_traders :]
        orders = _sign_resting(phase, per_phase)
        nice = 19 if args.placement == "pinned" else 0
        loaded.append(_with_readers(url, heavy, args.readers, orders, args.rate, nice))
        print(f"loaded {repeat}: {_line(loaded[-1])}", flush=True)
    p99_idle = statistics.median(r["p99_ms"] for r in idle)
    p99_loaded = statistics.median(r["p99_ms"] for r in loaded)
    # Every acknowledgement of the phases of one kind together: on a machine other jobs share,
    # a burst of theirs in one phase moves that phase's p99 a lot and the pooled one less.
    pooled_idle = _ms([x for r in idle for x in r.pop("latencies")], 99)
    pooled_loaded = _ms([x for r in loaded for x in r.pop("latencies")], 99)
    return {
        "bench": "readers", "placement": args.placement, "limits": args.limits,
        "rate": args.rate,
        "seconds": args.seconds,
        "readers": args.readers, "positions": args.subaccounts * len(MARKETS),
        "p50_idle_ms": statistics.median(r["p50_ms"] for r in idle), "p99_idle_ms": p99_idle,
        "p50_loaded_ms": statistics.median(r["p50_ms"] for r in loaded),
        "p99_loaded_ms": p99_loaded, "ratio_p99": round(p99_loaded / p99_idle, 2),
        "reads_per_s": statistics.median(r["reads_per_s"] for r in loaded),
        "p99_idle_pooled_ms": pooled_idle, "p99_loaded_pooled_ms": pooled_loaded,
        "ratio_p99_pooled": round(pooled_loaded / pooled_idle, 2),
        "idle": idle, "loaded": loaded,
    }  # fmt: skip


def _line(run: dict[str, Any]) -> str:
    reads = f", {run['reads_per_s']:.0f} reads/s" if "reads_per_s" in run else ""
    return f"ack p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms{reads}"


# ── The heavy account ──────────────────────────────────────────────────────────────────────


def _heavy_account(url: str, subaccounts: int) -> str:
    """An account whose every subaccount holds a long in every market: its maker orders are
    crossed by a counterparty's IOC orders."""
    heavy = Client(url, Wallet(os.urandom(32)), timeout=60)
    other = Client(url, Wallet(os.urandom(32)), timeout=60)
    for number in range(subaccounts):
        heavy.faucet(1_000_000, subaccount_number=number)
    other.faucet(10_000_000)
    _wait_fresh(heavy)
    print(f"building {subaccounts * len(MARKETS)} positions ...", flush=True)
    for market_id, (tick, size) in MARKETS.items():
        mid = heavy.market(market_id)["index_price_quantums"] // tick * tick
        price = mid - 5 * tick
        for start in range(0, subaccounts, 100):
            numbers = range(start, min(subaccounts, start + 100))
            makers = [heavy.order(market_id, "buy", size_base_quantums=size, price_quantums=price,
                                  subaccount_number=n, time_in_force=TimeInForce.POST_ONLY)
                      for n in numbers]  # fmt: skip
            _all_accepted(heavy.submit_batch(makers))
            taker = other.order(market_id, "sell", size_base_quantums=size * len(numbers),
                                price_quantums=price, time_in_force=TimeInForce.IOC)  # fmt: skip
            _all_accepted(other.submit_batch([taker]))
    held = sum(len(s["positions"]) for s in heavy.account_state()["subaccounts"])
    print(f"the heavy account holds {held} positions", flush=True)
    assert held == subaccounts * len(MARKETS), held
    assert heavy.account is not None
    return heavy.account


def _traders(url: str, count: int) -> list[Client]:
    traders = [Client(url, Wallet(os.urandom(32)), timeout=60) for _ in range(count)]
    for trader in traders:
        trader.faucet(1_000_000)
    return traders


def _sign_resting(traders: list[Client], count: int) -> list[dict[str, Any]]:
    """Post-only orders 3% from the index, bids and asks: each rests, none fills, so every
    acknowledgement measures the same work."""
    tick, size = MARKETS["BTC-PERP"]
    mid = traders[0].market("BTC-PERP")["index_price_quantums"] // tick * tick
    signed = []
    for n in range(count):
        trader = traders[n // ORDERS_PER_TRADER]
        away = (mid * 3 // 100 // tick + n % 100) * tick  # 3%: the dev feed moves the index
        side, price = ("buy", mid - away) if n % 2 == 0 else ("sell", mid + away)
        order = trader.order("BTC-PERP", side, size_base_quantums=size, price_quantums=price,
                             time_in_force=TimeInForce.POST_ONLY)  # fmt: skip
        signed.append(trader.signed(order))
    return signed


def _all_accepted(results: list[dict[str, Any]]) -> None:
    bad = [r for r in results if r.get("http_status") != 200]
    assert not bad, bad[:3]


def _wait_fresh(client: Client) -> None:
    deadline = time.monotonic() + 15
    while any(client.market(m)["oracle_status"] != "fresh" for m in MARKETS):
        assert time.monotonic() < deadline, "the dev feed never made the oracles fresh"
        time.sleep(0.1)


# ── Measuring ──────────────────────────────────────────────────────────────────────────────


async def _paced(url: str, orders: list[dict[str, Any]], rate: int) -> dict[str, Any]:
    """Open loop: one order per request at ``rate``, whatever the answers."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=64)) as http:  # fmt: skip

        async def send(order: dict[str, Any]) -> None:
            started = time.perf_counter()
            response = await http.post("/v1/commands", json=order)
            assert response.status_code == 200, response.text
            latencies.append(time.perf_counter() - started)

        tasks = []
        start = time.perf_counter()
        for n, order in enumerate(orders):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(order)))
        await asyncio.gather(*tasks)
    return {"p50_ms": _ms(latencies, 50), "p99_ms": _ms(latencies, 99), "latencies": latencies}


def _with_readers(
    url: str, heavy: str, readers: int, orders: list[dict[str, Any]], rate: int, nice: int
) -> dict[str, Any]:
    """The paced orders while ``readers`` hammer the heavy views from another process."""
    spawn = multiprocessing.get_context("spawn")
    reads = spawn.Value("q", 0)
    stop = spawn.Event()
    process = spawn.Process(target=_read_forever, args=(url, heavy, readers, reads, stop, nice))
    process.start()
    while reads.value < readers:  # every reader is connected and has read once
        time.sleep(0.05)
    counted, started = reads.value, time.perf_counter()
    run = asyncio.run(_paced(url, orders, rate))
    run["reads_per_s"] = (reads.value - counted) / (time.perf_counter() - started)
    stop.set()
    process.join(30)
    return run


def _read_forever(url: str, heavy: str, readers: int, reads: Any, stop: Any, nice: int) -> None:
    os.nice(nice)
    asyncio.run(_readers(url, heavy, readers, reads, stop))


async def _readers(url: str, heavy: str, readers: int, reads: Any, stop: Any) -> None:
    paths = [f"/v1/accounts/{heavy}", "/v1/markets/BTC-PERP/adl?limit=500",
             f"/v1/accounts/{heavy}/subaccounts/0", "/v1/liquidations"]  # fmt: skip
    sockets = max(1, readers // 4)

    async def http_reader(n: int) -> None:
        # From 127.0.0.2: the readers are other clients than the trader, with their own
        # per-IP budget (with --limits default), as they would be on a real venue.
        transport = httpx.AsyncHTTPTransport(local_address=READERS_ADDRESS)
        async with httpx.AsyncClient(base_url=url, timeout=120, transport=transport) as http:
            while not stop.is_set():
                response = await http.get(paths[n % len(paths)] if n % 2 else paths[0])
                if response.status_code == 429:  # --limits default: as a polite client does
                    await asyncio.sleep(response.json()["error"]["retry_after_seconds"])
                    continue
                assert response.status_code == 200, response.text
                reads.value += 1

    async def socket_reader() -> None:
        ws_url = url.replace("http://", "ws://") + "/v1/ws"
        channel = f"account:{heavy}"
        async with websockets.connect(
            ws_url, max_size=2**26, local_addr=(READERS_ADDRESS, 0)
        ) as ws:
            while not stop.is_set():
                await ws.send(json.dumps({"op": "subscribe", "channel": channel}))
                answer = json.loads(await ws.recv())
                while answer.get("type") not in ("snapshot", "error"):  # updates, heartbeats
                    answer = json.loads(await ws.recv())
                if answer["type"] == "error":  # the node limits subscriptions per address
                    await asyncio.sleep(answer["error"].get("retry_after_seconds", 1.0))
                    continue
                reads.value += 1
                await ws.send(json.dumps({"op": "unsubscribe", "channel": channel}))

    await asyncio.gather(*(http_reader(n) for n in range(readers - sockets)),
                         *(socket_reader() for _ in range(sockets)))  # fmt: skip


def _ms(values: list[float], percentile: int) -> float:
    cut = statistics.quantiles(values, n=100, method="inclusive")[percentile - 1]
    return round(cut * 1000, 2)


# ── The node ───────────────────────────────────────────────────────────────────────────────


def _start(data: Path, port: int, *, pinned: bool, limited: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "clearhouse", "serve", "--dev", "--port", str(port),
               "--data", str(data), "--account-rate", "0"]  # fmt: skip
    if not limited:  # only the read path measured
        command += ["--ip-rate", "0"]
    node = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pinned else None,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return node
        except httpx.TransportError:
            time.sleep(0.1)
    node.kill()
    raise SystemExit("the node did not start")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


if __name__ == "__main__":
    raise SystemExit(main())
