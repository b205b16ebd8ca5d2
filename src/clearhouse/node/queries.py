"""Read routes: markets, books, trades, candles, funding, accounts, history, orders, risk,
blocks, and the what-if (an unsigned trial through the engine's margin code).

Every answer is in ``human`` terms too: each ``*_quantums`` and ``*_ns`` field has its decimal
string and milliseconds beside it, added by ``_human`` around the read (under the lock, where
the units of assets and markets are read). Addresses may be EIP-55 checksummed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from clearhouse.core import limits
from clearhouse.core.engine import LIQUIDATION_PRICES_MAX, Trial
from clearhouse.core.errors import RejectReason as R
from clearhouse.core.ids import QUOTE_ASSET as QUOTE
from clearhouse.core.ids import Address, AssetId, MarketId, Side, SubaccountId
from clearhouse.core.settlement import hourly_funding_rate_ppb
from clearhouse.core.units import NS_PER_MINUTE, PPB_ONE
from clearhouse.node import fastpath, human, models, views
from clearhouse.node.commands import body_weight
from clearhouse.node.context import AddressPath, Context, MarketPath, NodeContext, NumberPath
from clearhouse.node.errors import ApiError, not_found
from clearhouse.node.protection import (
    HEAVY_READ_WEIGHT,
    account_weight,
    charge_ip,
    charge_list,
    charge_work,
)
from clearhouse.node.readmodel import CANDLE_MINUTES, FUNDING_KEPT, HISTORY_PER_SUBACCOUNT_KEPT
from clearhouse.node.sequencer import NodeUnavailable
from clearhouse.node.viewcache import LAGGING, Rendered, View, render_json

router = APIRouter(responses=models.COMMON)
OrderIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
Category = Literal["fill", "funding", "liquidation", "adl", "transfer"]
CursorQuery = Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$", description="next_cursor")]
NOT_FOUND = models.errors(404)
T = TypeVar("T")


def _human(ctx: NodeContext, read: Callable[[], T]) -> Callable[[], T]:
    """``read`` with the human companions added (see ``human``), still under the lock: the
    answer keeps its shape, with fields added."""
    return lambda: cast(T, human.annotate(read(), human.Scales.of(ctx.engine)))


@router.get("/health", tags=["node"], response_model=models.Health)
def health(ctx: Context) -> dict[str, Any]:
    if ctx.sequencer.failure is not None:
        raise ApiError(503, "NODE_FAILED", str(ctx.sequencer.failure))
    return {"status": "ok", "height": ctx.sequencer.chain.height}


@router.get("/metrics", tags=["node"], response_class=Response)
def prometheus(ctx: Context) -> Response:
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/v1/info", tags=["node"], response_model=models.Info)
def info(ctx: Context) -> dict[str, Any]:
    """The signing domain (chain id, verifying contract) and the venue's roles."""
    timestamp_ns = ctx.engine.state.timestamp_ns
    return {**ctx.info, "height": ctx.sequencer.chain.height, "timestamp_ns": timestamp_ns,
            "timestamp_ms": human.ms(timestamp_ns)}  # fmt: skip


# ── Markets ────────────────────────────────────────────────────────────────────────────────


@router.get("/v1/markets", tags=["markets"], response_model=list[models.Market])
def markets(ctx: Context) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        engine = ctx.engine
        return [views.market(engine, s) for _, s in sorted(engine.state.markets.items())]

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/markets/{market_id}", tags=["markets"], response_model=models.Market, responses=NOT_FOUND
)
def market(ctx: Context, market_id: MarketPath) -> dict[str, Any]:
    return ctx.locked(_human(ctx, lambda: views.market(ctx.engine, ctx.market(market_id))))


