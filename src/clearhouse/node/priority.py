"""Commands first: a read gives way to the commands that arrived before it.

The node serves both on one interpreter. A crowd of readers keeps the event loop, and the
interpreter's lock, busy; an order waited behind reads now and then: to be parsed and its
signature recovered, for the writer thread to execute its block, and for its answer to be sent.
Here a command request is open from its arrival until its answer is sent (after its block is
durable), and while one is open:

* a read that arrives waits, parked on the event loop (``wait``), until every command request
  that arrived before it has been answered;
* the recomputation of a heavy view, on a worker thread, waits between its parts
  (``wait_blocking``) likewise.

Only the commands ahead of a read count, so a steady stream of commands delays a read by the
ones in flight, never for ever; and never by more than the bound each caller gives
(``READ_WAIT_SECONDS_MAX`` for a request). Commands are numbered, opened and answered on the
event loop's thread; worker threads only read ``_first_open``, one int.
"""

from __future__ import annotations

import asyncio
import threading

READ_WAIT_SECONDS_MAX = 0.05  # a read waits for the commands ahead of it at most this long


class CommandsFirst:
    def __init__(self) -> None:
        self._arrived = 0  # command requests numbered in order of arrival
        self._open: set[int] = set()  # the numbers of those not answered yet
        self._first_open = 0  # the lowest of them; ``_arrived`` when none is open
        self._answered: asyncio.Event | None = None  # set, then replaced, at each answer
        self._threads = threading.Condition()  # worker threads waiting for an answer

    @property
    def open(self) -> int:
        return len(self._open)

    def arrived(self) -> int:
        """A command request arrived: its number, for ``answered``."""
        number = self._arrived
        self._arrived += 1
        if not self._open:
            self._first_open = number
        self._open.add(number)
        assert self._first_open <= number
        return number

    def answered(self, number: int) -> None:
        """The command request ``number`` has its answer sent (or failed)."""
        assert number in self._open
        self._open.discard(number)
        self._first_open = min(self._open) if self._open else self._arrived
        answered, self._answered = self._answered, None
        if answered is not None:
            answered.set()
        with self._threads:
            self._threads.notify_all()

    async def wait(self) -> None:
        """Park a read (on the event loop) until the command requests that arrived before it are
        answered, at most ``READ_WAIT_SECONDS_MAX``."""
        ahead = self._arrived
        if self._first_open >= ahead:
            return  # nothing ahead of this read: the common case costs two ints
        try:
            async with asyncio.timeout(READ_WAIT_SECONDS_MAX):
                while self._first_open < ahead:
                    if self._answered is None:
                        self._answered = asyncio.Event()
                    await self._answered.wait()
        except TimeoutError:
            return

    def wait_blocking(self, timeout: float) -> None:
        """``wait`` for a worker thread, at most ``timeout`` seconds."""
        ahead = self._arrived
        if self._first_open >= ahead:
            return
        with self._threads:
            self._threads.wait_for(lambda: self._first_open >= ahead, timeout)
