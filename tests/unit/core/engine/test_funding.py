"""Funding by index: the hour steps the index; with nothing open, the residue goes to the fund."""

from __future__ import annotations

from clearhouse.core.ids import QUOTE_ASSET, MarketId
from clearhouse.core.ledger import INSURANCE, Transfer, funding_account
from clearhouse.core.messages import FundingPaid, Transferred
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from helpers import BTC_PERP, Venue, of_type


def test_with_no_position_open_the_funding_residue_goes_to_the_insurance_fund() -> None:
    venue = Venue()
    pool = funding_account(MarketId(BTC_PERP))
    assert not venue.state.markets[MarketId(BTC_PERP)].holders
    # Seven quantums of rounding left behind by positions since closed (put there directly).
    venue.state.ledger.apply(Transfer(venue.sub("dave"), pool, QUOTE_ASSET, 7))
    fund = venue.state.ledger.balance(INSURANCE, QUOTE_ASSET)
    events = venue.advance(NS_PER_HOUR + 10 * NS_PER_SECOND)
    assert [e for e in of_type(events, FundingPaid) if e.market_id == BTC_PERP]
    [swept] = [e for e in of_type(events, Transferred) if e.cause == "funding residue"]
    assert (swept.source, swept.target, swept.amount_quantums) == (str(pool), str(INSURANCE), 7)
    assert venue.state.ledger.balance(pool, QUOTE_ASSET) == 0
    assert venue.state.ledger.balance(INSURANCE, QUOTE_ASSET) == fund + 7
