"""Scale-out with real processes and the real NATS JetStream server (SPEC §12): a node publishing
its blocks (``serve --replicate``) and a replica following them (``clearhouse replica``) hold
identical journals; a tampered block stops a replica with its code, nothing of it stored; a
sequencer killed with SIGKILL under load is replaced by a node started on the replica's journal,
and every command a client saw acknowledged is in the new chain, which ``clearhouse verify``
passes; a stale sequencer (paused while another took over) is refused by the stream's fencing
and stops. Skipped, with the reason, without nats-py or a server at 127.0.0.1:4222; each test
has a stream of its own, deleted after it."""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.node.conftest import NodeProcess, free_port
from tests.node.test_crash import SEED, CrashRun, JournalView, Killer, Load, _market, _trade

from clearhouse.adapters.journal_format import encode_record
from clearhouse.adapters.stores import open_journal
from clearhouse.app.ports import StoredBlock
from clearhouse.core.errors import StorageError
from clearhouse.node.server import JOURNAL_FILE
from replication_support import (
    NATS_URL,
    raw_publish,
    skip_without_nats,
    unique_stream,
    wait_for,
)

skip_without_nats()

from clearhouse.adapters.nats_stream import NatsBlockStream  # noqa: E402

NODE_FLAGS = ("--ip-rate", "0", "--account-rate", "0", "--snapshot-every", "7")


@pytest.fixture
def stream() -> Iterator[NatsBlockStream]:
    """A stream of the test's own (the nodes and replicas below name it), deleted after."""
    name = unique_stream()
    opened = NatsBlockStream(NATS_URL, stream=name, subject=f"{name}.blocks")
    yield opened
    opened.delete()
    opened.close()


def _replicating(data_dir: Path, stream: NatsBlockStream, *extra: str) -> NodeProcess:
    flags = (*NODE_FLAGS, "--replicate", NATS_URL, "--stream", stream.stream, *extra)
    return NodeProcess(data_dir, extra=flags)


