"""The dead-man's switch (``ScheduleCancel``): a subaccount's orders all go at the first block
whose time reaches the schedule; moving or clearing it in time keeps them; bounds refused."""

from __future__ import annotations

import dataclasses

import pytest

from clearhouse.core import limits
from clearhouse.core.engine import Engine
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import Side
from clearhouse.core.messages import (
    AgentSigned,
    CancelCause,
    CancelScheduled,
    OrderCancelled,
    ScheduleCancel,
)
from clearhouse.core.state import scheduled_cancel_key
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.signer import Signer
from clearhouse.sim.venue import USDC, address_of
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type, rejected


def schedule(venue: Venue, trader: str, at_ns: int, *, number: int = 0) -> ScheduleCancel:
    signer = venue.signers[trader]
    return ScheduleCancel(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        subaccount_number=number, cancel_at_ns=at_ns,
    )  # fmt: skip


def rest_two_orders(venue: Venue, trader: str = "alice") -> None:
    accepted(
        venue,
        venue.order(trader, BTC_PERP, Side.BUY, ONE_BTC, PRICE - 100 * USDC),
        venue.order(trader, BTC_PERP, Side.SELL, ONE_BTC, PRICE + 100 * USDC),
    )


def open_orders(venue: Venue, trader: str = "alice") -> int:
    return len(venue.state.ledger.subaccounts[venue.sub(trader)].order_ids)


def test_the_switch_cancels_every_order_once_its_time_comes_and_not_before() -> None:
    venue = Venue()
    rest_two_orders(venue)
    rest_two_orders(venue, "bob")
    at_ns = venue.now + 10 * NS_PER_SECOND
    events = accepted(venue, schedule(venue, "alice", at_ns))[0]
    assert of_type(events, CancelScheduled)[0].cancel_at_ns == at_ns
    venue.advance(5 * NS_PER_SECOND)  # the switch was set one block ago: 6 s have passed
    assert open_orders(venue) == 2
    fired = venue.advance(5 * NS_PER_SECOND)
    cancelled = of_type(fired, OrderCancelled)
    assert len(cancelled) == 2
    assert {c.cause for c in cancelled} == {CancelCause.SCHEDULED}
    assert open_orders(venue) == 0
    assert open_orders(venue, "bob") == 2  # another account's orders are its own business
    assert venue.sub("alice") not in venue.state.scheduled_cancels
    assert scheduled_cancel_key(venue.sub("alice")) not in venue.state.tree
    assert not venue.engine.ctx.derived.cancel_queue


def test_a_heartbeat_that_moves_the_switch_later_keeps_the_orders() -> None:
    venue = Venue()
    rest_two_orders(venue)
    for _ in range(4):  # every 5 s, the client pushes the deadline 10 s out
        accepted(venue, schedule(venue, "alice", venue.now + 10 * NS_PER_SECOND))
        venue.advance(5 * NS_PER_SECOND)
    assert open_orders(venue) == 2
    assert len(venue.engine.ctx.derived.cancel_queue) == 1  # moved, never stacked
    venue.advance(15 * NS_PER_SECOND)  # the client went quiet
    assert open_orders(venue) == 0


def test_clearing_the_switch_keeps_the_orders() -> None:
    venue = Venue()
    rest_two_orders(venue)
    accepted(venue, schedule(venue, "alice", venue.now + 10 * NS_PER_SECOND))
    events = accepted(venue, schedule(venue, "alice", 0))[0]
    assert of_type(events, CancelScheduled)[0].cancel_at_ns == 0
    venue.advance(30 * NS_PER_SECOND)
    assert open_orders(venue) == 2
    assert scheduled_cancel_key(venue.sub("alice")) not in venue.state.tree


@pytest.mark.parametrize(
    "offset_ns",
    [
        0,
        limits.scheduled_cancel_delay_min_ns - 1,
        limits.scheduled_cancel_horizon_max_ns + 2 * NS_PER_SECOND,
        -NS_PER_SECOND,
    ],
)
def test_a_schedule_too_soon_or_too_far_is_refused(offset_ns: int) -> None:
    venue = Venue()
    # The command runs in the next block, one block time after venue.now.
    at_ns = venue.now + venue.block_ns + offset_ns
    rejected(venue, schedule(venue, "alice", at_ns), RejectReason.SCHEDULE_OUT_OF_RANGE)
    assert not venue.state.scheduled_cancels


def test_an_agent_may_set_the_switch() -> None:
    from clearhouse.core.messages import AuthorizeAgent

    venue = Venue()
    agent = Signer(address_of("alice-quoting-bot"))
    alice = venue.signers["alice"]
    accepted(venue, AuthorizeAgent(
        signer=alice.address, nonce=alice.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        agent=agent.address, valid_until_ns=venue.now + 24 * NS_PER_HOUR,
    ))  # fmt: skip
    rest_two_orders(venue)
    command = dataclasses.replace(
        schedule(venue, "alice", venue.now + 6 * NS_PER_SECOND), nonce=agent.nonce(venue.now)
    )
    events = venue.run(AgentSigned(command, agent.address))  # type: ignore[arg-type]
    assert of_type(events, CancelScheduled)
    venue.advance(10 * NS_PER_SECOND)
    assert open_orders(venue) == 0


def test_a_restored_engine_fires_the_same_switches_with_the_same_root() -> None:
    venue = Venue()
    rest_two_orders(venue)
    accepted(venue, schedule(venue, "alice", venue.now + 10 * NS_PER_SECOND))
    restored = Engine.from_state(venue.state)  # rebuilds the queue from committed state
    assert restored.state.tree.root() == venue.engine.state.tree.root()
    assert list(restored.ctx.derived.cancel_queue) == [
        (venue.state.scheduled_cancels[venue.sub("alice")], venue.sub("alice"))
    ]
