"""The options AMM (SPEC §11): shares at NAV with a lock-up, quotes on every listed option with
a fresh surface and none without, a spread that widens with exposure, sides withdrawn at a
cap, the delta hedge on the perpetual, exact accounting, replay, and a crash."""

from __future__ import annotations

import dataclasses

import pytest

from clearhouse.core import limits
from clearhouse.core.engine.context import transfer
from clearhouse.core.engine.risk import book_exposure
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, MarketId, OracleId, OrderId, Side
from clearhouse.core.ledger import OPTIONS_VAULT
from clearhouse.core.messages import (
    CancelCause,
    OptionsVaultDeposited,
    OptionsVaultHedged,
    OptionsVaultWithdrawn,
    OrderCancelled,
    OrderFilled,
    OrderRested,
    PlaceOrder,
    SetupOptionsVault,
    TimeInForce,
    WithdrawOptionsVault,
)
from clearhouse.core.options_vault import (
    Caps,
    Exposure,
    OptionQuoteInputs,
    make_option_quote,
    pressure_ppm,
    within_caps,
)
from clearhouse.core.params import MarketKind, OptionsVaultParams
from clearhouse.core.payoffs import call
from clearhouse.core.state import OPTIONS_VAULT_KEY, MarketStatus
from clearhouse.core.units import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND, PPM_ONE
from clearhouse.core.vault import quote_for_shares, shares_for_deposit
from clearhouse.sim.venue import USDC, options_vault
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type, rejected
from ladder import quote
from options import deposit_options_vault as deposit
from options import list_option, publish_surface, setup_options_vault, with_series

BTC_USD = OracleId("BTC-USD")
NAV = 1_000_000 * USDC
PARAMS = OptionsVaultParams(
    oracle_id=BTC_USD, hedge_market_id=BTC_PERP, quote_size_base_quantums=ONE_BTC,
    delta_band_nav_ppm=10_000, lockup_ns=NS_PER_HOUR,
)  # fmt: skip

# ── Commands ────────────────────────────────────────────────────────────────────────────────


def setup(venue: Venue, params: OptionsVaultParams = PARAMS) -> SetupOptionsVault:
    return setup_options_vault(venue, params)


def withdraw(venue: Venue, trader: str, shares: int) -> WithdrawOptionsVault:
    signer = venue.signers[trader]
    return WithdrawOptionsVault(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        subaccount_number=0, shares=shares,
    )  # fmt: skip


def funded_vault(
    params: OptionsVaultParams = PARAMS, nav: int = NAV
) -> tuple[Venue, list[MarketId]]:
    """The default BTC series listed with a surface, a perpetual book to hedge on, and the
    options vault set up and funded by dave."""
    venue = Venue()
    listed = with_series(venue)
    quote(venue, "alice", PRICE, size=20 * ONE_BTC)
    accepted(venue, setup(venue, params))
    accepted(venue, deposit(venue, "dave", nav))
    venue.block()
    return venue, listed


def quotes(venue: Venue) -> dict[MarketId, tuple[int, int]]:
    """The vault's resting (bid, ask) order ids per option market."""
    return {
        m: (q.bid_order_id, q.ask_order_id) for m, q in venue.state.options_vault.quotes.items()
    }


# ── Shares at NAV ───────────────────────────────────────────────────────────────────────────


def test_a_venue_without_an_options_vault_carries_no_leaf_and_refuses_deposits() -> None:
    venue = Venue()
    assert OPTIONS_VAULT_KEY not in venue.state.tree
    rejected(venue, deposit(venue, "dave", 1_000 * USDC), RejectReason.OPTIONS_VAULT_NOT_SET_UP)


def test_only_the_operator_sets_it_up_and_only_on_its_own_perpetual() -> None:
    venue = Venue()
    signer = venue.signers["alice"]
    forged = dataclasses.replace(setup(venue), signer=signer.address, nonce=signer.nonce(venue.now))
    rejected(venue, forged, RejectReason.UNAUTHORIZED_SIGNER)
    wrong = dataclasses.replace(PARAMS, hedge_market_id=MarketId("ETH-PERP"))
    rejected(venue, setup(venue, wrong), RejectReason.INVALID_PARAMETERS)
    accepted(venue, setup(venue))
    assert OPTIONS_VAULT in venue.state.portfolio_margin  # a hedged book, margined as one


