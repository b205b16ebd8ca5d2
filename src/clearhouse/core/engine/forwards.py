"""Forwards per expiry (SPEC §5, §6): an option is marked and margined on the forward of its
expiry, not on the index. A nine-month forward 3% above the index, marked at the index,
mis-marks a book of options by several percent.

Each block, before prices move, every oracle's *curve* is taken from its dated futures' marks
as the last block left them: for each active future, its basis (mark − index, both of that
moment) at its expiry. The curve is state (leaf ``forward/<oracle>``), so every replica marks on
the same one. The venue's forward of an expiry is the index now plus the basis read off the
curve:

* between two futures, the basis interpolated linearly in time;
* before the first future, its basis scaled down linearly to nothing at expiry now (a forward
  converges to spot);
* after the last future, the last basis held, never extrapolated (a noisy short basis
  multiplied out to a year would move far-dated marks on nothing);
* no future listed: the index.

**The publishers' forward bounds the venue's.** A dated future's mark can be held at its band
(1% and more, room for carry besides) by a bid and an offer nobody trades with; read straight
into the forward, that moved every option of the expiry and pushed an honest writer 3,700 USDC
above maintenance into the portfolio auction, for free (docs/RELIABILITY.md, round 11). The
oracle's publishers read the expiry's forward off the external venues' chains (Deribit's and
OKX's ``underlying_price`` per expiry: their futures, or the forward implied by put-call parity
on books that trade) and may send it with each slice of their surface, as a basis to the index
in ppm (``SviSlice.forward_basis_ppm``). Where a quorum of the oracle's publishers' fresh
surfaces report one (the surfaces volatilities are read off, ``surfaces.surface_reads``), the
expiry's forward is

* the venue's forward, clamped to within ``limits.reported_forward_tolerance_ppm`` (0.25%) of
  the publishers' forward: the weighted median across those surfaces of each one's basis at the
  expiry (read by the curve's rules above), applied to the index now;
* the publishers' forward alone where no future is listed (the curve knows nothing then).

Why a clamp and not the publishers' forward alone: the venue's futures are where an option's
delta is hedged and what a dated future settles against, so marks that agree with them keep
the venue's own parity; the curve moves every block while a surface arrives every few minutes
(a real change of the basis is followed at once, up to the tolerance), and a publisher's basis
is taken against its own index, a few basis points from this one. Why the publishers' forward
bounds it: an on-venue book nobody trades must not move option marks (Deribit can mark on its
own futures because they are the deepest books of the market; a thin venue's are not), while a
real basis, which the external venues all report, must be followed (Lyra v2 takes each
expiry's forward from its oracle feed for this reason). A push's reach falls from the band to
the tolerance; a real basis of any size (within ``limits.forward_basis_ppm_max``) is followed.
Where no quorum reports a forward, the venue's forward is used as it always was.
"""

from __future__ import annotations

import itertools

from clearhouse.core import limits
from clearhouse.core.engine.context import Context
from clearhouse.core.engine.surfaces import surface_reads
from clearhouse.core.ids import OracleId
from clearhouse.core.oracle import OracleState, weighted_median
from clearhouse.core.params import MarketKind
from clearhouse.core.state import MarketStatus
from clearhouse.core.units import PPM_ONE, div_floor

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
    """The forward of ``expiry_ns`` (the only place one is computed): the index plus the
    curve's basis there, bounded by the publishers' forward where they report one (see the
    module's rules); at least 1."""
    state = ctx.state
    now = state.timestamp_ns
    if expiry_ns <= now:
        return index
    curve = state.forward_curves.get(oracle_id)
    reported = reported_basis_ppm(ctx, state.oracles[oracle_id], expiry_ns)
    if reported is None:
        return max(index + basis_at(curve, now, expiry_ns), 1) if curve else index
    publishers = max(index + div_floor(index * reported, PPM_ONE), 1)
    if not curve:
        return publishers
    room = div_floor(publishers * limits.reported_forward_tolerance_ppm, PPM_ONE)
    on_venue = index + basis_at(curve, now, expiry_ns)
    return min(max(on_venue, publishers - room), publishers + room)


def reference_forward(ctx: Context, oracle: OracleState, expiry_ns: int) -> int:
    """The forward the options AMM's quotes also span (``options_vault.make_option_quote``):
    the publishers' where they report one for ``expiry_ns`` (the index moved by their basis),
    else the index; at least 1. The venue's forward may sit anywhere within the tolerance of
    the publishers' (a dated future's book nobody trades moves it there for free): quoting on
    the index as the second forward, the AMM's ask of a call fell with a curve pulled 0.25%
    under a real basis of 1%, and its bid of a put rose (docs/RELIABILITY.md, "Economic
    attacks, round 12")."""
    index = max(oracle.index_price_quantums, 1)
    if expiry_ns <= ctx.state.timestamp_ns:
        return index
    reported = reported_basis_ppm(ctx, oracle, expiry_ns)
    if reported is None:
        return index
    return max(index + div_floor(index * reported, PPM_ONE), 1)


def reported_basis_ppm(ctx: Context, oracle: OracleState, expiry_ns: int) -> int | None:
    """The publishers' basis at ``expiry_ns``, in ppm of the index: the weighted median, across
    the fresh surfaces in use, of each one's reported basis read there by the curve's rules
    (its slices that report one and expire after now); None unless the surfaces reporting hold
    the oracle's quorum of its publishers' weight (one publisher can neither move it nor
    impose it). Taken once per block and surface version for each expiry."""
    reads = surface_reads(ctx, oracle)
    if expiry_ns in reads.bases:
        return reads.bases[expiry_ns]
    now = ctx.state.timestamp_ns
    found: list[tuple[int, int]] = []
    for candidate in reads.candidates:
        points = tuple(
            (piece.expiry_ns, piece.forward_basis_ppm) for piece in candidate.slices
            if piece.forward_basis_ppm is not None and piece.expiry_ns > now
        )  # fmt: skip
        if points:
            found.append((basis_at(points, now, expiry_ns), candidate.weight))
    params = oracle.params
    total = sum(p.weight for p in params.publishers)
    quorum = bool(found) and sum(w for _, w in found) * PPM_ONE >= params.quorum_ppm * total
    basis = weighted_median(found) if quorum else None
    reads.bases[expiry_ns] = basis
    return basis


def basis_at(curve: Curve, now_ns: int, expiry_ns: int) -> int:
    """The basis at ``expiry_ns`` read off ``curve`` (see the module's rules); rounded down.
    The same rules read a publisher's reported basis (in ppm) at an expiry."""
    first_expiry, first_basis = curve[0]
    if expiry_ns <= first_expiry:
        return div_floor(first_basis * (expiry_ns - now_ns), first_expiry - now_ns)
    for (before_ns, before), (after_ns, after) in itertools.pairwise(curve):
        if expiry_ns <= after_ns:
            span = after_ns - before_ns
            return before + div_floor((after - before) * (expiry_ns - before_ns), span)
    return curve[-1][1]
