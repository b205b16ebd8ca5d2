"""Signed commands attacked over HTTP, against a real node (the cases of
``tests/integration/test_signed_commands.py``, and what only a network API has): each refusal
has its stable code and HTTP status, and leaves the account and its nonces as they were."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from tests.node.conftest import NodeProcess, fresh_index

from clearhouse.app import signing
from clearhouse.app.signing import Domain
from clearhouse.client import ApiRejection, Client, Wallet
from clearhouse.core.codec import encode_command
from clearhouse.core.ids import AssetId
from clearhouse.core.messages import AuthorizeAgent, Command, PlaceOrder, Withdraw
from clearhouse.node.human import checksummed

MARKET = "BTC-PERP"
SIZE = 1_000_000
USDC = 1_000_000
FUNDS_USDC = 10_000
HOUR_NS = 3_600 * 10**9
MS_NS = 1_000_000


def eth_wallet() -> Wallet:
    return Wallet(bytes(Account.create().key))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One dev node for every case but the rate limits (this file's own ``node``)."""
    process = NodeProcess(Path(tmp_path_factory.mktemp("security")) / "node").start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def index(node: NodeProcess) -> int:
    """The BTC index once the dev feed has made the oracle fresh."""
    return fresh_index(node.url, MARKET)


@pytest.fixture
def alice(node: NodeProcess, index: int) -> Iterator[Client]:
    """A new account, funded: its state is its own (no other test trades on it)."""
    with Client(node.url, eth_wallet()) as client:
        assert client.faucet(FUNDS_USDC)["status"] == "accepted"
        yield client


def bid(client: Client, index: int, **fields: Any) -> PlaceOrder:
    """A bid 3 % under the index: it rests."""
    price = index * 97 // 100 // 100_000 * 100_000
    order = client.order(MARKET, "buy", size_base_quantums=SIZE, price_quantums=price, **fields)
    assert isinstance(order, PlaceOrder)
    return order


def envelope(command: Command, signature: bytes | str) -> dict[str, Any]:
    text = signature if isinstance(signature, str) else "0x" + signature.hex()
    return {"command": json.loads(encode_command(command)), "signature": text}


def post(node: NodeProcess, body: Any, path: str = "/v1/commands") -> httpx.Response:
    return httpx.post(node.url + path, json=body, timeout=15)


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error object of a refusal with this status and code (and the JSON error shape)."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert (response.status_code, body.get("error", {}).get("code")) == (status, code), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@dataclasses.dataclass
class Observed:
    """What a refused command must not change: the account (its margin only where it holds
    nothing priced by the moving index), its open orders, and each named key's nonce set."""

    account: dict[str, Any]
    orders: list[dict[str, Any]]
    nonces: dict[str, dict[str, Any]]


def observe(node: NodeProcess, owner: str, *keys: str) -> Observed:
    http = httpx.Client(base_url=node.url, timeout=10)
    with http:
        account = http.get(f"/v1/accounts/{owner}").json()
        for sub in account["subaccounts"]:
            if sub["open_orders"] or sub["positions"]:
                del sub["margin"]  # valued at the index, which the dev feed moves every second
        orders = http.get(f"/v1/accounts/{owner}/subaccounts/0/orders").json()
        nonces = {}
        for key in (owner, *keys):
            found = http.get(f"/v1/nonces/{key}").json()
            del found["block_timestamp_ns"]  # the clock, not the signer's state
            del found["block_timestamp_ms"]
            nonces[key] = found
    return Observed(account, orders, nonces)


# ── Replays ────────────────────────────────────────────────────────────────────────────────


def test_an_identical_resubmission_is_answered_once(
    node: NodeProcess, alice: Client, index: int
) -> None:
    order = bid(alice, index)
    body = alice.signed(order)
    first = post(node, body)
    assert first.status_code == 200
    answer = first.json()
    assert (answer["status"], answer["duplicate"]) == ("accepted", False)
    before = observe(node, str(alice.account))
    assert before.nonces[str(alice.account)]["highest"] == order.nonce
    again = post(node, body)
    assert again.status_code == 200
    repeated = again.json()
    assert repeated["duplicate"] is True
    assert {**repeated, "duplicate": False} == answer  # the first answer: height, events, id
    # The same command with v as 0/1 instead of 27/28 is the same command (same journal bytes).
    signature = bytes.fromhex(body["signature"][2:])
    low_v = dict(body, signature="0x" + (signature[:64] + bytes([signature[64] - 27])).hex())
    assert {**post(node, low_v).json(), "duplicate": False} == answer
    assert observe(node, str(alice.account)) == before
    assert [o["order_id"] for o in before.orders] == [answer["order_id"]]