def test_shares_are_bought_and_redeemed_at_nav_after_the_lock_up() -> None:
    venue, _ = funded_vault()
    vault = venue.state.options_vault
    owner = vault.owners[venue.address("dave")]
    assert owner.shares == shares_for_deposit(NAV, nav_quantums=0, total_shares=0)
    accepted(venue, deposit(venue, "carol", 10_000 * USDC))
    carol = vault.owners[venue.address("carol")].shares
    rejected(venue, withdraw(venue, "carol", carol), RejectReason.VAULT_LOCKED)
    venue.advance(NS_PER_HOUR, step_ns=5 * NS_PER_MINUTE)
    publish_surface(venue)  # redemptions need fresh prices: the options' too
    before = venue.balance("carol")
    events = accepted(venue, withdraw(venue, "carol", carol))[0]
    (withdrawn,) = of_type(events, OptionsVaultWithdrawn)
    expected = quote_for_shares(
        carol, nav_quantums=withdrawn.nav_quote_quantums, total_shares=withdrawn.total_shares
    )
    assert withdrawn.amount_quote_quantums == expected
    assert venue.balance("carol") - before == expected
    assert venue.address("carol") not in vault.owners


def test_a_donation_does_not_rob_the_next_depositor() -> None:
    """The ERC-4626 attack through the engine: one quantum, then a donation to the vault's
    subaccount; the next depositor still gets shares worth what it paid, within a share."""
    venue = Venue()
    accepted(venue, setup(venue))
    accepted(venue, deposit(venue, "bob", 1))
    transfer(venue.engine.ctx, venue.sub("bob"), OPTIONS_VAULT, QUOTE_ASSET, 100_000 * USDC, "gift")
    events = accepted(venue, deposit(venue, "dave", 10_000 * USDC))[0]
    (deposited,) = of_type(events, OptionsVaultDeposited)
    vault = venue.state.options_vault
    worth = quote_for_shares(
        deposited.shares, nav_quantums=deposited.nav_quote_quantums + 10_000 * USDC,
        total_shares=vault.total_shares,
    )  # fmt: skip
    assert 10_000 * USDC - worth <= USDC


# ── Quotes ──────────────────────────────────────────────────────────────────────────────────


def test_it_quotes_every_listed_option_with_a_fresh_surface() -> None:
    venue, listed = funded_vault()
    standing = quotes(venue)
    assert sorted(standing) == sorted(listed)
    for market_id, (bid_id, ask_id) in standing.items():
        market = venue.state.markets[market_id]
        ask = market.book.get(ask_id)
        assert ask is not None and ask.price_quantums > market.mark_price_quantums
        if bid_id:
            bid = market.book.get(bid_id)
            assert bid is not None and bid.price_quantums < market.mark_price_quantums


