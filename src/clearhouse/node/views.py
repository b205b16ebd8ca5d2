"""Read-only JSON views of the engine's state, for the API. Callers hold the sequencer's lock."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from clearhouse.core import limits
from clearhouse.core.codec import to_plain
from clearhouse.core.engine import Engine, Trial
from clearhouse.core.ids import QUOTE_ASSET, Address, MarketId, SubaccountId
from clearhouse.core.ledger import (
    FUND_BOOK,
    INSURANCE,
    OPTIONS_VAULT,
    VAULT,
    Subaccount,
)
from clearhouse.core.margin import (
    Risk,
    pending_funding,
)
from clearhouse.core.options_vault import Caps
from clearhouse.core.state import MarketState, OptionsVaultState, VaultState
from clearhouse.core.vault import quote_for_shares
from clearhouse.node import human

# An account view's ADL ranks come from a ranking up to half a second of block time old (an
# account view may lag that much anyway, ``viewcache``): ranking every holder is the one
# costly step of a view, and it must not run under the writer's lock every block.
ADL_RANK_LAG_NS = 500_000_000


def market(engine: Engine, state: MarketState) -> dict[str, Any]:
    params = state.params
    oracle = engine.state.oracles.get(params.oracle_id)
    return {
        "market_id": params.market_id,
        "kind": params.kind.name.lower(),
        "status": state.status.name.lower(),
        "oracle_id": params.oracle_id,
        "index_price_quantums": 0 if oracle is None else oracle.index_price_quantums,
        "oracle_status": "unknown" if oracle is None else oracle.status.name.lower(),
        "mark_price_quantums": state.mark_price_quantums,
        "last_trade_price_quantums": state.last_trade_price_quantums,
        "best_bid_quantums": state.book.best_bid(),
        "best_ask_quantums": state.book.best_ask(),
        "open_interest_base_quantums": state.open_interest_base_quantums,
        "next_funding_ns": state.next_funding_ns,
        "cumulative_funding_ppb": state.cumulative_funding_ppb,
        "expiry_ns": params.expiry_ns,
        # what a dated market is valued on (options are marked on it): its expiry's forward
        "forward_price_quantums": _forward(engine, state),
        "settlement_price_quantums": state.settlement_price_quantums,
        "params": to_plain(params),
    }


def _forward(engine: Engine, state: MarketState) -> int:
    params = state.params
    oracle = engine.state.oracles.get(params.oracle_id)
    if oracle is None:
        return 0
    if params.expiry_ns == 0:
        return oracle.index_price_quantums
    return engine.forward(params.oracle_id, params.expiry_ns)


def subaccount(engine: Engine, sub: Subaccount) -> dict[str, Any]:
    risk = engine.risk_of(sub)
    portfolio = sub.subaccount_id in engine.state.portfolio_margin
    return {
        "subaccount": str(sub.subaccount_id),
        "number": sub.subaccount_id.number,
        "margin_mode": "portfolio" if portfolio else "standard",
        "balances": dict(sorted(sub.balances.items())),
        "balances_in_units": {
            a: human.units(q, engine.state.assets[a].quantums_per_unit)
            for a, q in sorted(sub.balances.items())
        },
        "positions": [position(engine, sub, m) for m in sorted(sub.positions)],
        "margin": _margin(risk),
        "greeks": {
            underlying: values.as_dict()
            for underlying, values in engine.greeks(sub.subaccount_id).items()
        },
        "under_liquidation": sub.subaccount_id in engine.state.liquidations,
        "open_orders": len(sub.order_ids),
    }


def position(engine: Engine, sub: Subaccount, market_id: MarketId) -> dict[str, Any]:
    held = sub.positions[market_id]
    state = engine.state.markets.get(market_id)
    mark = 0 if state is None else state.mark_price_quantums
    units = 1 if state is None else state.params.base_quantums_per_unit
    value = held.size_base_quantums * mark // units  # floor: informational only
    rank = engine.adl_rank(sub.subaccount_id, market_id, ADL_RANK_LAG_NS)
    pending = 0 if state is None else pending_funding(held, engine.market_risk(market_id))
    return {
        **held.encode(),
        "market_id": market_id,
        "size_base_quantums": held.size_base_quantums,
        "cost_quote_quantums": held.cost_quote_quantums,
        "mark_price_quantums": mark,
        "unrealized_pnl_quote_quantums": value - held.cost_quote_quantums,
        "funding_pending_quote_quantums": pending,  # + owed to it; settled at its next change
        "adl_rank": None if rank is None else {"rank": rank[0], "of": rank[1]},
    }


def account(engine: Engine, owner: Address) -> dict[str, Any]:
    return assemble_account(owner, [part() for part in account_parts(engine, owner)])


def account_parts(engine: Engine, owner: Address) -> list[Callable[[], object]]:
    """An account's view in parts, each readable under the lock on its own: the agents, then
    each subaccount. Found by number (at most ``subaccounts_per_account_max`` lookups), never
    by a scan of the venue's subaccounts."""
    ledger = engine.state.ledger.subaccounts
    found = [
        ledger[sid]
        for number in range(limits.subaccounts_per_account_max)
        if (sid := SubaccountId(owner, number)) in ledger
    ]

    def agents() -> object:
        held = engine.state.agents.get(owner, {})
        return [{"agent": a, "valid_until_ns": t} for a, t in sorted(held.items())]

    return [agents, *(partial(_subaccount_if_there, engine, s.subaccount_id) for s in found)]


