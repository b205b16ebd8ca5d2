"""Scripting tools for liquidation tests: quotes, a leveraged long, keepers' and bidders'
commands, and parameter changes in place (tests only: governance comes later)."""

from __future__ import annotations

import dataclasses

from clearhouse.core.ids import MarketId, Side
from clearhouse.core.messages import BidAuction, Liquidate, PlaceOrder
from clearhouse.core.params import MarketParams
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted

BUY, SELL = Side.BUY, Side.SELL


def quote(venue: Venue, trader: str, center: int, *, levels: int = 5, size: int = ONE_BTC,
          gap: int = 10 * USDC, market: str = BTC_PERP, number: int = 0) -> None:  # fmt: skip
    """``trader`` rests ``levels`` bids below and asks above ``center``."""
    orders: list[PlaceOrder] = []
    for level in range(1, levels + 1):
        orders.append(venue.order(trader, market, BUY, size, center - level * gap, number=number))
        orders.append(venue.order(trader, market, SELL, size, center + level * gap, number=number))
    accepted(venue, *orders)


def leveraged_long(venue: Venue, size: int = 2 * ONE_BTC, collateral: int = 5_000 * USDC) -> None:
    """bob/1 holds ``collateral`` and buys ``size`` from alice's asks near the index. Keepers get
    ten blocks before the protocol steps in, so that tests can send them."""
    with_liquidation(venue, keeper_grace_ns=10 * NS_PER_SECOND)
    accepted(venue, venue.transfer("bob", collateral, source=0, target=1))
    quote(venue, "alice", PRICE, size=size)
    accepted(venue, venue.order("bob", BTC_PERP, BUY, size, PRICE + 20 * USDC, number=1))
    assert venue.position("bob", BTC_PERP, number=1)[0] == size


def liquidate(venue: Venue, keeper: str, trader: str, number: int = 0) -> Liquidate:
    signer = venue.signers[keeper]
    return Liquidate(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + 60 * 10**9,
        subaccount_number=0, owner=venue.address(trader), owner_number=number,
    )  # fmt: skip


def bid(venue: Venue, bidder: str, trader: str, size: int, number: int = 1) -> BidAuction:
    signer = venue.signers[bidder]
    return BidAuction(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + 60 * 10**9,
        subaccount_number=0, owner=venue.address(trader), owner_number=number,
        market_id=MarketId(BTC_PERP), size_base_quantums=size,
    )  # fmt: skip


def with_liquidation(venue: Venue, **changes: int) -> None:
    """Change BTC-PERP's liquidation parameters in place (tests only: governance comes later)."""
    market = venue.state.markets[MarketId(BTC_PERP)]
    params: MarketParams = market.params
    market.params = dataclasses.replace(
        params, liquidation=dataclasses.replace(params.liquidation, **changes)
    )


def fund_insurance(venue: Venue, amount: int) -> None:
    accepted(venue, venue.deposit_insurance("dave", amount))
