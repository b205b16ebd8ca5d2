"""Governance (SPEC §10) through the engine: the council's proposals and their timelock, the
steward's bounded steps, the guardian that only reduces risk, margin phase-ins, listing by
proposal, and the settlement fallback of §8. Every attack is rejected with its code and changes
nothing but its signer's nonce (``helpers.rejected`` compares the whole state, governance
included)."""

from __future__ import annotations

import dataclasses

from clearhouse.core import limits
from clearhouse.core.engine import Engine
from clearhouse.core.errors import RejectReason
from clearhouse.core.governance import REGISTRY, ProposalStatus, Role, change_refusal
from clearhouse.core.ids import MarketId, Side
from clearhouse.core.messages import (
    ActionKind,
    ApproveProposal,
    CancelCause,
    CancelProposal,
    Command,
    Deposit,
    DisputeSettlement,
    ExecuteProposal,
    GovAction,
    GuardianAct,
    Liquidated,
    ListMarket,
    MarketFlagsChanged,
    MarketSettled,
    OrderCancelled,
    ParamChanged,
    Propose,
    QueueProposal,
    SetupGovernance,
    StewardUpdate,
)
from clearhouse.core.params import GovernanceParams, MarketParams
from clearhouse.core.state import MarketStatus, governed_param_key, proposal_key
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.signer import Signer
from clearhouse.sim.venue import USDC, address_of
from helpers import BTC_PERP, BTC_USD, ONE_BTC, PRICE, Venue, accepted, of_type, rejected

IM = "market.margin.initial_margin_ppm"
HOUR = NS_PER_HOUR
DAY = 24 * NS_PER_HOUR


class Governed:
    """The default venue handed to a council of three (two to approve), a steward and a
    guardian, with a one-hour timelock and a one-hour phase-in."""

    def __init__(self, *, phase_in_ns: int = HOUR, **venue_options: object) -> None:
        self.venue = Venue(**venue_options)  # type: ignore[arg-type]
        self.council = [Signer(address_of(f"council-{i}")) for i in range(3)]
        self.steward = Signer(address_of("steward"))
        self.guardian = Signer(address_of("guardian"))
        self.params = GovernanceParams(
            council=tuple(sorted(s.address for s in self.council)), threshold=2,
            steward=self.steward.address, guardian=self.guardian.address, timelock_ns=HOUR,
            phase_in_ns=phase_in_ns,
        )  # fmt: skip
        accepted(self.venue, self.command(self.venue.operator, SetupGovernance, params=self.params))

    def command(self, signer: Signer, kind: type[Command], **fields: object) -> Command:
        venue = self.venue
        return kind(
            signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + DAY,
            **fields,
        )  # fmt: skip

    def propose(self, *actions: GovAction, by: int = 0) -> int:
        gov = self.venue.state.governance
        assert gov is not None
        proposal_id = gov.next_proposal_id
        accepted(self.venue, self.command(self.council[by], Propose, actions=actions))
        return proposal_id

    def approve(self, proposal_id: int, by: int) -> None:
        accepted(
            self.venue, self.command(self.council[by], ApproveProposal, proposal_id=proposal_id)
        )

    def queue(self, proposal_id: int) -> None:
        accepted(self.venue, self.command(self.council[0], QueueProposal, proposal_id=proposal_id))

    def execute(self, proposal_id: int, by: Signer | None = None) -> list[object]:
        signer = by or Signer(address_of("anyone"))
        command = self.command(signer, ExecuteProposal, proposal_id=proposal_id)
        return list(accepted(self.venue, command)[0])

    def wait(self, duration_ns: int) -> None:
        """Let block time pass; prices fresh again at the end."""
        self.venue.block(dt_ns=duration_ns)
        self.venue.block()
        self.venue.block()

    def enact(self, *actions: GovAction) -> list[object]:
        """Propose, approve, queue, wait out the timelock, execute."""
        proposal_id = self.propose(*actions)
        self.approve(proposal_id, 1)
        self.queue(proposal_id)
        self.wait(HOUR)
        return self.execute(proposal_id)

    def market(self, market: str = BTC_PERP) -> MarketParams:
        return self.venue.state.markets[MarketId(market)].params


def set_param(name: str, value: int, target: str = BTC_PERP) -> GovAction:
    return GovAction(kind=ActionKind.SET_PARAM, name=name, target=target, value=value)


