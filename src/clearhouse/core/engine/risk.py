"""State → margin inputs: each market's risk (cached by everything it depends on), collateral
prices, a subaccount's risk in its margin mode, cooling-off, and Greeks. The margin arithmetic
itself is ``core/margin.py``.
"""

from __future__ import annotations

import dataclasses

from clearhouse.core.engine.context import CachedMarketRisk, Context, ImFractions, block_memo
from clearhouse.core.engine.valuation import option_legs, realized_vol, surface_fresh
from clearhouse.core.errors import RejectReason
from clearhouse.core.governance import phase_step, phased_value
from clearhouse.core.ids import (
    QUOTE_ASSET,
    AssetId,
    MarketId,
    SubaccountId,
)
from clearhouse.core.ledger import (
    Subaccount,
)
from clearhouse.core.margin import (
    CollateralPrice,
    MarketRisk,
    Risk,
    is_reducing,
    market_im_fraction_ppm,
    new_risk_multiplier_ppm,
    reduces_risk,
    subaccount_equity,
    subaccount_risk,
    vol_multiplier_target_ppm,
)
from clearhouse.core.options_vault import Exposure
from clearhouse.core.oracle import (
    OracleState,
    annual_volatility_ppm,
    median_confidence,
)
from clearhouse.core.params import (
    MarketKind,
)
from clearhouse.core.scenario_grid import (
    Profile,
    profile,
)
from clearhouse.core.state import (
    MarketState,
    MarketStatus,
)
from clearhouse.core.units import (
    PPM_ONE,
    div_ceil,
    mul_ppm_ceil,
)


def is_cooling_off(ctx: Context, market: MarketState) -> bool:
    """After a circuit breaker trips, the market is reduce-only until cooling-off ends."""
    oracle = ctx.state.oracles[market.params.oracle_id]
    return oracle.cooling_off_until_ns > ctx.state.timestamp_ns


def is_reduce_only(ctx: Context, market: MarketState) -> bool:
    """Orders may only reduce positions: cooling off after a circuit breaker, or by
    governance (the guardian or the council)."""
    gov = ctx.state.governance
    governed = gov is not None and market.params.market_id in gov.reduce_only
    return governed or is_cooling_off(ctx, market)


def is_paused(ctx: Context, market_id: MarketId) -> bool:
    gov = ctx.state.governance
    return gov is not None and market_id in gov.paused


def effective_margin(ctx: Context, market_id: MarketId) -> tuple[int, int]:
    """(initial margin, maintenance share) existing positions pay now: the market's own, or
    where its phase-in stands."""
    margin = ctx.state.markets[market_id].params.margin
    gov = ctx.state.governance
    phase = None if gov is None else gov.phases.get(market_id)
    if phase is None:
        return margin.initial_margin_ppm, margin.maintenance_share_ppm
    now = ctx.state.timestamp_ns
    span = {"start_ns": phase.start_ns, "end_ns": phase.end_ns, "now_ns": now}
    return (
        phased_value(phase.from_initial_ppm, margin.initial_margin_ppm, **span),
        phased_value(phase.from_share_ppm, margin.maintenance_share_ppm, **span),
    )


def market_profile(ctx: Context, market_id: MarketId) -> Profile:
    """One unit's scenario losses and Greeks (delta, gamma, vega, theta per year)."""
    found = profiled(ctx, market_id, market_risk(ctx, market_id)).profile
    assert found is not None
    return found


