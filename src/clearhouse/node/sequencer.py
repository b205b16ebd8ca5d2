"""The single writer: commands queue up, a block is cut as soon as the previous one is durable
(an empty heartbeat block at most every second), and every command in it is acknowledged only
after its block's transaction has committed (SPEC §12). With a block stream (``--replicate``:
NATS JetStream, ``app/replication.py``) a block's commands are acknowledged only once the
stream has acknowledged the block too, so a replica that takes over holds every one of them.

One thread owns the chain. Readers (the API) take ``lock``, which the writer holds while it
executes a block and makes it durable, so nobody ever reads state that a crash could take back.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import pickle
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from clearhouse.app.chain import Chain
from clearhouse.app.ports import BlockStream, Snapshot, StoredBlock
from clearhouse.core import limits
from clearhouse.core.codec import encode_command
from clearhouse.core.engine import Engine
from clearhouse.core.errors import ReplicationError, ReplicationUnavailable
from clearhouse.core.ids import Address, MarketId, Side, SubaccountId
from clearhouse.core.merkle import StateTree
from clearhouse.core.messages import AgentSigned, Command, Deposit, PlaceOrder
from clearhouse.core.state import EngineState
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.node import human
from clearhouse.node.dev import DevFeed, Faucet
from clearhouse.node.readmodel import BlockUpdate, CommandResult, ReadModel, command_key
from clearhouse.node.snapshots import BackgroundSnapshots

log = logging.getLogger("clearhouse.node.sequencer")
GC_FREEZE_EVERY_BLOCKS = 100  # see _freeze_long_lived

HEARTBEAT_NS = NS_PER_SECOND  # an empty block at most this far apart keeps time moving
QUEUE_MAX = 100_000  # commands waiting for a block; beyond it submissions are refused (503)
# A snapshot is (EngineState, ReadModel), pickled; the engine is rebuilt from the state on load.
# The version changes with their shape (6: governance in both; 7: forward curves and the
# options vault in the state; 8: a subaccount's quote balance in a field of its own; 9: a
# surface slice's reported forward), so an older node's snapshot is passed over for a replay
# from genesis instead of loading with fields missing.
SNAPSHOT_FORMAT = b"clearhouse-snapshot-9\n"
# While the block stream cannot be reached, the writer retries a block's publication this often
# (doubling from the first), refusing new commands meanwhile (REPLICATION_UNAVAILABLE).
REPLICATION_RETRY_SECONDS = (0.1, 2.0)


class DuplicateClientOrder(Exception):
    """A different order with a client order id this subaccount already used (or is using):
    refused before it reaches a block, so a re-signed retry never places an order twice."""

    def __init__(self, existing: dict[str, object] | None) -> None:
        super().__init__("this subaccount already placed an order with this client order id")
        self.existing = existing


class AnchoredClock:
    """Wall-clock time read once, then advanced by the monotonic clock: block times follow
    real time, but a wall clock stepped forward and back (NTP, an operator) cannot drag the
    venue's time ahead and expire every command signed with the right time."""

    def __init__(self) -> None:
        self._wall_ns = time.time_ns()
        self._monotonic_ns = time.monotonic_ns()

    def now_ns(self) -> int:
        return self._wall_ns + time.monotonic_ns() - self._monotonic_ns


