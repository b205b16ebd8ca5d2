"""Crash safety under load (SPEC §12): a real node is killed with SIGKILL at random moments while
clients submit signed commands, over and over on one journal. After every kill the test reads the
journal itself and checks that every command the node acknowledged (a 200, or a rejection that
names a height: both are journaled) is in it exactly once, at the height and index its answer
gave, with the events its answer gave. It then restarts the node (from its latest snapshot plus
replay) and checks that the recovered node agrees with a replay of the journal from genesis,
that it still knows every acknowledged command (a byte-identical resubmission gets the first
answer back, marked ``duplicate``), and that a command whose answer was lost in the crash can be
retried safely: applied once, whether or not it had reached a block. The blocks the recovered
node goes on to write are replayed after the next kill, so a recovered state that differs from a
replay stops the test. The same runs on PostgreSQL when one is reachable.

``CLEARHOUSE_CRASH_CYCLES`` sets the number of kills (default 16; the documented long run is
``CLEARHOUSE_CRASH_CYCLES=1000``); ``CLEARHOUSE_CRASH_SEED`` repeats a run's random choices (the
seed is printed and named in any failure; the moments of the kills still depend on the machine).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.node.conftest import POSTGRES_URL, NodeProcess, postgres_available

from clearhouse.adapters.stores import open_journal
from clearhouse.app.chain import replay, verify
from clearhouse.app.ports import StoredBlock
from clearhouse.client import Client, Wallet
from clearhouse.core.block import ExecutedBlock
from clearhouse.core.codec import decode_command, encode_event
from clearhouse.core.engine import Engine
from clearhouse.core.hashing import keccak
from clearhouse.core.messages import (
    CancelAll,
    CancelOrder,
    Command,
    Deposit,
    PlaceOrder,
    TimeInForce,
)
from clearhouse.node.server import JOURNAL_FILE

CYCLES = int(os.environ.get("CLEARHOUSE_CRASH_CYCLES", "16"))
SEED = int(os.environ.get("CLEARHOUSE_CRASH_SEED", str(secrets.randbits(32))))
TRADERS = 4  # threads, each with its own funded account
MARKET = "BTC-PERP"
FUNDING_USDC = 1_000_000
SNAPSHOT_EVERY = 7  # small: snapshots are written, and restored from, many times a run
NODE_FLAGS = ("--snapshot-every", str(SNAPSHOT_EVERY), "--ip-rate", "0", "--account-rate", "0")
LOAD_SECONDS = (0.05, 0.6)  # how long the load runs before the kill
RESTING_MAX = 60  # a trader cancels rather than rest more orders than this
KILL_ON_ANSWER = 0.5  # the share of kills sent the moment a client gets an answer
RESULTS_SAMPLED = 10  # acknowledged commands looked up on the recovered node per cycle
_DEPOSIT = b'"type":"Deposit"'

Place = tuple[int, int]  # (height, index in the block)


@dataclass(frozen=True, slots=True)
class Ack:
    """A command the node acknowledged, and its answer (a 200's body or a rejection's error)."""

    command_hash: str | None  # None for a faucet deposit: the node itself wrote that command
    owner: str
    cycle: int
    http_status: int
    answer: dict[str, Any]
    signed: dict[str, Any] | None = None  # the JSON posted, to post again byte for byte

    @property
    def place(self) -> Place:
        return self.answer["height"], self.answer["index"]


@dataclass(slots=True)
class Ledger:
    """Everything the clients sent and every acknowledgement they got, across all cycles."""

    acks: list[Ack] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)
    retried: int = 0
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self, response: httpx.Response, owner: str, cycle: int,
        command_hash: str | None = None, signed: dict[str, Any] | None = None,
    ) -> Ack | None:  # fmt: skip
        """The acknowledgement in ``response``, kept; None (and a problem noted) if the node
        answered without a place in a block: nothing here should be refused before one."""
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"code": "NOT_JSON", "message": response.text[:200]}}
        answer = body if response.status_code == 200 else body.get("error", {})
        if "height" not in answer:
            with self.lock:
                self.problems.append(f"{response.status_code} without a place: {body}")
            return None
        ack = Ack(command_hash, owner, cycle, response.status_code, answer, signed)
        with self.lock:
            self.acks.append(ack)
        return ack


@dataclass(slots=True)
class Trader:
    """One account trading from one thread; what it sent when the node died is kept to retry."""

    wallet: Wallet
    resting: list[int] = field(default_factory=list)
    in_flight: tuple[str, dict[str, Any]] | None = None


@dataclass(slots=True)
class JournalView:
    """The test's own reading of the journal, brought up to its head after each kill: where
    every command is, each block's hash and replayed state root, and the replayed events of the
    commands the test cares about."""

    location: str
    wanted: set[str]  # hashes whose events are kept (the commands the clients signed)
    places: dict[str, list[Place]] = field(default_factory=dict)
    at: dict[Place, str] = field(default_factory=dict)
    block_hashes: dict[int, str] = field(default_factory=dict)
    roots: dict[int, str] = field(default_factory=dict)
    outcomes: dict[Place, list[Any]] = field(default_factory=dict)
    deposits: dict[Place, str] = field(default_factory=dict)  # the owner credited
    duplicates: list[str] = field(default_factory=list)
    engine: Engine | None = None
    commands: int = 0

    @property
    def head(self) -> int:
        return 0 if self.engine is None else self.engine.state.height

    def catch_up(self) -> None:
        """Read and replay the blocks written since the last call (from genesis the first time):
        ``replay`` raises if a block's recorded hashes or state root are not what it computes."""
        journal = open_journal(self.location)
        try:
            if self.engine is None:
                self.engine = verify(journal, on_replayed=self._index).engine
            else:
                replay(journal, self.engine, on_replayed=self._index)
        finally:
            journal.close()

    def _index(self, stored: StoredBlock, executed: ExecutedBlock) -> None:
        height = stored.header.height
        self.block_hashes[height] = "0x" + stored.block_hash.hex()
        self.roots[height] = "0x" + executed.header.state_root.hex()
        for index, (data, outcome) in enumerate(
            zip(stored.commands, executed.outcomes, strict=True)
        ):
            key = "0x" + keccak(data).hex()
            found = self.places.setdefault(key, [])
            found.append((height, index))
            if len(found) > 1:
                self.duplicates.append(f"{key} at {found}")
            if key in self.wanted or _DEPOSIT in data:
                self.at[height, index] = key
                self.outcomes[height, index] = _plain([encode_event(e) for e in outcome])
            if _DEPOSIT in data:
                deposit = decode_command(data)
                assert isinstance(deposit, Deposit)
                self.deposits[height, index] = deposit.owner
        self.commands += len(stored.commands)

    def check(self, acks: list[Ack]) -> None:
        """Every acknowledged command is in the journal once, where and as its answer said."""
        assert not self.duplicates, f"commands journaled more than once: {self.duplicates[:5]}"
        for ack in acks:
            place = ack.place
            if ack.command_hash is None:
                assert self.deposits.get(place) == ack.owner, (
                    f"acknowledged deposit for {ack.owner} is not at {place}: {ack.answer}"
                )
                key = self.at[place]
            else:
                key = ack.command_hash
            found = self.places.get(key, [])
            assert found == [place], (
                f"acknowledged command {key} (cycle {ack.cycle}, HTTP {ack.http_status}, "
                f"answered at {place}) is in the journal at {found}"
            )
            assert self.block_hashes[place[0]] == ack.answer["block_hash"], ack.answer
            assert self.outcomes[place] == _in_journal_terms(ack.answer["events"], place, self), (
                f"the answer to {key} gave events {ack.answer['events']}; "
                f"the journal's replay gives {self.outcomes[place]}"
            )
            assert (ack.answer["status"] == "accepted") == (ack.http_status == 200), ack.answer


