"""Venue scale: what a block and an order cost as the venue grows from 1k to 1M subaccounts.

Usage: python benchmarks/bench_scale.py --subaccounts 1000 10000 100000 1000000
           [--repeat 5] [--repeat-large 1] [--seed 0] [--json PATH]

Each size is built by ``clearhouse.sim.bulk.build_venue`` (state written directly, then
``Engine.from_state``) in its own subprocess, so that one size's memory does not pollute the
next; the parent collects the results. Every timing is CPU time of the process
(``time.process_time_ns``), the median over the repeats (``--repeat``, or ``--repeat-large``
from 1M subaccounts up):

* ``empty_block_ms``: a block of the publishers' ``ReportPrices`` only (prices within 0.05% of
  the reference): ``begin_block`` + the applies + ``end_block`` (the state root included);
* ``funding_block_ms``: the same, in a block whose timestamp crosses the perpetuals' funding
  time, so funding is paid to and by every holder. The benchmark moves each perpetual's
  ``next_funding_ns`` to that block's time first (a direct state write, as the builder's are)
  rather than simulate the hour of blocks before it;
* ``ioc_order_us``: one crossing IOC ``PlaceOrder`` from a funded taker, through
  ``Engine.apply`` in an open block: the mean of 50 in one block (each fills at the maker's
  best level), ``end_block`` excluded;
* ``gtc_order_us``: one resting, non-crossing GTC limit order from a bulk subaccount (the mean
  of 200 in one block), ``end_block`` excluded;
* ``block_end_per_order_us``: ``end_block()`` after that block of 200 GTC orders, divided by 200;
* ``rss_bytes_per_subaccount``: (VmRSS after the build and the first block - VmRSS before
  the build) / subaccounts, measured before any timing: the first block computes the state
  root, so the state tree's nodes count (until 2026-12-07 this was read before that block,
  without them: ~280 bytes a subaccount less than a running venue holds);
* ``adl_rank_first_ms`` / ``adl_rank_next_us``: after the blocks, an ADL rank read between
  blocks (what an account view does per position): the first read of a market's queue, then
  each read once both sides are ranked, in the same block (the mean over up to 1,000 holders);
* ``build_s``: wall seconds of ``build_venue`` (``Engine.from_state`` included), for
  information.

Every measured command must be accepted (no ``CommandRejected``), every IOC must fill, every
GTC must rest, and no subaccount may come under liquidation: a benchmark that measured
rejections or liquidations would measure the wrong thing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearhouse.core.engine import Engine
from clearhouse.core.ids import Address, MarketId, Side
from clearhouse.core.messages import (
    Command,
    CommandRejected,
    Event,
    FundingPaid,
    OrderFilled,
    OrderRested,
    PlaceOrder,
    TimeInForce,
)
from clearhouse.core.units import PPM_ONE
from clearhouse.sim import bulk

IOC_ORDERS = 50  # per block; at most bulk.TAKERS
GTC_ORDERS = 200  # per block: the K of block_end_per_order_us
PRICE_MOVE_PPM = 500  # each block's prices are within 0.05% of the reference
IOC_LIMIT_PPM = 10_000  # a crossing IOC's limit: 1% through the index (fills at the best level)
GTC_OFFSET_PPM = 20_000  # resting GTC orders: 2% to 4% away from the index, never crossing
LARGE = 1_000_000  # from this size on, --repeat-large repeats

TARGETS = {  # from the issue
    "empty_block_ms_at_1m": 5.0,
    "funding_block_ms_at_1m": 5.0,
    "empty_block_ratio_1m_to_1k": 2.0,
    "ioc_order_us": 60.0,
    "rss_bytes_per_subaccount": 1_500.0,
}


def cpu_ns() -> int:
    return time.process_time_ns()


def rss_bytes() -> int:
    """Resident set size now (VmRSS), not the peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def rejections(events: list[Event]) -> list[CommandRejected]:
    return [e for e in events if isinstance(e, CommandRejected)]


