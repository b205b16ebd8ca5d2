"""Governance (SPEC §10): the council's proposals through their timelock, the risk steward's
bounded steps, the guardian's risk reductions, margin phase-ins, and the settlement fallback of
§8 (an expired market whose oracle never recovers is priced by governance, with a dispute
window). The registry's rules are ``core/governance.py``.

Nothing here moves a user's funds: every action sets a parameter, a market's flags, a role or
a settlement price; a proposal applies all its actions or none (each is checked against the
state the earlier ones leave, before anything changes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from clearhouse.core import limits
from clearhouse.core.codec import to_plain
from clearhouse.core.engine.context import Context, Rejected, mutated
from clearhouse.core.engine.listing import (
    Planned,
    add_series,
    apply_listing,
    check_listing,
    check_series,
)
from clearhouse.core.engine.risk import compute_market_risk, effective_margin, risk_of
from clearhouse.core.engine.trading.resting import cancel_resting, cancel_trigger
from clearhouse.core.errors import RejectReason
from clearhouse.core.governance import (
    PHASED,
    REGISTRY,
    Governed,
    ProposalStatus,
    Role,
    Scope,
    change_refusal,
    phase_step,
    read_field,
    replace_field,
)
from clearhouse.core.ids import Address, MarketId, SubaccountId, is_address
from clearhouse.core.messages import (
    ActionKind,
    ApproveProposal,
    CancelCause,
    CancelProposal,
    DisputeSettlement,
    ExecuteProposal,
    GovAction,
    GovernanceConfigured,
    GuardianAct,
    MarketFlagsChanged,
    ParamChanged,
    ProposalChanged,
    Propose,
    QueueProposal,
    SettlementDisputed,
    SettlementPriceProposed,
    SetupGovernance,
    StewardUpdate,
)
from clearhouse.core.params import GovernanceParams, MarginParams, MarketKind, MarketParams
from clearhouse.core.state import (
    GovernanceState,
    MarginPhase,
    MarketStatus,
    ParamChange,
    Proposal,
    params_key,
)

_LISTING_KINDS = {
    ActionKind.LIST_ORACLE: "oracle",
    ActionKind.LIST_ASSET: "asset",
    ActionKind.LIST_MARKET: "market",
    ActionKind.LIST_OPTION_SERIES: "option_series",
}
_GUARDIAN_KINDS = frozenset({
    ActionKind.SET_PARAM, ActionKind.PAUSE_MARKET, ActionKind.REDUCE_ONLY_ON,
})  # fmt: skip
_ROLE_KINDS = frozenset({
    ActionKind.ADD_COUNCIL_MEMBER, ActionKind.REMOVE_COUNCIL_MEMBER, ActionKind.SET_THRESHOLD,
    ActionKind.SET_STEWARD, ActionKind.SET_GUARDIAN,
})  # fmt: skip


# ── Setup ─────────────────────────────────────────────────────────────────────────────────


def setup_governance(ctx: Context, command: SetupGovernance) -> None:
    if command.signer != ctx.state.venue.operator:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if ctx.state.governance is not None:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    if not valid_governance(command.params):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    mutated(ctx)
    ctx.state.governance = GovernanceState(params=command.params)
    ctx.touched.governance = True
    configured(ctx, command.params)


def valid_governance(params: GovernanceParams) -> bool:
    roles = [a for a in (params.steward, params.guardian) if a is not None]
    addresses = [*params.council, *roles]
    return not params.problems() and all(is_address(a) for a in addresses)


def configured(ctx: Context, params: GovernanceParams) -> None:
    ctx.events.append(GovernanceConfigured(
        council=params.council, threshold=params.threshold, steward=params.steward or "",
        guardian=params.guardian or "",
    ))  # fmt: skip


def governed(ctx: Context) -> GovernanceState:
    """The venue's governance; a venue without one has no council, steward or guardian."""
    found = ctx.state.governance
    if found is None:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    return found


# ── Proposals ─────────────────────────────────────────────────────────────────────────────


