"""Economic attacks, round 12 (docs/RELIABILITY.md): an attacker who counts blocks.

**The triggers' walk budget.** A block fires stop and take-profit orders only until their
matches have walked ``limits.trigger_book_walk_per_block_max`` (2,000) makers' orders; the rest
stay armed and fire first in the blocks after. alice/1 is short 1 BTC at 60,000 on 2,000 USDC
with a stop-market buy at 60,300 (+0.5%); carol quotes 3 BTC 0.05% over the index every block;
the index rises 0.05% a block (1 s blocks, the node's heartbeat: 3% a minute). eve armed,
before alice, stop-market buys at the same trigger price, 10 BTC each from subaccounts holding
1 USDC, and dave rests 1,000 one-lot asks 4.2% over the index: each of eve's stops walks carol's
ask and 999 of dave's, and is refused for eve's margin after the walk, at no cost to anyone. In
id order, two of them spend a block's budget: 16 delayed alice's stop 8 blocks, 32 by 16, and
64 (two subaccounts of one account) past her liquidation: she was liquidated in 22 ladder
steps, eve her keeper (+54.98 USDC, her cost nothing), alice −1,625.61 against −300.14.

The guard (``orders.firing_order``): a block fires the triggers that close their owner's
position first (reduce-only, or against the position and no larger), then the others; in each,
every account takes one turn a round. alice's stop fires in the block the mark reaches it,
reduce-only or not, whether eve arms her 64 from one account or from 64.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from clearhouse.core.ids import OracleId, Side
from clearhouse.core.messages import (
    Command,
    Liquidate,
    Liquidated,
    OrderAccepted,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    TimeInForce,
)
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted

BUY, SELL = Side.BUY, Side.SELL
BTC_USD = OracleId("BTC-USD")
LOT = 100_000  # the perpetual's size step: 0.001 BTC
STOP = PRICE * 1005 // 1000  # alice's stop, and the attacker's
# Set by tests/scenarios/mutate_guards.py in its scratch copy to the guard it removed there.
GUARD_REMOVED = os.environ.get("CLEARHOUSE_GUARD_REMOVED", "")


@dataclass(frozen=True)
class StopRun:
    delay_blocks: int | None  # blocks from the mark reaching alice's stop to its firing
    alice: int  # alice/1's equity change, USDC quantums
    attacker: int  # every attacker account's equity change (keeper rewards included)
    liquidated: bool  # alice/1 reached the ladder


def _stop(venue: Venue, trader: str, size: int, number: int = 1, **fields: Any) -> PlaceOrder:
    return venue.order(
        trader, BTC_PERP, BUY, size, 0, number=number, order_type=OrderType.STOP_MARKET,
        time_in_force=TimeInForce.IOC, trigger_price_quantums=STOP, **fields,
    )  # fmt: skip


def _stop_loss_run(walkers: int, *, accounts: int = 1, reduce_only: bool = True) -> StopRun:
    """alice/1's stop-loss on a rising index, after ``walkers`` of the attacker's walking stops
    armed earlier from ``accounts`` accounts (eve's subaccounts 1.. when one; else sybils
    s0.., one subaccount each)."""
    sybils = [f"s{k}" for k in range(accounts)] if accounts > 1 else []
    attackers = ["eve", *sybils]
    venue = Venue(traders=("alice", "bob", "carol", "dave", *attackers), block_ns=10**9)
    venue.check = False  # the set-up's thousand placements; the run itself is checked
    venue.block([venue.deposit("alice", 2_000 * USDC, number=1)])
    accepted(venue, venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE))
    accepted(venue, venue.order("alice", BTC_PERP, SELL, ONE_BTC, PRICE, number=1))
    venue.block([venue.deposit("dave", 100_000 * USDC, number=k) for k in (1, 2, 3, 4)])
    venue.block([venue.order("dave", BTC_PERP, SELL, LOT, PRICE * 1042 // 1000 + i * LOT,
                             number=1 + i % 4) for i in range(1_000)])  # fmt: skip
    walking = {"slippage_ppm": 50_000}
    if sybils:
        venue.block([venue.deposit(s, USDC, number=1) for s in sybils])
        venue.block([_stop(venue, s, 10 * ONE_BTC, **walking) for s in sybils[:walkers]])
    elif walkers:
        venue.block([venue.deposit("eve", USDC, number=1 + k) for k in range((walkers + 31) // 32)])
        venue.block([
            _stop(venue, "eve", 10 * ONE_BTC, 1 + i // 32, **walking) for i in range(walkers)
        ])  # fmt: skip
    armed = venue.block(
        [_stop(venue, "alice", ONE_BTC, slippage_ppm=20_000, reduce_only=reduce_only)]
    )
    alice_stop = next(e for e in armed.of(0) if isinstance(e, OrderAccepted)).order_id
    numbers = {a: [n for n in range(129) if venue.sub(a, n) in venue.state.ledger.subaccounts]
               for a in attackers}  # fmt: skip

    def attackers_equity() -> int:
        return sum(venue.risk(a, n).equity for a in attackers for n in numbers[a])

    alice, attacker = venue.risk("alice", 1).equity, attackers_equity()
    venue.check = True
    reached = fired = None
    liquidated = False
    for block in range(60):
        venue.prices[BTC_USD] = PRICE * (1_000_000 + 500 * (block + 1)) // 1_000_000
        commands: list[Command] = [venue.cancel_all("carol", BTC_PERP)] if block else []
        ask = venue.index() * 10_005 // 10_000
        commands.append(venue.order("carol", BTC_PERP, SELL, 3 * ONE_BTC, ask - ask % USDC))
        commands.append(Liquidate(  # eve keeps: a keeper goes before the protocol's ladder
            **venue._common(venue.signers["eve"], None), subaccount_number=0,
            owner=venue.address("alice"), owner_number=1,
        ))  # fmt: skip
        events = venue.block(commands).events
        if reached is None and venue.mark() >= STOP:
            reached = block
        if any(isinstance(e, OrderTriggered) and e.order_id == alice_stop for e in events):
            fired = block
        liquidated |= any(isinstance(e, Liquidated) and e.subaccount == str(venue.sub("alice", 1))
                          for e in events)  # fmt: skip
        if venue.position("alice", BTC_PERP, 1)[0] == 0:
            break
    assert reached is not None
    return StopRun(
        delay_blocks=None if fired is None else fired - reached,
        alice=venue.risk("alice", 1).equity - alice,
        attacker=attackers_equity() - attacker,
        liquidated=liquidated,
    )



@pytest.mark.slow
@pytest.mark.skipif(GUARD_REMOVED != "closing triggers first", reason="the guard is in place")
def test_walking_stops_armed_earlier_delay_a_stop_loss_past_liquidation_and_pay() -> None:
    """In plain id order (the guard removed), two of eve's walking stops spend a block's
    budget: alice's stop-loss waits a block for every two, and 64 of them outlast her margin."""
    honest = _stop_loss_run(0)
    assert honest == StopRun(0, honest.alice, 0, False)
    assert [_stop_loss_run(n).delay_blocks for n in (16, 32)] == [8, 16]
    attacked = _stop_loss_run(64)
    assert attacked.delay_blocks is None and attacked.liquidated  # her stop never fired
    # Measured: alice −1,625.61 against −300.14, eve +54.98 as her keeper, at no cost.
    assert attacked.alice < honest.alice - 1_300 * USDC, (attacked, honest)
    assert 50 * USDC < attacked.attacker < 60 * USDC, attacked
    sybils = _stop_loss_run(64, accounts=64, reduce_only=False)
    assert sybils.liquidated and sybils.attacker > 50 * USDC, sybils


@pytest.mark.slow
def test_closing_triggers_fire_first_and_the_walking_stops_pay_nothing() -> None:
    """The guard: alice's stop closes her position, so it fires before every opening trigger
    and in the block the mark reaches it, whoever armed what before her."""
    honest = _stop_loss_run(0)
    for attacked in (
        _stop_loss_run(64),
        _stop_loss_run(64, reduce_only=False),  # against her short, no larger: it closes
        _stop_loss_run(64, accounts=64, reduce_only=False),
    ):
        assert attacked == honest == StopRun(0, honest.alice, 0, False), attacked
    assert -301 * USDC < honest.alice < -300 * USDC  # the stop's +0.5%, at carol's ask