@dataclass(slots=True)
class Session:
    """Blocks after the build: a clock one second a block, prices around the reference,
    nonces unique per signer, and every measured command checked for acceptance."""

    engine: Engine
    subaccounts: int
    rng: random.Random
    nonces: bulk.Nonces
    now_ns: int
    next_gtc_owner: int = 0

    @classmethod
    def start(cls, engine: Engine, subaccounts: int, seed: int) -> Session:
        return cls(engine, subaccounts, random.Random(seed), bulk.Nonces(engine),
                   engine.state.timestamp_ns)  # fmt: skip

    def open_block(self) -> tuple[int, int]:
        self.now_ns += bulk.BLOCK_INTERVAL_NS
        return self.engine.state.height + 1, self.now_ns

    def prices(self) -> list[Command]:
        moved = {}
        for oracle_id, price in bulk.REFERENCE_PRICES.items():
            move_ppm = round((2 * self.rng.random() - 1) * PRICE_MOVE_PPM)
            moved[oracle_id] = price + price * move_ppm // PPM_ONE
        return bulk.price_reports(self.engine, self.nonces, self.now_ns, moved)

    def price_block(self, *, funding: bool = False) -> tuple[int, int, int]:
        """A block of prices only: (begin_block, applies, end_block) in CPU ns."""
        engine = self.engine
        height, now = self.open_block()
        commands = self.prices()
        if funding:
            for market_id in bulk.PERPETUALS:
                engine.state.markets[market_id].next_funding_ns = now
        gc.collect()
        started = cpu_ns()
        events = engine.begin_block(height, now)
        begun = cpu_ns()
        for index, command in enumerate(commands):
            events += engine.apply(index, command)
        applied = cpu_ns()
        engine.end_block()
        ended = cpu_ns()
        assert not rejections(events), rejections(events)
        paid = {e.market_id for e in events if isinstance(e, FundingPaid)}
        assert paid == (set(bulk.PERPETUALS) if funding else set()), paid
        self.check_no_liquidation()
        return begun - started, applied - begun, ended - applied

    def ioc_block(self, repeat: int) -> float:
        """CPU µs per crossing IOC order, mean of a block of them (end_block excluded)."""
        engine = self.engine
        height, now = self.open_block()
        engine.begin_block(height, now)
        commands = [self.ioc(j, repeat) for j in range(IOC_ORDERS)]
        gc.collect()
        started = cpu_ns()
        results = [engine.apply(index, command) for index, command in enumerate(commands)]
        elapsed = cpu_ns() - started
        engine.end_block()
        for events in results:
            assert not rejections(events), rejections(events)
            assert any(isinstance(e, OrderFilled) for e in events), "an IOC did not fill"
        self.check_no_liquidation()
        return elapsed / IOC_ORDERS / 1_000

    def gtc_block(self) -> tuple[float, float]:
        """CPU µs per resting GTC order (mean of a block of them), and the block's
        end_block per order."""
        engine = self.engine
        height, now = self.open_block()
        engine.begin_block(height, now)
        commands = [self.gtc(j) for j in range(GTC_ORDERS)]
        gc.collect()
        started = cpu_ns()
        results = [engine.apply(index, command) for index, command in enumerate(commands)]
        applied = cpu_ns()
        engine.end_block()
        ended = cpu_ns()
        for events in results:
            assert not rejections(events), rejections(events)
            assert any(isinstance(e, OrderRested) for e in events), events
            assert not any(isinstance(e, OrderFilled) for e in events), "a GTC order crossed"
        self.check_no_liquidation()
        return (applied - started) / GTC_ORDERS / 1_000, (ended - applied) / GTC_ORDERS / 1_000

    def ioc(self, taker: int, repeat: int) -> PlaceOrder:
        """Taker ``taker`` buys or sells (alternately over repeats, so it stays near flat)
        the minimum order, 1% through the index: it fills at the maker's best level."""
        side = Side.BUY if (repeat + taker // 2) % 2 == 0 else Side.SELL
        market_id = bulk.PERPETUALS[taker % 2]
        price = self.limit(market_id, side, IOC_LIMIT_PPM * side)
        return self.order(bulk.taker_address(taker), market_id, side, price, TimeInForce.IOC)

    def gtc(self, j: int) -> PlaceOrder:
        """A bulk subaccount's minimum order resting 2-4% from the index, on either side."""
        owner = bulk.bulk_address(self.next_gtc_owner % self.subaccounts)
        self.next_gtc_owner += 1
        side = Side.BUY if (j // 2) % 2 == 0 else Side.SELL
        market_id = bulk.PERPETUALS[j % 2]
        offset = GTC_OFFSET_PPM + (j % 100) * GTC_OFFSET_PPM // 100
        price = self.limit(market_id, side, -offset * side)
        return self.order(owner, market_id, side, price, TimeInForce.GTC)

    def limit(self, market_id: MarketId, side: Side, offset_ppm: int) -> int:
        """The index moved by ``offset_ppm``, on the tick grid, rounded toward the index."""
        params = self.engine.state.markets[market_id].params
        index = self.engine.state.oracles[params.oracle_id].index_price_quantums
        price = index + index * offset_ppm // PPM_ONE
        tick = params.tick_quantums
        return price // tick * tick if side is Side.BUY else -(-price // tick) * tick

    def order(
        self, signer: Address, market_id: MarketId, side: Side, price: int, tif: TimeInForce
    ) -> PlaceOrder:
        params = self.engine.state.markets[market_id].params
        return PlaceOrder(
            signer=signer, nonce=self.nonces.next(signer, self.now_ns),
            expiry_ns=self.now_ns + bulk.COMMAND_LIFETIME_NS, subaccount_number=0,
            market_id=market_id, side=side, size_base_quantums=params.min_order_base_quantums,
            price_quantums=price, time_in_force=tif,
        )  # fmt: skip

    def check_no_liquidation(self) -> None:
        state = self.engine.state
        assert not state.liquidations, f"{len(state.liquidations)} subaccounts in liquidation"
        assert all(m.underwater_count == 0 for m in state.markets.values())


def measure(subaccounts: int, repeat: int, seed: int) -> dict[str, Any]:
    """Build one size and time it (runs in its own process)."""
    gc.collect()
    rss_before = rss_bytes()
    started = time.perf_counter()
    engine = bulk.build_venue(subaccounts, seed=seed)
    build_s = time.perf_counter() - started
    session = Session.start(engine, subaccounts, seed)
    session.price_block()  # warm-up: the first block after from_state fills the caches
    gc.collect()
    rss_after = rss_bytes()  # the tree's nodes included: the warm-up block made the root
    # As the node does once its state is loaded (``sequencer._freeze_long_lived``): the venue's
    # objects leave the collector's sight, so the collection before each timed block walks
    # what is young only. A full walk of a million subaccounts (~1.4 GB) there left every
    # block at 1M to start from cold CPU caches, which no node's block does.
    gc.freeze()
    grown_mib = (rss_after - rss_before) / 2**20
    log(f"{subaccounts:,}: built in {build_s:.1f} s, RSS +{grown_mib:,.0f} MiB")
    empty: list[tuple[int, int, int]] = []
    funding: list[tuple[int, int, int]] = []
    ioc: list[float] = []
    gtc: list[tuple[float, float]] = []
    for r in range(repeat):
        empty.append(session.price_block())
        funding.append(session.price_block(funding=True))
        ioc.append(session.ioc_block(r))
        gtc.append(session.gtc_block())
        log(f"{subaccounts:,}: repeat {r + 1}/{repeat}: empty {sum(empty[-1]) / 1e6:,.1f} ms, "
            f"funding {sum(funding[-1]) / 1e6:,.1f} ms, IOC {ioc[-1]:,.1f} us, "
            f"GTC {gtc[-1][0]:,.1f} us, end/order {gtc[-1][1]:,.1f} us")  # fmt: skip

    first_ms, next_us = adl_reads(engine)

    def ms(samples: list[tuple[int, int, int]], parts: tuple[int, ...] = (0, 1, 2)) -> float:
        return round(statistics.median(sum(s[p] for p in parts) for s in samples) / 1e6, 3)

    return {
        "subaccounts": subaccounts,
        "repeats": repeat,
        "empty_block_ms": ms(empty),
        "funding_block_ms": ms(funding),
        "ioc_order_us": round(statistics.median(ioc), 2),
        "gtc_order_us": round(statistics.median(g for g, _ in gtc), 2),
        "block_end_per_order_us": round(statistics.median(e for _, e in gtc), 2),
        "rss_bytes_per_subaccount": round((rss_after - rss_before) / subaccounts),
        "build_s": round(build_s, 2),
        "adl_rank_first_ms": round(first_ms, 3),
        "adl_rank_next_us": round(next_us, 2),
        # the split of the two price blocks, for where the time goes
        "empty_begin_block_ms": ms(empty, (0,)),
        "empty_end_block_ms": ms(empty, (2,)),
        "funding_begin_block_ms": ms(funding, (0,)),
        "funding_end_block_ms": ms(funding, (2,)),
        "empty_block_runs_ms": [round(sum(s) / 1e6, 3) for s in empty],
        "funding_block_runs_ms": [round(sum(s) / 1e6, 3) for s in funding],
    }


def adl_reads(engine: Engine) -> tuple[float, float]:
    """(first ADL rank read of a market's queue in ms, each further read in µs)."""
    market = next(m for m in engine.state.markets.values() if m.holders)
    holders = sorted(market.holders)[:1_000]
    started = cpu_ns()
    assert engine.adl_rank(holders[0], market.params.market_id) is not None
    first = cpu_ns() - started
    for holder in holders:  # the other side's queue is ranked on its first read too
        engine.adl_rank(holder, market.params.market_id)
    started = cpu_ns()
    for holder in holders:
        engine.adl_rank(holder, market.params.market_id)
    return first / 1e6, (cpu_ns() - started) / len(holders) / 1e3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> str:
    model = platform.processor() or platform.machine()
    memory = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo
                          if ln.startswith("model name")), model)  # fmt: skip
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            kib = int(next(ln for ln in meminfo if ln.startswith("MemTotal:")).split()[1])
            memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({platform.machine()}, {model}){memory}, {platform.system()}"