def propose(ctx: Context, command: Propose) -> None:
    gov = governed(ctx)
    if command.signer not in gov.params.council:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if not 1 <= len(command.actions) <= limits.actions_per_proposal_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if len(command.memo) > limits.proposal_memo_length_max or (
        len(command.simulation) > limits.proposal_simulation_length_max
    ):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    expired = [p for p in sorted(gov.open_proposals) if not _live(ctx, gov.proposals[p])]
    if len(gov.open_proposals) - len(expired) >= limits.open_proposals_max:
        raise Rejected(RejectReason.TOO_MANY_PROPOSALS)
    check_actions(ctx, command.actions, Role.COUNCIL, at_execution=False)
    mutated(ctx)
    for proposal_id in expired:
        _close(ctx, gov.proposals[proposal_id], ProposalStatus.EXPIRED, command.signer)
    proposal = Proposal(
        proposal_id=gov.next_proposal_id, proposer=command.signer, actions=command.actions,
        memo=command.memo, simulation=command.simulation, created_ns=ctx.state.timestamp_ns,
        approvals=[command.signer],
    )  # fmt: skip
    gov.next_proposal_id += 1
    gov.proposals[proposal.proposal_id] = proposal
    gov.open_proposals.add(proposal.proposal_id)
    ctx.touched.governance = True
    _changed(ctx, proposal, command.signer)


def approve_proposal(ctx: Context, command: ApproveProposal) -> None:
    gov = governed(ctx)
    if command.signer not in gov.params.council:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    proposal = _open(ctx, command.proposal_id, ProposalStatus.PENDING)
    if command.signer in proposal.approvals:
        raise Rejected(RejectReason.ALREADY_APPROVED)
    mutated(ctx)
    proposal.approvals = sorted([*proposal.approvals, command.signer])
    _changed(ctx, proposal, command.signer)


def queue_proposal(ctx: Context, command: QueueProposal) -> None:
    gov = governed(ctx)
    proposal = _open(ctx, command.proposal_id, ProposalStatus.PENDING)
    if gov.approvals(proposal) < gov.params.threshold:
        raise Rejected(RejectReason.QUORUM_NOT_MET)
    mutated(ctx)
    proposal.status = ProposalStatus.QUEUED
    proposal.eta_ns = ctx.state.timestamp_ns + gov.params.timelock_ns
    _changed(ctx, proposal, command.signer)


def execute_proposal(ctx: Context, command: ExecuteProposal) -> None:
    governed(ctx)
    proposal = _open(ctx, command.proposal_id, ProposalStatus.QUEUED)
    if ctx.state.timestamp_ns < proposal.eta_ns:
        raise Rejected(RejectReason.TIMELOCK_NOT_ELAPSED)
    check_actions(ctx, proposal.actions, Role.COUNCIL, at_execution=True)
    mutated(ctx)
    for action in proposal.actions:
        apply_action(ctx, action, Role.COUNCIL, command.signer, proposal.proposal_id)
    _close(ctx, proposal, ProposalStatus.EXECUTED, command.signer)


def cancel_proposal(ctx: Context, command: CancelProposal) -> None:
    """The guardian cancels any open proposal; a council member only its own (one member
    alone is no veto over the others' proposals)."""
    gov = governed(ctx)
    proposal = gov.proposals.get(command.proposal_id)
    if proposal is None:
        raise Rejected(RejectReason.UNKNOWN_PROPOSAL)
    is_guardian = gov.params.guardian is not None and command.signer == gov.params.guardian
    is_proposer = command.signer == proposal.proposer and command.signer in gov.params.council
    if not (is_guardian or is_proposer):
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    _open(ctx, command.proposal_id, None)
    mutated(ctx)
    _close(ctx, proposal, ProposalStatus.CANCELLED, command.signer)


def _open(ctx: Context, proposal_id: int, status: ProposalStatus | None) -> Proposal:
    """The proposal, open (pending or queued, not past its lifetime or window) and in
    ``status`` (None: either)."""
    gov = governed(ctx)
    proposal = gov.proposals.get(proposal_id)
    if proposal is None:
        raise Rejected(RejectReason.UNKNOWN_PROPOSAL)
    if not _live(ctx, proposal) or (status is not None and proposal.status is not status):
        raise Rejected(RejectReason.PROPOSAL_NOT_OPEN)
    return proposal


def _live(ctx: Context, proposal: Proposal) -> bool:
    status = governed(ctx).status_of(proposal, ctx.state.timestamp_ns)
    return status in (ProposalStatus.PENDING, ProposalStatus.QUEUED)