@dataclass
class ReplicaProcess:
    """``clearhouse replica`` in a child process, its output in ``<journal>.log``."""

    journal: Path
    stream: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ReplicaProcess:
        command = [sys.executable, "-m", "clearhouse", "replica", "--dev", "--nats", NATS_URL,
                   "--journal", str(self.journal), "--stream", self.stream]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        return self

    @property
    def log_path(self) -> Path:
        return self.journal.with_suffix(".log")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def height(self) -> int:
        try:
            journal = open_journal(str(self.journal), read_only=True)
        except StorageError:  # not created yet (no file, no tables)
            return 0
        try:
            head = journal.head()
            return 0 if head is None else head.header.height
        finally:
            journal.close()

    def wait_height(self, height: int, seconds: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while self.height() < height:
            assert self.process.poll() is None, f"replica exited: {self.log()}"
            assert time.monotonic() < deadline, (
                f"replica at {self.height()} < {height}: {self.log()}"
            )
            time.sleep(0.05)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _records(location: str) -> list[bytes]:
    journal = open_journal(location, read_only=True)
    try:
        return [encode_record(b) for b in journal.blocks()]
    finally:
        journal.close()


def _blocks(location: str) -> list[StoredBlock]:
    journal = open_journal(location, read_only=True)
    try:
        return list(journal.blocks())
    finally:
        journal.close()


def _verify(location: str) -> str:
    done = subprocess.run([sys.executable, "-m", "clearhouse", "verify", location],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_replica_follows_the_node_block_for_block(
    tmp_path: Path, stream: NatsBlockStream
) -> None:
    node = _replicating(tmp_path / "node", stream).start()
    replica = ReplicaProcess(tmp_path / "replica.sqlite", stream.stream).start()
    try:
        with httpx.Client(base_url=node.url, timeout=10) as http:
            for n in range(3):
                body = {"address": "0x" + f"{n + 1:02x}" * 20, "amount_usdc": 1_000}
                assert http.post("/v1/dev/faucet", json=body).status_code == 200
            wait_for(lambda: http.get("/v1/blocks/latest").json()["height"] >= 8, 30, "8 blocks")
        assert node.stop() == 0, node.log()
        location = str(tmp_path / "node" / JOURNAL_FILE)
        ours = _records(location)
        replica.wait_height(len(ours))
        assert replica.stop() == 0, replica.log()
    finally:
        node.kill()
        replica.kill()
    theirs = _records(str(replica.journal))
    assert theirs == ours  # byte for byte: the journal's record of every block
    assert stream.last_height() == len(ours)
    roots = [b.header.state_root for b in _blocks(str(replica.journal))]
    assert roots == [b.header.state_root for b in _blocks(location)]
    printed = [line for line in replica.log().splitlines() if line.startswith("height ")]
    assert printed and printed[-1].startswith(f"height {len(ours)} root 0x{roots[-1].hex()}")
    print(f"\nreplica: {len(ours)} identical records; last line: {printed[-1]}; "
          f"verify: {_verify(str(replica.journal))}")  # fmt: skip


def test_a_tampered_block_stops_the_replica_and_is_not_stored(
    tmp_path: Path, stream: NatsBlockStream
) -> None:
    node = _replicating(tmp_path / "node", stream).start()
    try:
        with httpx.Client(base_url=node.url, timeout=10) as http:
            body = {"address": "0x" + "07" * 20, "amount_usdc": 1_000}
            assert http.post("/v1/dev/faucet", json=body).status_code == 200
            wait_for(lambda: http.get("/v1/blocks/latest").json()["height"] >= 4, 30, "4 blocks")
        assert node.stop() == 0, node.log()
    finally:
        node.kill()
    blocks = _blocks(str(tmp_path / "node" / JOURNAL_FILE))
    victim = next(b for b in blocks if b.header.height > 1 and b.commands)
    # Another stream, holding the chain up to the victim, then the victim with one bit of one
    # command flipped (published as a forger would, straight to the subject).
    name = unique_stream()
    forged = NatsBlockStream(NATS_URL, stream=name, subject=f"{name}.blocks")
    try:
        from clearhouse.app.replication import journal_meta

        journal = open_journal(str(tmp_path / "node" / JOURNAL_FILE), read_only=True)
        meta = journal_meta(journal)
        journal.close()
        for block in blocks[: victim.header.height - 1]:
            forged.publish(block, meta if block.header.height == 1 else None)
        record = bytearray(encode_record(victim))
        at = record.index(victim.commands[0]) + len(victim.commands[0]) // 2
        record[at] ^= 0x01
        raw_publish(forged.subject, bytes(record), victim.header.height)
        replica = ReplicaProcess(tmp_path / "replica.sqlite", name).start()
        assert replica.process is not None
        code = replica.process.wait(60)
        last = replica.log().strip().splitlines()[-1]
        print(f"\nreplica exit {code}: {last}")
        assert code == 17, replica.log()
        assert "[REPLICA_MISMATCH]" in last and f"height {victim.header.height}" in last, last
        assert "Traceback" not in replica.log()
        assert replica.height() == victim.header.height - 1  # nothing of the bad block
        assert (
            _records(str(replica.journal))
            == [encode_record(b) for b in blocks][: victim.header.height - 1]
        )
    finally:
        forged.delete()
        forged.close()


def _pause(replica: ReplicaProcess) -> None:
    assert replica.process is not None
    replica.process.send_signal(signal.SIGSTOP)


ACKS_BEFORE_KILL = 60  # orders the clients see acknowledged before the kill is armed


def _load_then_kill(run: CrashRun, http: httpx.Client, halfway: Callable[[], None]) -> None:
    """test_crash's traders, one thread each, until ``ACKS_BEFORE_KILL`` acknowledgements; then
    SIGKILL the node the moment a client gets its next answer (the freshest acknowledgement is
    the likeliest to be lost if one were given too early). ``halfway`` runs after half of
    them."""
    assert run.node.process is not None
    killer = Killer(run.node.process)
    load = Load(run.node.url, _market(http, fresh=True), run.ledger, killer, run.cycle)
    threads = [
        threading.Thread(target=_trade, args=(t, load, random.Random(run.rng.getrandbits(64))))
        for t in run.traders
    ]
    for thread in threads:
        thread.start()
    funded = len(run.ledger.acks)
    wait_for(lambda: len(run.ledger.acks) >= funded + ACKS_BEFORE_KILL // 2, 60, "orders")
    halfway()
    wait_for(lambda: len(run.ledger.acks) >= funded + ACKS_BEFORE_KILL, 60, "more orders")
    killer.armed = True
    killer.fired.wait(5)
    if killer.claim():
        run.node.kill()
    run.node.process.wait()
    load.stop.set()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a client thread did not stop after the kill"
    assert not run.ledger.problems, run.ledger.problems[:5]


def test_the_replica_takes_over_after_sigkill_with_every_acknowledged_command(
    tmp_path: Path, stream: NatsBlockStream
) -> None:
    node = _replicating(tmp_path / "old", stream)
    replica = ReplicaProcess(tmp_path / "replica.sqlite", stream.stream)
    location = str(replica.journal)
    run = CrashRun(node, JournalView(location, set()), random.Random(SEED))
    run.view.wanted = run.ledger.sent
    new = _replicating(tmp_path / "new", stream, "--journal", location)
    try:
        node.start()
        replica.start()
        with httpx.Client(base_url=node.url, timeout=10) as http:
            run.fund(http)
            replica.wait_height(stream.last_height())  # following before the load starts
            # SIGKILL while the clients submit; the replica, paused half-way, falls behind.
            _load_then_kill(run, http, lambda: _pause(replica))
        acked_height = max(a.place[0] for a in run.ledger.acks)
        replica.kill()  # the replica dies too, wherever it was: the stream has the rest
        behind = stream.last_height() - replica.height()
        assert behind > 0  # what the new sequencer must take from the stream
        started = time.perf_counter()
        new.start()
        took = time.perf_counter() - started
        with httpx.Client(base_url=new.url, timeout=10) as http:
            latest = http.get("/v1/blocks/latest").json()["height"]
            assert latest >= acked_height
        assert new.stop() == 0, new.log()
    finally:
        node.kill()
        replica.kill()
        new.kill()
    run.view.catch_up()  # the new chain, replayed from genesis: each block's roots checked
    run.view.check(run.ledger.acks)  # each acknowledged command where its answer said
    level = re.search(r'"taken_from_stream": (\d+)', new.log())
    assert level is not None, new.log()
    bootstrapped = re.search(r'"journal taken from the block stream", "blocks": (\d+)', new.log())
    taken = int(level.group(1)) + (int(bootstrapped.group(1)) if bootstrapped else 0)
    assert stream.last_height() == run.view.head  # the new sequencer published its blocks
    assert taken == behind
    accepted = sum(a.http_status == 200 for a in run.ledger.acks)
    print(f"\ntakeover (seed {SEED}): {len(run.ledger.acks)} acknowledged commands ({accepted} "
          f"accepted, last at height {acked_height}) all in the new chain; the replica was "
          f"{behind} block(s) behind the stream, the new sequencer took {taken} from it "
          f"and was serving {took:.2f} s after start; chain {run.view.head} blocks; "
          f"verify: {_verify(location)}")  # fmt: skip


def test_a_stale_sequencer_is_fenced_off_and_stops(tmp_path: Path, stream: NatsBlockStream) -> None:
    old = _replicating(tmp_path / "old", stream).start()
    replica = ReplicaProcess(tmp_path / "replica.sqlite", stream.stream).start()
    location = str(replica.journal)
    new = _replicating(tmp_path / "new", stream, "--journal", location)
    try:
        wait_for(lambda: stream.last_height() >= 3, 30, "3 blocks")
        assert old.process is not None
        old.process.send_signal(signal.SIGSTOP)  # a pause (GC, a partition): it still believes
        height = stream.last_height()
        replica.wait_height(height)
        assert replica.stop() == 0, replica.log()
        new.start()
        wait_for(lambda: stream.last_height() > height, 30, "the new sequencer's first block")
        old.process.send_signal(signal.SIGCONT)
        code = old.process.wait(30)  # its next block is refused by the stream: it stops
        fenced = [line for line in old.log().splitlines() if "REPLICATION_FENCED" in line]
        print(f"\nstale sequencer exit {code}: {fenced[-1] if fenced else old.log()[-300:]}")
        assert code == 16, old.log()
        assert fenced, old.log()
        with httpx.Client(base_url=new.url, timeout=10) as http:  # the new one goes on
            body = {"address": "0x" + "09" * 20, "amount_usdc": 1_000}
            assert http.post("/v1/dev/faucet", json=body).status_code == 200
        assert new.stop() == 0, new.log()
        # The stale journal now holds a block the stream does not: refused as a fork.
        again = subprocess.run(
            [sys.executable, "-m", "clearhouse", "serve", "--dev", "--port", str(free_port()),
             "--data", str(tmp_path / "old"), "--replicate", NATS_URL, "--stream", stream.stream],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert again.returncode == 17, again.stderr
        assert "REPLICA_MISMATCH" in again.stderr
    finally:
        if old.process is not None and old.process.poll() is None:
            old.process.send_signal(signal.SIGCONT)
        old.kill()
        replica.kill()
        new.kill()
    assert stream.last_height() == len(_records(location))
    _verify(location)


@dataclass
class PrivateNats:
    """A NATS server of the test's own (``nats-server -js`` on a free port), to stop and start
    again: the shared one on 4222 is never touched."""

    store: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> PrivateNats:
        self.port = self.port or free_port()
        command = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                   "-sd", str(self.store)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        wait_for(self._answers, 10, "nats-server to listen")
        return self

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def test_without_nats_the_node_refuses_commands_and_holds_acknowledgements(
    tmp_path: Path,
) -> None:
    if not Path(NATS_SERVER).exists():
        pytest.skip("no nats-server binary to run a private server with")
    server = PrivateNats(tmp_path / "nats").start()
    node = NodeProcess(tmp_path / "node", extra=(*NODE_FLAGS, "--replicate", server.url))
    try:
        node.start()
        with httpx.Client(base_url=node.url, timeout=30) as http:
            body = {"address": "0x" + "0a" * 20, "amount_usdc": 1_000}
            assert http.post("/v1/dev/faucet", json=body).status_code == 200
            server.stop()
            with ThreadPoolExecutor(1) as pool:  # its block waits for NATS: so does its answer
                held = pool.submit(http.post, "/v1/dev/faucet", json=body, timeout=120)
                refused: dict[str, Any] = {}

                def refusing() -> bool:
                    try:
                        answer = http.post("/v1/dev/faucet", json=body, timeout=1)
                    except httpx.ReadTimeout:  # queued before the writer knew: held as well
                        return False
                    if answer.status_code == 503:
                        refused.update(answer.json()["error"])
                        return True
                    return False

                wait_for(refusing, 30, "a refusal while NATS is down")
                assert refused["code"] == "REPLICATION_UNAVAILABLE", refused
                assert not held.done()  # durable locally, not on the stream: not acknowledged
                server.start()  # the same port and store: the node publishes what waited
                answer = held.result(60)
                assert answer.status_code == 200, answer.text
                acked_at = answer.json()["height"]
            wait_for(lambda: http.post("/v1/dev/faucet", json=body).status_code == 200, 30,
                     "commands taken again")  # fmt: skip
        assert node.stop() == 0, node.log()
    finally:
        node.kill()
        server.stop()
    location = str(tmp_path / "node" / JOURNAL_FILE)
    server.start()
    try:
        name, subject = f"CLEARHOUSE-{31337}", "clearhouse.31337.blocks"
        check = NatsBlockStream(server.url, stream=name, subject=subject)
        stored = [check.read(h) for h in range(1, check.last_height() + 1)]
        check.close()
    finally:
        server.stop()
    ours = _records(location)
    assert [encode_record(b) for b in stored if b is not None] == ours
    assert acked_at <= len(stored)
    print(
        f"\nNATS down: [{refused['code']}] {refused['message']}; back: {len(ours)} blocks, "
        "the stream's records the journal's"
    )
