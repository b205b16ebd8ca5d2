"""StateTree: the incremental root always equals the from-scratch root, and proofs are sound."""

from __future__ import annotations

import pickle
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core.hashing import ZERO_HASH, keccak
from clearhouse.core.merkle import (
    PATH_BITS,
    Proof,
    StateTree,
    compute_root,
    leaf_hash,
    node_hash,
    verify_proof,
)


def _path(key: bytes) -> int:
    return int.from_bytes(keccak(key), "big")


def _bit(key: bytes, depth: int) -> int:
    """Bit ``depth`` of the key's path, most significant first."""
    return (_path(key) >> (PATH_BITS - 1 - depth)) & 1


def _shared_bits(a: bytes, b: bytes) -> int:
    return PATH_BITS - (_path(a) ^ _path(b)).bit_length()


def _key_with_prefix(bits: str, stem: bytes) -> bytes:
    """The first key ``stem<n>`` whose path starts with ``bits`` (a string of '0'/'1')."""
    n = 0
    while format(_path(stem + b"%d" % n), "0256b")[: len(bits)] != bits:
        n += 1
    return stem + b"%d" % n


def _keys_sharing_prefix(bits: int, count: int, stem: bytes) -> list[bytes]:
    """The first ``count`` keys ``stem<n>`` found whose paths share their first ``bits`` bits.

    Brute force over ``n``: a few thousand keccaks, so cheap enough to run at import.
    """
    by_prefix: dict[int, list[bytes]] = {}
    n = 0
    while True:
        key = stem + b"%d" % n
        n += 1
        group = by_prefix.setdefault(_path(key) >> (PATH_BITS - bits), [])
        group.append(key)
        if len(group) == count:
            return sorted(group, key=_path)


DEEP_PAIR = _keys_sharing_prefix(20, 2, b"deep/")  # a chain of 20 single-child nodes above them
TRIPLE = _keys_sharing_prefix(12, 3, b"triple/")
KEY_POOL = [
    *DEEP_PAIR,
    *TRIPLE,
    b"a",
    b"b",
    b"subaccount/1",
    b"market/BTC",
    b"\x00",
    b"\xff" * 40,
]


def _tree(items: dict[bytes, bytes]) -> StateTree:
    tree = StateTree()
    for key, value in items.items():
        tree.set(key, value)
    return tree


def _pair_root(lower: bytes, higher: bytes, items: dict[bytes, bytes]) -> bytes:
    """The root of a two-key map by hand: a node where the paths part, a chain above it."""
    shared = _shared_bits(lower, higher)
    assert _bit(lower, shared) == 0
    assert _bit(higher, shared) == 1
    node = node_hash(leaf_hash(lower, items[lower]), leaf_hash(higher, items[higher]))
    for depth in range(shared - 1, -1, -1):
        node = node_hash(ZERO_HASH, node) if _bit(lower, depth) else node_hash(node, ZERO_HASH)
    return node


# ── The scheme, byte for byte ────────────────────────────────────────────────────────────────


def test_brute_forced_keys_share_long_prefixes() -> None:
    assert _shared_bits(*DEEP_PAIR) >= 20
    assert all(_shared_bits(a, b) >= 12 for a in TRIPLE for b in TRIPLE if a != b)


def test_empty_root_is_zero_hash() -> None:
    tree = StateTree()
    assert tree.root() == ZERO_HASH
    assert tree.recompute_root() == ZERO_HASH
    assert compute_root({}) == ZERO_HASH
    assert len(tree) == 0
    assert list(tree.items()) == []


def test_one_key_root_is_its_leaf_hash() -> None:
    key, value = b"market/ETH", b"\x01\x02"
    leaf = keccak(b"\x00" + len(key).to_bytes(4, "big") + key + value)
    assert leaf == leaf_hash(key, value)
    tree = _tree({key: value})
    assert tree.root() == leaf == compute_root({key: value})
    assert tree.proof(key) == Proof((), None)


def test_node_hash_is_keccak_of_domain_byte_and_children() -> None:
    left, right = b"\x01" * 32, b"\x02" * 32
    assert node_hash(left, right) == keccak(b"\x02" + left + right)
    assert node_hash(left, right) != node_hash(right, left)
    assert node_hash(ZERO_HASH, left) != ZERO_HASH


def test_two_keys_parting_at_the_first_bit_hang_off_the_root() -> None:
    lower, higher = _key_with_prefix("0", b"l"), _key_with_prefix("1", b"h")
    items = {lower: b"1", higher: b"2"}
    expected = node_hash(leaf_hash(lower, b"1"), leaf_hash(higher, b"2"))
    assert _tree(items).root() == expected == compute_root(items)


