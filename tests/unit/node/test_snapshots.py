"""Background snapshots: the bytes a forked child serializes reach the journal's writer, and the
child holds nothing of the node's open (a port, a lock file) while it works."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from clearhouse.app.ports import Snapshot
from clearhouse.node.snapshots import BackgroundSnapshots

pytestmark = pytest.mark.skipif(
    not BackgroundSnapshots.available() or not sys.platform.startswith("linux"),
    reason="forked snapshots and /proc: Linux only",
)


def test_the_child_serializes_and_the_collector_writes() -> None:
    written: list[Snapshot] = []
    snapshots = BackgroundSnapshots(written.append)
    assert snapshots.start(7, b"\x01" * 32, lambda: b"state as of height 7")
    snapshots.wait()
    assert written == [Snapshot(7, b"\x01" * 32, b"state as of height 7")]


def test_a_failing_serializer_writes_nothing() -> None:
    written: list[Snapshot] = []
    snapshots = BackgroundSnapshots(written.append)

    def broken() -> bytes:
        raise RuntimeError("cannot pickle")

    assert snapshots.start(7, b"\x01" * 32, broken)
    snapshots.wait()
    assert written == []


def test_one_snapshot_at_a_time() -> None:
    written: list[Snapshot] = []
    snapshots = BackgroundSnapshots(written.append)

    def slow() -> bytes:
        time.sleep(0.5)
        return b"first"

    assert snapshots.start(1, b"\x01" * 32, slow)
    assert not snapshots.start(2, b"\x02" * 32, lambda: b"second")  # the first still runs
    snapshots.wait()
    assert [s.height for s in written] == [1]


def test_the_child_keeps_no_descriptor_of_the_node_open(tmp_path: Path) -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    lock_file = (tmp_path / "node.lock").open("w")
    go = tmp_path / "go"
    snapshots = BackgroundSnapshots(lambda _: None)

    def waiting() -> bytes:  # runs in the child: holds it alive until the test has looked
        deadline = time.monotonic() + 30
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return b"state"

    try:
        assert snapshots.start(1, b"\x01" * 32, waiting)
        held = _descriptors_once_settled(snapshots.child_pid)
    finally:
        go.touch()
        snapshots.wait()
        listening.close()
        lock_file.close()
    assert str(tmp_path / "node.lock") not in held
    assert not any(target.startswith("socket:") for target in held), held
    assert len(held) <= 4, held  # stdin, stdout, stderr and its pipe


def _descriptors_once_settled(pid: int) -> set[str]:
    """What the child holds open once it has closed what it inherited (first thing it does),
    or, after 10 s, whatever it still holds."""
    deadline = time.monotonic() + 10
    while True:
        held = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):  # closed since it was listed
                held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        if len(held) <= 4 or time.monotonic() > deadline:
            return held
        time.sleep(0.05)
