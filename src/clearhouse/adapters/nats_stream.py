"""The block stream on NATS JetStream (``app.ports.BlockStream``): one stream per chain, one
message per block, the message at stream sequence h holding block h's journal record
(``journal_format.encode_record``), byte for byte.

Each append names the sequence it must follow (``Nats-Expected-Last-Sequence: h - 1``): the
server stores it only on top of block h - 1, so a sequencer that another has replaced is
refused (error 10071, ``ReplicationFenced``) whatever its journal says. Its message id
(``Nats-Msg-Id: h:<block hash>``) makes a retry after a lost acknowledgement safe: the server
answers a duplicate with the sequence it stored, and the id names the block's hash, so another
sequencer's different block at the same height is never taken for ours. Block 1 carries the
journal facts a replica starts from (``Clearhouse-Meta``: base64 of their JSON).

nats-py is asyncio; the node's writer and the replica are threads. The client runs on an event
loop of its own, in a daemon thread, and every call here waits for its answer there, bounded
by ``timeout_seconds``: an unreachable server is a ``ReplicationUnavailable``, never a hang.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from clearhouse.adapters.journal_format import decode_record, encode_record
from clearhouse.app.ports import StoredBlock
from clearhouse.core.errors import (
    ConfigError,
    ReplicaGap,
    ReplicaMismatch,
    ReplicationFenced,
    ReplicationUnavailable,
)

log = logging.getLogger("clearhouse.adapters.nats_stream")
T = TypeVar("T")

META_HEADER = "Clearhouse-Meta"
WRONG_LAST_SEQUENCE = 10071  # JetStream's JSStreamWrongLastSequenceErrF
DUPLICATE_WINDOW_SECONDS = 120.0  # how long the server remembers message ids (its default)
RECORD_HEADROOM_BYTES = 64 * 1024  # headers and the node's own commands, beside a block's


def stream_names(chain_id: int, stream: str | None = None) -> tuple[str, str]:
    """(stream, subject) for a venue: ``CLEARHOUSE-<chain id>`` and
    ``clearhouse.<chain id>.blocks`` unless a stream is named (then ``<stream>.blocks``)."""
    if stream is None:
        return f"CLEARHOUSE-{chain_id}", f"clearhouse.{chain_id}.blocks"
    if not stream or any(c in stream for c in " .*>/\\\t"):
        raise ConfigError(f"--stream {stream!r}: a JetStream name has no spaces, '.', '*', '>' "
                          "or slashes")  # fmt: skip
    return stream, f"{stream}.blocks"


def message_id(block: StoredBlock) -> str:
    return f"{block.header.height}:{block.block_hash.hex()}"


class NatsBlockStream:
    """A chain's block stream on one NATS (JetStream) server or cluster."""

    def __init__(
        self, url: str, *, stream: str, subject: str, replicas: int = 1,
        timeout_seconds: float = 2.0,
    ) -> None:  # fmt: skip
        self.url = url
        self.stream = stream
        self.subject = subject
        self.replicas = replicas
        self.timeout_seconds = timeout_seconds
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="nats-stream", daemon=True
        )
        self._thread.start()
        self._client: NatsClient | None = None
        self._closing = False
        self._js: JetStreamContext | None = None
        try:
            self._call(self._open(), self.timeout_seconds * 3)
        except BaseException:
            self.close()
            raise

    # ── The event loop's side ──────────────────────────────────────────────────────────────

    def _call(self, work: Coroutine[Any, Any, T], seconds: float | None = None) -> T:
        """Run ``work`` on the client's loop and wait for it (ReplicationUnavailable past
        ``seconds``, or for any failure of the connection)."""
        limit = self.timeout_seconds + 1.0 if seconds is None else seconds
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(limit)
        except FutureTimeout:
            future.cancel()
            raise ReplicationUnavailable(self._where("did not answer in time")) from None
        except (TimeoutError, NatsTimeout):
            raise ReplicationUnavailable(self._where("did not answer in time")) from None
        except (NatsError, OSError) as error:
            if isinstance(error, APIError):
                raise
            raise ReplicationUnavailable(self._where(_why(error))) from None

    def _where(self, what: str) -> str:
        return f"the block stream {self.stream} at {self.url} {what}"

    async def _open(self) -> None:
        self._client = await nats.connect(
            self.url, connect_timeout=self.timeout_seconds, allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=_quiet,
            disconnected_cb=self._disconnected, reconnected_cb=_reconnected,
        )  # fmt: skip
        self._js = self._client.jetstream(timeout=self.timeout_seconds)
        try:
            info = await self._js.stream_info(self.stream)
        except NotFoundError:
            config = StreamConfig(
                name=self.stream, subjects=[self.subject], num_replicas=self.replicas,
                storage=StorageType.FILE, duplicate_window=DUPLICATE_WINDOW_SECONDS,
                description="clearhouse blocks: message h is block h's journal record",
            )  # fmt: skip
            try:
                await self._js.add_stream(config)
            except APIError as error:
                why = f"cannot be created with {self.replicas} replica(s): {error.description}"
                raise ConfigError(self._where(why)) from None
            return
        subjects = info.config.subjects or []
        if self.subject not in subjects:
            raise ConfigError(self._where(f"holds {subjects}, not {self.subject}"))
        if info.config.num_replicas != self.replicas:
            log.warning("the block stream's replicas differ from --stream-replicas", extra={
                "stream": self.stream, "replicas": info.config.num_replicas,
                "asked": self.replicas,
            })  # fmt: skip

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("block stream disconnected; reconnecting", extra={"url": self.url})

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None
        return self._js

    # ── The port ───────────────────────────────────────────────────────────────────────────

    @property
    def max_payload(self) -> int:
        """The largest message the server takes: a block's record must fit in it."""
        assert self._client is not None
        return int(self._client.max_payload)

    def last_height(self) -> int:
        info = self._call(self.js.stream_info(self.stream))
        return int(info.state.last_seq)

    def read(self, height: int) -> StoredBlock | None:
        return self._read(height)[0]

    def meta(self) -> dict[str, str] | None:
        found, headers = self._read(1)
        if found is None:
            return None
        encoded = (headers or {}).get(META_HEADER)
        if encoded is None:
            return {}
        # Whatever wrote the stream, block 1's header is the start of an empty journal: one that
        # is not base64 of a JSON object is a mismatch (one line, its code), not a traceback.
        try:
            parsed = json.loads(base64.b64decode(encoded, validate=True))
        except ValueError:  # binascii.Error, JSONDecodeError, UnicodeDecodeError
            parsed = None
        if not isinstance(parsed, dict):
            raise ReplicaMismatch(1, f"block 1's {META_HEADER} header is not base64 of a JSON "
                                     "object")  # fmt: skip
        return {str(k): str(v) for k, v in parsed.items()}

    def _read(self, height: int) -> tuple[StoredBlock | None, dict[str, str] | None]:
        async def get() -> tuple[bytes, dict[str, str] | None] | None:
            try:
                message = await self.js.get_msg(self.stream, height)
            except NotFoundError:
                return None
            return message.data or b"", message.headers

        found = self._call(get())
        if found is None:
            return None, None
        block = decode_record(found[0])
        if block.header.height != height:
            raise ReplicaGap(height, f"the stream's message {height} holds block "
                                     f"{block.header.height}")  # fmt: skip
        return block, found[1]

    def publish(self, block: StoredBlock, meta: dict[str, str] | None = None) -> None:
        height = block.header.height
        headers = {"Nats-Msg-Id": message_id(block), "Nats-Expected-Last-Sequence": str(height - 1)}
        if meta is not None:
            headers[META_HEADER] = base64.b64encode(json.dumps(meta).encode()).decode()
        record = encode_record(block)
        try:
            ack = self._call(self.js.publish(self.subject, record, stream=self.stream,
                                             headers=headers))  # fmt: skip
        except APIError as error:
            if error.err_code == WRONG_LAST_SEQUENCE and self._holds(height, record):
                return  # an earlier try stored it, its answer lost, past the dedup window
            if error.err_code == WRONG_LAST_SEQUENCE:
                raise ReplicationFenced(
                    f"block {height} refused by {self.stream}: the stream no longer ends at "
                    f"block {height - 1} (another sequencer has appended); this node stops"
                ) from None
            raise ReplicationUnavailable(self._where(f"refused block {height}: "
                                                     f"{error.description}")) from None  # fmt: skip
        if ack.seq != height:
            raise ReplicationFenced(f"block {height} was stored at stream sequence {ack.seq}")
        if ack.duplicate and not self._holds(height, record):  # an earlier try's: is it ours?
            raise ReplicationFenced(f"block {height}: the stream holds another record")

    def _holds(self, height: int, record: bytes) -> bool:
        """True if the stream's message ``height`` is exactly ``record``."""
        stored = self.read(height)
        return stored is not None and encode_record(stored) == record

    def follow(self, start_height: int, idle_seconds: float) -> Iterator[StoredBlock | None]:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_height
        )
        subscribing = self.js.subscribe(
            self.subject, stream=self.stream, ordered_consumer=True, config=config
        )
        subscription = self._call(subscribing)
        expected = start_height
        try:
            while True:
                try:
                    message = self._call(subscription.next_msg(timeout=idle_seconds),
                                         idle_seconds + self.timeout_seconds)  # fmt: skip
                except ReplicationUnavailable:
                    yield None  # idle (or the server away: the ordered consumer resumes)
                    continue
                sequence = message.metadata.sequence.stream
                if sequence != expected:
                    raise ReplicaGap(expected, f"the stream delivered message {sequence}")
                block = decode_record(message.data)
                if block.header.height != expected:
                    raise ReplicaGap(expected, f"the stream's message {sequence} holds block "
                                               f"{block.header.height}")  # fmt: skip
                expected += 1
                yield block
        finally:
            with contextlib.suppress(Exception):  # the connection is going anyway
                self._call(subscription.unsubscribe())

    def delete(self) -> None:
        """Delete the whole stream (tests, and an operator starting over)."""
        if self._closing:
            return
        with contextlib.suppress(NotFoundError):
            self._call(self.js.delete_stream(self.stream))

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        client = self._client
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):  # closing: nothing more to say to it
                self._call(client.close(), self.timeout_seconds)
        self._client = None
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout_seconds)
        if not self._loop.is_running():
            self._loop.close()


def _why(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"cannot be reached: {text}"


async def _quiet(error: Exception) -> None:
    log.debug("nats: %s", error)


async def _reconnected() -> None:
    log.info("block stream reconnected")
