"""Reference bots on the SDK: a keeper that liquidates and bids in auctions, and a market maker
that keeps a symmetric ladder around the index. Each ``step`` is one pass; ``run`` repeats it.

They are deliberately plain: the point is to show what a keeper or a maker needs from the node
(the liquidation and auction lists; the index and the book) and how it signs and batches.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from clearhouse.client.http import ApiRejection, Client
from clearhouse.core.ids import Address
from clearhouse.core.messages import Command, TimeInForce

log = logging.getLogger("clearhouse.bots")
PPM = 1_000_000


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
                continue
            owner, number = target.split("/")
            if self._send(lambda o=owner, n=number: self.client.liquidate(Address(o), int(n))):
                self.liquidated += 1
        if self.bid_share_ppm:
            for item in found["in_progress"]:
                self._bid(item, own)

    def _bid(self, item: dict[str, Any], own: str) -> None:
        auction = item["auction"]
        if auction is None or item["subaccount"].startswith(own) or auction["market_id"] == "*":
            return
        params = self.client.market(auction["market_id"])["params"]
        size = auction["size_base_quantums"] * self.bid_share_ppm // PPM
        size = max(size - size % params["step_base_quantums"], params["min_order_base_quantums"])
        owner, number = item["subaccount"].split("/")
        if self._send(lambda: self.client.bid_auction(
            Address(owner), int(number), auction["market_id"], size,
            subaccount_number=self.subaccount_number,
        )):  # fmt: skip
            self.bids += 1

    @staticmethod
    def _send(action: Any) -> bool:
        try:
            action()
            return True
        except ApiRejection as refused:  # another keeper was first, or it recovered: fine
            log.info("keeper command refused", extra={"code": refused.code})
            return False


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
            return []  # no price to quote around
        tick = market["params"]["tick_quantums"]
        self.client.cancel_all(self.market_id, subaccount_number=self.subaccount_number)
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
        results = self.client.submit_batch(orders)
        self.quotes += sum(1 for r in results if r.get("status") == "accepted")
        return results


def run(step: Any, interval_seconds: float, steps: int | None = None) -> None:
    """Call ``step`` every ``interval_seconds`` (``steps`` times, or until interrupted)."""
    done = 0
    while steps is None or done < steps:
        started = time.monotonic()
        try:
            step()
        except ApiRejection as refused:
            log.warning("step refused", extra={"code": refused.code})
        except httpx.TransportError as error:  # the node restarting: try again next step
            log.warning("node unreachable", extra={"error": repr(error)})
        done += 1
        time.sleep(max(0.0, interval_seconds - (time.monotonic() - started)))