def profiled(ctx: Context, market_id: MarketId, risk: MarketRisk) -> MarketRisk:
    """``risk`` with its contract's profile, which a linear market's risk leaves out until
    portfolio mode or Greeks ask (an option's carries its own). The venue's current risk gets
    one profiled risk, kept beside it (the same object while it stands: portfolio mode
    remembers risks by identity); any other (a what-if) a new one. The profile is the one
    ``_risk_at`` would have taken: a linear contract's depends on the index and realized
    volatility alone, both in ``market_risk``'s key."""
    if risk.profile is not None:
        return risk
    cached = ctx.derived.market_risk_cache.get(market_id)
    current = cached if cached is not None and cached.risk is risk else None
    if current is not None and current.profiled is not None:
        return current.profiled
    market = ctx.state.markets[market_id]
    oracle = ctx.state.oracles[market.params.oracle_id]
    with_profile = dataclasses.replace(risk, profile=contract_profile(ctx, market, oracle))
    if current is not None:
        ctx.derived.market_risk_cache[market_id] = current._replace(profiled=with_profile)
    return with_profile


# Vega is reported per expiry bucket (days to expiry, upper bounds inclusive) besides its total:
# a book long vega in one month and short it in another looks flat in the total alone.
VEGA_BUCKET_DAYS = (7, 30, 90, 180)
VEGA_BUCKETS = ("0-7d", "7-30d", "30-90d", "90-180d", "180d+")
NS_PER_DAY = 24 * 3600 * 10**9


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Greeks:
    """A subaccount's Greeks on one underlying: delta in whole units of the underlying, gamma
    per whole quote unit of move, vega in quote units per 1.00 of volatility (in total and by
    expiry bucket, ``VEGA_BUCKETS``), theta in quote units per year, rho in quote units per
    1.00 of rate (the rate carrying the forward and discounting the payoff)."""

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0
    rho: float = 0.0
    vega_by_expiry: tuple[float, ...] = (0.0,) * len(VEGA_BUCKETS)

    def as_dict(self) -> dict[str, float | dict[str, float]]:
        return {
            "delta": self.delta, "gamma": self.gamma, "vega": self.vega, "theta": self.theta,
            "rho": self.rho, "vega_by_expiry": dict(zip(VEGA_BUCKETS, self.vega_by_expiry,
                                                        strict=True)),
        }  # fmt: skip


def vega_bucket(expiry_ns: int, now_ns: int) -> int:
    """Index in ``VEGA_BUCKETS`` of an expiry: its days to expiry against the bounds."""
    days = max(expiry_ns - now_ns, 0) / NS_PER_DAY
    return next((i for i, bound in enumerate(VEGA_BUCKET_DAYS) if days <= bound), 4)


def greeks(ctx: Context, subaccount_id: SubaccountId) -> dict[str, Greeks]:
    """The Greeks of a subaccount's positions per underlying (``Greeks``)."""
    subaccount = ctx.state.ledger.subaccounts.get(subaccount_id)
    totals: dict[str, list[float]] = {}
    buckets: dict[str, list[float]] = {}
    positions = {} if subaccount is None else subaccount.positions
    quote = float(ctx.state.assets[QUOTE_ASSET].quantums_per_unit)
    for market_id, position in sorted(positions.items()):
        market = ctx.state.markets[market_id]
        units = position.size_base_quantums / market.params.base_quantums_per_unit
        found = market_profile(ctx, market_id)
        oracle_id = market.params.oracle_id
        row = totals.setdefault(oracle_id, [0.0] * 5)
        scaled = (
            found.delta, found.gamma * quote, found.vega / quote, found.theta / quote,
            found.rho / quote,
        )  # fmt: skip
        for index, value in enumerate(scaled):
            row[index] += units * value
        bucket = buckets.setdefault(oracle_id, [0.0] * len(VEGA_BUCKETS))
        if found.vega:
            at = vega_bucket(market.params.expiry_ns, ctx.state.timestamp_ns)
            bucket[at] += units * found.vega / quote
    return {
        k: Greeks(delta=v[0], gamma=v[1], vega=v[2], theta=v[3], rho=v[4],
                  vega_by_expiry=tuple(buckets[k]))
        for k, v in totals.items()
    }  # fmt: skip


