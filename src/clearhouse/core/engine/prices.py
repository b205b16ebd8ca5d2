"""Prices (§5): publishers' ``ReportPrices`` and ``ReportSurface``; each block, the index
(reports converted to USD at their quote currency's rate, weighted median, quorum, staleness,
breaker hold and release, restart guard), TWAP and EWMA samples, and the surface in use.
"""

from __future__ import annotations

from clearhouse.core import limits, surface
from clearhouse.core.engine.context import Context, Rejected, mutated
from clearhouse.core.engine.surfaces import surface_candidates
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    Address,
    OracleId,
)
from clearhouse.core.messages import (
    CircuitBreakerTripped,
    IndexUpdated,
    ReportPrices,
    ReportSurface,
    SurfaceUpdated,
)
from clearhouse.core.oracle import (
    Aggregate,
    OracleState,
    PriceStatus,
    Report,
    aggregate,
    ewma_variance_e18,
    initial_variance_e18,
    median_confidence,
    usd_reports,
)
from clearhouse.core.params import USD


def report_prices(ctx: Context, command: ReportPrices) -> None:
    reports = command.reports
    if not 0 < len(reports) <= limits.reports_per_command_max:
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    if len({r.oracle_id for r in reports}) != len(reports):
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    for report in reports:
        oracle = ctx.state.oracles.get(report.oracle_id)
        if oracle is None:
            raise Rejected(RejectReason.UNKNOWN_ORACLE)
        if command.signer not in {p.address for p in oracle.params.publishers}:
            raise Rejected(RejectReason.UNKNOWN_PUBLISHER)
        if report.quote != USD and report.quote not in {q.quote for q in oracle.params.quotes}:
            raise Rejected(RejectReason.UNKNOWN_QUOTE_CURRENCY)
        if not 0 < report.price_quantums <= limits.price_quantums_max:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        if not 0 <= report.confidence_quantums <= report.price_quantums:
            raise Rejected(RejectReason.MALFORMED_COMMAND)
        previous = oracle.reports.get(command.signer)
        too_new = report.timestamp_ns > ctx.state.timestamp_ns
        if too_new or (previous is not None and report.timestamp_ns <= previous.timestamp_ns):
            raise Rejected(RejectReason.REPORT_TIMESTAMP_INVALID)
    mutated(ctx)
    for report in reports:
        oracle = ctx.state.oracles[report.oracle_id]
        oracle.reports[command.signer] = Report(
            command.signer, report.price_quantums, report.confidence_quantums,
            report.timestamp_ns, report.quote,
        )  # fmt: skip
        ctx.touched.oracles.add(report.oracle_id)


def update_order(ctx: Context) -> list[OracleId]:
    """The order oracles are updated in each block: rate feeds (oracles that convert no quote
    currency) first, then the oracles that convert at their rates, each group by id, so that
    an index is made at the rates of its own block."""
    oracles = ctx.state.oracles
    return sorted(
        oracles, key=lambda oracle_id: (bool(oracles[oracle_id].params.quotes), oracle_id)
    )


def update_oracle(ctx: Context, oracle: OracleState) -> None:
    now = ctx.state.timestamp_ns
    params = oracle.params
    result = aggregate(
        usd_reports(oracle, ctx.state.oracles), params, now_ns=now,
        previous_price=oracle.index_price_quantums,
    )  # fmt: skip
    previous_status = oracle.status
    result = release_held_price(ctx, oracle, result)
    if result.status is PriceStatus.FRESH:
        if oracle.last_fresh_ns and now - oracle.last_fresh_ns > params.outage_ns:
            oracle.restart_guard = True  # dYdX Oct 2025: no liquidation on the first prices
            oracle.fresh_since_ns = 0
        if result.breaker_tripped:
            oracle.cooling_off_until_ns = now + params.cooling_off_ns
            ctx.events.append(CircuitBreakerTripped(
                oracle_id=params.oracle_id,
                previous_price_quantums=oracle.index_price_quantums,
                price_quantums=result.price_quantums,
                cooling_off_until_ns=oracle.cooling_off_until_ns,
            ))  # fmt: skip
        take_samples(ctx, oracle, result.price_quantums)
        oracle.index_price_quantums = result.price_quantums
        oracle.last_fresh_ns = now
        oracle.fresh_since_ns = oracle.fresh_since_ns or now
        if oracle.restart_guard and now - oracle.fresh_since_ns >= params.recovery_fresh_ns:
            oracle.restart_guard = False  # fresh for long enough: block time, not block count
    else:
        oracle.fresh_since_ns = 0
    oracle.status = (
        result.status
        if result.status is not PriceStatus.STALE
        or previous_status is not PriceStatus.UNINITIALIZED
        else PriceStatus.UNINITIALIZED
    )
    ctx.touched.oracles.add(params.oracle_id)
    # The confidence contingency of this block's margins: from the reports the index was
    # made from, at the same rates (``risk.confidence_quantums``).
    ctx.derived.confidence[params.oracle_id] = median_confidence(oracle, ctx.state.oracles, now)
    if previous_status is not oracle.status or result.status is PriceStatus.FRESH:
        ctx.events.append(IndexUpdated(
            oracle_id=params.oracle_id, status=int(oracle.status),
            index_price_quantums=oracle.index_price_quantums,
        ))  # fmt: skip


