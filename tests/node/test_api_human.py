"""The API in human terms, against a real node: decimal strings and milliseconds beside the
integer fields, typed schemas and offline docs, history, funding, candles by interval, the
what-if, rate-limit headers and checksummed addresses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.node.conftest import NodeProcess, fresh_index

from clearhouse.client import Client, Wallet
from clearhouse.node.human import checksummed

MARKET = "BTC-PERP"
SIZE = 100_000  # 0.001 BTC


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(Path(tmp_path_factory.mktemp("human")) / "node").start()
    yield node
    node.kill()


@pytest.fixture(scope="module")
def traded(live: NodeProcess) -> dict[str, Any]:
    """Two accounts that traded once with each other at a price on the grid."""
    price = fresh_index(live.url) // 100_000 * 100_000
    with Client(live.url, Wallet.create()) as buyer, Client(live.url, Wallet.create()) as seller:
        buyer.faucet(100_000)
        seller.faucet(100_000)
        buyer.submit(buyer.order(MARKET, "buy", size_base_quantums=SIZE, price_quantums=price,
                                 client_order_id=1))  # fmt: skip
        filled = seller.submit(seller.order(MARKET, "sell", size_base_quantums=SIZE,
                                            price_quantums=price, client_order_id=2))  # fmt: skip
        assert filled["status"] == "accepted", filled
        return {"buyer": buyer.account, "seller": seller.account, "price": price}


def get(live: NodeProcess, path: str, **params: Any) -> httpx.Response:
    return httpx.get(live.url + path, params=params, timeout=10)


def test_amounts_have_decimal_strings_in_whole_units_beside_them(
    live: NodeProcess, traded: dict[str, Any]
) -> None:
    trade = get(live, f"/v1/markets/{MARKET}/trades").json()[0]
    assert trade["price_quantums"] == traded["price"]  # the integer stays as it was
    assert Decimal(trade["price"]) == Decimal(traded["price"]) / 10**6
    assert trade["size_base"] == "0.001"
    assert trade["timestamp_ms"] == trade["timestamp_ns"] // 10**6
    sub = get(live, f"/v1/accounts/{traded['buyer']}/subaccounts/0").json()
    assert sub["balances_in_units"]["USDC"] == str(Decimal(sub["balances"]["USDC"]) / 10**6)
    margin = sub["margin"]
    assert Decimal(margin["equity_quote"]) * 10**6 == margin["equity_quote_quantums"]
    position = sub["positions"][0]
    assert position["size_base"] == "0.001"
    assert position["size_base_quantums"] == position["size"] == SIZE


def test_a_side_has_one_spelling_beside_the_integer_events_carry(
    live: NodeProcess, traded: dict[str, Any]
) -> None:
    history = get(live, f"/v1/accounts/{traded['buyer']}/subaccounts/0/history").json()
    fill = next(i for i in history["items"] if i["category"] == "fill")
    assert fill["taker_side"] == -1  # the seller took: the event's integer stays
    assert fill["taker_side_name"] == "sell"
    assert get(live, f"/v1/markets/{MARKET}/trades").json()[0]["taker_side"] == "sell"


def test_history_pages_with_a_cursor_newest_first(
    live: NodeProcess, traded: dict[str, Any]
) -> None:
    path = f"/v1/accounts/{traded['buyer']}/subaccounts/0/history"
    whole = get(live, path).json()["items"]
    categories = {i["category"] for i in whole}
    assert {"fill", "transfer"} <= categories  # the faucet's deposit, then the trade
    first = get(live, path, limit=1).json()
    assert first["items"] == whole[:1]
    assert first["next_cursor"] == whole[0]["cursor"]
    rest = get(live, path, limit=1_000, cursor=first["next_cursor"]).json()
    assert rest["items"] == whole[1:]
    assert rest["next_cursor"] is None
    only = get(live, path, category="fill").json()["items"]
    assert only and all(i["category"] == "fill" for i in only)


def test_candles_come_in_every_interval(live: NodeProcess, traded: dict[str, Any]) -> None:
    for interval in ("1m", "5m", "15m", "1h", "4h", "1d"):
        candle = get(live, f"/v1/markets/{MARKET}/candles", interval=interval).json()[0]
        assert candle["interval"] == interval
        assert candle["minute_ns"] % (60 * 10**9) == 0
        assert Decimal(candle["close_price"]) * 10**6 == candle["close"]
    day = get(live, f"/v1/markets/{MARKET}/candles", interval="1d").json()[0]
    assert day["minute_ns"] % (86_400 * 10**9) == 0
    assert get(live, f"/v1/markets/{MARKET}/candles", interval="2m").status_code == 400


def test_funding_says_the_predicted_rate_and_its_history(live: NodeProcess) -> None:
    body = get(live, f"/v1/markets/{MARKET}/funding").json()
    assert Decimal(body["predicted_rate"]) * 10**9 == body["predicted_rate_ppb"]
    assert body["next_funding_ms"] == body["next_funding_ns"] // 10**6
    assert isinstance(body["history"], list)
    assert get(live, "/v1/markets/NOPE-PERP/funding").json()["error"]["code"] == "NOT_FOUND"


def test_the_what_if_runs_the_margin_code_and_changes_nothing(
    live: NodeProcess, traded: dict[str, Any]
) -> None:
    buyer = traded["buyer"]
    before = get(live, f"/v1/accounts/{buyer}/subaccounts/0").json()
    order = {"market_id": MARKET, "side": "buy", "size_base_quantums": 20_000 * SIZE,
             "price_quantums": traded["price"]}  # fmt: skip
    answer = httpx.post(live.url + "/v1/what-if", json={"address": buyer, "orders": [order]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["committed"] is False
    assert body["before"]["initial_quote_quantums"] == before["margin"]["initial_quote_quantums"]
    assert body["after"]["initial_quote_quantums"] > body["before"]["initial_quote_quantums"]
    (position,) = body["positions"]
    assert position["size_base_quantums"] == 20_001 * SIZE  # 20.001 BTC: 1.2M on 100k
    liquidation = position["liquidation_price_quantums"]
    assert liquidation is not None and 0 < liquidation < traded["price"]
    assert position["adl_rank"]["rank"] >= 1
    assert body["health"]["status"] in ("healthy", "below_initial", "liquidatable")
    after = get(live, f"/v1/accounts/{buyer}/subaccounts/0").json()
    assert after["positions"][0]["size"] == before["positions"][0]["size"] == SIZE
    assert after["balances"] == before["balances"]


def test_the_what_if_refuses_prices_off_the_grid(live: NodeProcess, traded: dict[str, Any]) -> None:
    order = {"market_id": MARKET, "side": "sell", "size_base_quantums": SIZE,
             "price_quantums": traded["price"] + 1}  # fmt: skip
    answer = httpx.post(live.url + "/v1/what-if", json={"address": traded["buyer"],
                                                        "orders": [order]})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "PRICE_OFF_TICK"


def test_a_what_if_portfolio_takes_entry_prices_off_the_grid(
    live: NodeProcess, traded: dict[str, Any]
) -> None:
    """An entry price is an average of fills, and the mark (the default entry) is no order
    price either: neither is held to the tick grid."""
    averaged = {"market_id": MARKET, "size_base_quantums": 3 * SIZE,
                "entry_price_quantums": traded["price"] + 1}  # fmt: skip
    at_mark = {"market_id": MARKET, "size_base_quantums": -SIZE}
    for position in (averaged, at_mark):
        answer = httpx.post(live.url + "/v1/what-if",
                            json={"address": traded["buyer"], "portfolio": [position]})  # fmt: skip
        assert answer.status_code == 200, answer.text
        (held,) = answer.json()["positions"]
        assert held["size_base_quantums"] == position["size_base_quantums"]


def test_every_answer_says_the_rate_limit(live: NodeProcess) -> None:
    for answer in (get(live, "/health"), get(live, "/v1/markets/NOPE-PERP")):
        assert int(answer.headers["X-RateLimit-Limit"]) > 0
        assert (
            0
            <= int(answer.headers["X-RateLimit-Remaining"])
            <= int(answer.headers["X-RateLimit-Limit"])
        )


def test_a_checksummed_address_is_the_same_account_and_a_wrong_one_is_refused(
    live: NodeProcess, traded: dict[str, Any]
) -> None:
    lower = traded["buyer"]
    mixed = checksummed(lower)
    assert mixed != lower
    assert get(live, f"/v1/accounts/{mixed}").json() == get(live, f"/v1/accounts/{lower}").json()
    letter = next(i for i, c in enumerate(mixed) if i > 1 and c.isalpha())
    wrong = mixed[:letter] + mixed[letter].swapcase() + mixed[letter + 1 :]
    refused = get(live, f"/v1/accounts/{wrong}")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "BAD_ADDRESS_CHECKSUM"


def test_the_docs_load_without_a_cdn(live: NodeProcess) -> None:
    page = get(live, "/docs").text
    assert "cdn." not in page and "/docs-assets/swagger-ui-bundle.js" in page
    assert get(live, "/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert "cdn." not in get(live, "/redoc").text


def test_the_schema_names_each_answer_and_its_errors(live: NodeProcess) -> None:
    schema = get(live, "/openapi.json").json()
    market = schema["paths"]["/v1/markets/{market_id}"]["get"]["responses"]
    assert market["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Market")
    assert market["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert {"400", "429", "503"} <= market.keys()
    assert "422" not in market  # validation errors are answered 400, as documented
    assert "examples" in schema["components"]["schemas"]["Market"]


def test_a_command_may_name_its_signer_checksummed(live: NodeProcess) -> None:
    with Client(live.url, Wallet.create()) as trader:
        trader.faucet(1_000)
        signed = trader.signed(trader.order(MARKET, "buy", size_base_quantums=SIZE,
                                            price_quantums=10**9, client_order_id=9))  # fmt: skip
    body = signed["command"]["body"]
    spelled = {**signed, "command": {**signed["command"],
               "body": {**body, "signer": checksummed(body["signer"])}}}  # fmt: skip
    first = httpx.post(live.url + "/v1/commands", json=spelled, timeout=10)
    assert first.status_code == 200, first.text
    again = httpx.post(live.url + "/v1/commands", json=signed, timeout=10).json()
    assert again["duplicate"] is True  # the same command: one journal entry, one answer
    assert again["order_id"] == first.json()["order_id"]


def test_a_rate_limited_answer_says_when_to_come_back(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", extra=("--ip-rate", "5")).start()  # a burst of 10
    try:
        answers = [get(node, "/v1/markets") for _ in range(30)]
    finally:
        node.kill()
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].headers["X-RateLimit-Limit"] == "10"
    assert limited[0].headers["X-RateLimit-Remaining"] == "0"
    assert limited[0].json()["error"]["code"] == "RATE_LIMITED"


def test_a_heavy_view_weighs_more_against_the_per_ip_limit(tmp_path: Path) -> None:
    """An account view costs HEAVY_READ_WEIGHT (5) of the burst, a market list 1: a reader
    hammering heavy views is held to a fifth of the requests."""
    node = NodeProcess(tmp_path / "node", extra=("--ip-rate", "5")).start()  # a burst of 10
    try:
        owner = "0x" + "ab" * 20
        time.sleep(2.5)  # a full bucket again after the polls of /health at start
        heavy = [get(node, f"/v1/accounts/{owner}").status_code for _ in range(3)]
        time.sleep(2.5)  # the bucket refills (5 a second)
        light = [get(node, "/v1/markets").status_code for _ in range(10)]
    finally:
        node.kill()
    assert heavy == [200, 200, 429], heavy
    assert light == [200] * 10, light
