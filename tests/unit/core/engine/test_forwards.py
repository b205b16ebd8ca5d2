"""Forwards per expiry (``core/engine/forwards.py``): options are marked on the forward of
their expiry, read off the dated futures' basis, never on the index alone; a dated future's
mark has room for real carry."""

from __future__ import annotations

import dataclasses

from clearhouse.core import codec, limits
from clearhouse.core.engine.forwards import basis_at
from clearhouse.core.engine.marks import mark_band_ppm
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import Address, MarketId, Side
from clearhouse.core.payoffs import call
from clearhouse.core.state import MarketState, forward_curve_key
from clearhouse.core.units import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE
from clearhouse.sim.venue import USDC, report_surface, synthetic_surface
from helpers import BTC_PERP, BTC_USD, ONE_BTC, PRICE, Venue, accepted, rejected
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


# ── The publishers' forward (round 11's guard) ───────────────────────────────────────────────


def _publish_bases(venue: Venue, *bases: int | None) -> None:
    """Publisher i reports ``bases[i]`` as every expiry's forward basis (None: none), all in
    the next block."""
    timestamp = venue.now + venue.block_ns
    reports = [
        report_surface(p.address, p.nonce(timestamp), timestamp,
                       synthetic_surface(timestamp, forward_basis_ppm=basis))
        for p, basis in zip(venue.publishers, bases, strict=False)
    ]  # fmt: skip
    accepted(venue, *reports)


def test_the_publishers_forward_bounds_the_curve_to_its_tolerance() -> None:
    venue = Venue()
    publish_surface(venue)
    expiry_ns = venue.state.markets[venue.future].params.expiry_ns + 2 * NS_PER_DAY
    _lift_the_future(venue, 80)  # the curve: 0.8% over the index
    index = venue.index()
    on_venue = venue.engine.forward(BTC_USD, expiry_ns)
    assert on_venue > index * 1_007 // 1_000
    publish_surface(venue, forward_basis_ppm=0)  # the publishers: no basis
    index = venue.index()
    bounded = venue.engine.forward(BTC_USD, expiry_ns)
    room = index * limits.reported_forward_tolerance_ppm // 1_000_000
    assert bounded == index + room  # the curve clamped to 0.25% over the publishers' forward
    publish_surface(venue, forward_basis_ppm=6_000)  # a real 0.6%: the curve within its room
    assert venue.engine.forward(BTC_USD, expiry_ns) == on_venue_now(venue, expiry_ns)
    publish_surface(venue, forward_basis_ppm=30_000)  # 3%: the curve's 0.8% raised to 2.75%
    index = venue.index()
    reported = index + index * 30_000 // 1_000_000
    room = reported * limits.reported_forward_tolerance_ppm // 1_000_000
    assert venue.engine.forward(BTC_USD, expiry_ns) == reported - room


def on_venue_now(venue: Venue, expiry_ns: int) -> int:
    """The venue's own forward now: the index plus the curve's basis."""
    curve = venue.state.forward_curves[BTC_USD]
    return venue.index() + basis_at(curve, venue.now, expiry_ns)


def test_without_a_future_the_publishers_forward_is_the_forward() -> None:
    venue = Venue(future_expiry_hours=1)
    venue.advance(2 * HOUR, step_ns=9 * 10**9)  # the future expires and settles
    publish_surface(venue, forward_basis_ppm=-4_000)  # backwardation
    index = venue.index()
    expiry_ns = max(s.expiry_ns for s in synthetic_surface(venue.now))
    assert venue.engine.forward(BTC_USD, expiry_ns) == index - index * 4_000 // 1_000_000
    nearer = venue.now + (expiry_ns - venue.now) // 1_000  # before the first slice: toward 0
    assert index - index * 4_000 // 1_000_000 < venue.engine.forward(BTC_USD, nearer) <= index


def test_one_publisher_alone_neither_sets_nor_moves_the_reported_forward() -> None:
    venue = Venue(future_expiry_hours=1)
    venue.advance(2 * HOUR, step_ns=9 * 10**9)
    expiry_ns = venue.now + 2 * NS_PER_DAY
    assert len(venue.publishers) == 4  # equal weights, a quorum of two thirds
    _publish_bases(venue, 40_000, 10_000, None, None)  # half the weight: under the quorum
    assert venue.engine.forward(BTC_USD, expiry_ns) == venue.index()
    _publish_bases(venue, 40_000, 10_000, 12_000, None)  # the liar is the median's outlier
    index = venue.index()
    assert venue.engine.forward(BTC_USD, expiry_ns) == index + index * 12_000 // 1_000_000


def test_an_absurd_forward_is_refused_with_its_own_code() -> None:
    venue = Venue()
    timestamp = venue.now + venue.block_ns
    bound = limits.forward_basis_ppm_max
    publisher = venue.publishers[0]
    for basis, reason in ((bound + 1, RejectReason.SURFACE_FORWARD_INVALID), (-bound, None)):
        slices = synthetic_surface(timestamp, forward_basis_ppm=basis)
        command = report_surface(publisher.address, publisher.nonce(timestamp), timestamp, slices)
        if reason is None:
            accepted(venue, command)
        else:
            rejected(venue, command, reason)
        timestamp = venue.now + venue.block_ns


def test_a_slice_without_a_forward_encodes_as_it_always_did() -> None:
    """Journals and leaves written before slices carried a forward read back the same: the
    field is left out of the bytes while None, and a missing one decodes to None."""
    slices = synthetic_surface(10**18)
    command = report_surface(Address("0x" + "11" * 20), 1, 10**18, slices[:1])
    data = codec.encode_command(command)
    assert b"forward_basis_ppm" not in data
    assert codec.decode_command(data) == command
    reported = dataclasses.replace(
        command, slices=(dataclasses.replace(slices[0], forward_basis_ppm=-25),)
    )
    data = codec.encode_command(reported)
    assert b'"forward_basis_ppm":-25' in data
    assert codec.decode_command(data) == reported