@router.get(
    "/v1/markets/{market_id}/book", tags=["markets"], response_model=models.Book,
    responses=NOT_FOUND,
)  # fmt: skip
def book(
    ctx: Context, http: Request, market_id: MarketPath,
    levels: Annotated[int, Query(ge=1, le=1_000)] = 50,
) -> dict[str, Any]:  # fmt: skip
    """The L2 book: [price, size] per level, best first; weighs with the levels it answers
    (1,280 levels took ~10 ms more than /health to answer whole)."""

    def read() -> dict[str, Any]:
        state = ctx.market(market_id)
        bids = state.book.depth(Side.BUY, levels)
        asks = state.book.depth(Side.SELL, levels)
        charge_list(ctx, http, len(bids) + len(asks))  # found cheaply; rendering is the cost
        return {
            "market_id": market_id, "height": ctx.sequencer.chain.height,
            "bids": [list(x) for x in bids], "asks": [list(x) for x in asks],
            "bid_levels": [{"price_quantums": p, "size_base_quantums": s} for p, s in bids],
            "ask_levels": [{"price_quantums": p, "size_base_quantums": s} for p, s in asks],
        }  # fmt: skip

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/markets/{market_id}/trades", tags=["markets"], response_model=list[models.Trade],
    responses=NOT_FOUND,
)  # fmt: skip
def trades(
    ctx: Context, http: Request, market_id: MarketPath,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """Recent trades, newest first; weighs with the trades it answers."""
    charge_list(ctx, http, min(limit, len(ctx.sequencer.read_model.trades.get(market_id, ()))))

    def read() -> list[dict[str, Any]]:
        ctx.market(market_id)
        return list(ctx.sequencer.read_model.trades.get(market_id, ()))[-limit:][::-1]

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/markets/{market_id}/candles", tags=["markets"], response_model=list[models.Candle],
    responses=NOT_FOUND,
)  # fmt: skip
def candles(
    ctx: Context, http: Request, market_id: MarketPath,
    limit: Annotated[int, Query(ge=1, le=1_440)] = 60, interval: Interval = "1m",
) -> list[dict[str, Any]]:  # fmt: skip
    """Candles of ``interval``, newest first (intervals without trades are absent), each
    starting at ``minute_ns`` (UTC-aligned). Up to 1,440 kept per market and interval; weighs
    with the candles it answers."""
    minutes = CANDLE_MINUTES[interval]
    model = ctx.sequencer.read_model
    kept = model.candles if minutes == 1 else model.bars.get(minutes, {})
    charge_list(ctx, http, min(limit, len(kept.get(market_id, ()))))

    def read() -> list[dict[str, Any]]:
        ctx.market(market_id)
        model = ctx.sequencer.read_model
        kept = model.candles if minutes == 1 else model.bars.get(minutes, {})
        series = kept.get(market_id)
        if series is None:
            return []
        scale = ctx.engine.state.assets[QUOTE].quantums_per_unit
        return [
            {"interval": interval, "minute_ns": minute * NS_PER_MINUTE, "open": c.open_quantums,
             "high": c.high_quantums, "low": c.low_quantums, "close": c.close_quantums,
             **{f"{k}_price": human.units(v, scale) for k, v in (
                 ("open", c.open_quantums), ("high", c.high_quantums),
                 ("low", c.low_quantums), ("close", c.close_quantums))},
             "volume_base_quantums": c.volume_base_quantums, "trades": c.trades,
             "market_id": market_id}
            for minute, c in list(series.items())[-limit:][::-1]
        ]  # fmt: skip

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/markets/{market_id}/funding", tags=["markets"], response_model=models.Funding,
    responses=NOT_FOUND,
)  # fmt: skip
def funding(
    ctx: Context, http: Request, market_id: MarketPath,
    limit: Annotated[int, Query(ge=1, le=FUNDING_KEPT)] = 100,
) -> dict[str, Any]:  # fmt: skip
    """The rate the next payment would have at the premium sampled so far this interval (the
    engine's own ``settlement.hourly_funding_rate_ppb``), and past payments, newest first (the
    last 1,000 per market are kept; weighs with those it answers). Rates are per interval;
    positive: longs pay shorts."""
    charge_list(ctx, http, min(limit, len(ctx.sequencer.read_model.funding.get(market_id, ()))))

    def read() -> dict[str, Any]:
        state = ctx.market(market_id)
        params = state.params
        predicted = hourly_funding_rate_ppb(
            premium_time_ppb_ns=state.premium_time_ppb_ns, premium_time_ns=state.premium_time_ns,
            funding=params.funding, margin=params.margin,
        )  # fmt: skip
        history = list(ctx.sequencer.read_model.funding.get(market_id, ()))[-limit:][::-1]
        return {
            "market_id": market_id, "predicted_rate_ppb": predicted,
            "predicted_rate": human.units(predicted, PPB_ONE),
            "next_funding_ns": state.next_funding_ns,
            "cumulative_funding_ppb": state.cumulative_funding_ppb,
            "history": [{**p, "rate": human.units(p["rate_ppb"], PPB_ONE)} for p in history],
        }  # fmt: skip

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/markets/{market_id}/adl", tags=["risk"], response_model=models.AdlQueues,
    responses=NOT_FOUND,
)  # fmt: skip
def adl(
    ctx: Context,
    market_id: MarketPath,
    limit: Annotated[int, Query(ge=1, le=fastpath.ADL_LIMIT_MAX)] = fastpath.ADL_LIMIT_DEFAULT,
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

    return ctx.cached(("adl", market_id, limit), _human(ctx, read), owner=LAGGING)


# ── Accounts and orders ────────────────────────────────────────────────────────────────────


@router.get("/v1/accounts/{address}", tags=["accounts"], response_model=models.Account)
def account(ctx: Context, http: Request, address: AddressPath) -> Response:
    """Every subaccount: balances, positions, margin, Greeks; and the authorized agents. A view
    that is not fresh weighs with its subaccounts and positions (``protection.account_weight``)."""
    owner = human.address(address)
    view = account_view(ctx, owner, http.client.host if http.client else "?")
    return Response(view.body, media_type="application/json",
                    headers={"X-Clearhouse-Height": str(view.height)})  # fmt: skip


def account_view(ctx: NodeContext, owner: Address, ip: str) -> View:
    """The account's view, shared by GET /v1/accounts/{address} and the ``account:`` stream's
    snapshot: read subaccount by subaccount (the writer waits for one at most), with the
    human companions, rendered once a height. ``ip`` pays for computing it, beyond the heavy
    read's weight, when it is not fresh."""
    if ctx.views.peek(("account", owner)) is None:
        numbers = range(limits.subaccounts_per_account_max)
        charge_ip(ctx, ip, account_weight(ctx.engine.state, owner, numbers), HEAVY_READ_WEIGHT)

    def parts() -> list[Callable[[], object]]:
        engine = ctx.engine
        return [lambda: human.Scales.of(engine), *views.account_parts(engine, owner)]

    def assemble(values: list[object]) -> object:
        scales, agents, *subaccounts = values
        assert isinstance(scales, human.Scales)
        pieces = []
        give_way = ctx.give_way()
        for part in subaccounts:  # a piece at a time: the writer runs between them
            if part is not None:
                pieces.append(render_json(human.annotate(part, scales)))
                give_way()
                time.sleep(0)
        return Rendered(
            b'{"address":' + render_json(owner) + b',"subaccounts":[' + b",".join(pieces)
            + b'],"agents":' + render_json(human.annotate(agents, scales)) + b"}"
        )  # fmt: skip

    return ctx.cached_parts(("account", owner), parts, assemble, owner=owner)


@router.get(
    "/v1/accounts/{address}/subaccounts/{number}", tags=["accounts"],
    response_model=models.Subaccount, responses=NOT_FOUND,
)  # fmt: skip
def subaccount(ctx: Context, http: Request, address: AddressPath, number: NumberPath) -> Response:
    owner = human.address(address)
    if ctx.views.peek(("subaccount", owner, number)) is None:  # weighs with its positions
        weight = account_weight(ctx.engine.state, owner, (number,))
        charge_work(ctx, http, weight, paid=HEAVY_READ_WEIGHT)

    def read() -> dict[str, Any]:
        sid = SubaccountId(owner, number)
        found = ctx.engine.state.ledger.subaccounts.get(sid)
        if found is None:
            raise not_found(f"subaccount {sid}")
        return views.subaccount(ctx.engine, found)

    return ctx.cached(("subaccount", owner, number), _human(ctx, read), owner=owner)


@router.get(
    "/v1/accounts/{address}/subaccounts/{number}/history", tags=["accounts"],
    response_model=models.History,
)  # fmt: skip
def history(
    ctx: Context, http: Request, address: AddressPath, number: NumberPath,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_PER_SUBACCOUNT_KEPT)] = 100,
    category: Category | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fills, funding payments, liquidation steps and their receipts, ADL and transfers of one
    subaccount, newest first, from blocks' events. Pass ``next_cursor`` back as ``cursor`` for
    older items. Kept in memory: the newest 1,000 items of each of the 10,000 most recently
    active subaccounts (older ones are in the blocks); a replay rebuilds it. Weighs with the
    items it may answer: a long page is many reads' work under the writer's lock."""
    sid = str(SubaccountId(human.address(address), number))
    charge_list(ctx, http, min(limit, len(ctx.sequencer.read_model.history.get(sid, ()))))

    def read() -> dict[str, Any]:
        before = None if cursor is None else int(cursor)
        items, next_cursor = ctx.sequencer.read_model.history_page(sid, before, limit, category)
        return {"subaccount": sid, "items": items, "next_cursor": next_cursor}

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/accounts/{address}/subaccounts/{number}/orders", tags=["orders"],
    response_model=list[models.Order],
)  # fmt: skip
def open_orders(
    ctx: Context, http: Request, address: AddressPath, number: NumberPath
) -> list[dict[str, Any]]:
    """Resting and conditional orders (up to 256); weighs with their number."""
    owner = human.address(address)
    found = ctx.engine.state.ledger.subaccounts.get(SubaccountId(owner, number))
    charge_list(ctx, http, 0 if found is None else len(found.order_ids))
    return ctx.locked(_human(ctx, lambda: views.open_orders(ctx.engine, owner, number)))


@router.get(
    "/v1/accounts/{address}/subaccounts/{number}/orders/by-client-id/{client_order_id}",
    tags=["orders"],
    response_model=models.Order,
    responses=NOT_FOUND,
)
def order_by_client_id(
    ctx: Context, address: AddressPath, number: NumberPath, client_order_id: OrderIdPath
) -> dict[str, Any]:
    """The latest order placed with this client order id."""
    key = (str(SubaccountId(human.address(address), number)), client_order_id)

    def read() -> dict[str, Any]:
        order_id = ctx.sequencer.read_model.client_orders.get(key)
        found = None if order_id is None else ctx.sequencer.read_model.orders.get(order_id)
        if found is None:
            raise not_found(f"order with client id {client_order_id}")
        return dict(found)

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/orders/{order_id}", tags=["orders"], response_model=models.Order, responses=NOT_FOUND
)
def order(ctx: Context, order_id: OrderIdPath) -> dict[str, Any]:
    """An order's status: open, filled, cancelled (with its cause), and what has filled."""

    def read() -> dict[str, Any]:
        found = ctx.sequencer.read_model.orders.get(order_id)
        if found is None:
            raise not_found(f"order {order_id}")
        return dict(found)

    return ctx.locked(_human(ctx, read))


