"""Benchmark Clearhouse's OrderBook against lightmatchingengine on the same seeded stream.

Usage: ``python benchmarks/bench_orderbook.py [--ops 200000] [--repeat 5] [--seed 1]``

The stream mixes about 60% limit orders around a drifting mid (about one in eight crosses the
spread), 30% cancels of earlier limit orders and 10% market orders. Both engines run the SAME
stream in the same process, interleaved, each repetition on a fresh book; the medians are
reported in operations per second, then one JSON line with the numbers.

Semantics are aligned so that both engines must fill the same total quantity:

* every order has its own owner, so Clearhouse's self-trade prevention never fires
  (lightmatchingengine has none);
* a market order is an IOC: Clearhouse plans with an unbounded limit and never rests the rest;
  lightmatchingengine takes price 0 ("market") and would rest the rest at price 0, so the
  driver cancels that remainder at once (counted in its time);
* a cancel of an order that is no longer resting (filled) is a no-op in both drivers.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lightmatchingengine.lightmatchingengine import LightMatchingEngine
from lightmatchingengine.lightmatchingengine import Side as LmeSide

from clearhouse.core import limits
from clearhouse.core.ids import Address, OrderId, Side, SubaccountId
from clearhouse.core.matching import OrderBook, RestingOrder

LIMIT, CANCEL, MARKET = 0, 1, 2
TICK = 100  # price quantums per tick
MID_START = 1_000_000 * TICK
LOT = 1_000  # base quantums per lot
INSTRUMENT = "BTC-PERP"

# (kind, key, side, price, size): key is the op's own id for limits and markets, and the key of
# the limit order to cancel for cancels.
Op = tuple[int, int, Side, int, int]


@dataclass(frozen=True, slots=True)
class Result:
    ops_per_second: float
    filled_base_quantums: int
    resting_base_quantums: int
    cancels_hit: int


def generate(ops: int, seed: int) -> list[Op]:
    """A seeded stream; cancels target limit orders still live from the generator's view."""
    rng = random.Random(seed)
    stream: list[Op] = []
    live: list[int] = []  # keys of limits not yet cancelled (some will be filled by then)
    mid = MID_START
    for key in range(ops):
        roll = rng.random()
        mid += rng.choice((-TICK, 0, TICK)) if rng.random() < 0.05 else 0
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if roll < 0.30 and live:
            slot = rng.randrange(len(live))
            live[slot], live[-1] = live[-1], live[slot]
            stream.append((CANCEL, live.pop(), side, 0, 0))
        elif roll < 0.40:
            stream.append((MARKET, key, side, 0, rng.randint(1, 200) * LOT))
        else:
            offset = rng.randint(-5, 60) if rng.random() < 0.15 else rng.randint(1, 60)
            price = mid - side * offset * TICK
            stream.append((LIMIT, key, side, price, rng.randint(1, 100) * LOT))
            live.append(key)
    return stream


def owners_for(ops: int) -> list[SubaccountId]:
    """One owner per op (built outside the timed loop), so self-trade prevention never fires."""
    address = Address("0x" + "ab" * 20)
    return [SubaccountId(address, key) for key in range(ops)]


def run_clearhouse(stream: list[Op], owners: list[SubaccountId]) -> Result:
    """The driver the engine will use: plan, apply each fill, rest the remainder."""
    book = OrderBook()
    plan, apply_fill, add, remove = book.plan, book.apply_fill, book.add, book.remove
    buy_market_limit = limits.price_quantums_max
    filled = 0
    cancels_hit = 0
    start = time.perf_counter()
    for kind, key, side, price, size in stream:
        if kind == CANCEL:
            if key in book:
                remove(OrderId(key))
                cancels_hit += 1
            continue
        owner = owners[key]
        if kind == MARKET:
            price = buy_market_limit if side is Side.BUY else 1
        result = plan(side=side, limit_price_quantums=price, size_base_quantums=size, owner=owner)
        for fill in result.fills:
            apply_fill(fill.maker_order_id, fill.size_base_quantums)
        filled += result.filled_base_quantums
        if kind == LIMIT and result.filled_base_quantums < size:
            add(RestingOrder(OrderId(key), owner, side, price, size - result.filled_base_quantums))
    elapsed = time.perf_counter() - start
    book.check_invariants()
    resting = sum(order.remaining_base_quantums for order in book.orders())
    return Result(len(stream) / elapsed, filled, resting, cancels_hit)


