"""The end of a block: fold each piece of state the block touched into its state-root leaf
(or delete the leaf). Leaf keys and encodings are in ``core/state.py``.
"""

from __future__ import annotations

from clearhouse.core import limits
from clearhouse.core.codec import to_plain
from clearhouse.core.engine.context import Context
from clearhouse.core.ids import (
    OracleId,
    OrderId,
)
from clearhouse.core.merkle import StateTree
from clearhouse.core.state import (
    COUNTERS_KEY,
    GOVERNANCE_KEY,
    OPTIONS_VAULT_KEY,
    VAULT_KEY,
    agent_key,
    encode_leaf,
    forward_curve_key,
    governed_market_key,
    governed_param_key,
    liquidation_key,
    margin_mode_key,
    market_key,
    nonce_key,
    options_vault_owner_key,
    oracle_key,
    order_key,
    params_key,
    proposal_key,
    scheduled_cancel_key,
    series_key,
    subaccount_key,
    system_key,
    twap_slot_key,
    vault_owner_key,
)


def flush_dirty(ctx: Context) -> None:
    """Re-encode each changed piece of state into its leaf (or delete the leaf)."""
    state = ctx.state
    tree = state.tree
    flush_archived(ctx)  # first: an id listed again in this block writes anew below
    tree.set(COUNTERS_KEY, encode_leaf(state.counters()))
    for subaccount_id in ctx.touched.subaccounts:
        found = state.ledger.subaccounts.get(subaccount_id)
        _set_or_delete(tree, subaccount_key(subaccount_id), found.encode() if found else None)
    for account in ctx.touched.system:
        balances = state.ledger.system.get(account, {})
        _set_or_delete(tree, system_key(account), dict(sorted(balances.items())) or None)
    for market_id in ctx.touched.markets:
        tree.set(market_key(market_id), state.markets[market_id].leaf())
    for oracle_id in ctx.touched.oracles:
        oracle = state.oracles[OracleId(oracle_id)]
        tree.set(oracle_key(oracle.params.oracle_id), encode_leaf(oracle.encode()))
    for order_id in ctx.touched.orders:
        _set_or_delete(tree, order_key(order_id), order_leaf(ctx, order_id))
    for signer in ctx.touched.nonces:
        _set_or_delete(tree, nonce_key(signer), state.nonces.get(signer))
    for subaccount_id in ctx.touched.liquidations:
        status = state.liquidations.get(subaccount_id)
        _set_or_delete(
            tree, liquidation_key(subaccount_id), None if status is None else status.encode()
        )
    flush_options(ctx)
    flush_vault(ctx)
    flush_options_vault(ctx)
    flush_governance(ctx)
    for oracle_id in sorted(ctx.touched.forward_curves):
        curve = state.forward_curves.get(oracle_id)
        _set_or_delete(tree, forward_curve_key(oracle_id), None if curve is None else list(curve))
    ctx.touched.forward_curves.clear()
    for key, plain in ctx.touched.params.items():
        tree.set(key, encode_leaf(plain))
    ctx.touched.params.clear()
    for (oracle_id, slot), sample in ctx.touched.twap_slots.items():
        tree.set(twap_slot_key(oracle_id, slot), encode_leaf(list(sample)))
    ctx.touched.twap_slots.clear()
    for dirty in (
        ctx.touched.subaccounts, ctx.touched.system, ctx.touched.markets,
        ctx.touched.oracles, ctx.touched.orders, ctx.touched.nonces,
        ctx.touched.liquidations, ctx.touched.modes, ctx.touched.series, ctx.touched.agents,
        ctx.touched.scheduled_cancels,
    ):  # fmt: skip
        dirty.clear()


def flush_archived(ctx: Context) -> None:
    for market_id in sorted(ctx.touched.archived):
        keys = (market_key(market_id), params_key("market", market_id))
        for key in (*keys, governed_market_key(market_id)):
            _set_or_delete(ctx.state.tree, key, None)
    ctx.touched.archived.clear()


def flush_governance(ctx: Context) -> None:
    """``gov`` (who governs), ``gov/proposal/<id>``, ``gov/param/<name>/<target>`` (the
    parameter's recent changes) and ``gov/market/<id>`` (flags, phase-in, fallback price)."""
    touched = ctx.touched
    gov = ctx.state.governance
    if gov is None:
        return
    tree = ctx.state.tree
    if touched.governance:
        tree.set(GOVERNANCE_KEY, encode_leaf(gov.encode()))
        touched.governance = False
    for proposal_id in sorted(touched.proposals):
        tree.set(proposal_key(proposal_id), encode_leaf(gov.proposals[proposal_id].encode()))
    touched.proposals.clear()
    for name, target in sorted(touched.governed_params):
        changes = [to_plain(change) for change in gov.history[(name, target)]]
        tree.set(governed_param_key(name, target), encode_leaf(changes))
    touched.governed_params.clear()
    for market_id in sorted(touched.governed_markets):
        _set_or_delete(tree, governed_market_key(market_id), gov.market_leaf(market_id))
    touched.governed_markets.clear()