def flag(kind: ActionKind, market: str = BTC_PERP) -> GovAction:
    return GovAction(kind=kind, target=market)


# ── The council and its timelock ─────────────────────────────────────────────────────────


def test_a_proposal_takes_effect_only_after_approval_queue_and_timelock() -> None:
    gov = Governed()
    proposal_id = gov.propose(set_param("market.taker_fee_ppm", 750))
    gov.approve(proposal_id, 1)
    gov.queue(proposal_id)
    gov.wait(HOUR)
    events = gov.execute(proposal_id)
    [changed] = of_type(events, ParamChanged)  # type: ignore[arg-type]
    assert (changed.old_value, changed.new_value, changed.role) == (500, 750, Role.COUNCIL)
    assert gov.market().taker_fee_ppm == 750
    state = gov.venue.state
    assert state.governance is not None
    assert state.governance.proposals[proposal_id].status is ProposalStatus.EXECUTED
    assert proposal_key(proposal_id) in state.tree
    assert governed_param_key("market.taker_fee_ppm", BTC_PERP) in state.tree


def test_execution_before_the_timelock_ends_is_refused() -> None:
    gov = Governed()
    proposal_id = gov.propose(set_param("market.taker_fee_ppm", 750))
    gov.approve(proposal_id, 1)
    gov.queue(proposal_id)
    gov.venue.block(dt_ns=HOUR - 10 * NS_PER_SECOND)
    anyone = Signer(address_of("anyone"))
    execute = gov.command(anyone, ExecuteProposal, proposal_id=proposal_id)
    rejected(gov.venue, execute, RejectReason.TIMELOCK_NOT_ELAPSED)
    assert gov.market().taker_fee_ppm == 500


def test_a_proposal_with_one_signature_short_of_the_threshold_cannot_be_queued() -> None:
    gov = Governed()
    proposal_id = gov.propose(set_param("market.taker_fee_ppm", 750))  # 1 of the 2 needed
    queue = gov.command(gov.council[0], QueueProposal, proposal_id=proposal_id)
    rejected(gov.venue, queue, RejectReason.QUORUM_NOT_MET)
    execute = gov.command(gov.council[0], ExecuteProposal, proposal_id=proposal_id)
    rejected(gov.venue, execute, RejectReason.PROPOSAL_NOT_OPEN)


def test_a_replayed_approval_is_refused_and_counts_once() -> None:
    gov = Governed()
    proposal_id = gov.propose(set_param("market.taker_fee_ppm", 750))
    approval = gov.command(gov.council[1], ApproveProposal, proposal_id=proposal_id)
    accepted(gov.venue, approval)
    rejected(gov.venue, approval, RejectReason.NONCE_ALREADY_USED, consumed=False)  # same bytes
    again = gov.command(gov.council[1], ApproveProposal, proposal_id=proposal_id)
    rejected(gov.venue, again, RejectReason.ALREADY_APPROVED)  # freshly signed: still once
    state = gov.venue.state.governance
    assert state is not None and len(state.proposals[proposal_id].approvals) == 2


def test_an_outsider_can_neither_propose_nor_approve() -> None:
    gov = Governed()
    outsider = Signer(address_of("outsider"))
    action = set_param("market.taker_fee_ppm", 750)
    rejected(
        gov.venue,
        gov.command(outsider, Propose, actions=(action,)),
        RejectReason.UNAUTHORIZED_SIGNER,
    )
    proposal_id = gov.propose(action)
    approval = gov.command(outsider, ApproveProposal, proposal_id=proposal_id)
    rejected(gov.venue, approval, RejectReason.UNAUTHORIZED_SIGNER)


def test_the_guardian_cancels_a_queued_proposal_and_it_never_executes() -> None:
    gov = Governed()
    proposal_id = gov.propose(set_param("market.taker_fee_ppm", 750))
    gov.approve(proposal_id, 1)
    gov.queue(proposal_id)
    accepted(gov.venue, gov.command(gov.guardian, CancelProposal, proposal_id=proposal_id))
    gov.wait(HOUR)
    execute = gov.command(gov.council[0], ExecuteProposal, proposal_id=proposal_id)
    rejected(gov.venue, execute, RejectReason.PROPOSAL_NOT_OPEN)
    assert gov.market().taker_fee_ppm == 500