def _close(ctx: Context, proposal: Proposal, status: ProposalStatus, by: Address) -> None:
    gov = governed(ctx)
    proposal.status = status
    proposal.closed_ns = ctx.state.timestamp_ns
    gov.open_proposals.discard(proposal.proposal_id)
    _changed(ctx, proposal, by)


def _changed(ctx: Context, proposal: Proposal, by: Address) -> None:
    ctx.touched.proposals.add(proposal.proposal_id)
    ctx.events.append(ProposalChanged(
        proposal_id=proposal.proposal_id, status=int(proposal.status), by=by,
        approvals=governed(ctx).approvals(proposal), eta_ns=proposal.eta_ns,
    ))  # fmt: skip


# ── Roles acting without the timelock ────────────────────────────────────────────────────


def steward_update(ctx: Context, command: StewardUpdate) -> None:
    gov = governed(ctx)
    if gov.params.steward is None or command.signer != gov.params.steward:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    _check_role_batch(command.actions, frozenset({ActionKind.SET_PARAM}))
    check_actions(ctx, command.actions, Role.STEWARD, at_execution=True)
    mutated(ctx)
    for action in command.actions:
        apply_action(ctx, action, Role.STEWARD, command.signer, 0)


def guardian_act(ctx: Context, command: GuardianAct) -> None:
    gov = governed(ctx)
    if gov.params.guardian is None or command.signer != gov.params.guardian:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    _check_role_batch(command.actions, _GUARDIAN_KINDS)
    check_actions(ctx, command.actions, Role.GUARDIAN, at_execution=True)
    mutated(ctx)
    for action in command.actions:
        apply_action(ctx, action, Role.GUARDIAN, command.signer, 0)


def _check_role_batch(actions: tuple[GovAction, ...], allowed: frozenset[ActionKind]) -> None:
    if not 1 <= len(actions) <= limits.actions_per_proposal_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if any(a.kind not in allowed for a in actions):
        raise Rejected(RejectReason.ROLE_NOT_ALLOWED)


# ── Checking actions (nothing changes) ───────────────────────────────────────────────────


@dataclass(slots=True)
class _Plan:
    """What a batch's earlier actions would leave, for the checks of the later ones."""

    listed: Planned = field(default_factory=Planned)
    params: dict[tuple[Scope, str], object] = field(default_factory=dict)
    changed: set[tuple[str, str]] = field(default_factory=set)
    flags: dict[tuple[ActionKind, str], None] = field(default_factory=dict)
    governance: GovernanceParams | None = None


def check_actions(
    ctx: Context, actions: tuple[GovAction, ...], role: Role, *, at_execution: bool
) -> None:
    """Raise the first action's refusal, each checked against what the earlier ones leave.
    Before execution, what only time decides (a cooldown, a settlement timeout) is not asked."""
    plan = _Plan(governance=governed(ctx).params)
    for action in actions:
        _check_shape(action)
        match action.kind:
            case ActionKind.SET_PARAM:
                _check_param(ctx, plan, action, role, at_execution=at_execution)
            case kind if kind in _LISTING_KINDS:
                _check_listing_action(ctx, plan, action)
            case ActionKind.SET_SETTLEMENT_PRICE:
                _check_settlement_price(ctx, action, at_execution=at_execution)
            case kind if kind in _ROLE_KINDS:
                plan.governance = _roles_after(plan.governance, action)
            case _:
                _check_flag(ctx, plan, action)


def _check_shape(action: GovAction) -> None:
    """Exactly the fields its kind uses are set."""
    listing = _LISTING_KINDS.get(action.kind)
    for name in ("oracle", "asset", "market", "option_series"):
        if (getattr(action, name) is not None) != (name == listing):
            raise Rejected(RejectReason.INVALID_PARAMETERS)
    if action.kind is not ActionKind.SET_PARAM and action.name:
        raise Rejected(RejectReason.INVALID_PARAMETERS)


