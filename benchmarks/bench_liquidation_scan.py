"""Liquidation scan: find every liquidatable subaccount among 1M after one price move.

Usage: python benchmarks/bench_liquidation_scan.py [--subaccounts 1000000] [--sample 50000]
                                                   [--repeat 5] [--drop-ppm 100000] [--seed 1]
                                                   [--full-exact]

Builds a seeded population of subaccounts (``Subaccount`` objects, as the engine holds them) in
the default venue's three markets (BTC-PERP, ETH-PERP, the BTC future): ~1.3 positions each,
70% long, notionals log-uniform from 50 USDC to 2M USDC, leverage 1 + Gamma(2, 1.6) capped
below the market's IM, 15% holding BTC or ETH as haircut collateral. Then every mark and
collateral price drops by --drop-ppm and it times, median of --repeat runs each:

* columns: ``risk_scan.columns_from`` over every subaccount (Python loop, once per snapshot);
* screen: ``risk_scan.screen`` over every subaccount (numpy, float64, conservative);
* confirm: ``margin.subaccount_risk`` on the screen's candidates only;
* exact: ``margin.subaccount_risk`` on every subaccount of a seeded random sample of --sample
  rows, spread over the whole population (so it pays the same cache misses as a full scan),
  per subaccount and extrapolated to all;
  --full-exact also runs it once over every subaccount, to check the extrapolation.

On the sample, screen + confirm and the exact scan must find the same subaccounts (asserted).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from clearhouse.app.risk_scan import IndexArray, RiskColumns, columns_from, confirm, screen
from clearhouse.core.ids import QUOTE_ASSET, Address, AssetId, MarketId, SubaccountId
from clearhouse.core.ledger import Position, Subaccount
from clearhouse.core.margin import (
    CollateralPrice,
    MarketRisk,
    market_im_fraction_ppm,
    subaccount_risk,
)
from clearhouse.core.params import MarketParams
from clearhouse.core.units import PPM_ONE
from clearhouse.sim.venue import GENESIS_NS, USDC, default_venue, market_params

T = TypeVar("T")

BTC, ETH = AssetId("BTC"), AssetId("ETH")
# Pre-move prices in quote quantums per whole unit: BTC-PERP, ETH-PERP, BTC future.
MARKS = (60_000 * USDC, 3_000 * USDC, 60_300 * USDC)
MARKET_SHARE = (0.55, 0.35, 0.10)  # where a subaccount's first position is
COLLATERAL = {BTC: (60_000 * USDC, 10**8, 900_000), ETH: (3_000 * USDC, 10**9, 850_000)}
OWNER = Address("0x" + "ab" * 20)


@dataclass(frozen=True)
class Venue:
    params: tuple[MarketParams, ...]

    @property
    def market_ids(self) -> list[MarketId]:
        return [p.market_id for p in self.params]

    def markets(self, drop_ppm: int) -> dict[MarketId, MarketRisk]:
        """Market risk at the pre-move marks lowered by drop_ppm (open interest below caps)."""
        return {
            p.market_id: MarketRisk(
                mark * (PPM_ONE - drop_ppm) // PPM_ONE, p.base_quantums_per_unit,
                market_im_fraction_ppm(p.margin, open_interest_quote_quantums=0,
                                       vol_multiplier_ppm=PPM_ONE),
                p.margin.maintenance_share_ppm, p.margin.size_premium_ppm_per_sqrt_quote_unit,
                usable=True,
            )
            for p, mark in zip(self.params, MARKS, strict=True)
        }  # fmt: skip


def collateral_prices(drop_ppm: int) -> dict[AssetId, CollateralPrice]:
    return {
        a: CollateralPrice(price * (PPM_ONE - drop_ppm) // PPM_ONE, per_unit, weight, usable=True)
        for a, (price, per_unit, weight) in COLLATERAL.items()
    }


def population(count: int, seed: int, venue: Venue) -> list[Subaccount]:
    """Seeded subaccounts at the pre-move marks. Draws are vectorized; objects built in a loop."""
    rng = np.random.default_rng(seed)
    first = rng.choice(3, size=count, p=MARKET_SHARE)
    second = np.where(rng.random(count) < 0.3, (first + rng.integers(1, 3, count)) % 3, -1)
    leverage = 1.0 + rng.gamma(2.0, 1.6, count)
    with_collateral = rng.random(count) < 0.15
    collateral_asset = np.where(rng.random(count) < 0.5, 0, 1)
    collateral_share = rng.uniform(0.1, 0.9, count)
    im = [p.margin.initial_margin_ppm / PPM_ONE for p in venue.params]
    markets = venue.market_ids
    per_unit = [p.base_quantums_per_unit for p in venue.params]
    subs = []
    for row in range(count):
        sub = Subaccount(SubaccountId(OWNER, row))
        total = 0.0
        for market in (int(first[row]), int(second[row])):
            if market >= 0:
                total += _add_position(sub, rng, markets[market], MARKS[market], per_unit[market])
        worst_im = max(im[int(first[row])], im[int(second[row])] if second[row] >= 0 else 0)
        equity = total / min(float(leverage[row]), 0.9 / worst_im)
        _fund(sub, equity, bool(with_collateral[row]), int(collateral_asset[row]),
              float(collateral_share[row]))  # fmt: skip
        subs.append(sub)
    return subs


def _add_position(
    sub: Subaccount, rng: np.random.Generator, market_id: MarketId, mark: int, per_unit: int
) -> float:
    """A long (70%) or short at an entry within ~2% of the mark; returns its notional."""
    notional = 10 ** rng.uniform(np.log10(50), np.log10(2_000_000)) * USDC
    side = 1 if rng.random() < 0.7 else -1
    size = side * int(notional * per_unit / mark)
    entry = mark * (1.0 + rng.normal(0.0, 0.02))
    sub.positions[market_id] = Position(market_id, size, int(size * entry) // per_unit)
    return notional


def _fund(sub: Subaccount, equity: float, with_collateral: bool, asset: int, share: float) -> None:
    if not with_collateral:
        sub.set_balance(QUOTE_ASSET, int(equity))
        return
    asset_id = (BTC, ETH)[asset]
    price, per_unit, weight = COLLATERAL[asset_id]
    collateral_value = equity * share
    sub.set_balance(asset_id, int(collateral_value * PPM_ONE / weight * per_unit / price) + 1)
    sub.set_balance(QUOTE_ASSET, int(equity - collateral_value))


def timed(repeat: int, run: Callable[[], T]) -> tuple[float, list[float], T]:
    """Median seconds over repeats, every run's seconds, and the last result."""
    seconds = []
    result: T | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    assert result is not None
    return statistics.median(seconds), seconds, result