def test_a_proposal_applies_all_its_actions_or_none() -> None:
    gov = Governed()
    good = set_param("market.taker_fee_ppm", 750)
    # Valid when proposed; by execution the steward has moved the maker fee past what the
    # proposal's taker fee allows (maker <= taker), so the second action fails: nothing applies.
    proposal_id = gov.propose(good, set_param("market.maker_fee_ppm", 350))
    gov.approve(proposal_id, 1)
    gov.queue(proposal_id)
    gov.wait(HOUR)
    accepted(
        gov.venue,
        gov.command(gov.steward, StewardUpdate, actions=(set_param("market.maker_fee_ppm", 350),)),
    )
    execute = gov.command(gov.council[0], ExecuteProposal, proposal_id=proposal_id)
    rejected(gov.venue, execute, RejectReason.INVALID_PARAMETERS)  # 350 -> 350: no change
    assert gov.market().taker_fee_ppm == 500


# ── Bounds, steps and cooldowns ──────────────────────────────────────────────────────────


def test_a_change_beyond_its_hard_bound_is_refused_even_when_proposed() -> None:
    gov = Governed()
    beyond = set_param(IM, REGISTRY[IM].upper + 1)
    rejected(
        gov.venue,
        gov.command(gov.council[0], Propose, actions=(beyond,)),
        RejectReason.PARAM_OUT_OF_BOUNDS,
    )
    below = set_param(IM, REGISTRY[IM].lower - 1)
    rejected(
        gov.venue,
        gov.command(gov.steward, StewardUpdate, actions=(below,)),
        RejectReason.PARAM_OUT_OF_BOUNDS,
    )
    rejected(
        gov.venue,
        gov.command(gov.guardian, GuardianAct, actions=(beyond,)),
        RejectReason.PARAM_OUT_OF_BOUNDS,
    )


def test_the_steward_moves_one_step_per_cooldown_and_no_more() -> None:
    gov = Governed()
    step = REGISTRY[IM].step
    base = gov.market().margin.initial_margin_ppm
    too_far = set_param(IM, base + step + 1)
    rejected(
        gov.venue,
        gov.command(gov.steward, StewardUpdate, actions=(too_far,)),
        RejectReason.PARAM_STEP_TOO_LARGE,
    )
    accepted(
        gov.venue, gov.command(gov.steward, StewardUpdate, actions=(set_param(IM, base + step),))
    )
    second = set_param(IM, base + 2 * step)
    rejected(
        gov.venue,
        gov.command(gov.steward, StewardUpdate, actions=(second,)),
        RejectReason.PARAM_COOLDOWN,
    )
    gov.wait(REGISTRY[IM].cooldown_ns)
    accepted(gov.venue, gov.command(gov.steward, StewardUpdate, actions=(second,)))
    assert gov.market().margin.initial_margin_ppm == base + 2 * step


def test_no_vote_loosens_a_parameter_faster_than_its_cooldown() -> None:
    gov = Governed()
    share = "market.margin.maintenance_share_ppm"
    step = REGISTRY[share].step
    base = gov.market().margin.maintenance_share_ppm
    # The council may lower the maintenance share by one step; a second step inside the
    # cooldown is refused at execution (and two steps at once when proposed), however many
    # signed it.
    gov.enact(set_param(share, base - step))
    proposal_id = gov.propose(set_param(share, base - 2 * step))
    gov.approve(proposal_id, 1)
    gov.queue(proposal_id)
    gov.wait(HOUR)
    execute = gov.command(gov.council[0], ExecuteProposal, proposal_id=proposal_id)
    rejected(gov.venue, execute, RejectReason.PARAM_COOLDOWN)
    two_steps = set_param(share, base - 3 * step)
    rejected(
        gov.venue,
        gov.command(gov.council[0], Propose, actions=(two_steps,)),
        RejectReason.PARAM_STEP_TOO_LARGE,
    )


