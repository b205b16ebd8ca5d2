"""Listing (by the operator, until governance): oracles, assets, markets, and the default
option series that keep standard expiries listed.
"""

from __future__ import annotations

from clearhouse.core import limits, series
from clearhouse.core.codec import to_plain
from clearhouse.core.engine.context import Context, Rejected, mutated
from clearhouse.core.engine.valuation import option_mark
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
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
    MarketKind,
    MarketParams,
    OracleParams,
)
from clearhouse.core.state import (
    MarketState,
    OptionSeries,
    params_key,
)


def list_params(ctx: Context, command: ListOracle | ListAsset | ListMarket) -> None:
    if command.signer != ctx.state.venue.operator:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if command.params.problems() or not all(map(is_symbol, _listed_ids(command))):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    match command:
        case ListOracle():
            list_oracle(ctx, command)
        case ListAsset():
            list_asset(ctx, command)
        case ListMarket():
            list_market(ctx, command)


def list_oracle(ctx: Context, command: ListOracle) -> None:
    params = command.params
    if params.oracle_id in ctx.state.oracles:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    if len(ctx.state.oracles) >= limits.oracles_max or not params.oracle_id:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if not all(is_address(p.address) for p in params.publishers):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    check_rate_feeds(ctx, params)
    mutated(ctx)
    ctx.state.oracles[params.oracle_id] = OracleState(params=params)
    ctx.touched.oracles.add(params.oracle_id)
    ctx.touched.params[params_key("oracle", params.oracle_id)] = to_plain(params)
    ctx.events.append(OracleListed(oracle_id=params.oracle_id))


def check_rate_feeds(ctx: Context, params: OracleParams) -> None:
    """Each quote currency's rate feed is a listed oracle that takes USD reports only: a rate
    is one hop from USD, never a chain (and never a cycle), so one pass of rate feeds first,
    then the oracles that convert, makes every index of a block at that block's rates."""
    for feed in params.quotes:
        rate_oracle = ctx.state.oracles.get(feed.rate_oracle_id)
        if rate_oracle is None:
            raise Rejected(RejectReason.UNKNOWN_RATE_FEED)
        if rate_oracle.params.quotes:
            raise Rejected(RejectReason.RATE_FEED_NOT_IN_USD)


def list_asset(ctx: Context, command: ListAsset) -> None:
    params = command.params
    if params.asset_id in ctx.state.assets or not params.asset_id:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    is_quote = params.asset_id == QUOTE_ASSET
    if is_quote != (params.oracle_id is None):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if params.oracle_id is not None and params.oracle_id not in ctx.state.oracles:
        raise Rejected(RejectReason.UNKNOWN_ORACLE)
    if len(ctx.state.assets) >= limits.collateral_assets_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    mutated(ctx)
    ctx.state.assets[params.asset_id] = params
    ctx.touched.params[params_key("asset", params.asset_id)] = to_plain(params)
    ctx.events.append(AssetListed(asset_id=params.asset_id))


def list_market(ctx: Context, command: ListMarket) -> None:
    params = command.params
    if params.market_id in ctx.state.markets:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    if params.oracle_id not in ctx.state.oracles:
        raise Rejected(RejectReason.UNKNOWN_ORACLE)
    if QUOTE_ASSET not in ctx.state.assets or len(ctx.state.markets) >= limits.markets_max:
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if params.kind is not MarketKind.PERPETUAL and not (
        ctx.state.timestamp_ns
        < params.expiry_ns
        <= ctx.state.timestamp_ns + limits.expiry_horizon_ns
    ):
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    mutated(ctx)
    add_market(ctx, params)


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
    params = command.params
    if command.signer != ctx.state.venue.operator:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if params.problems():
        raise Rejected(RejectReason.INVALID_PARAMETERS)
    if params.oracle_id not in ctx.state.oracles:
        raise Rejected(RejectReason.UNKNOWN_ORACLE)
    if params.oracle_id in ctx.state.option_series or QUOTE_ASSET not in ctx.state.assets:
        raise Rejected(RejectReason.ALREADY_EXISTS)
    mutated(ctx)
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


def _listed_ids(command: ListOracle | ListAsset | ListMarket) -> list[str]:
    match command:
        case ListOracle():
            return [command.params.oracle_id]
        case ListAsset():
            oracle = command.params.oracle_id
            return [command.params.asset_id] + ([] if oracle is None else [oracle])
        case ListMarket():
            return [command.params.market_id, command.params.oracle_id]
