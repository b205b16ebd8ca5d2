"""Read routes: markets, books, trades, candles, accounts, orders, risk and blocks."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from clearhouse.core.ids import Address, MarketId, Side, SubaccountId
from clearhouse.core.units import NS_PER_MINUTE
from clearhouse.node import views
from clearhouse.node.context import AddressPath, Context, MarketPath, NumberPath
from clearhouse.node.errors import ApiError, not_found

router = APIRouter()
OrderIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/health", tags=["node"])
def health(ctx: Context) -> dict[str, Any]:
    if ctx.sequencer.failure is not None:
        raise ApiError(503, "NODE_FAILED", str(ctx.sequencer.failure))
    return {"status": "ok", "height": ctx.sequencer.chain.height}


@router.get("/metrics", tags=["node"], response_class=Response)
def prometheus(ctx: Context) -> Response:
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/v1/info", tags=["node"])
def info(ctx: Context) -> dict[str, Any]:
    """The signing domain (chain id, verifying contract) and the venue's roles."""
    return {**ctx.info, "height": ctx.sequencer.chain.height,
            "timestamp_ns": ctx.engine.state.timestamp_ns}  # fmt: skip


# ── Markets ────────────────────────────────────────────────────────────────────────────────


@router.get("/v1/markets", tags=["markets"])
def markets(ctx: Context) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        engine = ctx.engine
        return [views.market(engine, s) for _, s in sorted(engine.state.markets.items())]

    return ctx.locked(read)


@router.get("/v1/markets/{market_id}", tags=["markets"])
def market(ctx: Context, market_id: MarketPath) -> dict[str, Any]:
    return ctx.locked(lambda: views.market(ctx.engine, ctx.market(market_id)))


@router.get("/v1/markets/{market_id}/book", tags=["markets"])
def book(
    ctx: Context, market_id: MarketPath, levels: Annotated[int, Query(ge=1, le=1_000)] = 50
) -> dict[str, Any]:
    """The L2 book: [price, size] per level, best first."""

    def read() -> dict[str, Any]:
        state = ctx.market(market_id)
        return {
            "market_id": market_id, "height": ctx.sequencer.chain.height,
            "bids": [list(x) for x in state.book.depth(Side.BUY, levels)],
            "asks": [list(x) for x in state.book.depth(Side.SELL, levels)],
        }  # fmt: skip

    return ctx.locked(read)


@router.get("/v1/markets/{market_id}/trades", tags=["markets"])
def trades(
    ctx: Context, market_id: MarketPath, limit: Annotated[int, Query(ge=1, le=1_000)] = 100
) -> list[dict[str, Any]]:
    """Recent trades, newest first."""

    def read() -> list[dict[str, Any]]:
        ctx.market(market_id)
        return list(ctx.sequencer.read_model.trades.get(market_id, ()))[-limit:][::-1]

    return ctx.locked(read)


@router.get("/v1/markets/{market_id}/candles", tags=["markets"])
def candles(
    ctx: Context, market_id: MarketPath, limit: Annotated[int, Query(ge=1, le=1_440)] = 60
) -> list[dict[str, Any]]:
    """One-minute candles, newest first (minutes without trades are absent)."""

    def read() -> list[dict[str, Any]]:
        ctx.market(market_id)
        series = ctx.sequencer.read_model.candles.get(market_id)
        if series is None:
            return []
        return [
            {"minute_ns": minute * NS_PER_MINUTE, "open": c.open_quantums,
             "high": c.high_quantums, "low": c.low_quantums, "close": c.close_quantums,
             "volume_base_quantums": c.volume_base_quantums, "trades": c.trades}
            for minute, c in list(series.items())[-limit:][::-1]
        ]  # fmt: skip

    return ctx.locked(read)


