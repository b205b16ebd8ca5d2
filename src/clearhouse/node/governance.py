"""Governance's read routes (SPEC §10): who governs and how long each wait is, the parameter
registry with every value in force, the proposals with their status as of now, every parameter
change and governance event (from the read model, with cursors), and the what-if of a change:
the accounts it would make liquidatable once whole (``POST /v1/gov/impact``, nothing submitted).

Governance itself is commands (``Propose``, ``ApproveProposal``, ``QueueProposal``,
``ExecuteProposal``, ``CancelProposal``, ``StewardUpdate``, ``GuardianAct``,
``DisputeSettlement``), signed and sent to ``/v1/commands`` like any other. Answers follow
``human``: ``*_ns`` with ``*_ms`` beside them; a parameter in parts per million (or billion)
has a percent string beside each of its values (``value_percent``), one in nanoseconds its
milliseconds (``value_ms``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import APIRouter, Path, Query, Request

from clearhouse.core.codec import MalformedCommand, decode_plain, to_plain
from clearhouse.core.engine import Rejected
from clearhouse.core.errors import RejectReason as R
from clearhouse.core.governance import (
    PHASED,
    REGISTRY,
    Governed,
    ProposalStatus,
    Role,
    Scope,
    read_field,
    replace_field,
)
from clearhouse.core.ids import MarketId
from clearhouse.core.messages import ActionKind, GovAction
from clearhouse.core.params import MarketParams
from clearhouse.core.state import EngineState, GovernanceState, Proposal
from clearhouse.core.units import NS_PER_MS, PPB_ONE, PPM_ONE
from clearhouse.node import human, models
from clearhouse.node.context import Context, NodeContext
from clearhouse.node.errors import ApiError, not_found, status_of
from clearhouse.node.genesis import duration_text
from clearhouse.node.protection import HEAVY_READ_WEIGHT, charge_list, charge_work

router = APIRouter(tags=["governance"], responses=models.COMMON)
T = TypeVar("T")
# The what-if examines at most this many holders of the markets a change touches, under the
# writer's lock (two margin computations each): a venue with more gets the first ones, in
# subaccount order, and ``truncated``. Blocks wait while it runs, so it is bounded here.
IMPACT_HOLDERS_MAX = 20_000
PROPOSALS_LIMIT_MAX = 500
HISTORY_LIMIT_MAX = 1_000
PROPOSAL_EVENTS_SHOWN = 100  # a proposal's steps in its own view (created, approvals, ...)
SIMULATION_NESTING_MAX = 32  # deeper is no stress-lab report: not parsed (it recurses)
StatusFilter = Literal["pending", "queued", "executed", "cancelled", "expired", "open"]
ScopeFilter = Literal["market", "oracle", "asset", "vault", "governance"]
CursorQuery = Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$", description="next_cursor")]
NameQuery = Annotated[str | None, Query(max_length=100, description="a registry name")]
TargetQuery = Annotated[str | None, Query(max_length=64, description="a market, oracle, asset")]
DIRECTIONS = {1: "higher_is_safer", -1: "lower_is_safer", 0: "neither"}
OPEN = frozenset({ProposalStatus.PENDING, ProposalStatus.QUEUED})
NOT_FOUND = models.errors(404)


def _human(ctx: NodeContext, read: Callable[[], T]) -> Callable[[], T]:
    """``read`` with the human companions added, still under the lock (as ``queries``)."""
    return lambda: cast(T, human.annotate(read(), human.Scales.of(ctx.engine)))


# ── Routes ─────────────────────────────────────────────────────────────────────────────────


@router.get("/v1/gov", response_model=models.GovConfig, response_model_exclude_unset=True)
def config(ctx: Context) -> dict[str, Any]:
    """The council, its threshold, the steward, the guardian, the waits, and what governance
    holds on markets now (pauses, reduce-only, margin phase-ins, fallback settlement prices).
    ``{"governed": false}`` on a venue whose operator still lists (no governance set up)."""

    def read() -> dict[str, Any]:
        state = ctx.engine.state
        gov = state.governance
        return {"governed": False} if gov is None else config_view(gov, state.timestamp_ns)

    return ctx.locked(_human(ctx, read))


@router.get("/v1/gov/params", response_model=list[models.GovParam])
def params(
    ctx: Context, http: Request, scope: ScopeFilter | None = None, name: NameQuery = None,
    target: TargetQuery = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The registry (``core/governance.REGISTRY``): each governed parameter's hard bounds, its
    step (the larger of ``step`` and ``step_ppm`` of the value), its cooldown, which way is
    safer, and its value in force for each target (market, oracle, asset; ``""`` for the vault
    and governance itself) with the time of its last change. Weighs with the values it lists
    (one per market, oracle or asset for each of their parameters)."""
    charge_list(ctx, http, params_listed(ctx.engine.state, scope, name, target))

    def read() -> list[dict[str, Any]]:
        state = ctx.engine.state
        return [
            param_view(entry, state, target)
            for entry in REGISTRY.values()
            if name in (None, entry.name) and scope in (None, entry.scope.name.lower())
        ]

    return ctx.locked(_human(ctx, read))


