"""A real ``clearhouse serve`` process on a loopback port, traded through the SDK with keys made
by eth-account: the fill, both accounts (balances, positions, margin), the order and market
endpoints, and what the WebSocket streams said, then agents, signatures, metrics, and a graceful
restart that the journal's verifier agrees with."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from tests.node.conftest import NodeProcess

from clearhouse.app import signing
from clearhouse.client import ApiRejection, Client, Stream, Wallet
from clearhouse.core.ids import AssetId, MarketId, Side
from clearhouse.core.messages import (
    AuthorizeAgent,
    CancelAll,
    CancelOrder,
    Command,
    PlaceOrder,
    TimeInForce,
    Withdraw,
)

MARKET = "BTC-PERP"
FUNDS_USDC = 100_000
USDC = 1_000_000
SIZE = 1_000_000  # 0.01 BTC in base quantums (1e-8 BTC)
MAKER_CLIENT_ID = 7
TAKER_CLIENT_ID = 9
STREAM_SECONDS = 15.0
HOUR_NS = 3_600 * 10**9


def eth_wallet() -> Wallet:
    """A key made by eth-account, as a user's wallet would hold it."""
    return Wallet(bytes(Account.create().key))


def wait_for_fresh_oracle(client: Client, market_id: str = MARKET) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        market = client.market(market_id)
        if market["oracle_status"] == "fresh" and market["index_price_quantums"] > 0:
            return market
        assert time.monotonic() < deadline, market
        time.sleep(0.05)


def on_tick(price: float, tick: int) -> int:
    return int(price) // tick * tick


@dataclasses.dataclass
class Trade:
    """What one maker/taker cross left behind, read over REST and seen over the WebSocket."""

    maker: Client
    taker: Client
    params: dict[str, Any]
    price: int
    before: dict[str, dict[str, Any]]  # account states before either order, by role
    after: dict[str, dict[str, Any]]
    book_empty: dict[str, Any]
    book_resting: dict[str, Any]
    book_after: dict[str, Any]
    maker_answer: dict[str, Any]
    taker_answer: dict[str, Any]
    messages: dict[str, list[dict[str, Any]]]  # per channel, in arrival order
    stream_gaps: int

    @property
    def fill(self) -> dict[str, Any]:
        (found,) = [e for e in self.taker_answer["events"] if e["type"] == "OrderFilled"]
        return found

    def channel(self, kind: str, target: str) -> list[dict[str, Any]]:
        return self.messages[f"{kind}:{target}"]


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(Path(tmp_path_factory.mktemp("process")) / "node").start()
    yield node
    node.kill()


@pytest.fixture(scope="module")
def trade(venue: NodeProcess) -> Iterator[Trade]:
    maker, taker = Client(venue.url, eth_wallet()), Client(venue.url, eth_wallet())
    try:
        yield asyncio.run(_cross(venue, maker, taker))
    finally:
        maker.close()
        taker.close()


