"""Margin inputs from the state (``core/engine/risk.py``): a portfolio-mode risk remembered
within a block is the one a fresh computation gives, and is never served once anything it
reads has moved (a resting order, a balance, a position, a price)."""

from __future__ import annotations

import dataclasses

from clearhouse.core.engine.context import Context
from clearhouse.core.engine.risk import (
    collateral_price,
    compute_market_risk,
    contract_profile,
    equity_of,
    market_profile,
    market_risk,
    profiled,
    risk_of,
)
from clearhouse.core.engine.trading.resting import add_resting, copy_open_orders
from clearhouse.core.ids import QUOTE_ASSET, OracleId, OrderId, Side
from clearhouse.core.ledger import OPTIONS_VAULT, Subaccount
from clearhouse.core.margin import Risk, subaccount_risk
from clearhouse.core.params import OptionsVaultParams
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted
from ladder import leveraged_long, quote
from options import deposit_options_vault, setup_options_vault, with_series


def quoting_vault() -> Venue:
    """The default BTC series with a surface, a perpetual book, and the options vault
    funded and quoting the series in portfolio mode."""
    venue = Venue()
    with_series(venue)
    quote(venue, "alice", PRICE, size=20 * ONE_BTC)
    params = OptionsVaultParams(
        oracle_id=OracleId("BTC-USD"), hedge_market_id=BTC_PERP,
        quote_size_base_quantums=ONE_BTC, delta_band_nav_ppm=10_000, lockup_ns=NS_PER_HOUR,
    )  # fmt: skip
    accepted(venue, setup_options_vault(venue, params))
    accepted(venue, deposit_options_vault(venue, "dave", 1_000_000 * USDC))
    venue.block()
    return venue


def fresh(ctx: Context, subaccount: Subaccount) -> Risk:
    """Portfolio-mode risk computed from scratch, nothing remembered."""
    held = subaccount.positions.keys() | subaccount.open_orders.keys()
    markets = {m: profiled(ctx, m, market_risk(ctx, m)) for m in held}
    collateral = {a: collateral_price(ctx, a) for a in subaccount.assets}
    return subaccount_risk(subaccount, markets, collateral, portfolio=True)


def with_bid(ctx: Context, subaccount: Subaccount, size: int, price: int) -> Subaccount:
    """A copy of the subaccount with one more bid resting in its first option market."""
    market_id = sorted(subaccount.open_orders)[0]
    trial = Subaccount(
        subaccount.subaccount_id, balances=subaccount.balances, positions=subaccount.positions,
        open_orders={m: copy_open_orders(o) for m, o in subaccount.open_orders.items()},
    )  # fmt: skip
    add_resting(trial, ctx.state.markets[market_id], Side.BUY, size, price)
    return trial


