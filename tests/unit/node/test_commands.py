"""What a request costs against the per-IP limit once it is read: a batch by its commands or its
size, a what-if by its positions, a governance what-if by its holders."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest

from clearhouse.app import signing
from clearhouse.app.ports import StoredBlock
from clearhouse.app.signing import Domain
from clearhouse.client import Wallet
from clearhouse.client.surface import envelope
from clearhouse.core import limits
from clearhouse.core.block import BlockHeader
from clearhouse.core.ids import Address, AssetId, MarketId, OrderId, Side, SubaccountId
from clearhouse.core.ledger import Subaccount
from clearhouse.core.matching import RestingOrder
from clearhouse.core.messages import (
    ActionKind,
    AgentSigned,
    AuthorizeAgent,
    CancelAll,
    GovAction,
    Withdraw,
)
from clearhouse.node import commands, governance, models, protection, queries
from clearhouse.node.context import NodeContext
from clearhouse.node.errors import ApiError
from clearhouse.node.protection import HEAVY_READ_WEIGHT, RateLimiter
from clearhouse.node.viewcache import BlockAnswers
from helpers import BTC_PERP, ONE_BTC, PRICE, Venue, accepted


def _node(rate: float, burst: float) -> Any:
    metrics = SimpleNamespace(rate_limited=SimpleNamespace(inc=lambda: None))
    return SimpleNamespace(ip_limits=RateLimiter(rate, burst), metrics=metrics)


REQUEST: Any = SimpleNamespace(client=SimpleNamespace(host="10.0.0.1"))


def test_a_batch_heavier_than_the_burst_is_refused_as_too_large_never_as_a_wait() -> None:
    """Its Retry-After could never come true: the bucket never holds more than the burst."""
    ctx = _node(50, 100)
    with pytest.raises(ApiError) as refused:
        commands.charge_batch(ctx, REQUEST, commands.BATCH_COMMANDS_MAX)
    assert (refused.value.status, refused.value.code) == (413, "BATCH_TOO_LARGE")
    assert refused.value.detail["max_commands"] == 100
    commands.charge_batch(ctx, REQUEST, 100)  # the most that fits passes


def test_a_batch_is_charged_one_per_command_beyond_its_arrival(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_000.0]
    monkeypatch.setattr(protection.time, "monotonic", lambda: now[0])
    ctx = _node(100, 200)
    commands.charge_batch(ctx, REQUEST, 150)  # 130 beyond the 20 its arrival paid
    assert ctx.ip_limits.remaining("10.0.0.1") == 70
    with pytest.raises(ApiError) as refused:
        commands.charge_batch(ctx, REQUEST, 150)
    assert (refused.value.status, refused.value.code) == (429, "RATE_LIMITED")
    now[0] += refused.value.detail["retry_after_seconds"]
    commands.charge_batch(ctx, REQUEST, 150)  # the wait it was told is enough


def test_with_the_limit_off_any_batch_passes() -> None:
    commands.charge_batch(_node(0, 0), REQUEST, commands.BATCH_COMMANDS_MAX)


def test_a_batch_weighs_by_its_commands_or_by_its_size_whichever_is_more() -> None:
    assert commands.batch_weight(1_000, 2_000_000) == 1_000  # 2 KB commands: by count
    assert commands.batch_weight(1, 3_500_000) > 850  # one command of 3.5 MB: by size


def test_a_block_weighs_with_the_bytes_of_its_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block of 3,000 orders (1 MB of commands, ~1.5 MB answered) took ~100 ms to answer at
    the weight of one read: 32 readers of one large block kept a node's interpreter busy. It
    weighs one per 4 KiB of its commands now, as a batch's body does."""
    now = [1_000.0]
    monkeypatch.setattr(protection.time, "monotonic", lambda: now[0])
    order = b'{"body":{"market_id":"BTC-PERP","nonce":1,"padding":"' + b"x" * 280 + b'"}}'
    header = BlockHeader(height=9, timestamp_ns=1, parent_hash=b"", commands_hash=b"",
                         events_hash=b"", state_root=b"")  # fmt: skip
    stored = StoredBlock(header, b"\x01", (order,) * 2_000)  # 650 KB: ~160 reads
    ctx = _node(100, 200)
    ctx.blocks = BlockAnswers()
    ctx.sequencer = SimpleNamespace(read_block=lambda height: stored)
    assert 150 < queries.block_weight(stored.commands) < 170
    assert queries.block_weight(()) == 1.0
    answer = json.loads(queries.block(ctx, 9, REQUEST).body)
    assert len(answer["commands"]) == 2_000
    with pytest.raises(ApiError) as refused:
        queries.block(ctx, 9, REQUEST)  # at once: over the budget, though rendered already
    assert (refused.value.status, refused.value.code) == (429, "RATE_LIMITED")
    now[0] += refused.value.detail["retry_after_seconds"] + 0.01  # rounded to milliseconds
    queries.block(ctx, 9, REQUEST)


