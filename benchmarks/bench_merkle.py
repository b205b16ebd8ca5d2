"""State root cost: the compressed binary sparse Merkle tree against the previous bucket scheme.

Usage: python benchmarks/bench_merkle.py [--sizes 1000,10000,100000,1000000] [--repeat 15]
                                         [--dirty 100] [--json PATH]

For each map size (keys ``sub/<n>``, 150-byte values), both implementations in one process:

* build: ``set`` every key then ``root()``, CPU seconds (``time.process_time``), with the cyclic
  garbage collector on as in the node, and the part of it spent in collections: every tuple the
  new tree allocates counts towards the next one, and a full collection walks every container in
  the process (here the benchmark's own million-entry lists as well as the tree's dict);
* memory: bytes per key allocated by the tree itself (``tracemalloc`` around a separate build;
  the keys and values exist before tracing starts, so only the tree's own objects count);
* update: CPU µs per dirty key of ``root()`` after overwriting ``--dirty`` random existing keys,
  median of ``--repeat`` rounds, each applied to both trees in turn; and of the ``set`` calls
  and ``root()`` together, since the old scheme hashes each key in ``set`` where the new one
  defers that to ``root``;
* churn: the same after deleting ``--dirty / 2`` random keys and inserting as many new ones.

``BucketTree`` below is the previous scheme (65,536 buckets of keccak(key) prefixes under a
depth-16 tree, as of commit a661d36), copied here as the peer, trimmed to what is measured.
"""

from __future__ import annotations

import argparse
import builtins
import gc
import json
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from clearhouse.core.hashing import ZERO_HASH, keccak, keccak_hasher
from clearhouse.core.merkle import StateTree

VALUE_BYTES = 150
SEED = 20240611


# ── The peer: the previous bucket scheme, verbatim in what it hashes ──────────────────────────

_BUCKET_BITS = 16