def _check_param(
    ctx: Context, plan: _Plan, action: GovAction, role: Role, *, at_execution: bool
) -> None:
    entry = REGISTRY.get(action.name)
    if entry is None:
        raise Rejected(RejectReason.PARAM_UNKNOWN)
    if entry.scope is Scope.GOVERNANCE and role is not Role.COUNCIL:
        raise Rejected(RejectReason.ROLE_NOT_ALLOWED)
    key = (action.name, action.target)
    if key in plan.changed:
        raise Rejected(RejectReason.INVALID_PARAMETERS)  # one change per parameter per batch
    current_params = plan.params.get((entry.scope, action.target))
    if current_params is None:
        current_params = scope_params(ctx, entry.scope, action.target)
    current = read_field(current_params, entry.path)
    last = governed(ctx).last_change_ns(*key) if at_execution else None
    refusal = change_refusal(
        entry, current, action.value, role=role, last_change_ns=last,
        now_ns=ctx.state.timestamp_ns,
    )  # fmt: skip
    if refusal is not None:
        raise Rejected(refusal)
    changed = replace_field(current_params, entry.path, action.value)
    problems = getattr(changed, "problems", None)
    if problems is not None and problems():
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    plan.params[(entry.scope, action.target)] = changed
    plan.changed.add(key)


def scope_params(ctx: Context, scope: Scope, target: str) -> object:
    """The parameters a governed parameter of ``scope`` lives in, for ``target``."""
    state = ctx.state
    match scope:
        case Scope.MARKET:
            market = state.markets.get(MarketId(target))
            if market is None:
                raise Rejected(RejectReason.UNKNOWN_MARKET)
            return market.params
        case Scope.ORACLE:
            oracle = state.oracles.get(target)  # type: ignore[call-overload]
            if oracle is None:
                raise Rejected(RejectReason.UNKNOWN_ORACLE)
            return oracle.params
        case Scope.ASSET:
            asset = state.assets.get(target)  # type: ignore[call-overload]
            if asset is None:
                raise Rejected(RejectReason.UNKNOWN_ASSET)
            return asset
        case Scope.VAULT | Scope.GOVERNANCE:
            if target:
                raise Rejected(RejectReason.INVALID_PARAMETERS)
            return state.venue.vault if scope is Scope.VAULT else governed(ctx).params


def _check_listing_action(ctx: Context, plan: _Plan, action: GovAction) -> None:
    if action.option_series is not None:
        check_series(ctx, action.option_series, plan.listed)
        return
    params = action.oracle or action.asset or action.market
    assert params is not None  # the shape check saw to it
    check_listing(ctx, params, plan.listed)


def _check_settlement_price(ctx: Context, action: GovAction, *, at_execution: bool) -> None:
    market = ctx.state.markets.get(MarketId(action.target))
    if market is None:
        raise Rejected(RejectReason.UNKNOWN_MARKET)
    params = market.params
    if params.kind is MarketKind.PERPETUAL or market.status is MarketStatus.SETTLED:
        raise Rejected(RejectReason.MARKET_NOT_ACTIVE)
    if not 0 < action.value <= limits.price_quantums_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if action.value % params.tick_quantums:
        raise Rejected(RejectReason.PRICE_OFF_TICK)
    timed_out = ctx.state.timestamp_ns >= params.expiry_ns + params.settlement_timeout_ns
    if at_execution and (market.status is not MarketStatus.EXPIRED or not timed_out):
        raise Rejected(RejectReason.SETTLEMENT_NOT_TIMED_OUT)


def _roles_after(params: GovernanceParams | None, action: GovAction) -> GovernanceParams:
    assert params is not None
    council = list(params.council)
    address = Address(action.target)
    if action.kind is not ActionKind.SET_THRESHOLD and action.target and not is_address(address):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    match action.kind:
        case ActionKind.ADD_COUNCIL_MEMBER:
            if address in council or not action.target:
                raise Rejected(RejectReason.INVALID_PARAMETERS)
            changed = dataclasses.replace(params, council=tuple(sorted([*council, address])))
        case ActionKind.REMOVE_COUNCIL_MEMBER:
            if address not in council:
                raise Rejected(RejectReason.INVALID_PARAMETERS)
            changed = dataclasses.replace(params, council=tuple(a for a in council if a != address))
        case ActionKind.SET_THRESHOLD:
            changed = dataclasses.replace(params, threshold=action.value)
        case ActionKind.SET_STEWARD:
            changed = dataclasses.replace(params, steward=address if action.target else None)
        case _:
            changed = dataclasses.replace(params, guardian=address if action.target else None)
    if not valid_governance(changed):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    return changed


