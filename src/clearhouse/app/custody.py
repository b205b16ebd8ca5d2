"""What the custody contract (SPEC §14, ``contracts/Custody.vy``) is given each epoch, built from
the engine: the **proof of liabilities** (a Merkle sum tree over every subaccount's liability,
salted) and the **withdrawals tree** (each quote withdrawal of the epoch's blocks), both hashed
by ``core/sum_tree.py``; the JSON documents a user receives, and their verification.

A subaccount's **liability** is what the venue owes it in the quote token the contract holds:
``max(equity − haircut value of its volatile collateral, 0)``, i.e. its quote balance plus
unrealized PnL and pending funding at the marks, in quote quantums. Negative equity counts as 0:
it is bad debt, which the engine resolves (insurance fund, ADL, the ``deficit`` account) and which
no other user's liability may absorb. Volatile collateral is not the contract's token and is left
out (it is owed in kind). System accounts (insurance fund, fee pool) and the fund's book
(``FUND_BOOK``) are the venue's own and are not liabilities. A vault's subaccount is owed to its
shareholders: one leaf per shareholder, its pro-rata share rounded down, under a subaccount
number of its own (``VAULT_SHARES_NUMBER``, ``OPTIONS_VAULT_SHARES_NUMBER``), so that the escape
hatch pays each holder rather than the vault's address, which no one holds a key to.

A **withdrawal** is a ``Transferred`` event of the quote asset from a subaccount to ``custody``
with cause ``withdrawal`` (what ``Withdraw`` leaves); it is paid to the subaccount's owner. Its id
is ``height << 32 | position of the event in its block``: unique across the journal, so the
contract can refuse a second claim by id alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clearhouse.app.chain import verify as verify_journal
from clearhouse.app.ports import Journal
from clearhouse.core import limits
from clearhouse.core.block import ExecutedBlock
from clearhouse.core.engine import Engine
from clearhouse.core.errors import BadProof, ProofRejected
from clearhouse.core.ids import QUOTE_ASSET, Address, is_address
from clearhouse.core.ledger import CUSTODY, FUND_BOOK, OPTIONS_VAULT, VAULT, Subaccount
from clearhouse.core.messages import Transferred
from clearhouse.core.state import VaultOwner
from clearhouse.core.sum_tree import (
    AMOUNT_MAX,
    DEPTH_MAX,
    SALT_BYTES,
    SUM_MAX,
    Node,
    SumTree,
    build,
    liability_leaf,
    liability_order,
    salt_for,
    verify,
    withdrawal_leaf,
)

LIABILITIES_PROOF_KIND = "clearhouse.liabilities-proof"
WITHDRAWAL_PROOF_KIND = "clearhouse.withdrawal-proof"
EPOCH_KIND = "clearhouse.custody-epoch"
FORMAT_VERSION = 1
WITHDRAWAL_CAUSE = "withdrawal"
EVENT_INDEX_BITS = 32
# The subaccount numbers of vault shares' leaves: past every engine subaccount number (0..127).
VAULT_SHARES_NUMBER = 2**32 + 1
OPTIONS_VAULT_SHARES_NUMBER = 2**32 + 2


@dataclass(frozen=True, slots=True)
class Liability:
    owner: Address
    subaccount_number: int
    amount: int  # quote quantums, ≥ 0
    salt: bytes

    @property
    def leaf(self) -> Node:
        return liability_leaf(
            owner=self.owner, subaccount_number=self.subaccount_number, amount=self.amount,
            salt=self.salt,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Withdrawal:
    withdrawal_id: int
    recipient: Address
    amount: int  # quote quantums

    @property
    def leaf(self) -> Node:
        return withdrawal_leaf(
            withdrawal_id=self.withdrawal_id, recipient=self.recipient, amount=self.amount
        )


@dataclass(frozen=True, slots=True)
class Published:
    """A tree and its leaves in published order (``leaves[i]`` is the tree's leaf ``i``)."""

    tree: SumTree
    leaves: tuple[Liability, ...] | tuple[Withdrawal, ...]


def liabilities(engine: Engine, seed: bytes) -> Published:
    """Every subaccount's liability at the engine's current state, salted from ``seed``, in the
    order of their leaf hashes. A vault's subaccount is owed to its shareholders, so it becomes
    one leaf per shareholder (``vault_leaves``); the insurance fund's book is the venue's own."""
    assert len(seed) == SALT_BYTES
    state = engine.state
    vaults = {VAULT: (VAULT_SHARES_NUMBER, state.vault.total_shares, state.vault.owners),
              OPTIONS_VAULT: (OPTIONS_VAULT_SHARES_NUMBER, state.options_vault.total_shares,
                              state.options_vault.owners)}  # fmt: skip
    owed: list[tuple[Address, int, int]] = []
    for subaccount_id in sorted(state.ledger.subaccounts, key=str):
        if subaccount_id == FUND_BOOK:
            continue
        amount = liability_of(engine, state.ledger.subaccounts[subaccount_id])
        vault = vaults.get(subaccount_id)
        if vault is not None and vault[1] > 0:
            owed += vault_leaves(amount, number=vault[0], total_shares=vault[1], owners=vault[2])
        else:
            owed.append((subaccount_id.owner, subaccount_id.number, amount))
    found = [
        Liability(owner, number, amount, salt_for(seed, owner=owner, subaccount_number=number))
        for owner, number, amount in owed
    ]
    leaves = [entry.leaf for entry in found]
    ordered = tuple(found[i] for i in liability_order(leaves))
    return Published(build([entry.leaf for entry in ordered]), ordered)


def liability_of(engine: Engine, subaccount: Subaccount) -> int:
    """``max(equity − haircut value of volatile collateral, 0)``: quote owed, at the marks."""
    risk = engine.risk_of(subaccount)
    collateral_value = risk.settled_collateral - risk.settled_quote  # haircut, ≥ 0
    assert collateral_value >= 0
    return max(risk.equity - collateral_value, 0)


def vault_leaves(
    amount: int, *, number: int, total_shares: int, owners: Mapping[Address, VaultOwner]
) -> list[tuple[Address, int, int]]:
    """A vault's liability split by shares: ``amount × shares // total_shares`` each, rounded
    down (against the holder: the leaves never sum past the vault's liability), under the
    subaccount number ``number`` that no engine subaccount has (so its escape claim is apart)."""
    assert total_shares > 0
    split = [(owner, number, amount * owners[owner].shares // total_shares)
             for owner in sorted(owners) if owners[owner].shares > 0]  # fmt: skip
    assert sum(share for _, _, share in split) <= amount
    return split


def withdrawals_in(blocks: Iterable[tuple[int, Iterable[object]]]) -> list[Withdrawal]:
    """The quote withdrawals among ``(height, events)`` pairs, in journal order."""
    found = []
    for height, events in blocks:
        for position, event in enumerate(events):
            if not isinstance(event, Transferred) or event.target != str(CUSTODY):
                continue
            if event.cause != WITHDRAWAL_CAUSE or event.asset_id != QUOTE_ASSET:
                continue
            assert position < 2**EVENT_INDEX_BITS
            owner = Address(event.source.partition("/")[0])
            assert is_address(owner), event.source
            withdrawal_id = height << EVENT_INDEX_BITS | position
            found.append(Withdrawal(withdrawal_id, owner, event.amount_quantums))
    return found


def withdrawals_of(executed: Iterable[ExecutedBlock]) -> list[Withdrawal]:
    return withdrawals_in((block.header.height, block.events) for block in executed)


def withdrawals_tree(found: Iterable[Withdrawal]) -> Published:
    ordered = tuple(sorted(found, key=lambda w: w.withdrawal_id))
    return Published(build([w.leaf for w in ordered]), ordered)


@dataclass(frozen=True, slots=True)
class Epoch:
    """What one epoch publishes: the commitment the sequencer sends the contract (``document``,
    the arguments of ``commit``), every subaccount's liabilities proof (private: each goes to
    its owner) and every withdrawal's proof (public)."""

    document: dict[str, Any]
    liability_proofs: list[dict[str, Any]]
    withdrawal_proofs: list[dict[str, Any]]


def epoch_from_journal(journal: Journal, seed: bytes, *, epoch: int, from_height: int = 1) -> Epoch:
    """Replay ``journal`` (checking every block, as ``clearhouse verify``) and build the epoch
    at its head: liabilities at the head's state, withdrawals of blocks ``from_height`` on."""
    executed: list[ExecutedBlock] = []

    def keep(block: ExecutedBlock) -> None:
        if block.header.height >= from_height:
            executed.append(block)

    result = verify_journal(journal, on_executed=keep)
    height = result.engine.state.height
    owed = liabilities(result.engine, seed)
    paid = withdrawals_tree(withdrawals_of(executed))
    document = {
        "kind": EPOCH_KIND, "version": FORMAT_VERSION, "epoch": epoch, "height": height,
        "from_height": from_height, "state_root": _hex(result.state_root),
        "liabilities_root": _hex(owed.tree.root.hash),
        "total_liabilities_quantums": owed.tree.root.sum, "subaccounts": len(owed.leaves),
        "withdrawals_root": _hex(paid.tree.root.hash),
        "withdrawals_total_quantums": paid.tree.root.sum, "withdrawals": len(paid.leaves),
        "last_deposit_id": result.engine.state.last_deposit_id,
    }  # fmt: skip
    return Epoch(
        document, liability_proofs(owed, height=height), withdrawal_proofs(paid, epoch=epoch)
    )


# ── Documents ──────────────────────────────────────────────────────────────────────────────


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _siblings(tree: SumTree, index: int) -> list[dict[str, Any]]:
    return [{"hash": _hex(s.hash), "sum": s.sum} for s in tree.proof(index)]


def liability_proofs(published: Published, *, height: int) -> list[dict[str, Any]]:
    def fields(entry: Liability | Withdrawal) -> dict[str, Any]:
        assert isinstance(entry, Liability)
        return {"owner": entry.owner, "subaccount_number": entry.subaccount_number,
                "amount_quantums": entry.amount, "salt": _hex(entry.salt)}  # fmt: skip

    return _proofs(published, {"kind": LIABILITIES_PROOF_KIND, "height": height}, fields)


def withdrawal_proofs(published: Published, *, epoch: int) -> list[dict[str, Any]]:
    def fields(entry: Liability | Withdrawal) -> dict[str, Any]:
        assert isinstance(entry, Withdrawal)
        return {"withdrawal_id": entry.withdrawal_id, "recipient": entry.recipient,
                "amount_quantums": entry.amount}  # fmt: skip

    return _proofs(published, {"kind": WITHDRAWAL_PROOF_KIND, "epoch": epoch}, fields)


def _proofs(
    published: Published,
    head: dict[str, Any],
    fields: Callable[[Liability | Withdrawal], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each leaf's proof document: what it is (``head``), the root and total it is under, the
    leaf's own ``fields``, its index and its siblings from the leaf up."""
    root = published.tree.root
    leaves: tuple[Liability | Withdrawal, ...] = published.leaves
    return [
        {**head, "version": FORMAT_VERSION, "root": _hex(root.hash),
         "total_quantums": root.sum, **fields(entry), "index": index,
         "siblings": _siblings(published.tree, index)}
        for index, entry in enumerate(leaves)
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LiabilityProof:
    """A parsed liabilities proof: what its owner checks, and what the escape hatch pays."""

    root: bytes
    total: int
    liability: Liability
    index: int
    siblings: tuple[Node, ...]


def parse_liability_proof(text: str) -> LiabilityProof:
    """A liabilities proof document, strictly: anything else is ``BadProof``, one line why."""
    if len(text) > limits.proof_bytes_max:
        raise BadProof(f"the proof is longer than {limits.proof_bytes_max} characters")
    # Counted before parsing: json's parser recurses once per level, and a file nested a
    # hundred thousand deep is a RecursionError (or a crashed interpreter), not BAD_PROOF.
    if text.count("[") + text.count("{") > limits.proof_brackets_max:
        raise BadProof(f"the proof nests more than {limits.proof_brackets_max} lists and objects")
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:  # ValueError: JSONDecodeError, and an
        # integer past Python's digit limit (int_max_str_digits), which json does not wrap
        raise BadProof(f"the proof is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadProof("the proof is not a JSON object")
    if document.get("kind") != LIABILITIES_PROOF_KIND:
        raise BadProof(f"the proof's kind is not {LIABILITIES_PROOF_KIND!r}")
    if document.get("version") != FORMAT_VERSION:
        raise BadProof(f"the proof's version is not {FORMAT_VERSION}")
    owner = document.get("owner")
    if not isinstance(owner, str) or not is_address(owner.lower()):
        raise BadProof("owner is an address (0x and 40 hex digits)")
    siblings = document.get("siblings")
    if not isinstance(siblings, list) or not 1 <= len(siblings) <= DEPTH_MAX:
        raise BadProof(f"siblings is a list of 1 to {DEPTH_MAX} entries")
    liability = Liability(
        Address(owner.lower()), _integer(document, "subaccount_number", 2**256 - 1),
        _integer(document, "amount_quantums", AMOUNT_MAX), _bytes32(document, "salt"),
    )  # fmt: skip
    return LiabilityProof(
        root=_bytes32(document, "root"), total=_integer(document, "total_quantums", SUM_MAX),
        liability=liability, index=_integer(document, "index", 2**DEPTH_MAX - 1),
        siblings=tuple(_sibling(entry, n) for n, entry in enumerate(siblings)),
    )  # fmt: skip


def _integer(document: Mapping[str, object], name: str, maximum: int) -> int:
    value = document.get(name)
    if type(value) is not int:  # bool is an int subclass: refused too
        raise BadProof(f"{name} is an integer")
    if not 0 <= value <= maximum:
        raise BadProof(f"{name} lies in [0, {maximum}]")
    return value


def _bytes32(document: Mapping[str, object], name: str) -> bytes:
    value = document.get(name)
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise BadProof(f"{name} is 32 bytes in hex (0x and 64 hex digits)")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise BadProof(f"{name} is 32 bytes in hex (0x and 64 hex digits)") from None


def _sibling(entry: object, position: int) -> Node:
    if not isinstance(entry, dict):
        raise BadProof(f"siblings[{position}] is an object with hash and sum")
    return Node(_bytes32(entry, "hash"), _integer(entry, "sum", SUM_MAX))


def check_liability_proof(proof: LiabilityProof, *, root: bytes, assets: int | None) -> int:
    """Check a user's proof against the published root: the leaf is under it, the total the
    proof names is the root's, and (``assets`` given) the total is at most the assets in
    custody. Returns the total; raises ``ProofRejected`` with the reason's code."""
    if proof.root != root:
        raise ProofRejected("WRONG_ROOT", "the proof names another root than the one given")
    problem = verify(
        proof.liability.leaf, proof.index, proof.siblings, root_hash=root, total=proof.total
    )
    if problem is not None:
        raise ProofRejected(problem.code, problem.reason)
    if assets is not None and proof.total > assets:
        raise ProofRejected(
            "INSOLVENT", f"total liabilities {proof.total} exceed the assets in custody {assets}"
        )
    return proof.total
