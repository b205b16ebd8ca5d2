"""Liquidation receipts: every step (book close, auction fill, fund takeover, ADL fill) emits
its inputs and outcome, each checkable from its own numbers against the journal."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from clearhouse.core.ids import Side
from clearhouse.core.messages import (
    Event,
    Liquidated,
    LiquidationReceipt,
    LiquidationStage,
)
from clearhouse.sim.auditor import AuditFailure, Auditor, receipt_problem
from clearhouse.sim.venue import USDC
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted, of_type
from ladder import bid, fund_insurance, leveraged_long, liquidate, quote

PER_UNIT = ONE_BTC


def receipts_of(events: list[Event]) -> dict[LiquidationStage, LiquidationReceipt]:
    """The receipts, each right after the ``Liquidated`` event it describes."""
    found = {}
    for before, event in itertools.pairwise(events):
        if isinstance(event, LiquidationReceipt):
            assert isinstance(before, Liquidated) and before.stage is event.stage
            assert before.size_base_quantums == event.size_base_quantums
            found[event.stage] = event
    return found


def test_a_book_close_and_an_auction_fill_carry_their_inputs() -> None:
    venue = Venue()
    leveraged_long(venue)
    accepted(venue, venue.cancel_all("alice"))
    low = PRICE - 2_300 * USDC
    venue.settle_prices(BTC_USD=low)
    quote(venue, "alice", low, levels=1, size=ONE_BTC // 10, gap=USDC)
    risk = venue.risk("bob", 1)
    [events] = accepted(venue, liquidate(venue, "carol", "bob", 1))
    book = receipts_of(events)[LiquidationStage.BOOK]
    assert book.position_base_quantums == 2 * ONE_BTC
    assert (book.equity_quote_quantums, book.maintenance_quote_quantums) == (
        risk.equity,
        risk.maintenance,
    )
    assert book.mark_price_quantums == venue.mark() and book.index_price_quantums == low
    assert 0 < book.size_base_quantums <= ONE_BTC // 10  # only the thin bid was there
    assert receipt_problem(book, PER_UNIT) == ""
    [events] = accepted(venue, bid(venue, "dave", "bob", ONE_BTC // 2))
    auction = receipts_of(events)[LiquidationStage.AUCTION]
    assert auction.size_base_quantums == ONE_BTC // 2
    assert receipt_problem(auction, PER_UNIT) == ""


def test_a_fund_takeover_and_an_adl_fill_carry_their_inputs() -> None:
    for fund, stage in ((50_000 * USDC, LiquidationStage.FUND), (0, LiquidationStage.DELEVERAGE)):
        venue = Venue()
        leveraged_long(venue)
        if fund:
            fund_insurance(venue, fund)
        accepted(venue, venue.cancel_all("alice"))
        events = list(venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue)
        receipt = receipts_of(events)[stage]
        assert receipt.equity_quote_quantums < 0  # bankrupt
        assert receipt.size_base_quantums == 2 * ONE_BTC
        # Long 2 BTC with equity E < 0: the bankruptcy price is mark − E per BTC, above the mark.
        expected = receipt.mark_price_quantums - receipt.equity_quote_quantums // 2
        assert abs(receipt.bankruptcy_price_quantums - expected) <= 1
        assert (receipt.fund_paid_quote_quantums > 0) == bool(fund)
        assert receipt_problem(receipt, PER_UNIT) == ""


def test_a_tampered_receipt_is_caught() -> None:
    venue = Venue()
    leveraged_long(venue)
    fund_insurance(venue, 50_000 * USDC)
    accepted(venue, venue.cancel_all("alice"))
    events = list(venue.settle_prices(BTC_USD=PRICE - 3_500 * USDC).prologue)
    receipt = receipts_of(events)[LiquidationStage.FUND]
    for change in (
        {"notional_quote_quantums": receipt.notional_quote_quantums // 2},  # sold far too cheap
        {"bankruptcy_price_quantums": receipt.bankruptcy_price_quantums + 50 * USDC},
        {"size_base_quantums": 3 * ONE_BTC},  # more than was held
        {"equity_quote_quantums": receipt.initial_quote_quantums},  # a healthy account
    ):
        assert receipt_problem(dataclasses.replace(receipt, **change), PER_UNIT) != ""
    auditor = Auditor()
    orphan = [e for e in events if not isinstance(e, Liquidated)]  # the receipt alone
    with pytest.raises(AuditFailure, match="without its step"):
        auditor.observe(orphan)
    assert of_type(events, LiquidationReceipt)


def test_a_buy_backs_bankruptcy_price_may_be_below_zero() -> None:
    """A short under water by more than its notional: no positive price closes it without
    loss beyond equity, and the receipt says so with a negative bound (a sell's stays at 1)."""
    receipt = LiquidationReceipt(
        subaccount="0x" + "11" * 20 + "/0", market_id=BTC_PERP, stage=LiquidationStage.AUCTION,
        side=Side.BUY, mark_price_quantums=100, index_price_quantums=100,
        position_base_quantums=-2, equity_quote_quantums=-1_000, maintenance_quote_quantums=40,
        initial_quote_quantums=50, bound_price_quantums=120, bankruptcy_price_quantums=-400,
        size_base_quantums=2, notional_quote_quantums=220, fund_paid_quote_quantums=0,
    )  # fmt: skip
    assert receipt_problem(receipt, 1) == ""
    assert receipt_problem(dataclasses.replace(receipt, bankruptcy_price_quantums=1), 1) != ""