class NodeUnavailable(Exception):
    """The node cannot take the command now: stopping, failed, or its queue is full."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Submission:
    data: bytes  # the command's journal bytes
    signature: bytes
    key: bytes
    future: Future[CommandResult]
    client_key: tuple[str, int] | None = None  # (subaccount, client order id) of a PlaceOrder
    owner: str | None = None  # the account the command acts for (its signer's)
    received: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class BlockStats:
    height: int
    commands: int
    execute_seconds: float
    commit_seconds: float
    ack_latencies: list[float]


BlockListener = Callable[[BlockUpdate, dict[str, dict[str, list[list[int]]]]], None]


def _freeze_long_lived() -> None:
    """Move what has lived through the young collections out of the collector's sight.

    CPython's full collection walks every tracked object, and the venue's state is most of
    them: with a large book or many positions one pass holds the interpreter for tens of
    milliseconds, and every thread (the writer included) waits. The state is long-lived and
    freed by reference counting when it goes; the cycles that matter (exceptions and their
    tracebacks) die young, in the collections of generations 0 and 1, run first."""
    gc.collect(1)
    gc.freeze()


class Sequencer:
    def __init__(
        self,
        chain: Chain,
        read_model: ReadModel,
        *,
        snapshot_every: int = 1_000,
        dev_feed: DevFeed | None = None,
        faucet: Faucet | None = None,
        book_levels: int = 50,
        stream: BlockStream | None = None,
        block_bytes_max: int | None = None,
    ) -> None:
        """``stream``: publish every block there, and acknowledge its commands only once the
        stream has it; ``block_bytes_max`` bounds the commands' bytes in a block (a stream's
        message size)."""
        self.chain = chain
        self.stream = stream
        self.block_bytes_max = block_bytes_max
        # True while a durable block waits for the stream: new commands are refused.
        self.replication_down = False
        # The first durable block the stream has not taken (None while it has every one). The
        # read model knows its results from the moment it is durable, but a result from this
        # height on is not acknowledged (``result``): a replica taking over would not hold it,
        # and after a fence it never will, so this is never cleared then.
        self._unreplicated_from: int | None = None
        self.read_model = read_model
        self.lock = threading.RLock()
        self.snapshot_every = snapshot_every
        self._snapshots = BackgroundSnapshots(self._write_snapshot_body)
        self.dev_feed = dev_feed
        self.faucet = faucet
        self.book_levels = book_levels
        self.listeners: list[BlockListener] = []
        # Called on the writer thread under ``lock``, before the block's commands are
        # acknowledged: what must know of a block before anyone hears of it (the view cache).
        self.commit_listeners: list[Callable[[BlockUpdate], None]] = []
        self.stats_listeners: list[Callable[[BlockStats], None]] = []
        self.books: dict[str, dict[str, list[list[int]]]] = {}
        self._queue: deque[Submission] = deque()
        self._inflight: dict[bytes, Submission] = {}
        self._inflight_clients: dict[tuple[str, int], Submission] = {}
        # The seconds the writer spent applying each submission's command, by its future, for
        # as long as someone holds that future (``work_seconds``).
        self._work: weakref.WeakKeyDictionary[Future[CommandResult], float] = (
            weakref.WeakKeyDictionary()
        )
        self._cond = threading.Condition()
        self._stopping = False
        self.failure: BaseException | None = None
        # Called (on the writer thread) once the sequencer has stopped on an error: the server
        # stops serving then (node/server.py).
        self.on_failure: Callable[[BaseException], None] | None = None
        self.clock = AnchoredClock()
        self._next_deposit_id = 1
        self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)
        self.books = {m: self._depth(m) for m in sorted(chain.engine.state.markets)}
        self.scales = human.Scales.of(chain.engine)  # replaced, never changed, each block

    # ── Submitting ─────────────────────────────────────────────────────────────────────────

    def submit(
        self, item: Command | AgentSigned, signature: bytes = b""
    ) -> tuple[Future[CommandResult], bool]:
        """Queue an authenticated command; the future resolves once its block is durable.
        Returns (future, duplicate): a byte-identical command already done or in flight gets
        that one's future, so retrying a submission never applies it twice."""
        data = encode_command(item)
        owner = (item.command if isinstance(item, AgentSigned) else item).signer
        with self._cond:
            return self._enqueue(data, signature, _client_key(item), owner)

    def submit_deposit(
        self, owner: str, subaccount_number: int, usdc: int
    ) -> tuple[Future[CommandResult], bool]:
        """Dev faucet: a relayer deposit, numbered in queue order (ids must increase)."""
        if self.faucet is None:
            raise NodeUnavailable("FAUCET_DISABLED", "the faucet exists only in --dev mode")
        with self._cond:
            # Ids must rise: past anything in state (another relayer deposit may have used
            # any id) and past every faucet deposit still queued.
            deposit_id = max(self._next_deposit_id, self.chain.engine.state.last_deposit_id + 1)
            self._next_deposit_id = deposit_id + 1
            deposit: Deposit = self.faucet.deposit(
                self.clock.now_ns(), deposit_id, Address(owner), subaccount_number, usdc
            )
            return self._enqueue(encode_command(deposit), b"", owner=owner.lower())

    def _enqueue(
        self,
        data: bytes,
        signature: bytes,
        client_key: tuple[str, int] | None = None,
        owner: str | None = None,
    ) -> tuple[Future[CommandResult], bool]:
        if self.failure is not None:
            raise _unavailable(self.failure)
        if self._stopping:
            raise NodeUnavailable("NODE_STOPPING", "the node is shutting down")
        if self.replication_down:
            why = "the block stream cannot be reached: nothing is acknowledged until it is"
            raise NodeUnavailable("REPLICATION_UNAVAILABLE", f"{why}; retry shortly")
        key = command_key(data)
        done = self.read_model.result(key)
        if done is not None:
            finished: Future[CommandResult] = Future()
            finished.set_result(done)
            return finished, True
        pending = self._inflight.get(key)
        if pending is not None:
            return pending.future, True
        if client_key is not None:
            self._check_client_key(client_key)
        if len(self._queue) >= QUEUE_MAX:
            raise NodeUnavailable("NODE_BUSY", "too many commands waiting; retry shortly")
        submission = Submission(data, signature, key, Future(), client_key=client_key, owner=owner)
        self._queue.append(submission)
        self._inflight[key] = submission
        if client_key is not None:
            self._inflight_clients[client_key] = submission
        self._cond.notify()
        return submission.future, False

    def result(self, key: bytes) -> CommandResult | None:
        """A command's result by its key, for whoever asks after its submission's answer
        (``GET /v1/commands/{hash}``): None if no block holds it; NodeUnavailable while its
        block is durable here but not on the block stream (as its submission is then), or if
        the stream fenced this node off before it took that block (lost with this node)."""
        found = self.read_model.result(key)
        # Read after the result: the mark is set before the read model learns a block and
        # cleared only once the stream holds it, so a result seen with no mark is replicated.
        pending = self._unreplicated_from
        if found is None or pending is None or found.height < pending:
            return found
        if isinstance(self.failure, ReplicationError):
            raise _unavailable(self.failure)
        why = "its block is durable but not yet on the block stream"
        raise NodeUnavailable("REPLICATION_UNAVAILABLE", f"{why}; retry shortly")

    def _check_client_key(self, client_key: tuple[str, int]) -> None:
        # A client key is in flight until the read model has it (it is added there before
        # the flight ends), so the two lookups never both miss an order that was placed.
        if client_key in self._inflight_clients:
            raise DuplicateClientOrder(None)
        order_id = self.read_model.client_orders.get(client_key)
        if order_id is not None:  # order records are replaced, never mutated: no lock needed
            existing = self.read_model.orders.get(order_id)
            raise DuplicateClientOrder(None if existing is None else dict(existing))

    def work_seconds(self, future: Future[CommandResult]) -> float:
        """The seconds the writer spent applying the command that ``future`` answered (0 if
        not known: a resubmission of a command done before). A command's cost is known only
        in its block: a taker that walked a thousand makers' orders and was then refused for
        its own margin took ~25 ms, a plain order well under one; the API charges it to the
        command's key and address (``commands.charge_done``)."""
        return self._work.get(future, 0.0)

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    # ── The writer thread ──────────────────────────────────────────────────────────────────

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful: refuse new commands, put every queued one in a block, snapshot, return."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                if batch is None:
                    break
                self._cut(batch)
            self._snapshots.wait()
            self._snapshot_quietly()
        except BaseException as error:  # a journal that cannot commit: stop taking commands
            self.failure = error
            log.exception("sequencer stopped")
            self._fail_pending(error)
            if self.on_failure is not None:
                self.on_failure(error)

    def _take(self) -> list[Submission] | None:
        """Wait for commands (at most a heartbeat), then take all that are queued."""
        with self._cond:
            deadline = time.monotonic() + HEARTBEAT_NS / NS_PER_SECOND
            while not self._queue and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            if not self._queue and self._stopping:
                return None
            batch = self._batch()
        for submission in batch:
            # From here the future cannot be cancelled: its command goes in this block, and
            # whoever still waits for it (a duplicate submission) gets the answer.
            submission.future.set_running_or_notify_cancel()
        return batch

    def _batch(self) -> list[Submission]:
        """The queue's head, as much as a block takes: its count, and (with a stream) its
        bytes, at least one command either way (one command always fits a message)."""
        room = limits.commands_per_block_max - 64  # room for the node's own reports
        budget = self.block_bytes_max
        batch: list[Submission] = []
        size = 0
        while self._queue and len(batch) < room:
            cost = len(self._queue[0].data) + len(self._queue[0].signature) + 8
            if budget is not None and batch and size + cost > budget:
                break
            batch.append(self._queue.popleft())
            size += cost
        return batch

    def _cut(self, batch: Sequence[Submission]) -> None:
        now_ns = self.clock.now_ns()
        internal = self._internal_commands(now_ns)
        encoded = [*internal, *(s.data for s in batch)]
        signatures = [b""] * len(internal) + [s.signature for s in batch]
        with self.lock:
            timestamp_ns = max(now_ns, self.chain.engine.state.timestamp_ns)
            started = time.perf_counter()
            marks: list[float] = []  # when the prologue ended, then when each command did
            executed = self.chain.produce_encoded(
                timestamp_ns, encoded, signatures,
                after_prologue=lambda _: marks.append(time.perf_counter()),
                after_command=lambda _: marks.append(time.perf_counter()),
            )  # fmt: skip
            executed_at = time.perf_counter()
            durable = self.chain.flush()  # durable from here on: only now may anyone hear of it
            committed = time.perf_counter()
            # Replicated too before anyone hears of it; if the stream is away, the block waits
            # for it below, outside the lock, and nothing is acknowledged meanwhile.
            replicated = self._replicate(durable)
            block_hash = self.chain.parent_hash
            update, results = self.read_model.apply(executed, encoded, block_hash)
            update.owners.update(update.accounts)
            update.owners.update(s.owner for s in batch if s.owner is not None)
            # Answers and streams speak human units too: the scales as of this block (a listing
            # may have added some), read once here, used after the lock by anyone.
            self.scales = scales = human.Scales.of(self.chain.engine)
            # The streams' trades and account events in the same terms as the REST answers.
            update.trades = {m: human.annotate(t, scales, m) for m, t in update.trades.items()}
            update.accounts = {o: human.annotate(e, scales) for o, e in update.accounts.items()}
            for tell in self.commit_listeners:
                tell(update)
            touched = update.books_touched
            if "*" in touched:  # an order the read model no longer knows: refresh every book
                touched = set(self.books) | (touched - {"*"})
            for market_id in touched:
                self.books[market_id] = self._depth(market_id)
            books = {m: self.books[m] for m in touched}
        if not replicated:
            self._replicate_until_acknowledged(durable)
        acked = time.perf_counter()
        header = executed.header
        latencies = [acked - submission.received for submission in batch]
        offset = len(internal)
        work = [marks[offset + i + 1] - marks[offset + i] for i in range(len(batch))]
        self._acknowledge(batch, results[offset:], work)
        stats = BlockStats(header.height, len(encoded), executed_at - started,
                           committed - executed_at, latencies)  # fmt: skip
        for listen in self.stats_listeners:
            listen(stats)
        for listener in self.listeners:
            listener(update, books)
        if self.snapshot_every and header.height % self.snapshot_every == 0:
            self._snapshot_in_background()
        if header.height % GC_FREEZE_EVERY_BLOCKS == 0:
            _freeze_long_lived()

    def _acknowledge(
        self, batch: Sequence[Submission], results: Sequence[CommandResult],
        work_seconds: Sequence[float],
    ) -> None:  # fmt: skip
        """Answer each submission (with the writer's time its command took, for its charge)."""
        for submission, result, work in zip(batch, results, work_seconds, strict=True):
            if not submission.future.done():
                self._work[submission.future] = work
                submission.future.set_result(result)
        with self._cond:  # answered first: a failure before this line still finds them
            for submission in batch:
                self._inflight.pop(submission.key, None)
                if submission.client_key is not None:
                    self._inflight_clients.pop(submission.client_key, None)

    def _replicate(self, blocks: Sequence[StoredBlock]) -> bool:
        """Publish the blocks just made durable (one, or none without a stream): True once the
        stream has them, False if it cannot be reached. ReplicationFenced (another sequencer
        has appended) goes up: the writer stops, and every waiting command is refused."""
        if self.stream is None:
            return True
        try:
            for block in blocks:
                self.stream.publish(block)
        except ReplicationUnavailable as error:
            log.error("block stream unavailable: refusing commands until it answers",
                      extra={"height": blocks[-1].header.height, "why": str(error)})  # fmt: skip
            with self._cond:
                self.replication_down = True
                self._unreplicated_from = blocks[0].header.height
            return False
        return True

    def _replicate_until_acknowledged(self, blocks: Sequence[StoredBlock]) -> None:
        """Retry the blocks' publication (their message ids make a retry of one already stored
        harmless) until the stream acknowledges them; new commands are refused meanwhile. A
        stop asked for meanwhile ends the wait with ReplicationUnavailable: the block's
        commands are then refused, never acknowledged."""
        assert self.stream is not None
        delay, delay_max = REPLICATION_RETRY_SECONDS
        while True:
            with self._cond:
                if self._stopping:
                    raise ReplicationUnavailable(
                        f"stopped with block {blocks[-1].header.height} durable but not on the "
                        "block stream: its commands were not acknowledged"
                    )
                self._cond.wait(delay)
            delay = min(delay * 2, delay_max)
            try:
                for block in blocks:
                    self.stream.publish(block)
            except ReplicationUnavailable:
                continue
            with self._cond:
                self.replication_down = False
                self._unreplicated_from = None
            log.info("block stream back", extra={"height": blocks[-1].header.height})
            return

    def _snapshot_quietly(self) -> None:
        """A snapshot only shortens recovery: failing to write one must not stop the node."""
        try:
            self.write_snapshot()
        except Exception:
            log.exception("snapshot failed; recovery replays further back until the next one")

    def _internal_commands(self, now_ns: int) -> list[bytes]:
        feed = self.dev_feed
        if feed is None or now_ns - feed.last_ns < HEARTBEAT_NS:
            return []
        return [encode_command(c) for c in feed.reports(now_ns)]

    def _depth(self, market_id: str) -> dict[str, list[list[int]]]:
        market = self.chain.engine.state.markets.get(MarketId(market_id))
        if market is None:
            return {"bids": [], "asks": []}
        return {
            "bids": [list(level) for level in market.book.depth(Side.BUY, self.book_levels)],
            "asks": [list(level) for level in market.book.depth(Side.SELL, self.book_levels)],
        }

    def _fail_pending(self, error: BaseException) -> None:
        with self._cond:
            pending = list(self._queue) + list(self._inflight.values())
            self._queue.clear()
            self._inflight.clear()
            self._inflight_clients.clear()
        for submission in pending:
            if not submission.future.done():
                submission.future.set_exception(_unavailable(error))

    # ── Snapshots ──────────────────────────────────────────────────────────────────────────

    def write_snapshot(self) -> None:
        """A snapshot of the state as of now, written before this returns."""
        with self.lock:
            if self.chain.engine.state.height == 0:
                return
            self._write_snapshot_body(self._snapshot_now())

    def _snapshot_in_background(self) -> None:
        """Called by the writer between blocks: the state cannot move while the child forks.
        If the previous snapshot is still being written, this one is skipped."""
        if not BackgroundSnapshots.available():
            self._snapshot_quietly()
            return
        engine = self.chain.engine
        with self.lock:  # no reader half-way through a read model's cache while we fork
            self._snapshots.start(engine.state.height, engine.state.tree.root(), self._body)

    def _snapshot_now(self) -> Snapshot:
        engine = self.chain.engine
        return Snapshot(engine.state.height, engine.state.tree.root(), self._body())

    def _body(self) -> bytes:
        # The tree is left out: Engine.from_state writes every leaf anew on load.
        state = dataclasses.replace(self.chain.engine.state, tree=StateTree())
        return SNAPSHOT_FORMAT + pickle.dumps((state, self.read_model), protocol=5)

    def _write_snapshot_body(self, snapshot: Snapshot) -> None:
        with self.lock:  # the journal's connection is shared with the writer
            self.chain.journal.write_snapshot(snapshot)

    def read_block(self, height: int) -> StoredBlock | None:
        with self.lock:
            return self.chain.journal.block(height)