@router.get("/v1/nonces/{signer}", tags=["accounts"], response_model=models.Nonces)
def nonces(ctx: Context, signer: AddressPath) -> dict[str, Any]:
    """The signer's nonce set (highest, lowest kept) and the window new nonces must lie in."""
    key = human.address(signer)
    return ctx.locked(_human(ctx, lambda: views.nonces(ctx.engine, key)))


# ── Risk ───────────────────────────────────────────────────────────────────────────────────


@router.get("/v1/liquidations", tags=["risk"], response_model=models.Liquidations)
def liquidations(
    ctx: Context,
    limit: Annotated[
        int, Query(ge=1, le=fastpath.LIQUIDATIONS_LIMIT_MAX)
    ] = fastpath.LIQUIDATIONS_LIMIT_DEFAULT,
) -> Response:
    """Liquidatable now, in progress (with auctions), and recent liquidation steps."""

    def read() -> dict[str, Any]:
        engine = ctx.engine
        return {
            "liquidatable": [str(s) for s in engine.liquidatable()[:limit]],
            "in_progress": views.liquidations_now(engine),
            "recent": list(ctx.sequencer.read_model.liquidations)[-limit:][::-1],
        }

    return ctx.cached(("liquidations", limit), _human(ctx, read))


@router.get("/v1/insurance", tags=["risk"], response_model=models.Insurance)
def insurance(ctx: Context) -> dict[str, Any]:
    return ctx.locked(_human(ctx, lambda: views.insurance(ctx.engine)))