def market_risk(ctx: Context, market_id: MarketId) -> MarketRisk:
    """The market's risk, computed again only when something it depends on moved. Open
    interest moves with most trades but reaches the risk only through the IM fractions (which
    it moves only past the market's lower open-interest bound), so a change of it alone costs
    the fractions, and keeps the very same risk where they are unchanged."""
    market = ctx.state.markets[market_id]
    params = market.params
    oracle = ctx.state.oracles[params.oracle_id]
    now = ctx.state.timestamp_ns
    # The key's reads written out (``surface_fresh``, ``confidence_quantums``, ``_phase_key``
    # give the same values): a block asks ~300 times, most of them for an unchanged risk.
    fresh = True
    if params.kind is MarketKind.OPTION:
        age = now - oracle.surface_timestamp_ns
        fresh = bool(oracle.surface) and age <= oracle.params.surface_staleness_ns
    confidence = ctx.derived.confidence.get(oracle.params.oracle_id)
    if confidence is None:
        confidence = confidence_quantums(ctx, oracle)
    gov = ctx.state.governance
    key = (
        market_id, market.mark_price_quantums, market.vol_multiplier_ppm, market.status,
        oracle.status, oracle.cooling_off_until_ns > now,
        oracle.index_price_quantums, oracle.variance_e18, oracle.surface_version,
        market.risk_timestamp_ns, market.risk_forward_quantums, fresh, confidence,
        market.funding_index_e9,
        None if gov is None or not gov.phases else _phase_key(ctx, market_id),
    )  # fmt: skip
    open_interest = market.open_interest_base_quantums
    cache = ctx.derived.market_risk_cache
    cached = cache.get(market_id)
    if cached is not None and cached.key == key:
        if cached.open_interest_base_quantums == open_interest:
            return cached.risk
        fractions = im_fractions(ctx, market)
        if fractions == cached.fractions:  # open interest moved, the risk did not
            cache[market_id] = cached._replace(open_interest_base_quantums=open_interest)
            return cached.risk
    else:
        fractions = im_fractions(ctx, market)
    risk = _risk_at(ctx, market, oracle, fractions)
    cache[market_id] = CachedMarketRisk(key, open_interest, fractions, risk, None)
    return risk


def _phase_key(ctx: Context, market_id: MarketId) -> tuple[int, int] | None:
    gov = ctx.state.governance
    phase = None if gov is None else gov.phases.get(market_id)
    if phase is None:
        return None
    return phase.start_ns, phase_step(phase.start_ns, phase.end_ns, ctx.state.timestamp_ns)


def compute_market_risk(
    ctx: Context, market: MarketState, oracle: OracleState, *, phased: bool = True
) -> MarketRisk:
    """The risk inputs of a market; cached by everything they depend on. During a margin
    phase-in (``core/governance.py``) existing positions pay the phased margins and new risk
    the new ones at once (through the initial multiplier); ``phased=False``: the whole of
    the market's margins, as at the end of any phase-in."""
    return _risk_at(ctx, market, oracle, im_fractions(ctx, market, phased=phased))


def _risk_at(
    ctx: Context, market: MarketState, oracle: OracleState, fractions: ImFractions
) -> MarketRisk:
    margin, fraction, full = fractions
    multiplier = initial_multiplier_ppm(ctx, market, oracle)
    if margin is not market.params.margin:
        multiplier = mul_ppm_ceil(multiplier, _catch_up_ppm(full, fraction))
    option = market.params.kind is MarketKind.OPTION
    usable = oracle.is_usable() and market.status is not MarketStatus.SETTLED
    if option and market.status is MarketStatus.ACTIVE:
        usable = usable and surface_fresh(ctx, oracle)
    # A linear contract's profile is read only by portfolio mode and Greeks (``profiled``):
    # taken there, not by every block's first margin check after the index moved.
    contract = contract_profile(ctx, market, oracle) if option else None
    return MarketRisk(
        market.mark_price_quantums, market.params.base_quantums_per_unit, fraction,
        margin.maintenance_share_ppm, margin.size_premium_ppm_per_sqrt_quote_unit, usable,
        multiplier,
        underlying=market.params.oracle_id, profile=contract, is_option=option,
        index_price_quantums=max(oracle.index_price_quantums, 1),
        confidence_quantums=confidence_quantums(ctx, oracle),
        funding_index_e9=market.funding_index_e9, payoff=market.params.payoff,
        expiry_ns=market.params.expiry_ns,
    )  # fmt: skip


