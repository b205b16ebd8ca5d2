"""StateTree: the incremental root always equals the from-scratch root, and proofs are sound."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.hashing import ZERO_HASH, keccak
from clearhouse.core.merkle import (
    BUCKET_BITS,
    Proof,
    StateTree,
    bucket_hash,
    bucket_index,
    compute_root,
    leaf_hash,
    node_hash,
    verify_proof,
)


def _crowded_keys(count: int, per_bucket: int) -> list[bytes]:
    """Keys from ``count`` buckets holding ``per_bucket`` keys each, to exercise sorting in one."""
    by_bucket: dict[int, list[bytes]] = {}
    chosen: list[bytes] = []
    n = 0
    while len(chosen) < count * per_bucket:
        key = b"k%d" % n
        n += 1
        group = by_bucket.setdefault(bucket_index(key), [])
        group.append(key)
        if len(group) == per_bucket:
            chosen.extend(group)
    return chosen


CROWDED = _crowded_keys(count=4, per_bucket=3)
KEY_POOL = [*CROWDED, b"a", b"b", b"subaccount/1", b"market/BTC", b"\x00", b"\xff" * 40]


def _tree(items: dict[bytes, bytes]) -> StateTree:
    tree = StateTree()
    for key, value in items.items():
        tree.set(key, value)
    return tree


def test_empty_root_is_zero_hash() -> None:
    tree = StateTree()
    assert tree.root() == ZERO_HASH
    assert tree.recompute_root() == ZERO_HASH
    assert len(tree) == 0
    assert list(tree.items()) == []


def test_single_leaf_root_follows_the_documented_scheme() -> None:
    key, value = b"market/ETH", b"\x01\x02"
    leaf = keccak(b"\x00" + len(key).to_bytes(4, "big") + key + value)
    assert leaf == leaf_hash(key, value)
    index = int.from_bytes(keccak(key)[:2], "big")
    assert index == bucket_index(key)
    node = keccak(b"\x01" + leaf)
    for _ in range(BUCKET_BITS):
        node = (
            keccak(b"\x02" + ZERO_HASH + node) if index & 1 else keccak(b"\x02" + node + ZERO_HASH)
        )
        index >>= 1
    assert _tree({key: value}).root() == node


def test_bucket_leaves_are_sorted_by_key() -> None:
    keys = CROWDED[:3]
    assert len({bucket_index(k) for k in keys}) == 1
    items = {k: b"v" + k for k in keys}
    expected = bucket_hash([leaf_hash(k, items[k]) for k in sorted(keys)])
    tree = _tree(dict(reversed(list(items.items()))))
    tree.root()
    assert tree._levels[0][bucket_index(keys[0])] == expected


def test_node_hash_of_two_empty_children_is_empty() -> None:
    assert node_hash(ZERO_HASH, ZERO_HASH) == ZERO_HASH
    assert node_hash(ZERO_HASH, b"\x01" * 32) != ZERO_HASH
    assert node_hash(b"\x01" * 32, ZERO_HASH) != node_hash(ZERO_HASH, b"\x01" * 32)


def test_root_changes_with_a_value_and_returns_on_revert() -> None:
    tree = _tree(dict.fromkeys(KEY_POOL, b"v"))
    before = tree.root()
    tree.set(CROWDED[1], b"w")
    changed = tree.root()
    assert changed != before
    tree.set(CROWDED[1], b"v")
    assert tree.root() == before
    tree.delete(b"a")
    assert tree.root() != before
    tree.set(b"a", b"v")
    assert tree.root() == before


def test_deleting_everything_returns_to_zero_hash() -> None:
    tree = _tree(dict.fromkeys(KEY_POOL, b"v"))
    assert tree.root() != ZERO_HASH
    for key in KEY_POOL:
        tree.delete(key)
    assert tree.root() == ZERO_HASH
    assert all(not level for level in tree._levels), "no zero nodes are stored"


def test_insertion_order_does_not_matter() -> None:
    items = {k: b"value-" + k for k in KEY_POOL}
    forward = _tree(items)
    backward = _tree(dict(reversed(list(items.items()))))
    assert forward.root() == backward.root() == compute_root(items)
    assert list(forward.items()) == sorted(items.items())


def test_get_len_contains() -> None:
    tree = _tree({b"a": b"1", b"b": b""})
    assert tree.get(b"a") == b"1"
    assert tree.get(b"b") == b""
    assert tree.get(b"c") is None
    assert len(tree) == 2
    assert b"b" in tree
    assert b"c" not in tree


def test_delete_of_absent_key_asserts() -> None:
    tree = StateTree()
    with pytest.raises(AssertionError):
        tree.delete(b"missing")


def test_empty_key_asserts() -> None:
    with pytest.raises(AssertionError):
        StateTree().set(b"", b"v")


def test_empty_value_differs_from_absence() -> None:
    assert _tree({b"a": b""}).root() != ZERO_HASH


def test_proofs_verify_for_present_and_absent_keys() -> None:
    items = {k: b"value-" + k for k in KEY_POOL[1:]}
    tree = _tree(items)
    root = tree.root()
    for key, value in items.items():
        proof = tree.proof(key)
        assert verify_proof(root, key, value, proof)
        assert not verify_proof(root, key, value + b"!", proof)
        assert not verify_proof(root, key, None, proof)
    for key in (KEY_POOL[0], b"never-set"):
        proof = tree.proof(key)
        assert verify_proof(root, key, None, proof)
        assert not verify_proof(root, key, b"anything", proof)


def test_proof_of_empty_tree() -> None:
    tree = StateTree()
    proof = tree.proof(b"x")
    assert proof == Proof((), (ZERO_HASH,) * BUCKET_BITS)
    assert verify_proof(ZERO_HASH, b"x", None, proof)
    assert not verify_proof(ZERO_HASH, b"x", b"v", proof)


def test_tampered_proofs_fail() -> None:
    a, b, c = CROWDED[:3]
    tree = _tree({a: b"1", b: b"2", c: b"3", b"other": b"4"})
    root = tree.root()
    proof = tree.proof(a)
    assert len(proof.neighbours) == 2
    assert verify_proof(root, a, b"1", proof)
    bad_sibling = replace(proof, siblings=(b"\x07" * 32, *proof.siblings[1:]))
    assert not verify_proof(root, a, b"1", bad_sibling)
    assert not verify_proof(root, a, b"1", replace(proof, siblings=proof.siblings[:-1]))
    assert not verify_proof(root, a, b"1", replace(proof, neighbours=proof.neighbours[::-1]))
    assert not verify_proof(root, a, b"1", replace(proof, neighbours=proof.neighbours[:1]))
    assert not verify_proof(keccak(b"other root"), a, b"1", proof)


def test_absent_key_cannot_hide_among_neighbours() -> None:
    """A present key renamed as a neighbour must not pass as a proof of its absence."""
    a, b = CROWDED[:2]
    tree = _tree({a: b"1", b: b"2"})
    root = tree.root()
    honest = tree.proof(a)
    forged = replace(honest, neighbours=tuple(sorted([*honest.neighbours, (a, b"1")])))
    assert not verify_proof(root, a, None, forged)
    assert not verify_proof(root, a, None, honest)


# One operation: (key index, value or None for delete, whether to take a root afterwards).
_ops = st.lists(
    st.tuples(
        st.integers(0, len(KEY_POOL) - 1),
        st.one_of(st.none(), st.binary(max_size=8)),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_incremental_root_matches_scratch_and_fresh_tree(
    ops: list[tuple[int, bytes | None, bool]],
) -> None:
    tree = StateTree()
    model: dict[bytes, bytes] = {}
    for index, value, take_root in ops:
        key = KEY_POOL[index]
        if value is None:
            if key in model:
                tree.delete(key)
                del model[key]
        else:
            tree.set(key, value)
            model[key] = value
        if take_root:
            assert tree.root() == compute_root(model)
    root = tree.root()
    assert root == tree.recompute_root() == _tree(model).root()
    assert dict(tree.items()) == model
    assert len(tree) == len(model)
    for key in KEY_POOL:
        assert verify_proof(root, key, model.get(key), tree.proof(key))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEY_POOL), st.binary(max_size=4)), max_size=40))
def test_batched_root_equals_root_after_each_set(sets: list[tuple[bytes, bytes]]) -> None:
    stepwise = StateTree()
    batched = StateTree()
    for key, value in sets:
        stepwise.set(key, value)
        stepwise.root()
        batched.set(key, value)
    assert batched.root() == stepwise.root()


def test_batched_large_update_matches_scratch() -> None:
    tree = _tree({b"key-%d" % i: b"%d" % i for i in range(2_000)})
    tree.root()
    for i in range(0, 2_000, 3):
        tree.set(b"key-%d" % i, b"new")
    for i in range(1, 2_000, 7):
        tree.delete(b"key-%d" % i)
    assert tree.root() == tree.recompute_root()
