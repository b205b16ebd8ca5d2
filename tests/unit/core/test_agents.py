"""Agent keys (SPEC §3): an account lets another key trade and cancel for it, never withdraw
or authorize; authorizations expire and can be revoked; nonces belong to the signing key."""

from __future__ import annotations

import pytest

from clearhouse.core.codec import encode_command
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import Address, Side
from clearhouse.core.messages import (
    AgentAuthorized,
    AgentRevoked,
    AgentSigned,
    AuthorizeAgent,
    Command,
    OrderRested,
    RevokeAgent,
)
from clearhouse.core.units import NS_PER_HOUR
from clearhouse.sim.signer import Signer
from clearhouse.sim.venue import USDC, address_of
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type, rejected

AGENT = Signer(address_of("alice-trading-bot"))
DAY = 24 * NS_PER_HOUR


def authorize(venue: Venue, valid_for_ns: int = DAY, agent: Address = AGENT.address) -> Command:
    alice = venue.signers["alice"]
    return AuthorizeAgent(
        signer=alice.address, nonce=alice.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        agent=agent, valid_until_ns=venue.now + valid_for_ns,
    )  # fmt: skip


def by_agent(venue: Venue, command: Command) -> AgentSigned:
    """``command`` (alice's) as its agent signs it: with the agent's own nonce."""
    import dataclasses

    return AgentSigned(dataclasses.replace(command, nonce=AGENT.nonce(venue.now)), AGENT.address)


def test_an_agent_may_place_and_cancel_for_the_account() -> None:
    venue = Venue()
    events = accepted(venue, authorize(venue))[0]
    assert of_type(events, AgentAuthorized)
    order = by_agent(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE - 100 * USDC))
    events = venue.run(order)  # type: ignore[arg-type]
    rested = of_type(events, OrderRested)
    assert rested and venue.state.ledger.subaccounts[venue.sub("alice")].order_ids
    assert AGENT.address in venue.state.nonces  # the agent's key consumed its own nonce
    cancel = by_agent(venue, venue.cancel_all("alice"))
    venue.run(cancel)  # type: ignore[arg-type]
    assert not venue.state.ledger.subaccounts[venue.sub("alice")].order_ids


@pytest.mark.parametrize("kind", ["withdraw", "transfer", "authorize"])
def test_an_agent_may_not_withdraw_transfer_or_authorize(kind: str) -> None:
    venue = Venue()
    accepted(venue, authorize(venue))
    command = {
        "withdraw": venue.withdraw("alice", 10 * USDC),
        "transfer": venue.transfer("alice", 10 * USDC),
        "authorize": authorize(venue, agent=address_of("another-bot")),
    }[kind]
    rejection = venue.block([by_agent(venue, command)]).rejection(0)
    assert rejection is not None and rejection.reason is RejectReason.AGENT_NOT_ALLOWED


def test_a_key_that_is_not_an_agent_cannot_act_for_the_account() -> None:
    venue = Venue()
    order = by_agent(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE))
    rejection = venue.block([order]).rejection(0)
    assert rejection is not None and rejection.reason is RejectReason.AGENT_NOT_AUTHORIZED


def test_revoked_and_expired_agents_are_refused() -> None:
    venue = Venue()
    accepted(venue, authorize(venue))
    alice = venue.signers["alice"]
    revoke = RevokeAgent(
        signer=alice.address, nonce=alice.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        agent=AGENT.address,
    )  # fmt: skip
    assert of_type(accepted(venue, revoke)[0], AgentRevoked)
    order = by_agent(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE))
    rejection = venue.block([order]).rejection(0)
    assert rejection is not None and rejection.reason is RejectReason.AGENT_NOT_AUTHORIZED
    accepted(venue, authorize(venue, valid_for_ns=10 * 10**9))
    venue.advance(20 * 10**9)
    order = by_agent(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE))
    rejection = venue.block([order]).rejection(0)
    assert rejection is not None and rejection.reason is RejectReason.AGENT_NOT_AUTHORIZED


def test_authorizations_are_bounded() -> None:
    venue = Venue()
    rejected(venue, authorize(venue, valid_for_ns=181 * DAY), RejectReason.INVALID_PARAMETERS)
    rejected(venue, authorize(venue, valid_for_ns=0), RejectReason.INVALID_PARAMETERS)
    alice = venue.address("alice")
    rejected(venue, authorize(venue, agent=alice), RejectReason.MALFORMED_COMMAND)
    for n in range(8):
        accepted(venue, authorize(venue, agent=address_of(f"bot-{n}")))
    rejected(venue, authorize(venue, agent=address_of("bot-9")), RejectReason.INVALID_PARAMETERS)
    accepted(venue, authorize(venue, agent=address_of("bot-3"), valid_for_ns=2 * DAY))  # renew


def test_the_journal_keeps_the_agent_and_replay_applies_it_again() -> None:
    venue = Venue()
    accepted(venue, authorize(venue))
    order = by_agent(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE - 100 * USDC))
    venue.run(encode_command(order))  # as journal bytes
    assert venue.replay() == venue.recorded_stream()