def _bucket_index(key: bytes) -> int:
    return int.from_bytes(keccak(key)[: _BUCKET_BITS // 8], "big")


def _leaf_hash(key: bytes, value: bytes) -> bytes:
    return keccak(b"\x00" + len(key).to_bytes(4, "big") + key + value)


class BucketTree:
    """The previous ``StateTree``: every leaf of a dirty bucket is re-sorted and rehashed."""

    __slots__ = ("_bucket_keys", "_dirty_buckets", "_dirty_keys", "_leaves", "_levels", "_values")

    def __init__(self) -> None:
        self._values: dict[bytes, bytes] = {}
        self._leaves: dict[bytes, bytes] = {}
        self._bucket_keys: dict[int, set[bytes]] = {}
        self._levels: list[dict[int, bytes]] = [{} for _ in range(_BUCKET_BITS + 1)]
        self._dirty_keys: set[bytes] = set()
        self._dirty_buckets: set[int] = set()

    def set(self, key: bytes, value: bytes) -> None:
        if key not in self._values:
            bucket = _bucket_index(key)
            self._bucket_keys.setdefault(bucket, set()).add(key)
            self._dirty_buckets.add(bucket)
        elif key not in self._dirty_keys:
            self._dirty_buckets.add(_bucket_index(key))
        self._values[key] = value
        self._dirty_keys.add(key)

    def delete(self, key: bytes) -> None:
        bucket = _bucket_index(key)
        del self._values[key]
        self._leaves.pop(key, None)
        self._dirty_keys.discard(key)
        keys = self._bucket_keys[bucket]
        keys.remove(key)
        if not keys:
            del self._bucket_keys[bucket]
        self._dirty_buckets.add(bucket)

    def root(self) -> bytes:
        values = self._values
        leaves = self._leaves
        for key in self._dirty_keys:
            leaves[key] = _leaf_hash(key, values[key])
        self._dirty_keys.clear()
        buckets = self._levels[0]
        for index in self._dirty_buckets:
            keys = self._bucket_keys.get(index)
            if keys:
                buckets[index] = keccak(b"\x01" + b"".join([leaves[k] for k in sorted(keys)]))
            else:
                buckets.pop(index, None)
        dirty = self._dirty_buckets
        self._dirty_buckets = set()
        for level in range(_BUCKET_BITS):
            dirty = self._rehash_level(level, dirty)
        return self._levels[_BUCKET_BITS].get(0, ZERO_HASH)

    def _rehash_level(self, level: int, dirty: builtins.set[int]) -> builtins.set[int]:
        child = self._levels[level].get
        above = self._levels[level + 1]
        parents = {index >> 1 for index in dirty}
        for parent in parents:
            left = child(parent << 1)
            right = child((parent << 1) | 1)
            if left is None and right is None:
                above.pop(parent, None)
            else:
                digest = keccak_hasher(b"\x02" + (left or ZERO_HASH) + (right or ZERO_HASH))
                above[parent] = digest.digest()
        return parents


# ── The measurements ──────────────────────────────────────────────────────────────────────────


class Tree(Protocol):
    def set(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def root(self) -> bytes: ...


IMPLEMENTATIONS: dict[str, Callable[[], Tree]] = {
    "buckets (old)": BucketTree,
    "trie (new)": StateTree,
}


def build(factory: Callable[[], Tree], keys: Sequence[bytes], values: Sequence[bytes]) -> Tree:
    tree = factory()
    for key, value in zip(keys, values, strict=True):
        tree.set(key, value)
    tree.root()
    return tree


def tree_bytes_per_key(
    factory: Callable[[], Tree], keys: Sequence[bytes], values: Sequence[bytes]
) -> float:
    """What the tree allocates beyond the key and value objects it is handed, per key."""
    gc.collect()
    tracemalloc.start()
    tree = build(factory, keys, values)
    allocated, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del tree
    return allocated / len(keys)


class CollectorClock:
    """Seconds spent in the cyclic garbage collector while the ``with`` block runs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> CollectorClock:
        gc.callbacks.append(self._tick)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._tick)

    def _tick(self, phase: str, _: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


Operation = tuple[bytes, bytes | None]  # (key, new value), or (key, None) to delete it


def timed_round(tree: Tree, operations: list[Operation]) -> tuple[float, float]:
    """CPU µs per dirty key of ``root()``, and of the ``set``/``delete`` calls and it together."""
    started = time.process_time()
    for key, value in operations:
        if value is None:
            tree.delete(key)
        else:
            tree.set(key, value)
    applied = time.process_time()
    tree.root()
    finished = time.process_time()
    return (
        (finished - applied) / len(operations) * 1e6,
        (finished - started) / len(operations) * 1e6,
    )


def measure(size: int, repeat: int, dirty: int) -> dict[str, dict[str, float]]:
    """Both implementations at one size, fed the very same keys, values and rounds.

    The rounds alternate between the two trees (in turn first), so that a neighbour's load on a
    shared machine lands on both alike.
    """
    rng = random.Random(SEED + size)
    keys = [b"sub/%d" % n for n in range(size)]
    values = [rng.randbytes(VALUE_BYTES) for _ in keys]
    rows: dict[str, dict[str, float]] = {}
    trees: dict[str, Tree] = {}
    for name, factory in IMPLEMENTATIONS.items():
        memory = tree_bytes_per_key(factory, keys, values)
        gc.collect()
        with CollectorClock() as collector:
            started = time.process_time()
            trees[name] = build(factory, keys, values)
            build_s = time.process_time() - started
        rows[name] = {
            "size": size,
            "build_s": build_s,
            "build_gc_s": collector.seconds,
            "bytes_per_key": memory,
        }
    present = list(keys)
    fresh = iter(range(size, 2**62))

    def overwrite() -> list[Operation]:
        return [(key, rng.randbytes(VALUE_BYTES)) for key in rng.sample(present, dirty)]

    def churn() -> list[Operation]:
        gone: list[Operation] = []
        for index in sorted(rng.sample(range(len(present)), dirty // 2), reverse=True):
            gone.append((present[index], None))
            present[index] = present[-1]
            present.pop()
        born = [b"sub/%d" % next(fresh) for _ in range(dirty // 2)]
        present.extend(born)
        return gone + [(key, rng.randbytes(VALUE_BYTES)) for key in born]

    for label, rounds in (("update", overwrite), ("churn", churn)):
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for turn in range(repeat):
            operations = rounds()
            names = list(trees) if turn % 2 == 0 else list(reversed(trees))
            for name in names:
                samples[name].append(timed_round(trees[name], operations))
        for name, pairs in samples.items():
            rows[name][f"{label}_root_us_per_key"] = statistics.median(r for r, _ in pairs)
            rows[name][f"{label}_set_and_root_us_per_key"] = statistics.median(t for _, t in pairs)
    return rows


COLUMNS = [
    ("update_root_us_per_key", "update: root() µs/key"),
    ("update_set_and_root_us_per_key", "update: set+root µs/key"),
    ("churn_root_us_per_key", "churn: root() µs/key"),
    ("bytes_per_key", "tree bytes/key"),
    ("build_s", "build s"),
    ("build_gc_s", "  of which in gc, s"),
]


def print_table(results: dict[str, list[dict[str, float]]]) -> None:
    """One block per measure: old, new and old/new at each size (above 1: the new is cheaper)."""
    old, new = results.values()
    sizes = [int(row["size"]) for row in old]
    print(f"\n{'':<26}" + "".join(f"{size:>12,}" for size in sizes) + "  keys")
    for field, label in COLUMNS:
        print(f"{label:<26}" + "".join(f"{row[field]:>12.2f}" for row in old) + "  old (buckets)")
        print(f"{'':<26}" + "".join(f"{row[field]:>12.2f}" for row in new) + "  new (trie)")
        ratios = [
            _ratio(before[field], after[field]) for before, after in zip(old, new, strict=True)
        ]
        print(f"{'':<26}" + "".join(f"{ratio:>12}" for ratio in ratios) + "  old / new")


def _ratio(before: float, after: float) -> str:
    return f"{before / after:.2f}x" if after > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dirty", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in IMPLEMENTATIONS}
    for size in (int(s) for s in args.sizes.split(",")):
        for name, row in measure(size, args.repeat, args.dirty).items():
            results[name].append(row)
            print(f"{name:>14} {size:>9,} keys: {json.dumps(row)}", flush=True)
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps({"bench": "merkle", "results": results}, indent=2))


if __name__ == "__main__":
    main()
