"""The dashboard in a real browser (Debian's headless Chromium, driven by Selenium) against a
dev node with bots trading: the book fills, a trade arrives over the WebSocket, an account
opens, and the screenshots taken on the way show a page, not a blank one.

``make browser`` installs Chromium and its driver; where they are absent this test is skipped.
"""

from __future__ import annotations

import struct
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.node.conftest import NodeProcess

from clearhouse.client import Client, Wallet
from clearhouse.client.bots import MarketMaker

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (the project's dev extra has it)"
)
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Debian's chromium and chromium-driver are not installed (`make browser`)",
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

BTC = 100_000_000
MARKET = "BTC-PERP"
WAIT_SECONDS = 45.0  # a loaded two-core machine: the dev feed, the bots and the browser share it
COLOURS_MIN = 64  # a rendered dashboard has thousands; a blank page one or two
# Flags for a headless browser that reaches nothing but the node: no sandbox (CI runs as
# root), no GPU, and none of the background calls home.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1366,768",
)  # fmt: skip


@pytest.fixture
def browser() -> Iterator[Any]:
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


class Bots:
    """A maker requoting a ladder and a taker lifting it, on a thread, until stopped: what
    ``clearhouse maker`` and a trader would do against a dev node."""

    def __init__(self, url: str) -> None:
        self.maker = Client(url, Wallet.create())
        self.taker = Client(url, Wallet.create())
        self.maker.faucet(1_000_000)
        self.taker.faucet(100_000)
        self.ladder = MarketMaker(self.maker, MARKET, size_base_quantums=BTC // 50, levels=5)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        side = "buy"
        while not self.stop.is_set():
            try:
                self.ladder.step()
                book = self.taker.book(MARKET)
                levels = book["asks" if side == "buy" else "bids"]
                if levels:
                    self.taker.place_order(MARKET, side, size_base_quantums=BTC // 100,
                                           price_quantums=levels[0][0])  # fmt: skip
                    side = "sell" if side == "buy" else "buy"
            except Exception as error:  # kept: the waits below report it
                self.errors.append(error)
            self.stop.wait(0.5)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.maker.close()
        self.taker.close()


@pytest.fixture
def bots(node: NodeProcess) -> Iterator[Bots]:
    running = Bots(node.url)
    running.thread.start()
    yield running
    running.close()


def test_dashboard_shows_the_book_a_live_trade_and_an_account(
    node: NodeProcess, bots: Bots, browser: Any, tmp_path: Path
) -> None:
    blank = tmp_path / "blank.png"
    browser.get("about:blank")
    browser.save_screenshot(str(blank))
    assert distinct_colours(blank.read_bytes()) < COLOURS_MIN  # the check can tell a blank

    browser.get(node.url + "/")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda d: _data(d, "bookLevels") > 0, f"the book never filled: {bots.errors}")
    seen = _data(browser, "liveTrades")
    wait.until(lambda d: _data(d, "liveTrades") > seen, f"no live trade: {bots.errors}")
    assert browser.find_elements("css selector", "#trades tr.bid, #trades tr.ask")
    market = tmp_path / "market.png"
    browser.save_screenshot(str(market))

    browser.find_element("id", "address").send_keys(bots.taker.account)
    browser.find_element("css selector", "#account-form button").click()
    wait.until(lambda d: MARKET in _text(d, "#account .positions"), "no position in the view")
    assert bots.taker.account.lower() in _text(browser, "#account .sub-title")
    account = tmp_path / "account.png"
    browser.save_screenshot(str(account))

    for shot in (market, account):
        assert distinct_colours(shot.read_bytes()) >= COLOURS_MIN, shot
    assert not _page_errors(browser)


def _data(driver: Any, key: str) -> int:
    value = driver.execute_script(f"return document.body.dataset.{key} || '0'")
    return int(value)


def _text(driver: Any, selector: str) -> str:
    found = driver.find_elements("css selector", selector)
    return " ".join(e.text for e in found)


def _page_errors(driver: Any) -> list[dict[str, Any]]:
    """Script errors the page logged (a broken asset, an exception in app.js)."""
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