def test_a_different_command_on_a_used_nonce_is_refused(
    node: NodeProcess, alice: Client, index: int
) -> None:
    order = bid(alice, index)
    assert post(node, alice.signed(order)).status_code == 200
    before = observe(node, str(alice.account))
    for changed in (
        dataclasses.replace(order, price_quantums=order.price_quantums - 100_000),
        Withdraw(signer=order.signer, nonce=order.nonce, expiry_ns=order.expiry_ns,
                 subaccount_number=0, asset_id=AssetId("USDC"), amount_quantums=USDC),
    ):  # fmt: skip
        response = post(node, alice.signed(changed))
        error = refused(response, 409, "NONCE_ALREADY_USED")
        assert error["nonce_consumed"] is False
        assert error["duplicate"] is False
    assert observe(node, str(alice.account)) == before


# ── Signatures that are not the account's ──────────────────────────────────────────────────


def test_a_signature_for_another_chain_or_contract_is_another_key(
    node: NodeProcess, alice: Client, index: int
) -> None:
    assert alice.wallet is not None
    domain = alice.domain
    for wrong in (
        Domain(chain_id=1, verifying_contract=domain.verifying_contract),
        Domain(chain_id=domain.chain_id, verifying_contract="0x" + "22" * 20),
    ):
        order = bid(alice, index)
        signature = alice.wallet.sign(order, wrong)
        stranger = signing.recover(order, signature, domain)  # what the node recovers
        assert stranger != alice.account
        before = observe(node, str(alice.account), stranger)
        error = refused(post(node, envelope(order, signature)), 403, "AGENT_NOT_AUTHORIZED")
        assert error["nonce_consumed"] is False
        after = observe(node, str(alice.account), stranger)
        assert after == before
        assert after.nonces[stranger]["kept"] == 0  # a foreign key leaves no trace


def test_another_accounts_signature_is_refused(
    node: NodeProcess, alice: Client, index: int
) -> None:
    mallory = eth_wallet()
    for command in (
        bid(alice, index),
        Withdraw(**alice.common(), subaccount_number=0, asset_id=AssetId("USDC"),
                 amount_quantums=FUNDS_USDC * USDC),
        AuthorizeAgent(**alice.common(), agent=mallory.address,
                       valid_until_ns=time.time_ns() + HOUR_NS),
    ):  # fmt: skip
        before = observe(node, str(alice.account), mallory.address)
        body = envelope(command, mallory.sign(command, alice.domain))
        refused(post(node, body), 403, "AGENT_NOT_AUTHORIZED")
        after = observe(node, str(alice.account), mallory.address)
        assert after == before, type(command).__name__
        assert after.nonces[mallory.address]["kept"] == 0
    assert alice.account_state()["agents"] == []


def test_an_agent_may_trade_but_not_withdraw_or_appoint_agents(
    node: NodeProcess, alice: Client, index: int
) -> None:
    agent_key = eth_wallet()
    alice.authorize_agent(agent_key.address, valid_for_ns=HOUR_NS)
    with Client(node.url, agent=agent_key, account=alice.account) as agent:
        assert agent.submit(bid(agent, index))["status"] == "accepted"  # trading: allowed
        for command in (
            Withdraw(**agent.common(), subaccount_number=0, asset_id=AssetId("USDC"),
                     amount_quantums=10 * USDC),
            AuthorizeAgent(**agent.common(), agent=eth_wallet().address,
                           valid_until_ns=time.time_ns() + HOUR_NS),
        ):  # fmt: skip
            before = observe(node, str(alice.account), agent_key.address)
            error = refused(post(node, agent.signed(command)), 403, "AGENT_NOT_ALLOWED")
            assert error["nonce_consumed"] is False
            assert observe(node, str(alice.account), agent_key.address) == before
    assert [a["agent"] for a in alice.account_state()["agents"]] == [agent_key.address]


# ── Time: expiry and the nonce window ──────────────────────────────────────────────────────