def exact_scan(
    subs: list[Subaccount],
    rows: list[int],
    markets: dict[MarketId, MarketRisk],
    collateral: dict[AssetId, CollateralPrice],
) -> list[int]:
    """The plain scan: margin.subaccount_risk on each of these rows."""
    return [r for r in rows if subaccount_risk(subs[r], markets, collateral).liquidatable]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subaccounts", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--drop-ppm", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--full-exact", action="store_true", help="also time one exact scan of every subaccount"
    )
    args = parser.parse_args()
    venue = Venue(tuple(market_params(default_venue(GENESIS_NS))))
    started = time.perf_counter()
    gc.disable()  # 1M subaccounts of dicts: keep the collector's passes out of every timing
    subs = population(args.subaccounts, args.seed, venue)
    gc.collect()
    gc.freeze()
    gc.enable()
    built_s = time.perf_counter() - started
    positions = sum(len(s.positions) for s in subs)
    print(f"population: {len(subs):,} subaccounts, {positions:,} positions "
          f"({positions / len(subs):.2f} each), built in {built_s:.1f} s")  # fmt: skip
    report(args, venue, subs)


def report(args: argparse.Namespace, venue: Venue, subs: list[Subaccount]) -> None:
    before_markets, before_collateral = venue.markets(0), collateral_prices(0)
    markets, collateral = venue.markets(args.drop_ppm), collateral_prices(args.drop_ppm)
    asset_ids = list(COLLATERAL)
    columns_s, _, columns = timed(
        args.repeat, lambda: columns_from(subs, venue.market_ids, asset_ids)
    )
    before = confirm(_screen(columns, before_markets, before_collateral), subs,
                     before_markets, before_collateral)  # fmt: skip
    screen_s, screen_runs, candidates = timed(
        args.repeat, lambda: _screen(columns, markets, collateral)
    )
    confirm_s, confirm_runs, found = timed(
        args.repeat, lambda: confirm(candidates, subs, markets, collateral)
    )
    rng = np.random.default_rng(args.seed + 1)
    sample = sorted(rng.choice(len(subs), size=args.sample, replace=False).tolist())
    exact_s, exact_runs, exact = timed(
        args.repeat, lambda: exact_scan(subs, sample, markets, collateral)
    )
    sampled = set(sample)
    found_in_sample = [r for r in found if r in sampled]
    assert found_in_sample == exact, (len(found_in_sample), len(exact))
    per_sub_us = exact_s / len(sample) * 1e6
    extrapolated_s = exact_s / len(sample) * len(subs)
    _print(
        args, len(subs), before, candidates, found, (len(exact), len(found_in_sample)), len(sample)
    )
    print(f"columns_from (all {len(subs):,}):  median {columns_s:.3f} s")
    print(
        f"screen (all {len(subs):,}):        median {screen_s * 1e3:.1f} ms  "
        f"(runs {', '.join(f'{s * 1e3:.1f}' for s in screen_runs)})"
    )
    print(
        f"confirm ({len(candidates):,} candidates): median {confirm_s * 1e3:.1f} ms  "
        f"(runs {', '.join(f'{s * 1e3:.1f}' for s in confirm_runs)})"
    )
    print(
        f"exact scan ({len(sample):,} sample):  median {exact_s * 1e3:.1f} ms = "
        f"{per_sub_us:.2f} us/subaccount  (runs "
        f"{', '.join(f'{s * 1e3:.1f}' for s in exact_runs)})"
    )
    print(f"exact scan of all {len(subs):,}: {extrapolated_s:.2f} s EXTRAPOLATED from the sample")
    scan_s = screen_s + confirm_s
    print(f"screen + confirm: {scan_s * 1e3:.1f} ms; ratio extrapolated exact / (screen + "
          f"confirm) = {extrapolated_s / scan_s:.1f}x; with columns_from included: "
          f"{extrapolated_s / (scan_s + columns_s):.1f}x")  # fmt: skip
    if args.full_exact:
        full_s, _, full = timed(
            1, lambda: exact_scan(subs, list(range(len(subs))), markets, collateral)
        )
        assert full == found, (len(full), len(found))
        print(f"exact scan of all {len(subs):,}, measured once: {full_s:.2f} s "
              f"({len(full):,} found, same as screen + confirm)")  # fmt: skip
    print(json.dumps({
        "bench": "liquidation_scan", "subaccounts": len(subs), "candidates": len(candidates),
        "liquidatable": len(found), "columns_s": round(columns_s, 4),
        "screen_s": round(screen_s, 4), "confirm_s": round(confirm_s, 4),
        "exact_us_per_subaccount": round(per_sub_us, 3),
        "exact_extrapolated_s": round(extrapolated_s, 3),
        "ratio": round(extrapolated_s / scan_s, 1),
    }))  # fmt: skip


def _screen(
    columns: RiskColumns,
    markets: dict[MarketId, MarketRisk],
    collateral: dict[AssetId, CollateralPrice],
) -> IndexArray:
    return screen(columns, [markets[m] for m in columns.market_ids],
                  [collateral[a] for a in columns.asset_ids])  # fmt: skip


def _print(
    args: argparse.Namespace,
    total: int,
    before: list[int],
    candidates: IndexArray,
    found: list[int],
    sample_counts: tuple[int, int],
    sample: int,
) -> None:
    print(f"liquidatable before the move: {len(before):,}; after a {args.drop_ppm / 1e4:.0f}% "
          f"drop: {len(found):,} of {total:,} ({len(found) / total:.2%})")  # fmt: skip
    print(f"screen candidates: {len(candidates):,} ({len(candidates) - len(found):,} false)")
    exact, screened = sample_counts
    print(f"on the {sample:,}-subaccount sample: exact scan {exact:,}, screen + confirm "
          f"{screened:,} -> {'SAME' if exact == screened else 'DIFFERENT'}")  # fmt: skip


if __name__ == "__main__":
    main()
