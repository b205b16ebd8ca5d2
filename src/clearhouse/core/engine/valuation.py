"""The engine's floats (§6): surface freshness, realized and implied
volatility, option legs, option marks by Black-76, and what a unit pays at expiry. The same
operations in the same order on every replica.
"""

from __future__ import annotations

from clearhouse.core import limits, option_math, surface
from clearhouse.core.engine.context import Context, SurfaceReads, block_memo
from clearhouse.core.engine.forwards import forward_quantums
from clearhouse.core.engine.surfaces import surface_reads
from clearhouse.core.oracle import (
    OracleState,
    annual_volatility_ppm,
    twap_window,
)
from clearhouse.core.params import (
    MarketParams,
)
from clearhouse.core.scenario_grid import (
    Instrument,
)
from clearhouse.core.state import (
    MarketState,
    MarketStatus,
)
from clearhouse.core.units import (
    PPM_ONE,
)


def surface_fresh(ctx: Context, oracle: OracleState) -> bool:
    age = ctx.state.timestamp_ns - oracle.surface_timestamp_ns
    return bool(oracle.surface) and age <= oracle.params.surface_staleness_ns


def realized_vol(ctx: Context, oracle: OracleState) -> float:
    params = oracle.params
    return annual_volatility_ppm(oracle.variance_e18, params.vol_sample_interval_ns) / PPM_ONE


def implied_vol(
    ctx: Context, oracle: OracleState, expiry_ns: int, strike: int, forward: float
) -> float:
    """The weighted median, across the fresh publishers' surfaces, of their volatility at
    this strike and expiry (a minority cannot move any point of the smile); realized
    volatility while no quorum of surfaces is fresh. Bounded to [1%, 1000%]. Taken once per
    block for each (surface version, expiry, strike, forward): calls and puts share it."""
    reads = surface_reads(ctx, oracle)
    if not oracle.surface or not reads.candidates:
        return min(max(realized_vol(ctx, oracle), 0.01), 10.0)
    key = (expiry_ns, strike, forward)
    found = reads.vols.get(key)
    if found is None:
        found = _median_vol(reads, expiry_ns, option_math.log(strike / forward))
        if found is None:
            return min(max(realized_vol(ctx, oracle), 0.01), 10.0)
        reads.vols[key] = found
    return found


def _median_vol(reads: SurfaceReads, expiry_ns: int, log_moneyness: float) -> float | None:
    """The weighted median of the candidates' volatilities at this point (None when no
    candidate's surface reaches past its own timestamp to this expiry)."""
    at_expiry = reads.expiries.get(expiry_ns)
    if at_expiry is None:
        pieces = [
            (surface.ExpiryRead(c.slices, timestamp_ns=c.timestamp_ns, expiry_ns=expiry_ns),
             c.weight)
            for c in reads.candidates
            if expiry_ns > c.timestamp_ns
        ]  # fmt: skip
        at_expiry = reads.expiries[expiry_ns] = (pieces, sum(w for _, w in pieces))
    pieces, total = at_expiry
    if not pieces:
        return None
    vols = sorted([(read.volatility(log_moneyness), weight) for read, weight in pieces])
    running = 0
    for vol, weight in vols:
        running += weight
        if running * 2 >= total:
            return min(max(vol, 0.01), 10.0)
    raise AssertionError("unreachable: cumulative weight reaches the total")


def option_legs(
    ctx: Context, market: MarketState, oracle: OracleState, forward: float, timestamp_ns: int
) -> list[tuple[Instrument, float]]:
    """A contract as (instrument, units) legs: a linear leg, and a call per payoff kink."""
    payoff = market.params.payoff
    if payoff is None:
        return [(Instrument(expiry_years=0.0), 1.0)]
    left_ns = market.params.expiry_ns - timestamp_ns
    active = market.status is MarketStatus.ACTIVE and left_ns > 0
    expiry_years = surface.years(left_ns) if active else 0.0
    legs = [(Instrument(expiry_years=expiry_years), float(payoff.slope_units))]
    for strike, change in payoff.kinks:
        vol = implied_vol(ctx, oracle, market.params.expiry_ns, strike, forward) if active else 0.0
        instrument = Instrument(
            expiry_years=expiry_years, strike=float(strike), is_call=True, volatility=vol
        )
        legs.append((instrument, float(change)))
    return [(i, units) for i, units in legs if units != 0.0]


def option_mark(ctx: Context, market: MarketState, oracle: OracleState) -> int:
    """Black-76 on the forward of its expiry (``engine/forwards.py``), volatility from the
    surface; rounded to the nearest quantum (a mark is no one's side: values then round
    against each account).

    ``option_legs`` at that forward now, summed leg by leg in their order (cash, the forward,
    the calls), with each call's value taken once per block at each point: a put at the
    same strike and expiry is that call plus cash and a forward."""
    return option_mark_on(ctx, market, oracle, expiry_forward(ctx, market, oracle))