def _check_flag(ctx: Context, plan: _Plan, action: GovAction) -> None:
    """Pause, resume, reduce-only on or off: a listed market whose flag actually changes."""
    market_id = MarketId(action.target)
    if market_id not in ctx.state.markets:
        raise Rejected(RejectReason.UNKNOWN_MARKET)
    gov = governed(ctx)
    now_set = {
        ActionKind.PAUSE_MARKET: market_id not in gov.paused,
        ActionKind.RESUME_MARKET: market_id in gov.paused,
        ActionKind.REDUCE_ONLY_ON: market_id not in gov.reduce_only,
        ActionKind.REDUCE_ONLY_OFF: market_id in gov.reduce_only,
    }
    if not now_set[action.kind] or (action.kind, action.target) in plan.flags:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    plan.flags[(action.kind, action.target)] = None


# ── Applying actions (checked already) ───────────────────────────────────────────────────


def apply_action(
    ctx: Context, action: GovAction, role: Role, by: Address, proposal_id: int
) -> None:
    match action.kind:
        case ActionKind.SET_PARAM:
            set_param(ctx, REGISTRY[action.name], action, role, by, proposal_id)
        case ActionKind.LIST_OPTION_SERIES:
            assert action.option_series is not None
            add_series(ctx, action.option_series)
        case kind if kind in _LISTING_KINDS:
            params = action.oracle or action.asset or action.market
            assert params is not None
            apply_listing(ctx, params)
        case ActionKind.SET_SETTLEMENT_PRICE:
            propose_settlement(ctx, MarketId(action.target), action.value)
        case kind if kind in _ROLE_KINDS:
            gov = governed(ctx)
            gov.params = _roles_after(gov.params, action)
            ctx.touched.governance = True
            configured(ctx, gov.params)
        case _:
            set_flag(ctx, MarketId(action.target), action.kind, by)


def set_param(
    ctx: Context, entry: Governed, action: GovAction, role: Role, by: Address, proposal_id: int
) -> None:
    gov = governed(ctx)
    current_params = scope_params(ctx, entry.scope, action.target)
    old = read_field(current_params, entry.path)
    changed = replace_field(current_params, entry.path, action.value)
    phase_end = 0
    match entry.scope:
        case Scope.MARKET:
            market_id = MarketId(action.target)
            assert isinstance(changed, MarketParams)
            if entry.name in PHASED and action.value > old and gov.params.phase_in_ns > 0:
                phase_end = start_phase(ctx, market_id, changed.margin)
            ctx.state.markets[market_id].params = changed
            market_params_changed(ctx, market_id)
        case Scope.ORACLE:
            oracle = ctx.state.oracles[action.target]  # type: ignore[index]
            oracle.params = changed  # type: ignore[assignment]
            ctx.touched.oracles.add(action.target)
            ctx.touched.params[params_key("oracle", action.target)] = to_plain(changed)
            for market_id, market in sorted(ctx.state.markets.items()):
                if market.params.oracle_id == action.target:
                    market_params_changed(ctx, market_id, leaf=False)
            # Its band bounds the confidence, which the next block takes with its index (this
            # block's stays the one taken with this block's: ``risk.confidence_quantums``).
        case Scope.ASSET:
            ctx.state.assets[action.target] = changed  # type: ignore[index, assignment]
            ctx.touched.params[params_key("asset", action.target)] = to_plain(changed)
        case Scope.VAULT:
            venue = ctx.state.venue
            ctx.state.venue = dataclasses.replace(venue, vault=changed)  # type: ignore[arg-type]
        case Scope.GOVERNANCE:
            gov.params = changed  # type: ignore[assignment]
            ctx.touched.governance = True
    _record(ctx, entry, action, old, role, by, proposal_id)
    ctx.events.append(ParamChanged(
        name=entry.name, target=action.target, old_value=old, new_value=action.value,
        role=int(role), by=by, proposal_id=proposal_id, phase_end_ns=phase_end,
    ))  # fmt: skip


def _record(
    ctx: Context, entry: Governed, action: GovAction, old: int, role: Role, by: Address,
    proposal_id: int,
) -> None:  # fmt: skip
    gov = governed(ctx)
    key = (entry.name, action.target)
    change = ParamChange(ctx.state.timestamp_ns, old, action.value, int(role), by, proposal_id)
    kept = [*gov.history.get(key, []), change][-limits.param_history_kept :]
    gov.history[key] = kept
    ctx.touched.governed_params.add(key)