def test_the_rules_of_the_registry() -> None:
    entry = REGISTRY[IM]
    now = 10 * DAY
    tighten = entry.lower + 3 * entry.step  # far more than a step, but safer
    assert (
        change_refusal(
            entry, entry.lower, tighten, role=Role.COUNCIL, last_change_ns=now, now_ns=now
        )
        is None
    )
    assert (
        change_refusal(
            entry, entry.lower, tighten, role=Role.GUARDIAN, last_change_ns=now, now_ns=now
        )
        is None
    )
    assert (
        change_refusal(
            entry, tighten, entry.lower, role=Role.GUARDIAN, last_change_ns=None, now_ns=now
        )
        is RejectReason.ROLE_NOT_ALLOWED
    )
    assert (
        change_refusal(
            entry, entry.lower, tighten, role=Role.STEWARD, last_change_ns=None, now_ns=now
        )
        is RejectReason.PARAM_STEP_TOO_LARGE
    )
    cap = REGISTRY["market.liquidation.open_interest_cap_base_quantums"]
    assert cap.tightens(0, 10**9) and not cap.tightens(10**9, 0)  # 0: no cap at all
    assert (
        change_refusal(cap, 10**9, 0, role=Role.COUNCIL, last_change_ns=None, now_ns=now)
        is RejectReason.PARAM_STEP_TOO_LARGE
    )


# ── The guardian ──────────────────────────────────────────────────────────────────────────


def test_the_guardian_may_not_loosen_a_parameter_or_resume_a_market() -> None:
    gov = Governed()
    base = gov.market().margin.initial_margin_ppm
    looser = set_param(IM, base - 1_000)
    rejected(
        gov.venue,
        gov.command(gov.guardian, GuardianAct, actions=(looser,)),
        RejectReason.ROLE_NOT_ALLOWED,
    )
    resume = flag(ActionKind.RESUME_MARKET)
    rejected(
        gov.venue,
        gov.command(gov.guardian, GuardianAct, actions=(resume,)),
        RejectReason.ROLE_NOT_ALLOWED,
    )
    council = GovAction(kind=ActionKind.ADD_COUNCIL_MEMBER, target=gov.guardian.address)
    rejected(
        gov.venue,
        gov.command(gov.guardian, GuardianAct, actions=(council,)),
        RejectReason.ROLE_NOT_ALLOWED,
    )
    timelock = set_param("governance.timelock_ns", 2 * HOUR, target="")
    rejected(
        gov.venue,
        gov.command(gov.guardian, GuardianAct, actions=(timelock,)),
        RejectReason.ROLE_NOT_ALLOWED,
    )


def test_the_guardian_cannot_move_funds() -> None:
    """No governance action moves funds; the roles' keys are ordinary keys elsewhere: the
    guardian cannot credit itself a deposit, nor act on anyone's subaccount."""
    gov = Governed()
    venue = gov.venue
    forged = gov.command(
        gov.guardian, Deposit, deposit_id=99, owner=gov.guardian.address, subaccount_number=0,
        asset_id="USDC", amount_quantums=1_000_000 * USDC,
    )  # fmt: skip
    rejected(venue, forged, RejectReason.UNAUTHORIZED_SIGNER)
    alice_before = venue.balance("alice")
    withdraw = venue.withdraw("alice", 1 * USDC)
    theft = dataclasses.replace(
        withdraw, signer=gov.guardian.address, nonce=gov.guardian.nonce(venue.now)
    )  # type: ignore[arg-type]
    events = venue.run(theft)  # withdraws from the guardian's own (empty) subaccount, if any
    assert venue.balance("alice") == alice_before
    assert events and type(events[0]).__name__ == "CommandRejected"


def test_the_guardian_pauses_a_market_at_once_and_only_the_council_resumes_it() -> None:
    gov = Governed()
    venue = gov.venue
    accepted(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE - 100 * USDC))
    events = accepted(
        venue, gov.command(gov.guardian, GuardianAct, actions=(flag(ActionKind.PAUSE_MARKET),))
    )[0]
    assert of_type(events, MarketFlagsChanged)[0].paused
    assert {e.cause for e in of_type(events, OrderCancelled)} == {CancelCause.PAUSED}
    rejected(
        venue, venue.order("bob", BTC_PERP, Side.SELL, ONE_BTC, PRICE), RejectReason.MARKET_PAUSED
    )
    gov.enact(flag(ActionKind.RESUME_MARKET))
    accepted(venue, venue.order("bob", BTC_PERP, Side.SELL, ONE_BTC, PRICE + 100 * USDC))