@router.get("/v1/markets/{market_id}/adl", tags=["risk"], response_model=dict[str, Any])
def adl(
    ctx: Context, market_id: MarketPath, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Response:
    """The ADL queues: who is deleveraged first if a long (or a short) goes bankrupt."""

    def read() -> dict[str, Any]:
        ctx.market(market_id)
        queue = ctx.engine.adl_queue
        return {
            side: [
                {"subaccount": str(c.subaccount_id), "rank": i + 1}
                for i, c in enumerate(queue(MarketId(market_id), closing)[:limit])
            ]
            for side, closing in (("longs", Side.BUY), ("shorts", Side.SELL))
        }

    return ctx.cached(("adl", market_id, limit), read)


# ── Accounts and orders ────────────────────────────────────────────────────────────────────


@router.get("/v1/accounts/{address}", tags=["accounts"], response_model=dict[str, Any])
def account(ctx: Context, address: AddressPath) -> Response:
    """Every subaccount: balances, positions, margin, Greeks; and the authorized agents."""
    owner = Address(address.lower())
    return ctx.cached(("account", owner), lambda: views.account(ctx.engine, owner), owner=owner)


@router.get(
    "/v1/accounts/{address}/subaccounts/{number}", tags=["accounts"], response_model=dict[str, Any]
)
def subaccount(ctx: Context, address: AddressPath, number: NumberPath) -> Response:
    def read() -> dict[str, Any]:
        sid = SubaccountId(Address(address.lower()), number)
        found = ctx.engine.state.ledger.subaccounts.get(sid)
        if found is None:
            raise not_found(f"subaccount {sid}")
        return views.subaccount(ctx.engine, found)

    owner = address.lower()
    return ctx.cached(("subaccount", owner, number), read, owner=owner)


@router.get("/v1/accounts/{address}/subaccounts/{number}/orders", tags=["orders"])
def open_orders(ctx: Context, address: AddressPath, number: NumberPath) -> list[dict[str, Any]]:
    owner = Address(address.lower())
    return ctx.locked(lambda: views.open_orders(ctx.engine, owner, number))


@router.get(
    "/v1/accounts/{address}/subaccounts/{number}/orders/by-client-id/{client_order_id}",
    tags=["orders"],
)
def order_by_client_id(
    ctx: Context, address: AddressPath, number: NumberPath, client_order_id: OrderIdPath
) -> dict[str, Any]:
    """The latest order placed with this client order id."""
    key = (str(SubaccountId(Address(address.lower()), number)), client_order_id)

    def read() -> dict[str, Any]:
        order_id = ctx.sequencer.read_model.client_orders.get(key)
        found = None if order_id is None else ctx.sequencer.read_model.orders.get(order_id)
        if found is None:
            raise not_found(f"order with client id {client_order_id}")
        return dict(found)

    return ctx.locked(read)


@router.get("/v1/orders/{order_id}", tags=["orders"])
def order(ctx: Context, order_id: OrderIdPath) -> dict[str, Any]:
    """An order's status: open, filled, cancelled (with its cause), and what has filled."""

    def read() -> dict[str, Any]:
        found = ctx.sequencer.read_model.orders.get(order_id)
        if found is None:
            raise not_found(f"order {order_id}")
        return dict(found)

    return ctx.locked(read)


@router.get("/v1/nonces/{signer}", tags=["accounts"])
def nonces(ctx: Context, signer: AddressPath) -> dict[str, Any]:
    """The signer's nonce set (highest, lowest kept) and the window new nonces must lie in."""
    return ctx.locked(lambda: views.nonces(ctx.engine, Address(signer.lower())))


# ── Risk ───────────────────────────────────────────────────────────────────────────────────


@router.get("/v1/liquidations", tags=["risk"], response_model=dict[str, Any])
def liquidations(ctx: Context, limit: Annotated[int, Query(ge=1, le=1_000)] = 100) -> Response:
    """Liquidatable now, in progress (with auctions), and recent liquidation steps."""

    def read() -> dict[str, Any]:
        engine = ctx.engine
        return {
            "liquidatable": [str(s) for s in engine.liquidatable()[:limit]],
            "in_progress": views.liquidations_now(engine),
            "recent": list(ctx.sequencer.read_model.liquidations)[-limit:][::-1],
        }

    return ctx.cached(("liquidations", limit), read)


@router.get("/v1/insurance", tags=["risk"])
def insurance(ctx: Context) -> dict[str, Any]:
    return ctx.locked(lambda: views.insurance(ctx.engine))


@router.get("/v1/vault", tags=["vault"])
def vault(ctx: Context) -> dict[str, Any]:
    """The market-making vault: NAV, shares, positions, standing quotes, parameters."""
    return ctx.locked(lambda: views.vault(ctx.engine))


@router.get("/v1/vault/owners/{address}", tags=["vault"])
def vault_owner(ctx: Context, address: AddressPath) -> dict[str, Any]:
    """One owner's vault shares, their value at NAV now, and the end of its lock-up."""
    return ctx.locked(lambda: views.vault_owner(ctx.engine, Address(address.lower())))


# ── Blocks and commands ────────────────────────────────────────────────────────────────────


@router.get("/v1/blocks/latest", tags=["blocks"])
def latest_block(ctx: Context) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        headers = ctx.sequencer.read_model.headers
        if not headers:
            raise not_found("block")
        return dict(headers[-1])

    return ctx.locked(read)


@router.get("/v1/blocks/{height}", tags=["blocks"])
def block(ctx: Context, height: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    """A block's header, hash and commands (as journaled)."""
    stored = ctx.sequencer.read_block(height)
    if stored is None:
        raise not_found(f"block {height}")
    header = stored.header
    return {
        "height": header.height, "timestamp_ns": header.timestamp_ns,
        "parent_hash": "0x" + header.parent_hash.hex(),
        "commands_hash": "0x" + header.commands_hash.hex(),
        "events_hash": "0x" + header.events_hash.hex(),
        "state_root": "0x" + header.state_root.hex(),
        "block_hash": "0x" + stored.block_hash.hex(),
        "commands": [json.loads(c) for c in stored.commands],
    }  # fmt: skip


@router.get("/v1/commands/{command_hash}", tags=["commands"])
def command_status(
    ctx: Context, command_hash: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
) -> dict[str, Any]:
    """A command's result by the keccak of its journal bytes (a submission's answer says it),
    for a client that lost its connection before the answer came."""
    found = ctx.sequencer.read_model.result(bytes.fromhex(command_hash[2:]))
    if found is None:
        raise not_found("command")
    return found.to_json()