def test_two_keys_sharing_a_long_prefix_sit_below_a_chain() -> None:
    lower, higher = DEEP_PAIR
    items = {lower: b"x", higher: b"y"}
    tree = _tree(items)
    assert tree.root() == _pair_root(lower, higher, items) == compute_root(items)
    depth = _shared_bits(lower, higher) + 1
    for key in DEEP_PAIR:
        proof = tree.proof(key)
        assert len(proof.siblings) == depth
        assert proof.siblings[:-1] == (ZERO_HASH,) * (depth - 1)
        assert verify_proof(tree.root(), key, items[key], proof)


def test_delete_collapses_the_survivor_up_to_where_it_is_alone() -> None:
    lower, higher = DEEP_PAIR
    other = _key_with_prefix("1" if _bit(lower, 0) == 0 else "0", b"other")
    items = {lower: b"1", higher: b"2", other: b"3"}
    tree = _tree(items)
    assert len(tree.proof(lower).siblings) == _shared_bits(lower, higher) + 1
    tree.delete(higher)
    del items[higher]
    left, right = (lower, other) if _bit(lower, 0) == 0 else (other, lower)
    expected = node_hash(leaf_hash(left, items[left]), leaf_hash(right, items[right]))
    assert tree.root() == expected == compute_root(items)
    assert len(tree.proof(lower).siblings) == 1, "the lone leaf moved up from depth 21 to 1"
    tree.delete(other)
    assert tree.root() == leaf_hash(lower, b"1"), "one key: the root is its leaf"
    tree.delete(lower)
    assert tree.root() == ZERO_HASH


def test_insert_pushes_a_resident_leaf_down_to_where_the_paths_part() -> None:
    lower, higher = DEEP_PAIR
    tree = _tree({lower: b"1"})
    assert tree.root() == leaf_hash(lower, b"1")
    tree.set(higher, b"2")
    assert tree.root() == _pair_root(lower, higher, {lower: b"1", higher: b"2"})


@pytest.mark.parametrize("first", [0, 1])
def test_insert_below_a_node_pushes_the_resident_down(first: int) -> None:
    lower, higher = DEEP_PAIR
    resident, newcomer = (lower, higher) if first == 0 else (higher, lower)
    other = _key_with_prefix("1" if _bit(lower, 0) == 0 else "0", b"other")
    tree = _tree({resident: b"1", other: b"3"})
    tree.root()
    tree.set(newcomer, b"2")
    items = {resident: b"1", other: b"3", newcomer: b"2"}
    assert tree.root() == compute_root(items) == _tree(items).root()
    assert len(tree.proof(newcomer).siblings) == _shared_bits(lower, higher) + 1


def test_proofs_are_logarithmic() -> None:
    items = {b"sub/%d" % n: b"v" for n in range(4_096)}
    tree = _tree(items)
    depths = [len(tree.proof(key).siblings) for key in list(items)[:512]]
    assert sum(depths) / len(depths) < 12 + 3
    assert max(depths) < 12 + 16


# ── Incremental equals from scratch, whatever the order ─────────────────────────────────────


def test_root_changes_with_a_value_and_returns_on_revert() -> None:
    tree = _tree(dict.fromkeys(KEY_POOL, b"v"))
    before = tree.root()
    tree.set(TRIPLE[1], b"w")
    changed = tree.root()
    assert changed != before
    tree.set(TRIPLE[1], b"v")
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
    assert tree._root is None, "no node outlives its keys"


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


def test_set_then_delete_in_one_batch_leaves_no_trace() -> None:
    tree = _tree({b"a": b"1"})
    before = tree.root()
    tree.set(b"b", b"2")
    tree.delete(b"b")
    assert tree.root() == before