def _subaccount_if_there(engine: Engine, sid: SubaccountId) -> dict[str, Any] | None:
    found = engine.state.ledger.subaccounts.get(sid)
    return None if found is None else subaccount(engine, found)


def assemble_account(owner: Address, parts: list[object]) -> dict[str, Any]:
    agents, *subaccounts = parts
    return {
        "address": owner,
        "subaccounts": [s for s in subaccounts if s is not None],
        "agents": agents,
    }


def open_orders(engine: Engine, owner: Address, number: int) -> list[dict[str, Any]]:
    sub = engine.state.ledger.subaccounts.get(SubaccountId(owner, number))
    if sub is None:
        return []
    found = []
    for order_id, market_id in sorted(sub.order_ids.items()):
        state = engine.state.markets[market_id]
        resting = state.book.get(order_id)
        if resting is not None:
            found.append({"market_id": market_id, "kind": "resting", "order_kind": "resting",
                          **resting.encode(), "side": resting.side.name.lower()})  # fmt: skip
        elif order_id in state.triggers:
            trigger = state.triggers[order_id]
            found.append({"market_id": market_id, "kind": "trigger", "order_kind": "trigger",
                          **to_plain(trigger), "side": trigger.side.name.lower()})  # fmt: skip
    return found


def insurance(engine: Engine) -> dict[str, Any]:
    """The fund's quote, and its book: the positions it took over and is unwinding."""
    book = engine.state.ledger.subaccounts.get(FUND_BOOK)
    return {
        "balance_quote_quantums": engine.state.ledger.balance(INSURANCE, QUOTE_ASSET),
        "asset": QUOTE_ASSET,
        "book": None if book is None else subaccount(engine, book),
    }


def vault(engine: Engine) -> dict[str, Any]:
    """The market-making vault: NAV (its subaccount's equity), shares, share price, its
    subaccount (positions, resting quotes' margin), its standing quotes and its parameters."""
    state = engine.state.vault
    sub = engine.state.ledger.subaccounts.get(VAULT)
    return {
        "subaccount_id": str(VAULT),
        "nav_quote_quantums": _nav(engine, VAULT),
        "total_shares": state.total_shares,
        "owners": len(state.owners),
        "subaccount": None if sub is None else subaccount(engine, sub),
        "quotes": {m: to_plain(q) for m, q in sorted(state.quotes.items())},
        "params": to_plain(engine.state.venue.vault),
    }


def options_vault(engine: Engine) -> dict[str, Any]:
    """The options AMM: whether the venue set it up, NAV, shares, its book's vega, gamma and
    delta values and each one's cap at this NAV (``core/options_vault.Caps``), the options it
    quotes and its hedge on the perpetual, its parameters."""
    state = engine.state.options_vault
    params = state.params
    sub = engine.state.ledger.subaccounts.get(OPTIONS_VAULT)
    nav = _nav(engine, OPTIONS_VAULT)
    exposure = engine.options_vault_exposure()
    hedge = None if params is None or sub is None else sub.position_size(params.hedge_market_id)
    return {
        "set_up": params is not None,
        "subaccount_id": str(OPTIONS_VAULT),
        "nav_quote_quantums": nav,
        "total_shares": state.total_shares,
        "owners": len(state.owners),
        "exposure": None if exposure is None else to_plain(exposure),
        "caps": None if params is None else to_plain(Caps.of(params, nav)),
        "hedge_position_base_quantums": hedge or 0,
        "hedged_at_ns": state.hedged_ns,
        "quoted_markets": len(state.quotes),
        "quotes": {m: to_plain(q) for m, q in sorted(state.quotes.items())},
        "subaccount": None if sub is None else subaccount(engine, sub),
        "params": None if params is None else to_plain(params),
    }


