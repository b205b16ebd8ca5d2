"""An incrementally updated Merkle commitment over a ``key -> value`` map of bytes.

The state machine encodes each piece of state (a subaccount, a market, an order, an oracle) as
one leaf, and commits to all of them with one 32-byte root per block. The scheme is a compressed
binary sparse Merkle tree over ``keccak(key)``, shaped as the one Diem/Aptos's Jellyfish Merkle
tree hashes: binary, each leaf at the shallowest depth where its path is unique, an empty subtree
a fixed placeholder. Auditors re-implement it, so it is fixed here, byte for byte:

* **Path.** ``path(key) = keccak(key)``, 256 bits read most significant first: bit ``i`` of the
  path is bit ``7 - i % 8`` of byte ``i // 8``. Hashing the key spreads keys evenly, so leaves
  sit about ``log2(n) + 1.3`` deep on average; making two keys share ``b`` leading bits costs an
  adversary about ``2**b`` keccaks, so every extra level it forces doubles its work.
* **Leaf.** ``leaf_hash = keccak(0x00 || len(key) as 4-byte big-endian || key || value)``.
  The length prefix makes the key/value split unambiguous. A leaf hash does not depend on where
  the leaf sits, so a leaf can move up or down without being rehashed.
* **Node.** ``node_hash = keccak(0x02 || left || right)``. The domain bytes 0x00/0x02 keep a leaf
  and a node from ever being confused (0x01 was the bucket of the previous, bucketed scheme).
* **Tree.** For the set ``S`` of keys whose paths begin with a ``d``-bit prefix, the subtree hash
  ``H(S, d)`` is:

  - ``ZERO_HASH`` (32 zero bytes) when ``S`` is empty;
  - ``leaf_hash(k, value of k)`` when ``S = {k}``: a leaf sits at the shallowest depth where its
    path is unique, so a lone leaf "collapses" up to there;
  - ``node_hash(H(S0, d + 1), H(S1, d + 1))`` when ``S`` has two keys or more, ``S0``/``S1``
    being the keys whose path bit ``d`` is 0/1. One side may be empty (``ZERO_HASH``): such a node
    is kept as it is, only a lone leaf collapses.

  The root is ``H(all keys, 0)``: ``ZERO_HASH`` for the empty map and the leaf hash of the only
  key for a one-key map. It is a function of the map's contents only, never of the order of the
  updates that produced them.
* **Proof.** Walk from the root along ``path(key)`` through the internal nodes (``|S| >= 2``) to
  the first position at depth ``D`` that is not one: it holds ``key``'s own leaf, another key's
  leaf, or nothing. The proof is ``siblings``: the ``D`` hashes of the children off the path, from
  the root down (``siblings[d]`` is ``H`` of the child at depth ``d + 1`` whose prefix is the
  first ``d`` bits of ``path(key)`` followed by the opposite of bit ``d``), and ``other``: the
  ``(key, value)`` of the leaf found at depth ``D`` when it is another key's, else ``None``.
* **Verification** of ``key -> value`` (``value`` None: ``key`` is absent) under ``root``:

  1. reject unless ``D = len(siblings) <= 256`` and every sibling is 32 bytes;
  2. the hash at depth ``D`` is ``leaf_hash(key, value)`` when a value is claimed (and
     ``other`` must be None); for absence, ``ZERO_HASH`` when ``other`` is None, else
     ``leaf_hash(other)`` after checking that ``other``'s key differs from ``key`` and that its
     path shares the first ``D`` bits of ``path(key)``;
  3. reject when ``D > 0`` and ``siblings[D - 1]`` is ``ZERO_HASH``: a leaf or an empty slot next
     to an empty sibling is never canonical (the parent would have collapsed);
  4. fold up, for ``d = D - 1`` down to ``0``: ``h = node_hash(siblings[d], h)`` when bit ``d`` of
     ``path(key)`` is 1, else ``node_hash(h, siblings[d])``; accept iff ``h == root``.

  Absence is sound because the hashes bind every node of the walk to the committed tree: the
  position at depth ``D`` on ``key``'s path holds nothing, or a lone leaf of another key, so
  ``key`` (whose path passes there) cannot be in the map. Each ``(root, key)`` has exactly one
  valid proof.

``StateTree`` batches: ``set``/``delete`` only record the key, and ``root`` walks the recorded
keys' paths once, reshaping (a leaf pushed down by a new neighbour, or moved up when its
neighbour goes) and rehashing each node on a changed path exactly once: ``O(log n)`` hashes per
changed key, whatever the map's size. ``compute_root`` rebuilds the root from nothing,
independently, for tests and audits. Nothing here reads a clock, draws randomness, touches
floats or does I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeGuard

from clearhouse.core.hashing import ZERO_HASH, keccak, keccak_hasher

PATH_BITS = 256  # the bits of keccak(key): the deepest a leaf can sit
HASH_BYTES = 32
KEY_BYTES_MAX = 2**32 - 1  # the length prefix is 4 bytes

_LEAF = b"\x00"
_NODE = b"\x02"

assert len(ZERO_HASH) == HASH_BYTES


def _check_key(key: bytes) -> None:
    """Keys are non-empty bytes whose length fits the 4-byte prefix of the leaf encoding."""
    assert isinstance(key, bytes), "keys are bytes"
    assert 0 < len(key) <= KEY_BYTES_MAX, "keys are non-empty and fit a 4-byte length"


def leaf_hash(key: bytes, value: bytes) -> bytes:
    """Hash of one leaf: the domain byte and length prefix make the encoding injective."""
    return keccak(_LEAF + len(key).to_bytes(4, "big") + key + value)


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an internal node from its two children's hashes (``ZERO_HASH`` for an empty one)."""
    assert len(left) == HASH_BYTES
    assert len(right) == HASH_BYTES
    return keccak(_NODE + left + right)