def test_an_expired_command_is_refused_and_only_its_nonce_is_spent(
    node: NodeProcess, alice: Client, index: int
) -> None:
    expired = dataclasses.replace(bid(alice, index), expiry_ns=time.time_ns() - 1_000 * MS_NS)
    before = observe(node, str(alice.account))
    error = refused(post(node, alice.signed(expired)), 400, "COMMAND_EXPIRED")
    assert error["nonce_consumed"] is True  # signed by the account's key: its nonce is spent
    after = observe(node, str(alice.account))
    assert after.account == before.account and after.orders == before.orders == []
    nonces = after.nonces[str(alice.account)]
    assert (nonces["highest"], nonces["kept"]) == (expired.nonce, 1)
    assert before.nonces[str(alice.account)]["kept"] == 0


def test_nonces_outside_the_window_are_refused(
    node: NodeProcess, alice: Client, index: int
) -> None:
    window = alice.nonces()
    now_ms = time.time_ns() // MS_NS
    past_ms, future_ms = window["window_past_ns"] // MS_NS, window["window_future_ns"] // MS_NS
    order = bid(alice, index)
    before = observe(node, str(alice.account))
    for nonce, status, code in (
        (now_ms - past_ms - 60_000, 409, "NONCE_TOO_OLD"),
        (now_ms + future_ms + 60_000, 409, "NONCE_TOO_NEW"),
    ):
        outside = dataclasses.replace(order, nonce=nonce)
        error = refused(post(node, alice.signed(outside)), status, code)
        assert error["nonce_consumed"] is False
        assert observe(node, str(alice.account)) == before
    assert before.nonces[str(alice.account)]["kept"] == 0


# ── Malformed requests ─────────────────────────────────────────────────────────────────────


def test_malformed_signatures_are_refused_before_the_engine(
    node: NodeProcess, alice: Client, index: int
) -> None:
    order = bid(alice, index)
    good = alice.signed(order)["signature"]
    r_s = good[2:130]
    half_order = signing.SECP256K1_HALF_ORDER
    high_s = (2 * half_order + 1 - int(r_s[64:], 16)).to_bytes(32, "big").hex()  # n - s
    cases = [
        ("0x" + r_s + "1d", 401, "BAD_SIGNATURE"),  # v is neither 27/28 nor 0/1
        ("0x" + "00" * 65, 401, "BAD_SIGNATURE"),  # r = s = 0: no key
        ("0x" + r_s[:64] + high_s + "1b", 401, "BAD_SIGNATURE"),  # s above n/2 (EIP-2)
        ("0x" + "ff" * 64 + "1b", 401, "BAD_SIGNATURE"),  # r beyond the curve order
        (good[:-2], 400, "INVALID_REQUEST"),  # 64 bytes
        (good + "00", 400, "INVALID_REQUEST"),  # 66 bytes
        (good[2:], 400, "INVALID_REQUEST"),  # no 0x
        ("0x" + "zz" * 65, 400, "INVALID_REQUEST"),  # not hex
        ("", 400, "INVALID_REQUEST"),
    ]
    before = observe(node, str(alice.account))
    for signature, status, code in cases:
        refused(post(node, envelope(order, signature)), status, code)
    assert observe(node, str(alice.account)) == before
    with pytest.raises(ApiRejection) as unknown:
        alice.command_status(Client.command_hash(order))  # it never reached a block
    assert unknown.value.status == 404
    assert post(node, envelope(order, good)).status_code == 200  # the real one still works


def _miss_checksum(address: str) -> str:
    """The address's EIP-55 spelling with one letter's case flipped."""
    right = checksummed(address)
    at = next(i for i, c in enumerate(right) if i > 1 and c.isalpha())
    return right[:at] + right[at].swapcase() + right[at + 1 :]


