"""Rate limits: token buckets per IP and per account, each request costing its endpoint's
weight (Binance-style weights: a batch costs more than a read); and caps on what one address
holds open at once (WebSocket connections, unanswered reads)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearhouse.core import limits
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.ids import Address, SubaccountId
from clearhouse.core.messages import AgentSigned, Command
from clearhouse.node.errors import ApiError

if TYPE_CHECKING:  # the node's context holds the limiters: a type only, no import cycle
    from fastapi import Request

    from clearhouse.core.state import EngineState
    from clearhouse.node.context import NodeContext

BUCKETS_KEPT = 100_000  # distinct IPs or accounts tracked; the least recently seen go first
# A heavy view (an account, a subaccount, an ADL queue, the liquidations): cheap while cached,
# a recompute under the writer's lock when not, so a reader pays for the worst case. So does a
# governance what-if on arrival; it and the margin what-if then pay for their size
# (``charge_work``): a weight is about a millisecond of the node's work.
HEAVY_READ_WEIGHT = 5.0
# Each agent key an account authorizes keeps its nonce set in state for the nonce window's two
# days (~570 bytes): an account may authorize a whole set of agents at once, then one every
# this many seconds (authorize, sign once, revoke, again: ~0.3 MB of state a second from one
# funded account, held for two days).
AGENT_AUTHORIZATION_SECONDS = 6.0
# A list read (a subaccount's history or open orders, a market's trades, candles or funding
# payments, a book's levels) is annotated item by item under the writer's lock, then checked
# against its response model and rendered, ~20 µs an item: a page of 1,000 history items took
# ~21 ms more than /health, so it weighs one per this many items.
LIST_ITEMS_PER_WEIGHT = 50
# A command weighs one on arrival, whatever its block then makes of it: a taker that walks the
# thousand makers' orders a match may meet (each maker's margin checked) and is then refused
# for its own margin cost the writer ~25 ms, changed nothing and paid no fee, and one address
# sending them at its default budget asked for ~50 s of the writer a second (1,600 took 36.5 s
# of blocks; honest orders waited 8.4 s). The writer times each command; what one takes
# beyond this many seconds is charged after its answer, a weight a millisecond, to its signing
# key and its address (``commands.charge_done``): their next requests wait for it.
COMMAND_WORK_FREE_SECONDS = 0.001


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` weight per second with bursts up to ``burst``; a rate of 0 disables it. Charged
    from the event loop and from the worker threads of routes that weigh their work (a
    block's answer, a what-if): a lock keeps a charge whole and an eviction from racing it."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, weight: float = 1.0) -> float:
        """0.0 if allowed (and charged), else the seconds to wait before it would be."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            return self._charge(key, weight)

    def _charge(self, key: str, weight: float) -> float:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            if len(self._buckets) > BUCKETS_KEPT:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= weight:
            bucket.tokens -= weight
            return 0.0
        return (weight - bucket.tokens) / self.rate

    def debit(self, key: str, weight: float) -> None:
        """Take ``weight`` whatever the bucket holds, below zero if need be: work already done
        (a command's, measured in its block) that the key's next requests wait for, all of it
        (a floor would let a burst of costly commands owe less than they cost)."""
        if self.rate <= 0 or weight <= 0:
            return
        with self._lock:
            self._charge(key, 0.0)  # the bucket refilled to now (and tracked), charged nothing
            bucket = self._buckets[key]
            bucket.tokens -= weight

    def remaining(self, key: str) -> int:
        """Whole weight units left in ``key``'s bucket as of its last request (the
        ``X-RateLimit-Remaining`` header); the burst for a key not seen yet."""
        with self._lock:
            bucket = self._buckets.get(key)
        return int(self.burst if bucket is None else max(0.0, bucket.tokens))


