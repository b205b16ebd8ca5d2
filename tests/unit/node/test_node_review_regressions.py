"""Defects an independent review of the node reproduced; each test failed before its fix."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Sequence

import httpx
import pytest
from tests.unit.node.test_sequencer import TRADER, RecordingJournal, _order, _result, _sequencer

from clearhouse.app.ports import Snapshot
from clearhouse.client.bots import run
from clearhouse.core.codec import encode_command
from clearhouse.core.errors import StorageError
from clearhouse.core.ids import Address, AssetId, MarketId, OracleId, Side
from clearhouse.core.messages import AmendOrder, Deposit, PlaceOrder
from clearhouse.core.units import NS_PER_MS, NS_PER_SECOND
from clearhouse.node import commands
from clearhouse.node.context import NodeContext
from clearhouse.node.errors import ApiError
from clearhouse.node.sequencer import AnchoredClock, NodeUnavailable, Sequencer

MAKER = Address("0x" + "cd" * 20)


def test_a_waiter_that_gives_up_does_not_stop_the_sequencer() -> None:
    sequencer = _sequencer(RecordingJournal())
    abandoned, _ = sequencer.submit(_order(0))
    other, _ = sequencer.submit(_order(1))
    assert abandoned.cancel()  # the request was cancelled while its command was queued
    sequencer.start()
    try:
        assert _result(other).rejection is not None or _result(other).height > 1
    finally:
        sequencer.stop()
    assert sequencer.failure is None


def test_an_answer_awaited_by_a_cancelled_request_leaves_the_future_alone() -> None:
    sequencer = _sequencer(RecordingJournal())
    future, _ = sequencer.submit(_order(0))

    async def give_up() -> None:
        waiter = asyncio.ensure_future(commands.answered(future))
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)

    asyncio.run(give_up())
    assert not future.cancelled()
    sequencer.start()
    try:
        _result(future)
    finally:
        sequencer.stop()
    assert sequencer.failure is None


class SnapshotlessJournal(RecordingJournal):
    def write_snapshot(self, snapshot: Snapshot) -> None:
        raise StorageError("disk is full")


def test_a_snapshot_that_cannot_be_written_does_not_stop_the_node() -> None:
    sequencer = _sequencer(SnapshotlessJournal(), snapshot_every=1)
    sequencer.start()
    try:
        results = [_result(sequencer.submit(_order(i))[0]) for i in range(3)]
    finally:
        sequencer.stop()
    assert sequencer.failure is None
    assert len(results) == 3


class FailingJournal(RecordingJournal):
    def append(self, blocks: Sequence[object]) -> None:  # type: ignore[override]
        if self.committed:
            raise StorageError("disk is full")
        super().append(blocks)  # type: ignore[arg-type]


def test_after_a_failed_commit_nothing_is_served() -> None:
    sequencer = _sequencer(FailingJournal())
    future, _ = sequencer.submit(_order())
    sequencer.start()
    with pytest.raises(NodeUnavailable):
        future.result(timeout=10)
    context = NodeContext(sequencer=sequencer, hub=None, metrics=None, domain=None,  # type: ignore[arg-type]
                          account_limits=None, info={})  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(ApiError) as refused:
        context.locked(lambda: sequencer.chain.engine.state.height)
    assert refused.value.status == 503


def test_a_wall_clock_stepped_forward_does_not_move_block_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = AnchoredClock()
    real = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: real + 600 * NS_PER_SECOND)
    assert abs(clock.now_ns() - real) < 5 * NS_PER_SECOND


def test_a_foreign_relayer_deposit_with_a_huge_id_does_not_break_the_faucet() -> None:
    sequencer = _sequencer(RecordingJournal())
    relayer = sequencer.chain.engine.state.venue.custody_relayer
    now = time.time_ns()
    foreign = Deposit(
        signer=relayer, nonce=now // NS_PER_MS - 5, expiry_ns=now + 60 * NS_PER_SECOND,
        deposit_id=2**62, owner=TRADER, subaccount_number=0, asset_id=AssetId("USDC"),
        amount_quantums=1_000_000,
    )  # fmt: skip
    sequencer.start()
    try:
        assert _result(sequencer.submit(foreign)[0]).rejection is None
        faucet = _result(sequencer.submit_deposit(str(TRADER), 0, 10)[0])
    finally:
        sequencer.stop()
    assert faucet.rejection is None


def _wait_fresh(sequencer: Sequencer) -> int:
    deadline = time.monotonic() + 10
    oracle = sequencer.chain.engine.state.oracles[OracleId("BTC-USD")]
    while not oracle.is_usable():
        assert time.monotonic() < deadline, "the dev feed never made the index fresh"
        time.sleep(0.05)
        oracle = sequencer.chain.engine.state.oracles[OracleId("BTC-USD")]
    return oracle.index_price_quantums // 100_000 * 100_000


def _amend(order_id: int, price: int, size: int, offset: int) -> AmendOrder:
    now = time.time_ns()
    return AmendOrder(
        signer=TRADER, nonce=now // NS_PER_MS + 500 + offset, expiry_ns=now + 60 * NS_PER_SECOND,
        subaccount_number=0, order_id=order_id, price_quantums=price, size_base_quantums=size,
    )  # fmt: skip


def test_order_histories_follow_amendments() -> None:
    sequencer = _sequencer(RecordingJournal())
    sequencer.start()
    try:
        for owner in (TRADER, MAKER):
            _result(sequencer.submit_deposit(str(owner), 0, 100_000)[0])
        price = _wait_fresh(sequencer) * 99 // 100 // 100_000 * 100_000
        bid = dataclasses.replace(_order(), price_quantums=price, size_base_quantums=1_000_000,
                                  client_order_id=88)  # fmt: skip
        placed = _result(sequencer.submit(bid)[0]).order_id
        assert placed is not None
        _result(sequencer.submit(_amend(placed, price, 400_000, 1))[0])  # shrink: keeps place
        assert sequencer.read_model.orders[placed]["size_base_quantums"] == 400_000
        now = time.time_ns()
        sell = PlaceOrder(
            signer=MAKER, nonce=now // NS_PER_MS, expiry_ns=now + 60 * NS_PER_SECOND,
            subaccount_number=0, market_id=MarketId("BTC-PERP"), side=Side.SELL,
            size_base_quantums=400_000, price_quantums=price,
        )  # fmt: skip
        _result(sequencer.submit(sell)[0])
        assert sequencer.read_model.orders[placed]["status"] == "filled"
        again = dataclasses.replace(bid, nonce=bid.nonce + 1000, client_order_id=89)
        second = _result(sequencer.submit(again)[0]).order_id
        assert second is not None
        moved = _result(sequencer.submit(_amend(second, price - 100_000, 500_000, 2))[0])
    finally:
        sequencer.stop()
    new_id = moved.order_id
    assert new_id is not None and new_id != second
    orders = sequencer.read_model.orders
    assert orders[second]["status"] == "cancelled"
    assert orders[new_id]["price_quantums"] == price - 100_000
    assert orders[new_id]["remaining_base_quantums"] == 500_000
    assert sequencer.read_model.client_orders[(f"{TRADER}/0", 89)] == new_id
    assert encode_command(again) in {
        c for b in sequencer.chain.journal.blocks() for c in b.commands
    }


def test_the_reference_bots_survive_the_node_going_away() -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused")

    run(step, 0.0, steps=3)
    assert len(calls) == 3


def test_an_answer_awaited_when_the_node_fails_raises_node_unavailable() -> None:
    sequencer = _sequencer(RecordingJournal())
    future, _ = sequencer.submit(_order())
    timer = threading.Timer(0.1, sequencer._fail_pending, (StorageError("disk is full"),))
    timer.start()

    async def wait() -> None:
        await commands.answered(future)

    with pytest.raises(NodeUnavailable):
        asyncio.run(wait())