def flush_options(ctx: Context) -> None:
    state = ctx.state
    for subaccount_id in ctx.touched.modes:
        portfolio = subaccount_id in state.portfolio_margin
        leaf = "portfolio" if portfolio else None
        _set_or_delete(state.tree, margin_mode_key(subaccount_id), leaf)
    for account in ctx.touched.agents:
        found = state.agents.get(account)
        _set_or_delete(state.tree, agent_key(account), None if found is None else found)
    for subaccount_id in ctx.touched.scheduled_cancels:
        at_ns = state.scheduled_cancels.get(subaccount_id)
        _set_or_delete(state.tree, scheduled_cancel_key(subaccount_id), at_ns)
    for oracle_id in ctx.touched.series:
        series_leaf = state.option_series[oracle_id].encode()
        state.tree.set(series_key(oracle_id), encode_leaf(series_leaf))


def flush_vault(ctx: Context) -> None:
    """The vault's leaf (``vault``: total shares and standing quotes) and one leaf per owner
    (``vault/<address>``: shares and last deposit time), deleted when it holds none."""
    vault = ctx.state.vault
    if ctx.touched.vault:
        empty = not vault.total_shares and not vault.quotes
        _set_or_delete(ctx.state.tree, VAULT_KEY, None if empty else vault.encode())
        ctx.touched.vault = False
    for owner in sorted(ctx.touched.vault_owners):
        found = vault.owners.get(owner)
        _set_or_delete(
            ctx.state.tree, vault_owner_key(owner), None if found is None else found.encode()
        )
    ctx.touched.vault_owners.clear()


def flush_options_vault(ctx: Context) -> None:
    """The options vault's leaf (``ovault``: parameters, total shares, standing quotes, last
    hedge), written only on a venue that set one up, and one leaf per owner
    (``ovault/<address>``), deleted when it holds none."""
    vault = ctx.state.options_vault
    if ctx.touched.options_vault:
        encoded = None if vault.params is None else vault.encode()
        _set_or_delete(ctx.state.tree, OPTIONS_VAULT_KEY, encoded)
        ctx.touched.options_vault = False
    for owner in sorted(ctx.touched.options_vault_owners):
        found = vault.owners.get(owner)
        _set_or_delete(
            ctx.state.tree, options_vault_owner_key(owner),
            None if found is None else found.encode(),
        )  # fmt: skip
    ctx.touched.options_vault_owners.clear()


def order_leaf(ctx: Context, order_id: OrderId) -> object | None:
    market_id = ctx.state.order_markets.get(order_id)
    if market_id is not None:
        order = ctx.state.markets[market_id].book.get(order_id)
        assert order is not None
        return {"market": market_id, **order.encode()}
    for market in ctx.state.markets.values():
        trigger = market.triggers.get(order_id)
        if trigger is not None:
            return {"market": market.params.market_id, "trigger": to_plain(trigger)}
    return None


def _set_or_delete(tree: StateTree, key: bytes, value: object | None) -> None:
    if value is None:
        tree.discard(key)  # absent or not: the engine's tree cannot tell without a walk
        return
    tree.set(key, encode_leaf(value))


def touch_everything(ctx: Context) -> None:
    """Mark every piece of state touched, so that the next ``flush_dirty`` writes every leaf:
    how a state built without the tree (a snapshot's, or a venue written directly) gets its
    root. The root it gives equals the incremental one (a property test checks it)."""
    state = ctx.state
    touched = ctx.touched
    touched.subaccounts.update(state.ledger.subaccounts)
    touched.system.update(state.ledger.system)
    touched.markets.update(state.markets)
    touched.oracles.update(state.oracles)
    for market in state.markets.values():
        touched.orders.update(order.order_id for order in market.book.orders())
        touched.orders.update(market.triggers)
        touched.params[params_key("market", market.params.market_id)] = to_plain(market.params)
    touched.nonces.update(state.nonces)
    touched.liquidations.update(state.liquidations)
    touched.modes.update(state.portfolio_margin)
    touched.series.update(state.option_series)
    touched.agents.update(state.agents)
    touched.scheduled_cancels.update(state.scheduled_cancels)
    touched.vault = True
    touched.vault_owners.update(state.vault.owners)
    touched.options_vault = True
    touched.options_vault_owners.update(state.options_vault.owners)
    touched.forward_curves.update(state.forward_curves)
    if state.governance is not None:
        touched.governance = True
        touched.proposals.update(state.governance.proposals)
        touched.governed_params.update(state.governance.history)
        touched.governed_markets.update(state.markets)
    for oracle in state.oracles.values():
        oracle_id = oracle.params.oracle_id
        touched.params[params_key("oracle", oracle_id)] = to_plain(oracle.params)
        taken = oracle.twap_samples_taken
        for back, sample in enumerate(reversed(oracle.twap_samples)):
            slot = (taken - 1 - back) % limits.twap_samples_max
            touched.twap_slots[(oracle_id, slot)] = sample
    for asset in state.assets.values():
        touched.params[params_key("asset", asset.asset_id)] = to_plain(asset)