def _plain(value: Any) -> Any:
    """As the value reads after a trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


@dataclass(slots=True)
class Market:
    index_price: int
    tick: int
    step: int
    min_size: int

    def on_tick(self, fraction: float) -> int:
        return max(self.tick, int(self.index_price * fraction) // self.tick * self.tick)


def _market(http: httpx.Client, *, fresh: bool) -> Market:
    deadline = time.monotonic() + 15
    while True:
        market = http.get(f"/v1/markets/{MARKET}").json()
        if market["index_price_quantums"] > 0 and (not fresh or market["oracle_status"] == "fresh"):
            params = market["params"]
            return Market(
                market["index_price_quantums"],
                params["tick_quantums"],
                params["step_base_quantums"],
                params["min_order_base_quantums"],
            )
        assert time.monotonic() < deadline, market
        time.sleep(0.05)


def _next_command(trader: Trader, client: Client, market: Market, rng: random.Random) -> Command:
    """A cancel, a crossing order (IOC), a resting order near the index (what crossing orders
    hit), or one far from it; now and then a cancel-all."""
    roll = rng.random()
    if roll < 0.02:
        trader.resting.clear()
        return CancelAll(**client.common(), subaccount_number=0)
    if trader.resting and (roll < 0.3 or len(trader.resting) >= RESTING_MAX):
        order_id = trader.resting.pop(rng.randrange(len(trader.resting)))
        return CancelOrder(**client.common(), subaccount_number=0, order_id=order_id)
    buy = rng.random() < 0.5
    size = market.min_size + market.step * rng.randrange(20)
    if roll < 0.55:
        price, time_in_force = market.on_tick(1.01 if buy else 0.99), TimeInForce.IOC
    elif roll < 0.8:
        price, time_in_force = market.on_tick(0.999 if buy else 1.001), TimeInForce.GTC
    else:
        away = rng.uniform(0.05, 0.1)
        price, time_in_force = market.on_tick(1 - away if buy else 1 + away), TimeInForce.GTC
    return client.order(MARKET, "buy" if buy else "sell", size_base_quantums=size,
                        price_quantums=price, time_in_force=time_in_force)  # fmt: skip


@dataclass(slots=True)
class Killer:
    """Sends the node its SIGKILL, once: from the test's thread at a random moment, or, armed,
    from the first client thread to get an answer after that moment (an acknowledgement that
    a node gave too early is then the freshest one, and a kill that soon loses its block)."""

    process: subprocess.Popen[bytes]
    armed: bool = False
    fired: threading.Event = field(default_factory=threading.Event)
    _claimed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self) -> bool:
        with self._lock:
            claimed, self._claimed = self._claimed, True
            return not claimed

    def on_answer(self) -> None:
        if self.armed and self.claim():
            os.kill(self.process.pid, signal.SIGKILL)  # not reaped before ``fired``: still ours
            self.fired.set()


@dataclass(slots=True)
class Load:
    url: str
    market: Market
    ledger: Ledger
    killer: Killer
    cycle: int
    stop: threading.Event = field(default_factory=threading.Event)


def _trade(trader: Trader, load: Load, rng: random.Random) -> None:
    """Submit one command after another until the node dies under the request (or ``stop``)."""
    with Client(load.url, trader.wallet) as client:
        try:
            client.domain  # noqa: B018 - read the signing domain before the load starts
        except httpx.TransportError:
            return
        while not load.stop.is_set():
            command = _next_command(trader, client, load.market, rng)
            signed = client.signed(command)
            key = Client.command_hash(command)
            with load.ledger.lock:
                load.ledger.sent.add(key)
            trader.in_flight = (key, signed)
            try:
                response = client.http.post("/v1/commands", json=signed)
            except httpx.TransportError:
                return  # the node died: no answer, so not acknowledged; retried after restart
            trader.in_flight = None
            ack = load.ledger.record(response, trader.wallet.address, load.cycle, key, signed)
            load.killer.on_answer()
            resting = isinstance(command, PlaceOrder) and command.time_in_force == TimeInForce.GTC
            if resting and ack is not None and "order_id" in ack.answer:
                trader.resting.append(ack.answer["order_id"])


def _in_journal_terms(answered: list[Any], place: Place, view: Any) -> list[Any]:
    """An answer's events with the human companions the node adds beside each field (decimal
    strings, milliseconds, side names) left out: what the journal's replay encodes."""
    replayed = view.outcomes[place]
    if len(answered) != len(replayed):
        return answered
    return [{k: v for k, v in a.items() if k in r} for a, r in zip(answered, replayed, strict=True)]


