"""Forwards per expiry (SPEC §5, §6): an option is marked and margined on the forward of its
expiry, not on the index. A nine-month forward 3% above the index, marked at the index,
mis-marks a book of options by several percent.

Each block, before prices move, every oracle's *curve* is taken from its dated futures' marks
as the last block left them: for each active future, its basis (mark − index, both of that
moment) at its expiry. The curve is state (leaf ``forward/<oracle>``), so every replica marks on
the same one. An expiry's forward is the index now plus the basis read off the curve:

* between two futures, the basis interpolated linearly in time;
* before the first future, its basis scaled down linearly to nothing at expiry now (a forward
  converges to spot);
* after the last future, the last basis held, never extrapolated (a noisy short basis
  multiplied out to a year would move far-dated marks on nothing);
* no future listed: the index.
"""

from __future__ import annotations

import itertools

from clearhouse.core.engine.context import Context
from clearhouse.core.ids import OracleId
from clearhouse.core.params import MarketKind
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import div_floor

Curve = tuple[tuple[int, int], ...]  # (expiry_ns, basis_quote_quantums), by expiry


def take_curves(ctx: Context) -> None:
    """Each block, first: every oracle's curve from its futures as the last block left them
    (a curve changed is a leaf rewritten; an oracle with no future keeps none)."""
    state = ctx.state
    found: dict[OracleId, list[tuple[int, int]]] = {}
    for market_id in sorted(state.markets):
        market = state.markets[market_id]
        params = market.params
        oracle = state.oracles[params.oracle_id]
        listed = params.kind is MarketKind.FUTURE and market.status is MarketStatus.ACTIVE
        if not listed or market.mark_price_quantums <= 0 or not oracle.is_usable():
            continue
        if params.expiry_ns <= state.timestamp_ns:
            continue
        basis = market.mark_price_quantums - oracle.index_price_quantums
        found.setdefault(params.oracle_id, []).append((params.expiry_ns, basis))
    curves = {oracle_id: tuple(sorted(points)) for oracle_id, points in found.items()}
    for oracle_id in sorted(curves.keys() | state.forward_curves.keys()):
        if curves.get(oracle_id) != state.forward_curves.get(oracle_id):
            ctx.touched.forward_curves.add(oracle_id)
    state.forward_curves = curves


def forward_quantums(ctx: Context, oracle_id: OracleId, index: int, expiry_ns: int) -> int:
    """The forward of ``expiry_ns``: the index plus the curve's basis there; at least 1."""
    curve = ctx.state.forward_curves.get(oracle_id)
    now = ctx.state.timestamp_ns
    if not curve or expiry_ns <= now:
        return index
    return max(index + basis_at(curve, now, expiry_ns), 1)


def basis_at(curve: Curve, now_ns: int, expiry_ns: int) -> int:
    """The basis at ``expiry_ns`` read off ``curve`` (see the module's rules); rounded down."""
    first_expiry, first_basis = curve[0]
    if expiry_ns <= first_expiry:
        return div_floor(first_basis * (expiry_ns - now_ns), first_expiry - now_ns)
    for (before_ns, before), (after_ns, after) in itertools.pairwise(curve):
        if expiry_ns <= after_ns:
            span = after_ns - before_ns
            return before + div_floor((after - before) * (expiry_ns - before_ns), span)
    return curve[-1][1]
