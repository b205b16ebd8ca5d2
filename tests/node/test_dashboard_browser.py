"""The dashboard in a real browser (Debian's headless Chromium, driven by Selenium) against a
dev node with bots trading: the book fills, a trade arrives over the WebSocket, an account
opens, and the screenshots taken on the way show a page, not a blank one. On the dev node's
council, the governance panel shows an open proposal and a parameter change.

``make browser`` installs Chromium and its driver; where they are absent this test is skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.node.conftest import NodeProcess

from browser import (
    AVAILABLE,
    COLOURS_MIN,
    NOT_INSTALLED,
    WAIT_SECONDS,
    chromium,
    distinct_colours,
    page_errors,
)
from clearhouse.client import Client, Wallet
from clearhouse.client.bots import MarketMaker
from clearhouse.core.messages import ActionKind, GovAction, Propose, StewardUpdate
from clearhouse.node.dev import dev_key

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=NOT_INSTALLED)
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

BTC = 100_000_000
MARKET = "BTC-PERP"


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


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
    assert _text(browser, "#trades tr.bid, #trades tr.ask")
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
    assert not page_errors(browser)


def _data(driver: Any, key: str) -> int:
    value = driver.execute_script(f"return document.body.dataset.{key} || '0'")
    return int(value)


def _text(driver: Any, selector: str) -> str:
    """The rendered text of what matches, read in one script: the page re-renders on every
    stream message, so elements found by one call may be gone by the next."""
    script = (
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText).join(' ')"
    )
    return str(driver.execute_script(script, selector))


def test_the_governance_panel_shows_open_proposals_and_changes(
    node: NodeProcess, browser: Any, tmp_path: Path
) -> None:
    fee = GovAction(kind=ActionKind.SET_PARAM, name="market.taker_fee_ppm", target=MARKET,
                    value=750)  # fmt: skip
    with Client(node.url, Wallet(dev_key("council-0"))) as member:
        assert member.submit(Propose(**member.common(), actions=(fee,)))["status"] == "accepted"
    browser.get(node.url + "/")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda d: _data(d, "govProposals") == 1, "no open proposal in the panel")
    queue = _text(browser, "#gov-queue")
    assert "#1" in queue and "pending" in queue and "1/2" in queue
    assert "2 of 3" in _text(browser, "#gov-summary")
    with Client(node.url, Wallet(dev_key("steward"))) as steward:
        change = GovAction(kind=ActionKind.SET_PARAM, name="market.taker_fee_ppm",
                           target="ETH-PERP", value=750)  # fmt: skip
        assert steward.submit(StewardUpdate(**steward.common(), actions=(change,)))
    wait.until(lambda d: "taker_fee_ppm ETH-PERP" in _text(d, "#gov-changes"), "no change shown")
    assert "0.05% → 0.075%" in _text(browser, "#gov-changes")
    shot = tmp_path / "governance.png"
    browser.save_screenshot(str(shot))
    assert distinct_colours(shot.read_bytes()) >= COLOURS_MIN
    assert not page_errors(browser)
