"""An exclusive lock on a SQLite journal: one writer process per journal file.

SQLite's own locks serialise transactions, not processes: two nodes on one file would both run
(and one would die on its first commit, or worse, both would cut blocks at the same heights).
So a writer takes an OS lock (``flock``) on ``<journal>.lock`` beside the database and keeps it
open for its life. The kernel releases it when the process exits, however it exits (SIGKILL
included), so a lock is never stale. The lock file itself is never deleted: deleting it would
let two processes lock two different files of the same name.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from clearhouse.core.errors import BadDataDir, JournalLocked


def lock_path(journal: Path) -> Path:
    return Path(f"{journal}.lock")


class JournalLock:
    """``flock(LOCK_EX | LOCK_NB)`` on ``<journal>.lock``, held until ``release()``."""

    def __init__(self, journal: Path) -> None:
        self.path = lock_path(journal)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise BadDataDir(f"cannot create the lock file {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise JournalLocked(
                f"{journal} is in use by another clearhouse process{holder} "
                f"(it holds the lock {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def _read_holder(fd: int) -> str:
    """`` (pid N)`` as the holder wrote it, or nothing if it is unreadable."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {text})" if text.isdigit() else ""