@router.get("/v1/gov/proposals", response_model=list[models.GovProposal])
def proposals(
    ctx: Context, http: Request, status: StatusFilter | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="older ids")] = None,
    limit: Annotated[int, Query(ge=1, le=PROPOSALS_LIMIT_MAX)] = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """Proposals, newest first, each with its status as of now (``open``: pending or queued;
    a pending or queued one past its lifetime or window reads ``expired`` before any command
    records it). Page with ``before`` (the last id seen). Weighs with the proposals it may
    answer and their actions, and with those a ``status`` filter passes over."""
    charge_list(ctx, http, proposals_listed(ctx.engine.state, limit, filtered=status is not None))

    def read() -> list[dict[str, Any]]:
        state = ctx.engine.state
        gov = state.governance
        if gov is None:
            return []
        found = []
        for proposal in _newest_first(gov, before):
            # The status alone first: a view is built only for a proposal that is answered.
            if _matches(gov.status_of(proposal, state.timestamp_ns).name.lower(), status):
                found.append(proposal_view(gov, proposal, state.timestamp_ns))
                if len(found) == limit:
                    break
        return found

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/gov/proposals/{proposal_id}", response_model=models.GovProposalDetail,
    responses=NOT_FOUND,
)  # fmt: skip
def proposal(ctx: Context, proposal_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> dict[str, Any]:
    """One proposal, with the stress lab's difference its proposer attached (``simulation``,
    parsed; null when none is attached or it is no JSON) and its steps (``events``, newest
    first: created, approved, queued, executed, cancelled or expired)."""

    def read() -> dict[str, Any]:
        state = ctx.engine.state
        gov = state.governance
        found = None if gov is None else gov.proposals.get(proposal_id)
        if gov is None or found is None:
            raise not_found(f"proposal {proposal_id}")
        steps, _ = ctx.sequencer.read_model.governance_page(
            None, PROPOSAL_EVENTS_SHOWN, proposal_id
        )
        return {
            **proposal_view(gov, found, state.timestamp_ns),
            "simulation": parsed_simulation(found.simulation),
            "events": [event_view(e) for e in steps],
        }  # fmt: skip

    return ctx.locked(_human(ctx, read))


@router.get("/v1/gov/history", response_model=models.GovHistory)
def history(
    ctx: Context, http: Request, name: NameQuery = None, target: TargetQuery = None,
    cursor: CursorQuery = None, limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT_MAX)] = 100,
) -> dict[str, Any]:  # fmt: skip
    """Every change of a governed parameter (of ``name``, of ``target``), newest first: old and
    new value, by whom (council proposal, steward, guardian), and, for a margin increase, when
    existing positions pay all of it. Pass ``next_cursor`` back as ``cursor`` for older ones.
    Kept in memory: the newest 100,000 changes (a replay rebuilds them). Weighs with the
    changes it may answer."""
    if name is not None and name not in REGISTRY:
        raise ApiError(400, R.PARAM_UNKNOWN.name, f"no governed parameter {name!r}")
    charge_list(ctx, http, min(limit, len(ctx.sequencer.read_model.param_changes)))

    def read() -> dict[str, Any]:
        before = None if cursor is None else int(cursor)
        model = ctx.sequencer.read_model
        items, next_cursor = model.param_history_page(name, target, before, limit)
        return {"items": [change_view(i) for i in items], "next_cursor": next_cursor}

    return ctx.locked(_human(ctx, read))


