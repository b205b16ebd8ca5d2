"""EIP-712 for commands (SPEC §3): the EIP's own vectors, eth-account as a wallet signs, and the
domain's protections (chain, verifying contract), tampering and malleability."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from clearhouse.app import signing
from clearhouse.app.signing import BadSignature, Domain
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.hashing import keccak
from clearhouse.core.ids import Address, AssetId, MarketId, OracleId, Side
from clearhouse.core.messages import (
    AgentSigned,
    BidPortfolio,
    CancelAll,
    Command,
    ListMarket,
    PlaceOrder,
    ReportSurface,
    TimeInForce,
    Withdraw,
)
from clearhouse.core.payoffs import call_spread
from clearhouse.sim.venue import BTC_SATS, USDC, btc_perp, short_option, synthetic_surface
from data.loaders import DATA_DIR, requires_data

VECTORS = "vectors/eip712_vectors.json"
DOMAIN = Domain(chain_id=42_161, verifying_contract="0x5fbdb2315678afecb367f032d93f642f64180aa3")
KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ACCOUNT = Account.from_key(KEY)
SIGNER = Address(ACCOUNT.address.lower())
T0 = 1_767_225_600_000_000_000


def vectors() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA_DIR / VECTORS).read_text())
    return document


def commands() -> list[Command]:
    common: dict[str, Any] = {"signer": SIGNER, "nonce": T0 // 1_000_000, "expiry_ns": T0 + 60}
    return [
        PlaceOrder(
            **common, subaccount_number=0, market_id=MarketId("BTC-PERP"), side=Side.SELL,
            size_base_quantums=BTC_SATS // 10, price_quantums=60_123 * USDC,
            time_in_force=TimeInForce.POST_ONLY, client_order_id=2**63 - 1,
        ),
        Withdraw(**common, subaccount_number=3, asset_id=AssetId("USDC"), amount_quantums=7),
        CancelAll(**common, subaccount_number=0, market_id=None),
        CancelAll(**common, subaccount_number=0, market_id=MarketId("ETH-PERP")),
        BidPortfolio(**common, subaccount_number=1, owner=Address("0x" + "ab" * 20),
                     owner_number=2, fraction_ppm=250_000),
        ReportSurface(**common, oracle_id=OracleId("BTC-USD"), timestamp_ns=T0,
                      slices=synthetic_surface(T0)),
        ListMarket(**common, params=btc_perp()),
        ListMarket(**common, params=short_option(
            MarketId("BTC-CS"), call_spread(58_000 * USDC, 62_000 * USDC), T0 + 10**12)),
    ]  # fmt: skip


# ── The EIP's vectors ────────────────────────────────────────────────────────────────────────


@requires_data(VECTORS)
def test_type_encoding_and_hashes_match_the_vectors() -> None:
    cases = vectors()["type_hash"]
    assert cases
    for case in cases:
        types = case["types"]
        assert signing.encode_type(types, case["primary_type"]) == case["encoded_type"]
        expected = bytes.fromhex(case["expected_hash"].removeprefix("0x"))
        assert signing.type_hash(types, case["primary_type"]) == expected


@requires_data(VECTORS)
def test_encode_data_and_hash_struct_match_the_vectors() -> None:
    cases = vectors()["encode_data_hash_struct"]
    assert cases
    for case in cases:
        args = (case["types"], case["primary_type"], case["message"])
        assert signing.encode_data(*args).hex() == case["expected_encode_data"]
        assert signing.hash_struct(*args).hex() == case["expected_hash_struct"]


@requires_data(VECTORS)
def test_signatures_of_the_vectors_recover_their_signers() -> None:
    cases = vectors()["sign_typed_data"]
    assert cases
    for case in cases:
        domain_fields = [f for f in signing.DOMAIN_FIELDS if f[0] in case["domain"]]
        domain_types = {"EIP712Domain": [{"name": n, "type": t} for n, t in domain_fields]}
        separator = signing.hash_struct(domain_types, "EIP712Domain", case["domain"])
        struct = signing.hash_struct(case["types"], case["primaryType"], case["message"])
        message_hash = keccak(b"\x19\x01" + separator + struct)
        signature = bytes.fromhex(case["expected_signature"].removeprefix("0x"))
        recovered = Account._recover_hash(message_hash, signature=signature)
        assert recovered == case["signer_address"]
        # and eth-account, signing as a wallet does, makes the vector's signature
        signed = Account.sign_typed_data(
            case["private_key"], case["domain"], case["types"], case["message"]
        )
        assert signed.signature == signature


# ── Commands, as a wallet signs them ─────────────────────────────────────────────────────────


@pytest.mark.parametrize("command", commands(), ids=lambda c: type(c).__name__)
def test_a_command_signed_by_eth_account_recovers_to_its_signer(command: Command) -> None:
    document = signing.typed_data(command, DOMAIN)
    signed = Account.sign_message(encode_typed_data(full_message=document), KEY)
    assert signed.message_hash == signing.digest(command, DOMAIN)
    assert signing.recover(command, signed.signature, DOMAIN).lower() == SIGNER


def test_another_chain_or_contract_recovers_another_address() -> None:
    command = commands()[0]
    signature = _sign(command, DOMAIN)
    elsewhere = (
        Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract),
        Domain(chain_id=DOMAIN.chain_id, verifying_contract="0x" + "11" * 20),
    )
    for domain in elsewhere:
        assert signing.recover(command, signature, domain).lower() != SIGNER


def test_a_changed_field_recovers_another_address() -> None:
    command = commands()[0]
    assert isinstance(command, PlaceOrder)
    signature = _sign(command, DOMAIN)
    for change in ({"price_quantums": command.price_quantums + 1}, {"side": Side.BUY},
                   {"subaccount_number": 1}, {"nonce": command.nonce + 1}):  # fmt: skip
        tampered = dataclasses.replace(command, **change)
        assert signing.recover(tampered, signature, DOMAIN).lower() != SIGNER


def test_malleable_and_malformed_signatures_are_refused() -> None:
    command = commands()[0]
    signature = _sign(command, DOMAIN)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    order = 2 * signing.SECP256K1_HALF_ORDER + 1
    flipped = r + (order - s).to_bytes(32, "big") + bytes([55 - v])  # the other valid (r, s')
    with pytest.raises(BadSignature):
        signing.recover(command, flipped, DOMAIN)
    for bad in (signature[:64], signature + b"\0", signature[:64] + bytes([29])):
        with pytest.raises(BadSignature):
            signing.recover(command, bad, DOMAIN)


def _sign(command: Command, domain: Domain) -> bytes:
    document = signing.typed_data(command, domain)
    signature: bytes = Account.sign_message(encode_typed_data(full_message=document), KEY).signature
    return signature


# ── Authentication: what the core sees ───────────────────────────────────────────────────────


def test_the_accounts_key_gives_the_command_and_another_key_an_agent_signed_one() -> None:
    command = commands()[0]
    assert signing.authenticate(command, _sign(command, DOMAIN), DOMAIN) == command
    agent_key = "0x" + "11" * 32
    document = signing.typed_data(command, DOMAIN)
    by_agent = Account.sign_message(encode_typed_data(full_message=document), agent_key)
    found = signing.authenticate(command, by_agent.signature, DOMAIN)
    assert isinstance(found, AgentSigned) and found.command == command
    assert found.agent == Account.from_key(agent_key).address.lower()


def test_a_batch_in_a_process_pool_equals_one_by_one() -> None:
    items = [(c, _sign(c, DOMAIN)) for c in commands()]
    items.append((commands()[1], _sign(commands()[0], DOMAIN)))  # another command's signature
    items.append((commands()[0], b"\x01" * 10))  # not a signature
    alone = signing.authenticate_batch(items, DOMAIN)
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = signing.authenticate_batch(items, DOMAIN, pool, chunk=2)
    assert [repr(x) for x in pooled] == [repr(x) for x in alone]
    assert alone[: len(commands())] == commands()
    assert isinstance(alone[-2], AgentSigned)  # recovers some other key: the core refuses it
    assert isinstance(alone[-1], BadSignature)


# ── Review regressions ───────────────────────────────────────────────────────────────────────


def test_an_address_has_one_spelling_so_a_rewritten_copy_does_not_verify() -> None:
    """Another case or zero padding of an address would hash the same (bytes.fromhex takes
    both): a copy sent first would burn the signed command's nonce. Such copies are refused."""
    command = commands()[4]  # BidPortfolio: an owner address besides the signer
    assert isinstance(command, BidPortfolio)
    signature = _sign(command, DOMAIN)
    for owner in (command.owner.upper().replace("0X", "0x"), "0x00" + command.owner[2:]):
        rewritten = dataclasses.replace(command, owner=Address(owner))
        with pytest.raises(InvalidArgument):
            signing.digest(rewritten, DOMAIN)
        with pytest.raises(InvalidArgument):
            signing.authenticate(rewritten, signature, DOMAIN)
    checksummed = dataclasses.replace(command, signer=Address(ACCOUNT.address))
    with pytest.raises(InvalidArgument):
        signing.authenticate(checksummed, signature, DOMAIN)