# One operation: (key index, value or None for delete, whether to take a root afterwards).
_ops = st.lists(
    st.tuples(
        st.integers(0, len(KEY_POOL) - 1),
        st.one_of(st.none(), st.binary(max_size=8)),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_ops, st.randoms(use_true_random=False))
def test_incremental_root_matches_scratch_and_fresh_trees(
    ops: list[tuple[int, bytes | None, bool]], rng: random.Random
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
    shuffled = list(model.items())
    rng.shuffle(shuffled)
    assert root == tree.recompute_root() == _tree(dict(shuffled)).root()
    assert dict(tree.items()) == model
    assert len(tree) == len(model)
    for key in KEY_POOL:
        assert verify_proof(root, key, model.get(key), tree.proof(key))


@settings(max_examples=200, deadline=None)
@given(_ops, st.booleans())
def test_a_tree_without_values_has_the_same_roots_leaves_and_members(
    ops: list[tuple[int, bytes | None, bool]], discard_absent: bool
) -> None:
    """The engine's tree keeps no values and no leaf hashes beside the tree (they live in the
    parents' preimages): every root, leaf, membership and count is the full tree's."""
    full = StateTree()
    lean = StateTree(values=False)
    model: dict[bytes, bytes] = {}
    for index, value, take_root in ops:
        key = KEY_POOL[index]
        if value is None:
            if key in model:
                full.delete(key)
                lean.delete(key)
                del model[key]
            elif discard_absent:
                full.discard(key)  # absent before and after
                lean.discard(key)
        else:
            full.set(key, value)
            lean.set(key, value)
            model[key] = value
        assert all((key in lean) == (key in model) for key in KEY_POOL)
        assert all(lean.leaf(k) == full.leaf(k) for k in KEY_POOL)  # pending or in the tree
        if take_root:
            assert lean.root() == full.root() == compute_root(model)
    assert lean.root() == lean.recompute_root() == compute_root(model)
    assert len(lean) == len(model)
    for key in KEY_POOL:
        expected = leaf_hash(key, model[key]) if key in model else None
        assert lean.leaf(key) == expected


def test_a_tree_without_values_refuses_to_delete_an_absent_key() -> None:
    lean = StateTree(values=False)
    lean.set(b"a", b"1")
    lean.root()
    with pytest.raises(AssertionError, match="absent"):
        lean.delete(b"b")
    lean.discard(b"b")  # discard: absent stays absent
    assert lean.root() == compute_root({b"a": b"1"})


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
    for i in range(2_000, 2_300):
        tree.set(b"key-%d" % i, b"added")
    assert tree.root() == tree.recompute_root()


def test_pickling_round_trips_with_and_without_pending_changes() -> None:
    tree = _tree({k: b"v" + k for k in KEY_POOL})
    root = tree.root()
    copy = pickle.loads(pickle.dumps(tree))  # noqa: S301 -- our own bytes
    assert copy.root() == root
    assert list(copy.items()) == list(tree.items())
    tree.set(b"a", b"changed")
    copy = pickle.loads(pickle.dumps(tree))  # noqa: S301 -- with a change not yet hashed
    assert copy.root() == tree.root() == tree.recompute_root()
    assert not hasattr(tree, "__dict__"), "StateTree uses __slots__"


# ── Proofs ───────────────────────────────────────────────────────────────────────────────────


def test_proofs_verify_for_present_and_absent_keys() -> None:
    items = {k: b"value-" + k for k in KEY_POOL[1:]}
    tree = _tree(items)
    root = tree.root()
    for key, value in items.items():
        proof = tree.proof(key)
        assert proof.other is None
        assert verify_proof(root, key, value, proof)
        assert not verify_proof(root, key, value + b"!", proof)
        assert not verify_proof(root, key, None, proof)
    for key in (KEY_POOL[0], b"never-set", *(b"absent-%d" % n for n in range(50))):
        proof = tree.proof(key)
        assert verify_proof(root, key, None, proof)
        assert not verify_proof(root, key, b"anything", proof)


def test_absence_proof_ending_at_another_leaf_names_it() -> None:
    lower, higher = DEEP_PAIR
    tree = _tree({lower: b"1", b"a": b"2", b"b": b"3"})
    proof = tree.proof(higher)
    assert proof.other == (lower, b"1"), "higher's path leads to lower's leaf"
    assert verify_proof(tree.root(), higher, None, proof)


def test_proof_of_empty_tree() -> None:
    proof = StateTree().proof(b"x")
    assert proof == Proof((), None)
    assert verify_proof(ZERO_HASH, b"x", None, proof)
    assert not verify_proof(ZERO_HASH, b"x", b"v", proof)
    assert not verify_proof(ZERO_HASH, b"x", None, Proof((ZERO_HASH,), None))


def test_tampered_proofs_fail() -> None:
    a, b, c = TRIPLE
    tree = _tree({a: b"1", b: b"2", c: b"3", b"other": b"4"})
    root = tree.root()
    proof = tree.proof(a)
    assert len(proof.siblings) >= 13
    assert verify_proof(root, a, b"1", proof)
    for depth in range(len(proof.siblings)):
        siblings = list(proof.siblings)
        siblings[depth] = bytes([siblings[depth][0] ^ 1]) + siblings[depth][1:]
        assert not verify_proof(root, a, b"1", replace(proof, siblings=tuple(siblings)))
    assert not verify_proof(root, a, b"1", replace(proof, siblings=proof.siblings[:-1]))
    assert not verify_proof(root, a, b"1", replace(proof, siblings=proof.siblings[1:]))
    longer = (*proof.siblings, leaf_hash(b, b"2"))
    assert not verify_proof(root, a, b"1", replace(proof, siblings=longer))
    assert not verify_proof(root, a, b"1", replace(proof, other=(b, b"2")))
    assert not verify_proof(keccak(b"other root"), a, b"1", proof)
    assert not verify_proof(root, b, b"1", proof), "a proof is for one key"


def test_tampered_other_leaf_fails() -> None:
    lower, higher = DEEP_PAIR
    tree = _tree({lower: b"1", b"a": b"2"})
    root = tree.root()
    proof = tree.proof(higher)
    assert proof.other == (lower, b"1")
    assert not verify_proof(root, higher, None, replace(proof, other=(lower, b"9")))
    assert not verify_proof(root, higher, None, replace(proof, other=None))


def test_absence_of_a_present_key_cannot_be_proved() -> None:
    """Every proof an adversary can assemble from the tree's own hashes and leaves fails."""
    items = {k: b"v" + k for k in KEY_POOL}
    tree = _tree(items)
    root = tree.root()
    leaves: list[tuple[bytes, bytes] | None] = [None, *items.items()]
    for key in KEY_POOL:
        honest = tree.proof(key).siblings
        for cut in range(len(honest) + 1):
            for other in leaves:
                forged = Proof(honest[:cut], other)
                assert not verify_proof(root, key, None, forged), (key, cut, other)
            assert not verify_proof(root, key, None, Proof((*honest, ZERO_HASH), None))


def test_a_leaf_is_not_accepted_off_its_own_path() -> None:
    """A root placing a leaf where its path does not lead proves nothing, though it hashes."""
    y, x, w = _key_with_prefix("1", b"y"), _key_with_prefix("0", b"x"), b"w"
    forged_root = node_hash(leaf_hash(y, b"1"), leaf_hash(w, b"2"))  # y on the 0 side
    assert not verify_proof(forged_root, x, None, Proof((leaf_hash(w, b"2"),), (y, b"1")))


def test_a_proof_through_an_uncollapsed_node_is_rejected() -> None:
    """Only the canonical tree's proofs pass: a lone leaf beside an empty sibling is not one."""
    a, b = _key_with_prefix("00", b"a"), _key_with_prefix("1", b"b")
    uncollapsed = node_hash(node_hash(leaf_hash(a, b"1"), ZERO_HASH), leaf_hash(b, b"2"))
    proof = Proof((leaf_hash(b, b"2"), ZERO_HASH), None)
    assert not verify_proof(uncollapsed, a, b"1", proof)


def test_malformed_proofs_are_false_not_errors() -> None:
    tree = _tree(dict.fromkeys(KEY_POOL, b"v"))
    root = tree.root()
    key = TRIPLE[0]
    honest = tree.proof(key)
    bad: list[Proof] = [
        replace(honest, siblings=(b"short", *honest.siblings[1:])),
        replace(honest, siblings=(None, *honest.siblings[1:])),  # type: ignore[arg-type]
        replace(honest, siblings=list(honest.siblings)),  # type: ignore[arg-type]
        replace(honest, siblings=(ZERO_HASH,) * (PATH_BITS + 1)),
        replace(honest, siblings=None),  # type: ignore[arg-type]
        replace(honest, other=(b"a",)),  # type: ignore[arg-type]
        replace(honest, other=(b"", b"v")),
        replace(honest, other=(b"a", None)),  # type: ignore[arg-type]
        replace(honest, other=(key, b"v")),
        replace(honest, other="ab"),  # type: ignore[arg-type]
    ]
    for proof in bad:
        assert verify_proof(root, key, b"v", proof) is False
        assert verify_proof(root, key, None, proof) is False


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.lists(st.one_of(st.binary(min_size=31, max_size=33), st.none()), max_size=20),
        st.lists(st.binary(min_size=32, max_size=32), max_size=20).map(tuple),
    ),
    st.one_of(
        st.none(),
        st.tuples(st.binary(max_size=3), st.binary(max_size=3)),
        st.tuples(st.binary(max_size=3)),
        st.integers(),
    ),
    st.one_of(st.none(), st.binary(max_size=3)),
)
def test_random_garbage_proofs_never_raise(siblings: object, other: object, value: object) -> None:
    tree = _tree(dict.fromkeys(KEY_POOL, b"v"))
    proof = Proof(siblings, other)  # type: ignore[arg-type]
    for key in (KEY_POOL[0], b"absent"):
        assert verify_proof(tree.root(), key, value, proof) in (True, False)  # type: ignore[arg-type]
        assert not verify_proof(tree.root(), key, b"not the value", proof)
