"""The Merkle sum tree that the custody contract verifies (SPEC §14): the proof of liabilities
over subaccount equities, and each epoch's withdrawals, hashed the one way both sides compute.

The contract cannot read the engine's JSON leaves, so these trees are built for it: every hash
is keccak-256 over ABI-encoded 32-byte words (``abi.encode`` in Solidity, ``abi_encode`` in
Vyper), so ``contracts/Custody.vy`` recomputes them with the same bytes. Written out, byte for
byte, for auditors:

* **Words.** ``u(x)``: an unsigned integer as 32 bytes big-endian; ``a(addr)``: a 20-byte
  address left-padded to 32 bytes; a ``bytes32`` as itself.
* **Leaves.** Each hashes a tag word first, so that a leaf and a node (or two kinds of leaf)
  never share a preimage:

  - liability: ``keccak(u(2) || a(owner) || u(subaccount_number) || u(amount) || salt)``,
    amount = the subaccount's liability in quote quantums (``max(equity, 0)``, see
    ``app/custody.py``), ``salt`` 32 bytes (``salt_for``);
  - withdrawal: ``keccak(u(3) || u(withdrawal_id) || a(recipient) || u(amount))``.

  A leaf carries its amount as its **sum**.
* **Node.** ``(hash, sum)`` with ``hash = keccak(u(1) || left.hash || u(left.sum) ||
  right.hash || u(right.sum))`` and ``sum = left.sum + right.sum``: both children's sums are
  inside the hash (Maxwell's original tree hashed only their total, which let a prover move
  value between siblings: the Hu–Zhang–Chen flaw), every sum is a non-negative integer below
  ``SUM_MAX``, and a verifier recomputes each sum on the way up instead of trusting one.
* **Tree.** The leaves, in the order the builder chose, padded with ``EMPTY`` (hash 32 zero
  bytes, sum 0; no leaf hashes to zero) to a power of two, **at least two**: the root is always
  a node, so its hash binds the total (``root.sum``), which the contract is committed together.
* **Proof** of the leaf at ``index``: the siblings ``(hash, sum)`` from the leaf's level up;
  bit ``d`` of ``index`` says whether the path is the right child at level ``d``. Verification
  folds up, rejecting a sibling sum outside ``[0, SUM_MAX]`` and an index that does not fit the
  depth, and accepts iff the folded hash is the root's; the folded sum is then the total.

What a published proof reveals: its own leaf (with the salt its owner was given) and, at each
level, a sibling subtree's hash and total. A leaf's hash reveals nothing without its salt, and
the liability leaves are ordered by their hash (``liability_order``), so the sibling totals a
user sees belong to no one they can name. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from clearhouse.core.hashing import ZERO_HASH, keccak
from clearhouse.core.ids import Address, is_address

NODE_TAG = 1
LIABILITY_TAG = 2
WITHDRAWAL_TAG = 3

# Each amount is below 2**128 and a tree holds at most 2**DEPTH_MAX leaves, so no sum on any path
# reaches 2**160: far inside the contract's uint256, and a verifier never has to reason about
# overflow. A proof's sibling sum above SUM_MAX is refused as malformed.
AMOUNT_MAX = 2**128 - 1
DEPTH_MAX = 32
SUM_MAX = AMOUNT_MAX << DEPTH_MAX
SALT_BYTES = 32


class Node(NamedTuple):
    """A subtree: its hash and the sum of its leaves' amounts."""

    hash: bytes
    sum: int


EMPTY = Node(ZERO_HASH, 0)


def u256(value: int) -> bytes:
    assert 0 <= value < 2**256, value
    return value.to_bytes(32, "big")


def address_word(address: Address) -> bytes:
    assert is_address(address), address
    return bytes(12) + bytes.fromhex(address[2:])


def node_of(left: Node, right: Node) -> Node:
    """The parent of two subtrees: both sums inside its hash, its sum their total."""
    assert 0 <= left.sum <= SUM_MAX
    assert 0 <= right.sum <= SUM_MAX
    digest = keccak(u256(NODE_TAG) + left.hash + u256(left.sum) + right.hash + u256(right.sum))
    return Node(digest, left.sum + right.sum)


def liability_leaf(*, owner: Address, subaccount_number: int, amount: int, salt: bytes) -> Node:
    assert 0 <= amount <= AMOUNT_MAX, amount
    assert len(salt) == SALT_BYTES
    data = u256(LIABILITY_TAG) + address_word(owner) + u256(subaccount_number) + u256(amount) + salt
    return Node(keccak(data), amount)


