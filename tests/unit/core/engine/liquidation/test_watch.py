"""The liquidation watch: a band is a promise that margin holds anywhere inside it, and the
pass examines everyone who could be liquidatable (checked against a full scan)."""

from __future__ import annotations

import pytest

from clearhouse.core.engine.liquidation import watch
from clearhouse.core.engine.risk import risk_of
from clearhouse.core.ids import QUOTE_ASSET, MarketId, Side
from clearhouse.core.ledger import INSURANCE, Subaccount, Transfer
from clearhouse.core.messages import SetMarginMode
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted
from ladder import leveraged_long, quote
from options import carol_writes_calls, margin_mode

BTC = MarketId(BTC_PERP)


def set_mark(venue: Venue, mark: int) -> None:
    """Put BTC-PERP's mark anywhere (tests only), so that margin can be read there."""
    venue.state.markets[BTC].mark_price_quantums = mark
    venue.engine.ctx.derived.market_risk_cache.clear()


@pytest.mark.parametrize(("size", "collateral"), [(2 * ONE_BTC, 5_000 * USDC),
                                                   (-2 * ONE_BTC, 5_000 * USDC),
                                                   (ONE_BTC // 10, 50_000 * USDC)])  # fmt: skip
def test_margin_holds_at_every_edge_of_the_band(size: int, collateral: int) -> None:
    venue = Venue()
    leveraged_long(venue, size=abs(size), collateral=collateral)
    if size < 0:  # turn bob short: sell twice his long into the bids
        quote(venue, "alice", PRICE, size=2 * abs(size))
        venue.run(venue.order("bob", BTC_PERP, Side.SELL, 2 * abs(size), PRICE - 60 * USDC,
                              number=1))  # fmt: skip
    ctx = venue.engine.ctx
    subaccount = venue.state.ledger.subaccounts[venue.sub("bob", 1)]
    assert subaccount.positions[BTC].size_base_quantums == size
    bands = watch.band_of(ctx, subaccount)
    assert bands is not None
    [band] = bands
    assert band.low_price_quantums < venue.mark() < band.high_price_quantums
    for mark in (band.low_price_quantums, band.high_price_quantums, venue.mark()):
        set_mark(venue, max(mark, 1))
        risk = risk_of(ctx, subaccount)
        assert not risk.liquidatable and risk.equity >= 0, mark
    # ...and the band is not absurdly narrow: beyond what it reserves for funding (a drift of
    # the index per unit that reads as a move of the mark), it goes a fair part of the way to
    # the liquidation price.
    reserved = watch._funding_drift_e9(ctx, BTC) // 10**9
    step = 10 * USDC
    edge = band.low_price_quantums if size > 0 else band.high_price_quantums
    adverse = edge
    while step < adverse < 10 * PRICE and not risk_of(ctx, subaccount).liquidatable:
        adverse += -step if size > 0 else step
        set_mark(venue, adverse)
    if risk_of(ctx, subaccount).liquidatable:
        width = band.high_price_quantums - band.low_price_quantums
        assert abs(adverse - edge) < 2 * width + reserved + step


def test_a_subaccount_at_its_margin_has_no_band_and_is_examined_every_block() -> None:
    venue = Venue()
    leveraged_long(venue)
    ctx = venue.engine.ctx
    subaccount = venue.state.ledger.subaccounts[venue.sub("bob", 1)]
    risk = risk_of(ctx, subaccount)
    shave = risk.equity - risk.maintenance  # leave bob exactly at his maintenance margin
    venue.state.ledger.apply(Transfer(venue.sub("bob", 1), INSURANCE, QUOTE_ASSET, shave))
    assert watch.band_of(ctx, subaccount) is None


def test_the_full_scan_check_catches_a_change_the_watch_was_not_told_of() -> None:
    """The check can fail: collateral taken out behind the watch's back (no transfer, so no
    change noted) leaves bob liquidatable inside his old band, and the check names him."""
    venue = Venue()
    leveraged_long(venue)
    venue.block()  # a pass: bob gets his band
    assert venue.engine.unwatched_liquidatable() == []
    bob = venue.sub("bob", 1)
    risk = venue.risk("bob", 1)
    venue.state.ledger.apply(
        Transfer(bob, INSURANCE, QUOTE_ASSET, risk.equity - risk.maintenance + 1)
    )
    assert venue.engine.unwatched_liquidatable() == [bob]


def test_the_pass_examines_only_what_moved() -> None:
    """With prices still, an untouched holder is not examined; a price move past a band, or a
    change to the holder, puts it back in the pass."""
    venue = Venue()
    leveraged_long(venue)
    venue.block()
    ctx = venue.engine.ctx
    bob = venue.sub("bob", 1)
    examined = watch.start_pass(ctx)
    watch.finish_pass(ctx, examined)
    assert bob not in examined
    [band] = ctx.derived.bands.bands(bob) or ()
    set_mark(venue, band.low_price_quantums - 1)
    examined = watch.start_pass(ctx)
    watch.finish_pass(ctx, examined)
    assert bob in examined


def test_a_holder_a_block_changed_is_banded_as_the_block_closes() -> None:
    """bob's fill changes him in the block's commands: the block's close bands him at the
    state it left, so a read between blocks and the next pass (prices still) skip him."""
    venue = Venue()
    leveraged_long(venue)
    ctx = venue.engine.ctx
    bob = venue.sub("bob", 1)
    assert bob not in ctx.derived.risk_changed
    assert ctx.derived.bands.bands(bob) is not None
    assert bob not in watch.suspects(ctx)
    assert venue.engine.unwatched_liquidatable() == []


def test_a_change_of_margin_mode_is_a_change_the_watch_hears_of() -> None:
    """Portfolio mode reckons margin another way than the band assumed: the next pass must
    examine the subaccount (it is then unbanded, as every portfolio-mode subaccount is)."""
    venue = Venue()
    leveraged_long(venue, size=ONE_BTC // 2, collateral=50_000 * USDC)
    venue.block()
    bob = venue.sub("bob", 1)
    assert venue.engine.ctx.derived.bands.bands(bob) is not None
    [events] = accepted(
        venue, SetMarginMode(**venue_common(venue, "bob"), subaccount_number=1, portfolio=True)
    )
    assert events
    assert bob in watch.suspects(venue.engine.ctx)
    venue.block()
    assert bob in venue.engine.ctx.derived.bands.unbanded


def venue_common(venue: Venue, trader: str) -> dict[str, object]:
    signer = venue.signers[trader]
    return {"signer": signer.address, "nonce": signer.nonce(venue.now),
            "expiry_ns": venue.now + 60 * 10**9}  # fmt: skip


def _with_quote(subaccount: Subaccount, quote_quantums: int) -> Subaccount:
    """The subaccount with another quote balance (what-if)."""
    return Subaccount(
        subaccount.subaccount_id, balances={QUOTE_ASSET: quote_quantums},
        positions=subaccount.positions, open_orders=subaccount.open_orders,
    )  # fmt: skip


@pytest.mark.parametrize("portfolio", [False, True])
def test_long_options_paid_for_need_no_band_and_no_mark_reaches_their_margin(
    portfolio: bool,
) -> None:
    """bob buys ten calls from carol: he holds long options alone and his quote pays for them,
    so he is tracked without a band (never examined until he changes), while carol, their
    writer, is examined every block. At quote = cost exactly, no option mark, from 1 quantum
    to fifty times today's, makes him liquidatable; one quantum less and he is not fully paid."""
    venue = Venue()
    if portfolio:
        accepted(venue, margin_mode(venue, "bob"))
    option = carol_writes_calls(venue)
    venue.block()
    ctx = venue.engine.ctx
    bob, carol = venue.sub("bob"), venue.sub("carol", 1)
    assert ctx.derived.bands.bands(bob) == ()
    assert carol in ctx.derived.bands.unbanded
    held = venue.state.ledger.subaccounts[bob]
    cost = held.positions[option].cost_quote_quantums
    assert watch.fully_paid_long_options(ctx, _with_quote(held, cost))
    assert not watch.fully_paid_long_options(ctx, _with_quote(held, cost - 1))
    market = venue.state.markets[option]
    for mark in (1, market.mark_price_quantums // 3, 50 * market.mark_price_quantums):
        market.mark_price_quantums = mark
        ctx.derived.market_risk_cache.clear()
        risk = risk_of(ctx, _with_quote(held, cost))
        assert risk.equity >= risk.maintenance >= 0, (mark, risk)
        assert bob not in watch.suspects(ctx)


def test_a_holder_of_long_options_and_anything_else_is_examined_every_block() -> None:
    """bob's calls plus a perpetual: no longer long options alone, so no promise."""
    venue = Venue()
    carol_writes_calls(venue)
    quote(venue, "alice", PRICE, size=ONE_BTC)
    accepted(venue, venue.order("bob", BTC_PERP, Side.BUY, ONE_BTC // 10, PRICE + 10 * USDC))
    venue.block()
    assert venue.sub("bob") in venue.engine.ctx.derived.bands.unbanded
