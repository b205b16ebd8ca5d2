"""Governance commands under EIP-712: a wallet signs a proposal (nested, optional structs) as
the node recovers it; an approval signed for another venue's domain recovers to another key,
which the engine refuses without a trace (an agent may never govern)."""

from __future__ import annotations

import dataclasses

from clearhouse.app import signing
from clearhouse.app.signing import Domain
from clearhouse.client.wallet import Wallet
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId
from clearhouse.core.messages import (
    ActionKind,
    AgentSigned,
    ApproveProposal,
    GovAction,
    Propose,
    SetupGovernance,
)
from clearhouse.core.params import GovernanceParams
from clearhouse.core.units import NS_PER_HOUR
from clearhouse.sim.signer import Signer
from helpers import BTC_PERP, Venue, accepted, rejected

VENUE = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
OTHER_VENUE = Domain(chain_id=31337, verifying_contract="0x" + "22" * 20)
COUNCIL = [Wallet(bytes([i + 1]) * 32) for i in range(3)]


def _governed_venue() -> tuple[Venue, int]:
    venue = Venue()
    params = GovernanceParams(
        council=tuple(sorted(w.address for w in COUNCIL)), threshold=2, timelock_ns=NS_PER_HOUR
    )
    operator = venue.operator
    setup = SetupGovernance(
        signer=operator.address, nonce=operator.nonce(venue.now),
        expiry_ns=venue.now + NS_PER_HOUR, params=params,
    )  # fmt: skip
    accepted(venue, setup)
    proposer = Signer(COUNCIL[0].address)
    action = GovAction(
        kind=ActionKind.SET_PARAM, name="market.taker_fee_ppm", target=BTC_PERP, value=750
    )
    propose = Propose(
        signer=proposer.address, nonce=proposer.nonce(venue.now),
        expiry_ns=venue.now + NS_PER_HOUR, actions=(action,),
    )  # fmt: skip
    accepted(venue, propose)
    return venue, 1


def test_a_wallet_signs_a_listing_proposal_as_the_node_recovers_it() -> None:
    venue = Venue()
    market = dataclasses.replace(
        venue.state.markets[MarketId(BTC_PERP)].params, market_id=MarketId("BTC-PERP-2")
    )
    proposal = Propose(
        signer=COUNCIL[0].address, nonce=1, expiry_ns=2,
        actions=(GovAction(kind=ActionKind.LIST_MARKET, market=market),), memo="list it",
    )  # fmt: skip
    by_wallet = COUNCIL[0].sign_as_wallet(proposal, VENUE)
    assert by_wallet == COUNCIL[0].sign(proposal, VENUE)
    assert signing.authenticate(proposal, by_wallet, VENUE) == proposal


def test_an_approval_signed_for_another_venue_is_refused_and_changes_nothing() -> None:
    venue, proposal_id = _governed_venue()
    approver = Signer(COUNCIL[1].address)
    approval = ApproveProposal(
        signer=approver.address, nonce=approver.nonce(venue.now),
        expiry_ns=venue.now + NS_PER_HOUR, proposal_id=proposal_id,
    )  # fmt: skip
    foreign = signing.authenticate(approval, COUNCIL[1].sign(approval, OTHER_VENUE), VENUE)
    assert isinstance(foreign, AgentSigned) and foreign.agent != COUNCIL[1].address
    result = venue.block([foreign], reports=False)
    assert result.rejection(0) is not None
    assert result.rejection(0).reason is RejectReason.AGENT_NOT_AUTHORIZED  # type: ignore[union-attr]
    gov = venue.state.governance
    assert gov is not None and gov.proposals[proposal_id].approvals == [COUNCIL[0].address]
    own = signing.authenticate(approval, COUNCIL[1].sign(approval, VENUE), VENUE)
    assert own == approval
    accepted(venue, approval)
    assert len(gov.proposals[proposal_id].approvals) == 2
    rejected(venue, approval, RejectReason.NONCE_ALREADY_USED, consumed=False)