def _unavailable(failure: BaseException) -> NodeUnavailable:
    """What a command meets once the writer stopped: a fenced sequencer (another took over)
    or a stream gone while stopping says so in its own code; any other failure NODE_FAILED."""
    if isinstance(failure, ReplicationError):
        return NodeUnavailable(failure.code, f"the node stopped: {failure}")
    return NodeUnavailable("NODE_FAILED", f"the node stopped on an error: {failure}")


def _client_key(item: Command | AgentSigned) -> tuple[str, int] | None:
    command = item.command if isinstance(item, AgentSigned) else item
    if not isinstance(command, PlaceOrder) or command.client_order_id == 0:
        return None
    return str(SubaccountId(command.signer, command.subaccount_number)), command.client_order_id


def load_snapshot(snapshot: Snapshot) -> tuple[Engine, ReadModel] | None:
    """The node's own snapshot (it wrote it to its own store), or None if unreadable; the
    engine is rebuilt from the state (``Engine.from_state``: every index and leaf anew), its
    root must be the snapshot's, and ``replay`` checks it against the journal before it is
    trusted."""
    if not snapshot.body.startswith(SNAPSHOT_FORMAT):
        return None
    try:
        state, read_model = pickle.loads(snapshot.body[len(SNAPSHOT_FORMAT) :])  # noqa: S301
        if not isinstance(state, EngineState) or not isinstance(read_model, ReadModel):
            return None
        engine = Engine.from_state(state)
    except Exception:  # an unreadable snapshot only costs a full replay
        log.warning("snapshot at height %d unreadable; replaying from genesis", snapshot.height)
        return None
    if engine.state.tree.root() != snapshot.state_root:
        return None
    return engine, read_model
