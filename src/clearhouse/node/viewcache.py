"""Heavy reads, rendered once and shared: the writer never waits behind a crowd of readers.

An account view of hundreds of positions costs tens of milliseconds of the sequencer's lock
(margin, Greeks and ADL ranks per subaccount). Computed per request, eight readers kept the
lock, and so the writer, busy all the time. Here each view is computed once, under the lock,
rendered to JSON bytes outside it, and every reader gets those bytes without the lock while
the entry is fresh:

* at the height the writer last committed, always;
* or, for a view of one account, for at most ``VIEW_STALE_SECONDS`` after it was computed,
  as long as no block since has touched that account (a command it signed, a fill, a
  liquidation step). Its own
  changes show at once (an acknowledged command is in the next read); what other accounts and
  prices move (marks, PnL, ADL ranks) shows within ``VIEW_STALE_SECONDS``. Every answer says
  its height (``X-Clearhouse-Height``).

Readers of one key at once compute it once (the others wait on that key, not on the writer).
Nothing is rendered unless read: the cost never grows with the venue, only with what is read.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from clearhouse.node.readmodel import BlockUpdate

VIEW_CACHE_ENTRIES = 256  # rendered views kept; the least recently read go first
VIEW_STALE_SECONDS = 0.5  # how long a view may lag moves its owner did not make
# The owner of a view of many accounts that may lag like an account's (an ADL queue: a ranking
# of every holder, as of the height its answer states): recomputed at most once a lag, not
# every block, so that ranking them does not take the writer's lock every block.
LAGGING = "*"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A view its reader rendered to JSON itself, in pieces (``render_json``): kept as it is."""

    body: bytes


def render_json(value: object) -> bytes:
    """Compact JSON bytes. The C encoder holds the GIL for the whole value: a view of hundreds
    of positions rendered at once stalls the writer for milliseconds; rendered piece by piece,
    the writer gets the interpreter between the pieces."""
    return json.dumps(value, separators=(",", ":")).encode()


BLOCK_ANSWERS_BYTES_MAX = 32 * 2**20  # rendered block answers kept, by their bytes


class BlockAnswers:
    """Committed blocks' answers, rendered once each: a committed block never changes, so
    however often its height is read, its commands are parsed and rendered once while it stays
    here (the least recently read go first, within ``bytes_max``). Each answer keeps the weight
    its reader is charged. Readers on any thread."""

    def __init__(self, bytes_max: int = BLOCK_ANSWERS_BYTES_MAX) -> None:
        self.bytes_max = bytes_max
        self._answers: OrderedDict[int, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._mutex = threading.Lock()

    def get(self, height: int) -> tuple[bytes, float] | None:
        """(the answer's body, its weight), or None when not kept."""
        with self._mutex:
            found = self._answers.get(height)
            if found is not None:
                self._answers.move_to_end(height)
            return found

    def put(self, height: int, body: bytes, weight: float) -> None:
        """Keep an answer (one larger than the whole budget is not kept)."""
        if len(body) > self.bytes_max:
            return
        with self._mutex:
            if height in self._answers:
                return
            self._answers[height] = (body, weight)
            self._bytes += len(body)
            while self._bytes > self.bytes_max:
                _, (dropped, _) = self._answers.popitem(last=False)
                self._bytes -= len(dropped)


@dataclass(frozen=True, slots=True)
class View:
    height: int
    body: bytes  # the JSON, rendered
    computed: float  # time.monotonic() when it was read from state
    owner: str | None


class ViewCache:
    """Rendered views by key. ``committed`` is called by the writer, under its lock, for each
    block before its commands are acknowledged; ``get`` by readers on any thread."""

    def __init__(self, height: int = 0) -> None:
        self.height = height  # the last committed block
        self._views: OrderedDict[Hashable, View] = OrderedDict()
        self._touched: dict[str, int] = {}  # owner -> the last height a block touched it
        self._mutex = threading.Lock()  # guards the two dicts, never held while computing
        self._computing: dict[Hashable, threading.Lock] = {}
        self.computed = 0  # views read from state (for tests and metrics)

    def committed(self, update: BlockUpdate) -> None:
        with self._mutex:
            self.height = update.height
            for owner in update.owners | update.accounts.keys():  # O(block), not O(venue)
                self._touched[owner] = update.height
            if len(self._touched) > 16 * VIEW_CACHE_ENTRIES:  # only cached owners matter
                cached = {v.owner for v in self._views.values()}
                self._touched = {o: h for o, h in self._touched.items() if o in cached}

    def touched_at(self, owner: str) -> int:
        """The last height at which a block touched ``owner`` (0: none since the node began)."""
        with self._mutex:
            return self._touched.get(owner, 0)

    def get(
        self, key: Hashable, compute: Callable[[], tuple[object, int]], owner: str | None = None
    ) -> View:
        """The fresh view of ``key``, or ``compute()``'s (the view and its height, read under
        the writer's lock by the caller) rendered and kept. Errors from ``compute`` propagate
        and are not kept."""
        found = self._fresh(key)
        if found is not None:
            return found
        with self._key_lock(key):  # one reader computes; the others then find it fresh
            found = self._fresh(key)
            if found is not None:
                return found
            started = time.monotonic()
            value, height = compute()
            body = value.body if isinstance(value, Rendered) else render_json(value)  # unlocked
            view = View(height, body, started, owner)
            self.computed += 1
            with self._mutex:
                self._views[key] = view
                self._views.move_to_end(key)
                while len(self._views) > VIEW_CACHE_ENTRIES:
                    self._views.popitem(last=False)
            return view

    def peek(self, key: Hashable) -> View | None:
        """The view of ``key`` if fresh, never computing it (the read fast path)."""
        return self._fresh(key)

    def _fresh(self, key: Hashable) -> View | None:
        with self._mutex:
            view = self._views.get(key)
            if view is None:
                return None
            self._views.move_to_end(key)
            if view.height >= self.height:
                return view
            # A view of no one account (the liquidations, an ADL queue) may have changed in
            # any block: only one of the last committed height is served.
            if view.owner is None:
                return None
            if view.owner != LAGGING and self._touched.get(view.owner, 0) > view.height:
                return None
            return view if time.monotonic() - view.computed < VIEW_STALE_SECONDS else None

    def _key_lock(self, key: Hashable) -> threading.Lock:
        with self._mutex:
            lock = self._computing.get(key)
            if lock is None:
                if len(self._computing) > 4 * VIEW_CACHE_ENTRIES:  # drop idle ones
                    self._computing = {k: v for k, v in self._computing.items() if v.locked()}
                lock = self._computing[key] = threading.Lock()
            return lock
