"""The custody contract (``contracts/Custody.vy``, SPEC §14) on py-evm through titanoboa: the
trees Python builds (``core/sum_tree.py``, ``app/custody.py``) verify on chain; wrong proofs,
double claims, early claims, claims against a voided epoch, commits by anyone but the sequencer,
an insolvent commit and the escape hatch before its delay are refused; the contract never pays
more than it holds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import BTC_PERP, BUY, ONE_BTC, PRICE, SELL, USDC, Venue, accepted

from clearhouse.app.custody import (
    Liability,
    Withdrawal,
    liabilities,
    withdrawals_in,
    withdrawals_tree,
)
from clearhouse.core import limits
from clearhouse.core.hashing import keccak
from clearhouse.core.ids import Address
from clearhouse.core.sum_tree import (
    AMOUNT_MAX,
    DEPTH_MAX,
    NODE_TAG,
    Node,
    SumTree,
    build,
    liability_leaf,
    salt_for,
    withdrawal_leaf,
)

boa = pytest.importorskip(
    "boa", reason="titanoboa is not installed: pip install -e '.[custody]' (vyper, titanoboa)"
)

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
WINDOW = 3_600
DELAY = 7 * 86_400
SEED = bytes(range(32))
ZERO = bytes(32)


def _address(text: str) -> Address:
    return Address(str(text).lower())


class Custody:
    """The token, the contract and its roles, in a fresh anchor of the chain."""

    def __init__(self) -> None:
        self.sequencer = boa.env.generate_address("sequencer")
        self.guardian = boa.env.generate_address("guardian")
        self.token = boa.load(str(CONTRACTS / "test" / "Token.vy"))
        self.contract = boa.load(
            str(CONTRACTS / "Custody.vy"), self.token.address, self.sequencer, self.guardian,
            WINDOW, DELAY,
        )  # fmt: skip

    def deposit(self, owner: Any, amount: int, number: int = 0) -> int:
        self.token.mint(owner, amount)
        with boa.env.prank(owner):
            self.token.approve(self.contract.address, amount)
            return int(self.contract.deposit(amount, number))

    def commit(self, epoch: int, *, withdrawals: SumTree | None = None,
               owed: SumTree | None = None, last_deposit_id: int = 0) -> None:  # fmt: skip
        paid = (withdrawals or build([])).root
        held = (owed or build([])).root
        with boa.env.prank(self.sequencer):
            self.contract.commit(epoch, ZERO, paid.hash, paid.sum, held.hash, held.sum,
                                 last_deposit_id)  # fmt: skip

    @property
    def held(self) -> int:
        return int(self.token.balanceOf(self.contract.address))


def _siblings(tree: SumTree, index: int) -> list[tuple[bytes, int]]:
    return [(s.hash, s.sum) for s in tree.proof(index)]


@pytest.fixture
def custody() -> Iterator[Custody]:
    with boa.env.anchor():
        yield Custody()


def _withdrawals(recipients: Sequence[Any], amounts: Sequence[int]) -> tuple[list[Node], SumTree]:
    leaves = [withdrawal_leaf(withdrawal_id=100 + n, recipient=_address(r), amount=a)
              for n, (r, a) in enumerate(zip(recipients, amounts, strict=True))]  # fmt: skip
    return leaves, build(leaves)


def test_a_deposit_has_a_unique_id_in_its_event(custody: Custody) -> None:
    alice = boa.env.generate_address("alice")
    assert custody.deposit(alice, 5 * USDC, 3) == 1
    (log,) = [e for e in custody.contract.get_logs() if hasattr(e, "deposit_id")]
    assert (log.deposit_id, _address(log.owner), log.subaccount_number, log.amount) == (
        1, _address(alice), 3, 5 * USDC)  # fmt: skip
    assert custody.deposit(alice, 7 * USDC) == 2
    assert custody.held == 12 * USDC
    # What the engine would refuse is refused here, so every id can be credited in order.
    for amount, number, reason in ((0, 0, "bad amount"), (limits.amount_quantums_max + 1, 0,
                                   "bad amount"), (1, limits.subaccounts_per_account_max,
                                   "bad subaccount")):  # fmt: skip
        custody.token.mint(alice, amount)
        with boa.env.prank(alice), boa.reverts(reason):
            custody.token.approve(custody.contract.address, amount)
            custody.contract.deposit(amount, number)


def test_the_contract_states_the_engine_bounds() -> None:
    text = (CONTRACTS / "Custody.vy").read_text()
    assert f"SUBACCOUNTS_MAX: constant(uint256) = {limits.subaccounts_per_account_max}" in text
    assert "DEPOSIT_MAX: constant(uint256) = 10**24" in text
    assert limits.amount_quantums_max == 10**24
    assert f"DEPTH_MAX: constant(uint256) = {DEPTH_MAX}" in text
    assert f"NODE_TAG: constant(uint256) = {NODE_TAG}" in text


def test_only_the_sequencer_commits_the_next_epoch_and_only_when_covered(custody: Custody) -> None:
    alice = boa.env.generate_address("alice")
    custody.deposit(alice, 100)
    owed = build([liability_leaf(owner=_address(alice), subaccount_number=0, amount=100,
                                 salt=SEED)])  # fmt: skip
    with boa.env.prank(alice), boa.reverts("not the sequencer"):
        custody.contract.commit(1, ZERO, ZERO, 0, owed.root.hash, 100, 1)
    with boa.reverts("not the next epoch"):
        custody.commit(2, owed=owed, last_deposit_id=1)
    with boa.reverts("credits a deposit never made"):
        custody.commit(1, owed=owed, last_deposit_id=2)
    # Deposit 1 not yet credited: it is not the liabilities' to count.
    with boa.reverts("liabilities exceed assets"):
        custody.commit(1, owed=owed, last_deposit_id=0)
    too_much = build([liability_leaf(owner=_address(alice), subaccount_number=0, amount=101,
                                     salt=SEED)])  # fmt: skip
    with boa.reverts("liabilities exceed assets"):
        custody.commit(1, owed=too_much, last_deposit_id=1)
    custody.commit(1, owed=owed, last_deposit_id=1)
    assert custody.contract.last_epoch() == 1


def test_a_withdrawal_is_paid_once_after_the_window_and_only_with_its_proof(
    custody: Custody,
) -> None:
    alice, bob = (boa.env.generate_address(n) for n in ("alice", "bob"))
    custody.deposit(alice, 1_000)
    _, tree = _withdrawals([alice, bob, alice], [300, 0, 200])
    custody.commit(1, withdrawals=tree, last_deposit_id=1)
    assert custody.contract.outstanding_withdrawals() == 500

    def claim(index: int, recipient: Any, amount: int, siblings: Any = None,
              epoch: int = 1, withdrawal_id: int | None = None) -> None:  # fmt: skip
        custody.contract.claim_withdrawal(
            epoch, 100 + index if withdrawal_id is None else withdrawal_id, recipient, amount,
            index, _siblings(tree, index) if siblings is None else siblings,
        )  # fmt: skip

    with boa.reverts("in the dispute window"):
        claim(0, alice, 300)
    boa.env.time_travel(seconds=WINDOW)
    with boa.reverts("no such epoch"):
        claim(0, alice, 300, epoch=2)
    for forged in (
        {"amount": 301},
        {"recipient": bob},
        {"withdrawal_id": 102},
        {"siblings": [(h, s + 1) for h, s in _siblings(tree, 0)]},
        {"siblings": _siblings(tree, 0)[:-1]},
    ):
        with boa.reverts():
            claim(**{"index": 0, "recipient": alice, "amount": 300, **forged})
    claim(0, alice, 300)
    assert custody.token.balanceOf(alice) == 300
    with boa.reverts("already claimed"):
        claim(0, alice, 300)
    claim(2, alice, 200)
    assert custody.held == 500
    assert custody.contract.outstanding_withdrawals() == 0


def test_the_guardian_voids_the_latest_epoch_within_its_window(custody: Custody) -> None:
    alice = boa.env.generate_address("alice")
    custody.deposit(alice, 1_000)
    _, tree = _withdrawals([alice], [1_000])
    custody.commit(1, withdrawals=tree, last_deposit_id=1)
    with boa.env.prank(alice), boa.reverts("not the guardian"):
        custody.contract.void(1)
    with boa.env.prank(custody.guardian):
        custody.contract.void(1)
    assert custody.contract.last_epoch() == 0
    assert custody.contract.outstanding_withdrawals() == 0
    boa.env.time_travel(seconds=WINDOW)
    with boa.reverts("no such epoch"):
        custody.contract.claim_withdrawal(1, 100, alice, 1_000, 0, _siblings(tree, 0))
    # The sequencer commits epoch 1 again (here: nothing withdrawn); the old proof fails.
    custody.commit(1, last_deposit_id=1)
    boa.env.time_travel(seconds=WINDOW)
    with boa.reverts("bad proof"):
        custody.contract.claim_withdrawal(1, 100, alice, 1_000, 0, _siblings(tree, 0))
    with boa.env.prank(custody.guardian), boa.reverts("dispute window over"):
        custody.contract.void(1)


def test_the_escape_hatch_pays_each_leaf_once_after_the_delay(custody: Custody) -> None:
    owners = [boa.env.generate_address(f"owner-{n}") for n in range(5)]
    amounts = [100, 0, 250, 75, 5]
    for owner, amount in zip(owners, amounts, strict=True):
        custody.deposit(owner, amount or 1)
    salts = [salt_for(SEED, owner=_address(o), subaccount_number=0) for o in owners]
    leaves = [liability_leaf(owner=_address(o), subaccount_number=0, amount=a, salt=s)
              for o, a, s in zip(owners, amounts, salts, strict=True)]  # fmt: skip
    owed = build(leaves)
    custody.commit(1, owed=owed, last_deposit_id=5)
    late = custody.deposit(owners[0], 40)  # after the epoch: not credited

    def escape(index: int, amount: int | None = None, salt: bytes | None = None) -> None:
        custody.contract.escape(
            owners[index], 0, amounts[index] if amount is None else amount,
            salts[index] if salt is None else salt, index, _siblings(owed, index),
        )  # fmt: skip

    boa.env.time_travel(seconds=DELAY - 1)
    with boa.reverts("escape hatch closed"):
        escape(0)
    with boa.reverts("not frozen"):
        custody.contract.refund_deposit(late)
    boa.env.time_travel(seconds=1)
    with boa.reverts("bad proof"):
        escape(0, amount=101)
    with boa.reverts("bad proof"):
        escape(0, salt=bytes(32))
    escape(0)
    assert custody.contract.frozen()
    assert custody.token.balanceOf(owners[0]) == 100
    with boa.reverts("already claimed"):
        escape(0)
    with boa.reverts("frozen"):
        custody.commit(2, owed=owed, last_deposit_id=5)
    for index in (1, 2, 3, 4):
        escape(index)
    # Deposits the last epoch had not credited go back to their depositors; credited ones not.
    with boa.reverts("credited"):
        custody.contract.refund_deposit(5)
    custody.contract.refund_deposit(late)
    with boa.reverts("already refunded"):
        custody.contract.refund_deposit(late)
    assert custody.token.balanceOf(owners[0]) == 140
    assert custody.held == 1  # owner 1's deposit: its liability was 0 (a loss, say)


def test_short_assets_are_shared_pro_rata_and_never_overpaid(custody: Custody) -> None:
    owners = [boa.env.generate_address(f"owner-{n}") for n in range(3)]
    amounts = [600, 300, 100]
    for owner, amount in zip(owners, amounts, strict=True):
        custody.deposit(owner, amount)
    leaves = [liability_leaf(owner=_address(o), subaccount_number=0, amount=a, salt=SEED)
              for o, a in zip(owners, amounts, strict=True)]  # fmt: skip
    owed = build(leaves)
    custody.commit(1, owed=owed, last_deposit_id=3)
    custody.token.slash(custody.contract.address, 500)  # the token loses half of it
    boa.env.time_travel(seconds=DELAY)
    custody.contract.freeze()
    assert (custody.contract.escape_assets(), custody.contract.escape_liabilities()) == (500, 1000)
    for index, owner in enumerate(owners):
        custody.contract.escape(owner, 0, amounts[index], SEED, index, _siblings(owed, index))
        assert custody.token.balanceOf(owner) == amounts[index] // 2
    assert custody.held == 0


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(0, AMOUNT_MAX // 8), min_size=1, max_size=9))
def test_every_python_proof_verifies_on_chain(amounts: list[int]) -> None:
    with boa.env.anchor():
        custody = Custody()
        owners = [boa.env.generate_address(f"owner-{n}") for n in range(len(amounts))]
        _, tree = _withdrawals(owners, amounts)
        custody.token.mint(custody.contract.address, sum(amounts) + 1)  # past one deposit's cap
        custody.commit(1, withdrawals=tree)
        boa.env.time_travel(seconds=WINDOW)
        for index, owner in enumerate(owners):
            custody.contract.claim_withdrawal(1, 100 + index, owner, amounts[index], index,
                                              _siblings(tree, index))  # fmt: skip
        assert custody.held == 1


def test_an_engine_epoch_is_paid_on_chain(custody: Custody) -> None:
    """The real engine: traders' deposits mirrored on chain, a trade, a move and a withdrawal;
    the epoch ``app/custody.py`` builds is committed, its withdrawal claimed, and after the
    delay every subaccount escapes with its proof; the contract never goes below zero."""
    venue = Venue(traders=("alice", "bob", "carol"), quote_per_trader=10_000 * USDC)
    for name in ("alice", "bob", "carol"):
        custody.deposit(venue.address(name), 10_000 * USDC)
    accepted(venue, venue.order("bob", BTC_PERP, SELL, ONE_BTC // 100, PRICE))
    accepted(venue, venue.market_order("alice", BTC_PERP, BUY, ONE_BTC // 100))
    venue.settle_prices(BTC_USD=PRICE * 102 // 100)
    accepted(venue, venue.withdraw("carol", 2_500 * USDC))
    owed = liabilities(venue.engine, SEED)
    paid = withdrawals_tree(withdrawals_in((b.height, b.events) for b in venue.recorded))
    custody.commit(1, withdrawals=paid.tree, owed=owed.tree,
                   last_deposit_id=venue.state.last_deposit_id)  # fmt: skip
    boa.env.time_travel(seconds=WINDOW)
    (withdrawal,) = paid.leaves
    assert isinstance(withdrawal, Withdrawal)
    custody.contract.claim_withdrawal(1, withdrawal.withdrawal_id, withdrawal.recipient,
                                      withdrawal.amount, 0, _siblings(paid.tree, 0))  # fmt: skip
    assert custody.token.balanceOf(venue.address("carol")) == 2_500 * USDC
    boa.env.time_travel(seconds=DELAY)
    total = 0
    for index, leaf in enumerate(owed.leaves):
        assert isinstance(leaf, Liability)
        custody.contract.escape(leaf.owner, leaf.subaccount_number, leaf.amount, leaf.salt,
                                index, _siblings(owed.tree, index))  # fmt: skip
        total += leaf.amount
        assert custody.held >= 0
    assert total == owed.tree.root.sum
    # What stays is what the venue itself earned (fees) and never owed anyone.
    assert custody.held == 30_000 * USDC - 2_500 * USDC - total


def test_a_withdrawal_committed_in_two_epochs_is_paid_once_and_its_second_reserve_stays(
    custody: Custody,
) -> None:
    """Why ``liabilities --epoch N`` (N > 1) must be told where the epoch starts: a withdrawal
    in two epochs' trees is paid once (its id), but reserved twice, and the contract cannot
    tell the second reserve from a withdrawal still owed, so it never frees it (review 14: the
    command's --from-height defaulted to 1, which repeats every earlier epoch's withdrawals)."""
    alice = boa.env.generate_address("alice")
    custody.deposit(alice, 1_000)
    _, tree = _withdrawals([alice], [400])
    custody.commit(1, withdrawals=tree, last_deposit_id=1)
    boa.env.time_travel(seconds=WINDOW)
    custody.contract.claim_withdrawal(1, 100, alice, 400, 0, _siblings(tree, 0))
    custody.commit(2, withdrawals=tree, last_deposit_id=1)  # epoch 1's withdrawal again
    boa.env.time_travel(seconds=WINDOW)
    with boa.reverts("already claimed"):
        custody.contract.claim_withdrawal(2, 100, alice, 400, 0, _siblings(tree, 0))
    assert custody.token.balanceOf(alice) == 400  # never paid twice...
    assert custody.contract.outstanding_withdrawals() == 400  # ...but 400 reserved for good


def _calldata(signature: str, types: list[str], values: list[Any]) -> bytes:
    return keccak(signature.encode())[:4] + abi_encode(types, values)


def test_a_token_hook_cannot_reenter_the_contract() -> None:
    """A token that calls its sender back after a deposit's tokens moved: frozen from that
    hook, the contract counted the deposit among the assets the liabilities share (it was not
    yet recorded, so not yet reserved as uncredited) and refunded it too, so the last escape
    found nothing left (review 14: 500 held for 1,000 owed paid 500 and 0, not 250 each).
    Every entry point is now nonreentrant; a receiver's hook claiming again is refused too."""
    with boa.env.anchor():
        sequencer = boa.env.generate_address("sequencer")
        token = boa.load(str(CONTRACTS / "test" / "HookToken.vy"))
        contract = boa.load(str(CONTRACTS / "Custody.vy"), token.address, sequencer,
                            boa.env.generate_address("guardian"), WINDOW, DELAY)  # fmt: skip
        owners = [boa.env.generate_address(f"owner-{n}") for n in range(2)]
        for owner in owners:
            token.mint(owner, 500)
            with boa.env.prank(owner):
                token.approve(contract.address, 500)
                contract.deposit(500, 0)
        leaves = [liability_leaf(owner=_address(o), subaccount_number=0, amount=500, salt=SEED)
                  for o in owners]  # fmt: skip
        owed = build(leaves)
        with boa.env.prank(sequencer):
            contract.commit(1, ZERO, ZERO, 0, owed.root.hash, owed.root.sum, 2)
        token.slash(contract.address, 500)  # half of it lost: pro rata from here
        attacker = boa.load(str(CONTRACTS / "test" / "Reenter.vy"))
        token.mint(attacker.address, 1_000)
        attacker.approve(token.address, contract.address, 1_000)
        token.hook(attacker.address)
        boa.env.time_travel(seconds=DELAY)
        attacker.arm(contract.address, _calldata("freeze()", [], []))
        attacker.call(
            contract.address,
            _calldata("deposit(uint256,uint256)", ["uint256", "uint256"], [1_000, 0]),
        )
        assert attacker.reentered() and not attacker.succeeded()
        contract.freeze()
        assert (contract.escape_assets(), contract.escape_liabilities()) == (500, 1_000)
        contract.refund_deposit(3)
        for index, owner in enumerate(owners):
            contract.escape(owner, 0, 500, SEED, index, _siblings(owed, index))
            assert token.balanceOf(owner) == 250
    # A receiver whose hook claims its withdrawal again, from inside the first payment.
    with boa.env.anchor():
        token = boa.load(str(CONTRACTS / "test" / "HookToken.vy"))
        contract = boa.load(str(CONTRACTS / "Custody.vy"), token.address, sequencer,
                            boa.env.generate_address("guardian"), WINDOW, DELAY)  # fmt: skip
        attacker = boa.load(str(CONTRACTS / "test" / "Reenter.vy"))
        token.hook(attacker.address)
        token.mint(contract.address, 1_000)
        paid = build([withdrawal_leaf(withdrawal_id=7, recipient=_address(attacker.address),
                                      amount=400)])  # fmt: skip
        with boa.env.prank(sequencer):
            contract.commit(1, ZERO, paid.root.hash, 400, ZERO, 0, 0)
        boa.env.time_travel(seconds=WINDOW)
        claim = [1, 7, attacker.address, 400, 0, _siblings(paid, 0)]
        attacker.arm(contract.address, _calldata(
            "claim_withdrawal(uint256,uint256,address,uint256,uint256,(bytes32,uint256)[])",
            ["uint256", "uint256", "address", "uint256", "uint256", "(bytes32,uint256)[]"],
            claim,
        ))  # fmt: skip
        contract.claim_withdrawal(*claim)
        assert attacker.reentered() and not attacker.succeeded()
        assert token.balanceOf(attacker.address) == 400