@router.get("/v1/vault", tags=["vault"], response_model=models.Vault)
def vault(ctx: Context) -> dict[str, Any]:
    """The market-making vault: NAV, shares, positions, standing quotes, parameters."""
    return ctx.locked(_human(ctx, lambda: views.vault(ctx.engine)))


@router.get("/v1/options-vault", tags=["vault"], response_model=models.OptionsVault)
def options_vault(ctx: Context) -> dict[str, Any]:
    """The options AMM: NAV, shares, its book's Greeks exposure, quotes, hedge, parameters."""
    return ctx.locked(_human(ctx, lambda: views.options_vault(ctx.engine)))


@router.get("/v1/vault/owners/{address}", tags=["vault"], response_model=models.VaultOwner)
def vault_owner(ctx: Context, address: AddressPath) -> dict[str, Any]:
    """One owner's vault shares, their value at NAV now, and the end of its lock-up."""
    owner = human.address(address)
    return ctx.locked(_human(ctx, lambda: views.vault_owner(ctx.engine, owner)))


@router.get(
    "/v1/options-vault/owners/{address}", tags=["vault"], response_model=models.OptionsVaultOwner
)
def options_vault_owner(ctx: Context, address: AddressPath) -> dict[str, Any]:
    """One owner's options-vault shares, their value at NAV now, and the end of its lock-up
    (``set_up`` false: the venue has no options vault)."""
    owner = human.address(address)
    return ctx.locked(_human(ctx, lambda: views.options_vault_owner(ctx.engine, owner)))


