"""What the block-stream tests share: a fake stream (the port's contract, in memory), the real
NATS server when one is reachable, and a unique stream per test, deleted after it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from clearhouse.adapters.journal_format import decode_record, encode_record
from clearhouse.app.ports import BlockStream, Journal, StoredBlock
from clearhouse.app.replication import bootstrap, follow
from clearhouse.core.errors import ReplicationFenced, ReplicationUnavailable

NATS_URL = "nats://127.0.0.1:4222"


def raw_publish(
    subject: str, data: bytes, height: int, headers: dict[str, str] | None = None
) -> None:
    """A message as a forger would send it: straight to the subject, no clearhouse code, as
    the message of ``height`` (the stream's last sequence expected to be the height before)."""
    import nats

    async def send() -> None:
        client = await nats.connect(NATS_URL)
        sent = {"Nats-Expected-Last-Sequence": str(height - 1), **(headers or {})}
        await client.jetstream().publish(subject, data, headers=sent)
        await client.close()

    asyncio.run(send())
    time.sleep(0.05)


def nats_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


def skip_without_nats() -> None:
    """Skip (with the reason) unless nats-py is installed and a server answers on 4222."""
    try:
        import nats  # noqa: F401
    except ImportError:
        pytest.skip("nats-py is not installed (the node extra: pip install -e '.[node]')")
    if not nats_reachable():
        pytest.skip("no NATS server at 127.0.0.1:4222 (nats-server -js; .ci/run starts one)")


def unique_stream() -> str:
    return f"TEST-{uuid.uuid4().hex[:12]}"


class MemoryBlockStream:
    """``ports.BlockStream`` in memory, fenced and deduplicated as JetStream is: records stored
    as bytes (what NATS would carry); ``down`` makes every call ReplicationUnavailable."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.ids: list[str] = []
        self.meta_of_first: dict[str, str] | None = None
        self.down = False
        self.published = 0  # appends that stored something
        self.changed = threading.Condition()

    def _reachable(self) -> None:
        if self.down:
            raise ReplicationUnavailable("the fake stream is down")

    def last_height(self) -> int:
        self._reachable()
        return len(self.records)

    def read(self, height: int) -> StoredBlock | None:
        self._reachable()
        return decode_record(self.records[height - 1]) if height <= len(self.records) else None

    def meta(self) -> dict[str, str] | None:
        self._reachable()
        return None if not self.records else (self.meta_of_first or {})

    def publish(self, block: StoredBlock, meta: dict[str, str] | None = None) -> None:
        self._reachable()
        height = block.header.height
        key = f"{height}:{block.block_hash.hex()}"
        with self.changed:
            if key in self.ids:
                return
            if len(self.records) != height - 1:
                raise ReplicationFenced(f"block {height} refused: the stream is at "
                                        f"{len(self.records)}")  # fmt: skip
            self.records.append(encode_record(block))
            self.ids.append(key)
            if height == 1:
                self.meta_of_first = meta
            self.published += 1
            self.changed.notify_all()

    def follow(self, start_height: int, idle_seconds: float) -> Iterator[StoredBlock | None]:
        height = start_height
        while True:
            with self.changed:
                if len(self.records) < height:
                    self.changed.wait(idle_seconds)
                ready = len(self.records) >= height
            if not ready:
                yield None
                continue
            yield decode_record(self.records[height - 1])
            height += 1

    def close(self) -> None:
        pass


def wait_for(predicate: object, seconds: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@dataclass
class Follower:
    """A replica's loop (``bootstrap`` then ``follow``) on a thread of the test."""

    thread: threading.Thread
    stop: threading.Event
    errors: list[BaseException] = field(default_factory=list)


def follow_in_thread(journal: Journal, stream: BlockStream) -> Follower:
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            follow(bootstrap(journal, stream), stream, stop=stop)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return Follower(thread, stop, errors)