def withdrawal_leaf(*, withdrawal_id: int, recipient: Address, amount: int) -> Node:
    assert 0 <= amount <= AMOUNT_MAX, amount
    data = u256(WITHDRAWAL_TAG) + u256(withdrawal_id) + address_word(recipient) + u256(amount)
    return Node(keccak(data), amount)


def salt_for(seed: bytes, *, owner: Address, subaccount_number: int) -> bytes:
    """A leaf's salt: keccak(seed || a(owner) || u(number)). The seed is the epoch's secret (the
    operator's, never published), so a leaf's hash says nothing of its amount to anyone without
    the salt, which only its owner is given; the same seed rebuilds the same tree."""
    assert len(seed) == SALT_BYTES
    return keccak(seed + address_word(owner) + u256(subaccount_number))


@dataclass(frozen=True, slots=True)
class SumTree:
    """Every level of a built tree, leaves (padded) first, the root's level last."""

    levels: tuple[tuple[Node, ...], ...]

    @property
    def root(self) -> Node:
        return self.levels[-1][0]

    @property
    def depth(self) -> int:
        return len(self.levels) - 1

    def proof(self, index: int) -> tuple[Node, ...]:
        """The siblings of the leaf at ``index``, from its level up."""
        assert 0 <= index < len(self.levels[0])
        siblings = []
        for level in self.levels[:-1]:
            siblings.append(level[index ^ 1])
            index >>= 1
        return tuple(siblings)


def build(leaves: Sequence[Node]) -> SumTree:
    """The tree over ``leaves`` in the order given (padded with ``EMPTY`` to a power of two, at
    least two). Each leaf's amount is checked: an amount out of range is a bug of the caller."""
    assert len(leaves) <= 2**DEPTH_MAX
    for leaf in leaves:
        assert 0 <= leaf.sum <= AMOUNT_MAX, leaf.sum
        assert leaf.hash != ZERO_HASH
    width = 2
    while width < len(leaves):
        width *= 2
    level = (*leaves, *([EMPTY] * (width - len(leaves))))
    levels = [level]
    while len(level) > 1:
        level = tuple(node_of(level[i], level[i + 1]) for i in range(0, len(level), 2))
        levels.append(level)
    total = sum(leaf.sum for leaf in leaves)
    assert levels[-1][0].sum == total  # the root's sum is the total, by construction
    return SumTree(tuple(levels))


def liability_order(leaves: Sequence[Node]) -> list[int]:
    """The positions of ``leaves`` sorted by leaf hash: the published order, which says nothing
    of whose leaf sits beside whose (the hashes are salted)."""
    return sorted(range(len(leaves)), key=lambda i: leaves[i].hash)


class ProofProblem(NamedTuple):
    """Why a proof does not verify: a stable code and the reason in words."""

    code: str
    reason: str


def fold(leaf: Node, index: int, siblings: Sequence[Node]) -> Node | ProofProblem:
    """The root a proof leads to from ``leaf`` at ``index``, or why it leads nowhere."""
    if not 1 <= len(siblings) <= DEPTH_MAX:
        return ProofProblem("BAD_DEPTH", f"a proof has 1 to {DEPTH_MAX} siblings")
    if not 0 <= index < 2 ** len(siblings):
        return ProofProblem("BAD_INDEX", "the leaf's index does not fit the proof's depth")
    if not 0 <= leaf.sum <= AMOUNT_MAX:
        return ProofProblem("BAD_AMOUNT", f"a leaf's amount lies in [0, {AMOUNT_MAX}]")
    node = leaf
    for sibling in siblings:
        if len(sibling.hash) != 32:
            return ProofProblem("BAD_SIBLING", "a sibling's hash is 32 bytes")
        if not 0 <= sibling.sum <= SUM_MAX:
            return ProofProblem("BAD_SUM", f"a sibling's sum lies in [0, {SUM_MAX}]")
        node = node_of(sibling, node) if index & 1 else node_of(node, sibling)
        if node.sum > SUM_MAX:
            return ProofProblem("BAD_SUM", "the sums on the path exceed the bound")
        index >>= 1
    return node


def verify(
    leaf: Node, index: int, siblings: Sequence[Node], *, root_hash: bytes, total: int | None
) -> ProofProblem | None:
    """None when the proof puts ``leaf`` under ``root_hash`` (and, ``total`` given, the tree's
    total is ``total``); else why not."""
    found = fold(leaf, index, siblings)
    if isinstance(found, ProofProblem):
        return found
    if found.hash != root_hash:
        return ProofProblem("NOT_INCLUDED", "the proof does not lead to the root")
    if total is not None and found.sum != total:
        return ProofProblem("WRONG_TOTAL", f"the root's total is {found.sum}, not {total}")
    return None
