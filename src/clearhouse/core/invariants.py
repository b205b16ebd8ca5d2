"""The invariants of §16 that can be read off the state, checked by recomputation.

``check(state)`` recomputes every cached aggregate from first principles and raises
``InvariantViolation`` naming the first that disagrees. Tests and the simulator run it after every
command; a node may run it every block. It is read-only.
"""

from __future__ import annotations

from clearhouse.core.errors import InvariantViolation
from clearhouse.core.governance import REGISTRY, ProposalStatus
from clearhouse.core.ids import QUOTE_ASSET, MarketId, OrderId, Side, SubaccountId
from clearhouse.core.ledger import (
    DEFICIT,
    INSURANCE,
    OpenOrders,
    clearing_account,
    funding_account,
)
from clearhouse.core.limits import nonces_kept_per_signer
from clearhouse.core.state import EngineState, GovernanceState, MarketState, MarketStatus
from clearhouse.core.units import PPB_ONE


def check(state: EngineState) -> None:
    _fail_if(_conservation(state))
    for market_id in sorted(state.markets):
        _fail_if(_market(state, market_id))
    _fail_if(_orders_registry(state))
    _fail_if(_nonces(state))
    _fail_if(_vault(state))
    _fail_if(_governance(state))


def _governance(state: EngineState) -> str | None:
    """Open proposals are exactly those pending or queued; every governed parameter lies in
    its hard bounds; phase-ins, pauses and fallback prices name listed markets, and a fallback
    price only an expired one."""
    gov = state.governance
    if gov is None:
        return None
    open_ids = {i for i, p in gov.proposals.items() if p.status in _OPEN}
    if open_ids != gov.open_proposals:
        return "governance: the open proposals disagree with their statuses"
    named = gov.paused | gov.reduce_only | gov.phases.keys() | gov.fallbacks.keys()
    if not named <= state.markets.keys():
        return "governance: a market flag, phase-in or fallback names no listed market"
    if any(state.markets[m].status is not MarketStatus.EXPIRED for m in gov.fallbacks):
        return "governance: a fallback settlement price for a market that is not expired"
    return _governed_in_bounds(gov)


def _governed_in_bounds(gov: GovernanceState) -> str | None:
    for (name, target), changes in sorted(gov.history.items()):
        entry = REGISTRY[name]
        if not entry.lower <= changes[-1].new_value <= entry.upper:
            return f"governance: {name} of {target or 'the venue'} outside its bounds"
    return None


_OPEN = (ProposalStatus.PENDING, ProposalStatus.QUEUED)


def _vault(state: EngineState) -> str | None:
    """Each vault's total shares are exactly its owners' shares, each owner holding some."""
    for name, vault in (("vault", state.vault), ("options vault", state.options_vault)):
        owners = vault.owners.values()
        if any(owner.shares <= 0 for owner in owners):
            return f"a {name} owner holds no shares"
        if vault.total_shares != sum(owner.shares for owner in owners):
            return f"{name}: total shares {vault.total_shares} != the owners' sum"
    return None


def _fail_if(problem: str | None) -> None:
    if problem is not None:
        raise InvariantViolation(problem)


def _conservation(state: EngineState) -> str | None:
    """Every asset sums to exactly zero over all ledger accounts; the fund is never negative."""
    for asset_id, total in sorted(state.ledger.totals().items()):
        if total != 0:
            return f"conservation: {asset_id} sums to {total}, not 0"
    if state.ledger.balance(INSURANCE, QUOTE_ASSET) < 0:
        return "insurance fund is negative"
    if state.ledger.balance(DEFICIT, QUOTE_ASSET) > 0:
        return "the deficit account holds value: it may only record socialized loss"
    return _bad_debt(state)


def _bad_debt(state: EngineState) -> str | None:
    """No negative balance without an explicit bad-debt entry: a subaccount with no position
    and only quote can owe nothing (its loss was drawn from the fund or socialized)."""
    for subaccount in state.ledger.subaccounts.values():
        if subaccount.positions or set(subaccount.balances) - {QUOTE_ASSET}:
            continue
        if subaccount.balance(QUOTE_ASSET) < 0:
            return f"{subaccount.subaccount_id} owes {subaccount.balance(QUOTE_ASSET)} unrecorded"
    return None


