"""``clearhouse replica``: follow a venue's block stream into a journal of its own (SPEC §12).

The replica takes the stream's blocks from the height after its journal's head, each one
re-executed by the engine and checked against its record (``Chain.extend``: commands hash,
events digest, state root, block hash) before it is stored, byte for byte as the sequencer
stored it. A block that does not verify, or a gap, stops it (ReplicaMismatch, ReplicaGap: one
line and an exit code) with nothing of that block stored. Its journal is an ordinary one:
``clearhouse serve --journal <it> --replicate URL`` makes it the sequencer (a takeover).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from clearhouse.adapters.nats_stream import NatsBlockStream, stream_names
from clearhouse.adapters.stores import open_journal
from clearhouse.app.ports import StoredBlock
from clearhouse.app.replication import bootstrap, follow
from clearhouse.core.block import ExecutedBlock

log = logging.getLogger("clearhouse.node.replica")


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    nats_url: str
    journal: str  # a SQLite file, or a postgresql:// URL
    chain_id: int
    stream: str | None = None
    stream_replicas: int = 1


@dataclass(frozen=True, slots=True)
class ReplicaProgress:
    height: int
    state_root: bytes
    commands: int
    caught_up: bool  # False while taking what the journal lacked at the start


def run_replica(
    config: ReplicaConfig,
    on_progress: Callable[[ReplicaProgress], None],
    stop: threading.Event | None = None,
) -> int:
    """Follow the stream until SIGTERM/SIGINT (or ``stop``); returns the journal's height."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, lambda *_: stop.set())
    name, subject = stream_names(config.chain_id, config.stream)
    journal = open_journal(config.journal, exclusive=True)
    try:
        stream = NatsBlockStream(
            config.nats_url, stream=name, subject=subject, replicas=config.stream_replicas
        )
        try:
            chain = bootstrap(journal, stream)
            started = chain.height
            target = stream.last_height()
            log.info("replica following", extra={"stream": name, "height": chain.height,
                                                 "stream_height": target})  # fmt: skip

            def took(stored: StoredBlock, executed: ExecutedBlock) -> None:
                height = stored.header.height
                on_progress(ReplicaProgress(height, executed.header.state_root,
                                            len(stored.commands), height >= target))  # fmt: skip

            follow(chain, stream, stop=stop, on_block=took)
            log.info("replica stopped", extra={"height": chain.height,
                                               "taken": chain.height - started})  # fmt: skip
            return chain.height
        finally:
            stream.close()
    finally:
        journal.close()