def market_params_changed(ctx: Context, market_id: MarketId, *, leaf: bool = True) -> None:
    """A market's parameters (or its oracle's) changed: its cached risk is stale, and every
    holder's margin moved, so the liquidation watch examines them all at the next pass (the
    cost of a parameter change is the market's holders, once)."""
    market = ctx.state.markets[market_id]
    derived = ctx.derived
    derived.market_risk_cache.pop(market_id, None)
    derived.profile_cache.pop(market_id, None)
    derived.fraction_caps.pop(market_id, None)
    derived.funding_epochs.pop(market_id, None)
    for holder in market.holders:
        derived.risk_changed[holder] = None
    ctx.touched.markets.add(market_id)
    if leaf:
        ctx.touched.params[params_key("market", market_id)] = to_plain(market.params)


# ── Margin phase-in ───────────────────────────────────────────────────────────────────────


def start_phase(ctx: Context, market_id: MarketId, target: MarginParams) -> int:
    """Existing positions move from the margins in force now to ``target`` over the
    phase-in; returns when it ends."""
    gov = governed(ctx)
    now = ctx.state.timestamp_ns
    initial, share = effective_margin(ctx, market_id)
    end = now + gov.params.phase_in_ns
    gov.phases[market_id] = MarginPhase(initial, share, now, end)
    ctx.touched.governed_markets.add(market_id)
    return end


def advance_phases(ctx: Context) -> None:
    """Each block: a market whose phase-in took a step has every holder examined again (their
    margin rose); a finished phase-in is dropped. Costs the phasing markets, not the venue."""
    gov = ctx.state.governance
    if gov is None or not gov.phases:
        return
    now = ctx.state.timestamp_ns
    for market_id in sorted(gov.phases):
        phase = gov.phases[market_id]
        step = phase_step(phase.start_ns, phase.end_ns, now)
        if step == phase.step:
            continue
        phase.step = step
        market_params_changed(ctx, market_id, leaf=False)
        if now >= phase.end_ns:
            del gov.phases[market_id]
        ctx.touched.governed_markets.add(market_id)


# ── Market flags ──────────────────────────────────────────────────────────────────────────


def set_flag(ctx: Context, market_id: MarketId, kind: ActionKind, by: Address) -> None:
    gov = governed(ctx)
    market = ctx.state.markets[market_id]
    match kind:
        case ActionKind.PAUSE_MARKET:
            gov.paused.add(market_id)
            for order_id in sorted(market.triggers):
                cancel_trigger(ctx, market, order_id, CancelCause.PAUSED)
            for order in sorted(market.book.orders(), key=lambda o: o.order_id):
                cancel_resting(ctx, market, order.order_id, CancelCause.PAUSED)
        case ActionKind.RESUME_MARKET:
            gov.paused.discard(market_id)
        case ActionKind.REDUCE_ONLY_ON:
            gov.reduce_only.add(market_id)
        case _:
            gov.reduce_only.discard(market_id)
    ctx.touched.governed_markets.add(market_id)
    ctx.events.append(MarketFlagsChanged(
        market_id=market_id, paused=market_id in gov.paused,
        reduce_only=market_id in gov.reduce_only, by=by,
    ))  # fmt: skip


# ── Settlement fallback (SPEC §8) ────────────────────────────────────────────────────────


def propose_settlement(ctx: Context, market_id: MarketId, price: int) -> None:
    gov = governed(ctx)
    until = ctx.state.timestamp_ns + gov.params.dispute_window_ns
    gov.fallbacks[market_id] = (price, until)
    ctx.touched.governed_markets.add(market_id)
    ctx.events.append(
        SettlementPriceProposed(market_id=market_id, price_quantums=price, dispute_until_ns=until)
    )