def _path_of(key: bytes) -> int:
    """``keccak(key)`` as a 256-bit integer: path bit ``d`` is integer bit ``255 - d``."""
    return int.from_bytes(keccak(key), "big")


@dataclass(frozen=True, slots=True)
class Proof:
    """Evidence that ``key`` has a given value (or none) under a root; see the module docstring.

    ``siblings``: the hashes off ``key``'s path, from the root down, one per depth walked.
    ``other``: the ``(key, value)`` of another key's leaf where the walk ends, or None.
    """

    siblings: tuple[bytes, ...]
    other: tuple[bytes, bytes] | None


_Node: TypeAlias = "tuple[bytes, _Node, _Node] | bytes | None"
"""A subtree: an internal node ``(preimage, left, right)``, a leaf (its key) or empty (None)."""

_LEFT_HASH = slice(1, 1 + HASH_BYTES)  # where the children's hashes sit in a node's preimage
_RIGHT_HASH = slice(1 + HASH_BYTES, 1 + 2 * HASH_BYTES)
_UP_TO_RIGHT = 1 + HASH_BYTES  # the preimage up to the right child's hash


class StateTree:
    """A ``key -> value`` map that keeps its Merkle root up to date at the cost of what changed.

    The tree is nested tuples. An internal node is ``(preimage, left, right)``, ``preimage``
    being the 65 bytes ``0x02 || hash(left) || hash(right)`` that hash to the node's hash; a leaf
    is its key; an empty subtree is None. A node keeps its children's hashes, not its own, so a
    changed path is rehashed from the path's own nodes: no sibling is visited and no sibling leaf
    rehashed. A leaf's hash is kept only there, in its parent's preimage (the root hash for a
    lone leaf): a map of keys to leaf hashes beside the tree cost ~117 bytes a key, the largest
    share of a subaccount's memory after its own objects. Keys set or deleted since the last
    ``root`` wait in ``_pending`` with their new leaf hash (None: deleted). Tuples and bytes are
    CPython's most compact objects (about 170 bytes per internal node, about 1.44 internal nodes
    per key), and the garbage collector stops tracking tuples that hold no mutable object. A dict
    of node hashes keyed by position was measured too: larger (it needs an int per node and a
    way to find leaves: 325 bytes per key against 287 at 100,000 keys) and slower.

    A tuple is still tracked until the collector first looks at it, so building a large tree in
    one batch (a million keys) sets off the collector's full passes, which are then about half
    of the build's time; a block that changes existing keys frees as many tuples as it makes.

    ``root`` sorts the changed keys by path and walks down only into the subtrees they fall in,
    so each node on a changed path is rebuilt and rehashed once, however many of the batch's keys
    lie under it. Nodes are never mutated, only replaced along the changed paths.
    """

    __slots__ = ("_pending", "_root", "_root_hash", "_values")

    def __init__(self, *, values: bool = True) -> None:
        """``values=False``: keep each key's leaf hash only, not its value (the engine's tree:
        the state it commits to is the engine's own, and a value is ~7 times its hash's size);
        ``get``, ``items`` and ``proof`` then need the values from their owner."""
        self._values: dict[bytes, bytes] | None = {} if values else None
        self._root: _Node = None
        self._root_hash = ZERO_HASH  # of _root, which lags _pending until the next root()
        # Keys set or deleted since the last root(): the new leaf hash, or None (deleted).
        self._pending: dict[bytes, bytes | None] = {}

    def __len__(self) -> int:
        if self._values is not None:
            return len(self._values)
        self.root()
        return sum(1 for _ in _leaves_of(self._root, self._root_hash))  # O(n): tests, audits

    def __contains__(self, key: object) -> bool:
        if self._values is not None:
            return key in self._values
        return isinstance(key, bytes) and self.leaf(key) is not None

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or None when absent."""
        return self._kept_values().get(key)

    def leaf(self, key: bytes) -> bytes | None:
        """``leaf_hash(key, value)`` of the value under ``key``, or None when absent: the
        pending one, else read off its parent's preimage (a walk down its path)."""
        if key in self._pending:
            return self._pending[key]
        bits = _bits(_path_of(key))
        node, node_hash, depth = self._root, self._root_hash, 0
        while isinstance(node, tuple):
            preimage, left, right = node
            went_right = bits[depth] == "1"
            node = right if went_right else left
            node_hash = preimage[_RIGHT_HASH] if went_right else preimage[_LEFT_HASH]
            depth += 1
        return node_hash if node == key else None

    def set(self, key: bytes, value: bytes) -> None:
        """Insert or overwrite. The leaf is hashed now; reshaping and rehashing the path wait
        for ``root``, once per batch."""
        _check_key(key)
        assert isinstance(value, bytes), "values are bytes"
        self._pending[key] = leaf_hash(key, value)
        if self._values is not None:
            self._values[key] = value

    def delete(self, key: bytes) -> None:
        """Remove a key that must be present: deleting nothing is a caller's bug."""
        _check_key(key)
        assert key in self, "delete of an absent key"
        self.discard(key)

    def discard(self, key: bytes) -> None:
        """Remove ``key`` if present; an absent key is left absent (settled by ``root``)."""
        _check_key(key)
        self._pending[key] = None
        if self._values is not None:
            self._values.pop(key, None)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` in ascending key order: the canonical order for audits."""
        values = self._kept_values()
        for key in sorted(values):
            yield key, values[key]

    def _kept_values(self) -> dict[bytes, bytes]:
        assert self._values is not None, "this tree keeps leaf hashes only, not values"
        return self._values

    def root(self) -> bytes:
        """The root, rebuilding only the paths to the keys changed since the last call."""
        if self._pending:
            hasher = keccak_hasher
            changed = sorted(
                (int.from_bytes(hasher(key).digest(), "big"), key) for key in self._pending
            )
            paths = [path for path, _ in changed]
            keys = [key for _, key in changed]
            self._root, self._root_hash = self._update(
                self._root, self._root_hash, 0, paths, keys, 0, len(keys)
            )
            self._pending.clear()
        return self._root_hash

    def recompute_root(self) -> bytes:
        """The root rebuilt from nothing, by a separate code path; must equal ``root()``."""
        if self._values is not None:
            return compute_root(self._values)
        # Without values, the leaf hashes are read off the tree; the root is then rebuilt
        # from them alone, independently of the tree's shape and of the incremental updates.
        self.root()
        return _root_of_leaves(dict(_leaves_of(self._root, self._root_hash)))

    def proof(self, key: bytes) -> Proof:
        """A proof of ``key``'s current value, or of its absence, against ``root()``."""
        _check_key(key)
        self.root()
        bits = _bits(_path_of(key))
        node = self._root
        siblings: list[bytes] = []
        while isinstance(node, tuple):
            preimage, left, right = node
            if bits[len(siblings)] == "1":
                siblings.append(preimage[_LEFT_HASH])
                node = right
            else:
                siblings.append(preimage[_RIGHT_HASH])
                node = left
        other = None if node is None or node == key else (node, self._kept_values()[node])
        return Proof(tuple(siblings), other)

    # Each step below returns the new subtree with its hash: ``(node, hash)``.

    def _update(
        self,
        node: _Node,
        node_hash: bytes,
        depth: int,
        paths: list[int],
        keys: list[bytes],
        lo: int,
        hi: int,
    ) -> tuple[_Node, bytes]:
        """``node`` (at ``depth``) with the changed keys ``lo:hi`` (sorted by path) applied."""
        if hi - lo == 1:
            return self._update_one(node, node_hash, depth, paths[lo], keys[lo])
        if not isinstance(node, tuple):
            return self._rebuild(node, node_hash, depth, paths[lo:hi], keys[lo:hi])
        preimage, left, right = node
        left_hash = preimage[_LEFT_HASH]
        right_hash = preimage[_RIGHT_HASH]
        split = _split(paths, depth, lo, hi)
        if lo < split:
            left, left_hash = self._update(left, left_hash, depth + 1, paths, keys, lo, split)
        if split < hi:
            right, right_hash = self._update(right, right_hash, depth + 1, paths, keys, split, hi)
        return _join(left, left_hash, right, right_hash)

    def _update_one(
        self, node: _Node, node_hash: bytes, depth: int, path: int, key: bytes
    ) -> tuple[_Node, bytes]:
        """``_update`` for one changed key: the common case, and the hot path of ``root``.

        A loop down to the key's slot and back up, with ``_join`` written out inline to spare a
        call per level; only the path's own nodes are read.
        """
        start, start_hash = node, node_hash
        above: list[tuple[bytes, _Node, _Node]] = []
        bits = _bits(path)
        while isinstance(node, tuple):
            above.append(node)
            node = node[2] if bits[depth] == "1" else node[1]
            depth += 1
        new_hash = self._pending[key]
        if new_hash is None:
            if node != key:
                return start, start_hash  # absent before and after: nothing changed
            node, node_hash = None, ZERO_HASH  # a deletion: the way up collapses what is left
        elif node == key:
            node_hash = new_hash  # the usual change: a new value, same place
        elif node is None:
            node, node_hash = key, new_hash  # an insertion into an empty slot
        else:  # an insertion that meets another key's leaf, whose hash the parent holds
            if above:
                held = above[-1][0]
                node_hash = held[_RIGHT_HASH] if bits[depth - 1] == "1" else held[_LEFT_HASH]
            node, node_hash = _push_down(node, node_hash, depth, bits, key, new_hash)
        hasher = keccak_hasher
        for preimage, left, right in reversed(above):
            depth -= 1
            went_right = bits[depth] == "1"
            sibling = left if went_right else right
            if not isinstance(node, tuple) and (
                sibling is None or (node is None and not isinstance(sibling, tuple))
            ):  # at most one leaf below: it moves up (the collapse rule, as in _join)
                if sibling is not None:
                    node = sibling
                    node_hash = preimage[_LEFT_HASH] if went_right else preimage[_RIGHT_HASH]
                continue
            if went_right:
                preimage = preimage[:_UP_TO_RIGHT] + node_hash
                node = (preimage, left, node)
            else:
                preimage = _NODE + node_hash + preimage[_UP_TO_RIGHT:]
                node = (preimage, node, right)
            node_hash = hasher(preimage).digest()
        return node, node_hash

    def _rebuild(
        self, resident: _Node, resident_hash: bytes, depth: int, paths: list[int],
        keys: list[bytes],
    ) -> tuple[_Node, bytes]:  # fmt: skip
        """A leaf's or an empty slot rebuilt from its resident and the changed keys landing there.

        ``paths``/``keys`` are the changed keys, sorted by path; the resident is inserted there.
        """
        hashes = {key: found for key in keys if (found := self._pending[key]) is not None}
        if isinstance(resident, bytes) and resident not in keys:
            path = _path_of(resident)  # unchanged, it stays in this subtree
            at = bisect_left(paths, path)
            paths.insert(at, path)
            keys.insert(at, resident)
            hashes[resident] = resident_hash
        if len(hashes) < len(keys):
            present = [index for index, key in enumerate(keys) if key in hashes]
            paths = [paths[index] for index in present]
            keys = [keys[index] for index in present]
        return _build(depth, paths, keys, hashes, 0, len(keys))


def _push_down(
    resident: bytes, resident_hash: bytes, depth: int, bits: str, key: bytes, key_hash: bytes
) -> tuple[_Node, bytes]:
    """The subtree at ``depth`` once ``key`` (path ``bits``) joins a lone ``resident`` leaf.

    A node where the two paths part, under a chain of single-child nodes back up to ``depth``:
    what ``_build`` makes of the two keys, without rehashing the resident.
    """
    other = _bits(_path_of(resident))
    assert other != bits, "keccak collision between two keys"
    part = depth
    while bits[part] == other[part]:
        part += 1  # stops before 256: two keys never share a whole path (keccak)
    node: _Node
    if bits[part] == "1":
        preimage = _NODE + resident_hash + key_hash
        node = (preimage, resident, key)
    else:
        preimage = _NODE + key_hash + resident_hash
        node = (preimage, key, resident)
    node_hash = keccak_hasher(preimage).digest()
    for at_depth in range(part - 1, depth - 1, -1):
        if bits[at_depth] == "1":
            preimage = _NODE + ZERO_HASH + node_hash
            node = (preimage, None, node)
        else:
            preimage = _NODE + node_hash + ZERO_HASH
            node = (preimage, node, None)
        node_hash = keccak_hasher(preimage).digest()
    return node, node_hash


def _build(
    depth: int, paths: list[int], keys: list[bytes], hashes: Mapping[bytes, bytes], lo: int,
    hi: int,
) -> tuple[_Node, bytes]:  # fmt: skip
    """The subtree of the keys ``lo:hi`` (sorted by path, all present), from scratch."""
    if hi - lo <= 1:
        return (keys[lo], hashes[keys[lo]]) if hi > lo else (None, ZERO_HASH)
    assert depth < PATH_BITS, "keccak collision between two keys"
    split = _split(paths, depth, lo, hi)
    left, left_hash = _build(depth + 1, paths, keys, hashes, lo, split)
    right, right_hash = _build(depth + 1, paths, keys, hashes, split, hi)
    return _join(left, left_hash, right, right_hash)


def _leaves_of(node: _Node, node_hash: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every ``(key, leaf hash)`` of a subtree: a leaf's hash is in its parent's preimage."""
    stack = [(node, node_hash)]
    while stack:
        node, node_hash = stack.pop()
        if isinstance(node, tuple):
            preimage, left, right = node
            stack.append((left, preimage[_LEFT_HASH]))
            stack.append((right, preimage[_RIGHT_HASH]))
        elif node is not None:
            yield node, node_hash


def _join(left: _Node, left_hash: bytes, right: _Node, right_hash: bytes) -> tuple[_Node, bytes]:
    """The node over two subtrees; when they hold one leaf or none, that moves up instead."""
    if right is None and not isinstance(left, tuple):
        return left, left_hash
    if left is None and not isinstance(right, tuple):
        return right, right_hash
    preimage = _NODE + left_hash + right_hash
    digest: bytes = keccak_hasher(preimage).digest()
    return (preimage, left, right), digest


def _bits(path: int) -> str:
    """A path as 256 characters '0'/'1': indexing a str is cheaper than shifting a big int."""
    return format(path, "0256b")


def _split(paths: Sequence[int], depth: int, lo: int, hi: int) -> int:
    """Where ``paths[lo:hi]`` (sorted, sharing ``depth`` bits) turn from bit ``depth`` 0 to 1."""
    shift = PATH_BITS - 1 - depth
    return bisect_left(paths, ((paths[lo] >> shift) | 1) << shift, lo, hi)


def compute_root(values: Mapping[bytes, bytes]) -> bytes:
    """The root of ``values`` from scratch: the reference an incremental root is checked against.

    The tree's definition transcribed as it reads, sharing no code with ``StateTree``: split the
    leaves by one path bit at a time, reading the bits from ``keccak(key)`` byte by byte.
    """
    for key in values:
        _check_key(key)
    return _root_of_leaves({key: leaf_hash(key, value) for key, value in values.items()})


def _root_of_leaves(leaf_hashes: Mapping[bytes, bytes]) -> bytes:
    """``compute_root`` from each key's leaf hash (a tree that keeps no values)."""
    leaves = [(keccak(key), hashed) for key, hashed in leaf_hashes.items()]
    assert len({path for path, _ in leaves}) == len(leaves), "keccak collision between two keys"
    return _subtree_hash(leaves, 0)


def _subtree_hash(leaves: list[tuple[bytes, bytes]], depth: int) -> bytes:
    """``H(S, depth)`` for ``S`` given as ``(keccak(key), leaf hash)`` pairs sharing a prefix."""
    if not leaves:
        return ZERO_HASH
    if len(leaves) == 1:
        return leaves[0][1]
    byte, bit = divmod(depth, 8)
    mask = 0x80 >> bit  # bits are read most significant first
    zeros = [leaf for leaf in leaves if not leaf[0][byte] & mask]
    ones = [leaf for leaf in leaves if leaf[0][byte] & mask]
    return node_hash(_subtree_hash(zeros, depth + 1), _subtree_hash(ones, depth + 1))


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """Whether ``proof`` shows ``key -> value`` (``value`` None: ``key`` absent) under ``root``.

    Pure: needs no tree. A malformed proof is an ordinary ``False``, never an exception, since
    proofs come from outside; a malformed ``key`` or ``root`` is the caller's bug and asserts.
    """
    _check_key(key)
    assert len(root) == HASH_BYTES, "roots are 32 bytes"
    assert value is None or isinstance(value, bytes)
    siblings = proof.siblings
    if not _is_hash_list(siblings):
        return False
    depth = len(siblings)
    path = _path_of(key)
    node = _terminal_hash(key, path, value, proof.other, depth)
    if node is None or (depth and siblings[-1] == ZERO_HASH):
        return False
    for at_depth in range(depth - 1, -1, -1):
        sibling = siblings[at_depth]
        if (path >> (PATH_BITS - 1 - at_depth)) & 1:
            node = node_hash(sibling, node)
        else:
            node = node_hash(node, sibling)
    return node == root


def _terminal_hash(
    key: bytes, path: int, value: bytes | None, other: object, depth: int
) -> bytes | None:
    """The hash at depth ``depth`` that the claim implies, or None when the claim is malformed."""
    if value is not None:
        return leaf_hash(key, value) if other is None else None
    if other is None:
        return ZERO_HASH
    if not _is_pair_of_bytes(other):
        return None
    other_key, other_value = other
    if not 0 < len(other_key) <= KEY_BYTES_MAX or other_key == key:
        return None
    shift = PATH_BITS - depth
    if (_path_of(other_key) >> shift) != (path >> shift):
        return None  # that leaf cannot sit on key's path at this depth
    return leaf_hash(other_key, other_value)


def _is_hash_list(siblings: object) -> bool:
    """A sibling list from outside is trusted for nothing, not even its shape."""
    return (
        isinstance(siblings, tuple)
        and len(siblings) <= PATH_BITS
        and all(isinstance(s, bytes) and len(s) == HASH_BYTES for s in siblings)
    )


def _is_pair_of_bytes(entry: object) -> TypeGuard[tuple[bytes, bytes]]:
    """An ``other`` leaf from outside is trusted for nothing, not even its shape."""
    return (
        isinstance(entry, tuple)
        and len(entry) == 2
        and isinstance(entry[0], bytes)
        and isinstance(entry[1], bytes)
    )
