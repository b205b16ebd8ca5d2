"""Full command path: margin check + matching + ledger, no signatures (SPEC §15: >= 100k/s).

Usage: python benchmarks/bench_engine.py [--orders 50000] [--repeat 5] [--per-block 500]

Builds the default venue, funds 200 traders, and runs a seeded stream of orders (55% resting
limits near the mark, 25% crossing IOC limits, 20% cancels) through Engine.apply, cutting a
block (and its state root) every --per-block commands. Prints the median orders/s over repeats.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from clearhouse.core.engine import Engine
from clearhouse.core.ids import AssetId, MarketId, OracleId, Side
from clearhouse.core.messages import (
    CancelOrder,
    Command,
    Deposit,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
)
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND
from clearhouse.sim.venue import GENESIS_NS, USDC, address_of, default_venue, genesis_commands

TRADERS = 200


def setup() -> tuple[Engine, int, list[str]]:
    spec = default_venue(GENESIS_NS, oracle_staleness_ns=3_600 * NS_PER_SECOND)
    engine = Engine(spec.venue)
    engine.begin_block(1, GENESIS_NS)
    for i, command in enumerate(genesis_commands(spec)):
        engine.apply(i, command)
    engine.end_block()
    now = GENESIS_NS + NS_PER_SECOND
    engine.begin_block(2, now)
    nonce = now // NS_PER_MS
    commands: list[Command] = []
    for p in spec.publishers:
        reports = tuple(
            PriceReport(oracle_id=OracleId(o), price_quantums=px, confidence_quantums=0,
                        timestamp_ns=now)
            for o, px in (("BTC-USD", 60_000 * USDC), ("ETH-USD", 3_000 * USDC),
                          ("USDT-USD", USDC))
        )  # fmt: skip
        commands.append(
            ReportPrices(signer=p, nonce=nonce, expiry_ns=now + 10**12, reports=reports)
        )
    traders = [address_of(f"bench-{i}") for i in range(TRADERS)]
    for i, trader in enumerate(traders):
        commands.append(Deposit(
            signer=spec.relayer, nonce=nonce + i, expiry_ns=now + 10**12, deposit_id=i + 1,
            owner=trader, subaccount_number=0, asset_id=AssetId("USDC"),
            amount_quantums=10_000_000 * USDC,
        ))  # fmt: skip
    for i, command in enumerate(commands):
        engine.apply(i, command)
    engine.end_block()
    return engine, now, traders


def stream(seed: int, count: int, now: int, traders: list[str]) -> list[Command]:
    rng = random.Random(seed)
    nonces = dict.fromkeys(traders, now // NS_PER_MS + 10)
    resting: list[tuple[str, int]] = []
    commands: list[Command] = []
    next_id = 1  # order ids are assigned in order; cancels name ids that were placed earlier
    for _ in range(count):
        trader = rng.choice(traders)
        nonces[trader] += 1
        common = {"signer": trader, "nonce": nonces[trader], "expiry_ns": now + 10**15}
        roll = rng.random()
        if roll < 0.2 and resting:
            owner, order_id = resting.pop(rng.randrange(len(resting)))
            nonces[owner] += 1
            commands.append(CancelOrder(signer=owner, nonce=nonces[owner], expiry_ns=now + 10**15,
                                        subaccount_number=0, order_id=order_id))  # fmt: skip
            continue
        side = rng.choice((Side.BUY, Side.SELL))
        crossing = roll > 0.75
        offset = rng.randint(1, 200) * 100_000
        price = 60_000 * USDC + (offset if crossing else -offset) * side
        commands.append(PlaceOrder(
            subaccount_number=0, market_id=MarketId("BTC-PERP"), side=side,
            size_base_quantums=rng.randint(10, 200) * 10_000, price_quantums=price,
            time_in_force=TimeInForce.IOC if crossing else TimeInForce.GTC, **common,  # type: ignore[arg-type]
        ))  # fmt: skip
        if not crossing:
            resting.append((trader, next_id))
        next_id += 1
    return commands


def run_once(orders: int, per_block: int, seed: int) -> tuple[float, int]:
    engine, now, traders = setup()
    commands = stream(seed, orders, now, traders)
    height = 2
    started = time.process_time()  # CPU time: this machine is shared
    for start in range(0, len(commands), per_block):
        height += 1
        engine.begin_block(height, now + height * NS_PER_MS)
        for i, command in enumerate(commands[start : start + per_block]):
            engine.apply(i, command)
        engine.end_block()
    elapsed = time.process_time() - started
    fills = engine.state.next_trade_id - 1
    return len(commands) / elapsed, fills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--per-block", type=int, default=500)
    args = parser.parse_args()
    rates = []
    fills = 0
    for r in range(args.repeat):
        rate, fills = run_once(args.orders, args.per_block, seed=r)
        rates.append(rate)
        print(f"run {r}: {rate:,.0f} commands/s ({fills} fills)")
    median = statistics.median(rates)
    print(f"full command path: median {median:,.0f} commands/s over {args.repeat} runs "
          f"(target 100,000/s: {median / 100_000:.2f}x)")  # fmt: skip
    print(json.dumps({"bench": "engine", "median_commands_per_s": round(median),
                      "runs": [round(r) for r in rates]}))  # fmt: skip


if __name__ == "__main__":
    main()