def vault_owner(engine: Engine, owner: Address) -> dict[str, Any]:
    """One owner of the market-making vault (``share_owner``)."""
    lockup_ns = engine.state.venue.vault.lockup_ns
    return share_owner(engine, engine.state.vault, VAULT, owner, lockup_ns=lockup_ns)


def options_vault_owner(engine: Engine, owner: Address) -> dict[str, Any]:
    """One owner of the options vault (``share_owner``), and whether the venue has one."""
    params = engine.state.options_vault.params
    lockup_ns = 0 if params is None else params.lockup_ns
    book = engine.state.options_vault
    return {
        "set_up": params is not None,
        **share_owner(engine, book, OPTIONS_VAULT, owner, lockup_ns=lockup_ns),
    }


def share_owner(
    engine: Engine, book: VaultState | OptionsVaultState, vault_id: SubaccountId,
    owner: Address, *, lockup_ns: int,
) -> dict[str, Any]:  # fmt: skip
    """One owner's shares of a vault, what they would redeem for at NAV now (the redemption's
    own arithmetic and rounding, ``core/vault.quote_for_shares``), and when its lock-up ends
    (0: it holds none)."""
    held = book.owners.get(owner)
    shares = 0 if held is None else held.shares
    worth = 0
    if shares:
        nav = _nav(engine, vault_id)
        worth = quote_for_shares(shares, nav_quantums=nav, total_shares=book.total_shares)
    return {
        "address": owner,
        "shares": shares,
        "value_quote_quantums": worth,
        "unlocked_at_ns": 0 if held is None else held.last_deposit_ns + lockup_ns,
    }


def _nav(engine: Engine, vault_id: SubaccountId) -> int:
    """A vault's NAV: its subaccount's equity (0 before its first deposit)."""
    sub = engine.state.ledger.subaccounts.get(vault_id)
    return 0 if sub is None else engine.risk_of(sub).equity


def liquidations_now(engine: Engine) -> list[dict[str, Any]]:
    return [
        {
            "subaccount": str(sid),
            "since_ns": status.since_ns,
            "auction": None if status.auction is None else to_plain(status.auction),
        }
        for sid, status in sorted(engine.state.liquidations.items())
    ]


def nonces(engine: Engine, signer: Address) -> dict[str, Any]:
    used = engine.state.nonces.get(signer, [])
    return {
        "signer": signer,
        "highest": used[-1] if used else None,
        "lowest_kept": used[0] if used else None,
        "kept": len(used),
        "window_past_ns": engine.state.venue.nonce_window_past_ns,
        "window_future_ns": engine.state.venue.nonce_window_future_ns,
        "block_timestamp_ns": engine.state.timestamp_ns,
    }


# ── What-if ────────────────────────────────────────────────────────────────────────────────


def what_if(engine: Engine, subaccount_id: SubaccountId, trial: Trial) -> dict[str, Any]:
    """The subaccount's margin before and after ``trial``, from the engine's own preview
    (``Engine.preview``: the trade path's fold of each fill, the one margin gate's decision),
    its health, and per position the liquidation price and the ADL rank it would have (among
    the others as the account views rank them: ``ADL_RANK_LAG_NS``; a what-if is unsigned and
    uncached, and must not rank every holder under the writer's lock every block)."""
    found = engine.preview(subaccount_id, trial, ADL_RANK_LAG_NS)
    return {
        "subaccount": str(subaccount_id),
        "committed": False,
        "before": _margin(found.before),
        "after": _margin(found.after),
        "health": _health(found.after),
        "margin_check": None if found.refusal is None else found.refusal.name,
        "positions": [
            {"market_id": p.market_id, "size_base_quantums": p.size_base_quantums,
             "liquidation_price_quantums": p.liquidation_price_quantums,
             "adl_rank": None if p.adl_rank is None
             else {"rank": p.adl_rank[0], "of": p.adl_rank[1]}}
            for p in found.positions
        ],
    }  # fmt: skip


def _margin(risk: Risk) -> dict[str, Any]:
    return {
        "equity_quote_quantums": risk.equity,
        "initial_quote_quantums": risk.initial,
        "maintenance_quote_quantums": risk.maintenance,
        "free_collateral_quote_quantums": risk.free_collateral,
        "withdrawable_quote_quantums": risk.withdrawable_quote,
        "prices_usable": risk.usable,
        "liquidatable": risk.liquidatable,
    }


def _health(risk: Risk) -> dict[str, Any]:
    status = "healthy"
    if risk.liquidatable:
        status = "liquidatable"
    elif not risk.satisfies_initial:
        status = "below_initial"
    ratio = None if risk.maintenance <= 0 else human.units(risk.equity * 10**6 // risk.maintenance,
                                                           10**6)  # fmt: skip
    return {"status": status, "equity_to_maintenance": ratio}