def test_a_reduce_only_market_refuses_orders_that_add_risk() -> None:
    gov = Governed()
    venue = gov.venue
    accepted(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE + 50 * USDC))
    accepted(venue, venue.order("bob", BTC_PERP, Side.SELL, ONE_BTC, PRICE + 50 * USDC))
    accepted(
        venue, gov.command(gov.guardian, GuardianAct, actions=(flag(ActionKind.REDUCE_ONLY_ON),))
    )
    rejected(
        venue,
        venue.order("carol", BTC_PERP, Side.BUY, ONE_BTC, PRICE),
        RejectReason.MARKET_REDUCE_ONLY,
    )
    closing = venue.order(
        "alice", BTC_PERP, Side.SELL, ONE_BTC, PRICE - 50 * USDC, reduce_only=True
    )
    accepted(venue, closing)


# ── Pre-signed admin commands and other venues ───────────────────────────────────────────


def test_a_presigned_admin_listing_without_a_proposal_is_refused() -> None:
    gov = Governed()
    venue = gov.venue
    params = dataclasses.replace(gov.market(), market_id=MarketId("BTC-PERP-2"))
    listing = ListMarket(
        signer=venue.operator.address,
        nonce=venue.operator.nonce(venue.now),
        expiry_ns=venue.now + HOUR,
        params=params,
    )
    rejected(venue, listing, RejectReason.GOVERNANCE_REQUIRED)
    again = gov.command(venue.operator, SetupGovernance, params=gov.params)
    rejected(venue, again, RejectReason.ALREADY_EXISTS)


def test_the_council_lists_a_market_by_proposal() -> None:
    gov = Governed()
    params = dataclasses.replace(gov.market(), market_id=MarketId("BTC-PERP-2"))
    gov.enact(GovAction(kind=ActionKind.LIST_MARKET, market=params))
    assert MarketId("BTC-PERP-2") in gov.venue.state.markets


# ── Margin phase-in ──────────────────────────────────────────────────────────────────────


def _near_maintenance(gov: Governed) -> None:
    """Alice long 10 BTC at 60k (600k notional; 2% IM, 1.5% MM = 9k) with about 14k of equity
    after the price dips 200: healthy now, below the MM of a 4.5% IM (3.375%: about 20k)."""
    venue = gov.venue
    accepted(
        venue,
        venue.order("bob", BTC_PERP, Side.SELL, 10 * ONE_BTC, PRICE),
        venue.order("alice", BTC_PERP, Side.BUY, 10 * ONE_BTC, PRICE),
    )
    surplus = venue.balance("alice") - 16_000 * USDC
    accepted(venue, venue.transfer("alice", surplus))
    venue.settle_prices(BTC_USD=PRICE - 200 * USDC)


def _maintenance_fraction(gov: Governed) -> int:
    risk = gov.venue.engine.market_risk(MarketId(BTC_PERP))
    return risk.im_fraction_ppm * risk.maintenance_share_ppm


