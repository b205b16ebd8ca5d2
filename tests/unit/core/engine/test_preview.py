"""The margin preview (``Engine.preview``): what it predicts is what the engine then does —
the same fold of a fill, fee included, and the same margin gate's decision."""

from __future__ import annotations

import pytest

from clearhouse.core.engine import Trial
from clearhouse.core.engine import preview as preview_module
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, Side
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ETH_PERP, ONE_BTC, PRICE, Venue, accepted, rejected, snapshot

MARKET = MarketId(BTC_PERP)


def _resting_ask(venue: Venue, size: int) -> None:
    accepted(venue, venue.deposit("bob", 1_000_000 * USDC))
    accepted(venue, venue.order("bob", BTC_PERP, Side.SELL, size, PRICE))


def test_a_previewed_fill_is_what_the_engine_then_books() -> None:
    venue = Venue()
    _resting_ask(venue, ONE_BTC)
    sid = venue.sub("alice")
    state_before = snapshot(venue.state)
    found = venue.engine.preview(sid, Trial(fills=((MARKET, ONE_BTC, PRICE),)))
    assert snapshot(venue.state) == state_before  # a preview changes nothing
    assert found.refusal is None
    accepted(venue, venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE))
    # The block's own reports leave every price as it was: the booked subaccount is the preview.
    real = venue.risk("alice")
    assert (real.equity, real.initial, real.maintenance) == (
        found.after.equity, found.after.initial, found.after.maintenance,
    )  # fmt: skip
    (position,) = found.positions
    assert position.size_base_quantums == venue.position("alice", BTC_PERP)[0] == ONE_BTC
    assert found.before.equity - found.after.equity > 0  # the taker fee, as the engine charged


def test_a_refusal_previewed_is_the_refusal_the_engine_gives() -> None:
    venue = Venue(quote_per_trader=10_000 * USDC)
    size = 10 * ONE_BTC  # 600k of notional on 10k: far beyond 2% initial margin
    _resting_ask(venue, size)
    found = venue.engine.preview(venue.sub("alice"), Trial(fills=((MARKET, size, PRICE),)))
    assert found.refusal is RejectReason.INSUFFICIENT_MARGIN
    assert not found.after.satisfies_initial
    rejected(
        venue, venue.order("alice", BTC_PERP, Side.BUY, size, PRICE),
        RejectReason.INSUFFICIENT_MARGIN,
    )  # fmt: skip


def test_a_long_s_liquidation_price_is_where_the_engine_finds_it_liquidatable() -> None:
    venue = Venue(quote_per_trader=100_000 * USDC)
    size = 10 * ONE_BTC  # 600k on 100k: ~6× leverage
    _resting_ask(venue, size)
    accepted(venue, venue.order("alice", BTC_PERP, Side.BUY, size, PRICE))
    found = venue.engine.preview(venue.sub("alice"), Trial())
    (position,) = found.positions
    price = position.liquidation_price_quantums
    assert price is not None and price < PRICE
    assert position.adl_rank is not None and position.adl_rank[0] >= 1
    # One tick above it, the account is healthy; at it, liquidatable.
    tick = venue.state.markets[MARKET].params.tick_quantums
    venue.settle_prices(BTC_USD=(price // tick + 1) * tick + 10 * tick)
    assert not venue.risk("alice").liquidatable
    venue.settle_prices(BTC_USD=price - 10 * tick)
    assert venue.risk("alice").liquidatable


def test_only_the_largest_positions_have_their_liquidation_price_searched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each search is ~45 margin computations of the whole trial: a preview searches the
    ``LIQUIDATION_PRICES_MAX`` positions of largest notional, the others are None."""
    venue = Venue(quote_per_trader=20_000 * USDC)
    eth = venue.state.markets[ETH_PERP]
    eth_short = -10 * eth.params.base_quantums_per_unit  # ~30k of notional against BTC's 60k
    portfolio = {MARKET: (ONE_BTC, PRICE), ETH_PERP: (eth_short, eth.mark_price_quantums)}
    trial = Trial(portfolio=portfolio)
    both = venue.engine.preview(venue.sub("alice"), trial)
    assert all(p.liquidation_price_quantums is not None for p in both.positions)
    monkeypatch.setattr(preview_module, "LIQUIDATION_PRICES_MAX", 1)
    one = venue.engine.preview(venue.sub("alice"), trial)
    searched = {p.market_id: p.liquidation_price_quantums for p in one.positions}
    assert searched[MARKET] == {p.market_id: p.liquidation_price_quantums
                                for p in both.positions}[MARKET]  # fmt: skip
    assert searched[ETH_PERP] is None  # 10 ETH is less notional than 1 BTC
