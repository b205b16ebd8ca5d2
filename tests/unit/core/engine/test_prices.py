"""Quote currencies (§5): reports name their quote; the index converts them to USD at the
rate feed's index, leaves out reports whose rate is stale, and refuses unknown quotes and rate
feeds with stable codes."""

from __future__ import annotations

from clearhouse.core.codec import decode_command
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import OracleId
from clearhouse.core.messages import ListOracle, PriceReport, ReportPrices
from clearhouse.core.oracle import PriceStatus, in_usd, quote_rates
from clearhouse.core.params import OracleParams, Publisher, QuoteFeed
from clearhouse.core.units import NS_PER_HOUR, NS_PER_SECOND
from helpers import BTC_USD, PRICE, USDC, USDT_USD, Venue, accepted, rejected


def report(venue: Venue, oracle_id: OracleId, quote: str, publisher: int = 0) -> ReportPrices:
    signer = venue.publishers[publisher]
    return ReportPrices(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + NS_PER_HOUR,
        reports=(PriceReport(
            oracle_id=oracle_id, price_quantums=PRICE, confidence_quantums=0,
            timestamp_ns=venue.now, quote=quote,
        ),),
    )  # fmt: skip


def list_oracle(venue: Venue, oracle_id: str, *quotes: QuoteFeed) -> ListOracle:
    operator = venue.operator
    publishers = tuple(Publisher(address=p.address) for p in venue.publishers)
    return ListOracle(
        signer=operator.address, nonce=operator.nonce(venue.now),
        expiry_ns=venue.now + NS_PER_HOUR,
        params=OracleParams(oracle_id=OracleId(oracle_id), publishers=publishers, quotes=quotes),
    )  # fmt: skip


def test_reports_in_usdt_are_converted_at_the_rate_feeds_index() -> None:
    venue = Venue()
    venue.quotes = {0: "USDT", 1: "USDT"}
    venue.prices[USDT_USD] = 990_000  # USDT at 0.99 USD: BTC/USDT reads 1% higher
    for _ in range(3):
        venue.block()
    oracle = venue.state.oracles[BTC_USD]
    assert oracle.reports[venue.publishers[0].address].quote == "USDT"
    assert oracle.reports[venue.publishers[0].address].price_quantums > PRICE * 101 // 100 - USDC
    assert abs(venue.index() - PRICE) <= 1
    rates = quote_rates(oracle.params, venue.state.oracles)
    assert rates == {"USDT": 990_000}
    assert all(abs(r.price_quantums - PRICE) <= 1 for r in in_usd(oracle.reports.values(), rates))


def test_reports_whose_rate_is_stale_are_left_out_not_converted_at_an_old_rate() -> None:
    venue = Venue()
    venue.quotes = {0: "USDT", 1: "USDT"}
    venue.block()
    venue.silent_feeds = {USDT_USD}  # no one reports USDT-USD any more
    for _ in range(2):
        venue.block(dt_ns=6 * NS_PER_SECOND)
    assert not venue.state.oracles[USDT_USD].is_usable()
    # Half the weight is in USDT and has no rate: no quorum, the index is stale (degraded).
    assert venue.state.oracles[BTC_USD].status is PriceStatus.STALE
    assert venue.index() == PRICE  # the last good index, kept and not used
    venue.silent_feeds = set()
    for _ in range(2):
        venue.block()
    assert venue.state.oracles[BTC_USD].is_usable()


def test_one_quote_with_a_stale_rate_leaves_the_others_a_quorum() -> None:
    venue = Venue()
    venue.quotes = {0: "USDT"}
    venue.block()
    venue.silent_feeds = {USDT_USD}
    for _ in range(2):
        venue.block(dt_ns=6 * NS_PER_SECOND)
    oracle = venue.state.oracles[BTC_USD]
    assert oracle.is_usable()  # three USD reports of four: a quorum without the USDT one
    usable = in_usd(oracle.reports.values(), quote_rates(oracle.params, venue.state.oracles))
    assert venue.publishers[0].address not in {r.publisher for r in usable}


def test_a_report_in_an_unknown_quote_currency_is_refused() -> None:
    venue = Venue()
    for quote in ("EUR", "usdt", "", "USDTUSDTUSDT"):
        rejected(venue, report(venue, BTC_USD, quote), RejectReason.UNKNOWN_QUOTE_CURRENCY)
    # A rate feed takes USD reports only: USDT-USD in USDT is refused too.
    rejected(venue, report(venue, USDT_USD, "USDT"), RejectReason.UNKNOWN_QUOTE_CURRENCY)
    accepted(venue, report(venue, BTC_USD, "USDT"))


def test_listing_refuses_a_rate_feed_that_does_not_exist_or_itself_converts() -> None:
    venue = Venue()
    missing = QuoteFeed(quote="USDC", rate_oracle_id=OracleId("USDC-USD"))
    rejected(venue, list_oracle(venue, "SOL-USD", missing), RejectReason.UNKNOWN_RATE_FEED)
    chained = QuoteFeed(quote="BTC", rate_oracle_id=BTC_USD)  # BTC-USD converts USDT itself
    rejected(venue, list_oracle(venue, "SOL-USD", chained), RejectReason.RATE_FEED_NOT_IN_USD)
    usdt = QuoteFeed(quote="USDT", rate_oracle_id=USDT_USD)
    for bad in (
        (QuoteFeed(quote="USD", rate_oracle_id=USDT_USD),),  # USD is always taken as it is
        (QuoteFeed(quote="usdt", rate_oracle_id=USDT_USD),),
        (usdt, usdt),  # the same quote twice
        (QuoteFeed(quote="SOL", rate_oracle_id=OracleId("SOL-USD")),),  # its own rate feed
    ):
        rejected(venue, list_oracle(venue, "SOL-USD", *bad), RejectReason.INVALID_PARAMETERS)
    accepted(venue, list_oracle(venue, "USDC-USD"))
    accepted(venue, list_oracle(venue, "SOL-USD", usdt, missing))


def test_a_journal_report_without_a_quote_decodes_as_usd() -> None:
    body = (
        b'{"type":"ReportPrices","body":{"signer":"0x' + b"1" * 40 + b'","nonce":1,'
        b'"expiry_ns":2,"reports":[{"oracle_id":"BTC-USD","price_quantums":5,'
        b'"confidence_quantums":0,"timestamp_ns":1}]}}'
    )
    command = decode_command(body)
    assert isinstance(command, ReportPrices)
    assert command.reports[0].quote == "USD"
