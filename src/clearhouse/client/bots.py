"""Reference bots on the SDK: a keeper that liquidates and bids in auctions, and a market maker
that keeps a symmetric ladder around the index. Each ``step`` is one pass; ``run`` repeats it
until told to stop, then calls the bot's ``stop`` (the maker cancels its resting quotes: a
stopped maker must not leave orders nobody watches).

They are deliberately plain: the point is to show what a keeper or a maker needs from the node
(the liquidation and auction lists; the index and the book) and how it signs and batches. Each
action and each refusal is one log line (logger ``clearhouse.bots``), refusals with the
node's stable code, so an operator can read what a bot did and why a step did nothing.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx

from clearhouse.client.http import Client
from clearhouse.client.surface import ApiRejection
from clearhouse.core.messages import Command, TimeInForce

log = logging.getLogger("clearhouse.bots")
PPM = 1_000_000


@runtime_checkable
class Bot(Protocol):
    def step(self) -> object: ...

    def stop(self) -> None: ...


def attempt(what: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Run one command, logging it and its outcome; None when the node refused it."""
    try:
        answer = action()
    except ApiRejection as refused:
        log.info("%s: refused %s (%s)", what, refused.code, refused.status)
        return None
    log.info("%s: done at height %s", what, answer.get("height"))
    return answer


@dataclass(slots=True)
class KeeperBot:
    """Liquidates what the node lists as liquidatable (the keeper's subaccount earns its share
    of the fee) and bids ``bid_share_ppm`` of each open perpetual auction."""

    client: Client
    subaccount_number: int = 0
    bid_share_ppm: int = 0
    liquidated: int = 0
    bids: int = 0

    def step(self) -> None:
        found = self.client.liquidations()
        own = f"{self.client.account}/"
        for target in found["liquidatable"]:
            if target.startswith(own):
                continue  # the engine refuses liquidating oneself: do not spend a nonce on it
            self.liquidated += self._liquidate(target) is not None
        if self.bid_share_ppm:
            for item in found["in_progress"]:
                self._bid(item, own)

    def _liquidate(self, target: str) -> dict[str, Any] | None:
        owner, number = target.split("/")
        return attempt(f"liquidate {target}", lambda: self.client.liquidate(
            owner, int(number), subaccount_number=self.subaccount_number))  # fmt: skip

    def _bid(self, item: dict[str, Any], own: str) -> None:
        auction = item["auction"]
        if auction is None or item["subaccount"].startswith(own) or auction["market_id"] == "*":
            return  # no auction, our own, or a portfolio auction (bid with BidPortfolio)
        params = self.client.market(auction["market_id"])["params"]
        size = auction["size_base_quantums"] * self.bid_share_ppm // PPM
        size = max(size - size % params["step_base_quantums"], params["min_order_base_quantums"])
        owner, number = item["subaccount"].split("/")
        done = attempt(f"bid {size} in the auction of {item['subaccount']}", lambda: (
            self.client.bid_auction(owner, int(number), auction["market_id"], size,
                                    subaccount_number=self.subaccount_number)))  # fmt: skip
        self.bids += done is not None

    def stop(self) -> None:
        log.info("keeper stopped: %d liquidations, %d auction bids", self.liquidated, self.bids)


@dataclass(slots=True)
class MarketMaker:
    """Every step: cancel its orders in the market, then post ``levels`` bids and asks
    ``spread_ppm`` around the index, ``step_ppm`` apart, all in one signed batch."""

    client: Client
    market_id: str
    size_base_quantums: int
    levels: int = 5
    spread_ppm: int = 1_000
    step_ppm: int = 500
    subaccount_number: int = 0
    quotes: int = field(default=0)

    def step(self) -> list[dict[str, Any]]:
        market = self.client.market(self.market_id)
        index = market["index_price_quantums"]
        if index <= 0 or market["oracle_status"] != "fresh":
            log.info("maker %s: not quoting: oracle %s", self.market_id, market["oracle_status"])
            return []  # no price to quote around
        self._cancel("requote")
        orders = self._ladder(index, market["params"]["tick_quantums"])
        results = self.client.submit_batch(orders)
        for order, result in zip(orders, results, strict=True):
            self._log_quote(order, result)
        self.quotes += sum(1 for r in results if r.get("status") == "accepted")
        return results

    def _ladder(self, index: int, tick: int) -> list[Command]:
        orders: list[Command] = []
        for level in range(self.levels):
            offset = self.spread_ppm + level * self.step_ppm
            bid = index * (PPM - offset) // PPM // tick * tick  # down: never through the index
            ask = -(-index * (PPM + offset) // PPM // tick) * tick  # up
            for side, price in (("buy", bid), ("sell", ask)):
                orders.append(self.client.order(
                    self.market_id, side, size_base_quantums=self.size_base_quantums,
                    price_quantums=price, subaccount_number=self.subaccount_number,
                    time_in_force=TimeInForce.POST_ONLY,
                ))  # fmt: skip
        return orders

    def _log_quote(self, order: Any, result: dict[str, Any]) -> None:
        what = (f"maker {self.market_id}: quote {order.side.name.lower()} "
                f"{order.size_base_quantums} at {order.price_quantums}")  # fmt: skip
        if result.get("status") == "accepted":
            log.info("%s: order %s", what, result.get("order_id"))
        else:
            # A refusal in a block says its code; one refused before (a bad nonce, a rate
            # limit) carries it in its error, as a single command's answer would.
            code = result.get("code") or result.get("error", {}).get("code", "UNKNOWN")
            log.info("%s: refused %s (%s)", what, code, result.get("http_status"))

    def _cancel(self, why: str) -> None:
        what = f"maker {self.market_id}: cancel all quotes ({why})"
        attempt(what, lambda: self.client.cancel_all(
            self.market_id, subaccount_number=self.subaccount_number))  # fmt: skip

    def stop(self) -> None:
        """Cancel every resting quote: nobody requotes them once the bot is gone."""
        self._cancel("stopping")


@dataclass(frozen=True, slots=True)
class Steps:
    """A bare step function as a bot with nothing to clean up."""

    function: Callable[[], object]

    def step(self) -> object:
        return self.function()

    def stop(self) -> None:
        pass


def run(bot: Bot | Callable[[], object], interval_seconds: float, steps: int | None = None,
        stop: threading.Event | None = None) -> None:  # fmt: skip
    """``bot.step()`` every ``interval_seconds`` (``steps`` times, or until ``stop`` is set),
    then ``bot.stop()``, however the loop ended. A bare function is stepped alone."""
    stepped = bot if isinstance(bot, Bot) else Steps(bot)
    stop = stop or threading.Event()
    done = 0
    try:
        while not stop.is_set() and (steps is None or done < steps):
            started = time.monotonic()
            _step(stepped)
            done += 1
            stop.wait(max(0.0, interval_seconds - (time.monotonic() - started)))
    finally:
        _stop(stepped)


def _step(bot: Bot) -> None:
    try:
        bot.step()
    except ApiRejection as refused:
        log.warning("step refused: %s (%s): %s", refused.code, refused.status, refused)
    except httpx.TransportError as error:  # the node restarting: try again next step
        log.warning("step skipped: node unreachable: %r", error)


def _stop(bot: Bot) -> None:
    try:
        bot.stop()
    except (ApiRejection, httpx.TransportError) as error:
        log.error("stop incomplete: %s: resting orders may remain", error)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set ``stop``: the loop finishes its step and the bot cleans up."""

    def handle(number: int, _: object) -> None:
        log.info("%s received: stopping", signal.Signals(number).name)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
