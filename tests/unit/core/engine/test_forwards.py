"""Forwards per expiry (``core/engine/forwards.py``): options are marked on the forward of
their expiry, read off the dated futures' basis, never on the index alone; a dated future's
mark has room for real carry."""

from __future__ import annotations

import dataclasses

from clearhouse.core.engine.forwards import basis_at
from clearhouse.core.engine.marks import mark_band_ppm
from clearhouse.core.ids import MarketId, Side
from clearhouse.core.payoffs import call
from clearhouse.core.state import MarketState, forward_curve_key
from clearhouse.core.units import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, BTC_USD, ONE_BTC, PRICE, Venue, accepted
from options import list_option, publish_surface

HOUR = NS_PER_HOUR


def test_the_basis_between_futures_is_interpolated_and_never_extrapolated() -> None:
    now = 0
    curve = ((10 * HOUR, 100), (30 * HOUR, 300))
    assert basis_at(curve, now, 5 * HOUR) == 50  # before the first: toward nothing at now
    assert basis_at(curve, now, 10 * HOUR) == 100
    assert basis_at(curve, now, 20 * HOUR) == 200  # between: linear in time
    assert basis_at(curve, now, 300 * HOUR) == 300  # after the last: held, not carried on
    assert basis_at(((10 * HOUR, -7),), now, 5 * HOUR) == -4  # rounded down


def test_a_dated_futures_mark_has_room_for_its_carry() -> None:
    venue = Venue()
    future = venue.state.markets[venue.future]
    nine_months = dataclasses.replace(future.params, expiry_ns=venue.now + 274 * NS_PER_DAY)
    market = MarketState(params=nine_months)
    band = mark_band_ppm(market, venue.now)
    assert band > 30_000  # a 3% contango fits; a perpetual's 1% band would clip it
    assert band <= nine_months.price_band_ppm
    perpetual = venue.state.markets[MarketId(BTC_PERP)]
    assert mark_band_ppm(perpetual, venue.now) == perpetual.params.mark_band_ppm


def _lift_the_future(venue: Venue, premium_bp: int) -> None:
    """Makers quote the future around the index plus ``premium_bp``; its basis EMA follows."""
    center = PRICE * (10_000 + premium_bp) // 10_000 // USDC * USDC
    accepted(
        venue,
        venue.order("alice", venue.future, Side.BUY, 5 * ONE_BTC, center - 5 * USDC),
        venue.order("bob", venue.future, Side.SELL, 5 * ONE_BTC, center + 5 * USDC),
    )
    venue.advance(20 * NS_PER_MINUTE)


def test_an_option_is_marked_on_the_forward_of_its_expiry() -> None:
    venue = Venue()
    publish_surface(venue)
    expiry_ns = venue.state.markets[venue.future].params.expiry_ns
    strike = 40_000 * USDC  # deep in the money: worth about forward − strike
    option = list_option(venue, "BTC-DEEP-C", call(strike), expiry_ns - venue.now)
    _lift_the_future(venue, 80)
    publish_surface(venue)
    venue.block()
    state = venue.state
    index = venue.index()
    basis = state.markets[venue.future].mark_price_quantums - index
    assert basis > 30 * USDC  # the future trades over spot
    assert forward_curve_key(BTC_USD) in state.tree
    forward = venue.engine.forward(BTC_USD, expiry_ns)
    assert abs(forward - (index + basis)) <= 60 * USDC  # the curve lags the index by a block
    mark = state.markets[option].mark_price_quantums
    assert abs(mark - (forward - strike)) < abs(mark - (index - strike))
    assert mark > index - strike + basis // 2


def test_without_a_future_the_forward_is_the_index() -> None:
    venue = Venue(future_expiry_hours=1)
    venue.advance(2 * HOUR, step_ns=9 * 10**9)  # the future expires and settles
    assert BTC_USD not in venue.state.forward_curves
    assert venue.engine.forward(BTC_USD, venue.now + HOUR) == venue.index()
