"""The reference keeper: a small program that watches the engine and sends liquidations.

Anyone may run one: it reads the engine's public queries (``liquidatable``, the open auctions in
``state.liquidations``) and signs ``Liquidate`` and ``BidAuction`` commands for its own
subaccount, which is paid the keeper's share of each liquidation fee. The protocol liquidates on
its own after ``keeper_grace_ns``, so a venue stays solvent when no keeper runs; keepers make
it faster and are paid for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.core.engine import Engine
from clearhouse.core.ids import MarketId, SubaccountId
from clearhouse.core.messages import BidAuction, BidPortfolio, Command, Liquidate
from clearhouse.core.state import PORTFOLIO_AUCTION
from clearhouse.core.units import NS_PER_SECOND
from clearhouse.sim.signer import Signer

KEEPER_TTL_NS = 30 * NS_PER_SECOND


@dataclass(slots=True)
class Keeper:
    signer: Signer
    subaccount_number: int = 0
    liquidations_per_block: int = 16
    bid_share_ppm: int = 0  # of each open auction's remaining size to bid for; 0: never bid

    def commands(
        self, engine: Engine, timestamp_ns: int, liquidatable: list[SubaccountId] | None = None
    ) -> list[Command]:
        """What this keeper sends in the next block, from what the engine shows now
        (``liquidatable``: ``engine.liquidatable()`` when the caller has it already)."""
        commands: list[Command] = []
        if liquidatable is None:
            liquidatable = engine.liquidatable()
        for target in liquidatable[: self.liquidations_per_block]:
            if target.owner == self.signer.address:
                continue
            commands.append(Liquidate(
                signer=self.signer.address, nonce=self.signer.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + KEEPER_TTL_NS, subaccount_number=self.subaccount_number,
                owner=target.owner, owner_number=target.number,
            ))  # fmt: skip
        if self.bid_share_ppm:
            commands.extend(self._bids(engine, timestamp_ns))
        return commands

    def _bids(self, engine: Engine, timestamp_ns: int) -> list[Command]:
        bids: list[Command] = []
        for target, status in sorted(engine.state.liquidations.items()):
            auction = status.auction
            if auction is None or target.owner == self.signer.address:
                continue
            if auction.market_id == PORTFOLIO_AUCTION:  # options: a slice of everything
                bids.append(BidPortfolio(
                    signer=self.signer.address, nonce=self.signer.nonce(timestamp_ns),
                    expiry_ns=timestamp_ns + KEEPER_TTL_NS,
                    subaccount_number=self.subaccount_number, owner=target.owner,
                    owner_number=target.number, fraction_ppm=self.bid_share_ppm,
                ))  # fmt: skip
                continue
            market = engine.state.markets.get(MarketId(auction.market_id))
            if market is None:
                continue  # its market settled and left state: the auction is over
            params = market.params
            size = auction.size_base_quantums * self.bid_share_ppm // 1_000_000
            size = max(size - size % params.step_base_quantums, params.min_order_base_quantums)
            bids.append(BidAuction(
                signer=self.signer.address, nonce=self.signer.nonce(timestamp_ns),
                expiry_ns=timestamp_ns + KEEPER_TTL_NS, subaccount_number=self.subaccount_number,
                owner=target.owner, owner_number=target.number, market_id=auction.market_id,
                size_base_quantums=size,
            ))  # fmt: skip
        return bids
