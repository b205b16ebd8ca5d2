"""Accounts (§3): nonces (Hyperliquid's scheme: a window of recent nonces per signing key)
and agent keys an account lets trade and cancel for it (``AuthorizeAgent``, ``RevokeAgent``).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from clearhouse.core import limits
from clearhouse.core.engine.context import Context, Rejected, mutated
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    Address,
    is_address,
)
from clearhouse.core.messages import (
    AGENT_COMMANDS,
    AgentAuthorized,
    AgentRevoked,
    AuthorizeAgent,
    Command,
    RevokeAgent,
)
from clearhouse.core.units import (
    NS_PER_MS,
)


def check_nonce(ctx: Context, command: Command, key: Address) -> RejectReason | None:
    if not is_address(command.signer) or type(command.nonce) is not int:
        return RejectReason.MALFORMED_COMMAND
    if key is not command.signer and not is_address(key):  # an agent's key: checked apart
        return RejectReason.MALFORMED_COMMAND
    now_ms = ctx.state.timestamp_ns // NS_PER_MS
    venue = ctx.state.venue
    if command.nonce <= now_ms - venue.nonce_window_past_ns // NS_PER_MS:
        return RejectReason.NONCE_TOO_OLD
    if command.nonce >= now_ms + venue.nonce_window_future_ns // NS_PER_MS:
        return RejectReason.NONCE_TOO_NEW
    used = ctx.state.nonces.get(key, [])
    position = bisect_left(used, command.nonce)
    if position < len(used) and used[position] == command.nonce:
        return RejectReason.NONCE_ALREADY_USED
    if len(used) >= limits.nonces_kept_per_signer and command.nonce < used[0]:
        return RejectReason.NONCE_BELOW_WINDOW
    return None


def agent_refusal(ctx: Context, command: Command, agent: Address | None) -> RejectReason | None:
    if agent is None:
        return None
    valid_until = ctx.state.agents.get(command.signer, {}).get(agent)
    if valid_until is None or valid_until < ctx.state.timestamp_ns:
        return RejectReason.AGENT_NOT_AUTHORIZED
    if not isinstance(command, AGENT_COMMANDS):
        return RejectReason.AGENT_NOT_ALLOWED
    return None


def authorize_agent(ctx: Context, command: AuthorizeAgent) -> None:
    agents = ctx.state.agents.get(command.signer, {})
    now = ctx.state.timestamp_ns
    if not is_address(command.agent) or command.agent == command.signer:
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if not now < command.valid_until_ns <= now + limits.agent_validity_max_ns:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    live = {a for a, until in agents.items() if until >= now}
    if command.agent not in live and len(live) >= limits.agents_per_account_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    mutated(ctx)
    kept = {a: until for a, until in agents.items() if a in live}
    kept[command.agent] = command.valid_until_ns
    ctx.state.agents[command.signer] = dict(sorted(kept.items()))
    ctx.touched.agents.add(command.signer)
    ctx.events.append(AgentAuthorized(
        account=command.signer, agent=command.agent, valid_until_ns=command.valid_until_ns
    ))  # fmt: skip


def revoke_agent(ctx: Context, command: RevokeAgent) -> None:
    agents = ctx.state.agents.get(command.signer, {})
    if command.agent not in agents:
        raise Rejected(RejectReason.AGENT_NOT_AUTHORIZED)
    mutated(ctx)
    del agents[command.agent]
    if not agents:
        del ctx.state.agents[command.signer]
    ctx.touched.agents.add(command.signer)
    ctx.events.append(AgentRevoked(account=command.signer, agent=command.agent))


def consume_nonce(ctx: Context, signer: Address, nonce: int) -> None:
    used = ctx.state.nonces.setdefault(signer, [])
    newest = used[-1] if used else None
    insort(used, nonce)
    if len(used) > limits.nonces_kept_per_signer:
        del used[0]
    if used[-1] != newest:
        aging = ctx.derived.nonce_ages
        if newest is not None:
            aging.remove((newest, signer))
        aging.add((used[-1], signer))
    ctx.touched.nonces.add(signer)


def forget_aged_nonces(ctx: Context) -> None:
    """Drop the nonce sets whose newest nonce is past the venue's window (a block step; oldest
    first, at most ``nonce_sets_forgotten_per_block_max``). Nothing a key may send changes:
    every nonce such a set holds is at or below ``check_nonce``'s too-old bound, so a command
    that passes that bound is above all of them, and neither a repeat nor the kept window's
    floor could refuse it. What goes is a state leaf for every key that ever signed (a key
    used once, an agent revoked), kept for good until now. This holds because the window is
    the venue's, fixed at genesis: a window that could widen would let a forgotten nonce be
    sent again."""
    window_ms = ctx.state.venue.nonce_window_past_ns // NS_PER_MS
    too_old_ms = ctx.state.timestamp_ns // NS_PER_MS - window_ms
    aging = ctx.derived.nonce_ages
    for _ in range(limits.nonce_sets_forgotten_per_block_max):
        if not aging or aging[0][0] > too_old_ms:
            return
        _, signer = aging.pop(0)
        del ctx.state.nonces[signer]
        ctx.touched.nonces.add(signer)
