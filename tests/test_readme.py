"""Every code block of README.md runs as written, top to bottom, on a fresh folder.

The convention: each ```sh and ```python block follows a marker line that says what to do:

    <!-- readme-test: run -->           run it (sh with ``bash -e``); it must exit 0
    <!-- readme-test: serve -->         start it in the background; it must answer /health
    <!-- readme-test: background -->    start it, let it log, SIGTERM it; it must exit 0
    <!-- readme-test: skip REASON -->   not run, for the reason given (a long one: make test)

A block without a marker fails the test, so no snippet goes unchecked by accident. The blocks
run in order in one temporary folder, where ``.venv`` links to the environment running the
tests. One change is made to what they say: ports 8400 and 8401 become free ports, so that a
node already running on this machine is never the one answering.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.node.conftest import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: (\w+)(?: ([^>]*?))? -->\n)?```(\w*)\n(.*?)```", re.S)
KINDS = {"run", "serve", "background", "skip"}
PORTS = ("8400", "8401")
RUN_SECONDS = 180


@dataclass(frozen=True)
class Block:
    line: int
    kind: str | None  # None: no marker
    reason: str
    language: str
    code: str


def blocks() -> list[Block]:
    text = README.read_text()
    return [_block(text, m) for m in BLOCK.finditer(text)]


def _block(text: str, match: re.Match[str]) -> Block:
    line = text.count("\n", 0, match.start(3)) + 1
    reason = (match.group(2) or "").strip()
    return Block(line, match.group(1), reason, match.group(3), match.group(4))


def test_every_runnable_block_says_how_it_is_tested() -> None:
    found = [b for b in blocks() if b.language in {"sh", "bash", "python"}]
    assert len(found) >= 10, "the README's blocks were not found"
    unmarked = [b.line for b in found if b.kind not in KINDS]
    assert not unmarked, f"README blocks at lines {unmarked} have no readme-test marker"
    assert all(b.reason for b in found if b.kind == "skip"), "a skip says why"
    assert all(b.language == "text" for b in blocks() if b.language not in {"sh", "bash", "python"})


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[bytes]]]]:
    """A fresh folder with ``.venv`` (this environment); what is served there is stopped."""
    assert (Path(sys.prefix) / "bin" / "clearhouse").exists(), "run the tests from a venv"
    (tmp_path / ".venv").symlink_to(sys.prefix)
    started: list[subprocess.Popen[bytes]] = []
    yield tmp_path, started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_readme_runs_top_to_bottom(
    folder: tuple[Path, list[subprocess.Popen[bytes]]],
) -> None:
    cwd, started = folder
    ports = {port: str(free_port()) for port in PORTS}
    for index, block in enumerate(b for b in blocks() if b.language in {"sh", "python"}):
        code = block.code
        for written, used in ports.items():
            code = code.replace(written, used)
        if block.kind == "run":
            run(cwd, index, block, code)
        elif block.kind == "serve":
            started.append(serve(cwd, index, block, code))
        elif block.kind == "background":
            stop_after_work(cwd, index, block, code)
    for process in started:  # a node stops cleanly on SIGTERM: every queued command is done
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(60) == 0


def command(cwd: Path, index: int, block: Block, code: str) -> list[str]:
    if block.language == "python":
        script = cwd / f"readme_{index}.py"
        script.write_text(code)
        return [sys.executable, script.name]
    return ["bash", "-e", "-c", code]


def run(cwd: Path, index: int, block: Block, code: str) -> None:
    done = subprocess.run(command(cwd, index, block, code), cwd=cwd, capture_output=True,
                          text=True, timeout=RUN_SECONDS, check=False)  # fmt: skip
    assert done.returncode == 0, f"README line {block.line}:\n{code}\n{done.stdout}{done.stderr}"


def start(cwd: Path, index: int, block: Block, code: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = cwd / f"readme_{index}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command(cwd, index, block, code), cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    return process, log


def serve(cwd: Path, index: int, block: Block, code: str) -> subprocess.Popen[bytes]:
    process, log = start(cwd, index, block, code)
    url = "http://127.0.0.1:" + re.findall(r"--port (\d+)", code)[0]
    deadline = time.monotonic() + 60
    while not ready(url):
        assert process.poll() is None, f"README line {block.line}: {log.read_text()}"
        assert time.monotonic() < deadline, f"README line {block.line}: not ready"
        time.sleep(0.1)
    while "--dev" in code and not fresh(url):  # the snippets that follow trade at the index
        assert time.monotonic() < deadline, f"README line {block.line}: no fresh index"
        time.sleep(0.1)
    return process


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def fresh(url: str) -> bool:
    market = httpx.get(url + "/v1/markets/BTC-PERP", timeout=10.0).json()
    return bool(market["oracle_status"] == "fresh")


def stop_after_work(cwd: Path, index: int, block: Block, code: str) -> None:
    """A bot: once it has logged an action, SIGTERM; it must clean up and exit 0."""
    process, log = start(cwd, index, block, code)
    deadline = time.monotonic() + 60
    while " INFO " not in log.read_text():
        assert process.poll() is None, f"README line {block.line}: {log.read_text()}"
        assert time.monotonic() < deadline, f"README line {block.line}: {log.read_text()}"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(60) == 0, f"README line {block.line}: {log.read_text()}"
