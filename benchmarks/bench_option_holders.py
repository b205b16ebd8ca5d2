"""What option buyers cost a block: a venue where N subaccounts each bought 0.01 BTC of a call
from one writer, then blocks of price reports only (the index walks ±0.2% a block).

Usage: python benchmarks/bench_option_holders.py [--buyers 100 1000 5000] [--blocks 40]

Per size it prints the median CPU time of a block (``begin_block`` + the reports +
``end_block``, the state root included) and how many subaccounts the next liquidation pass
would examine (``watch.suspects``). Every buyer holds long options alone, paid for with its
own quote: the liquidation watch tracks such a holder without a band, so neither number
should grow with N (before 2026-12-07 each was examined in every block).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from clearhouse.core.engine import Engine
from clearhouse.core.engine.liquidation import watch
from clearhouse.core.ids import Address, AssetId, MarketId, OracleId, Side, SubaccountId
from clearhouse.core.messages import (
    Command,
    CommandRejected,
    Deposit,
    PlaceOrder,
    PriceReport,
    ReportPrices,
    TimeInForce,
)
from clearhouse.core.params import MarketKind
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND
from clearhouse.sim.venue import (
    BTC_SATS,
    GENESIS_NS,
    USDC,
    VenueSpec,
    address_of,
    default_venue,
    genesis_commands,
    report_surface,
    synthetic_surface,
)

BLOCK_NS = NS_PER_SECOND
FAR_NS = 10**15  # a command expires this long after its block: never in the way


class Run:
    def __init__(self, spec: VenueSpec) -> None:
        self.spec = spec
        self.engine = Engine(spec.venue)
        self.now = GENESIS_NS
        self.height = 0
        self.nonce = GENESIS_NS // NS_PER_MS + 1_000
        self.btc_quantums = 60_000 * USDC

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def block(self, commands: list[Command]) -> int:
        """One block; its CPU time in ns. Every command must be accepted."""
        self.height += 1
        self.now += BLOCK_NS
        started = time.process_time_ns()
        events = self.engine.begin_block(self.height, self.now)
        for index, command in enumerate(commands):
            events += self.engine.apply(index, command)
        self.engine.end_block()
        spent = time.process_time_ns() - started
        refused = [e for e in events if isinstance(e, CommandRejected)]
        assert not refused, refused[:3]
        return spent

    def reports(self, surface: bool) -> list[Command]:
        at = self.now + BLOCK_NS
        commands: list[Command] = []
        for publisher in self.spec.publishers:
            prices = (("BTC-USD", self.btc_quantums), ("ETH-USD", 3_000 * USDC),
                      ("USDT-USD", USDC))  # fmt: skip
            commands.append(ReportPrices(
                signer=publisher, nonce=self.next_nonce(), expiry_ns=self.now + FAR_NS,
                reports=tuple(
                    PriceReport(oracle_id=OracleId(o), price_quantums=p, confidence_quantums=0,
                                timestamp_ns=at)
                    for o, p in prices
                ),
            ))  # fmt: skip
            if surface:
                commands.append(
                    report_surface(publisher, self.next_nonce(), at, synthetic_surface(at))
                )
        return commands

    def deposit(self, owner: Address, amount_quantums: int, deposit_id: int) -> Deposit:
        return Deposit(
            signer=self.spec.relayer, nonce=self.next_nonce(), expiry_ns=self.now + FAR_NS,
            deposit_id=deposit_id, owner=owner, subaccount_number=0,
            asset_id=AssetId("USDC"), amount_quantums=amount_quantums,
        )  # fmt: skip

    def order(self, owner: Address, market_id: MarketId, side: Side, size: int, price: int,
              tif: TimeInForce) -> PlaceOrder:  # fmt: skip
        return PlaceOrder(
            signer=owner, nonce=self.next_nonce(), expiry_ns=self.now + FAR_NS, subaccount_number=0,
            market_id=market_id, side=side, size_base_quantums=size, price_quantums=price,
            time_in_force=tif,
        )  # fmt: skip

    def a_call(self) -> MarketId:
        """The active call with the highest mark (the nearest the money)."""
        calls = [
            m for m in self.engine.state.markets.values()
            if m.params.kind is MarketKind.OPTION and m.status is MarketStatus.ACTIVE
            and m.mark_price_quantums > 0 and m.params.market_id.endswith("-C")
        ]  # fmt: skip
        nearest = max(calls, key=lambda m: (m.mark_price_quantums, m.params.market_id))
        return nearest.params.market_id


def build(buyers: int) -> tuple[Run, list[Address]]:
    spec = default_venue(
        GENESIS_NS, options=True, oracle_staleness_ns=3_600 * NS_PER_SECOND,
        series_strikes_each_side=1,
    )  # fmt: skip
    run = Run(spec)
    run.block([*genesis_commands(spec), *run.reports(surface=True)])
    writer = address_of("bench-writer")
    owners = [address_of(f"bench-buyer-{i}") for i in range(buyers)]
    deposits = [run.deposit(writer, 10**9 * USDC, 1)]
    deposits += [run.deposit(o, 5_000 * USDC, i + 2) for i, o in enumerate(owners)]
    run.block(deposits + run.reports(surface=True))
    call = run.a_call()
    size = BTC_SATS // 100
    market = run.engine.state.markets[call]
    price = market.mark_price_quantums * 102 // 100 // USDC * USDC
    run.block([run.order(writer, call, Side.SELL, size * buyers, price, TimeInForce.GTC)])
    run.block([run.order(o, call, Side.BUY, size, price, TimeInForce.IOC) for o in owners])
    held = run.engine.state.ledger.subaccounts
    assert all(held[SubaccountId(o, 0)].positions[call].size_base_quantums == size for o in owners)
    return run, owners


def measure(buyers: int, blocks: int, seed: int) -> tuple[float, int]:
    run, _ = build(buyers)
    rng = random.Random(seed)
    spent = []
    for height in range(blocks):
        step = rng.randint(-2_000, 2_000)  # ppm of the index: ±0.2%
        run.btc_quantums = run.btc_quantums * (1_000_000 + step) // 1_000_000
        spent.append(run.block(run.reports(surface=height % 10 == 0)))
    return statistics.median(spent) / 1e6, len(watch.suspects(run.engine.ctx))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buyers", type=int, nargs="+", default=[100, 1_000, 5_000])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for buyers in args.buyers:
        block_ms, examined = measure(buyers, args.blocks, args.seed)
        print(f"{buyers:>7} option buyers: block {block_ms:7.2f} ms (median of "
              f"{args.blocks}), next pass examines {examined}")  # fmt: skip


if __name__ == "__main__":
    main()
