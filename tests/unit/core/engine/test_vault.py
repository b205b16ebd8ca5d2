"""The market-making vault (SPEC §11): shares at NAV (rounding against whoever moves quote, the
donation attack), the lock-up, the quotes it keeps on the book, and its place in the backstop:
before the insurance fund's book, within its caps."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.engine.context import transfer
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, MarketId, Side
from clearhouse.core.ledger import CUSTODY, DEFICIT, FUND_BOOK, VAULT
from clearhouse.core.messages import (
    Deleveraged,
    Event,
    FundingPaid,
    Liquidated,
    LiquidationReceipt,
    LiquidationStage,
    OrderCancelled,
    OrderRested,
    VaultDeposited,
    VaultWithdrawn,
)
from clearhouse.core.params import LiquidationParams, VaultParams
from clearhouse.core.state import MarketState
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND, PPM_ONE
from clearhouse.core.vault import (
    VIRTUAL_QUOTE_QUANTUMS,
    VIRTUAL_SHARES,
    Quote,
    QuoteInputs,
    make_quote,
    quote_for_shares,
    shares_for_deposit,
)
from clearhouse.sim.auditor import receipt_problem
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ETH_PERP, ONE_BTC, PRICE, Venue, accepted, of_type, rejected
from ladder import fund_insurance, leveraged_long, liquidate, quote

STEP = 5 * NS_PER_SECOND

# ── Share arithmetic (pure) ─────────────────────────────────────────────────────────────────

AMOUNTS = st.integers(1, 10**15)
NAVS = st.integers(0, 10**15)
TOTALS = st.integers(0, 10**21)


def price(nav: int, total: int) -> tuple[int, int]:
    """A share's price as a fraction (numerator, denominator), virtual offsets included."""
    return nav + VIRTUAL_QUOTE_QUANTUMS, total + VIRTUAL_SHARES


def not_cheaper(after: tuple[int, int], before: tuple[int, int]) -> bool:
    return after[0] * before[1] >= before[0] * after[1]


@given(AMOUNTS, NAVS, TOTALS)
def test_a_deposit_never_lowers_the_share_price_and_rounds_against_the_depositor(
    amount: int, nav: int, total: int
) -> None:
    shares = shares_for_deposit(amount, nav_quantums=nav, total_shares=total)
    assert shares >= 0
    assert not_cheaper(price(nav + amount, total + shares), price(nav, total))
    # The depositor pays at least what its shares are worth at the price it bought at ...
    numerator, denominator = price(nav, total)
    assert shares * numerator <= amount * denominator
    # ... and one more share would have cost more than it paid: the rounding is one share.
    assert (shares + 1) * numerator > amount * denominator


@given(NAVS, TOTALS, st.data())
def test_a_redemption_never_lowers_the_share_price_and_rounds_against_the_withdrawer(
    nav: int, total: int, data: st.DataObject
) -> None:
    if total == 0:
        return
    shares = data.draw(st.integers(1, total))
    paid = quote_for_shares(shares, nav_quantums=nav, total_shares=total)
    assert 0 <= paid <= max(nav, 0)
    assert not_cheaper(price(nav - paid, total - shares), price(nav, total))
    numerator, denominator = price(nav, total)
    assert paid * denominator <= shares * numerator < (paid + 1) * denominator


@given(AMOUNTS, NAVS, TOTALS)
def test_a_deposit_redeemed_at_once_returns_at_most_what_was_paid(
    amount: int, nav: int, total: int
) -> None:
    shares = shares_for_deposit(amount, nav_quantums=nav, total_shares=total)
    if shares == 0:
        return
    back = quote_for_shares(shares, nav_quantums=nav + amount, total_shares=total + shares)
    assert back <= amount
    numerator, denominator = price(nav, total)
    # ... and loses no more than one share's worth and one quantum to rounding.
    assert (amount - back - 1) * denominator <= numerator


