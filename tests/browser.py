"""Headless Chromium for the project's browser tests (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium; ``make browser`` installs them), and a PNG reader
without an imaging library, to tell a rendered page from a blank one. A test module that
imports this is skipped, with the reason, where the browser or its driver is absent.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (the project's dev extra has it)"
)
AVAILABLE = CHROMIUM.exists() and CHROMEDRIVER.exists()
NOT_INSTALLED = "Debian's chromium and chromium-driver are not installed (`make browser`)"
from selenium.webdriver.chrome.service import Service  # noqa: E402

WAIT_SECONDS = 45.0  # a loaded two-core machine: the node, the bots and the browser share it
COLOURS_MIN = 64  # a rendered page has thousands; a blank page one or two
# Flags for a headless browser that reaches nothing but localhost: no sandbox (CI runs as
# root), no GPU, and none of the background calls home.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1366,768",
)  # fmt: skip


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driver with a fresh profile, quit on exit."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="clearhouse-chromium-") as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # An explicit driver path: Selenium's own manager never runs (it would download one).
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(WAIT_SECONDS)
        try:
            yield driver
        finally:
            driver.quit()


def page_errors(driver: Any) -> list[dict[str, Any]]:
    """Script errors the page logged (a broken asset, an exception in a script)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


# ── PNG, read without an imaging library ───────────────────────────────────────────────────


def distinct_colours(png: bytes) -> int:
    pixels = png_pixels(png)[..., :3].astype(np.uint32)
    packed = pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2]
    return len(np.unique(packed))


def png_pixels(data: bytes) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as a height × width × channels array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    header, compressed = _chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(compressed)
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        start = y * (stride + 1)
        line = np.frombuffer(raw, np.uint8, stride, start + 1).astype(np.int64)
        row = _unfilter(raw[start], line, prior, channels)
        rows[y] = row
        prior = row
    return rows.reshape(height, width, channels)


def _chunks(data: bytes) -> tuple[bytes, bytes]:
    position, header, image = 8, b"", []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            image.append(body)
        position += 12 + length
    return header, b"".join(image)


def _unfilter(kind: int, line: np.ndarray, prior: np.ndarray, channels: int) -> np.ndarray:
    """Undo one scanline's filter (PNG spec §9.2); Sub and Up vectorised, the others in order."""
    if kind == 0:
        return line
    if kind == 1:
        return (np.cumsum(line.reshape(-1, channels), axis=0) & 0xFF).reshape(-1)
    if kind == 2:
        return (line + prior) & 0xFF
    assert kind in (3, 4), f"unknown PNG filter {kind}"
    up, row = prior.tolist(), [0] * len(line)
    for i, value in enumerate(line.tolist()):
        left = row[i - channels] if i >= channels else 0
        if kind == 3:
            row[i] = (value + (left + up[i]) // 2) & 0xFF
            continue
        corner = up[i - channels] if i >= channels else 0
        guess = left + up[i] - corner
        near = min((abs(guess - left), 0), (abs(guess - up[i]), 1), (abs(guess - corner), 2))
        row[i] = (value + (left, up[i], corner)[near[1]]) & 0xFF
    return np.array(row, dtype=np.int64)