def test_a_margin_increase_phases_in_and_liquidates_nobody_healthy_at_once() -> None:
    gov = Governed(phase_in_ns=HOUR)
    venue = gov.venue
    _near_maintenance(gov)
    before = venue.risk("alice")
    assert not before.liquidatable
    fraction_before = _maintenance_fraction(gov)
    events = gov.enact(set_param(IM, 45_000))
    [changed] = of_type(events, ParamChanged)  # type: ignore[arg-type]
    start = venue.now
    assert changed.phase_end_ns == start + HOUR
    # At once: still healthy, the MM fraction as before; new risk pays the new IM already.
    now = venue.risk("alice")
    assert not now.liquidatable
    assert _maintenance_fraction(gov) == fraction_before
    assert now.initial > 2 * before.initial
    # Over the hour the MM fraction climbs in steps, and the account is liquidated only once
    # its MM passes its equity, well after the change.
    fractions = [fraction_before]
    liquidated_at = None
    for _ in range(HOUR // (9 * NS_PER_SECOND) + 2):
        result = venue.block(dt_ns=9 * NS_PER_SECOND)
        if of_type(list(result.prologue), Liquidated) and liquidated_at is None:
            liquidated_at = venue.now
        fractions.append(_maintenance_fraction(gov))
    assert fractions == sorted(fractions) and len(set(fractions)) > 10
    assert fractions[-1] == 45_000 * 750_000  # the whole increase, at the end
    assert liquidated_at is not None and liquidated_at > start + 10 * 60 * NS_PER_SECOND


def test_without_a_phase_in_the_same_increase_would_liquidate_at_once() -> None:
    """The counterfactual of the test above: the phase-in is what keeps the account alive."""
    gov = Governed(phase_in_ns=0)
    venue = gov.venue
    _near_maintenance(gov)
    gov.enact(set_param(IM, 45_000))
    assert venue.risk("alice").liquidatable or venue.position("alice", BTC_PERP)[0] < 10 * ONE_BTC


# ── Settlement fallback (§8) ──────────────────────────────────────────────────────────────


def _expired_future_with_silent_oracle(gov: Governed) -> MarketId:
    venue = gov.venue
    future = venue.future
    accepted(
        venue,
        venue.order("bob", future, Side.SELL, ONE_BTC, PRICE),
        venue.order("alice", future, Side.BUY, ONE_BTC, PRICE),
    )
    venue.silent_feeds.add(BTC_USD)  # the oracle dies before expiry and never comes back
    expiry = venue.state.markets[future].params.expiry_ns
    venue.block(dt_ns=expiry - venue.now + NS_PER_SECOND)
    assert venue.state.markets[future].status is MarketStatus.EXPIRED
    return future


def test_governance_settles_an_expired_market_whose_oracle_never_recovers() -> None:
    gov = Governed()
    venue = gov.venue
    future = _expired_future_with_silent_oracle(gov)
    price = PRICE + 1_000 * USDC
    action = GovAction(kind=ActionKind.SET_SETTLEMENT_PRICE, target=future, value=price)
    early = gov.propose(action)  # may be proposed at once...
    gov.approve(early, 1)
    gov.queue(early)
    venue.block(dt_ns=HOUR)
    execute = gov.command(gov.council[0], ExecuteProposal, proposal_id=early)
    rejected(venue, execute, RejectReason.SETTLEMENT_NOT_TIMED_OUT)  # ...not executed early
    timeout = venue.state.markets[future].params.settlement_timeout_ns
    venue.block(dt_ns=timeout)
    gov.execute(early)
    assert venue.state.markets[future].status is MarketStatus.EXPIRED  # the dispute window
    alice_before = venue.balance("alice")
    result = venue.block(dt_ns=gov.params.dispute_window_ns + NS_PER_SECOND, reports=False)
    [settled] = of_type(list(result.prologue), MarketSettled)
    assert (settled.market_id, settled.settlement_price_quantums) == (future, price)
    assert venue.position("alice", future) == (0, 0)
    assert venue.balance("alice") == alice_before + 1_000 * USDC  # long 1 BTC from 60k to 61k


def test_a_dispute_inside_the_window_stops_the_fallback_price() -> None:
    gov = Governed()
    venue = gov.venue
    future = _expired_future_with_silent_oracle(gov)
    timeout = venue.state.markets[future].params.settlement_timeout_ns
    venue.block(dt_ns=timeout, reports=False)
    action = GovAction(kind=ActionKind.SET_SETTLEMENT_PRICE, target=future, value=PRICE // 2)
    gov.enact(action)
    alice = venue.signers["alice"]
    dispute = gov.command(alice, DisputeSettlement, market_id=future, subaccount_number=0)
    accepted(venue, dispute)
    again = gov.command(alice, DisputeSettlement, market_id=future, subaccount_number=0)
    rejected(venue, again, RejectReason.NO_PENDING_SETTLEMENT)
    venue.block(dt_ns=gov.params.dispute_window_ns + NS_PER_SECOND, reports=False)
    assert venue.state.markets[future].status is MarketStatus.EXPIRED  # funds wait, unsettled
    assert venue.position("alice", future)[0] == ONE_BTC
    # Governance proposes again; alice has used her one dispute on this market.
    gov.enact(GovAction(kind=ActionKind.SET_SETTLEMENT_PRICE, target=future, value=PRICE))
    rejected(
        venue,
        gov.command(alice, DisputeSettlement, market_id=future),
        RejectReason.ALREADY_DISPUTED,
    )
    events = venue.block(dt_ns=gov.params.dispute_window_ns + NS_PER_SECOND, reports=False)
    assert of_type(list(events.prologue), MarketSettled)[0].settlement_price_quantums == PRICE


def test_holders_together_dispute_a_fallback_price_a_bounded_number_of_times() -> None:
    """Each address disputes once, but addresses are free: holders' sybils, each holding a
    sliver of the market, could send governance back to its timelock and window (~3 days)
    for each of 1,024 disputes. Holders together dispute at most
    ``holder_disputes_per_market_max`` times; then the price governance proposes settles."""
    gov = Governed()
    venue = gov.venue
    accepted(
        venue,
        venue.order("dave", venue.future, Side.SELL, ONE_BTC // 10, PRICE),
        venue.order("carol", venue.future, Side.BUY, ONE_BTC // 10, PRICE),
    )
    future = _expired_future_with_silent_oracle(gov)
    venue.block(dt_ns=venue.state.markets[future].params.settlement_timeout_ns, reports=False)
    holders = ("alice", "bob", "carol", "dave")
    assert limits.holder_disputes_per_market_max == len(holders) - 1
    for name in holders[:-1]:
        gov.enact(GovAction(kind=ActionKind.SET_SETTLEMENT_PRICE, target=future, value=PRICE))
        accepted(venue, gov.command(venue.signers[name], DisputeSettlement, market_id=future))
    gov.enact(GovAction(kind=ActionKind.SET_SETTLEMENT_PRICE, target=future, value=PRICE))
    last = gov.command(venue.signers[holders[-1]], DisputeSettlement, market_id=future)
    rejected(venue, last, RejectReason.ALREADY_DISPUTED)
    events = venue.block(dt_ns=gov.params.dispute_window_ns + NS_PER_SECOND, reports=False)
    assert of_type(list(events.prologue), MarketSettled)[0].settlement_price_quantums == PRICE


def test_an_outsider_cannot_dispute() -> None:
    gov = Governed()
    venue = gov.venue
    future = _expired_future_with_silent_oracle(gov)
    venue.block(dt_ns=venue.state.markets[future].params.settlement_timeout_ns, reports=False)
    gov.enact(GovAction(kind=ActionKind.SET_SETTLEMENT_PRICE, target=future, value=PRICE))
    outsider = Signer(address_of("outsider"))
    rejected(
        venue,
        gov.command(outsider, DisputeSettlement, market_id=future),
        RejectReason.UNAUTHORIZED_SIGNER,
    )


# ── Replay ───────────────────────────────────────────────────────────────────────────────


def test_governance_replays_to_the_same_roots() -> None:
    gov = Governed()
    gov.enact(set_param("market.taker_fee_ppm", 750), flag(ActionKind.REDUCE_ONLY_ON))
    accepted(
        gov.venue,
        gov.command(
            gov.steward,
            StewardUpdate,
            actions=(set_param("oracle.band_ppm", 40_000, target=BTC_USD),),
        ),
    )
    gov.venue.replay()
    rebuilt = Engine.from_state(gov.venue.state)
    assert rebuilt.state.tree.root() == gov.venue.recorded[-1].root


def test_the_what_if_names_the_accounts_a_margin_increase_would_make_liquidatable() -> None:
    gov = Governed()
    venue = gov.venue
    _near_maintenance(gov)
    root_before = venue.engine.state.tree.root()
    found, truncated = venue.engine.liquidatable_after((set_param(IM, 45_000),))
    assert (found, truncated) == ([venue.sub("alice")], False)
    assert venue.engine.liquidatable_after((set_param(IM, 21_000),)) == ([], False)
    assert venue.engine.liquidatable_after((set_param(IM, 45_000),), holders_max=1)[1]
    assert venue.engine.state.tree.root() == root_before
    assert not venue.risk("alice").liquidatable  # a what-if changes nothing


def test_a_council_member_cancels_only_its_own_proposal() -> None:
    gov = Governed()
    proposal_id = gov.propose(set_param("market.taker_fee_ppm", 750), by=0)
    other = gov.command(gov.council[1], CancelProposal, proposal_id=proposal_id)
    rejected(gov.venue, other, RejectReason.UNAUTHORIZED_SIGNER)
    accepted(gov.venue, gov.command(gov.council[0], CancelProposal, proposal_id=proposal_id))
    again = gov.command(gov.guardian, CancelProposal, proposal_id=proposal_id)
    rejected(gov.venue, again, RejectReason.PROPOSAL_NOT_OPEN)