@router.get("/v1/gov/events", response_model=models.GovEvents)
def events(
    ctx: Context, http: Request, cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT_MAX)] = 100,
) -> dict[str, Any]:  # fmt: skip
    """Governance's events as the engine emitted them, newest first: the council or waits
    changed, proposals' steps, parameter changes, market flags, fallback settlement prices and
    their disputes. The newest 10,000 are kept; weighs with those it may answer."""
    charge_list(ctx, http, min(limit, len(ctx.sequencer.read_model.governance)))

    def read() -> dict[str, Any]:
        before = None if cursor is None else int(cursor)
        items, next_cursor = ctx.sequencer.read_model.governance_page(before, limit)
        return {"items": [event_view(e) for e in items], "next_cursor": next_cursor}

    return ctx.locked(_human(ctx, read))


@router.post("/v1/gov/impact", response_model=models.Impact, responses=models.errors(400))
def impact(ctx: Context, request: models.ImpactRequest, http: Request) -> dict[str, Any]:
    """The subaccounts that meet their maintenance margin now and would not once ``actions``
    (a proposal's, as plain JSON: ``{"kind": 1, "target": "BTC-PERP", "name":
    "market.margin.initial_margin_ppm", "value": 45000}``) took full effect, any phase-in
    over: the engine's own margin code at the current marks, nothing submitted. Market
    parameters are measured; other actions are checked and otherwise left out. At most
    ``holders_max`` holders are examined (``truncated`` says when there were more). Weighs
    with those holders against the per-IP limit (two margin computations each)."""
    actions = decode_actions(request.actions)
    charge_work(ctx, http, impact_weight(ctx.engine.state, actions), paid=HEAVY_READ_WEIGHT)

    def read() -> dict[str, Any]:
        engine = ctx.engine
        check_changes(engine.state, actions)
        try:
            found, truncated = engine.liquidatable_after(actions, IMPACT_HOLDERS_MAX)
        except Rejected as refusal:
            raise ApiError(status_of(refusal.reason), refusal.reason.name,
                           f"refused: {refusal.reason.name}") from None  # fmt: skip
        return {
            "liquidatable": [str(s) for s in found], "truncated": truncated,
            "holders_max": IMPACT_HOLDERS_MAX, "height": ctx.sequencer.chain.height,
            "timestamp_ns": engine.state.timestamp_ns,
        }  # fmt: skip

    return ctx.locked(_human(ctx, read))


# ── Views (callers hold the lock) ──────────────────────────────────────────────────────────