def im_fractions(ctx: Context, market: MarketState, *, phased: bool = True) -> ImFractions:
    """The margins existing positions pay (the market's own, or where its phase-in stands;
    ``phased=False``: its own), the IM fraction at them and the one at the market's own
    margins (the same outside a phase-in): all that open interest moves in a market's risk."""
    target = market.params.margin
    margin = target
    initial_ppm, share_ppm = (
        effective_margin(ctx, market.params.market_id)
        if phased
        else (target.initial_margin_ppm, target.maintenance_share_ppm)
    )
    if (initial_ppm, share_ppm) != (target.initial_margin_ppm, target.maintenance_share_ppm):
        margin = dataclasses.replace(
            target, initial_margin_ppm=initial_ppm, maintenance_share_ppm=share_ppm
        )
    open_interest = div_ceil(
        market.open_interest_base_quantums * market.mark_price_quantums,
        market.params.base_quantums_per_unit,
    )
    fraction = market_im_fraction_ppm(
        margin, open_interest_quote_quantums=open_interest,
        vol_multiplier_ppm=market.vol_multiplier_ppm,
    )  # fmt: skip
    if margin is target:
        return margin, fraction, fraction
    full = market_im_fraction_ppm(
        target, open_interest_quote_quantums=open_interest,
        vol_multiplier_ppm=market.vol_multiplier_ppm,
    )  # fmt: skip
    return margin, fraction, full


def _catch_up_ppm(full_fraction_ppm: int, phased_fraction_ppm: int) -> int:
    """The factor that takes the phased IM fraction to the full one, rounded up (1: none)."""
    if full_fraction_ppm <= phased_fraction_ppm:
        return PPM_ONE
    return div_ceil(full_fraction_ppm * PPM_ONE, phased_fraction_ppm)


def initial_multiplier_ppm(ctx: Context, market: MarketState, oracle: OracleState) -> int:
    """The factor on IM alone: cooling-off after a circuit breaker, times what brings the
    volatility multiplier to its target at once for new risk (MM stays on the ramp)."""
    margin = market.params.margin
    cooling_off = margin.cooling_off_multiplier_ppm if is_cooling_off(ctx, market) else PPM_ONE
    if market.params.kind is MarketKind.OPTION:
        return cooling_off  # an option's volatility is in its scenario grid
    sigma = annual_volatility_ppm(oracle.variance_e18, oracle.params.vol_sample_interval_ns)
    catch_up = new_risk_multiplier_ppm(
        vol_target_ppm=vol_multiplier_target_ppm(margin, sigma),
        vol_multiplier_ppm=market.vol_multiplier_ppm,
    )
    return mul_ppm_ceil(cooling_off, catch_up)