def test_a_remembered_portfolio_risk_is_the_fresh_one_and_moves_with_its_inputs() -> None:
    venue = quoting_vault()
    ctx = venue.engine.ctx
    vault = ctx.state.ledger.subaccounts[OPTIONS_VAULT]
    assert OPTIONS_VAULT in ctx.state.portfolio_margin
    assert len(vault.open_orders) > 10  # a book of quotes over the series
    option, record = sorted(ctx.state.options_vault.quotes.items())[0]
    first = risk_of(ctx, vault)
    assert risk_of(ctx, vault) is first  # asked again at the same content: remembered
    assert first == fresh(ctx, vault)

    step = ctx.state.markets[option].params.step_base_quantums
    bid = with_bid(ctx, vault, 50 * step, 1_000 * USDC)  # a costly bid: IM rises
    assert risk_of(ctx, bid) == fresh(ctx, bid) != first
    assert risk_of(ctx, bid).initial > first.initial
    assert risk_of(ctx, vault) is first  # the book itself is still remembered

    # Only the size of a bid moves (its notional kept): still a new risk.
    wider = with_bid(ctx, vault, 50 * step, 1_000 * USDC)
    orders = wider.open_orders[sorted(wider.open_orders)[0]]
    orders.bid_base_quantums += step
    assert risk_of(ctx, wider) == fresh(ctx, wider) != risk_of(ctx, bid)

    # The markets' risks move within the block (the index the grid is centred on): their
    # new risk objects are read.
    oracle = ctx.state.oracles[OracleId("BTC-USD")]
    index = oracle.index_price_quantums
    oracle.index_price_quantums = index * 9 // 10
    moved = risk_of(ctx, vault)
    assert moved == fresh(ctx, vault) != first
    oracle.index_price_quantums = index
    assert risk_of(ctx, vault) == first

    richer = Subaccount(vault.subaccount_id, balances={QUOTE_ASSET: vault.quote_quantums + 1},
                        positions=vault.positions, open_orders=vault.open_orders)  # fmt: skip
    assert risk_of(ctx, richer).equity == first.equity + 1

    # A fill against its quote: its position moves, and so does its risk.
    ask = ctx.state.markets[option].book.get(OrderId(record.ask_order_id))
    assert ask is not None
    venue.block([venue.order("bob", option, Side.BUY, ask.remaining_base_quantums,
                             ask.price_quantums)])  # fmt: skip
    vault = ctx.state.ledger.subaccounts[OPTIONS_VAULT]
    held = vault.position_size(option)
    assert held < 0 and risk_of(ctx, vault) == fresh(ctx, vault)
    # Only a position's size moves (its cost kept): a new risk.
    positions = {m: dataclasses.replace(p) for m, p in vault.positions.items()}
    positions[option].size_base_quantums = held // 2
    halved = Subaccount(vault.subaccount_id, balances=vault.balances, positions=positions,
                        open_orders=vault.open_orders)  # fmt: skip
    assert risk_of(ctx, halved) == fresh(ctx, halved) != risk_of(ctx, vault)

    # New prices: new market risks, never the last block's risk.
    before = risk_of(ctx, vault)
    venue.settle_prices(BTC_USD=PRICE * 97 // 100)
    vault = ctx.state.ledger.subaccounts[OPTIONS_VAULT]
    after = risk_of(ctx, vault)
    assert after == fresh(ctx, vault)
    assert after.equity != before.equity


def test_a_market_risk_that_open_interest_alone_moved_is_kept_below_the_bound() -> None:
    """Open interest reaches a market's risk only through its IM fraction: below the lower
    bound the very same risk is served; past it, a new one, the one computed from scratch."""
    venue = Venue()
    ctx = venue.engine.ctx
    market = ctx.state.markets[BTC_PERP]
    oracle = ctx.state.oracles[market.params.oracle_id]
    first = market_risk(ctx, BTC_PERP)
    market.open_interest_base_quantums += ONE_BTC
    assert market_risk(ctx, BTC_PERP) is first
    assert first == compute_market_risk(ctx, market, oracle)

    bound = market.params.margin.oi_lower_quote_quantums
    market.open_interest_base_quantums = 2 * bound * ONE_BTC // market.mark_price_quantums
    past = market_risk(ctx, BTC_PERP)
    assert past.im_fraction_ppm > first.im_fraction_ppm
    assert past == compute_market_risk(ctx, market, oracle)
    assert market_risk(ctx, BTC_PERP) is past


def test_equity_alone_is_the_risks_equity_in_either_margin_mode() -> None:
    """``equity_of`` (a read of NAV or a backstop's low) is ``risk_of(...).equity``: for the
    options vault in portfolio mode, with its quotes resting, and for every subaccount of a
    venue with a leveraged long and a maker's ladder, in both modes, after the mark moved."""
    venue = quoting_vault()
    leveraged_long(venue)
    venue.advance(2 * NS_PER_HOUR, step_ns=10 * 60 * NS_PER_SECOND)  # funding accrues
    venue.settle_prices(BTC_USD=PRICE * 97 // 100)
    ctx = venue.engine.ctx
    subaccounts = ctx.state.ledger.subaccounts
    assert OPTIONS_VAULT in subaccounts and len(subaccounts) > 3
    for subaccount in subaccounts.values():
        for portfolio in (False, True):
            assert (
                equity_of(ctx, subaccount) == risk_of(ctx, subaccount, portfolio=portfolio).equity
            )
    assert any(s.positions and s.open_orders for s in subaccounts.values())
    markets = ctx.state.markets
    assert any(  # funding is pending somewhere
        p.size_base_quantums and p.funding_index_e9 != markets[m].funding_index_e9
        for s in subaccounts.values()
        for m, p in s.positions.items()
    )


def test_a_linear_markets_profile_is_taken_where_asked_and_kept_beside_its_risk() -> None:
    """A perpetual's risk carries no scenario profile (standard mode never reads one); asked
    for (portfolio mode, Greeks), it is the contract's profile, and the venue's current risk
    gets the same profiled object until the risk itself moves."""
    venue = Venue()
    ctx = venue.engine.ctx
    market = ctx.state.markets[BTC_PERP]
    oracle = ctx.state.oracles[market.params.oracle_id]
    risk = market_risk(ctx, BTC_PERP)
    assert risk.profile is None and not risk.is_option
    with_profile = profiled(ctx, BTC_PERP, risk)
    assert with_profile.profile == contract_profile(ctx, market, oracle)
    assert dataclasses.replace(with_profile, profile=None) == risk
    assert profiled(ctx, BTC_PERP, market_risk(ctx, BTC_PERP)) is with_profile
    assert market_profile(ctx, BTC_PERP) is with_profile.profile

    what_if = dataclasses.replace(risk, mark_price_quantums=risk.mark_price_quantums + 1)
    assert profiled(ctx, BTC_PERP, what_if).profile == with_profile.profile
    venue.settle_prices(BTC_USD=PRICE * 101 // 100)
    moved = market_risk(ctx, BTC_PERP)
    assert moved is not risk and profiled(ctx, BTC_PERP, moved) is not with_profile


def test_a_cached_market_risk_moves_with_the_surfaces_age_and_the_confidence() -> None:
    """``market_risk``'s key reads the surface's freshness and the oracle's confidence itself:
    an option's risk served after the surface went stale, or after the confidence moved, is
    the one computed from scratch, never the one kept."""
    venue = quoting_vault()
    ctx = venue.engine.ctx
    options = sorted(m for m, s in ctx.state.markets.items() if s.params.payoff is not None)
    assert options
    market = ctx.state.markets[options[0]]
    oracle = ctx.state.oracles[market.params.oracle_id]
    kept = market_risk(ctx, options[0])
    assert kept.usable
    assert kept == compute_market_risk(ctx, market, oracle)

    ctx.derived.confidence[oracle.params.oracle_id] = kept.confidence_quantums + 7
    moved = market_risk(ctx, options[0])
    assert moved is not kept
    assert moved.confidence_quantums == kept.confidence_quantums + 7
    assert moved == compute_market_risk(ctx, market, oracle)

    ctx.state.timestamp_ns = oracle.surface_timestamp_ns + oracle.params.surface_staleness_ns + 1
    stale = market_risk(ctx, options[0])
    assert not stale.usable
    assert stale == compute_market_risk(ctx, market, oracle)
