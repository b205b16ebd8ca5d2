"""The what-if: the engine's margin code on a copy, with nothing in state changed. A vault
owner's shares, worth what a redemption would pay (and then does), and the options vault's caps
at its NAV."""

from __future__ import annotations

from typing import Any

import pytest

from clearhouse.adapters.memory_journal import MemoryJournal
from clearhouse.app.chain import Chain
from clearhouse.core.codec import encode_command
from clearhouse.core.engine import Trial
from clearhouse.core.engine import preview as preview_module
from clearhouse.core.engine.liquidation import insolvency
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import MarketId, OracleId, Side, SubaccountId
from clearhouse.core.liquidation import AdlCandidate, adl_candidate, adl_order
from clearhouse.core.messages import (
    DepositOptionsVault,
    OptionsVaultWithdrawn,
    SetupOptionsVault,
    VaultWithdrawn,
    WithdrawOptionsVault,
)
from clearhouse.core.params import OptionsVaultParams
from clearhouse.core.units import NS_PER_SECOND, PPM_ONE
from clearhouse.node import human
from clearhouse.node.models import OptionsVault, OptionsVaultOwner, VaultOwner
from clearhouse.node.views import (
    ADL_RANK_LAG_NS,
    options_vault,
    options_vault_owner,
    vault_owner,
    what_if,
)
from clearhouse.sim.market import DemoMarket
from clearhouse.sim.venue import GENESIS_NS, USDC, default_venue, genesis_commands
from helpers import Venue, accepted, of_type, rejected

BLOCK_NS = 10 * NS_PER_SECOND
BLOCKS = 60


def _chain() -> Chain:
    spec = default_venue(GENESIS_NS, oracle_staleness_ns=15 * NS_PER_SECOND)
    chain = Chain(spec.venue, MemoryJournal())
    market = DemoMarket(3, spec, BLOCK_NS)
    for height in range(1, BLOCKS):
        timestamp = GENESIS_NS + (height - 1) * BLOCK_NS
        commands = genesis_commands(spec) if height == 1 else market.commands(
            chain.engine, timestamp, height
        )  # fmt: skip
        chain.produce_encoded(timestamp, [encode_command(c) for c in commands])
    return chain


def _holder(chain: Chain) -> tuple[SubaccountId, MarketId]:
    for sid, sub in sorted(chain.engine.state.ledger.subaccounts.items()):
        for market_id, position in sorted(sub.positions.items()):
            if position.size_base_quantums and not market_id.endswith(("-C", "-P")):
                return sid, market_id
    raise AssertionError("the demo market left no position")


def test_a_what_if_changes_nothing_in_state() -> None:
    chain, twin = _chain(), _chain()
    sid, market_id = _holder(chain)
    engine = chain.engine
    before = {s: x.encode() for s, x in engine.state.ledger.subaccounts.items()}
    params = engine.state.markets[market_id].params
    mark = engine.state.markets[market_id].mark_price_quantums // params.tick_quantums
    price = mark * params.tick_quantums
    size = 1_000 * params.step_base_quantums
    answer = what_if(
        engine, sid, Trial(fills=((market_id, size, price), (market_id, -size, price)))
    )
    assert answer["committed"] is False
    assert answer["after"]["maintenance_quote_quantums"] >= 0
    what_if(engine, sid, Trial(portfolio={market_id: (size, price)}, balances={}))
    assert {s: x.encode() for s, x in engine.state.ledger.subaccounts.items()} == before
    at = GENESIS_NS + BLOCKS * BLOCK_NS
    assert (
        chain.produce_encoded(at, []).header.state_root
        == twin.produce_encoded(at, []).header.state_root
    )