def _market(state: EngineState, market_id: MarketId) -> str | None:
    market = state.markets[market_id]
    longs = shorts = cost = owed_e9 = 0
    holders: set[SubaccountId] = set()
    for subaccount in state.ledger.subaccounts.values():
        position = subaccount.positions.get(market_id)
        if position is None:
            continue
        if position.size_base_quantums == 0:
            return f"{market_id}: a flat position is kept for {subaccount.subaccount_id}"
        holders.add(subaccount.subaccount_id)
        longs += max(position.size_base_quantums, 0)
        shorts += max(-position.size_base_quantums, 0)
        cost += position.cost_quote_quantums
        owed_e9 += position.size_base_quantums * (
            market.funding_index_e9 - position.funding_index_e9
        )
    if longs != shorts:
        return f"{market_id}: open interest long {longs} != short {shorts}"
    if longs != market.open_interest_base_quantums:
        return f"{market_id}: cached open interest {market.open_interest_base_quantums} != {longs}"
    if holders != set(market.holders):
        return f"{market_id}: cached holders differ from positions"
    clearing = state.ledger.balance(clearing_account(market_id), QUOTE_ASSET)
    if clearing + cost != 0:
        return f"{market_id}: clearing {clearing} + summed cost {cost} != 0 (zero-sum PnL)"
    pool = state.ledger.balance(funding_account(market_id), QUOTE_ASSET)
    # What the funding account holds plus what positions still owe it, exactly: each
    # settlement rounds against its account, so this is the rounding residue, never < 0.
    if pool * market.params.base_quantums_per_unit * PPB_ONE + owed_e9 < 0:
        return f"{market_id}: funding account {pool} cannot pay what positions are owed"
    return _book(state, market)


def _book(state: EngineState, market: MarketState) -> str | None:
    market.book.check_invariants()  # never crossed; levels equal recomputation
    market_id = market.params.market_id
    expected: dict[SubaccountId, OpenOrders] = {}
    per_unit = market.params.base_quantums_per_unit
    for order in market.book.orders():
        if state.order_markets.get(order.order_id) != market_id:
            return f"{market_id}: order {order.order_id} missing from the order index"
        aggregate = expected.setdefault(order.owner, OpenOrders())
        notional = order.remaining_base_quantums * order.price_quantums // per_unit
        if order.side is Side.BUY:
            aggregate.bid_base_quantums += order.remaining_base_quantums
            aggregate.bid_notional_quote_quantums += notional
        else:
            aggregate.ask_base_quantums += order.remaining_base_quantums
            aggregate.ask_notional_quote_quantums += notional
        aggregate.count += 1
        aggregate.reduce_only_count += order.reduce_only
    for subaccount in state.ledger.subaccounts.values():
        cached = subaccount.open_orders.get(market_id, OpenOrders())
        if cached != expected.get(subaccount.subaccount_id, OpenOrders()):
            return f"{market_id}: open-order aggregates of {subaccount.subaccount_id} differ"
    return None


def _orders_registry(state: EngineState) -> str | None:
    registered: dict[OrderId, MarketId] = {}
    for subaccount in state.ledger.subaccounts.values():
        registered.update(subaccount.order_ids)
        for client_id, order_id in subaccount.client_order_ids.items():
            if order_id not in subaccount.order_ids:
                return f"client order id {client_id} points at a closed order {order_id}"
    live: dict[OrderId, MarketId] = dict(state.order_markets)
    for market_id, market in state.markets.items():
        for order_id in market.triggers:
            live[order_id] = market_id
    if registered != live:
        return "subaccount order registries differ from books and triggers"
    return None


def _nonces(state: EngineState) -> str | None:
    for signer, used in state.nonces.items():
        if len(used) > nonces_kept_per_signer or used != sorted(set(used)):
            return f"nonce set of {signer} is unsorted, repeated or too large"
    return None
