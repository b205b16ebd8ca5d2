"""Each block, per market: the mark (EMA basis over the impact mid), the volatility
multiplier of margins, and when an option's scenario profile is revalued.
"""

from __future__ import annotations

from clearhouse.core.engine.context import Context
from clearhouse.core.engine.valuation import expiry_forward, fixed_twap
from clearhouse.core.ids import (
    Side,
)
from clearhouse.core.margin import vol_multiplier_target_ppm
from clearhouse.core.oracle import (
    OracleState,
    annual_volatility_ppm,
    basis_ema_step,
    mark_price,
    premium_ppb,
)
from clearhouse.core.params import MarketKind
from clearhouse.core.state import (
    MarketState,
)
from clearhouse.core.units import (
    NS_PER_HOUR,
    NS_PER_YEAR,
    PPB_ONE,
    PPM_ONE,
    clamp,
    div_floor,
)


def update_mark(ctx: Context, market: MarketState, oracle: OracleState) -> None:
    """The basis EMA and the funding premium weigh each sample by the block time since the
    last one, never by the number of blocks: a burst of blocks carries no more weight than one
    block over the same time (the mark-pushing attack of making blocks). A sample stands for at
    most the oracle's staleness bound, as a TWAP sample does: after a long gap one book does
    not set the basis alone."""
    index = oracle.index_price_quantums
    impact_mid = impact_mid_price(ctx, market)
    since = ctx.state.timestamp_ns - market.basis_sampled_ns if market.basis_sampled_ns else 0
    elapsed = min(since, oracle.params.staleness_ns)
    market.basis_sampled_ns = ctx.state.timestamp_ns
    if impact_mid is not None:
        market.ema_basis_quantums = basis_ema_step(
            ema_basis=market.ema_basis_quantums, basis=impact_mid - index, elapsed_ns=elapsed,
            time_constant_ns=market.params.mark_basis_ema_ns,
        )  # fmt: skip
    band_ppm = mark_band_ppm(market, ctx.state.timestamp_ns)
    settling = settling_mark(ctx, market, oracle)
    market.mark_price_quantums = settling if settling is not None else mark_price(
        index_price=index, ema_basis=market.ema_basis_quantums, impact_mid=impact_mid,
        band_ppm=band_ppm,
    )  # fmt: skip
    # The premium within the mark's band too: a pair of orders far through the index that
    # nobody trades with moves the mark at most the band, and funding no further.
    band_ppb = band_ppm * (PPB_ONE // PPM_ONE)
    premium = clamp(premium_ppb(impact_mid=impact_mid, index_price=index), -band_ppb, band_ppb)
    market.premium_time_ppb_ns += premium * elapsed
    market.premium_time_ns += elapsed


def settling_mark(ctx: Context, market: MarketState, oracle: OracleState) -> int | None:
    """A dated future inside its settlement window is marked at what it will pay: the part of
    the TWAP its samples since the window opened have fixed, and the index for the rest of
    the window, weighed by time (its book no longer: a price there is partly that TWAP). At
    the index alone, a late move marked it as if the whole TWAP would follow: the ladder
    closed a solvent short at a loss three times what holding it to expiry cost, and a
    future hedged by a perpetual looked hedged until it was bankrupt. None outside the
    window, or before a sample in it."""
    fixed = fixed_twap(ctx, market, oracle) if market.params.kind is MarketKind.FUTURE else None
    if fixed is None:
        return None
    average, covered_ns, left_ns = fixed
    weighted = average * covered_ns + oracle.index_price_quantums * left_ns
    return div_floor(weighted, covered_ns + left_ns)  # as the TWAP itself rounds


def mark_band_ppm(market: MarketState, now_ns: int) -> int:
    """How far the mark may stand from the index: the market's band; a dated future's grows
    by its price band per year to expiry (at most the price band), room for the carry a
    forward really has (a nine-month future 3% over spot in contango) that a perpetual's
    basis never needs."""
    params = market.params
    if params.kind is not MarketKind.FUTURE or params.expiry_ns <= now_ns:
        return params.mark_band_ppm
    carry = params.price_band_ppm * (params.expiry_ns - now_ns) // NS_PER_YEAR
    return min(params.mark_band_ppm + carry, params.price_band_ppm)


def impact_mid_price(ctx: Context, market: MarketState) -> int | None:
    notional = market.params.funding.impact_notional_quote_quantums
    per_unit = market.params.base_quantums_per_unit
    impact_bid = market.book.impact_price(Side.SELL, notional, per_unit)
    impact_ask = market.book.impact_price(Side.BUY, notional, per_unit)
    if impact_bid is None or impact_ask is None:
        return None
    return (impact_bid + impact_ask) // 2


def update_vol_multiplier(ctx: Context, market: MarketState, oracle: OracleState) -> None:
    """Move toward clamp(σ/σ_ref, 1, max) at bounded rates, pro rata of block time: up within
    minutes (margins are there for the next move of a crash), down over hours to days (they
    are still there for its next leg; a larger stress takes longer to forget), never in a
    jump. A step that rounds to nothing waits, so that slow blocks still accumulate."""
    margin = market.params.margin
    sigma = annual_volatility_ppm(oracle.variance_e18, oracle.params.vol_sample_interval_ns)
    target = vol_multiplier_target_ppm(margin, sigma)
    current = market.vol_multiplier_ppm
    elapsed = ctx.state.timestamp_ns - market.vol_multiplier_updated_ns
    rising = target > current
    rate = margin.vol_multiplier_rise_ppm_per_hour if rising else (
        margin.vol_multiplier_fall_ppm_per_hour
    )  # fmt: skip
    step = rate * elapsed // NS_PER_HOUR
    if step == 0 and target != current:
        return
    moved = min(target, current + step) if rising else max(target, current - step)
    assert PPM_ONE <= moved <= margin.vol_multiplier_max_ppm, moved
    market.vol_multiplier_ppm = moved
    market.vol_multiplier_updated_ns = ctx.state.timestamp_ns


def maybe_revalue_risk(ctx: Context, market: MarketState, oracle: OracleState) -> None:
    """An option's scenario profile is revalued (like SPAN's risk arrays), at the forward of
    its expiry, when that forward has moved 0.25% from where it was last taken, the surface
    was republished, or five minutes have passed; marks and equity move every block
    regardless."""
    forward = expiry_forward(ctx, market, oracle)
    last = market.risk_forward_quantums
    moved = abs(forward - last) * PPM_ONE > RISK_REVALUE_MOVE_PPM * last
    aged = ctx.state.timestamp_ns - market.risk_timestamp_ns >= RISK_REVALUE_NS
    if moved or aged or oracle.surface_version != market.risk_surface_version:
        market.risk_forward_quantums = forward
        market.risk_timestamp_ns = ctx.state.timestamp_ns
        market.risk_surface_version = oracle.surface_version
        params = oracle.params
        market.risk_vol_ppm = annual_volatility_ppm(
            oracle.variance_e18, params.vol_sample_interval_ns
        )


RISK_REVALUE_MOVE_PPM = 2_500  # an option's profile is revalued after a 0.25% move...


RISK_REVALUE_NS = 5 * 60 * 1_000_000_000  # ...or five minutes