class OpenPerKey:
    """How many of something each key (an address) holds open, at most ``most`` each."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.open: dict[str, int] = {}

    def admit(self, key: str) -> bool:
        """Count one more for ``key``; False (and not counted) when it holds ``most``."""
        open_now = self.open.get(key, 0)
        if open_now >= self.most:
            return False
        self.open[key] = open_now + 1
        return True

    def release(self, key: str) -> None:
        left = self.open[key] - 1
        if left:
            self.open[key] = left
        else:
            del self.open[key]


def charge_work(ctx: NodeContext, request: Request, weight: float, paid: float) -> None:
    """The per-IP limit's charge for a request whose cost is known once it is read (a batch's
    commands, the positions a what-if margins, the holders a governance what-if examines),
    beyond the ``paid`` its arrival cost; at most the limit's burst, so that it passes once
    its address has waited."""
    charge_ip(ctx, request.client.host if request.client else "?", weight, paid)


def charge_ip(ctx: NodeContext, ip: str, weight: float, paid: float) -> None:
    """``charge_work`` for an address (a WebSocket's, whose snapshots cost as the reads do)."""
    ip_limits = ctx.ip_limits
    extra = min(weight, ip_limits.burst) - paid
    wait = ip_limits.allow(ip, extra) if extra > 0 else 0.0
    refuse_if_limited(ctx, wait, "too many requests from this address")


# An account's view computes each subaccount's margin and Greeks and each position's value and
# ADL rank: measured on the dev node, ~0.11 ms of CPU a subaccount and ~0.05 ms a position. At a
# heavy read's flat 5, a view of 128 subaccounts of 3 positions each (34 ms of CPU, recomputed
# whenever a block touched the account: its owner's own command between two reads) cost 7
# times its weight, and one address at the default --ip-rate asked for ~13 s of CPU a second.
# A view that is computed weighs with what it holds (a fresh one is rendered bytes: 5, as before).
SUBACCOUNTS_PER_WEIGHT = 8
POSITIONS_PER_WEIGHT = 16


def account_weight(state: EngineState, owner: Address, numbers: Iterable[int]) -> float:
    """What computing the view of ``owner``'s subaccounts ``numbers`` weighs (counted without
    the lock, by lookups and lengths only: an estimate charged before the work)."""
    ledger = state.ledger.subaccounts
    found = [s for n in numbers if (s := ledger.get(SubaccountId(owner, n))) is not None]
    positions = sum(len(s.positions) for s in found)
    work = len(found) / SUBACCOUNTS_PER_WEIGHT + positions / POSITIONS_PER_WEIGHT
    return max(HEAVY_READ_WEIGHT, work)


def agent_authorizations() -> RateLimiter:
    """The per-account limit on ``AuthorizeAgent``: a whole set of agents at once, then one
    every ``AGENT_AUTHORIZATION_SECONDS``."""
    return RateLimiter(1.0 / AGENT_AUTHORIZATION_SECONDS, float(limits.agents_per_account_max))


def list_weight(items: int) -> float:
    """What a list read of ``items`` weighs: one read for a short list, one per
    ``LIST_ITEMS_PER_WEIGHT`` items for a long one."""
    return max(1.0, items / LIST_ITEMS_PER_WEIGHT)


def charge_list(ctx: NodeContext, request: Request, items: int) -> None:
    """Charge a list read for the ``items`` it may answer (at most its limit, at most what is
    kept: counted without the lock, before the read), beyond the one read its arrival paid."""
    charge_work(ctx, request, list_weight(items), paid=1.0)


def refuse_if_limited(ctx: NodeContext, wait: float, message: str) -> None:
    """A refusal that says when to come back, counted, when a limit asks to ``wait``."""
    if wait:
        ctx.metrics.rate_limited.inc()
        raise ApiError(429, "RATE_LIMITED", message, retry_after_seconds=round(wait, 3))


Recovery = Command | AgentSigned | InvalidArgument  # what recovering a signature gave
RECOVERED_MAX = 8_192
# A larger command is recovered each time it comes: its decoding already costs as much, and a
# cache of whatever anyone sends must stay small (8,192 of these: tens of MB at most).
RECOVERED_COMMAND_BYTES_MAX = 2_048


class Recovered:
    """Signatures already recovered, by a digest of the command's canonical bytes and the
    signature: a byte-identical resubmission (a client's retry, or one signed command sent
    again and again) is answered from here, never recovered twice (~0.25 ms of CPU each).
    Recovery is a function of those bytes alone (the node's domain is fixed), so an entry is
    never stale; a bad signature is kept too, so a flood of one forgery costs one recovery.
    At most ``RECOVERED_MAX`` entries of commands up to ``RECOVERED_COMMAND_BYTES_MAX``, the
    oldest forgotten first. Read and written on the event loop's thread only."""

    __slots__ = ("_found", "_size")

    def __init__(self, size: int = RECOVERED_MAX) -> None:
        self._found: dict[bytes, Recovery] = {}
        self._size = size

    @staticmethod
    def key(canonical: bytes, signature: bytes) -> bytes:
        return hashlib.sha256(canonical + b"|" + signature).digest()

    def get(self, key: bytes) -> Recovery | None:
        return self._found.get(key)

    def put(self, key: bytes, found: Recovery, *, command_bytes: int) -> None:
        if command_bytes > RECOVERED_COMMAND_BYTES_MAX:
            return
        if len(self._found) >= self._size:
            del self._found[next(iter(self._found))]  # insertion order: the oldest
        self._found[key] = found