def config_view(gov: GovernanceState, now_ns: int) -> dict[str, Any]:
    params = gov.params
    waits = {
        "timelock": params.timelock_ns, "execution_window": params.execution_window_ns,
        "proposal_lifetime": params.proposal_lifetime_ns, "phase_in": params.phase_in_ns,
        "dispute_window": params.dispute_window_ns,
    }  # fmt: skip
    open_now = [p for p in gov.open_proposals if _is_open(gov, p, now_ns)]
    return {
        "governed": True, "council": list(params.council), "threshold": params.threshold,
        "steward": params.steward, "guardian": params.guardian,
        **{f"{name}_ns": ns for name, ns in waits.items()},
        "waits": {name: duration_text(ns) for name, ns in waits.items()},
        "next_proposal_id": gov.next_proposal_id, "open_proposals": len(open_now),
        "paused": sorted(gov.paused), "reduce_only": sorted(gov.reduce_only),
        "phases": [
            {"market_id": m, "from_initial_margin_ppm": p.from_initial_ppm,
             "from_maintenance_share_ppm": p.from_share_ppm, "start_ns": p.start_ns,
             "end_ns": p.end_ns}
            for m, p in sorted(gov.phases.items())
        ],
        "fallbacks": [
            {"market_id": m, "price_quantums": price, "dispute_until_ns": until}
            for m, (price, until) in sorted(gov.fallbacks.items())
        ],
        "timestamp_ns": now_ns,
    }  # fmt: skip


def param_view(entry: Governed, state: EngineState, target: str | None) -> dict[str, Any]:
    gov = state.governance
    values = []
    for found, params in _targets(state, entry.scope):
        if target not in (None, found):
            continue
        last = None if gov is None else gov.last_change_ns(entry.name, found)
        value = read_field(params, entry.path)
        values.append({
            "target": found, "value": value, **readable(entry.name, "value", value),
            "last_change_ns": last, "last_change_ms": _ms_or_none(last),
        })  # fmt: skip
    return {
        "name": entry.name, "scope": entry.scope.name.lower(), "field": entry.path,
        **{key: getattr(entry, key) for key in ("lower", "upper", "step")},
        **{k: v for key in ("lower", "upper", "step")
           for k, v in readable(entry.name, key, getattr(entry, key)).items()},
        "step_ppm": entry.step_ppm, "cooldown_ns": entry.cooldown_ns,
        "direction": DIRECTIONS[entry.safer], "zero_unlimited": entry.zero_unlimited,
        "phased": entry.name in PHASED, "values": values,
    }  # fmt: skip


def _ms_or_none(ns: int | None) -> int | None:
    """Milliseconds beside a time that may be absent (``human`` adds them only to integers)."""
    return None if ns is None else human.ms(ns)


def _targets(state: EngineState, scope: Scope) -> Iterator[tuple[str, object]]:
    """Each target of a scope and the parameters its governed values live in."""
    match scope:
        case Scope.MARKET:
            yield from ((m, s.params) for m, s in sorted(state.markets.items()))
        case Scope.ORACLE:
            yield from ((o, s.params) for o, s in sorted(state.oracles.items()))
        case Scope.ASSET:
            yield from sorted(state.assets.items())
        case Scope.VAULT:
            yield "", state.venue.vault
        case Scope.GOVERNANCE:
            if state.governance is not None:
                yield "", state.governance.params