# ── What-if ────────────────────────────────────────────────────────────────────────────────


@router.post(
    "/v1/what-if", tags=["risk"], response_model=models.WhatIf,
    responses=models.errors(400, 404),
)  # fmt: skip
def what_if(ctx: Context, request: models.WhatIfRequest, http: Request) -> dict[str, Any]:
    """Margin before and after a trial (orders filling whole at their prices, or a whole
    portfolio), its health, and per position its liquidation price (the 16 largest by
    notional) and the ADL rank it would have: the engine's own margin code on a copy of the
    subaccount. Unsigned; nothing is submitted or changed. Weighs with its positions against
    the per-IP limit (each liquidation price is ~45 margin computations of the whole trial)."""
    sid = SubaccountId(human.address(request.address), request.subaccount_number)
    charge_work(ctx, http, what_if_weight(ctx, sid, request), paid=1.0)

    def read() -> dict[str, Any]:
        return views.what_if(ctx.engine, sid, _trial(ctx, request))

    return ctx.locked(_human(ctx, read))


def what_if_weight(ctx: NodeContext, sid: SubaccountId, request: models.WhatIfRequest) -> float:
    """About a millisecond a unit: each searched position's ~45 margin computations of ``n``
    positions, ~3.5 µs a position each (a 64-position trial took 0.61 s before the search was
    bounded). ``n`` from the request and the subaccount as it is (read without the lock: an
    estimate, charged before the work)."""
    if request.portfolio is not None:
        held = len(request.portfolio)
    else:
        found = ctx.engine.state.ledger.subaccounts.get(sid)
        held = (0 if found is None else len(found.positions)) + len(request.orders)
    searched = min(held, LIQUIDATION_PRICES_MAX)
    return 1.0 + searched * held / 6


def _trial(ctx: NodeContext, request: models.WhatIfRequest) -> Trial:
    """The request as a Trial, every price and size checked against its market's grid (the
    engine's rejection codes: UNKNOWN_MARKET, SIZE_OFF_STEP, PRICE_OFF_TICK, UNKNOWN_ASSET)."""
    fills = tuple(
        (_on_grid(ctx, o.market_id, o.size_base_quantums, o.price_quantums),
         o.size_base_quantums * (1 if o.side == "buy" else -1), o.price_quantums)
        for o in request.orders
    )  # fmt: skip
    portfolio = None
    if request.portfolio is not None:
        portfolio = {}
        for p in request.portfolio:
            price = p.entry_price_quantums or ctx.market(p.market_id).mark_price_quantums
            # An entry price is an average of fills (and the mark is off the grid too): only
            # orders' prices are on the tick grid.
            market_id = _on_grid(ctx, p.market_id, abs(p.size_base_quantums), price, tick=False)
            portfolio[market_id] = (p.size_base_quantums, price)
    balances = None
    if request.balances is not None:
        unknown = sorted(set(request.balances) - set(ctx.engine.state.assets))
        if unknown:
            raise ApiError(400, R.UNKNOWN_ASSET.name, f"no asset {unknown[0]!r}")
        balances = {AssetId(a): q for a, q in request.balances.items()}
    return Trial(fills=fills, portfolio=portfolio, balances=balances)


