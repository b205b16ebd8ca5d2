"""Scripting tools for option tests: the default BTC series, a published surface, listing a
single option, and reading marks against the vectorized pricer."""

from __future__ import annotations

from typing import Any

from clearhouse.core.ids import MarketId, OracleId
from clearhouse.core.messages import ListMarket, MarketListed
from clearhouse.core.params import MarketKind, MarketParams
from clearhouse.core.payoffs import Payoff
from clearhouse.sim.venue import (
    BTC_SATS,
    USDC,
    list_option_series,
    report_surface,
    synthetic_surface,
)
from helpers import Venue, accepted

BTC_USD = OracleId("BTC-USD")


def publish_surface(venue: Venue, **shape: float) -> None:
    """Every publisher reports the synthetic smile as of the next block (the venue uses the
    median of a quorum of publishers' surfaces)."""
    timestamp = venue.now + venue.block_ns
    slices = synthetic_surface(timestamp, **shape)
    reports = [
        report_surface(p.address, p.nonce(timestamp), timestamp, slices) for p in venue.publishers
    ]
    accepted(venue, *reports)


def with_series(venue: Venue) -> list[MarketId]:
    """Register the default BTC series and a surface; the option markets it listed."""
    publish_surface(venue)
    operator = venue.operator
    command = list_option_series(operator.address, operator.nonce(venue.now), venue.now + 10**12)
    events = venue.run(command)
    return [e.market_id for e in events if isinstance(e, MarketListed)]


def list_option(
    venue: Venue, market_id: str, payoff: Payoff, expiry_in_ns: int, **fields: Any
) -> MarketId:
    """List one option market expiring ``expiry_in_ns`` after now (0.01 BTC steps, 1 USDC tick)."""
    params = MarketParams(
        market_id=MarketId(market_id), kind=MarketKind.OPTION, oracle_id=BTC_USD,
        base_quantums_per_unit=BTC_SATS, tick_quantums=USDC, step_base_quantums=BTC_SATS // 100,
        min_order_base_quantums=BTC_SATS // 100, expiry_ns=venue.now + expiry_in_ns,
        payoff=payoff, **fields,
    )  # fmt: skip
    operator = venue.operator
    accepted(venue, ListMarket(
        signer=operator.address, nonce=operator.nonce(venue.now), expiry_ns=venue.now + 10**12,
        params=params,
    ))  # fmt: skip
    return MarketId(market_id)