def test_the_first_depositor_cannot_inflate_the_share_price_to_rob_the_next() -> None:
    """The ERC-4626 donation attack, in arithmetic: one quantum, a million-USDC donation, and a
    victim's 1,000 USDC still buys shares worth 1,000 USDC within one share's worth."""
    attacker = shares_for_deposit(1, nav_quantums=0, total_shares=0)
    nav, total = 1 + 1_000_000 * USDC, attacker  # the donation lands in the vault
    victim_amount = 1_000 * USDC
    victim = shares_for_deposit(victim_amount, nav_quantums=nav, total_shares=total)
    assert victim > 0
    nav, total = nav + victim_amount, total + victim
    worth = quote_for_shares(victim, nav_quantums=nav, total_shares=total)
    one_share = (nav + VIRTUAL_QUOTE_QUANTUMS) // (total + VIRTUAL_SHARES) + 1
    assert victim_amount - one_share <= worth <= victim_amount
    attacker_worth = quote_for_shares(attacker, nav_quantums=nav, total_shares=total)
    # The attacker's million-share stake equals the virtual one: half the donation is gone,
    # for a victim's loss under one share (about half a USDC).
    attacker_loss = 1 + 1_000_000 * USDC - attacker_worth
    assert attacker_loss >= 1_000_000 * USDC * 49 // 100
    assert attacker_loss > 10**5 * (victim_amount - worth)


# ── Deposits and redemptions through the engine ────────────────────────────────────────────


def vault_nav(venue: Venue) -> int:
    sub = venue.state.ledger.subaccounts.get(VAULT)
    return 0 if sub is None else venue.engine.risk_of(sub).equity


def quiet(venue: Venue) -> None:
    """The vault quotes nothing (a level rounds to no size): only the backstop and shares."""
    markets = tuple(
        dataclasses.replace(m, size_per_level_quote_quantums=1)
        for m in venue.state.venue.vault.markets
    )
    with_vault(venue, markets=markets)


def with_vault(venue: Venue, **changes: object) -> None:
    """Change the vault's parameters in place (tests only: governance comes later)."""
    vault = dataclasses.replace(venue.state.venue.vault, **changes)  # type: ignore[arg-type]
    assert not vault.problems(), vault.problems()
    venue.state.venue = dataclasses.replace(venue.state.venue, vault=vault)


def bankrupt_long(venue: Venue) -> list[Event]:
    """bob/1's 2 BTC long on an empty book, the fund holding 50k: a 3,500 USDC fall leaves it
    bankrupt, and the backstop acts in the block's prologue; its events."""
    leveraged_long(venue)
    fund_insurance(venue, 50_000 * USDC)
    accepted(venue, venue.cancel_all("alice"))
    return list(venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue)


def cap_market(venue: Venue, market: str, cap: int) -> None:
    markets = tuple(
        dataclasses.replace(m, cap_quote_quantums=cap) if m.market_id == market else m
        for m in venue.state.venue.vault.markets
    )
    with_vault(venue, markets=markets)