def test_malformed_commands_are_refused(node: NodeProcess, alice: Client, index: int) -> None:
    order = bid(alice, index)
    good = alice.signed(order)
    body = good["command"]["body"]

    def command(**changes: Any) -> dict[str, Any]:
        return {"command": {**good["command"], **changes}, "signature": good["signature"]}

    cases = [
        (command(type="Teleport"), 400, "MALFORMED_COMMAND"),
        (command(type="AgentSigned"), 400, "MALFORMED_COMMAND"),
        (command(body={k: v for k, v in body.items() if k != "side"}), 400, "MALFORMED_COMMAND"),
        (command(body={**body, "size_base_quantums": "1000000"}), 400, "MALFORMED_COMMAND"),
        (command(body={**body, "side": 3}), 400, "MALFORMED_COMMAND"),
        (command(body={**body, "reduce_only": 0}), 400, "MALFORMED_COMMAND"),
        (command(body={**body, "leverage": 100}), 400, "MALFORMED_COMMAND"),
        (command(body={**body, "signer": _miss_checksum(body["signer"])}),
         400, "BAD_ADDRESS_CHECKSUM"),  # mixed case is an EIP-55 checksum: a wrong one
        (command(body={**body, "signer": "0x" + "g" * 40}), 400, "MALFORMED_COMMAND"),
        (command(body={**body, "nonce": 2**256}), 400, "VALUE_OUT_OF_RANGE"),
        (command(body=[]), 400, "INVALID_REQUEST"),
        (command(agent="0x" + "11" * 20), 400, "INVALID_REQUEST"),  # no smuggled agent
        ({"command": good["command"]}, 400, "INVALID_REQUEST"),
        ({**good, "extra": 1}, 400, "INVALID_REQUEST"),
        ([good], 400, "INVALID_REQUEST"),
    ]  # fmt: skip
    before = observe(node, str(alice.account))
    for request, status, code in cases:
        refused(post(node, request), status, code)
    for raw in (b"not json", b"{", b""):
        response = httpx.post(node.url + "/v1/commands", content=raw, timeout=10,
                              headers={"content-type": "application/json"})  # fmt: skip
        refused(response, 400, "INVALID_REQUEST")
    assert observe(node, str(alice.account)) == before


def test_an_oversize_body_is_refused(node: NodeProcess, alice: Client, index: int) -> None:
    signed = alice.signed(bid(alice, index))
    padded = json.dumps({**signed, "padding": "x" * 70_000}).encode()
    before = observe(node, str(alice.account))
    headers = {"content-type": "application/json"}
    response = httpx.post(node.url + "/v1/commands", content=padded, headers=headers, timeout=10)
    assert "65536" in refused(response, 413, "REQUEST_TOO_LARGE")["message"]
    batch = json.dumps({"commands": [signed] * 8_000}).encode()  # over 4 MiB
    assert len(batch) > 4 * 1024 * 1024
    response = httpx.post(node.url + "/v1/commands/batch", content=batch, headers=headers,
                          timeout=30)  # fmt: skip
    refused(response, 413, "REQUEST_TOO_LARGE")
    assert observe(node, str(alice.account)) == before


