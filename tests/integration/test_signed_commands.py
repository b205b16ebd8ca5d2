"""Signed commands end to end (SPEC §3), short of the network: a wallet signs with eth-account,
``signing.authenticate`` recovers the key, the engine applies what it is handed. Each attack is
rejected with its stable code, and the venue's checks confirm it changed nothing but the nonce."""

from __future__ import annotations

import dataclasses

from eth_account import Account
from eth_account.messages import encode_typed_data

from clearhouse.app import signing
from clearhouse.app.signing import Domain
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import Address, Side
from clearhouse.core.messages import AgentSigned, AuthorizeAgent, Command, OrderRested
from clearhouse.core.units import NS_PER_HOUR
from helpers import BTC_PERP, ONE_BTC, PRICE, USDC, Venue, of_type

DOMAIN = Domain(chain_id=42_161, verifying_contract="0x5fbdb2315678afecb367f032d93f642f64180aa3")
ALICE_KEY = "0x" + "a1" * 32
AGENT_KEY = "0x" + "a2" * 32
MALLORY_KEY = "0x" + "66" * 32


def address(key: str) -> Address:
    return Address(Account.from_key(key).address.lower())


def funded_venue() -> Venue:
    """The default venue, with alice's account being the address of ALICE_KEY."""
    venue = Venue()
    venue.signers["alice"].address = address(ALICE_KEY)
    venue.block([venue.deposit("alice", 100_000 * USDC)])
    return venue


def sign(command: Command, key: str, domain: Domain = DOMAIN) -> bytes:
    document = signing.typed_data(command, domain)
    signature: bytes = Account.sign_message(encode_typed_data(full_message=document), key).signature
    return signature


def submit(venue: Venue, command: Command, signature: bytes) -> list[object]:
    """What a node does: authenticate, then hand the engine what the signature proves."""
    return list(venue.run(signing.authenticate(command, signature, DOMAIN)))  # type: ignore[arg-type]


def reason(events: list[object]) -> RejectReason | None:
    first = events[0]
    return getattr(first, "reason", None)


def order(venue: Venue) -> Command:
    return venue.order("alice", BTC_PERP, Side.BUY, ONE_BTC, PRICE - 100 * USDC)


def test_a_signed_order_rests_and_its_replay_is_refused() -> None:
    venue = funded_venue()
    command = order(venue)
    signature = sign(command, ALICE_KEY)
    assert of_type(submit(venue, command, signature), OrderRested)  # type: ignore[arg-type]
    assert reason(submit(venue, command, signature)) is RejectReason.NONCE_ALREADY_USED


def test_a_wrong_chain_or_verifying_contract_does_not_authenticate_as_the_account() -> None:
    venue = funded_venue()
    for domain in (
        Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract),
        Domain(chain_id=DOMAIN.chain_id, verifying_contract="0x" + "22" * 20),
    ):
        command = order(venue)
        events = submit(venue, command, sign(command, ALICE_KEY, domain))
        assert reason(events) is RejectReason.AGENT_NOT_AUTHORIZED  # some other key: no agent


def test_another_accounts_signature_is_refused() -> None:
    venue = funded_venue()
    command = order(venue)
    assert reason(submit(venue, command, sign(command, MALLORY_KEY))) is (
        RejectReason.AGENT_NOT_AUTHORIZED
    )
    assert address(MALLORY_KEY) not in venue.state.nonces  # a foreign key leaves no trace


def test_an_agent_trades_but_may_not_withdraw() -> None:
    venue = funded_venue()
    authorize = AuthorizeAgent(
        signer=address(ALICE_KEY), nonce=venue.signers["alice"].nonce(venue.now),
        expiry_ns=venue.now + NS_PER_HOUR,
        agent=address(AGENT_KEY), valid_until_ns=venue.now + 24 * NS_PER_HOUR,
    )  # fmt: skip
    submit(venue, authorize, sign(authorize, ALICE_KEY))
    command = dataclasses.replace(order(venue), nonce=venue.now // 1_000_000 + 7)
    found = signing.authenticate(command, sign(command, AGENT_KEY), DOMAIN)
    assert isinstance(found, AgentSigned)
    assert of_type(submit(venue, command, sign(command, AGENT_KEY)), OrderRested)  # type: ignore[arg-type]
    withdraw = dataclasses.replace(venue.withdraw("alice", 10 * USDC), nonce=command.nonce + 1)
    assert reason(submit(venue, withdraw, sign(withdraw, AGENT_KEY))) is (
        RejectReason.AGENT_NOT_ALLOWED
    )


def test_an_expired_order_and_a_nonce_outside_the_window_are_refused() -> None:
    venue = funded_venue()
    expired = dataclasses.replace(order(venue), expiry_ns=venue.now - 1)
    assert reason(submit(venue, expired, sign(expired, ALICE_KEY))) is RejectReason.COMMAND_EXPIRED
    old = dataclasses.replace(order(venue), nonce=venue.now // 1_000_000 - 3 * 24 * 3_600_000)
    assert reason(submit(venue, old, sign(old, ALICE_KEY))) is RejectReason.NONCE_TOO_OLD
    new = dataclasses.replace(order(venue), nonce=venue.now // 1_000_000 + 2 * 24 * 3_600_000)
    assert reason(submit(venue, new, sign(new, ALICE_KEY))) is RejectReason.NONCE_TOO_NEW