def test_a_committed_block_is_rendered_once_however_often_it_is_read() -> None:
    """32 readers of one 3,000-order block cost the node ~100 ms each; a committed block never
    changes, so its answer is kept (by bytes, the least recently read dropped first) and
    only the first reader of it renders it."""
    order = b'{"body":{"market_id":"BTC-PERP","nonce":1}}'
    reads: list[int] = []

    def read_block(height: int) -> StoredBlock | None:
        reads.append(height)
        header = BlockHeader(height=height, timestamp_ns=1, parent_hash=b"", commands_hash=b"",
                             events_hash=b"", state_root=b"")  # fmt: skip
        return StoredBlock(header, b"\x01", (order,) * 100) if height < 5 else None

    ctx = _node(0, 0)  # no per-IP limit
    ctx.sequencer = SimpleNamespace(read_block=read_block)
    ctx.blocks = BlockAnswers()
    first = queries.block(ctx, 1, REQUEST).body
    ctx.blocks = BlockAnswers(bytes_max=2 * len(first))  # two blocks' answers
    reads.clear()
    assert [queries.block(ctx, 1, REQUEST).body for _ in range(5)] == [first] * 5
    assert reads == [1]
    queries.block(ctx, 2, REQUEST)
    queries.block(ctx, 3, REQUEST)  # over the budget: block 1, read least recently, goes
    queries.block(ctx, 1, REQUEST)
    assert reads == [1, 2, 3, 1]
    with pytest.raises(ApiError) as missing:
        queries.block(ctx, 7, REQUEST)
    assert missing.value.status == 404
    assert reads[-1] == 7


def test_a_what_if_weighs_with_the_positions_it_margins() -> None:
    """~45 margin computations of the whole trial per searched position (at most 16): a
    64-position trial weighs ~170 reads, not one."""
    ctx = SimpleNamespace(engine=Venue().engine)
    owner = "0x" + "ab" * 20

    def weight(positions: int) -> float:
        trial = [models.TrialPosition(market_id="BTC-PERP", size_base_quantums=1)] * positions
        request = models.WhatIfRequest(address=owner, portfolio=trial)
        sid = SubaccountId(Address(owner), 0)
        return queries.what_if_weight(ctx, sid, request)  # type: ignore[arg-type]

    assert weight(0) == 1.0
    assert weight(3) == 1.0 + 9 / 6
    assert weight(64) == 1.0 + 16 * 64 / 6
    assert weight(256) == 1.0 + 16 * 256 / 6


def test_a_governance_what_if_weighs_with_the_holders_it_examines() -> None:
    venue = Venue()
    accepted(venue, venue.order("alice", BTC_PERP, Side.SELL, ONE_BTC, PRICE))
    accepted(venue, venue.order("bob", BTC_PERP, Side.BUY, ONE_BTC, PRICE))  # two holders
    change = GovAction(kind=ActionKind.SET_PARAM, target="BTC-PERP", name="x", value=1)
    other = GovAction(kind=ActionKind.PAUSE_MARKET, target="BTC-PERP")
    assert governance.impact_weight(venue.state, (change,)) == HEAVY_READ_WEIGHT + 2 / 40
    assert governance.impact_weight(venue.state, (other,)) == HEAVY_READ_WEIGHT


# ── A resubmission's signature is recovered once ────────────────────────────────────────────


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the node's signature recoveries (one call per command recovered)."""
    calls = [0]
    real = commands.signing.authenticate

    def counted(*args: Any) -> Any:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(commands.signing, "authenticate", counted)
    return calls


def _signed(nonce: int, *, forged: bool = False) -> commands.SignedCommand:
    wallet = Wallet(bytes(range(1, 33)))
    order = Withdraw(signer=wallet.address, nonce=nonce, expiry_ns=2**62, subaccount_number=0,
                     asset_id=AssetId("USDC"), amount_quantums=1)  # fmt: skip
    body = envelope(order, wallet, DOMAIN)
    if forged:  # r = s = 0: recovers to no key
        body["signature"] = "0x" + "00" * 64 + "1b"
    return commands.SignedCommand.model_validate(body)


