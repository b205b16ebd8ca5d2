"""Hostile input against a real node: text that is no Unicode, binary WebSocket frames,
integers beyond every bound, and their neighbours (NaN, deep nesting, a non-object body, a
float for an integer). Each gets a 4xx with a stable code in the JSON error shape, never a 500;
a batch refuses only the bad slot; nothing is changed, no nonce is spent."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.node.conftest import NodeProcess, fresh_index
from tests.node.test_security_http import (
    FUNDS_USDC,
    MARKET,
    bid,
    eth_wallet,
    observe,
    refused,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from clearhouse.client import Client
from clearhouse.core.ids import AssetId
from clearhouse.core.messages import PlaceOrder, Withdraw

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(Path(tmp_path_factory.mktemp("hostile")) / "node").start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def index(node: NodeProcess) -> int:
    return fresh_index(node.url, MARKET)


@pytest.fixture
def alice(node: NodeProcess, index: int) -> Iterator[Client]:
    with Client(node.url, eth_wallet()) as client:
        assert client.faucet(FUNDS_USDC)["status"] == "accepted"
        yield client


def post_raw(node: NodeProcess, raw: str | bytes, path: str = "/v1/commands") -> httpx.Response:
    content = raw.encode() if isinstance(raw, str) else raw
    return httpx.post(node.url + path, content=content, headers=JSON, timeout=30)


def with_surrogate(signed: dict[str, Any]) -> str:
    """The signed command as JSON text with a lone surrogate escape in its market id."""
    text = json.dumps(signed)
    assert f'"{MARKET}"' in text
    return text.replace(f'"{MARKET}"', '"BTC\\ud800PERP"')


# ── Text that is no Unicode ────────────────────────────────────────────────────────────────


def test_a_lone_surrogate_escape_is_a_malformed_command_not_a_server_error(
    node: NodeProcess, alice: Client, index: int
) -> None:
    signed = alice.signed(bid(alice, index))
    before = observe(node, str(alice.account))
    error = refused(post_raw(node, with_surrogate(signed)), 400, "MALFORMED_COMMAND")
    assert "market_id" in error["message"] and "surrogate" in error["message"]
    # As a field's name, inside the body and in the envelope: answered, the name quoted safely.
    in_body = json.dumps(signed).replace('"market_id"', '"market\\udc00_id"')
    message = refused(post_raw(node, in_body), 400, "MALFORMED_COMMAND")["message"]
    assert "market\ufffd_id" in message  # quoted back as Unicode can hold it
    in_envelope = json.dumps(signed).replace('"signature"', '"signature\\ud800"')
    refused(post_raw(node, in_envelope), 400, "INVALID_REQUEST")
    assert observe(node, str(alice.account)) == before
    assert post_raw(node, json.dumps(signed)).status_code == 200  # the real one still works


def test_a_lone_surrogate_refuses_only_its_slot_of_a_batch(
    node: NodeProcess, alice: Client, index: int
) -> None:
    good = [alice.signed(bid(alice, index)) for _ in range(3)]
    bad = alice.signed(bid(alice, index))
    slots = [json.dumps(good[0]), with_surrogate(bad), json.dumps(good[1]), json.dumps(good[2])]
    text = '{"commands": [' + ", ".join(slots) + "]}"
    response = post_raw(node, text, "/v1/commands/batch")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["http_status"] for r in results] == [200, 400, 200, 200]
    assert results[1]["error"]["code"] == "MALFORMED_COMMAND"
    assert len(alice.open_orders()) == 3


# ── WebSocket frames ───────────────────────────────────────────────────────────────────────


def test_a_binary_websocket_frame_gets_an_error_frame_and_a_close_with_1003(
    node: NodeProcess,
) -> None:
    url = node.url.replace("http://", "ws://") + "/v1/ws"
    with connect(url, open_timeout=10) as socket:
        socket.send(json.dumps({"op": "subscribe", "channel": f"trades:{MARKET}"}))
        assert json.loads(socket.recv(timeout=10))["channel"] == f"trades:{MARKET}"
        socket.send(b'{"op": "subscribe", "channel": "book:BTC-PERP"}')
        frames = []
        with pytest.raises(ConnectionClosed) as closed:
            frames.extend(json.loads(frame) for frame in iter(lambda: socket.recv(timeout=10), ""))
        errors = [f for f in frames if f.get("type") == "error"]
        assert [e["error"]["code"] for e in errors] == ["UNSUPPORTED_DATA"]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    with connect(url, open_timeout=10) as socket:  # the node still serves streams
        socket.send(json.dumps({"op": "subscribe", "channel": f"book:{MARKET}"}))
        assert json.loads(socket.recv(timeout=10))["channel"] == f"book:{MARKET}"


# ── Integers beyond their bounds ───────────────────────────────────────────────────────────


def test_an_oversized_integer_is_out_of_range_naming_its_field(
    node: NodeProcess, alice: Client, index: int
) -> None:
    order = bid(alice, index)
    withdraw = Withdraw(**alice.common(), subaccount_number=0, asset_id=AssetId("USDC"),
                        amount_quantums=2**200)  # fmt: skip
    cases: list[tuple[PlaceOrder | Withdraw, str]] = [
        (dataclasses.replace(order, size_base_quantums=2**200), "body.size_base_quantums"),
        (dataclasses.replace(order, size_base_quantums=-(2**200)), "body.size_base_quantums"),
        (dataclasses.replace(order, price_quantums=10**19), "body.price_quantums"),
        (dataclasses.replace(order, client_order_id=2**64), "body.client_order_id"),
        (withdraw, "body.amount_quantums"),
    ]
    before = observe(node, str(alice.account))
    for command, field in cases:
        error = refused(post_raw(node, json.dumps(alice.signed(command))), 400,
                        "VALUE_OUT_OF_RANGE")  # fmt: skip
        assert error["field"] == field and field in error["message"], error
    batch = {"commands": [alice.signed(command) for command, _ in cases]}
    answers = httpx.post(node.url + "/v1/commands/batch", json=batch, timeout=30).json()
    assert {a["error"]["code"] for a in answers["results"]} == {"VALUE_OUT_OF_RANGE"}
    assert observe(node, str(alice.account)) == before  # no nonce spent, nothing changed
    assert alice.submit(order)["status"] == "accepted"  # each nonce is still unused


def test_texts_and_lists_beyond_their_bounds_are_refused_before_anything_is_journaled(
    node: NodeProcess, alice: Client, index: int
) -> None:
    """A market id of 30,000 characters and a price report listing 30,000 prices (one command
    may carry 64) are refused as the node reads them, naming the field: nothing is verified,
    journaled or spent (each used to be hashed and recovered, then written whole into its
    block before the engine refused it)."""
    order = bid(alice, index)
    long_id = dataclasses.replace(order, market_id="X" * 30_000)
    report = {"oracle_id": "BTC-USD", "price_quantums": 1, "confidence_quantums": 0,
              "timestamp_ns": 1, "quote": "USD"}  # fmt: skip
    signed = alice.signed(order)
    many = {**signed, "command": {"type": "ReportPrices", "body": {
        "signer": signed["command"]["body"]["signer"], "nonce": order.nonce + 1,
        "expiry_ns": order.expiry_ns, "reports": [report] * 30_000}}}  # fmt: skip
    before = observe(node, str(alice.account))
    error = refused(post_raw(node, json.dumps(alice.signed(long_id))), 400, "VALUE_OUT_OF_RANGE")
    assert error["field"] == "body.market_id" and "128 characters" in error["message"], error
    batch = {"commands": [many, alice.signed(long_id)]}
    answers = httpx.post(node.url + "/v1/commands/batch", json=batch, timeout=30).json()
    errors = [a["error"] for a in answers["results"]]
    assert [e["field"] for e in errors] == ["body.reports", "body.market_id"], errors
    assert "at most 64 items" in errors[0]["message"]
    assert observe(node, str(alice.account)) == before
    assert alice.submit(order)["status"] == "accepted"


# ── Neighbours ─────────────────────────────────────────────────────────────────────────────


def test_hostile_json_gets_a_stable_code_never_a_server_error(
    node: NodeProcess, alice: Client, index: int
) -> None:
    signed = json.dumps(alice.signed(bid(alice, index)))
    size = '"size_base_quantums": 1000000'
    assert size in signed
    deep = "[" * 5_000 + "]" * 5_000
    cases = [
        (signed.replace(size, '"size_base_quantums": NaN'), 400, "MALFORMED_COMMAND"),
        (signed.replace(size, '"size_base_quantums": Infinity'), 400, "MALFORMED_COMMAND"),
        (signed.replace(size, '"size_base_quantums": -Infinity'), 400, "MALFORMED_COMMAND"),
        (signed.replace(size, '"size_base_quantums": 1000000.0'), 400, "MALFORMED_COMMAND"),
        (signed.replace(size, '"size_base_quantums": 1e6'), 400, "MALFORMED_COMMAND"),
        (signed.replace(size, '"size_base_quantums": -0'), 403, "AGENT_NOT_AUTHORIZED"),
        (signed.replace(size, '"size_base_quantums": -0.0'), 400, "MALFORMED_COMMAND"),
        (signed.replace(size, f'"size_base_quantums": {deep}'), 400, "INVALID_REQUEST"),
        (signed.replace(size, '"size_base_quantums": [[[[[[[[1]]]]]]]]'), 400, "MALFORMED_COMMAND"),
        (signed.replace(size, f'{size}, "leverage": 10'), 400, "MALFORMED_COMMAND"),
        ('{"command": ' + "[" * 30_000 + "]" * 30_000 + "}", 400, "INVALID_REQUEST"),
        ("[]", 400, "INVALID_REQUEST"),
        ('"PlaceOrder"', 400, "INVALID_REQUEST"),
        ("42", 400, "INVALID_REQUEST"),
        ("null", 400, "INVALID_REQUEST"),
        ("NaN", 400, "INVALID_REQUEST"),
        (b"\xff\xfe{}", 400, "INVALID_REQUEST"),
    ]
    before = observe(node, str(alice.account))
    for raw, status, code in cases:
        refused(post_raw(node, raw), status, code)
    for raw in ("[]", "42", "null", "NaN", "{}", '"x"', "[" * 100_000 + "]" * 100_000):
        refused(post_raw(node, '{"commands": ' + raw + "}", "/v1/commands/batch"), 400,
                "INVALID_REQUEST")  # fmt: skip
    assert observe(node, str(alice.account)) == before


def test_a_body_nested_too_deep_is_refused_before_it_is_parsed(node: NodeProcess) -> None:
    """Once a crash: a dependency lifts the recursion limit, so the parser overflowed the stack
    on a few hundred kilobytes of brackets and the node died with every connection."""
    for depth in (17, 1_000, 1_000_000):
        raw = '{"commands": ' + "[" * depth + "]" * depth + "}"
        error = refused(post_raw(node, raw, "/v1/commands/batch"), 400, "INVALID_REQUEST")
        assert "nested deeper than 16" in error["message"]
    text = '{"commands": [{"command": {"type": "x[[[[[[[[[[[[[[[[[[[[", "body": {}}}]}'
    refused(post_raw(node, text, "/v1/commands/batch"), 400, "INVALID_REQUEST")  # not too deep
    assert httpx.get(node.url + "/health", timeout=10).status_code == 200


def test_the_faucet_takes_integers_only(node: NodeProcess) -> None:
    address = eth_wallet().address
    for amount in ("5.0", "5e0", "true", '"5"', "NaN", "-0.0"):
        raw = f'{{"address": "{address}", "amount_usdc": {amount}}}'
        refused(post_raw(node, raw, "/v1/dev/faucet"), 400, "INVALID_REQUEST")
    raw = f'{{"address": "{address}", "amount_usdc": 5}}'
    answer = post_raw(node, raw, "/v1/dev/faucet")
    assert answer.status_code == 200, answer.text


def test_websocket_connections_per_address_are_limited(node: NodeProcess) -> None:
    from contextlib import ExitStack

    from clearhouse.node.streams import CONNECTIONS_PER_IP_MAX

    url = node.url.replace("http://", "ws://") + "/v1/ws"
    with ExitStack() as held:
        sockets = [held.enter_context(connect(url, open_timeout=10))
                   for _ in range(CONNECTIONS_PER_IP_MAX)]  # fmt: skip
        for socket in sockets:  # each one served
            socket.send(json.dumps({"op": "subscribe", "channel": f"trades:{MARKET}"}))
            assert json.loads(socket.recv(timeout=10))["type"] == "snapshot"
        with connect(url, open_timeout=10) as extra:
            refusal = json.loads(extra.recv(timeout=10))
            assert refusal["error"]["code"] == "TOO_MANY_CONNECTIONS"
            with pytest.raises(ConnectionClosed) as closed:
                extra.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        sockets[0].close()  # one leaves: its place is free again (once the node has seen it go)
        deadline = time.monotonic() + 10
        while True:
            with connect(url, open_timeout=10) as again:
                again.send(json.dumps({"op": "subscribe", "channel": f"book:{MARKET}"}))
                first = json.loads(again.recv(timeout=10))
            if first["type"] == "snapshot":
                break
            assert first["error"]["code"] == "TOO_MANY_CONNECTIONS"
            assert time.monotonic() < deadline, "the closed connection's place never came back"
            time.sleep(0.05)