async def _cross(venue: NodeProcess, maker: Client, taker: Client) -> Trade:
    """Fund both, subscribe to every channel the trade touches, then cross one order."""
    for client in (maker, taker):
        assert client.faucet(FUNDS_USDC)["status"] == "accepted"
    market = wait_for_fresh_oracle(maker)
    params = market["params"]
    price = on_tick(market["index_price_quantums"] * 1.001, params["tick_quantums"])
    channels = [f"book:{MARKET}", f"trades:{MARKET}",
                f"account:{maker.account}", f"account:{taker.account}"]  # fmt: skip
    stream = Stream(venue.url, channels)
    messages: dict[str, list[dict[str, Any]]] = {c: [] for c in channels}
    subscribed = asyncio.Event()
    done = asyncio.Event()

    def complete() -> bool:
        book = [m for m in messages[channels[0]] if m["type"] == "delta"]
        fills = [
            [e for m in messages[c] if m["type"] == "update" for e in m["events"]
             if e["type"] == "OrderFilled"]
            for c in channels[2:]
        ]  # fmt: skip
        return (any([price, 0] in m["asks"] for m in book)
                and any(m["type"] == "trades" for m in messages[channels[1]])
                and all(fills))  # fmt: skip

    async def read() -> None:
        async for message in stream:
            assert message.get("type") != "error", message
            messages[message["channel"]].append(message)
            if all(messages[c] for c in channels):
                subscribed.set()
            if complete():
                done.set()

    reader = asyncio.create_task(read())

    async def until(event: asyncio.Event, what: str) -> None:
        """Wait for ``event``; the reader's own failure, or a timeout, says what went wrong."""
        waiter = asyncio.create_task(event.wait())
        await asyncio.wait({waiter, reader}, timeout=STREAM_SECONDS,
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        waiter.cancel()
        if reader.done():
            reader.result()  # raises what failed in the reader
        assert event.is_set(), f"no {what} in {STREAM_SECONDS} s: {messages}"

    try:
        await until(subscribed, "snapshot on every channel")
        before = {"maker": maker.account_state(), "taker": taker.account_state()}
        book_empty = maker.book(MARKET)
        maker_answer = await asyncio.to_thread(
            maker.place_order, MARKET, "sell", size_base_quantums=SIZE, price_quantums=price,
            client_order_id=MAKER_CLIENT_ID,
        )  # fmt: skip
        book_resting = maker.book(MARKET)
        taker_answer = await asyncio.to_thread(
            taker.place_order, MARKET, "buy", size_base_quantums=SIZE, price_quantums=price,
            client_order_id=TAKER_CLIENT_ID,
        )  # fmt: skip
        book_after = maker.book(MARKET)
        after = {"maker": maker.account_state(), "taker": taker.account_state()}
        await until(done, "book delta, trade and fills")
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return Trade(maker, taker, params, price, before, after, book_empty, book_resting,
                 book_after, maker_answer, taker_answer, messages, stream.gaps)  # fmt: skip


def only_subaccount(state: dict[str, Any]) -> dict[str, Any]:
    (sub,) = state["subaccounts"]
    return sub


# ── The fill and the accounts ──────────────────────────────────────────────────────────────


def test_the_maker_rests_and_the_taker_fills_at_the_makers_price(trade: Trade) -> None:
    assert trade.maker_answer["status"] == "accepted" and not trade.maker_answer["duplicate"]
    assert [e["type"] for e in trade.maker_answer["events"]] == ["OrderRested"]
    assert trade.taker_answer["status"] == "accepted"
    assert trade.taker_answer["height"] > trade.maker_answer["height"]
    fill = trade.fill
    assert fill["price_quantums"] == trade.price
    assert fill["size_base_quantums"] == SIZE
    assert fill["maker_order_id"] == trade.maker_answer["order_id"]
    assert fill["taker_order_id"] == trade.taker_answer["order_id"]
    assert fill["maker"] == f"{trade.maker.account}/0"
    assert fill["taker"] == f"{trade.taker.account}/0"
    assert fill["taker_side"] == Side.BUY
    # Fees as the market's parameters say: ppm of the notional, rounded up for the venue.
    notional = trade.price * SIZE // trade.params["base_quantums_per_unit"]
    assert fill["maker_fee_quote_quantums"] == -(-notional * trade.params["maker_fee_ppm"]
                                                 // 1_000_000)  # fmt: skip
    assert fill["taker_fee_quote_quantums"] == -(-notional * trade.params["taker_fee_ppm"]
                                                 // 1_000_000)  # fmt: skip
    fees = {e["source"]: e["amount_quantums"] for e in trade.taker_answer["events"]
            if e["type"] == "Transferred" and e["target"] == "fees"}  # fmt: skip
    assert fees == {fill["maker"]: fill["maker_fee_quote_quantums"],
                    fill["taker"]: fill["taker_fee_quote_quantums"]}  # fmt: skip


def test_balances_change_by_the_fees_and_positions_are_opposite(trade: Trade) -> None:
    fill = trade.fill
    for role, sign, fee in (("maker", -1, fill["maker_fee_quote_quantums"]),
                            ("taker", 1, fill["taker_fee_quote_quantums"])):  # fmt: skip
        before, after = only_subaccount(trade.before[role]), only_subaccount(trade.after[role])
        assert before["balances"] == {"USDC": FUNDS_USDC * USDC}
        assert before["positions"] == []
        assert after["balances"] == {"USDC": FUNDS_USDC * USDC - fee}, role
        (position,) = after["positions"]
        assert position["market"] == MARKET
        assert position["size"] == sign * SIZE, role
        notional = trade.price * SIZE // trade.params["base_quantums_per_unit"]
        assert position["cost"] == sign * notional
        assert after["open_orders"] == 0


def test_margin_after_the_fill(trade: Trade) -> None:
    for role in ("maker", "taker"):
        sub = only_subaccount(trade.after[role])
        margin = sub["margin"]
        (position,) = sub["positions"]
        balance = sub["balances"]["USDC"]
        assert margin["initial_quote_quantums"] > margin["maintenance_quote_quantums"] > 0
        # Standard mode: IM is the market's initial margin fraction of the position at the mark
        # (scaled up by at most 0.25 %/hour while the feed's volatility is above the reference).
        at_mark = SIZE * position["mark_price_quantums"] // trade.params["base_quantums_per_unit"]
        expected_im = at_mark * trade.params["margin"]["initial_margin_ppm"] // 1_000_000
        assert expected_im - 2 <= margin["initial_quote_quantums"] <= expected_im * 1.01
        # Equity is the collateral plus the position's unrealized PnL at the mark, plus the
        # funding it has not settled yet (non-zero only if a funding hour passed meanwhile).
        unrealized = position["unrealized_pnl_quote_quantums"]
        pending = position["funding_pending_quote_quantums"]
        assert abs(margin["equity_quote_quantums"] - (balance + unrealized + pending)) <= 1
        assert margin["free_collateral_quote_quantums"] == (
            margin["equity_quote_quantums"] - margin["initial_quote_quantums"]
        )
        assert margin["prices_usable"] and not margin["liquidatable"]
        assert not sub["under_liquidation"]


# ── Orders, trades, candles and the book over REST ─────────────────────────────────────────


def test_order_status_by_id_and_by_client_id(trade: Trade) -> None:
    for client, answer, client_id, side in (
        (trade.maker, trade.maker_answer, MAKER_CLIENT_ID, "sell"),
        (trade.taker, trade.taker_answer, TAKER_CLIENT_ID, "buy"),
    ):
        status = client.order_status(answer["order_id"])
        assert status == client.order_by_client_id(client_id)
        assert status["order_id"] == answer["order_id"]
        assert status["subaccount"] == f"{client.account}/0"
        assert (status["side"], status["market_id"]) == (side, MARKET)
        assert (status["price_quantums"], status["size_base_quantums"]) == (trade.price, SIZE)
        assert status["filled_base_quantums"] == SIZE
        assert status["remaining_base_quantums"] == 0
        assert status["status"] == "filled"
        assert status["client_order_id"] == client_id
        assert client.open_orders() == []
    with pytest.raises(ApiRejection) as unknown:
        trade.taker.order_by_client_id(MAKER_CLIENT_ID)  # the maker's id, not the taker's
    assert (unknown.value.status, unknown.value.code) == (404, "NOT_FOUND")


def test_trades_and_candles(trade: Trade) -> None:
    newest = trade.maker.trades(MARKET)[0]
    assert newest["trade_id"] == trade.fill["trade_id"]
    assert (newest["price_quantums"], newest["size_base_quantums"]) == (trade.price, SIZE)
    assert newest["taker_side"] == "buy"
    assert newest["height"] == trade.taker_answer["height"]
    minute_ns = 60 * 10**9
    (candle,) = [
        c for c in trade.maker.candles(MARKET)
        if c["minute_ns"] == trade.taker_answer["timestamp_ns"] // minute_ns * minute_ns
    ]  # fmt: skip
    assert candle["open"] == candle["high"] == candle["low"] == candle["close"] == trade.price
    assert (candle["volume_base_quantums"], candle["trades"]) == (SIZE, 1)


def test_the_l2_book_before_during_and_after(trade: Trade) -> None:
    assert (trade.book_empty["bids"], trade.book_empty["asks"]) == ([], [])
    assert trade.book_resting["asks"] == [[trade.price, SIZE]]
    assert trade.book_resting["height"] >= trade.maker_answer["height"]
    assert (trade.book_after["bids"], trade.book_after["asks"]) == ([], [])
    market = trade.maker.market(MARKET)
    assert market["last_trade_price_quantums"] == trade.price
    assert market["open_interest_base_quantums"] >= SIZE


# ── The same, over the WebSocket ───────────────────────────────────────────────────────────


def test_each_channel_starts_with_a_snapshot_and_counts_without_gaps(trade: Trade) -> None:
    assert trade.stream_gaps == 0
    for channel, messages in trade.messages.items():
        assert messages[0]["type"] == "snapshot", channel
        seqs = [m["seq"] for m in messages]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (channel, seqs)
        heights = [m["height"] for m in messages]
        assert heights == sorted(heights), channel


def test_the_stream_shows_the_book_delta_and_the_trade(trade: Trade) -> None:
    book = trade.channel("book", MARKET)
    assert (book[0]["bids"], book[0]["asks"]) == ([], [])  # the snapshot: an empty book
    deltas = [(m["height"], m["bids"], m["asks"]) for m in book[1:]]
    assert deltas == [
        (trade.maker_answer["height"], [], [[trade.price, SIZE]]),  # the maker's ask rests
        (trade.taker_answer["height"], [], [[trade.price, 0]]),  # and is taken
    ]
    (trades,) = [m for m in trade.channel("trades", MARKET) if m["type"] == "trades"]
    assert trades["height"] == trade.taker_answer["height"]
    assert trades["trades"] == trade.maker.trades(MARKET)[:1]


def test_the_stream_tells_each_party_of_its_order_and_fill(trade: Trade) -> None:
    for client, answer in ((trade.maker, trade.maker_answer), (trade.taker, trade.taker_answer)):
        messages = trade.channel("account", str(client.account))
        snapshot = messages[0]["account"]
        assert only_subaccount(snapshot)["balances"] == {"USDC": FUNDS_USDC * USDC}
        events = [e for m in messages[1:] for e in m["events"]]
        orders = [e["order"] for e in events if e["type"] == "order"]
        assert orders and orders[0]["order_id"] == answer["order_id"]
        assert orders[0]["client_order_id"] in (MAKER_CLIENT_ID, TAKER_CLIENT_ID)
        fills = [e for e in events if e["type"] == "OrderFilled"]
        assert len(fills) == 1
        assert {k: v for k, v in fills[0].items() if k != "height"} == trade.fill
        assert fills[0]["height"] == trade.taker_answer["height"]
        fees = [e for e in events if e["type"] == "Transferred" and e["target"] == "fees"]
        (fee,) = fees
        assert fee["source"] == f"{client.account}/0"


def test_an_account_channel_named_by_its_checksummed_address_gets_updates(
    venue: NodeProcess,
) -> None:
    """Wallets spell addresses in EIP-55 mixed case; the stream answers on the one canonical
    (lower-case) channel, and the updates follow there."""
    owner = Account.create()
    checksummed = f"account:{owner.address}"  # as eth-account and wallets spell it
    lower = f"account:{owner.address.lower()}"
    assert checksummed != lower
    seen: list[tuple[str, str]] = []

    async def watch(client: Client, updated: asyncio.Event) -> None:
        async for message in Stream(venue.url, [checksummed]):
            seen.append((message["channel"], message["type"]))
            if message["type"] == "snapshot":
                await asyncio.to_thread(client.faucet, 1_000)
            else:
                updated.set()

    async def run() -> None:
        updated = asyncio.Event()
        with Client(venue.url, Wallet(bytes(owner.key))) as client:
            watcher = asyncio.create_task(watch(client, updated))
            await asyncio.wait_for(updated.wait(), STREAM_SECONDS)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    asyncio.run(run())
    assert seen[:2] == [(lower, "snapshot"), (lower, "update")]


# ── Agents, wallet signatures, metrics ─────────────────────────────────────────────────────


def test_an_agent_places_an_order_for_the_account_but_may_not_withdraw(
    venue: NodeProcess, trade: Trade
) -> None:
    maker = trade.maker
    agent_key = eth_wallet()
    authorized = maker.authorize_agent(agent_key.address, valid_for_ns=HOUR_NS)
    assert [e["type"] for e in authorized["events"]] == ["AgentAuthorized"]
    assert maker.account_state()["agents"][0]["agent"] == agent_key.address
    with Client(venue.url, agent=agent_key, account=maker.account) as agent:
        index = wait_for_fresh_oracle(agent)["index_price_quantums"]
        bid = on_tick(index * 0.97, trade.params["tick_quantums"])
        placed = agent.place_order(MARKET, "buy", size_base_quantums=SIZE, price_quantums=bid)
        assert placed["status"] == "accepted"
        status = maker.order_status(placed["order_id"])
        assert (status["subaccount"], status["status"]) == (f"{maker.account}/0", "open")
        assert [o["order_id"] for o in maker.open_orders()] == [placed["order_id"]]
        balances = only_subaccount(maker.account_state())["balances"]
        agent_nonces = agent.nonces(agent_key.address)
        with pytest.raises(ApiRejection) as refused:
            agent.withdraw(10 * USDC)
        assert (refused.value.status, refused.value.code) == (403, "AGENT_NOT_ALLOWED")
        assert refused.value.body["error"]["nonce_consumed"] is False
        assert only_subaccount(maker.account_state())["balances"] == balances
        assert _without_clock(agent.nonces(agent_key.address)) == _without_clock(agent_nonces)
        cancelled = agent.cancel(order_id=placed["order_id"])  # an agent may cancel
        assert [e["type"] for e in cancelled["events"]] == ["OrderCancelled"]
    assert maker.open_orders() == []


def _without_clock(nonces: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in nonces.items() if not k.startswith("block_timestamp")}


def _commands(client: Client, agent: str) -> list[Command]:
    common = client.common
    return [
        client.order(MARKET, "buy", size_base_quantums=SIZE, price_quantums=1_000 * USDC,
                     time_in_force=TimeInForce.POST_ONLY, client_order_id=3),
        CancelOrder(**common(), subaccount_number=0, order_id=12),
        CancelAll(**common(), subaccount_number=0, market_id=MarketId(MARKET)),
        CancelAll(**common(), subaccount_number=1, market_id=None),
        Withdraw(**common(), subaccount_number=0, asset_id=AssetId("USDC"), amount_quantums=5),
        AuthorizeAgent(**common(), agent=agent, valid_until_ns=time.time_ns() + HOUR_NS),
    ]  # fmt: skip


def test_eth_account_signatures_equal_the_sdks_and_are_accepted(
    venue: NodeProcess, trade: Trade
) -> None:
    taker = trade.taker
    assert taker.wallet is not None
    wallet, domain = taker.wallet, taker.domain
    info = taker.info()
    assert (domain.chain_id, domain.verifying_contract) == (
        info["chain_id"], info["verifying_contract"])  # fmt: skip
    for command in _commands(taker, eth_wallet().address):
        fast = wallet.sign(command, domain)
        assert fast == wallet.sign_as_wallet(command, domain), type(command).__name__
        assert len(fast) == 65 and fast[64] in (27, 28)
        document = encode_typed_data(full_message=signing.typed_data(command, domain))
        assert Account.recover_message(document, signature=fast).lower() == wallet.address
    index = wait_for_fresh_oracle(taker)["index_price_quantums"]
    bid = on_tick(index * 0.96, trade.params["tick_quantums"])
    order = taker.order(MARKET, "buy", size_base_quantums=SIZE, price_quantums=bid)
    assert isinstance(order, PlaceOrder)
    body = taker.signed(order)
    body["signature"] = "0x" + wallet.sign_as_wallet(order, domain).hex()
    answer = httpx.post(venue.url + "/v1/commands", json=body, timeout=10).json()
    assert answer["status"] == "accepted", answer
    assert [e["type"] for e in answer["events"]] == ["OrderRested"]
    assert taker.command_status(Client.command_hash(order))["height"] == answer["height"]
    assert taker.cancel(order_id=answer["order_id"])["status"] == "accepted"


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_metrics_count_blocks_and_acknowledgements(venue: NodeProcess, trade: Trade) -> None:
    response = httpx.get(venue.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE clearhouse_blocks_total counter" in text
    assert "# TYPE clearhouse_ack_latency_seconds histogram" in text
    height = httpx.get(venue.url + "/v1/blocks/latest", timeout=10).json()["height"]
    # Every block this process made durable (genesis was written before it served).
    assert 0 < _metric(text, "clearhouse_blocks_total") <= height
    acked = _metric(text, "clearhouse_ack_latency_seconds_count")
    assert acked >= 4  # two faucet deposits and two orders, at least
    assert _metric(text, 'clearhouse_ack_latency_seconds_bucket{le="+Inf"}') == acked
    assert _metric(text, "clearhouse_trades_total") >= 1


# ── A graceful restart (last: it restarts the module's node) ──────────────────────────────


def _verify(journal: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "clearhouse", "verify", str(journal)], capture_output=True,
        text=True, timeout=120, check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"verified (\d+) blocks, state root\s+(0x[0-9a-f]{64})", done.stdout)
    assert found, done.stdout
    return int(found.group(1)), found.group(2)


def _kept(state: dict[str, Any]) -> list[dict[str, Any]]:
    """What a restart must keep: balances and positions (not the moving mark)."""
    return [
        {"balances": s["balances"], "margin_mode": s["margin_mode"],
         "positions": [{k: p[k] for k in ("market", "size", "cost", "funding_paid")}
                       for p in s["positions"]]}
        for s in state["subaccounts"]
    ]  # fmt: skip


def test_sigterm_exits_cleanly_and_a_restart_keeps_state_and_the_journal_verifies(
    venue: NodeProcess, trade: Trade
) -> None:
    url = venue.url
    states = {role: _kept(c.account_state()) for role, c in
              (("maker", trade.maker), ("taker", trade.taker))}  # fmt: skip
    head = httpx.get(url + "/v1/blocks/latest", timeout=10).json()["height"]
    heights = sorted({1, trade.maker_answer["height"], trade.taker_answer["height"], head})
    blocks = {h: httpx.get(f"{url}/v1/blocks/{h}", timeout=10).json() for h in heights}
    orders = trade.maker.order_status(trade.maker_answer["order_id"])
    assert venue.stop() == 0
    height, root = _verify(venue.data_dir / "journal.sqlite")
    assert height >= head
    venue.start()
    maker, taker = Client(venue.url, trade.maker.wallet), Client(venue.url, trade.taker.wallet)
    with maker, taker:
        assert {"maker": _kept(maker.account_state()),
                "taker": _kept(taker.account_state())} == states  # fmt: skip
        for h, block in blocks.items():
            assert maker.block(h) == block, h
        assert maker.block(height)["state_root"] == root
        assert maker.order_status(trade.maker_answer["order_id"]) == orders
        assert maker.trades(MARKET)[0]["trade_id"] == trade.fill["trade_id"]
        # The node goes on from where it stopped: the same chain, new blocks on top of it.
        index = wait_for_fresh_oracle(taker)["index_price_quantums"]
        bid = on_tick(index * 0.97, trade.params["tick_quantums"])
        answer = taker.place_order(MARKET, "buy", size_base_quantums=SIZE, price_quantums=bid)
        assert answer["status"] == "accepted" and answer["height"] > height