def test_a_what_if_round_trip_leaves_margin_as_it_was() -> None:
    chain = _chain()
    sid, market_id = _holder(chain)
    engine = chain.engine
    params = engine.state.markets[market_id].params
    price = engine.state.markets[market_id].mark_price_quantums // params.tick_quantums
    size = params.step_base_quantums
    fills = ((market_id, size, price * params.tick_quantums),)
    grown = what_if(engine, sid, Trial(fills=fills))
    same = what_if(engine, sid, Trial())
    assert same["before"] == same["after"]
    held = engine.state.ledger.subaccounts[sid].positions[market_id].size_base_quantums
    (position,) = [p for p in grown["positions"] if p["market_id"] == market_id]
    assert position["size_base_quantums"] == held + size


# ── The vaults' owners ──────────────────────────────────────────────────────────────────────


def _options_vault_set_up(venue: Venue, lockup_ns: int) -> OptionsVaultParams:
    params = OptionsVaultParams(
        oracle_id=OracleId("BTC-USD"), hedge_market_id=MarketId("BTC-PERP"),
        quote_size_base_quantums=10_000_000, lockup_ns=lockup_ns,
    )  # fmt: skip
    operator = venue.operator
    accepted(venue, SetupOptionsVault(
        signer=operator.address, nonce=operator.nonce(venue.now), expiry_ns=venue.now + 10**12,
        params=params,
    ))  # fmt: skip
    return params


def _deposit_options(venue: Venue, trader: str, amount: int) -> DepositOptionsVault:
    signer = venue.signers[trader]
    return DepositOptionsVault(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + 10**12,
        subaccount_number=0, amount_quantums=amount,
    )  # fmt: skip


def _withdraw_options(venue: Venue, trader: str, shares: int) -> WithdrawOptionsVault:
    signer = venue.signers[trader]
    return WithdrawOptionsVault(
        signer=signer.address, nonce=signer.nonce(venue.now), expiry_ns=venue.now + 10**12,
        subaccount_number=0, shares=shares,
    )  # fmt: skip


def test_a_vault_owner_is_shown_what_a_redemption_then_pays_and_when() -> None:
    venue = Venue()
    accepted(venue, venue.deposit_vault("alice", 2_500 * USDC))
    accepted(venue, venue.deposit_vault("bob", 1_000 * USDC + 1))
    alice = venue.address("alice")
    deposited_ns = venue.state.vault.owners[alice].last_deposit_ns
    lockup_ns = venue.state.venue.vault.lockup_ns
    venue.advance(lockup_ns + 5 * NS_PER_SECOND, step_ns=60 * NS_PER_SECOND)
    shown = vault_owner(venue.engine, alice)
    assert shown["address"] == alice and shown["unlocked_at_ns"] == deposited_ns + lockup_ns
    assert shown["shares"] == venue.state.vault.owners[alice].shares > 0
    [events] = accepted(venue, venue.withdraw_vault("alice", shown["shares"]))
    [paid] = of_type(events, VaultWithdrawn)
    assert paid.amount_quote_quantums == shown["value_quote_quantums"]
    assert 0 < shown["value_quote_quantums"] <= 2_500 * USDC  # rounded down, never up
    nobody = vault_owner(venue.engine, alice)  # it holds nothing now
    assert (nobody["shares"], nobody["value_quote_quantums"], nobody["unlocked_at_ns"]) == (0, 0, 0)
    VaultOwner.model_validate(human.annotate(shown, human.Scales.of(venue.engine)))


def test_an_options_vault_owner_is_shown_what_a_redemption_then_pays() -> None:
    venue = Venue()
    params = _options_vault_set_up(venue, lockup_ns=60 * NS_PER_SECOND)
    accepted(venue, _deposit_options(venue, "carol", 10_000 * USDC))
    carol = venue.address("carol")
    before = options_vault_owner(venue.engine, carol)
    assert before["set_up"] and before["shares"] > 0
    assert before["unlocked_at_ns"] == venue.now + params.lockup_ns  # deposited in that block
    rejected(venue, _withdraw_options(venue, "carol", before["shares"]), RejectReason.VAULT_LOCKED)
    venue.advance(params.lockup_ns, step_ns=10 * NS_PER_SECOND)
    shown = options_vault_owner(venue.engine, carol)
    [events] = accepted(venue, _withdraw_options(venue, "carol", shown["shares"]))
    [paid] = of_type(events, OptionsVaultWithdrawn)
    assert paid.amount_quote_quantums == shown["value_quote_quantums"] > 0
    OptionsVaultOwner.model_validate(human.annotate(shown, human.Scales.of(venue.engine)))


