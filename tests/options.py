"""Scripting tools for option tests: the default BTC series, a published surface, listing a
single option, the operator's and traders' commands, and carol's short-call scenario."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from scipy.stats import norm

from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, OracleId, Side
from clearhouse.core.messages import (
    BidPortfolio,
    Command,
    DepositOptionsVault,
    Event,
    ListMarket,
    MarketListed,
    SetMarginMode,
    SetupOptionsVault,
    Transferred,
)
from clearhouse.core.params import LiquidationParams, MarketKind, MarketParams, OptionsVaultParams
from clearhouse.core.payoffs import Payoff, call
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from clearhouse.sim.venue import (
    BTC_SATS,
    USDC,
    list_option_series,
    report_surface,
    synthetic_surface,
)
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type, rejected
from ladder import quote

BTC_USD = OracleId("BTC-USD")
BUY, SELL = Side.BUY, Side.SELL
HOUR = 60 * NS_PER_MINUTE
DAY = 24 * HOUR
PPM = 1_000_000


# ── Surfaces ────────────────────────────────────────────────────────────────────────────────


def publish_surface(venue: Venue, forward_basis_ppm: int | None = None, **shape: float) -> None:
    """Every publisher reports the synthetic smile as of the next block (the venue uses the
    median of a quorum of publishers' surfaces), each slice with ``forward_basis_ppm`` as its
    forward (None: none reported)."""
    timestamp = venue.now + venue.block_ns
    slices = synthetic_surface(timestamp, forward_basis_ppm=forward_basis_ppm, **shape)
    reports = [
        report_surface(p.address, p.nonce(timestamp), timestamp, slices) for p in venue.publishers
    ]
    accepted(venue, *reports)


def publish_smile(venue: Venue, forward_basis_ppm: int | None = None, **shape: float) -> None:
    """Every publisher reports the synthetic smile, each in a block of its own: an engine that
    keeps the newest surface takes each in turn, one that takes the median of a quorum of
    publishers' surfaces gets its quorum (``publish_surface`` sends them in one block, which
    the engine the first options review looked at refused: one surface per timestamp)."""
    for publisher in venue.publishers:
        timestamp = venue.now + venue.block_ns
        slices = synthetic_surface(timestamp, forward_basis_ppm=forward_basis_ppm, **shape)
        command = report_surface(publisher.address, publisher.nonce(timestamp), timestamp, slices)
        accepted(venue, command)


# ── Listing ─────────────────────────────────────────────────────────────────────────────────


def with_series(venue: Venue) -> list[MarketId]:
    """Register the default BTC series and a surface; the option markets it listed."""
    publish_surface(venue)
    operator = venue.operator
    command = list_option_series(operator.address, operator.nonce(venue.now), venue.now + 10**12)
    events = venue.run(command)
    return [e.market_id for e in events if isinstance(e, MarketListed)]


def option_params(
    venue: Venue, market_id: str, payoff: Payoff, expiry_in_ns: int, **fields: Any
) -> MarketParams:
    """An option market expiring ``expiry_in_ns`` after now (0.01 BTC steps, 1 USDC tick)."""
    return MarketParams(
        market_id=MarketId(market_id), kind=MarketKind.OPTION, oracle_id=BTC_USD,
        base_quantums_per_unit=BTC_SATS, tick_quantums=USDC, step_base_quantums=BTC_SATS // 100,
        min_order_base_quantums=BTC_SATS // 100, expiry_ns=venue.now + expiry_in_ns,
        payoff=payoff, **fields,
    )  # fmt: skip


def operator_listing(
    venue: Venue, params: MarketParams, *, at_ns: int | None = None, valid_ns: int = HOUR
) -> ListMarket:
    """The operator lists ``params``: signed as of ``at_ns`` (now by default), valid for
    ``valid_ns`` after it."""
    at_ns = venue.now if at_ns is None else at_ns
    operator = venue.operator
    return ListMarket(
        signer=operator.address, nonce=operator.nonce(at_ns), expiry_ns=at_ns + valid_ns,
        params=params,
    )  # fmt: skip


def list_option(
    venue: Venue, market_id: str, payoff: Payoff, expiry_in_ns: int, **fields: Any
) -> MarketId:
    """List one option market expiring ``expiry_in_ns`` after now (0.01 BTC steps, 1 USDC tick)."""
    params = option_params(venue, market_id, payoff, expiry_in_ns, **fields)
    accepted(venue, operator_listing(venue, params, valid_ns=10**12))
    return MarketId(market_id)


def short_lived_option(venue: Venue) -> MarketId:
    """A 60,000 call expiring in 6 minutes on a 5-minute window of 10 samples: listed, settled
    and archived within one test (with 5-second blocks)."""
    return list_option(
        venue, "BTC-SHORT-C", call(60_000 * USDC), 6 * NS_PER_MINUTE,
        settlement_window_ns=5 * NS_PER_MINUTE, settlement_min_samples=10,
    )  # fmt: skip


# ── Traders' commands ───────────────────────────────────────────────────────────────────────


def margin_mode(
    venue: Venue, trader: str, number: int = 0, *, portfolio: bool = True
) -> SetMarginMode:
    signer = venue.signers[trader]
    return SetMarginMode(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + HOUR,
        subaccount_number=number, portfolio=portfolio,
    )  # fmt: skip


def bid_portfolio(
    venue: Venue, bidder: str, owner: str, number: int, fraction_ppm: int
) -> BidPortfolio:
    signer = venue.signers[bidder]
    return BidPortfolio(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + HOUR,
        subaccount_number=0, owner=venue.address(owner), owner_number=number,
        fraction_ppm=fraction_ppm,
    )  # fmt: skip


def setup_options_vault(venue: Venue, params: OptionsVaultParams) -> SetupOptionsVault:
    """The operator sets up the options AMM with ``params``."""
    operator = venue.operator
    return SetupOptionsVault(
        signer=operator.address, nonce=operator.nonce(venue.now), expiry_ns=venue.now + 10**12,
        params=params,
    )  # fmt: skip


def deposit_options_vault(venue: Venue, trader: str, amount: int) -> DepositOptionsVault:
    """``trader`` buys options-AMM shares with ``amount`` quote quantums of subaccount 0."""
    signer = venue.signers[trader]
    return DepositOptionsVault(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        subaccount_number=0, amount_quantums=amount,
    )  # fmt: skip


# ── Outcomes ────────────────────────────────────────────────────────────────────────────────


def refused(venue: Venue, command: Command, reason: RejectReason) -> None:
    """``rejected``, naming what the block did instead when the command went through."""
    try:
        rejected(venue, command, reason)
    except AssertionError as error:
        done: dict[str, int] = {}
        for event in venue.recorded[-1].events:
            done[type(event).__name__] = done.get(type(event).__name__, 0) + 1
        raise AssertionError(f"expected {reason.name}; the block's events: {done}") from error


def rewards(events: list[Event]) -> int:
    """The liquidation rewards paid in ``events``."""
    return sum(
        e.amount_quantums for e in of_type(events, Transferred) if e.cause == "liquidation reward"
    )


# ── Scenarios ───────────────────────────────────────────────────────────────────────────────


def carol_writes_calls(
    venue: Venue, *, hedged: bool = False, publish: Callable[[Venue], None] = publish_smile,
    buyer: str = "bob",
) -> MarketId:  # fmt: skip
    """carol/1 (110,000 USDC) writes ``buyer`` 10 three-day 61,000 calls (keepers get ten
    blocks), priced on the surface ``publish`` sends, and with ``hedged`` buys 1 BTC-PERP
    against them (the perp steps 0.0001 BTC, the calls 0.01)."""
    option = list_option(
        venue, "CALL-61000", call(61_000 * USDC), 3 * DAY,
        liquidation=LiquidationParams(keeper_grace_ns=10 * NS_PER_SECOND),
    )  # fmt: skip
    publish(venue)
    accepted(venue, venue.transfer("carol", 110_000 * USDC, source=0, target=1))
    price = venue.mark(option) // USDC * USDC
    accepted(venue, venue.order(buyer, option, BUY, 10 * ONE_BTC, price))
    accepted(venue, venue.order("carol", option, SELL, 10 * ONE_BTC, price, number=1))
    if hedged:
        quote(venue, "alice", PRICE, size=ONE_BTC)
        accepted(venue, venue.order("carol", BTC_PERP, BUY, ONE_BTC, PRICE + 10 * USDC, number=1))
        accepted(venue, venue.cancel_all("alice"))
    return option


# ── An independent reference ────────────────────────────────────────────────────────────────


def reference_black76(
    is_call: bool, forward: float, strike: float, years: float, vol: float
) -> float:
    """Undiscounted Black-76 with SciPy's normal distribution: what tests check the engine's
    own valuation and margin against."""
    spread = vol * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * spread * spread) / spread
    d2 = d1 - spread
    if is_call:
        return float(forward * norm.cdf(d1) - strike * norm.cdf(d2))
    return float(strike * norm.cdf(-d2) - forward * norm.cdf(-d1))