def run_child(subaccounts: int, repeat: int, seed: int) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(subaccounts),
               "--repeat", str(repeat), "--seed", str(seed)]  # fmt: skip
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(sizes: list[dict[str, Any]]) -> None:
    header = (f"{'subaccounts':>11} {'rep':>3} {'build s':>8} {'B/sub':>6} {'empty ms':>10} "
              f"{'x smallest':>10} {'funding ms':>11} {'IOC us':>7} {'GTC us':>7} "
              f"{'end/order us':>12}")  # fmt: skip
    print(header)
    print("-" * len(header))
    smallest = float(sizes[0]["empty_block_ms"])
    for s in sizes:
        empty = float(s["empty_block_ms"])
        print(f"{s['subaccounts']:>11,} {s['repeats']:>3} {s['build_s']:>8.2f} "
              f"{s['rss_bytes_per_subaccount']:>6,} {empty:>10,.2f} {empty / smallest:>9.1f}x "
              f"{s['funding_block_ms']:>11,.2f} {s['ioc_order_us']:>7.1f} "
              f"{s['gtc_order_us']:>7.1f} {s['block_end_per_order_us']:>12.1f}")  # fmt: skip
    print()
    by_size = {int(s["subaccounts"]): s for s in sizes}
    largest = sizes[-1]
    big = by_size.get(LARGE)

    def line(what: str, measured: float | None, target: float, unit: str) -> None:
        if measured is None:
            print(f"  {what}: target {target:,g} {unit}: not measured (needs that size)")
            return
        verdict = "met" if measured <= target else f"missed by {measured / target:,.1f}x"
        print(f"  {what}: {measured:,.2f} {unit} (target <= {target:,g} {unit}): {verdict}")

    print("targets (from the issue):")
    line("empty block at 1M", None if big is None else float(big["empty_block_ms"]),
         TARGETS["empty_block_ms_at_1m"], "ms")  # fmt: skip
    line("funding block at 1M", None if big is None else float(big["funding_block_ms"]),
         TARGETS["funding_block_ms_at_1m"], "ms")  # fmt: skip
    ratio = None
    if big is not None and 1_000 in by_size:
        ratio = float(big["empty_block_ms"]) / float(by_size[1_000]["empty_block_ms"])
    line("empty block 1M / 1k", ratio, TARGETS["empty_block_ratio_1m_to_1k"], "x")
    for s in sizes:
        line(f"IOC order at {s['subaccounts']:,}", float(s["ioc_order_us"]),
             TARGETS["ioc_order_us"], "us")  # fmt: skip
    line(f"memory at {largest['subaccounts']:,}", float(largest["rss_bytes_per_subaccount"]),
         TARGETS["rss_bytes_per_subaccount"], "B/subaccount")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subaccounts", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--repeat-large", type=int, default=1,
                        help=f"repeats from {LARGE:,} subaccounts up")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.repeat, args.seed)), flush=True)
        return
    sizes = []
    for n in sorted(args.subaccounts):
        repeat = min(args.repeat, args.repeat_large) if n >= LARGE else args.repeat
        sizes.append(run_child(n, repeat, args.seed))
    results = {
        "sizes": sizes,
        "machine": machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "timing": "CPU time (time.process_time_ns), median over repeats",
    }
    report(sizes)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
