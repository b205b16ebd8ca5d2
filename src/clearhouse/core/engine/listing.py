"""Listing (by the operator until the venue has governance, then by proposals): oracles,
assets, markets, and the default option series that keep standard expiries listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clearhouse.core import limits, series
from clearhouse.core.codec import to_plain
from clearhouse.core.engine.context import Context, Rejected, mutated
from clearhouse.core.engine.valuation import option_mark
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    AssetId,
    MarketId,
    OracleId,
    is_address,
    is_symbol,
)
from clearhouse.core.messages import (
    AssetListed,
    ListAsset,
    ListMarket,
    ListOptionSeries,
    ListOracle,
    MarketListed,
    OptionSeriesRegistered,
    OracleListed,
)
from clearhouse.core.oracle import (
    OracleState,
)
from clearhouse.core.params import (
    AssetParams,
    MarketKind,
    MarketParams,
    OptionSeriesParams,
    OracleParams,
)
from clearhouse.core.state import (
    MarketState,
    OptionSeries,
    params_key,
)


@dataclass(slots=True)
class Planned:
    """What earlier actions of the same proposal list, for the checks of later ones (a
    proposal may list an oracle, then an asset and a market on it)."""

    oracles: dict[OracleId, OracleParams] = field(default_factory=dict)
    assets: set[AssetId] = field(default_factory=set)
    markets: set[MarketId] = field(default_factory=set)
    series: set[OracleId] = field(default_factory=set)

    def oracle(self, ctx: Context, oracle_id: OracleId) -> OracleParams | None:
        found = ctx.state.oracles.get(oracle_id)
        return found.params if found is not None else self.oracles.get(oracle_id)


def list_params(ctx: Context, command: ListOracle | ListAsset | ListMarket) -> None:
    if command.signer != ctx.state.venue.operator:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if ctx.state.governance is not None:
        raise Rejected(RejectReason.GOVERNANCE_REQUIRED)  # proposals list on a governed venue
    check_listing(ctx, command.params, Planned())
    mutated(ctx)
    apply_listing(ctx, command.params)


Listing = OracleParams | AssetParams | MarketParams


def check_listing(ctx: Context, params: Listing, planned: Planned) -> None:
    """Every reason to refuse a listing, before anything changes; ``planned`` then records it."""
    if params.problems() or not all(map(is_symbol, _listed_ids(params))):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    match params:
        case OracleParams():
            check_oracle(ctx, params, planned)
            planned.oracles[params.oracle_id] = params
        case AssetParams():
            check_asset(ctx, params, planned)
            planned.assets.add(params.asset_id)
        case MarketParams():
            check_market(ctx, params, planned)
            planned.markets.add(params.market_id)


def apply_listing(ctx: Context, params: Listing) -> None:
    match params:
        case OracleParams():
            list_oracle(ctx, params)
        case AssetParams():
            list_asset(ctx, params)
        case MarketParams():
            add_market(ctx, params)


def check_oracle(ctx: Context, params: OracleParams, planned: Planned) -> None:
    if params.oracle_id in ctx.state.oracles or params.oracle_id in planned.oracles:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    listed = len(ctx.state.oracles) + len(planned.oracles)
    if listed >= limits.oracles_max or not params.oracle_id:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if not all(is_address(p.address) for p in params.publishers):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    check_rate_feeds(ctx, params, planned)


def list_oracle(ctx: Context, params: OracleParams) -> None:
    ctx.state.oracles[params.oracle_id] = OracleState(params=params)
    ctx.touched.oracles.add(params.oracle_id)
    ctx.touched.params[params_key("oracle", params.oracle_id)] = to_plain(params)
    ctx.events.append(OracleListed(oracle_id=params.oracle_id))


def check_rate_feeds(ctx: Context, params: OracleParams, planned: Planned) -> None:
    """Each quote currency's rate feed is a listed oracle that takes USD reports only: a rate
    is one hop from USD, never a chain (and never a cycle), so one pass of rate feeds first,
    then the oracles that convert, makes every index of a block at that block's rates."""
    for feed in params.quotes:
        rate_params = planned.oracle(ctx, feed.rate_oracle_id)
        if rate_params is None:
            raise Rejected(RejectReason.UNKNOWN_RATE_FEED)
        if rate_params.quotes:
            raise Rejected(RejectReason.RATE_FEED_NOT_IN_USD)


def check_asset(ctx: Context, params: AssetParams, planned: Planned) -> None:
    known = params.asset_id in ctx.state.assets or params.asset_id in planned.assets
    if known or not params.asset_id:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    is_quote = params.asset_id == QUOTE_ASSET
    if is_quote != (params.oracle_id is None):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if params.oracle_id is not None and planned.oracle(ctx, params.oracle_id) is None:
        raise Rejected(RejectReason.UNKNOWN_ORACLE)
    if len(ctx.state.assets) + len(planned.assets) >= limits.collateral_assets_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)