def test_signatures_that_are_not_bytes_are_bad_signatures_and_do_not_stop_a_batch() -> None:
    command = commands()[0]
    good = _sign(command, DOMAIN)
    for bad in (None, "0x" + good.hex(), 5):
        with pytest.raises(BadSignature):
            signing.recover(command, bad, DOMAIN)  # type: ignore[arg-type]
    assert signing.recover(command, memoryview(good), DOMAIN) == SIGNER  # type: ignore[arg-type]
    found = signing.authenticate_batch([(command, good), (command, None)], DOMAIN)  # type: ignore[list-item]
    assert found[0] == command and isinstance(found[1], BadSignature)


def test_a_malformed_domain_or_an_int_past_256_bits_is_an_input_error() -> None:
    for chain_id, contract in ((1, "0x" + "zz" * 20), (1, "0x1234"), (0, "0x" + "11" * 20)):
        with pytest.raises(InvalidArgument):
            Domain(chain_id=chain_id, verifying_contract=contract)
    command = dataclasses.replace(commands()[0], client_order_id=2**255)
    with pytest.raises(InvalidArgument):
        signing.digest(command, DOMAIN)


def test_typed_data_hands_out_copies_of_the_cached_types() -> None:
    command = commands()[0]
    before = signing.digest(command, DOMAIN)
    signing.typed_data(command, DOMAIN)["types"]["PlaceOrder"].pop()
    assert signing.digest(command, DOMAIN) == before