def test_an_oversize_chunked_body_is_refused_as_too_large(
    node: NodeProcess, alice: Client, index: int
) -> None:
    padded = json.dumps({**alice.signed(bid(alice, index)), "padding": "x" * 70_000}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(padded), 8_192):
            yield padded[start : start + 8_192]

    response = httpx.post(node.url + "/v1/commands", content=chunks(), timeout=10,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert response.request.headers["transfer-encoding"] == "chunked"
    refused(response, 413, "REQUEST_TOO_LARGE")


def test_an_unparseable_number_is_an_invalid_request(node: NodeProcess) -> None:
    raw = b'{"command": {"type": "PlaceOrder", "body": {"nonce": ' + b"9" * 5_000 + b"}}}"
    response = httpx.post(node.url + "/v1/commands", content=raw, timeout=10,
                          headers={"content-type": "application/json"})  # fmt: skip
    refused(response, 400, "INVALID_REQUEST")


def test_unknown_routes_and_methods_answer_json(node: NodeProcess) -> None:
    for method, path, status, code in (
        ("GET", "/v1/nothing-here", 404, "NOT_FOUND"),
        ("POST", "/v2/commands", 404, "NOT_FOUND"),
        ("GET", "/v1/orders/12345678", 404, "NOT_FOUND"),
        ("GET", "/v1/markets/NOPE-PERP", 404, "NOT_FOUND"),
        ("DELETE", "/v1/commands", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/v1/commands", 405, "METHOD_NOT_ALLOWED"),
    ):
        refused(httpx.request(method, node.url + path, timeout=10), status, code)


# ── A node without --dev, with a tight per-IP rate limit ───────────────────────────────────


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data = Path(tmp_path_factory.mktemp("limited")) / "node"
    publishers = [arg for n in (3, 4, 5) for arg in ("--publisher", "0x" + f"{n:02x}" * 20)]
    roles = ("--operator", "0x" + "01" * 20, "--relayer", "0x" + "02" * 20, *publishers,
             "--chain-id", "8453", "--verifying-contract", "0x" + "0c" * 20)  # fmt: skip
    process = NodeProcess(data, dev=False, extra=("--ip-rate", "5", "--account-rate", "1", *roles))
    yield process.start()
    process.kill()


def _when_allowed(node: NodeProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The request, retried while the per-IP limit refuses it (as a polite client does); a
    refusal by the per-account limit is returned."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.request(method, node.url + path, timeout=10, **kwargs)
        by_ip = response.status_code == 429 and "address" in response.json()["error"]["message"]
        if not by_ip or time.monotonic() > deadline:
            return response
        time.sleep(response.json()["error"]["retry_after_seconds"] + 0.05)


def test_the_faucet_exists_only_in_dev_mode(limited: NodeProcess) -> None:
    body = {"address": eth_wallet().address, "amount_usdc": 1_000}
    refused(_when_allowed(limited, "POST", "/v1/dev/faucet", json=body), 404, "NOT_FOUND")
    info = _when_allowed(limited, "GET", "/v1/info").json()
    assert info["dev"] is False


def test_the_per_ip_rate_limit_refuses_a_burst(limited: NodeProcess) -> None:
    _when_allowed(limited, "GET", "/health")
    answers = [httpx.get(limited.url + "/v1/info", timeout=10) for _ in range(30)]
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 200 and 429 in statuses, statuses
    error = refused(answers[statuses.index(429)], 429, "RATE_LIMITED")
    assert 0 < error["retry_after_seconds"] <= 1
    time.sleep(error["retry_after_seconds"] + 0.3)  # the bucket refills
    assert httpx.get(limited.url + "/v1/info", timeout=10).status_code == 200


def test_forged_commands_do_not_use_up_the_accounts_rate_limit(limited: NodeProcess) -> None:
    with Client(limited.url, eth_wallet()) as victim:
        mallory = eth_wallet()
        info = _when_allowed(limited, "GET", "/v1/info").json()  # the domain, politely
        domain = victim._domain = Domain(info["chain_id"], info["verifying_contract"])
        for _ in range(3):
            order = victim.order(MARKET, "buy", size_base_quantums=SIZE, price_quantums=USDC)
            forged = envelope(order, mallory.sign(order, domain))
            answer = _when_allowed(limited, "POST", "/v1/commands", json=forged)
            assert answer.status_code in (403, 429)
        own = victim.signed(victim.order(MARKET, "buy", size_base_quantums=SIZE,
                                         price_quantums=USDC))  # fmt: skip
        answer = _when_allowed(limited, "POST", "/v1/commands", json=own)
        assert answer.json()["error"]["code"] != "RATE_LIMITED", answer.json()


def test_a_batch_weighs_one_per_command_against_the_per_ip_limit(tmp_path: Path) -> None:
    """Each command of a batch is a signature the node must recover: a batch of forged
    commands (no account's rate limit pays for them) costs its sender one per command, not
    the 20 of its arrival; one heavier than the limit's whole burst could never pass, and is
    refused as too large at once."""
    process = NodeProcess(tmp_path / "node", extra=("--ip-rate", "100", "--account-rate", "0"))
    process.start()
    try:
        with Client(process.url, eth_wallet()) as victim:
            info = _when_allowed(process, "GET", "/v1/info").json()
            domain = victim._domain = Domain(info["chain_id"], info["verifying_contract"])
            mallory = eth_wallet()

            def forged(count: int) -> dict[str, Any]:
                orders = (victim.order(MARKET, "buy", size_base_quantums=SIZE,
                                       price_quantums=USDC) for _ in range(count))  # fmt: skip
                return {"commands": [envelope(o, mallory.sign(o, domain)) for o in orders]}

            batch, too_large = forged(150), forged(201)  # the burst is 200
            error = refused(post(process, too_large, "/v1/commands/batch"), 413, "BATCH_TOO_LARGE")
            assert error["max_commands"] == 200
            answer = _when_allowed(process, "POST", "/v1/commands/batch", json=batch)
            assert answer.status_code == 200, answer.text
            results = answer.json()["results"]
            assert len(results) == 150  # each refused on its own: a key that is no agent
            assert {(r["http_status"], r["error"]["code"]) for r in results} == {
                (403, "AGENT_NOT_AUTHORIZED")
            }
            again = post(process, batch, "/v1/commands/batch")  # 150 more at once: over
            error = refused(again, 429, "RATE_LIMITED")
            assert int(again.headers["retry-after"]) >= 1 and error["retry_after_seconds"] > 0
    finally:
        process.kill()