def contract_profile(ctx: Context, market: MarketState, oracle: OracleState) -> Profile:
    """The contract's scenario profile, cached by everything it depends on."""
    forward, at_ns, vol = risk_point(ctx, market, oracle)
    key = (forward, at_ns, vol, market.status, oracle.surface_version)
    cached = ctx.derived.profile_cache.get(market.params.market_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    legs = option_legs(ctx, market, oracle, forward, at_ns)
    found = profile(legs, forward=forward, realized_vol=vol, values=block_memo(ctx).values)
    ctx.derived.profile_cache[market.params.market_id] = (key, found)
    return found


def risk_point(ctx: Context, market: MarketState, oracle: OracleState) -> tuple[float, int, float]:
    """Where a profile is taken (forward, time, realized volatility): an active option at
    its last revaluation, everything else at the index and volatility now."""
    revalued = market.risk_forward_quantums > 0 and market.status is MarketStatus.ACTIVE
    if market.params.kind is MarketKind.OPTION and revalued:
        forward = float(market.risk_forward_quantums)
        return forward, market.risk_timestamp_ns, market.risk_vol_ppm / PPM_ONE
    index = float(max(oracle.index_price_quantums, 1))
    return index, ctx.state.timestamp_ns, realized_vol(ctx, oracle)


def confidence_quantums(ctx: Context, oracle: OracleState) -> int:
    """The contingency of §6: the median confidence of the oracle's fresh reports
    (``oracle.median_confidence``), taken with its index once a block
    (``prices.update_oracle``): reports sent during a block make the next block's index and
    confidence, and move no margin before then. A state restored between blocks takes it
    from its reports at first use, until its next block takes it again."""
    oracle_id = oracle.params.oracle_id
    found = ctx.derived.confidence.get(oracle_id)
    if found is None:
        found = ctx.derived.confidence[oracle_id] = median_confidence(
            oracle, ctx.state.oracles, ctx.state.timestamp_ns
        )
    return found


def collateral_price(ctx: Context, asset_id: AssetId) -> CollateralPrice:
    asset = ctx.state.assets[asset_id]
    assert asset.oracle_id is not None, asset_id
    oracle = ctx.state.oracles[asset.oracle_id]
    return CollateralPrice(
        oracle.index_price_quantums, asset.quantums_per_unit, asset.haircut_weight_ppm,
        oracle.is_usable(),
    )  # fmt: skip


def risk_of(
    ctx: Context, subaccount: Subaccount, *, portfolio: bool | None = None,
    overrides: dict[MarketId, MarketRisk] | None = None,
) -> Risk:  # fmt: skip
    """Equity, IM and MM in the subaccount's margin mode (or the mode named); ``overrides``:
    market risks to take instead of the venue's (a what-if)."""
    held = subaccount.positions.keys() | subaccount.open_orders.keys()
    markets = {m: market_risk(ctx, m) for m in held}
    if overrides:
        markets.update({m: r for m, r in overrides.items() if m in held})
    collateral = {a: collateral_price(ctx, a) for a in subaccount.assets}
    if portfolio is None:
        portfolio = subaccount.subaccount_id in ctx.state.portfolio_margin
    if not portfolio:
        return subaccount_risk(subaccount, markets, collateral)
    markets = {m: profiled(ctx, m, r) for m, r in markets.items()}
    if not overrides:
        return portfolio_risk(ctx, subaccount, markets, collateral)
    return subaccount_risk(subaccount, markets, collateral, portfolio=True)


def equity_of(ctx: Context, subaccount: Subaccount) -> int:
    """``risk_of(...).equity`` (either margin mode), without the requirements."""
    markets = {m: market_risk(ctx, m) for m in subaccount.positions}
    collateral = {a: collateral_price(ctx, a) for a in subaccount.assets}
    return subaccount_equity(subaccount, markets, collateral)


PORTFOLIO_RISKS_REMEMBERED = 4  # per subaccount and block: its book, bare, with new quotes


def portfolio_risk(
    ctx: Context, subaccount: Subaccount, markets: dict[MarketId, MarketRisk],
    collateral: dict[AssetId, CollateralPrice],
) -> Risk:  # fmt: skip
    """``subaccount_risk`` in portfolio mode, remembered for the block by everything it reads:
    a grid over every leg of a book, which one block asks again at the same content (the
    options vault's book as it quotes, then in the liquidation pass, where neither its
    positions nor the market risks have moved)."""
    content = (
        subaccount.quote_quantums, tuple(subaccount.assets.items()), tuple(collateral.items()),
        tuple((m, p.size_base_quantums, p.cost_quote_quantums, p.funding_index_e9)
              for m, p in subaccount.positions.items()),
        tuple((m, o.bid_base_quantums, o.bid_notional_quote_quantums, o.ask_base_quantums,
               o.ask_notional_quote_quantums) for m, o in subaccount.open_orders.items()),
    )  # fmt: skip
    inputs = tuple(markets.items())
    remembered = block_memo(ctx).portfolio_risks.setdefault(subaccount.subaccount_id, [])
    for found_content, found_inputs, risk in remembered:
        if found_content == content and _same_risks(found_inputs, inputs):
            return risk
    risk = subaccount_risk(subaccount, markets, collateral, portfolio=True)
    if len(remembered) >= PORTFOLIO_RISKS_REMEMBERED:
        del remembered[0]
    remembered.append((content, inputs, risk))
    return risk


def _same_risks(
    a: tuple[tuple[MarketId, MarketRisk], ...], b: tuple[tuple[MarketId, MarketRisk], ...]
) -> bool:
    """The same markets at the very same risk objects (a market's risk is a new object
    whenever anything it depends on moves; the remembered ones are kept alive, so an id is
    never reused)."""
    return len(a) == len(b) and all(m == n and r is s for (m, r), (n, s) in zip(a, b, strict=True))


def admit(
    ctx: Context, before: Subaccount, after: Subaccount, market_id: MarketId | None, *,
    strict_im: bool = False, adds_resting: bool = False, reduce_only: bool = False,
    portfolio: bool | None = None,
) -> RejectReason | None:  # fmt: skip
    """The one margin decision on a change to a subaccount (a taker's fills and what it rests,
    a maker's fill, an auction bid, a change of margin mode), None to accept: every price it
    depends on is fresh; then IM is met after the change, or (unless ``strict_im``) the change
    only shrinks the position in ``market_id`` and reduces risk, and anything it rests is
    reduce-only and adds no IM. Callers keep their own checks before and after it."""
    after_risk = risk_of(ctx, after, portfolio=portfolio)
    if not after_risk.usable:
        return RejectReason.ORACLE_STALE
    if after_risk.satisfies_initial:
        return None
    if strict_im or market_id is None:
        return RejectReason.INSUFFICIENT_MARGIN
    before_risk = risk_of(ctx, before)
    shrinks = is_reducing(before.position_size(market_id), after.position_size(market_id))
    reducing = shrinks and reduces_risk(before_risk, after_risk)
    rest_ok = not adds_resting or (reduce_only and after_risk.initial <= before_risk.initial)
    return None if reducing and rest_ok else RejectReason.INSUFFICIENT_MARGIN


# ── The options vault's exposure ────────────────────────────────────────────────────────────


def unit_exposure(ctx: Context, market: MarketState) -> Exposure:
    """One whole long unit of a market, in quote quantums: an option's Black-76 Greeks from
    its profile (vega per vol point, gamma per 1% move as Γ·S²/100, delta value Δ·S), a linear
    market's delta value S. The floats end here, truncated toward zero."""
    risk = market_risk(ctx, market.params.market_id)
    spot = float(ctx.state.oracles[market.params.oracle_id].index_price_quantums)
    found = risk.profile if market.params.kind is MarketKind.OPTION else None
    if found is None:
        return Exposure(vega_quantums=0, gamma_quantums=0, delta_quantums=int(spot))
    return Exposure(
        vega_quantums=int(found.vega / 100.0),
        gamma_quantums=int(found.gamma * spot * spot / 100.0),
        delta_quantums=int(found.delta * spot),
    )


def book_exposure(ctx: Context, subaccount: Subaccount) -> Exposure:
    """The vault's whole book: every position's unit exposure × its size (positions on other
    underlyings cannot be held: it only quotes and hedges its own)."""
    total = Exposure(vega_quantums=0, gamma_quantums=0, delta_quantums=0)
    for market_id, position in sorted(subaccount.positions.items()):
        market = ctx.state.markets[market_id]
        total = total.plus(
            unit_exposure(ctx, market), position.size_base_quantums,
            market.params.base_quantums_per_unit,
        )  # fmt: skip
    return total
