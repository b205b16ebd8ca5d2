"""An incrementally updated Merkle commitment over a ``key -> value`` map of bytes.

The state machine encodes each piece of state (a subaccount, a market, an order, an oracle) as
one leaf, and commits to all of them with one 32-byte root per block. Auditors re-implement this
scheme, so it is fixed here, byte for byte:

* **Leaf.** ``leaf_hash = keccak(0x00 || len(key) as 4-byte big-endian || key || value)``.
  The length prefix makes the key/value split unambiguous.
* **Bucket index.** The first ``BUCKET_BITS // 8`` = 2 bytes of ``keccak(key)``, read big-endian:
  65,536 buckets. Hashing the key spreads adversarially chosen keys evenly.
* **Bucket.** ``bucket_hash = keccak(0x01 || leaf hashes of the bucket's leaves, sorted by key)``;
  an empty bucket's hash is ``ZERO_HASH``.
* **Tree.** A complete binary tree of depth ``BUCKET_BITS`` over the 65,536 bucket hashes,
  bucket ``i`` being leaf ``i`` from the left. An internal node is
  ``keccak(0x02 || left || right)``, except that a node whose two children are both ``ZERO_HASH``
  is ``ZERO_HASH``: the empty map's root is ``ZERO_HASH`` and untouched subtrees cost nothing.
  The domain bytes 0x00/0x01/0x02 keep a leaf, a bucket and a node from ever being confused.
* **Proof.** For ``key``: the *other* leaves of its bucket as ``(key, value)`` pairs sorted by key,
  and the ``BUCKET_BITS`` sibling hashes from the bucket level up to just below the root.
  Neighbours carry values, not just leaf hashes, because a proof of *absence* is only sound if the
  verifier can check that no neighbour's leaf hash hides the absent key under another name.

``StateTree`` batches: ``set``/``delete`` only mark keys and buckets dirty, and ``root`` rehashes
each dirty leaf, each dirty bucket and each node on a dirty path exactly once. ``compute_root``
rebuilds the root from nothing, independently, for tests and audits. Nothing here reads a clock,
draws randomness, touches floats or does I/O.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from clearhouse.core.hashing import ZERO_HASH, keccak, keccak_hasher

BUCKET_BITS = 16
BUCKET_COUNT = 1 << BUCKET_BITS
HASH_BYTES = 32
KEY_BYTES_MAX = 2**32 - 1  # the length prefix is 4 bytes

_LEAF = b"\x00"
_BUCKET = b"\x01"
_NODE = b"\x02"

assert BUCKET_BITS % 8 == 0, "the bucket index is a whole number of bytes of keccak(key)"
assert 0 < BUCKET_BITS <= 8 * HASH_BYTES
assert len(ZERO_HASH) == HASH_BYTES


def _check_key(key: bytes) -> None:
    """Keys are non-empty bytes whose length fits the 4-byte prefix of the leaf encoding."""
    assert isinstance(key, bytes), "keys are bytes"
    assert 0 < len(key) <= KEY_BYTES_MAX, "keys are non-empty and fit a 4-byte length"


def leaf_hash(key: bytes, value: bytes) -> bytes:
    """Hash of one leaf: the domain byte and length prefix make the encoding injective."""
    return keccak(_LEAF + len(key).to_bytes(4, "big") + key + value)


def bucket_index(key: bytes) -> int:
    """Which of the ``BUCKET_COUNT`` buckets holds ``key``: a prefix of ``keccak(key)``."""
    index = int.from_bytes(keccak(key)[: BUCKET_BITS // 8], "big")
    assert 0 <= index < BUCKET_COUNT
    return index


def bucket_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Hash of a bucket from its leaf hashes, already sorted by key; empty is ``ZERO_HASH``."""
    if not leaf_hashes:
        return ZERO_HASH
    return keccak(_BUCKET + b"".join(leaf_hashes))


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an internal node; two empty children make an empty node, so blank space is free."""
    assert len(left) == HASH_BYTES
    assert len(right) == HASH_BYTES
    if left == ZERO_HASH and right == ZERO_HASH:
        return ZERO_HASH
    return keccak(_NODE + left + right)


@dataclass(frozen=True, slots=True)
class Proof:
    """Evidence that ``key`` has a given value (or none) under a root.

    ``neighbours``: the other leaves of the key's bucket, ``(key, value)`` sorted by key.
    ``siblings``: ``BUCKET_BITS`` sibling hashes, bottom-up, from the bucket level.
    """

    neighbours: tuple[tuple[bytes, bytes], ...]
    siblings: tuple[bytes, ...]


class StateTree:
    """A ``key -> value`` map that keeps its Merkle root up to date at the cost of what changed.

    Node hashes live in one dict per level (level 0: bucket hashes, level ``BUCKET_BITS``: the
    root), holding only non-zero hashes, so memory grows with the map and not with the 2**16
    buckets. Dict lookups by small int are the fastest keyed store CPython has.
    """

    __slots__ = ("_bucket_keys", "_dirty_buckets", "_dirty_keys", "_leaves", "_levels", "_values")

    def __init__(self) -> None:
        self._values: dict[bytes, bytes] = {}
        self._leaves: dict[bytes, bytes] = {}  # key -> leaf hash, for keys not dirty
        self._bucket_keys: dict[int, set[bytes]] = {}  # only non-empty buckets
        self._levels: list[dict[int, bytes]] = [{} for _ in range(BUCKET_BITS + 1)]
        self._dirty_keys: set[bytes] = set()
        self._dirty_buckets: set[int] = set()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or None when absent."""
        return self._values.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        """Insert or overwrite; hashing waits for the next ``root`` so a batch hashes once."""
        _check_key(key)
        assert isinstance(value, bytes), "values are bytes"
        if key not in self._values:
            bucket = bucket_index(key)
            self._bucket_keys.setdefault(bucket, set()).add(key)
            self._dirty_buckets.add(bucket)
        elif key not in self._dirty_keys:
            self._dirty_buckets.add(bucket_index(key))
        self._values[key] = value
        self._dirty_keys.add(key)

    def delete(self, key: bytes) -> None:
        """Remove a key that must be present: deleting nothing is a caller's bug."""
        _check_key(key)
        assert key in self._values, "delete of an absent key"
        bucket = bucket_index(key)
        del self._values[key]
        self._leaves.pop(key, None)
        self._dirty_keys.discard(key)
        keys = self._bucket_keys[bucket]
        keys.remove(key)
        if not keys:
            del self._bucket_keys[bucket]
        self._dirty_buckets.add(bucket)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` in ascending key order: the canonical order for audits."""
        values = self._values
        for key in sorted(values):
            yield key, values[key]

    def root(self) -> bytes:
        """The root, rehashing only the leaves, buckets and paths dirtied since the last call."""
        self._rehash_leaves()
        dirty = self._rehash_buckets()
        for level in range(BUCKET_BITS):
            dirty = self._rehash_level(level, dirty)
        assert not self._dirty_keys
        assert not self._dirty_buckets
        return self._levels[BUCKET_BITS].get(0, ZERO_HASH)

    def recompute_root(self) -> bytes:
        """The root rebuilt from nothing, by a separate code path; must equal ``root()``."""
        return compute_root(self._values)

    def proof(self, key: bytes) -> Proof:
        """A proof of ``key``'s current value, or of its absence, against ``root()``."""
        _check_key(key)
        self.root()
        index = bucket_index(key)
        values = self._values
        others = sorted(k for k in self._bucket_keys.get(index, ()) if k != key)
        siblings: list[bytes] = []
        for level in range(BUCKET_BITS):
            siblings.append(self._levels[level].get(index ^ 1, ZERO_HASH))
            index >>= 1
        assert index == 0
        return Proof(tuple((k, values[k]) for k in others), tuple(siblings))

    def _rehash_leaves(self) -> None:
        """Hash each key set since the last root once, however many times it was set."""
        values = self._values
        leaves = self._leaves
        for key in self._dirty_keys:
            leaves[key] = leaf_hash(key, values[key])
        self._dirty_keys.clear()

    def _rehash_buckets(self) -> builtins.set[int]:
        """Rehash each dirty bucket once; an emptied bucket drops out of storage."""
        buckets = self._levels[0]
        leaves = self._leaves
        for index in self._dirty_buckets:
            keys = self._bucket_keys.get(index)
            if keys:
                buckets[index] = bucket_hash([leaves[k] for k in sorted(keys)])
            else:
                buckets.pop(index, None)
        dirty = self._dirty_buckets
        self._dirty_buckets = set()
        return dirty

    def _rehash_level(self, level: int, dirty: builtins.set[int]) -> builtins.set[int]:
        """Rehash the parents of the dirty nodes at ``level``; returns the parents' indices."""
        child = self._levels[level].get  # bound once: this loop is the hot path of root()
        above = self._levels[level + 1]
        hasher = keccak_hasher
        parents = {index >> 1 for index in dirty}
        for parent in parents:
            left = child(parent << 1)
            right = child((parent << 1) | 1)
            if left is None and right is None:
                above.pop(parent, None)
            else:
                above[parent] = hasher(_NODE + (left or ZERO_HASH) + (right or ZERO_HASH)).digest()
        return parents


def compute_root(values: Mapping[bytes, bytes]) -> bytes:
    """The root of ``values`` from scratch: the reference an incremental root is checked against."""
    by_bucket: dict[int, list[bytes]] = {}
    for key in sorted(values):
        _check_key(key)
        by_bucket.setdefault(bucket_index(key), []).append(leaf_hash(key, values[key]))
    level = {index: bucket_hash(hashes) for index, hashes in by_bucket.items()}
    for _ in range(BUCKET_BITS):
        parents: dict[int, bytes] = {}
        for parent in sorted({index >> 1 for index in level}):
            left = level.get(2 * parent, ZERO_HASH)
            right = level.get(2 * parent + 1, ZERO_HASH)
            parents[parent] = node_hash(left, right)
        level = parents
    assert set(level) <= {0}
    return level.get(0, ZERO_HASH)


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """Whether ``proof`` shows ``key -> value`` (``value`` None: ``key`` absent) under ``root``.

    Pure: needs no tree. A malformed proof is an ordinary ``False``, never an exception, since
    proofs come from outside; a malformed ``key`` or ``root`` is the caller's bug and asserts.
    """
    _check_key(key)
    assert len(root) == HASH_BYTES, "roots are 32 bytes"
    assert value is None or isinstance(value, bytes)
    if len(proof.siblings) != BUCKET_BITS:
        return False
    index = bucket_index(key)
    hashes = _bucket_leaf_hashes(index, key, value, proof.neighbours)
    if hashes is None:
        return False
    node = bucket_hash(hashes)
    for sibling in proof.siblings:
        if len(sibling) != HASH_BYTES:
            return False
        node = node_hash(sibling, node) if index & 1 else node_hash(node, sibling)
        index >>= 1
    assert index == 0
    return node == root


def _bucket_leaf_hashes(
    index: int, key: bytes, value: bytes | None, neighbours: Iterable[tuple[bytes, bytes]]
) -> list[bytes] | None:
    """The bucket's leaf hashes, key order, with ``key`` merged in; None if neighbours are bad.

    Neighbours must be strictly ascending, distinct from ``key`` and in ``key``'s bucket: anything
    else is not what an honest tree produces, and accepting it could let ``key`` hide among them.
    """
    entries: list[tuple[bytes, bytes]] = []
    previous: bytes | None = None
    for entry in neighbours:
        if not _is_pair_of_bytes(entry):
            return None
        other, other_value = entry
        if not other or other == key or (previous is not None and other <= previous):
            return None
        if bucket_index(other) != index:
            return None
        entries.append((other, leaf_hash(other, other_value)))
        previous = other
    if value is not None:
        entries.append((key, leaf_hash(key, value)))
        entries.sort()
    return [hashed for _, hashed in entries]


def _is_pair_of_bytes(entry: object) -> bool:
    """A neighbour entry from outside is trusted for nothing, not even its shape."""
    return (
        isinstance(entry, tuple)
        and len(entry) == 2
        and isinstance(entry[0], bytes)
        and isinstance(entry[1], bytes)
    )