def list_asset(ctx: Context, params: AssetParams) -> None:
    ctx.state.assets[params.asset_id] = params
    ctx.touched.params[params_key("asset", params.asset_id)] = to_plain(params)
    ctx.events.append(AssetListed(asset_id=params.asset_id))


def check_market(ctx: Context, params: MarketParams, planned: Planned) -> None:
    if params.market_id in ctx.state.markets or params.market_id in planned.markets:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    if planned.oracle(ctx, params.oracle_id) is None:
        raise Rejected(RejectReason.UNKNOWN_ORACLE)
    quote_listed = QUOTE_ASSET in ctx.state.assets or QUOTE_ASSET in planned.assets
    if not quote_listed or len(ctx.state.markets) + len(planned.markets) >= limits.markets_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if params.kind is not MarketKind.PERPETUAL and not (
        ctx.state.timestamp_ns
        < params.expiry_ns
        <= ctx.state.timestamp_ns + limits.expiry_horizon_ns
    ):
        raise Rejected(RejectReason.INVALID_PARAMETERS)


def add_market(ctx: Context, params: MarketParams) -> None:
    market = MarketState(params=params)
    interval = params.funding.interval_ns
    market.next_funding_ns = (ctx.state.timestamp_ns // interval + 1) * interval
    market.vol_multiplier_updated_ns = ctx.state.timestamp_ns
    oracle = ctx.state.oracles[params.oracle_id]
    market.mark_price_quantums = oracle.index_price_quantums
    if params.kind is MarketKind.OPTION:
        market.mark_price_quantums = option_mark(ctx, market, oracle)
    ctx.state.markets[params.market_id] = market
    ctx.touched.markets.add(params.market_id)
    ctx.touched.params[params_key("market", params.market_id)] = to_plain(params)
    ctx.events.append(MarketListed(market_id=params.market_id))


def list_option_series(ctx: Context, command: ListOptionSeries) -> None:
    if command.signer != ctx.state.venue.operator:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if ctx.state.governance is not None:
        raise Rejected(RejectReason.GOVERNANCE_REQUIRED)
    check_series(ctx, command.params, Planned())
    mutated(ctx)
    add_series(ctx, command.params)


def check_series(ctx: Context, params: OptionSeriesParams, planned: Planned) -> None:
    if params.problems():
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if planned.oracle(ctx, params.oracle_id) is None:
        raise Rejected(RejectReason.UNKNOWN_ORACLE)
    taken = params.oracle_id in ctx.state.option_series or params.oracle_id in planned.series
    if taken or not (QUOTE_ASSET in ctx.state.assets or QUOTE_ASSET in planned.assets):
        raise Rejected(RejectReason.ALREADY_EXISTS)
    planned.series.add(params.oracle_id)


def add_series(ctx: Context, params: OptionSeriesParams) -> None:
    series_state = OptionSeries(params)
    ctx.state.option_series[params.oracle_id] = series_state
    ctx.touched.series.add(params.oracle_id)
    ctx.events.append(OptionSeriesRegistered(oracle_id=params.oracle_id, prefix=params.prefix))
    roll_series(ctx, series_state)


def roll_series(ctx: Context, series_state: OptionSeries) -> None:
    """Keep the standard expiries listed: an expiry not yet listed gets a call and a put at
    each strike around the index now (while the index is fresh and markets are left)."""
    params = series_state.params
    oracle = ctx.state.oracles[params.oracle_id]
    now = ctx.state.timestamp_ns
    if not oracle.is_usable():
        return
    for expiry_ns in series.standard_expiries(now, params):
        if expiry_ns in series_state.listed_expiries:
            continue
        listed = series.series_markets(params, expiry_ns, oracle.index_price_quantums)
        if len(ctx.state.markets) + len(listed) > limits.markets_max:
            return
        for market_params in listed:
            valid = not market_params.problems() and is_symbol(market_params.market_id)
            if valid and market_params.market_id not in ctx.state.markets:
                add_market(ctx, market_params)
        series_state.listed_expiries = sorted(
            [e for e in series_state.listed_expiries if e > now] + [expiry_ns]
        )
        ctx.touched.series.add(params.oracle_id)


def _listed_ids(params: Listing) -> list[str]:
    match params:
        case OracleParams():
            return [params.oracle_id]
        case AssetParams():
            oracle = params.oracle_id
            return [params.asset_id] + ([] if oracle is None else [oracle])
        case MarketParams():
            return [params.market_id, params.oracle_id]
