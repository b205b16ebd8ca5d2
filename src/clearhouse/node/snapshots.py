"""Snapshots written without stopping the writer.

A snapshot pickles the engine's state and the read model; both grow with the venue and its
history (at a few thousand blocks of a busy dev node, 2.4 MB and 100–200 ms of the writer's
time, every order waiting behind it). So the writer forks, as Redis's background save does: the
child holds a copy-on-write image of the process as of that instant, serializes it at leisure on
another core and sends the bytes down a pipe; a collector thread in the node hands them to the
journal. The writer pays for the fork (page tables: milliseconds) and goes on cutting blocks.

The cost is memory: the pages the child touches are copied, and pickling touches every object
it writes (their reference counts), so a venue's state is held twice for the seconds the child
runs. The child does not collect garbage (its collector would touch every object besides).

The child runs nothing but the serializer: it closes every descriptor it inherited but its pipe,
touches no lock another thread could have held at the fork, no connection, no event loop, and
leaves with ``os._exit`` (no finalizers, no atexit).
Where ``os.fork`` does not exist the snapshot is written in line, as before.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import warnings
from collections.abc import Callable

from clearhouse.app.ports import Snapshot

log = logging.getLogger("clearhouse.node.snapshots")
PIPE_READ_BYTES = 1 << 20
MAX_FD = 1 << 20  # closerange's bound (close_range(2) on Linux: one call, whatever the bound)


class BackgroundSnapshots:
    """At most one snapshot in flight; ``write`` is called with each finished one, on the
    collector's thread."""

    def __init__(self, write: Callable[[Snapshot], None]) -> None:
        self._write = write
        self._collector: threading.Thread | None = None
        self.child_pid = 0  # of the last child forked

    @staticmethod
    def available() -> bool:
        return hasattr(os, "fork")

    def busy(self) -> bool:
        return self._collector is not None and self._collector.is_alive()

    def start(self, height: int, state_root: bytes, serialize: Callable[[], bytes]) -> bool:
        """Fork a child to serialize the process's state as of now; False (nothing started)
        while the previous one still runs. Call it with the state quiescent: between blocks."""
        if self.busy():
            return False
        read_fd, write_fd = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork in a threaded process: the child here only serializes.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, measured by what it sends
            os.close(read_fd)
            _serialize_in_child(write_fd, serialize)
        os.close(write_fd)
        self.child_pid = pid
        self._collector = threading.Thread(
            target=self._collect, args=(pid, read_fd, height, state_root),
            name="snapshot", daemon=True,
        )  # fmt: skip
        self._collector.start()
        return True

    def wait(self) -> None:
        """Until the snapshot in flight, if any, is written (or given up)."""
        if self._collector is not None:
            self._collector.join()

    def _collect(self, pid: int, read_fd: int, height: int, state_root: bytes) -> None:
        chunks = []
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(PIPE_READ_BYTES):
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.warning("snapshot at height %d not written: its child exited with %d", height, code)
            return
        try:
            self._write(Snapshot(height, state_root, b"".join(chunks)))
        except Exception:  # a snapshot only shortens recovery: failing must not stop the node
            log.exception("snapshot failed; recovery replays further back until the next one")


def _serialize_in_child(fd: int, serialize: Callable[[], bytes]) -> None:  # pragma: no cover
    code = 1
    try:
        # Nothing the node holds open stays open here: a listening socket or a lock file kept
        # by a child would outlive a parent killed meanwhile, and hold its port and its lock
        # against the node restarted in its place.
        os.closerange(3, fd)
        os.closerange(fd + 1, MAX_FD)
        gc.disable()  # short-lived: a collection would only copy more pages
        # The parent's handlers would write to its event loop's wake-up descriptor: a ^C on the
        # terminal reaches both processes, and the node must hear it once.
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_DFL)
        body = memoryview(serialize())
        while body:
            body = body[os.write(fd, body) :]
        code = 0
    finally:
        os._exit(code)