def _same_answer(again: dict[str, Any], first: Ack) -> None:
    assert again.get("duplicate") is True, again
    for name in ("status", "height", "index", "block_hash", "events"):
        assert again[name] == first.answer[name], (name, again, first.answer)


def _answer(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 else body.get("error", {})


@dataclass(slots=True)
class CrashRun:
    node: NodeProcess
    view: JournalView
    rng: random.Random
    ledger: Ledger = field(default_factory=Ledger)
    traders: list[Trader] = field(default_factory=list)
    claims: dict[int, tuple[str, str]] = field(default_factory=dict)  # height: (hash, root)
    cycle: int = 0
    kills_on_answer: int = 0

    def fund(self, http: httpx.Client) -> None:
        self.traders = [Trader(Wallet.create()) for _ in range(TRADERS)]
        for trader in self.traders:
            body = {"address": trader.wallet.address, "amount_usdc": FUNDING_USDC}
            response = http.post("/v1/dev/faucet", json=body)
            assert response.status_code == 200, response.text
            self.ledger.record(response, trader.wallet.address, self.cycle)

    def load_then_kill(self, http: httpx.Client) -> None:
        assert self.node.process is not None
        killer = Killer(self.node.process)
        market = _market(http, fresh=self.cycle == 0)
        load = Load(self.node.url, market, self.ledger, killer, self.cycle)
        threads = [
            threading.Thread(target=_trade, args=(t, load, random.Random(self.rng.getrandbits(64))))
            for t in self.traders
        ]
        for thread in threads:
            thread.start()
        time.sleep(self.rng.uniform(*LOAD_SECONDS))
        if self.rng.random() < KILL_ON_ANSWER:
            killer.armed = True
            killer.fired.wait(5)
        if killer.claim():
            self.node.kill()
        else:
            self.kills_on_answer += 1
            self.node.process.wait()
        load.stop.set()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive(), "a client thread did not stop after the kill"
        assert not self.ledger.problems, self.ledger.problems[:5]

    def check_journal(self) -> None:
        """After a kill: the new blocks replay, and this cycle's acknowledgements are in them."""
        self.view.catch_up()
        self.view.check([ack for ack in self.ledger.acks if ack.cycle == self.cycle])
        for height, claim in self.claims.items():
            if height <= self.view.head:
                replayed = (self.view.block_hashes[height], self.view.roots[height])
                assert replayed == claim, f"recovered node's block {height}: {claim}, {replayed}"

    def check_recovered(self, http: httpx.Client) -> None:
        """After a restart: the node's head is the journal's, it still has every acknowledged
        command's answer, and retrying a command whose answer was lost applies it once."""
        head = self.view.head
        latest = http.get("/v1/blocks/latest").json()
        assert latest["height"] >= head, (latest, head)
        self.claims[latest["height"]] = (latest["block_hash"], latest["state_root"])
        stored = http.get(f"/v1/blocks/{head}").json()
        assert (stored["block_hash"], stored["state_root"]) == (
            self.view.block_hashes[head], self.view.roots[head],
        )  # fmt: skip
        if latest["height"] == head:
            assert latest["state_root"] == self.view.roots[head], (latest, head)
        signed = [ack for ack in self.ledger.acks if ack.signed is not None]
        recent = [ack for ack in signed if ack.cycle == self.cycle - 1]
        looked_up = self.rng.sample(recent, min(RESULTS_SAMPLED, len(recent)))
        for ack in looked_up:
            found = http.get(f"/v1/commands/{ack.command_hash}")
            assert found.status_code == 200, (ack.command_hash, found.text)
            _same_answer({**found.json(), "duplicate": True}, ack)
        resubmitted = [*signed[-1:], *self.rng.sample(signed, min(1, len(signed)))]
        for ack in resubmitted:  # the newest (most likely to be lost) and an older one
            again = http.post("/v1/commands", json=ack.signed)
            assert again.status_code == ack.http_status, (again.text, ack.answer)
            _same_answer(_answer(again), ack)
        for trader in self.traders:
            if trader.in_flight is not None:
                self._retry(http, trader, *trader.in_flight)

    def _retry(self, http: httpx.Client, trader: Trader, key: str, signed: dict[str, Any]) -> None:
        trader.in_flight = None
        response = http.post("/v1/commands", json=signed)
        answer = _answer(response)
        journaled = self.view.places.get(key)
        self.ledger.retried += 1
        if journaled:  # it reached a block before the kill: the answer is that block's
            assert answer.get("duplicate") is True, (key, journaled, answer)
            assert [(answer["height"], answer["index"])] == journaled, (key, journaled, answer)
        else:
            assert answer.get("duplicate") is False, (key, answer)
        self.ledger.record(response, trader.wallet.address, self.cycle, key, signed)

    def run_cycle(self) -> None:
        self.node.start()
        with httpx.Client(base_url=self.node.url, timeout=10) as http:
            if self.cycle == 0:
                self.fund(http)
            else:
                self.check_recovered(http)
            self.load_then_kill(http)
        self.check_journal()

    def finish(self) -> JournalView:
        """Restart once more, let the recovered node write a block, stop it gracefully, and
        check everything again against one replay of the whole journal from genesis."""
        self.node.start()
        with httpx.Client(base_url=self.node.url, timeout=10) as http:
            self.check_recovered(http)
            deadline = time.monotonic() + 10
            while http.get("/v1/blocks/latest").json()["height"] <= self.view.head:
                assert time.monotonic() < deadline, "the recovered node wrote no block"
                time.sleep(0.05)
        assert self.node.stop() == 0, self.node.log()
        whole = JournalView(self.view.location, self.ledger.sent)
        whole.catch_up()
        whole.check(self.ledger.acks)
        assert whole.head > self.view.head
        for height, (block_hash, root) in self.claims.items():
            assert (whole.block_hashes[height], whole.roots[height]) == (block_hash, root)
        return whole


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None for SQLite in the node's data directory, or a PostgreSQL URL with its own schema."""
    if request.param == "sqlite":
        yield None
        return
    if not postgres_available():
        pytest.skip(
            f"PostgreSQL is not reachable at {POSTGRES_URL}: start one there, or point "
            "CLEARHOUSE_TEST_POSTGRES at one, to run the crash test on PostgreSQL"
        )
    import psycopg
    from psycopg import sql

    schema = f"crash_{secrets.token_hex(6)}"
    yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_acknowledged_commands_survive_sigkill_under_load(
    tmp_path: Path, store: str | None
) -> None:
    data_dir = tmp_path / "node"
    location = store or str(data_dir / JOURNAL_FILE)
    node = NodeProcess(data_dir, store=store, extra=NODE_FLAGS)
    run = CrashRun(node, JournalView(location, set()), random.Random(SEED))
    run.view.wanted = run.ledger.sent
    print(f"crash test: seed {SEED}, {CYCLES} kills, store {'sqlite' if store is None else store}")
    started = time.perf_counter()
    try:
        for run.cycle in range(CYCLES):
            run.run_cycle()
        run.cycle = CYCLES
        whole = run.finish()
    except Exception as error:  # a replay that disagrees raises VerificationError
        raise AssertionError(
            f"{error}\n(seed {SEED}, cycle {run.cycle}: rerun with CLEARHOUSE_CRASH_SEED={SEED};"
            f" node log tail:\n{node.log()[-1_500:]})"
        ) from error
    finally:
        node.kill()
    acks = run.ledger.acks
    codes = Counter(str(a.answer.get("code", "accepted")) for a in acks)
    print(
        f"crash test: {CYCLES} kills in {time.perf_counter() - started:.1f} s; "
        f"{run.kills_on_answer} of them as an answer arrived; "
        f"{len(acks)} acknowledged commands checked ({sum(a.http_status == 200 for a in acks)} "
        f"accepted), {run.ledger.retried} retried after a crash, {len(run.ledger.sent)} signed; "
        f"journal: {whole.head} blocks, {whole.commands} commands; outcomes: {dict(codes)}"
    )
    assert len(acks) > CYCLES  # the load really ran