DOMAIN = Domain(chain_id=1, verifying_contract="0x" + "11" * 20)


def test_an_identical_resubmission_is_recognised_before_its_signature_is_recovered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _counting(monkeypatch)
    ctx: Any = SimpleNamespace(recovered=protection.Recovered(size=2), domain=DOMAIN)
    first = commands.authenticate(ctx, _signed(1))
    assert commands.authenticate(ctx, _signed(1)) == first
    assert calls[0] == 1
    forged = _signed(1, forged=True)
    for _ in range(3):  # a forgery sent again and again costs one recovery too
        with pytest.raises(ApiError) as refused:
            commands.authenticate(ctx, forged)
        assert (refused.value.status, refused.value.code) == (401, "BAD_SIGNATURE")
    assert calls[0] == 2
    commands.authenticate(ctx, _signed(2))  # a third: the oldest (nonce 1) is forgotten
    commands.authenticate(ctx, _signed(1))
    assert calls[0] == 4


def test_a_batch_recovers_each_distinct_command_once(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx: Any = SimpleNamespace(recovered=protection.Recovered(), domain=DOMAIN, verify_pool=None)
    found = asyncio.run(commands.authenticate_all(ctx, [_signed(1), _signed(1), _signed(2)]))
    assert [type(f) for f in found] == [tuple, tuple, tuple]
    assert found[0] == found[1] != found[2]
    calls = _counting(monkeypatch)
    again = asyncio.run(commands.authenticate_all(ctx, [_signed(2), _signed(1), _signed(3)]))
    assert again[:2] == [found[2], found[0]]
    assert calls[0] == 1  # the new one only


def test_the_recovery_cache_keeps_no_large_command() -> None:
    """Its keys are digests, and a command over ``RECOVERED_COMMAND_BYTES_MAX`` is recovered
    each time: 16,384 forged 64 KB proposals had filled it with ~1.2 GB."""
    cache = protection.Recovered()
    key = protection.Recovered.key(b"x" * 100_000, b"s")
    assert len(key) == 32
    error = signing.BadSignature("forged")
    cache.put(key, error, command_bytes=protection.RECOVERED_COMMAND_BYTES_MAX + 1)
    assert cache.get(key) is None
    cache.put(key, error, command_bytes=protection.RECOVERED_COMMAND_BYTES_MAX)
    assert cache.get(key) is error


# ── A list read weighs with the items it answers ────────────────────────────────────────────


def _listing_node() -> NodeContext:
    from tests.unit.node.test_sequencer import RecordingJournal, _sequencer

    sequencer = _sequencer(RecordingJournal())
    return NodeContext(sequencer=sequencer, hub=None, metrics=_node(0, 0).metrics,  # type: ignore[arg-type]
                       domain=DOMAIN, account_limits=RateLimiter(0, 0), info={},
                       ip_limits=RateLimiter(100, 200))  # fmt: skip


def _refused_after(read: Any, most: int) -> int:
    """How many reads passed before the per-IP limit refused one (``most`` if none was)."""
    codes: list[tuple[int, str]] = []
    for _ in range(most):
        try:
            read()
        except ApiError as error:
            codes.append((error.status, error.code))
    assert set(codes) <= {(429, "RATE_LIMITED")}
    return most - len(codes)


def test_a_list_read_weighs_with_the_items_it_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subaccount's 1,000 history items (1,100 transfers between its own subaccounts, no fee)
    took ~21 ms more than /health to answer at the weight of one read (5 ms of it under the
    writer's lock): a twentieth of the per-IP budget kept the node's interpreter busy. A list
    read (history, open orders, trades, candles, funding, a book's levels) now weighs one per
    ``LIST_ITEMS_PER_WEIGHT`` items it may answer, charged before it is rendered."""
    monkeypatch.setattr(protection.time, "monotonic", lambda: 1_000.0)
    ctx = _listing_node()
    owner = "0x" + "ab" * 20
    kept = ctx.sequencer.read_model.history[f"{owner}/0"] = deque(maxlen=1_000)
    for cursor in range(1, 1_001):
        kept.append({"cursor": str(cursor), "category": "transfer", "height": cursor,
                     "amount_quantums": cursor, "timestamp_ns": cursor})  # fmt: skip
    trades = ctx.sequencer.read_model.trades["BTC-PERP"] = deque(maxlen=1_000)
    trades.extend({"price_quantums": 1, "size_base_quantums": 1} for _ in range(1_000))

    def history() -> object:
        return queries.history(ctx, REQUEST, owner, 0, None, 1_000, None)

    assert protection.list_weight(1_000) == 1_000 / protection.LIST_ITEMS_PER_WEIGHT
    assert protection.list_weight(3) == 1.0  # a short list is one read, as before
    assert _refused_after(history, 50) < 15  # 200 of burst (the clock stands): reads of 20
    ctx.ip_limits = RateLimiter(100, 200)
    assert _refused_after(lambda: queries.trades(ctx, REQUEST, "BTC-PERP", 1_000), 50) < 15
    ctx.ip_limits = RateLimiter(100, 200)
    maker = SubaccountId(Address("0x" + "ef" * 20), 0)  # 256 order ids (none resting: cheap)
    ids = {OrderId(i): MarketId("BTC-PERP") for i in range(1, 257)}
    ctx.engine.state.ledger.subaccounts[maker] = Subaccount(maker, order_ids=ids)
    assert _refused_after(lambda: queries.open_orders(ctx, REQUEST, maker.owner, 0), 99) < 60
    ctx.ip_limits = RateLimiter(100, 200)
    assert _refused_after(lambda: queries.book(ctx, REQUEST, "BTC-PERP", 1_000), 50) == 50
    book = ctx.engine.state.markets[MarketId("BTC-PERP")].book  # 1,000 levels a side
    for level in range(1_000):
        for number, side, price in ((1, Side.BUY, 1_000 + level), (2, Side.SELL, 5_000 + level)):
            book.add(RestingOrder(order_id=OrderId(2 * level + number), owner=maker, side=side,
                                  price_quantums=price, remaining_base_quantums=1,
                                  sequence=2 * level + number))  # fmt: skip
    assert _refused_after(lambda: queries.book(ctx, REQUEST, "BTC-PERP", 1_000), 50) < 10
    assert queries.book(ctx, REQUEST, "BTC-PERP", 1)["bids"]  # one level a side: one read
    ctx.ip_limits = RateLimiter(100, 200)
    small = "0x" + "cd" * 20  # three items: one read each, whatever limit it asks
    ctx.sequencer.read_model.history[f"{small}/0"] = deque(list(kept)[:3], maxlen=1_000)
    assert _refused_after(lambda: queries.history(ctx, REQUEST, small, 0, None, 1_000, None),
                          50) == 50  # fmt: skip


def test_an_account_view_weighs_with_its_subaccounts_and_positions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An account of 128 subaccounts holding 3 positions each took ~34 ms of the node's CPU to
    view (recomputed whenever a block had touched it: its owner's own command between two
    reads), at a heavy read's flat weight of 5: one address at the default --ip-rate asked for
    ~13 s of CPU a second, over HTTP or by resubscribing to its ``account:`` stream. A view that
    is computed now weighs with its subaccounts and positions; a fresh one is 5, as before."""
    from clearhouse.node.readmodel import BlockUpdate

    monkeypatch.setattr(protection.time, "monotonic", lambda: 1_000.0)
    ctx = _listing_node()
    owner = Address("0x" + "ab" * 20)
    ledger = ctx.engine.state.ledger.subaccounts
    for number in range(limits.subaccounts_per_account_max):
        ledger[SubaccountId(owner, number)] = Subaccount(SubaccountId(owner, number))
    state = ctx.engine.state
    numbers = range(limits.subaccounts_per_account_max)
    assert protection.account_weight(state, owner, numbers) == 128 / 8
    assert protection.account_weight(state, Address("0x" + "cd" * 20), numbers) == 5.0
    height = [ctx.views.height]

    def touched_then_read() -> object:  # the owner's command in a block, then its view
        height[0] += 1
        ctx.views.committed(BlockUpdate(height[0], 0, owners={owner}))
        return queries.account(ctx, REQUEST, owner)

    # 200 of burst (the clock stands): 11 a view beyond the 5 its arrival paid.
    assert _refused_after(touched_then_read, 50) == 200 // 11
    ctx.ip_limits = RateLimiter(100, 200)
    assert _refused_after(lambda: queries.account(ctx, REQUEST, owner), 50) == 50  # fresh: 5
    sid = SubaccountId(owner, 7)
    ledger[sid].positions.update({MarketId(f"M{i}"): None for i in range(160)})  # type: ignore[misc]
    assert protection.account_weight(state, owner, (7,)) == 1 / 8 + 160 / 16


# ── A key that holds nothing leaves nothing ─────────────────────────────────────────────────


def _cancel_all(signer: Address, nonce: int = 1_000) -> CancelAll:
    return CancelAll(signer=signer, nonce=nonce, expiry_ns=2**62, subaccount_number=0)


def test_a_key_that_holds_nothing_on_the_venue_is_refused_before_its_block() -> None:
    """A CancelAll from a fresh key (no deposit, no role) was accepted: its nonce set, a
    state-root leaf, stayed in state for good (~740 bytes of the node's memory a key, ~75 µs
    of its block, and its journal record). At one read's weight each, one address at its
    per-IP limit added ~1.5 MB of state a second, for nothing. The node now refuses, before
    the block, a command signed by an account that holds no subaccount, has no nonce the
    engine took and holds no role (``ACCOUNT_NOT_FUNDED``; its nonce is not spent)."""
    ctx = _listing_node()
    state = ctx.engine.state
    fresh = Address("0x" + "5e" * 20)
    with pytest.raises(ApiError) as refused:
        commands.charge(ctx, _cancel_all(fresh))
    assert (refused.value.status, refused.value.code) == (403, "ACCOUNT_NOT_FUNDED")
    assert refused.value.detail["nonce_consumed"] is False
    funded = SubaccountId(Address("0x" + "f0" * 20), 127)  # any subaccount of the account
    state.ledger.subaccounts[funded] = Subaccount(funded)
    commands.charge(ctx, _cancel_all(funded.owner))
    known = Address("0x" + "ce" * 20)  # a key the engine has taken a command from
    state.nonces[known] = [1]
    commands.charge(ctx, _cancel_all(known))
    publisher = next(iter(state.oracles.values())).params.publishers[0].address
    roles = [state.venue.operator, state.venue.custody_relayer, publisher]
    for role in roles:  # roles hold nothing and sign from their first command on
        commands.charge(ctx, _cancel_all(role))
    agent = Address("0x" + "a9" * 20)  # an agent is let in only if its account authorized it
    with pytest.raises(ApiError) as refused:
        commands.charge(ctx, AgentSigned(_cancel_all(fresh), agent))
    assert refused.value.code == "AGENT_NOT_AUTHORIZED"


def test_an_account_authorizes_few_agents_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each agent key's nonce set stays in state for good (~570 bytes): one funded account
    that authorized a new agent, had it sign once and revoked it, three commands at a time,
    could grow the state ~0.3 MB a second. The node now lets an account authorize a set of
    agents at once, then one every ``AGENT_AUTHORIZATION_SECONDS`` (``RATE_LIMITED``; its
    nonce is not spent)."""
    now = [1_000.0]
    monkeypatch.setattr(protection.time, "monotonic", lambda: now[0])
    ctx = _listing_node()
    owner = SubaccountId(Address("0x" + "f1" * 20), 0)
    ctx.engine.state.ledger.subaccounts[owner] = Subaccount(owner)

    def authorize(nonce: int) -> None:
        agent = Address(f"0x{nonce:040x}")
        commands.charge(ctx, AuthorizeAgent(signer=owner.owner, nonce=nonce, expiry_ns=2**62,
                                            agent=agent, valid_until_ns=2**62))  # fmt: skip

    for nonce in range(1, limits.agents_per_account_max + 1):  # a whole set at once
        authorize(nonce)
    with pytest.raises(ApiError) as refused:
        authorize(100)
    assert (refused.value.status, refused.value.code) == (429, "RATE_LIMITED")
    commands.charge(ctx, _cancel_all(owner.owner))  # its other commands are not held back
    now[0] += protection.AGENT_AUTHORIZATION_SECONDS
    authorize(101)


def test_governance_lists_weigh_with_what_they_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a dev node holding 483 cancelled proposals (6 actions and a 1,000-character memo
    each) and ~1,000 governance events, ``GET /v1/gov/proposals?limit=500`` took 55 ms of the
    node's CPU and ``/v1/gov/events?limit=1000`` 17.5 ms, each at the weight of one read (a
    status filter that matched none still built every proposal's view: 12 ms for an empty
    answer). They now weigh as the other lists do, a proposal with its actions, charged before
    the read; the registry with its values (one per market for each market parameter)."""
    from clearhouse.core.state import GovernanceState, Proposal, ProposalStatus
    from clearhouse.node.dev import DEV_GOVERNANCE

    monkeypatch.setattr(protection.time, "monotonic", lambda: 1_000.0)
    ctx = _listing_node()
    state = ctx.engine.state
    gov = state.governance = GovernanceState(DEV_GOVERNANCE)
    pause = GovAction(kind=ActionKind.PAUSE_MARKET, target="BTC-PERP")
    for number in range(1, 501):
        gov.proposals[number] = Proposal(number, Address("0x" + "ab" * 20), (pause,) * 6,
                                         "m" * 1_000, "", 1, ProposalStatus.CANCELLED)  # fmt: skip
    model = ctx.sequencer.read_model
    for cursor in range(1, 1_001):
        item = {"cursor": str(cursor), "type": "ParamChanged", "role": 1, "target": "BTC-PERP",
                "name": "market.margin.initial_margin_ppm", "old_value": 1,
                "new_value": 2}  # fmt: skip
        model.governance.append(item)
        model.param_changes.append(item)
    # 200 of burst (the clock stands): a page of 500 proposals weighs 70, 69 beyond its arrival.
    assert _refused_after(lambda: governance.proposals(ctx, REQUEST, limit=500), 10) == 2
    ctx.ip_limits = RateLimiter(100, 200)
    assert _refused_after(lambda: governance.events(ctx, REQUEST, limit=1_000), 50) == 200 // 19
    ctx.ip_limits = RateLimiter(100, 200)
    assert _refused_after(lambda: governance.history(ctx, REQUEST, limit=1_000), 50) == 200 // 19
    ctx.ip_limits = RateLimiter(100, 200)
    assert _refused_after(lambda: governance.proposals(ctx, REQUEST, limit=1), 50) == 50  # short
    assert governance.proposals_listed(state, 500, filtered=False) == 500 * 7
    assert governance.proposals_listed(state, 10, filtered=True) == 10 * 7 + 500 // 10
    markets = len(state.markets)
    market_params = sum(1 for e in governance.REGISTRY.values() if e.scope.name == "MARKET")
    listed = governance.params_listed(state, None, None, None)
    assert listed >= market_params * markets
    assert governance.params_listed(state, "market", None, "BTC-PERP") == market_params


# ── A command pays for the work its block did ───────────────────────────────────────────────


def test_a_command_pays_after_its_block_for_the_work_it_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a dev node, 1,000 makers (8 accounts × 125 subaccounts, one minimum ask each) and a
    taker with 50 USDC sending IOC buys through all of them: each match checked every maker's
    margin and was then refused for the taker's own (INSUFFICIENT_MARGIN, nothing changed, no
    fee), ~25 ms of the writer at the weight of one command. One sender took 800 of them in
    43 s of blocks and honest orders from another address waited 4.7 s (p50). The writer's time
    is now charged after the answer to the signing key and the address, a weight a
    millisecond beyond the first: the same key is refused after a burst's worth of work."""
    now = [1_000.0]
    monkeypatch.setattr(protection.time, "monotonic", lambda: now[0])

    ctx = _listing_node()
    ctx.account_limits = RateLimiter(100, 200)
    owner = SubaccountId(Address("0x" + "f2" * 20), 0)
    ctx.engine.state.ledger.subaccounts[owner] = Subaccount(owner)

    def send(nonce: int, work_seconds: float) -> None:
        command = _cancel_all(owner.owner, nonce)
        commands.charge(ctx, command)
        commands.charge_done(ctx, "10.0.0.1", command, work_seconds)

    for nonce in range(100):  # plain commands: their arrival paid for them
        send(nonce, 0.0005)
    assert ctx.account_limits.remaining(owner.owner) == 100
    assert ctx.ip_limits.remaining("10.0.0.1") == 200  # charged nothing beyond the arrival
    for nonce in range(1_000, 1_004):  # 100 left, 26 a command; each of 200 passed before
        send(nonce, 0.026)
    with pytest.raises(ApiError) as refused:
        send(1_004, 0.026)
    assert (refused.value.status, refused.value.code) == (429, "RATE_LIMITED")
    assert refused.value.detail["retry_after_seconds"] == pytest.approx(0.05, abs=1e-3)
    assert ctx.ip_limits.remaining("10.0.0.1") == 100  # the address paid the same 4 × 25
    now[0] += 0.06
    send(2_000, 0.0)  # the work owed is paid by waiting for it, as any weight