def test_deposits_and_redemptions_move_nav_by_exactly_the_quote_moved() -> None:
    venue = Venue()
    quiet(venue)
    [[*_, first]] = accepted(venue, venue.deposit_vault("carol", 100_000 * USDC))
    assert isinstance(first, VaultDeposited)
    assert first.shares == 100_000 * USDC * VIRTUAL_SHARES  # empty vault: 1 quantum, 10⁶ shares
    assert vault_nav(venue) == 100_000 * USDC
    carol_before = venue.balance("carol")
    nav_before = vault_nav(venue)
    [[*_, second]] = accepted(venue, venue.deposit_vault("alice", 12_345_678))
    assert isinstance(second, VaultDeposited)
    assert vault_nav(venue) - nav_before == 12_345_678
    venue.advance(NS_PER_HOUR + NS_PER_SECOND)
    nav_before = vault_nav(venue)
    [[*_, redeemed]] = accepted(venue, venue.withdraw_vault("carol", first.shares // 3))
    assert isinstance(redeemed, VaultWithdrawn)
    assert nav_before - vault_nav(venue) == redeemed.amount_quote_quantums
    assert venue.balance("carol") - carol_before == redeemed.amount_quote_quantums
    assert redeemed.amount_quote_quantums <= 100_000 * USDC // 3
    owners = venue.state.vault.owners
    assert venue.state.vault.total_shares == sum(o.shares for o in owners.values())


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 10**12)), min_size=1, max_size=6))
def test_no_sequence_of_deposits_and_redemptions_lowers_the_share_price(
    steps: list[tuple[bool, int]],
) -> None:
    venue = Venue(traders=("alice", "carol"), check=False)
    quiet(venue)
    with_vault(venue, lockup_ns=0)
    accepted(venue, venue.deposit_vault("alice", 1_000 * USDC))
    for deposit, amount in steps:
        nav, total = vault_nav(venue), venue.state.vault.total_shares
        owner = venue.state.vault.owners.get(venue.address("carol"))
        if deposit or owner is None:
            command = venue.deposit_vault("carol", min(amount, 500_000 * USDC))
        else:
            command = venue.withdraw_vault("carol", 1 + amount * owner.shares // 10**12 // 2)
        result = venue.block([command])
        moved = of_type(result.of(0), VaultDeposited) + of_type(result.of(0), VaultWithdrawn)
        if not moved:
            continue
        [event] = moved
        sign = 1 if isinstance(event, VaultDeposited) else -1
        assert vault_nav(venue) - nav == sign * event.amount_quote_quantums
        assert not_cheaper(
            price(vault_nav(venue), venue.state.vault.total_shares), price(nav, total)
        )


def test_the_donation_attack_fails_through_the_engine() -> None:
    """alice (the attacker) deposits one quantum and donates 1M USDC straight into the vault
    subaccount (no command can do it; written into the ledger here); carol's deposit still
    buys shares worth her deposit within one share's worth, and alice loses."""
    venue = Venue()
    quiet(venue)
    with_vault(venue, lockup_ns=0)
    accepted(venue, venue.deposit_vault("alice", 1))
    ctx = venue.engine.ctx
    venue.engine.begin_block(venue.state.height + 1, venue.now + NS_PER_SECOND)
    venue.now += NS_PER_SECOND
    transfer(ctx, CUSTODY, VAULT, QUOTE_ASSET, 1_000_000 * USDC, "donation")
    venue.engine.end_block()
    [[*_, deposited]] = accepted(venue, venue.deposit_vault("carol", 1_000 * USDC))
    assert isinstance(deposited, VaultDeposited) and deposited.shares > 0
    vault = venue.state.vault
    worth = quote_for_shares(
        deposited.shares, nav_quantums=vault_nav(venue), total_shares=vault.total_shares
    )
    one_share = vault_nav(venue) // vault.total_shares + 1
    assert 1_000 * USDC - one_share <= worth <= 1_000 * USDC
    alice_shares = vault.owners[venue.address("alice")].shares
    alice_worth = quote_for_shares(
        alice_shares, nav_quantums=vault_nav(venue), total_shares=vault.total_shares
    )
    assert 1_000_000 * USDC - alice_worth >= 1_000_000 * USDC * 49 // 100  # alice lost half


def test_a_redemption_inside_the_lockup_is_refused_and_changes_nothing() -> None:
    venue = Venue()
    quiet(venue)
    [[*_, deposited]] = accepted(venue, venue.deposit_vault("carol", 10_000 * USDC))
    assert isinstance(deposited, VaultDeposited)
    rejected(venue, venue.withdraw_vault("carol", deposited.shares), RejectReason.VAULT_LOCKED)
    venue.advance(NS_PER_HOUR - 10 * NS_PER_SECOND)
    rejected(venue, venue.withdraw_vault("carol", deposited.shares), RejectReason.VAULT_LOCKED)
    # A new deposit starts the lock-up again: block time, not blocks.
    venue.advance(20 * NS_PER_SECOND)
    accepted(venue, venue.deposit_vault("carol", USDC))
    rejected(venue, venue.withdraw_vault("carol", 1), RejectReason.VAULT_LOCKED)
    venue.advance(NS_PER_HOUR)
    shares = venue.state.vault.owners[venue.address("carol")].shares
    accepted(venue, venue.withdraw_vault("carol", shares))
    assert venue.address("carol") not in venue.state.vault.owners
    assert venue.state.vault.total_shares == 0


def test_redemptions_are_refused_beyond_the_owners_shares_and_the_vaults_free_collateral() -> None:
    venue = Venue()
    with_vault(venue, lockup_ns=0)
    [[*_, deposited]] = accepted(venue, venue.deposit_vault("carol", 100_000 * USDC))
    assert isinstance(deposited, VaultDeposited)
    rejected(venue, venue.withdraw_vault("alice", 1), RejectReason.VAULT_INSUFFICIENT_SHARES)
    rejected(
        venue, venue.withdraw_vault("carol", deposited.shares + 1),
        RejectReason.VAULT_INSUFFICIENT_SHARES,
    )  # fmt: skip
    venue.block()  # the vault quotes: its resting orders hold initial margin
    assert venue.engine.risk_of(venue.state.ledger.subaccounts[VAULT]).initial > 0
    rejected(
        venue, venue.withdraw_vault("carol", deposited.shares),
        RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL,
    )  # fmt: skip
    accepted(venue, venue.withdraw_vault("carol", deposited.shares // 2))


# ── Quotes ──────────────────────────────────────────────────────────────────────────────────


def vault_orders(venue: Venue, market: str = BTC_PERP) -> list[tuple[Side, int, int]]:
    book = venue.state.markets[MarketId(market)].book
    return sorted(
        (o.side, o.price_quantums, o.remaining_base_quantums)
        for o in book.orders()
        if o.owner == VAULT
    )


def test_the_vault_quotes_around_the_mark_and_requotes_only_when_needed() -> None:
    venue = Venue()
    accepted(venue, venue.deposit_vault("carol", 1_000_000 * USDC))
    venue.block()
    quotes = vault_orders(venue)
    [(ask_side, ask, ask_size), (bid_side, bid, bid_size)] = quotes
    assert (ask_side, bid_side) == (Side.SELL, Side.BUY)
    mark = venue.mark()
    assert bid < mark < ask
    assert bid_size == ask_size > 0
    assert vault_orders(venue, ETH_PERP)
    # Nothing moves: no cancel, no new order, block after block.
    for _ in range(5):
        events = venue.block().prologue
        assert not of_type(events, OrderCancelled) and not of_type(events, OrderRested)
    assert vault_orders(venue) == quotes
    # The mark moves 1%: the quotes follow it.
    events = venue.settle_prices(BTC_USD=PRICE * 101 // 100).prologue
    events += venue.block().prologue
    assert of_type(events, OrderCancelled) and of_type(events, OrderRested)
    [(_, new_ask, _), (_, new_bid, _)] = vault_orders(venue)
    assert new_bid > bid and new_ask > ask


def btc_quote(position: int, vol_annual_ppm: int = 600_000) -> Quote:
    return make_quote(VaultParams(), QuoteInputs(
        mark_price_quantums=PRICE, vol_annual_ppm=vol_annual_ppm, position_base_quantums=position,
        cap_base_quantums=10 * ONE_BTC, level_quote_quantums=60_000 * USDC,
        tick_quantums=USDC // 10, step_base_quantums=10_000, min_order_base_quantums=100_000,
        base_quantums_per_unit=ONE_BTC,
    ))  # fmt: skip


def spread(quote: Quote) -> int:
    return quote.ask_price_quantums - quote.bid_price_quantums


def test_a_long_inventory_skews_both_quotes_down_and_widens_them() -> None:
    flat, long, full = btc_quote(0), btc_quote(5 * ONE_BTC), btc_quote(10 * ONE_BTC)
    assert long.bid_price_quantums < flat.bid_price_quantums
    assert long.ask_price_quantums < flat.ask_price_quantums
    assert spread(long) > spread(flat)
    assert full.bid_base_quantums == 0  # at the cap: it may only sell
    assert full.ask_base_quantums == ONE_BTC
    short = btc_quote(-5 * ONE_BTC)
    assert short.bid_price_quantums > flat.bid_price_quantums  # short: it buys more readily
    assert spread(btc_quote(0, vol_annual_ppm=0)) < spread(flat) < spread(btc_quote(0, 1_200_000))


def test_quotes_never_let_the_vault_pass_its_cap() -> None:
    """Every quote filled at once leaves the vault within its per-market cap."""
    venue = Venue()
    cap_market(venue, BTC_PERP, 100_000 * USDC)
    accepted(venue, venue.deposit_vault("carol", 1_000_000 * USDC))
    venue.block()
    bids_hit = 0
    for _ in range(8):  # alice keeps selling into the vault's bid
        for side, bid, size in vault_orders(venue):
            if side is Side.BUY:
                accepted(venue, venue.order("alice", BTC_PERP, Side.SELL, size, bid))
                bids_hit += 1
        venue.block()
        held = venue.state.ledger.subaccounts[VAULT].position_size(MarketId(BTC_PERP))
        assert held * venue.mark() <= 100_000 * USDC * ONE_BTC
    assert bids_hit >= 2
    assert [side for side, _, _ in vault_orders(venue)] == [Side.SELL]  # at the cap: asks only


# ── The backstop: vault, then the fund's book, then ADL ─────────────────────────────────────


def test_a_bankrupt_remainder_goes_to_the_vault_before_the_fund() -> None:
    venue = Venue()
    quiet(venue)
    accepted(venue, venue.deposit_vault("carol", 500_000 * USDC))
    events = bankrupt_long(venue)
    assert not of_type(events, Deleveraged)
    [takeover] = [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.VAULT]
    assert takeover.keeper == str(VAULT)
    assert takeover.size_base_quantums == 2 * ONE_BTC
    assert venue.state.ledger.subaccounts[VAULT].position_size(MarketId(BTC_PERP)) == 2 * ONE_BTC
    assert not [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.FUND]
    assert venue.position("bob", BTC_PERP, number=1) == (0, 0)
    assert venue.risk("bob", 1).equity == 0  # the fund paid the shortfall
    assert venue.engine.risk_of(venue.state.ledger.subaccounts[VAULT]).satisfies_initial
    assert venue.state.ledger.balance(DEFICIT, QUOTE_ASSET) == 0
    [receipt] = of_type(events, LiquidationReceipt)  # the step's receipt, rechecked
    assert receipt.stage is LiquidationStage.VAULT and receipt.fund_paid_quote_quantums > 0
    assert receipt_problem(receipt, ONE_BTC) == ""


def test_the_vault_bids_in_an_auction_once_the_discount_pays_for_the_risk() -> None:
    """The default bidder (SPEC §7): no bid while the discount is below the multiple of the
    position's MM fraction; then one within its caps, through BidAuction's checks. At 10× a
    ~1.5% MM fraction (15%), on a ramp from ~0.75% to 30% over 30 s: about 15 s in."""
    venue = Venue()
    quiet(venue)
    with_vault(venue, auction_bid_mm_multiple_ppm=10 * PPM_ONE)
    accepted(venue, venue.deposit_vault("carol", 500_000 * USDC))
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    assert venue.state.liquidations[venue.sub("bob", 1)].auction is not None
    bid_at, bids = 0, []
    while not bids and bid_at < 30:
        bid_at += 1
        bids = [e for e in of_type(venue.block().prologue, Liquidated) if e.keeper == str(VAULT)]
    assert 12 <= bid_at <= 18, bid_at
    [bid] = bids
    assert bid.stage is LiquidationStage.AUCTION and bid.size_base_quantums == 2 * ONE_BTC
    assert venue.state.ledger.subaccounts[VAULT].position_size(MarketId(BTC_PERP)) == 2 * ONE_BTC
    assert venue.position("bob", BTC_PERP, number=1) == (0, 0)
    assert venue.risk("bob", 1).equity >= 0  # the share bound: never past bankruptcy


def test_an_unbid_auction_goes_to_the_vault() -> None:
    venue = Venue()
    quiet(venue)
    with_vault(venue, auction_bid_mm_multiple_ppm=100 * PPM_ONE)  # it waits for the end
    accepted(venue, venue.deposit_vault("carol", 500_000 * USDC))
    leveraged_long(venue)
    fund_insurance(venue, 50_000 * USDC)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    accepted(venue, liquidate(venue, "carol", "bob", 1))
    assert venue.risk("bob", 1).equity > 0
    seen = []
    for _ in range(LiquidationParams().auction_duration_ns // NS_PER_SECOND + 2):
        seen += venue.block().prologue
    assert not of_type(seen, Deleveraged)
    stages = [e.stage for e in of_type(seen, Liquidated)]
    assert LiquidationStage.VAULT in stages and LiquidationStage.FUND not in stages
    assert venue.position("bob", BTC_PERP, number=1) == (0, 0)
    assert venue.state.ledger.subaccounts[VAULT].position_size(MarketId(BTC_PERP)) == 2 * ONE_BTC


def test_the_vault_takes_what_its_cap_allows_and_the_fund_the_rest() -> None:
    venue = Venue()
    quiet(venue)
    cap_market(venue, BTC_PERP, 60_000 * USDC)  # about one BTC at the mark
    accepted(venue, venue.deposit_vault("carol", 500_000 * USDC))
    events = bankrupt_long(venue)
    [vault_part] = [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.VAULT]
    [fund_part] = [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.FUND]
    held = venue.state.ledger.subaccounts[VAULT].position_size(MarketId(BTC_PERP))
    assert held == vault_part.size_base_quantums
    assert held * venue.mark() <= 60_000 * USDC * ONE_BTC
    assert ONE_BTC <= held < 2 * ONE_BTC
    assert vault_part.size_base_quantums + fund_part.size_base_quantums == 2 * ONE_BTC
    book = venue.state.ledger.subaccounts[FUND_BOOK]
    assert book.position_size(MarketId(BTC_PERP)) == 2 * ONE_BTC - held
    assert not of_type(events, Deleveraged)


def test_the_share_of_nav_caps_a_takeover_too() -> None:
    venue = Venue()
    quiet(venue)
    accepted(venue, venue.deposit_vault("carol", 1_000 * USDC))  # 50% of NAV: 500 USDC
    events = bankrupt_long(venue)
    [vault_part] = [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.VAULT]
    [fund_part] = [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.FUND]
    assert vault_part.notional_quote_quantums <= 500 * USDC
    assert vault_part.size_base_quantums + fund_part.size_base_quantums == 2 * ONE_BTC


def test_a_vault_at_its_cap_leaves_the_position_to_the_fund() -> None:
    venue = Venue()
    quiet(venue)
    cap_market(venue, BTC_PERP, 1 * USDC)  # rounds to no room at all
    accepted(venue, venue.deposit_vault("carol", 500_000 * USDC))
    events = bankrupt_long(venue)
    assert not [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.VAULT]
    [fund_part] = [e for e in of_type(events, Liquidated) if e.stage is LiquidationStage.FUND]
    assert fund_part.size_base_quantums == 2 * ONE_BTC
    assert not venue.state.ledger.subaccounts[VAULT].positions
    assert not of_type(events, Deleveraged)


def test_adl_only_when_neither_the_vault_nor_the_fund_can() -> None:
    venue = Venue()
    quiet(venue)
    cap_market(venue, BTC_PERP, 1 * USDC)
    accepted(venue, venue.deposit_vault("carol", 500_000 * USDC))
    leveraged_long(venue)
    fund_insurance(venue, 2_100 * USDC)  # pays the shortfall, not the book's margin
    accepted(venue, venue.cancel_all("alice"))
    events = venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue
    assert of_type(events, Deleveraged)
    stages = {e.stage for e in of_type(events, Liquidated)}
    assert LiquidationStage.VAULT not in stages and LiquidationStage.FUND not in stages


def test_the_vault_stops_quoting_a_dated_future_when_its_settlement_window_opens() -> None:
    """A dated future settles on the TWAP of its last 30 minutes: inside that window most of
    what it pays is fixed, and quotes around the mark would be picked off after a late move."""
    venue = Venue(future_expiry_hours=1)
    future = dataclasses.replace(
        venue.state.venue.vault.markets[0], market_id=venue.future,
        size_per_level_quote_quantums=10_000 * USDC,
    )  # fmt: skip
    with_vault(venue, markets=(*venue.state.venue.vault.markets, future))
    accepted(venue, venue.deposit_vault("carol", 1_000_000 * USDC))
    venue.block()
    assert vault_orders(venue, venue.future)
    params = venue.state.markets[venue.future].params
    venue.advance(params.expiry_ns - params.settlement_window_ns - venue.now)
    assert not params.settling(venue.now) and vault_orders(venue, venue.future)
    venue.block()
    assert params.settling(venue.now)
    assert not vault_orders(venue, venue.future)
    assert venue.future not in venue.state.vault.quotes
    assert vault_orders(venue)  # the perpetuals are quoted as ever


def short_the_vault(venue: Venue, market: MarketState) -> None:
    """A block for the vault to quote, then carol buys its asks, 0.3 BTC a block for 15 blocks:
    the vault goes short; then blocks to just after the next funding payment."""
    venue.block()
    for _ in range(15):
        buy = venue.market_order("carol", BTC_PERP, Side.BUY, 3 * ONE_BTC // 10,
                                 slippage_ppm=5_000)  # fmt: skip
        venue.block([buy])
    run_past_funding(venue, market)


def run_past_funding(venue: Venue, market: MarketState) -> None:
    """Blocks to just after the market's next funding payment (two blocks past it)."""
    run_until_funding(venue, market, NS_PER_SECOND)
    venue.block()
    venue.block()


def run_until_funding(venue: Venue, market: MarketState, before_ns: int) -> None:
    """Blocks of at most ``STEP`` until ``before_ns`` before the market's next payment."""
    while venue.now + before_ns < market.next_funding_ns:
        venue.block(dt_ns=min(STEP, market.next_funding_ns - venue.now - before_ns))


def funding_push(*, vault: bool) -> tuple[int, int, int]:
    """bob, short 10 BTC against carol, sweeps the book once and rests a 0.4 BTC bid and ask
    3.1% over the index until the next funding payment, on a venue whose vault is funded
    (or not): the hour's rate (ppb), what bob gained net of the push at the index, and the
    position his bid took."""
    venue = Venue(check=False)
    market = venue.state.markets[MarketId(BTC_PERP)]

    def at_index(trader: str) -> int:  # equity of its subaccounts, positions at the index
        total = 0
        for number in range(4):
            found = venue.state.ledger.subaccounts.get(venue.sub(trader, number))
            if found is not None:
                size = venue.position(trader, BTC_PERP, number)[0]
                total += venue.engine.risk_of(found).equity
                total -= size * (venue.mark() - venue.index()) // ONE_BTC
        return total

    transfers = [venue.transfer("bob", 100_000 * USDC, source=0, target=n) for n in (1, 2, 3)]
    accepted(venue, *transfers)
    accepted(venue, venue.order("bob", BTC_PERP, Side.SELL, 10 * ONE_BTC, PRICE))
    accepted(venue, venue.order("carol", BTC_PERP, Side.BUY, 10 * ONE_BTC, PRICE))
    if vault:
        accepted(venue, venue.deposit_vault("dave", 1_000_000 * USDC))
    else:
        quote(venue, "alice", PRICE, size=ONE_BTC)  # the tests' ladder, nobody else
    run_past_funding(venue, market)
    before = at_index("bob")
    accepted(venue, venue.market_order("bob", BTC_PERP, Side.BUY, 5 * ONE_BTC, number=3,
                                       slippage_ppm=2_000))  # fmt: skip
    accepted(venue, venue.market_order("bob", BTC_PERP, Side.SELL, 5 * ONE_BTC, number=3,
                                       slippage_ppm=2_000))  # fmt: skip
    push = PRICE * 1_031 // 1_000
    bid = venue.order("bob", BTC_PERP, Side.BUY, 2 * ONE_BTC // 5, push, number=1)
    accepted(venue, bid, venue.order("bob", BTC_PERP, Side.SELL, 2 * ONE_BTC // 5, push + USDC,
                                     number=2))  # fmt: skip
    paid: list[FundingPaid] = []
    while not paid:
        paid = [e for e in of_type(venue.block(dt_ns=STEP).prologue, FundingPaid)
                if e.market_id == BTC_PERP]  # fmt: skip
    assert venue.index() == PRICE  # the index never moved
    taken = venue.position("bob", BTC_PERP, 1)[0]
    accepted(venue, venue.cancel_all("bob", number=1), venue.cancel_all("bob", number=2))
    return paid[0].rate_ppb, at_index("bob") - before, taken


def test_a_pair_nobody_trades_sets_the_funding_premium_no_further_than_the_mark_band() -> None:
    """The premium was the raw impact mid's: the pair made the hour's rate the cap (0.375%/h,
    bob +1,650 USDC net of the sweep, carol −2,250). It is now within the mark's band (1%),
    as the mark is: at most 1% over 8 hours."""
    rate, _, _ = funding_push(vault=False)
    assert 0 < rate <= 10_000 * 1_000 // 8


def test_a_pair_through_the_vaults_quote_pays_the_vault_not_its_owner() -> None:
    """Where the vault quotes, it sells into a bid that stands through its own ask: the push
    costs more than the funding it earns."""
    _, gained, taken = funding_push(vault=True)
    assert taken > 0
    assert gained <= 0


def test_a_deposit_just_before_funding_is_not_paid_the_hour_it_missed() -> None:
    """NAV counted an hour's funding only once paid: alice, depositing as much as dave in the
    block before the payment, held 173.43 USDC of what the vault's short had earned over the
    hour (dave's) one block later. Shares are bought at NAV with the funding accrued so far
    where that is higher (and redeemed where it is lower)."""
    venue = Venue(check=False)
    market = venue.state.markets[MarketId(BTC_PERP)]
    accepted(venue, venue.deposit_vault("dave", 1_000_000 * USDC))
    short_the_vault(venue, market)
    bids = venue.order("bob", BTC_PERP, Side.BUY, 2 * ONE_BTC, PRICE * 1_003 // 1_000)
    accepted(venue, bids)  # demand over the hour: the premium is positive, shorts are paid
    run_until_funding(venue, market, 2 * NS_PER_SECOND)
    assert venue.state.ledger.subaccounts[VAULT].position_size(MarketId(BTC_PERP)) < 0
    accepted(venue, venue.deposit_vault("alice", 1_000_000 * USDC))  # the last block before
    paid = [e for e in of_type(venue.block().prologue, FundingPaid) if e.market_id == BTC_PERP]
    assert paid and paid[0].rate_ppb > 0
    shares = venue.state.vault.owners[venue.address("alice")].shares
    worth = quote_for_shares(shares, nav_quantums=vault_nav(venue),
                             total_shares=venue.state.vault.total_shares)  # fmt: skip
    assert worth - 1_000_000 * USDC <= USDC


def test_a_redemption_just_before_funding_still_pays_the_hour_it_was_in() -> None:
    """The other side of ``share_nav``: the vault short while shorts pay, an owner redeeming
    in the block before the payment is paid NAV with the hour's accrued funding taken off,
    not equity alone (which would leave the whole payment to the owners who stay)."""
    venue = Venue(check=False)
    market = venue.state.markets[MarketId(BTC_PERP)]
    # A short lock-up; and a vault that leaves bob's pair below the index to set the premium.
    with_vault(venue, lockup_ns=NS_PER_SECOND, takes_through_quotes=False)
    accepted(venue, venue.deposit_vault("dave", 1_000_000 * USDC))
    accepted(venue, venue.deposit_vault("alice", 1_000_000 * USDC))
    short_the_vault(venue, market)
    offer = venue.order("bob", BTC_PERP, Side.SELL, 2 * ONE_BTC, PRICE * 997 // 1_000, number=1)
    bid = venue.order("bob", BTC_PERP, Side.BUY, 2 * ONE_BTC, PRICE * 996 // 1_000, number=2)
    accepted(venue, *(venue.transfer("bob", 100_000 * USDC, source=0, target=n) for n in (1, 2)))
    accepted(venue, offer, bid)  # a book below the index all hour: shorts pay
    run_until_funding(venue, market, 2 * NS_PER_SECOND)
    assert venue.state.ledger.subaccounts[VAULT].position_size(MarketId(BTC_PERP)) < 0
    shares = venue.state.vault.owners[venue.address("alice")].shares
    before = venue.balance("alice")
    accepted(venue, venue.withdraw_vault("alice", shares))  # the last block before
    paid = [e for e in of_type(venue.block().prologue, FundingPaid) if e.market_id == BTC_PERP]
    assert paid and paid[0].rate_ppb < 0
    received = venue.balance("alice") - before
    stayed = quote_for_shares(shares, nav_quantums=vault_nav(venue),
                              total_shares=venue.state.vault.total_shares)  # fmt: skip
    assert received <= stayed + USDC  # what an equal owner who stayed holds now, paid
