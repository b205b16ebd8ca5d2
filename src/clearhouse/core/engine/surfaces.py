"""The publishers' surfaces as a block reads them (§5): which are candidates (a publisher's
newest surface, younger than the oracle's ``surface_staleness_ns``) and which are in use (the
fresh ones, once a quorum of them is: ``OracleState.surface_fresh``). Volatilities
(``valuation.py``) and the publishers' forwards (``forwards.py``) are read off the same ones.
"""

from __future__ import annotations

from clearhouse.core import surface
from clearhouse.core.engine.context import Context, SurfaceReads, block_memo
from clearhouse.core.oracle import OracleState


def surface_candidates(ctx: Context, oracle: OracleState) -> list[surface.Candidate]:
    params = oracle.params
    now = ctx.state.timestamp_ns
    weights = {p.address: p.weight for p in params.publishers}
    return [
        surface.Candidate(publisher, weights[publisher], timestamp, slices)
        for publisher, (timestamp, slices) in sorted(oracle.surfaces.items())
        if now - timestamp <= params.surface_staleness_ns and publisher in weights
    ]


def surface_reads(ctx: Context, oracle: OracleState) -> SurfaceReads:
    """The fresh publishers' surfaces in use, as this block reads them: rebuilt when the
    surfaces change (``surface_version``) or the block time moves."""
    memo = block_memo(ctx)
    oracle_id = oracle.params.oracle_id
    reads = memo.surfaces.get(oracle_id)
    if (
        reads is None
        or reads.version != oracle.surface_version
        or reads.params is not oracle.params
    ):
        fresh = oracle.surface_fresh
        candidates = [c for c in surface_candidates(ctx, oracle) if c.publisher in fresh]
        reads = SurfaceReads(oracle.surface_version, oracle.params, candidates)
        memo.surfaces[oracle_id] = reads
    return reads