def test_the_options_vault_shows_each_cap_at_its_nav() -> None:
    venue = Venue()
    params = _options_vault_set_up(venue, lockup_ns=0)
    empty = options_vault(venue.engine)
    assert empty["caps"] == {"vega_quantums": 0, "gamma_quantums": 0, "delta_quantums": 0}
    accepted(venue, _deposit_options(venue, "dave", 50_000 * USDC))
    view = options_vault(venue.engine)
    nav = view["nav_quote_quantums"]
    assert nav == 50_000 * USDC
    assert view["caps"] == {
        "vega_quantums": nav * params.vega_cap_nav_ppm // PPM_ONE,
        "gamma_quantums": nav * params.gamma_cap_nav_ppm // PPM_ONE,
        "delta_quantums": nav * params.delta_cap_nav_ppm // PPM_ONE,
    }  # fmt: skip
    OptionsVault.model_validate(human.annotate(view, human.Scales.of(venue.engine)))


def test_a_venue_without_an_options_vault_says_so_to_its_owners() -> None:
    venue = Venue()
    view = options_vault(venue.engine)
    assert not view["set_up"] and view["caps"] is None and view["exposure"] is None
    owner = options_vault_owner(venue.engine, venue.address("alice"))
    assert owner == {"set_up": False, "address": venue.address("alice"), "shares": 0,
                     "value_quote_quantums": 0, "unlocked_at_ns": 0}  # fmt: skip


def test_a_what_if_ranks_adl_queues_as_lagged_as_the_account_views(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A what-if ranked the whole ADL queue of each of its positions' markets again after every
    block (the first read of a block: an equity per holder, 0.8 s for 100,000 holders, under the
    writer's lock), then sorted it again for each position: one unsigned request a block, from
    anyone, held every block up. It now reads the ranking the account views use (up to
    ``ADL_RANK_LAG_NS`` of block time old) and finds its rank by bisection; the rank is the
    one the queue sorted with the trial's position would give."""
    chain = _chain()
    sid, market_id = _holder(chain)
    engine = chain.engine
    ranked: list[MarketId] = []
    rank_queue = insolvency.adl_queue

    def counted(ctx: Any, market: MarketId, closing: Side) -> list[AdlCandidate]:
        ranked.append(market)
        return rank_queue(ctx, market, closing)

    monkeypatch.setattr(insolvency, "adl_queue", counted)
    grow = engine.state.markets[market_id].params.step_base_quantums
    mark = engine.state.markets[market_id].mark_price_quantums
    price = mark - mark % engine.state.markets[market_id].params.tick_quantums
    trial = Trial(fills=((market_id, grow, price),))
    first = what_if(engine, sid, trial)
    assert ranked
    ranked.clear()
    chain.produce_encoded(engine.state.timestamp_ns + ADL_RANK_LAG_NS // 5, [])
    assert what_if(engine, sid, trial)["positions"] == first["positions"]
    assert ranked == []  # the ranking of the block before serves
    # The rank, as the queue sorted with the trial's position in it says.
    after = preview_module._trial_copy(engine.ctx, engine.state.ledger.subaccounts[sid], trial)
    held = after.positions[market_id]
    closing = Side.BUY if held.size_base_quantums > 0 else Side.SELL
    others = [c for c in engine.adl_queue(market_id, closing) if c.subaccount_id != sid]
    equity = engine.risk_of(after).equity
    ours = adl_candidate(sid, held, engine.market_risk(market_id), equity)
    queue = adl_order([*others, ours])
    (position,) = [p for p in first["positions"] if p["market_id"] == market_id]
    assert position["adl_rank"] == {"rank": queue.index(ours) + 1, "of": len(queue)}
