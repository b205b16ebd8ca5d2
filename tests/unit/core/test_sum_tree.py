"""The Merkle sum tree of the proof of liabilities and the withdrawals (``core/sum_tree.py``):
every leaf's proof verifies, the root's sum is the total, and any tampering fails."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clearhouse.core.hashing import keccak
from clearhouse.core.ids import Address
from clearhouse.core.sum_tree import (
    AMOUNT_MAX,
    EMPTY,
    NODE_TAG,
    SUM_MAX,
    Node,
    build,
    fold,
    liability_leaf,
    liability_order,
    node_of,
    salt_for,
    u256,
    verify,
    withdrawal_leaf,
)

SEED = bytes(range(32))
amounts = st.lists(st.integers(0, AMOUNT_MAX), min_size=0, max_size=40)


def _leaves(values: list[int]) -> list[Node]:
    owner = Address("0x" + "ab" * 20)
    return [
        liability_leaf(owner=owner, subaccount_number=n, amount=amount,
                       salt=salt_for(SEED, owner=owner, subaccount_number=n))
        for n, amount in enumerate(values)
    ]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(amounts)
def test_every_leaf_verifies_and_the_root_sum_is_the_total(values: list[int]) -> None:
    leaves = _leaves(values)
    tree = build(leaves)
    assert tree.root.sum == sum(values)
    assert tree.depth >= 1  # the root is always a node: its hash binds the total
    for index, leaf in enumerate(leaves):
        assert verify(leaf, index, tree.proof(index), root_hash=tree.root.hash,
                      total=sum(values)) is None  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=20), st.data())
def test_any_tampering_fails(values: list[int], data: st.DataObject) -> None:
    leaves = _leaves(values)
    tree = build(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    siblings = list(tree.proof(index))
    root, total = tree.root.hash, tree.root.sum
    owner = Address("0x" + "ab" * 20)
    salt = salt_for(SEED, owner=owner, subaccount_number=index)

    def fails(leaf: Node, path: list[Node], at: int = index) -> bool:
        return verify(leaf, at, path, root_hash=root, total=total) is not None

    more = data.draw(st.integers(1, 10**6))
    # the amount, up or down (what a venue hiding a liability would publish)
    assert fails(liability_leaf(owner=owner, subaccount_number=index,
                                amount=values[index] + more, salt=salt), siblings)  # fmt: skip
    if values[index] > 0:
        assert fails(liability_leaf(owner=owner, subaccount_number=index,
                                    amount=values[index] - 1, salt=salt), siblings)  # fmt: skip
    # the salt, the owner, the subaccount
    assert fails(liability_leaf(owner=owner, subaccount_number=index, amount=values[index],
                                salt=keccak(salt)), siblings)  # fmt: skip
    assert fails(liability_leaf(owner=Address("0x" + "cd" * 20), subaccount_number=index,
                                amount=values[index], salt=salt), siblings)  # fmt: skip
    # a sibling's sum, up or down, and a negative sum (refused before hashing)
    level = data.draw(st.integers(0, len(siblings) - 1))
    for forged in (siblings[level].sum + more, -1, -siblings[level].sum - 1, SUM_MAX + 1):
        path = [*siblings]
        path[level] = Node(path[level].hash, forged)
        assert fails(leaves[index], path)
    # a sibling's hash; the index; a wrong total; a truncated or padded path
    path = [*siblings]
    path[level] = Node(keccak(path[level].hash), path[level].sum)
    assert fails(leaves[index], path)
    other = index ^ 1
    if other < len(leaves) and leaves[other] != leaves[index]:
        assert fails(leaves[index], siblings, at=other)
    assert fails(leaves[index], siblings, at=index + 2 ** len(siblings))
    assert verify(leaves[index], index, siblings, root_hash=root, total=total + 1) is not None
    assert fails(leaves[index], siblings[:-1]) or len(siblings) == 1
    assert fails(leaves[index], [*siblings, EMPTY])


def test_moving_value_between_siblings_fails() -> None:
    """Maxwell's original tree hashed only a node's total, so a prover could shift value from
    one child's sum to the other's and keep the parent: here both sums are inside the hash."""
    leaves = _leaves([5, 7, 11, 13])
    tree = build(leaves)
    left, right = tree.levels[1]
    shifted = node_of(Node(left.hash, left.sum + 3), Node(right.hash, right.sum - 3))
    assert shifted.sum == tree.root.sum
    assert shifted.hash != tree.root.hash
    found = fold(leaves[0], 0, [Node(tree.proof(0)[0].hash, tree.proof(0)[0].sum),
                                Node(right.hash, right.sum - 3)])  # fmt: skip
    assert isinstance(found, Node)
    assert found.hash != tree.root.hash


def test_hashes_are_written_out() -> None:
    """The bytes auditors and the contract recompute (the module's docstring)."""
    owner = Address("0x" + "11" * 20)
    leaf = liability_leaf(owner=owner, subaccount_number=2, amount=3, salt=b"\x04" * 32)
    assert leaf.hash == keccak(u256(2) + bytes(12) + b"\x11" * 20 + u256(2) + u256(3)
                               + b"\x04" * 32)  # fmt: skip
    paid = withdrawal_leaf(withdrawal_id=9, recipient=owner, amount=3)
    assert paid.hash == keccak(u256(3) + u256(9) + bytes(12) + b"\x11" * 20 + u256(3))
    node = node_of(leaf, paid)
    assert node == Node(keccak(u256(NODE_TAG) + leaf.hash + u256(3) + paid.hash + u256(3)), 6)
    empty = build([])
    assert empty.root == node_of(EMPTY, EMPTY)
    assert empty.root.sum == 0


def test_published_order_is_by_leaf_hash() -> None:
    leaves = _leaves([1, 2, 3, 4, 5])
    order = liability_order(leaves)
    assert [leaves[i].hash for i in order] == sorted(leaf.hash for leaf in leaves)


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_salts_differ_per_leaf_and_seed(first: int, second: int) -> None:
    assume(first != second)
    owner = Address("0x" + "ab" * 20)
    assert salt_for(SEED, owner=owner, subaccount_number=first) != salt_for(
        SEED, owner=owner, subaccount_number=second
    )
    assert salt_for(SEED, owner=owner, subaccount_number=first) != salt_for(
        keccak(SEED), owner=owner, subaccount_number=first
    )