def run_lme(stream: list[Op]) -> Result:
    """lightmatchingengine on the same stream; market remainders are cancelled (IOC)."""
    engine = LightMatchingEngine()
    placed: dict[int, object] = {}
    filled = 0
    cancels_hit = 0
    lme_buy, lme_sell = LmeSide.BUY, LmeSide.SELL
    add_order, cancel_order = engine.add_order, engine.cancel_order
    start = time.perf_counter()
    for kind, key, side, price, size in stream:
        if kind == CANCEL:
            order = placed.get(key)
            if order is not None and order.leaves_qty > 0:  # type: ignore[attr-defined]
                cancel_order(order.order_id, INSTRUMENT)  # type: ignore[attr-defined]
                cancels_hit += 1
            continue
        lme_side = lme_buy if side is Side.BUY else lme_sell
        order, _trades = add_order(INSTRUMENT, price if kind == LIMIT else 0, size, lme_side)
        filled += order.cum_qty
        if kind == LIMIT:
            placed[key] = order
        elif order.leaves_qty > 0:
            cancel_order(order.order_id, INSTRUMENT)
    elapsed = time.perf_counter() - start
    books = engine.order_books[INSTRUMENT]
    resting = sum(o.leaves_qty for level in books.bids.values() for o in level)
    resting += sum(o.leaves_qty for level in books.asks.values() for o in level)
    return Result(len(stream) / elapsed, filled, resting, cancels_hit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    stream = generate(args.ops, args.seed)
    owners = owners_for(args.ops)
    # The stream and the owners are inputs, not engine state: move them out of the collector's
    # view so that neither engine pays for scanning them in its full collections.
    gc.collect()
    gc.freeze()
    mix = [
        sum(1 for op in stream if op[0] == kind) / len(stream) for kind in (LIMIT, CANCEL, MARKET)
    ]
    print(
        f"stream: {len(stream)} ops, seed {args.seed}, mix limit/cancel/market = "
        f"{mix[0]:.0%}/{mix[1]:.0%}/{mix[2]:.0%}"
    )
    ours: list[Result] = []
    theirs: list[Result] = []
    for _ in range(args.repeat):  # interleaved, so that both see the same machine noise
        ours.append(run_clearhouse(stream, owners))
        theirs.append(run_lme(stream))
    ours_median = statistics.median(r.ops_per_second for r in ours)
    theirs_median = statistics.median(r.ops_per_second for r in theirs)
    same_fills = ours[0].filled_base_quantums == theirs[0].filled_base_quantums
    same_resting = ours[0].resting_base_quantums == theirs[0].resting_base_quantums
    same_cancels = ours[0].cancels_hit == theirs[0].cancels_hit
    print(f"clearhouse         median {ours_median:>12,.0f} ops/s  (repeat {args.repeat})")
    print(f"lightmatchingengine median {theirs_median:>11,.0f} ops/s  (repeat {args.repeat})")
    print(f"ratio clearhouse / lightmatchingengine = {ours_median / theirs_median:.2f}x")
    print(
        f"filled base quantums: clearhouse {ours[0].filled_base_quantums}, "
        f"lightmatchingengine {theirs[0].filled_base_quantums} -> "
        f"{'SAME' if same_fills else 'DIFFERENT'}"
    )
    print(
        f"resting base quantums: clearhouse {ours[0].resting_base_quantums}, "
        f"lightmatchingengine {theirs[0].resting_base_quantums}; cancels that hit: "
        f"{ours[0].cancels_hit} vs {theirs[0].cancels_hit}"
    )
    print(
        json.dumps(
            {
                "ops": len(stream),
                "repeat": args.repeat,
                "seed": args.seed,
                "clearhouse_ops_per_second_median": round(ours_median),
                "lightmatchingengine_ops_per_second_median": round(theirs_median),
                "ratio": round(ours_median / theirs_median, 3),
                "filled_base_quantums": ours[0].filled_base_quantums,
                "same_filled": same_fills,
                "same_resting": same_resting,
                "same_cancels": same_cancels,
                "python": sys.version.split()[0],
            }
        )
    )
    return 0 if same_fills and same_resting and same_cancels else 1


if __name__ == "__main__":
    raise SystemExit(main())