def release_held_price(ctx: Context, oracle: OracleState, result: Aggregate) -> Aggregate:
    """A big move without a supermajority is held; if a quorum keeps reporting it for
    ``breaker_hold_ns``, it is real: accept it as a trip (with cooling-off), so that one
    lagging publisher can delay the venue but never freeze it."""
    now = ctx.state.timestamp_ns
    if result.status is not PriceStatus.BREAKER_HELD:
        oracle.held_since_ns = 0
        return result
    if oracle.held_since_ns == 0:
        oracle.held_since_ns = now
    if now - oracle.held_since_ns < oracle.params.breaker_hold_ns:
        return result
    oracle.held_since_ns = 0
    return Aggregate(
        PriceStatus.FRESH, result.held_price_quantums, result.included_weight,
        result.total_weight, breaker_tripped=True,
    )  # fmt: skip


def take_samples(ctx: Context, oracle: OracleState, price: int) -> None:
    """TWAP samples and the EWMA variance, each on its own fixed cadence of block time."""
    now = ctx.state.timestamp_ns
    params = oracle.params
    last_twap = oracle.twap_samples[-1][0] if oracle.twap_samples else 0
    if now - last_twap >= params.twap_sample_interval_ns:
        oracle.twap_samples.append((now, price))
        slot = oracle.twap_samples_taken % limits.twap_samples_max
        oracle.twap_samples_taken += 1
        ctx.touched.twap_slots[(params.oracle_id, slot)] = (now, price)
    if oracle.vol_sample_ns == 0:
        oracle.variance_e18 = initial_variance_e18(params)
        oracle.vol_sample_ns, oracle.vol_sample_price_quantums = now, price
    elif now - oracle.vol_sample_ns >= params.vol_sample_interval_ns:
        oracle.variance_e18 = ewma_variance_e18(
            oracle.variance_e18, previous_price=oracle.vol_sample_price_quantums,
            price=price, lambda_ppm=params.vol_lambda_ppm,
            elapsed_ns=now - oracle.vol_sample_ns,
            sample_interval_ns=params.vol_sample_interval_ns,
        )  # fmt: skip
        oracle.vol_sample_ns, oracle.vol_sample_price_quantums = now, price


def report_surface(ctx: Context, command: ReportSurface) -> None:
    oracle = ctx.state.oracles.get(command.oracle_id)
    if oracle is None:
        raise Rejected(RejectReason.UNKNOWN_ORACLE)
    if command.signer not in {p.address for p in oracle.params.publishers}:
        raise Rejected(RejectReason.UNKNOWN_PUBLISHER)
    now = ctx.state.timestamp_ns
    stale = now - command.timestamp_ns > oracle.params.surface_staleness_ns
    previous = oracle.surfaces.get(command.signer)
    replayed = previous is not None and command.timestamp_ns <= previous[0]
    if command.timestamp_ns > now or stale or replayed:
        raise Rejected(RejectReason.REPORT_TIMESTAMP_INVALID)
    if surface.forward_problems(command.slices):
        raise Rejected(RejectReason.SURFACE_FORWARD_INVALID)
    if surface.problems(command.slices, command.timestamp_ns):
        raise Rejected(RejectReason.SURFACE_ARBITRAGE)
    mutated(ctx)
    oracle.surfaces[command.signer] = (command.timestamp_ns, tuple(command.slices))
    oracle.surface_version += 1
    ctx.touched.oracles.add(command.oracle_id)
    select_surface(ctx, oracle)
    ctx.events.append(SurfaceUpdated(
        oracle_id=command.oracle_id, publisher=command.signer,
        timestamp_ns=command.timestamp_ns, slices=len(command.slices),
    ))  # fmt: skip


def select_surface(ctx: Context, oracle: OracleState) -> None:
    """Which publishers' surfaces are fresh (given a quorum), and the median one among
    them (what clients read as "the" surface); the engine's volatilities are medians taken
    point by point across all of them (``_implied_vol``)."""
    fresh = surface_candidates(ctx, oracle)
    chosen = surface.select(
        fresh, total_weight=sum(p.weight for p in oracle.params.publishers),
        quorum_ppm=oracle.params.quorum_ppm,
    )  # fmt: skip
    publishers = () if chosen is None else tuple(Address(c.publisher) for c in fresh)
    found = ((), 0) if chosen is None else (chosen.slices, chosen.timestamp_ns)
    if (oracle.surface, oracle.surface_timestamp_ns, oracle.surface_fresh) != (
        *found,
        publishers,
    ):
        oracle.surface, oracle.surface_timestamp_ns = found
        if oracle.surface_fresh != publishers:
            oracle.surface_fresh = publishers
            oracle.surface_version += 1
        ctx.touched.oracles.add(oracle.params.oracle_id)