def option_mark_on(
    ctx: Context, market: MarketState, oracle: OracleState, forward_quantums: int
) -> int:
    """``option_mark`` on the forward given: the options AMM also prices its quotes on the
    index alone (``engine/options_vault.py``)."""
    payoff = market.params.payoff
    assert payoff is not None
    forward = float(forward_quantums)
    left_ns = market.params.expiry_ns - ctx.state.timestamp_ns
    active = market.status is MarketStatus.ACTIVE and left_ns > 0
    fixed = fixed_twap(ctx, market, oracle) if active else None
    if fixed is not None:
        return _settling_option_mark(ctx, market, oracle, forward, fixed)
    expiry_years = surface.years(left_ns) if active else 0.0
    value = float(payoff.cash_quote_quantums)
    slope = float(payoff.slope_units)
    if slope != 0.0:
        value += slope * forward  # a linear unit is worth the forward
    values = block_memo(ctx).values
    for strike, change in payoff.kinks:
        units = float(change)
        if units == 0.0:
            continue
        vol = implied_vol(ctx, oracle, market.params.expiry_ns, strike, forward) if active else 0.0
        value += units * values.call(forward, float(strike), expiry_years, vol)
    return min(max(round(value), 0), limits.price_quantums_max)


AVERAGE_VOL = 3.0**0.5  # an average over a span moves with σ/√3 of the span's end point


def _settling_option_mark(
    ctx: Context, market: MarketState, oracle: OracleState, forward: float,
    fixed: tuple[int, int, int],
) -> int:  # fmt: skip
    """An option inside its settlement window pays its payoff at TWAP = a·A + (1 − a)·M, A the
    part its samples have fixed (a its share of the time), M the index's average over the time
    left. With M lognormal around the forward, at the volatility of an average (σ/√3 over the
    time left), a call at K is worth (1 − a) × Black-76 at K' = (K − a·A)/(1 − a), or its
    intrinsic a·A + (1 − a)·F − K when K' ≤ 0. At Black-76 on the index alone, a late move was
    marked as if the whole TWAP would follow it."""
    payoff = market.params.payoff
    assert payoff is not None
    average, covered_ns, left_ns = fixed
    share = covered_ns / (covered_ns + left_ns)
    settled_part = share * float(average)
    expected = settled_part + (1.0 - share) * forward
    value = float(payoff.cash_quote_quantums) + float(payoff.slope_units) * expected
    values = block_memo(ctx).values
    years = surface.years(left_ns)
    for strike, change in payoff.kinks:
        units = float(change)
        if units == 0.0:
            continue
        rest_strike = (float(strike) - settled_part) / (1.0 - share)
        if rest_strike <= 0.0:
            value += units * (expected - float(strike))
            continue
        vol = implied_vol(ctx, oracle, market.params.expiry_ns, strike, forward) / AVERAGE_VOL
        value += units * (1.0 - share) * values.call(forward, rest_strike, years, vol)
    return min(max(round(value), 0), limits.price_quantums_max)


def fixed_twap(
    ctx: Context, market: MarketState, oracle: OracleState
) -> tuple[int, int, int] | None:
    """Inside a dated market's settlement window, before expiry: (the TWAP of the window so
    far, rounded down as the settlement's is; the time its samples cover; the time left to
    expiry). What it will pay is then partly fixed. None outside the window, or before a
    sample in it."""
    params = market.params
    now = ctx.state.timestamp_ns
    start = params.expiry_ns - params.settlement_window_ns
    if not start < now < params.expiry_ns:  # a perpetual's expiry is 0: never
        return None
    fixed = twap_window(
        oracle.twap_samples, start_ns=start, end_ns=now, max_hold_ns=oracle.params.staleness_ns
    )  # fmt: skip
    if fixed.covered_ns == 0:
        return None
    return fixed.price_quantums, fixed.covered_ns, params.expiry_ns - now


def expiry_forward(ctx: Context, market: MarketState, oracle: OracleState) -> int:
    """The forward of a dated market's expiry on its oracle's curve; at least 1."""
    index = max(oracle.index_price_quantums, 1)
    return forward_quantums(ctx, oracle.params.oracle_id, index, market.params.expiry_ns)


def expiry_unit_value(params: MarketParams, price: int) -> int:
    """What one whole unit pays at this settlement price: the price, or the payoff there."""
    return price if params.payoff is None else params.payoff.value(price)