def dispute_settlement(ctx: Context, command: DisputeSettlement) -> None:
    gov = governed(ctx)
    fallback = gov.fallbacks.get(command.market_id)
    if fallback is None:
        raise Rejected(RejectReason.NO_PENDING_SETTLEMENT)
    if ctx.state.timestamp_ns >= fallback[1]:
        raise Rejected(RejectReason.DISPUTE_WINDOW_CLOSED)
    if not _may_dispute(ctx, gov, command):
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    disputers = gov.disputers.get(command.market_id, set())
    if command.signer in disputers:
        raise Rejected(RejectReason.ALREADY_DISPUTED)
    if len(disputers) >= limits.disputes_per_market_max:
        raise Rejected(RejectReason.ALREADY_DISPUTED)
    holders = [d for d in disputers if not _governs(gov, d)]
    if not _governs(gov, command.signer) and len(holders) >= limits.holder_disputes_per_market_max:
        raise Rejected(RejectReason.ALREADY_DISPUTED)  # the holders' disputes are spent
    mutated(ctx)
    del gov.fallbacks[command.market_id]
    gov.disputers.setdefault(command.market_id, set()).add(command.signer)
    ctx.touched.governed_markets.add(command.market_id)
    ctx.events.append(SettlementDisputed(market_id=command.market_id, by=command.signer))


def _governs(gov: GovernanceState, address: str) -> bool:
    return address in gov.params.council or address == gov.params.guardian


def _may_dispute(ctx: Context, gov: GovernanceState, command: DisputeSettlement) -> bool:
    """A holder of the market (the one who gains or loses by the price), a council member, the
    guardian; each at most once per market, so a dispute costs a holder its one veto, and the
    holders together at most ``holder_disputes_per_market_max``."""
    if _governs(gov, command.signer):
        return True
    if not 0 <= command.subaccount_number < limits.subaccounts_per_account_max:
        return False
    holder = SubaccountId(command.signer, command.subaccount_number)
    market = ctx.state.markets.get(command.market_id)
    return market is not None and holder in market.holders


def due_fallback(ctx: Context, market_id: MarketId) -> int | None:
    """A governance settlement price whose dispute window has closed undisputed (None: none)."""
    gov = ctx.state.governance
    fallback = None if gov is None else gov.fallbacks.get(market_id)
    if fallback is None or ctx.state.timestamp_ns < fallback[1]:
        return None
    return fallback[0]


def market_settled(ctx: Context, market_id: MarketId) -> None:
    """A settled market holds no fallback price any more."""
    gov = ctx.state.governance
    if gov is not None and gov.fallbacks.pop(market_id, None) is not None:
        ctx.touched.governed_markets.add(market_id)


def market_archived(ctx: Context, market_id: MarketId) -> None:
    """An archived market leaves governance's records of markets too."""
    gov = ctx.state.governance
    if gov is None:
        return
    for holder in (gov.paused, gov.reduce_only):
        holder.discard(market_id)
    for table in (gov.phases, gov.fallbacks, gov.disputers):
        table.pop(market_id, None)
    ctx.touched.governed_markets.add(market_id)


# ── What a change would do (a query: nothing changes) ─────────────────────────────────────


def liquidatable_after(
    ctx: Context, actions: tuple[GovAction, ...], holders_max: int
) -> tuple[list[SubaccountId], bool]:
    """Holders of the markets whose parameters ``actions`` change that meet their maintenance
    margin now and would not once the change is whole (any phase-in over), sorted; and
    whether more than ``holders_max`` holders would have had to be examined (then the list
    covers the first ``holders_max`` in order). Actions other than market parameters are
    ignored; an invalid one raises ``Rejected`` with its reason."""
    changed: dict[MarketId, MarketParams] = {}
    for action in actions:
        entry = REGISTRY.get(action.name)
        if action.kind is not ActionKind.SET_PARAM or entry is None:
            continue
        if entry.scope is Scope.MARKET:
            market_id = MarketId(action.target)
            params = changed.get(market_id) or scope_params(ctx, Scope.MARKET, action.target)
            assert isinstance(params, MarketParams)
            changed[market_id] = replace_field(params, entry.path, action.value)
    overrides = {
        m: compute_market_risk(
            ctx, dataclasses.replace(ctx.state.markets[m], params=p),
            ctx.state.oracles[p.oracle_id], phased=False,
        )
        for m, p in sorted(changed.items())
    }  # fmt: skip
    holders = sorted({h for m in changed for h in ctx.state.markets[m].holders})
    found = []
    for holder in holders[:holders_max]:
        subaccount = ctx.state.ledger.subaccounts[holder]
        if risk_of(ctx, subaccount).liquidatable:
            continue
        if risk_of(ctx, subaccount, overrides=overrides).liquidatable:
            found.append(holder)
    return found, len(holders) > holders_max