def _on_grid(
    ctx: NodeContext, market_id: str, size: int, price: int, *, tick: bool = True
) -> MarketId:
    params = ctx.market(market_id).params
    if size % params.step_base_quantums:
        raise ApiError(
            400, R.SIZE_OFF_STEP.name, f"size: a multiple of {params.step_base_quantums}"
        )
    if price <= 0 or (tick and price % params.tick_quantums):
        raise ApiError(400, R.PRICE_OFF_TICK.name, f"price: a multiple of {params.tick_quantums}")
    return params.market_id


# ── Blocks and commands ────────────────────────────────────────────────────────────────────


@router.get("/v1/blocks/latest", tags=["blocks"], response_model=models.Block, responses=NOT_FOUND)
def latest_block(ctx: Context) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        headers = ctx.sequencer.read_model.headers
        if not headers:
            raise not_found("block")
        return dict(headers[-1])

    return ctx.locked(_human(ctx, read))


@router.get(
    "/v1/blocks/{height}", tags=["blocks"], response_model=models.Block, responses=NOT_FOUND
)
def block(ctx: Context, height: Annotated[int, Path(ge=1, le=2**62)], http: Request) -> Response:
    """A block's header, hash and commands (as journaled). Weighs with its commands' bytes
    against the per-IP limit, as a batch does (one per 4 KiB): a block is up to 20,000
    commands. A committed block never changes: its answer is rendered once and kept
    (``BlockAnswers``), so a crowd reading one large block costs the node one rendering."""
    kept = ctx.blocks.get(height)
    if kept is None:
        stored = ctx.sequencer.read_block(height)
        if stored is None:
            raise not_found(f"block {height}")
        weight = block_weight(stored.commands)
        charge_work(ctx, http, weight, paid=1.0)  # before the rendering it pays for
        header = stored.header
        body = render_json(human.annotate({
            "height": header.height, "timestamp_ns": header.timestamp_ns,
            "parent_hash": "0x" + header.parent_hash.hex(),
            "commands_hash": "0x" + header.commands_hash.hex(),
            "events_hash": "0x" + header.events_hash.hex(),
            "state_root": "0x" + header.state_root.hex(),
            "block_hash": "0x" + stored.block_hash.hex(),
            "commands": [json.loads(c) for c in stored.commands],
        }, _NO_SCALES))  # fmt: skip
        ctx.blocks.put(height, body, weight)
    else:
        body, weight = kept
        charge_work(ctx, http, weight, paid=1.0)
    return Response(body, media_type="application/json")


_NO_SCALES = human.Scales(quote=1)  # a block's header has times, no amounts


def block_weight(commands: Sequence[bytes]) -> float:
    """What answering a block's commands weighs: one per 4 KiB of them, as a batch's body
    (a block of 3,000 orders, 1 MB of commands, took ~100 ms to answer), one at least."""
    return max(1.0, body_weight(sum(len(c) for c in commands)))


@router.get(
    "/v1/commands/{command_hash}", tags=["commands"], response_model=models.CommandResult,
    responses=NOT_FOUND,
)  # fmt: skip
def command_status(
    ctx: Context, command_hash: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
) -> dict[str, Any]:
    """A command's result by the keccak of its journal bytes (a submission's answer says it),
    for a client that lost its connection before the answer came."""
    try:
        found = ctx.sequencer.result(bytes.fromhex(command_hash[2:]))
    except NodeUnavailable as error:  # not acknowledged: its block is not on the block stream
        raise ApiError(503, error.code, str(error)) from None
    if found is None:
        raise not_found("command")
    answer: dict[str, Any] = human.annotate(found.to_json(), ctx.sequencer.scales)
    return answer  # the scales of the last block: no lock, as POST /v1/commands answers