def readable(name: str, key: str, value: int) -> dict[str, Any]:
    """The human companion of a parameter's value (``key``): a percent string for parts per
    million or billion, milliseconds for nanoseconds; none for the rest."""
    field = name.rsplit(".", 1)[-1]
    if "_ppm" in field:
        return {f"{key}_percent": human.units(value * 100, PPM_ONE) + "%"}
    if "_ppb" in field:
        return {f"{key}_percent": human.units(value * 100, PPB_ONE) + "%"}
    if field.endswith("_ns"):
        return {f"{key}_ms": value // NS_PER_MS}
    return {}


def proposal_view(gov: GovernanceState, proposal: Proposal, now_ns: int) -> dict[str, Any]:
    status = gov.status_of(proposal, now_ns)
    params = gov.params
    expires_ns = {
        ProposalStatus.PENDING: proposal.created_ns + params.proposal_lifetime_ns,
        ProposalStatus.QUEUED: proposal.eta_ns + params.execution_window_ns,
    }.get(status)
    left_ns = max(0, proposal.eta_ns - now_ns) if status is ProposalStatus.QUEUED else None
    return {
        "proposal_id": proposal.proposal_id, "proposer": proposal.proposer,
        "status": status.name.lower(), "approvals": list(proposal.approvals),
        "approvals_count": gov.approvals(proposal), "threshold": params.threshold,
        "created_ns": proposal.created_ns, "eta_ns": proposal.eta_ns,
        "timelock_left_ns": left_ns, "timelock_left_ms": _ms_or_none(left_ns),
        "executable": left_ns == 0, "expires_ns": expires_ns,
        "expires_ms": _ms_or_none(expires_ns), "closed_ns": proposal.closed_ns,
        "actions": [action_view(a) for a in proposal.actions], "memo": proposal.memo,
        "has_simulation": bool(proposal.simulation),
    }  # fmt: skip


def action_view(action: GovAction) -> dict[str, Any]:
    """An action as plain JSON (what ``/v1/gov/impact`` and a ``Propose`` take), its kind's
    name beside the number."""
    plain: dict[str, Any] = to_plain(action)
    extra = readable(action.name, "value", action.value) if action.name in REGISTRY else {}
    return {**plain, "kind_name": action.kind.name.lower(), **extra}


def change_view(item: dict[str, Any]) -> dict[str, Any]:
    """A ``ParamChanged`` of the read model, for people: the role by name, values readable."""
    name = item["name"]
    return {
        **item, "role_name": Role(item["role"]).name.lower(),
        **readable(name, "old_value", item["old_value"]),
        **readable(name, "new_value", item["new_value"]),
    }  # fmt: skip


def event_view(item: dict[str, Any]) -> dict[str, Any]:
    """A governance event of the read model, its numbered enums named beside them."""
    if item["type"] == "ParamChanged":
        return change_view(item)
    if item["type"] == "ProposalChanged":
        return {**item, "status_name": ProposalStatus(item["status"]).name.lower()}
    return item


def parsed_simulation(text: str) -> Any:
    """The proposer's simulation (``propose --simulate``) as JSON; None when there is none, or
    it is no JSON a report would be (NaN and infinities are not JSON; parsing recurses once a
    level, so a deeply nested one is not parsed at all)."""
    if not text or _nesting(text) > SIMULATION_NESTING_MAX:
        return None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return None


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in _JSON_STRING.sub("", text):  # a bracket in a string is text
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


# As the node's body check (``api._STRING``): an unterminated string runs to the end, and no
# attempt backtracks (a plain `"…"` was quadratic in a simulation of `"\"\"\"…`: 1.8 s a read).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _newest_first(gov: GovernanceState, before: int | None) -> Iterator[Proposal]:
    for proposal_id in sorted(gov.proposals, reverse=True):
        if before is None or proposal_id < before:
            yield gov.proposals[proposal_id]


def _matches(status: str, wanted: str | None) -> bool:
    if wanted == "open":
        return status in ("pending", "queued")
    return wanted in (None, status)


def _is_open(gov: GovernanceState, proposal_id: int, now_ns: int) -> bool:
    return gov.status_of(gov.proposals[proposal_id], now_ns) in OPEN


# ── What a list weighs (counted without the lock, by lengths: charged before the work) ──────

# A proposal is rendered with its actions (up to 32) and its memo (up to 1,000 characters):
# 483 proposals of 6 actions and a 1,000-character memo took 55 ms of the node's CPU to answer,
# ~0.11 ms each, 7 items of a list read's 20 µs: a proposal counts as one item and one per
# action. A ``status`` filter decides from the status alone (~1 µs a proposal) and builds a
# view only for the proposals it answers, but it may pass over every proposal ever made
# (they are kept): this many of them count as one item.
PROPOSALS_SCANNED_PER_ITEM = 10


def proposals_listed(state: EngineState, limit: int, *, filtered: bool) -> int:
    """The items a proposals page weighs as: the newest ``limit`` proposals with their actions
    (ids grow, so the dict's order is the ids'), and, with a status filter, each proposal it
    may pass over."""
    gov = state.governance
    if gov is None:
        return 0
    held = list(gov.proposals.values())  # one step in C: the writer may add one meanwhile
    answered = sum(1 + len(p.actions) for p in held[-limit:])
    return answered + (len(held) // PROPOSALS_SCANNED_PER_ITEM if filtered else 0)


def params_listed(
    state: EngineState, scope: str | None, name: str | None, target: str | None
) -> int:
    """The values a registry read lists: one per target of each parameter's scope (a venue of
    many option markets lists each market's parameters for each of them)."""
    targets = {
        Scope.MARKET: len(state.markets), Scope.ORACLE: len(state.oracles),
        Scope.ASSET: len(state.assets), Scope.VAULT: 1, Scope.GOVERNANCE: 1,
    }  # fmt: skip
    return sum(
        1 if target is not None else targets[entry.scope]
        for entry in REGISTRY.values()
        if name in (None, entry.name) and scope in (None, entry.scope.name.lower())
    )


# ── The what-if's input ────────────────────────────────────────────────────────────────────


def impact_weight(state: EngineState, actions: tuple[GovAction, ...]) -> float:
    """About a millisecond a unit: ~20 µs a holder of each market the actions name (counted
    without the lock: an estimate, charged before the work), at most ``IMPACT_HOLDERS_MAX``."""
    targets = {a.target for a in actions if a.kind is ActionKind.SET_PARAM}
    holders = sum(len(m.holders) for t in targets if (m := state.markets.get(MarketId(t))))
    return HEAVY_READ_WEIGHT + min(holders, IMPACT_HOLDERS_MAX) / 40


def decode_actions(raw: list[dict[str, Any]]) -> tuple[GovAction, ...]:
    """Plain-JSON actions, as strictly as a command's body (``core.codec``); a defect answers
    400 INVALID_REQUEST naming the action."""
    found = []
    for index, item in enumerate(raw):
        try:
            action = decode_plain(GovAction, human.addresses_in(item))
        except MalformedCommand as error:
            raise ApiError(400, "INVALID_REQUEST", f"actions[{index}]: {error}",
                           at=f"actions[{index}]") from None  # fmt: skip
        assert isinstance(action, GovAction)
        found.append(action)
    return tuple(found)


def check_changes(state: EngineState, actions: tuple[GovAction, ...]) -> None:
    """What a proposal's checks would refuse in its parameter changes, as the engine's codes:
    an unknown name, a value outside its hard bounds, a market's parameters left inconsistent
    (the what-if would measure margins under parameters no proposal could set)."""
    changed: dict[MarketId, MarketParams] = {}
    for index, action in enumerate(actions):
        if action.kind is not ActionKind.SET_PARAM:
            continue
        entry = REGISTRY.get(action.name)
        where = f"actions[{index}]"
        if entry is None:
            raise ApiError(400, R.PARAM_UNKNOWN.name, f"{where}: no parameter {action.name!r}")
        if not entry.lower <= action.value <= entry.upper:
            bounds = f"[{entry.lower}, {entry.upper}]"
            raise ApiError(400, R.PARAM_OUT_OF_BOUNDS.name, f"{where}: {entry.name} in {bounds}")
        if entry.scope is not Scope.MARKET:
            continue
        market = state.markets.get(MarketId(action.target))
        if market is None:
            raise ApiError(400, R.UNKNOWN_MARKET.name, f"{where}: no market {action.target!r}")
        before = changed.get(market.params.market_id, market.params)
        after = replace_field(before, entry.path, action.value)
        problems = after.problems()
        if problems:
            raise ApiError(400, R.INVALID_PARAMETERS.name, f"{where}: {problems[0]}")
        changed[market.params.market_id] = after
