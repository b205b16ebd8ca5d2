"""Economic attacks, round 10 (docs/RELIABILITY.md): what a trader reaches with signed commands.

The portfolio-margin memo (``risk.portfolio_risk``) remembers a portfolio account's risk within
a block by the subaccount's content and the identity of the market risks it read. A block of
one account's commands that changes everything margin reads (a fill that moves open interest,
resting orders, collateral in another asset, transfers, cancels) must never let it serve a
risk the state no longer has: after every command, the memo's answer is the one a fresh
context computes from the same state.

The market-making vault bids in an auction once its discount reaches the position's MM
fraction, and its NAV takes the discount at once. dave, seeing bob/1's 2 BTC long go to
auction, bought as many shares as carol held (500,000 USDC) in the auction's first block: the
vault's bid a block later raised its NAV by 319.99 USDC, half of it dave's (159.99), for
500,000 locked up 24 hours in the vault's risk. The discount is bounded by the slice's share
of the liquidated account's equity, and the lock-up holds.
"""

from __future__ import annotations

import dataclasses

from clearhouse.core.engine.context import Context
from clearhouse.core.engine.risk import risk_of
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, Side
from clearhouse.core.ledger import VAULT
from clearhouse.core.messages import CommandRejected, Liquidated
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.core.vault import quote_for_shares
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type, rejected
from ladder import leveraged_long, liquidate, quote
from options import margin_mode, with_series

BUY, SELL = Side.BUY, Side.SELL


def _fresh(venue: Venue, trader: str) -> object:
    """The account's risk from a context with no caches and no memo, on the same state."""
    return risk_of(Context(venue.state), venue.state.ledger.subaccounts[venue.sub(trader)])


def test_the_portfolio_memo_never_serves_a_risk_the_block_has_moved_past() -> None:
    venue = Venue(block_ns=5 * NS_PER_SECOND, btc_per_trader=10 * ONE_BTC)
    listed = with_series(venue)
    quote(venue, "alice", PRICE, size=5 * ONE_BTC)
    calls = sorted(m for m in listed if m.endswith("-C"))
    option = MarketId(calls[len(calls) // 2])
    accepted(venue, margin_mode(venue, "bob"))
    price = venue.mark(option) // USDC * USDC + USDC
    accepted(venue, venue.order("carol", option, BUY, 2 * ONE_BTC, price))
    accepted(venue, venue.order("bob", option, SELL, 2 * ONE_BTC, price))
    venue.block()
    # One block, one command at a time, each changing something the margin of bob reads.
    block = [
        venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE * 101 // 100 // USDC * USDC),  # fills
        venue.order("bob", BTC_PERP, BUY, ONE_BTC, PRICE * 98 // 100 // USDC * USDC),  # rests
        venue.deposit("bob", 2 * ONE_BTC, "BTC"),
        venue.transfer("bob", 50_000 * USDC, source=0, target=1),
        venue.transfer("bob", ONE_BTC, "BTC", source=0, target=1),
        venue.order("carol", option, BUY, ONE_BTC, price),
        venue.order("bob", option, SELL, ONE_BTC, price),  # carol's bid: bob writes more
        venue.cancel_all("bob", BTC_PERP),
        venue.order("dave", BTC_PERP, SELL, 3 * ONE_BTC, PRICE * 99 // 100 // USDC * USDC),
    ]
    venue.engine.begin_block(venue.state.height + 1, venue.now + venue.block_ns)
    venue.now += venue.block_ns
    seen = []
    for index, command in enumerate(block):
        before = venue.engine.risk_of(venue.state.ledger.subaccounts[venue.sub("bob")])
        events = venue.engine.apply(index, command)
        assert not any(isinstance(e, CommandRejected) for e in events), (index, events)
        memo = venue.engine.risk_of(venue.state.ledger.subaccounts[venue.sub("bob")])
        assert memo == _fresh(venue, "bob"), index
        seen.append(memo != before)
    venue.engine.end_block()
    assert all(seen[i] for i in (0, 1, 2, 3, 4, 6)), seen  # bob's fills, orders, collateral


def test_a_deposit_before_the_vaults_sure_auction_win_shares_little_and_stays_locked() -> None:
    venue = Venue()
    vault = venue.state.venue.vault
    quiet = tuple(dataclasses.replace(m, size_per_level_quote_quantums=1) for m in vault.markets)
    venue.state.venue = dataclasses.replace(
        venue.state.venue, vault=dataclasses.replace(vault, markets=quiet)
    )  # the vault quotes nothing: only its backstop moves its NAV
    accepted(venue, venue.deposit_vault("carol", 500_000 * USDC))
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    venue.settle_prices(BTC_USD=PRICE - 2_300 * USDC)
    deposit = 500_000 * USDC
    venue.block([liquidate(venue, "carol", "bob", 1), venue.deposit_vault("dave", deposit)])
    nav_before = venue.engine.risk_of(venue.state.ledger.subaccounts[VAULT]).equity
    events = venue.block().prologue
    assert [e for e in of_type(events, Liquidated) if e.keeper == str(VAULT)]
    nav = venue.engine.risk_of(venue.state.ledger.subaccounts[VAULT]).equity
    book = venue.state.vault
    shares = book.owners[venue.address("dave")].shares
    worth = quote_for_shares(shares, nav_quantums=nav, total_shares=book.total_shares)
    assert 0 < nav - nav_before < 400 * USDC  # measured: 319.99 USDC on a 115,080 USDC bid
    assert worth - deposit <= (nav - nav_before) // 2 + 1  # dave's half: 159.99
    rejected(venue, venue.withdraw_vault("dave", shares), RejectReason.VAULT_LOCKED)