def test_past_its_market_cap_it_quotes_the_options_nearest_the_money(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real chain lists more options than the vault quotes at once (Deribit's BTC chain of
    2025-12-31: 620; ``options_vault_markets_max``: 120). Before, it took the first 120 by
    market id, a text order: on that chain four daily expiries and the weekly's strikes
    100000 and 104000 (id order puts "100000" before "75000"), none within a month, and here
    the calls at 100,000 and above, nothing at the money. It quotes those nearest the money
    in standard deviations of time (|ln K/F| / √T), what it holds first. (The cap is 8 here:
    the same order, at a fifteenth of the listings.)"""
    monkeypatch.setattr(limits, "options_vault_markets_max", 8)
    venue = Venue()
    publish_surface(venue)
    year = 365 * 24 * NS_PER_HOUR
    strikes = range(100_000, 100_000 + 1_000 * limits.options_vault_markets_max, 1_000)
    far = [list_option(venue, f"BTC-1Y-{k}-C", call(k * USDC), year) for k in strikes]
    near = [list_option(venue, f"BTC-1Y-{k}-C", call(k * USDC), year) for k in (60_000, 62_000)]
    quote(venue, "alice", PRICE, size=20 * ONE_BTC)
    accepted(venue, setup(venue))
    accepted(venue, deposit(venue, "dave", NAV))
    venue.block()
    standing = quotes(venue)
    assert len(standing) == limits.options_vault_markets_max
    assert set(near) <= set(standing)
    assert set(standing) == set(near) | set(far[:-2])  # the two furthest out are left


def test_without_a_fresh_surface_it_quotes_nothing() -> None:
    venue, listed = funded_vault()
    staleness = venue.state.oracles[BTC_USD].params.surface_staleness_ns
    venue.advance(staleness + NS_PER_MINUTE)
    assert quotes(venue) == {}
    assert not any(list(venue.state.markets[m].book.orders()) for m in listed)
    publish_surface(venue)
    venue.block()
    venue.block()  # the surface is in use, and the vault's NAV measurable again
    assert sorted(quotes(venue)) == sorted(m for m in listed if m in venue.state.markets)


def test_a_quiet_block_requotes_nothing() -> None:
    venue, _ = funded_vault()
    before = quotes(venue)
    venue.block()
    assert quotes(venue) == before


def orders_rested(venue: Venue) -> int:
    """Orders that came to rest in the last block's own steps (nobody else sends any here)."""
    return sum(isinstance(e, OrderRested) for e in venue.recorded[-1].events)


def test_quotes_that_only_drifted_are_requoted_a_budget_of_markets_a_block() -> None:
    """A move drifts every quote from its target: in the block that sees it, at most the
    budget's worth of markets are requoted for drift (placements are margin checks of the
    whole book), the furthest off first; the others wait, none on the wrong side of its mark,
    and what was pulled or must change is requoted the next block."""
    venue, _ = funded_vault()
    venue.settle_prices(BTC_USD=PRICE * 103 // 100)  # its second block prices at the new index
    records = venue.state.options_vault.quotes
    requoted = [m for m, q in records.items() if q.quoted_ns == venue.now]
    waiting = [m for m, q in records.items() if q.quoted_ns != venue.now]
    budget = limits.options_vault_requotes_per_block_max
    assert budget <= len(requoted) <= budget + 2  # a side a cap changed must go at once too
    assert len(waiting) > budget
    for market_id in waiting:
        market = venue.state.markets[market_id]
        bid, ask = (market.book.get(OrderId(i)) for i in quotes(venue)[market_id])
        assert bid is None or bid.price_quantums < market.mark_price_quantums
        assert ask is None or ask.price_quantums > market.mark_price_quantums
    for _ in range(-(-len(waiting) // budget)):
        venue.block()
    assert all(q.quoted_ns > venue.now - 10 * venue.block_ns for q in records.values())


def test_a_waiting_side_past_the_mark_is_cancelled() -> None:
    """A jump moves every mark: the markets beyond this block's budget keep their quotes, but
    none of them is left on the wrong side of its new mark."""
    venue, _ = funded_vault()
    venue.settle_prices(BTC_USD=PRICE * 108 // 100)
    publish_surface(venue)
    venue.block()
    for market_id, (bid_id, ask_id) in quotes(venue).items():
        market = venue.state.markets[market_id]
        mark = market.mark_price_quantums
        bid, ask = market.book.get(bid_id), market.book.get(ask_id)
        assert bid is None or bid.price_quantums < mark, market_id
        assert ask is None or ask.price_quantums > mark, market_id


def inputs(book: Exposure, pressure: int, caps: Caps) -> OptionQuoteInputs:
    return OptionQuoteInputs(
        mark_price_quantums=2_000 * USDC, tick_quantums=USDC, step_base_quantums=ONE_BTC // 100,
        min_order_base_quantums=ONE_BTC // 100, base_quantums_per_unit=ONE_BTC,
        book=book, unit=UNIT, caps=caps, pressure_ppm=pressure,
    )  # fmt: skip


UNIT = Exposure(vega_quantums=30 * USDC, gamma_quantums=3_000 * USDC, delta_quantums=30_000 * USDC)
CAPS = Caps.of(PARAMS, NAV)
FLAT = Exposure(vega_quantums=0, gamma_quantums=0, delta_quantums=0)


def test_the_spread_widens_with_exposure_on_the_side_that_adds_it() -> None:
    long_vega = Exposure(
        vega_quantums=CAPS.vega_quantums // 2, gamma_quantums=CAPS.gamma_quantums // 2,
        delta_quantums=0,
    )  # fmt: skip
    short_vega = Exposure(
        vega_quantums=-long_vega.vega_quantums, gamma_quantums=-long_vega.gamma_quantums,
        delta_quantums=0,
    )  # fmt: skip
    flat = make_option_quote(PARAMS, inputs(FLAT, pressure_ppm(PARAMS, FLAT, UNIT, CAPS), CAPS))
    up = pressure_ppm(PARAMS, long_vega, UNIT, CAPS)
    down = pressure_ppm(PARAMS, short_vega, UNIT, CAPS)
    assert up == (PARAMS.vega_spread_ppm + PARAMS.gamma_spread_ppm) // 2 > 0 > down == -up
    longer = make_option_quote(PARAMS, inputs(long_vega, up, CAPS))
    shorter = make_option_quote(PARAMS, inputs(short_vega, down, CAPS))
    # Long vega: the bid (which adds more) falls away, the ask stays where it was ...
    assert longer.bid_price_quantums < flat.bid_price_quantums
    assert longer.ask_price_quantums == flat.ask_price_quantums
    # ... and short vega, the reverse: each quote leans toward reducing the exposure.
    assert shorter.ask_price_quantums > flat.ask_price_quantums
    assert shorter.bid_price_quantums == flat.bid_price_quantums
    width = flat.ask_price_quantums - flat.bid_price_quantums
    assert longer.ask_price_quantums - longer.bid_price_quantums > width


def test_the_quote_spans_the_mark_and_the_mark_on_the_index_as_forward() -> None:
    """A dated future's mark, held at its band by orders nobody trades with, moves the forward
    of every later option and so its mark: the bid comes from the lower of the two marks and
    the ask from the higher, so a pushed basis only widens the quote."""
    at_mark = make_option_quote(PARAMS, inputs(FLAT, 0, CAPS))
    for at_index in (1_400 * USDC, 2_600 * USDC):  # the forward pushed up, then down
        q = make_option_quote(
            PARAMS, dataclasses.replace(inputs(FLAT, 0, CAPS), index_mark_price_quantums=at_index)
        )
        low, high = min(2_000 * USDC, at_index), max(2_000 * USDC, at_index)
        assert q.bid_price_quantums == low * (PPM_ONE - PARAMS.half_spread_ppm) // PPM_ONE
        assert q.ask_price_quantums == high * (PPM_ONE + PARAMS.half_spread_ppm) // PPM_ONE
        assert q.bid_price_quantums <= at_mark.bid_price_quantums
        assert q.ask_price_quantums >= at_mark.ask_price_quantums


def test_the_side_that_would_pass_a_cap_is_not_quoted() -> None:
    near = Exposure(
        vega_quantums=CAPS.vega_quantums - UNIT.vega_quantums // 2, gamma_quantums=0,
        delta_quantums=0,
    )  # fmt: skip
    q = make_option_quote(PARAMS, inputs(near, pressure_ppm(PARAMS, near, UNIT, CAPS), CAPS))
    assert q.bid_base_quantums == 0  # buying one more unit passes the vega cap
    assert q.ask_base_quantums == PARAMS.quote_size_base_quantums  # selling reduces it
    beyond = dataclasses.replace(near, vega_quantums=2 * CAPS.vega_quantums)
    reduced = dataclasses.replace(beyond, vega_quantums=beyond.vega_quantums - 1)
    assert within_caps(reduced, beyond, CAPS)  # a breach may shrink, never grow
    assert not within_caps(beyond, reduced, CAPS)


def test_when_its_margin_cannot_carry_every_full_quote_it_quotes_every_option_smaller() -> None:
    """Every resting quote counts in IM on its worst side: 56 options quoted 1 BTC a side need
    more margin than 200,000 USDC holds. Quoting in id order until the margin ran out left
    the last options with no quote at all (found by the stress lab in a crash, where the
    volatility multiplier grows that margin several times); the vault now quotes them all at
    the size its margin carries, keeping a tenth of its equity free for the hedge."""
    roomy = dataclasses.replace(
        PARAMS, vega_cap_nav_ppm=PPM_ONE, gamma_cap_nav_ppm=PPM_ONE, delta_cap_nav_ppm=PPM_ONE
    )  # caps that never bind: only the margin limits the quotes
    venue, listed = funded_vault(roomy, nav=200_000 * USDC)
    venue.block()
    venue.block()
    standing = quotes(venue)
    assert sorted(standing) == sorted(listed)
    sizes = set()
    for market_id, (bid_id, ask_id) in standing.items():
        market = venue.state.markets[market_id]
        ask = market.book.get(OrderId(ask_id)) if ask_id else None
        assert ask is not None, market_id
        sizes.add(ask.remaining_base_quantums)
        if market.mark_price_quantums > 2 * market.params.tick_quantums:
            bid = market.book.get(OrderId(bid_id)) if bid_id else None
            assert bid is not None, market_id
            sizes.add(bid.remaining_base_quantums)
    assert max(sizes) < roomy.quote_size_base_quantums  # smaller than full: the margin binds
    risk = venue.engine.risk_of(venue.state.ledger.subaccounts[OPTIONS_VAULT])
    assert risk.initial <= risk.equity


def near_gamma_cap(**fields: int) -> tuple[Venue, MarketId, MarketId]:
    """A vault whose gamma cap holds one sold at-the-money quote and a half: after one of
    its asks (the call or the put at the money, 1 BTC each, both short gamma) is lifted,
    the other one's would pass the cap. ``fields``: more OptionsVaultParams."""
    venue = Venue()
    listed = with_series(venue)
    quote(venue, "alice", PRICE, size=20 * ONE_BTC)
    call_id = atm_call(listed)
    put_id = MarketId(call_id.removesuffix("-C") + "-P")
    gamma = max(abs(venue.engine.options_vault_unit_exposure(m).gamma_quantums)
                for m in (call_id, put_id))  # fmt: skip
    params = dataclasses.replace(
        PARAMS, gamma_cap_nav_ppm=3 * gamma * PPM_ONE // 2 // NAV + 1, **fields
    )  # fmt: skip
    accepted(venue, setup(venue, params))
    accepted(venue, deposit(venue, "dave", NAV))
    venue.block()
    return venue, call_id, put_id


def lift_ask(venue: Venue, trader: str, market_id: MarketId) -> PlaceOrder:
    ask = venue.state.markets[market_id].book.get(OrderId(quotes(venue)[market_id][1]))
    assert ask is not None
    return venue.order(trader, market_id, Side.BUY, ask.remaining_base_quantums,
                       ask.price_quantums, time_in_force=TimeInForce.IOC)  # fmt: skip


def vault_gamma(venue: Venue) -> tuple[int, int]:
    """(|gamma value| of its book, its gamma cap), now."""
    subaccount = venue.state.ledger.subaccounts[OPTIONS_VAULT]
    caps = Caps.of(venue.state.options_vault.params or PARAMS,
                   venue.engine.risk_of(subaccount).equity)  # fmt: skip
    return abs(book_exposure(venue.engine.ctx, subaccount).gamma_quantums), caps.gamma_quantums


def test_two_fills_in_one_block_cannot_take_it_past_a_cap() -> None:
    """Its quotes are sized against its caps when made, each alone: bob and carol lifting
    the call's and the put's asks in one block would have left it short 2 BTC of gamma
    against a cap of 1.5 (found by the stress lab, under heavy put buying in a crash). Each
    fill is now checked against its book as it is: carol's is refused, that ask cancelled."""
    venue, call_id, put_id = near_gamma_cap()
    bob, carol = accepted(venue, lift_ask(venue, "bob", call_id), lift_ask(venue, "carol", put_id))
    assert of_type(bob, OrderFilled) and not of_type(carol, OrderFilled)
    causes = [e.cause for e in of_type(carol, OrderCancelled)]
    assert causes == [CancelCause.OPTIONS_VAULT_CAP, CancelCause.IOC_REMAINDER]
    used, cap = vault_gamma(venue)
    assert 0 < used <= cap


def test_a_quote_the_caps_now_forbid_is_withdrawn_at_the_next_block() -> None:
    """After bob's fill its book is near its gamma cap, but its pressure moved less than its
    requote threshold: the put's ask, quoted when the book was flat, stayed on the book
    though its fill would pass the cap. Each block now withdraws such a side."""
    venue, call_id, put_id = near_gamma_cap(
        requote_move_ppm=400_000, requote_interval_ns=NS_PER_HOUR
    )  # fmt: skip
    accepted(venue, lift_ask(venue, "bob", call_id))
    venue.block()
    record = venue.state.options_vault.quotes[put_id]
    ask = record.ask_order_id and venue.state.markets[put_id].book.get(OrderId(record.ask_order_id))
    assert not ask  # withdrawn: selling the put would take its short gamma past the cap
    assert record.bid_order_id  # buying it back reduces the exposure: still quoted


# ── Hedging, accounting, replay ─────────────────────────────────────────────────────────────


def atm_call(listed: list[MarketId]) -> MarketId:
    calls = [m for m in listed if m.endswith("-C") and int(m.split("-")[2]) * USDC == PRICE]
    return sorted(calls)[0]


def test_after_it_sells_calls_its_delta_is_hedged_back_inside_the_band() -> None:
    venue, listed = funded_vault()
    option = atm_call(listed)
    market = venue.state.markets[option]
    ask = market.book.get(quotes(venue)[option][1])
    assert ask is not None
    accepted(venue, venue.order("bob", option, Side.BUY, ask.remaining_base_quantums,
                                ask.price_quantums))  # fmt: skip
    assert venue.position("bob", option)[0] > 0
    hedges = of_type(venue.block().prologue, OptionsVaultHedged)
    assert hedges and hedges[0].side is Side.BUY and hedges[0].filled_base_quantums > 0
    subaccount = venue.state.ledger.subaccounts[OPTIONS_VAULT]
    nav = venue.engine.risk_of(subaccount).equity
    delta = book_exposure(venue.engine.ctx, subaccount).delta_quantums
    step_value = PRICE * venue.state.markets[BTC_PERP].params.step_base_quantums // ONE_BTC
    assert abs(delta) <= nav * PARAMS.delta_band_nav_ppm // PPM_ONE + step_value
    venue.block()
    assert not of_type(venue.block().prologue, OptionsVaultHedged)  # inside the band: quiet


def test_in_a_volatile_market_it_hedges_through_a_book_wider_than_its_base_slippage() -> None:
    """In a crash the perpetual's makers quote wider than the hedge's 1% through the mark:
    its IOC order found nothing within its limit and the vault stayed unhedged through the
    fall (the stress lab: 21 of 23 hedges of Black Thursday's BTC unfilled). The limit grows
    with the perpetual's volatility multiplier, to 5% at five times."""
    venue, listed = funded_vault()
    accepted(venue, venue.cancel_all("alice", BTC_PERP))
    ask = PRICE + PRICE * 15 // 1000  # the only offer: 1.5% over the mark
    accepted(venue, venue.order("alice", BTC_PERP, Side.SELL, 20 * ONE_BTC, ask))
    perp = venue.state.markets[BTC_PERP]
    perp.vol_multiplier_ppm = 2 * PPM_ONE  # as the EWMA volatility of a crash leaves it
    perp.vol_multiplier_updated_ns = venue.now
    option = atm_call(listed)
    accepted(venue, lift_ask(venue, "bob", option))
    (hedge,) = of_type(venue.block().prologue, OptionsVaultHedged)
    band = hedge.nav_quote_quantums * PARAMS.delta_band_nav_ppm // PPM_ONE
    assert hedge.side is Side.BUY and abs(hedge.delta_value_quantums) > band
    assert hedge.filled_base_quantums == hedge.size_base_quantums  # filled at +1.5%
    subaccount = venue.state.ledger.subaccounts[OPTIONS_VAULT]
    assert abs(book_exposure(venue.engine.ctx, subaccount).delta_quantums) <= band


def test_a_taker_that_pushes_its_delta_far_past_the_band_is_not_paid_a_wide_hedge() -> None:
    """The hedge is the first trade of the block after the fills that moved the delta, so a
    taker knows it is coming and what it will pay: bob buys three calls (about 2.3 BTC of
    delta, fourteen times the band), buys the perpetual's asks and rests his own at the
    hedge's limit. When the limit grew with how far past its band the delta was, the hedge
    bought from him 5% over the mark: bob +6,488 USDC and the vault's LPs -6,829 for 144 of
    option spread. The limit now follows the market's volatility, which was calm: 1%."""
    venue = Venue()
    listed = with_series(venue)
    quote(venue, "alice", PRICE)  # a thin perpetual book: 5 BTC of asks within 50 USDC
    accepted(venue, setup(venue, PARAMS))
    accepted(venue, deposit(venue, "dave", NAV))
    venue.block()
    venue.block()
    nav_before = venue.engine.risk_of(venue.state.ledger.subaccounts[OPTIONS_VAULT]).equity
    bob_before = venue.risk("bob").equity
    calls = sorted(m for m in listed if m.endswith("-C") and int(m.split("-")[2]) >= 56_000)
    accepted(venue, *(lift_ask(venue, "bob", m) for m in calls[:3]), venue.order(
        "bob", BTC_PERP, Side.BUY, 100 * ONE_BTC, PRICE + 60 * USDC,
        time_in_force=TimeInForce.IOC,
    ))  # fmt: skip
    mark = venue.mark()
    wide = mark + mark * 5 * PARAMS.hedge_slippage_ppm // PPM_ONE
    accepted(venue, venue.order("bob", BTC_PERP, Side.SELL, 10 * ONE_BTC, wide - wide % USDC))
    (hedge,) = of_type(venue.block().prologue, OptionsVaultHedged)
    band = hedge.nav_quote_quantums * PARAMS.delta_band_nav_ppm // PPM_ONE
    assert abs(hedge.delta_value_quantums) > 10 * band
    assert hedge.filled_base_quantums == 0  # nothing within 1% of the mark
    nav_after = venue.engine.risk_of(venue.state.ledger.subaccounts[OPTIONS_VAULT]).equity
    assert nav_after > nav_before  # it sold three calls at its ask and paid no one 5%
    assert venue.risk("bob").equity < bob_before


def test_replay_gives_the_same_roots_and_events() -> None:
    venue, listed = funded_vault()
    option = atm_call(listed)
    ask = venue.state.markets[option].book.get(quotes(venue)[option][1])
    assert ask is not None
    accepted(venue, venue.order("bob", option, Side.BUY, ask.remaining_base_quantums,
                                ask.price_quantums))  # fmt: skip
    venue.advance(2 * NS_PER_MINUTE)
    assert venue.replay() == venue.recorded_stream()


def test_in_a_crash_it_stays_within_its_caps_and_solvent() -> None:
    """The index falls 25% over ten minutes after the vault sold calls and puts: it keeps
    hedging and every hedge fills (a hedge the quotes' margin would refuse pulls the quotes
    first), its vega stays within its cap (over by at most the quotes resting when the cap was
    measured), its NAV stays positive and it loses under 10% of it."""
    venue, listed = funded_vault()
    for option in (atm_call(listed), next(m for m in sorted(listed) if m.endswith("-P"))):
        ask = venue.state.markets[option].book.get(quotes(venue)[option][1])
        assert ask is not None
        accepted(venue, venue.order("bob", option, Side.BUY, ask.remaining_base_quantums,
                                    ask.price_quantums))  # fmt: skip
    nav_start = venue.engine.risk_of(venue.state.ledger.subaccounts[OPTIONS_VAULT]).equity
    hedged = 0
    for step in range(1, 121):
        price = PRICE - PRICE * step // 480  # down 25% in 120 blocks of 5 s
        venue.prices[BTC_USD] = price
        if step % 6 == 0:
            accepted(venue, venue.cancel_all("alice", BTC_PERP), *_requote_perp(venue, price))
        result = venue.block(dt_ns=5 * NS_PER_SECOND)
        for hedge in of_type(result.prologue, OptionsVaultHedged):
            hedged += 1
            assert hedge.filled_base_quantums == hedge.size_base_quantums
        subaccount = venue.state.ledger.subaccounts[OPTIONS_VAULT]
        risk = venue.engine.risk_of(subaccount)
        exposure = book_exposure(venue.engine.ctx, subaccount)
        caps = Caps.of(PARAMS, risk.equity)
        slack = len(listed) * UNIT.vega_quantums  # every resting quote filled at once
        assert abs(exposure.vega_quantums) <= caps.vega_quantums + slack
        assert risk.equity > 0
    assert hedged > 0
    nav_end = venue.engine.risk_of(venue.state.ledger.subaccounts[OPTIONS_VAULT]).equity
    assert nav_end > nav_start * 9 // 10  # a hedged book loses little of its NAV


def _requote_perp(venue: Venue, price: int) -> list[PlaceOrder]:
    """alice keeps a perpetual book around the falling index, for the vault to hedge on."""
    center = price - price % USDC
    orders = []
    for level in range(1, 4):
        for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
            orders.append(venue.order("alice", BTC_PERP, side, 5 * ONE_BTC,
                                      center + sign * level * 10 * USDC))  # fmt: skip
    return orders


def test_its_option_markets_are_every_option_on_its_underlying() -> None:
    venue, listed = funded_vault()
    options = [
        m for m, market in venue.state.markets.items()
        if market.params.kind is MarketKind.OPTION and market.params.oracle_id == BTC_USD
    ]  # fmt: skip
    assert sorted(options) == sorted(listed)


def test_the_node_serves_its_nav_exposure_and_quotes() -> None:
    """``GET /v1/options-vault``'s view: set up, funded, quoting every listed option, its
    exposure as the engine measures it; a venue without one says so."""
    from clearhouse.node.models import OptionsVault
    from clearhouse.node.views import options_vault

    venue, listed = funded_vault()
    view = options_vault(venue.engine)
    assert view["set_up"] and view["total_shares"] > 0 and view["nav_quote_quantums"] > 0
    assert view["quoted_markets"] == len(listed) == len(view["quotes"])
    exposure = venue.engine.options_vault_exposure()
    assert exposure is not None and view["exposure"] == {
        "vega_quantums": exposure.vega_quantums, "gamma_quantums": exposure.gamma_quantums,
        "delta_quantums": exposure.delta_quantums,
    }  # fmt: skip
    OptionsVault.model_validate({**view, "nav_quote": "0"})
    bare = options_vault(Venue().engine)
    assert not bare["set_up"] and bare["exposure"] is None and bare["quoted_markets"] == 0


# ── The settlement window: no quotes once the TWAP fixes what an option pays ───────────────


def test_the_amm_is_not_picked_off_in_the_settlement_window() -> None:
    """Options settle on the TWAP of the last 30 minutes; the AMM marks on the index now. It
    quoted until expiry: after a 2% rise 24 minutes into the window, its bid on a call near
    the money stood far above what the call would pay (4/5 of the TWAP fixed), and selling
    into every bid until expiry took 3,208.65 USDC from its LPs at no risk. It withdraws its
    quotes when the window opens (Lyra's trading cutoff)."""
    venue = Venue(check=False)
    publish_surface(venue)
    option = list_option(venue, "BTC-60000-C", call(60_000 * USDC), 40 * NS_PER_MINUTE)
    quote(venue, "alice", PRICE, size=20 * ONE_BTC)  # a perpetual book for the AMM's hedge
    accepted(venue, setup(venue, options_vault()))  # the default venue's AMM
    accepted(venue, deposit(venue, "dave", 1_000_000 * USDC))
    venue.block()
    market = venue.state.markets[option]
    assert option in venue.state.options_vault.quotes  # quoted before the window
    expiry = market.params.expiry_ns
    step = 5 * NS_PER_SECOND
    published = venue.now
    while venue.now < expiry - 6 * NS_PER_MINUTE:  # the index at 60,000 for 24 minutes of it
        if venue.now - published > 10 * NS_PER_MINUTE:
            publish_surface(venue)
            published = venue.now
        venue.block(dt_ns=step)
        if market.params.settling(venue.now):
            assert option not in venue.state.options_vault.quotes
            assert not [o for o in market.book.orders() if o.owner == OPTIONS_VAULT]
    venue.prices[BTC_USD] = PRICE * 102 // 100  # then 2% up, and it stays there
    venue.block()
    venue.block()
    accepted(venue, venue.cancel_all("alice"))
    quote(venue, "alice", venue.prices[BTC_USD], size=20 * ONE_BTC)
    publish_surface(venue)
    before = venue.risk("bob").equity
    while venue.now < expiry - 10 * NS_PER_SECOND:  # bob sells into any bid the AMM shows
        record = venue.state.options_vault.quotes.get(option)
        bid = None if record is None or not record.bid_order_id else market.book.get(
            OrderId(record.bid_order_id)
        )  # fmt: skip
        orders = [] if bid is None else [venue.order(
            "bob", option, Side.SELL, bid.remaining_base_quantums, bid.price_quantums,
            time_in_force=TimeInForce.IOC,
        )]  # fmt: skip
        venue.block(orders, dt_ns=step)
    while market.status is MarketStatus.ACTIVE:
        venue.block(dt_ns=step)
    assert venue.risk("bob").equity <= before
