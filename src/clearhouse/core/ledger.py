"""The double-entry ledger: every balance change is a transfer whose deltas sum to zero.

Ledger accounts are user subaccounts and the venue's system accounts:

* ``custody``: the outside world. Deposits move value out of it, withdrawals into it, so its
  balance is minus everything the venue holds: the sum over all accounts is always exactly zero.
* ``insurance``: the insurance fund (funding and settlement rounding residue lands here).
* ``fees``: the fee pool.
* ``deficit``: socialized loss, recorded explicitly (§7).
* ``seized``: the buyer of last resort of bankrupt accounts' volatile collateral, at the index:
  it holds that collateral against a negative quote balance until governance sells it.
* ``clearing:<market>``: the counterparty of realized PnL. It holds minus the summed cost basis
  of the market's open positions, so realized profit is paid out of it and losses into it.
* ``funding:<market>``: a transit account that must be empty after each funding payment.

Subaccount balances live on the ``Subaccount`` (fast access for margin); system balances in
``Ledger.system``. Quote balances may go negative (a loss beyond collateral); that is equity the
liquidation protocol deals with, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NoReturn

from clearhouse.core import limits
from clearhouse.core.ids import QUOTE_ASSET, Address, AssetId, MarketId, OrderId, SubaccountId


@dataclass(frozen=True, slots=True, order=True)
class SystemAccount:
    name: str

    def __str__(self) -> str:
        return self.name


CUSTODY = SystemAccount("custody")
INSURANCE = SystemAccount("insurance")
FEES = SystemAccount("fees")
DEFICIT = SystemAccount("deficit")
SEIZED = SystemAccount("seized")


# The insurance fund's trading book: the subaccount in which the fund holds the positions it
# takes over from liquidated accounts and unwinds on the book. Nobody holds a key for this
# address, so no command can ever be signed for it.
FUND_BOOK = SubaccountId(Address("0x" + "0" * 36 + "f00d"), 0)


# The market-making vault (SPEC §11): the subaccount whose equity is the vault's NAV. It quotes,
# backstops liquidations, and is margined and liquidated like any subaccount. Nobody holds a key
# for this address either: its orders are placed by the engine, its quote moves only through
# ``DepositVault`` and ``WithdrawVault`` (and trading).
VAULT = SubaccountId(Address("0x" + "0" * 35 + "7a017"), 0)

# The options vault (SPEC §11, the options AMM): its equity is that vault's NAV; it holds the
# options it quoted and their hedge on the perpetual, in portfolio margin. No key either.
OPTIONS_VAULT = SubaccountId(Address("0x" + "0" * 33 + "0b7a017"), 0)


@lru_cache(maxsize=4_096)  # one per market: every fill's realized PnL and every funding payment
def clearing_account(market_id: MarketId) -> SystemAccount:
    return SystemAccount(f"clearing:{market_id}")


@lru_cache(maxsize=4_096)
def funding_account(market_id: MarketId) -> SystemAccount:
    return SystemAccount(f"funding:{market_id}")


AccountKey = SubaccountId | SystemAccount


@dataclass(frozen=True, slots=True)
class Transfer:
    """A movement of ``amount_quantums`` of ``asset_id`` from ``source`` to ``target``.

    The deltas are (-amount, +amount): they sum to zero by construction.
    """

    source: AccountKey
    target: AccountKey
    asset_id: AssetId
    amount_quantums: int

    def __post_init__(self) -> None:
        assert self.amount_quantums > 0, self
        assert self.amount_quantums <= limits.amount_quantums_max, self
        assert self.source != self.target, self


@dataclass(slots=True)
class Position:
    """A signed position in one market. ``cost_quote_quantums`` is the summed signed entry
    notional: positive for a long, negative for a short, zero when flat."""

    market_id: MarketId
    size_base_quantums: int = 0
    cost_quote_quantums: int = 0
    funding_paid_quote_quantums: int = 0  # cumulative, informational: >0 means paid out
    funding_index_e9: int = 0  # the market's funding index when funding was last settled

    def encode(self) -> dict[str, int | str]:
        return {
            "market": self.market_id,
            "size": self.size_base_quantums,
            "cost": self.cost_quote_quantums,
            "funding_paid": self.funding_paid_quote_quantums,
            "funding_index": self.funding_index_e9,
        }


@dataclass(slots=True)
class OpenOrders:
    """Cached aggregates of one subaccount's resting orders in one market (for worst-side IM).

    Cached aggregates must equal recomputation from the book: the invariant checker does it.
    """

    bid_base_quantums: int = 0
    bid_notional_quote_quantums: int = 0
    ask_base_quantums: int = 0
    ask_notional_quote_quantums: int = 0
    count: int = 0
    reduce_only_count: int = 0  # lets a fill skip the reduce-only sweep when there are none

    def is_empty(self) -> bool:
        """No resting size on either side (sizes, not the count, decide what margin sees)."""
        return self.bid_base_quantums == 0 and self.ask_base_quantums == 0


class _NoEntries(dict[Any, Any]):
    """The empty, read-only dict shared by every subaccount that rests no order or holds no
    asset but the quote: most of a venue's subaccounts never do, and four empty dicts are ~250
    bytes a subaccount. A write to it is a bug: writers take the subaccount's own dict first
    (``own_*``, ``set_balance``)."""

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("a write to the shared empty dict of a subaccount without orders")

    # One name a line: the compiled build (mypyc) takes no chained assignment in a class.
    __setitem__ = _refuse
    __delitem__ = _refuse
    setdefault = _refuse
    update = _refuse
    pop = _refuse
    popitem = _refuse
    clear = _refuse
    __ior__ = _refuse


_NO_ENTRIES = _NoEntries()


@dataclass(slots=True, init=False)
class Subaccount:
    """One subaccount's balances, positions and resting-order bookkeeping.

    The quote balance has a field of its own: every funded subaccount holds one, and a dict of
    one entry is 184 bytes, a tenth of what a million-subaccount venue keeps per subaccount.
    Other assets' balances are in ``assets`` (never a zero entry). Both change only through
    ``Ledger.apply`` (and ``set_balance`` where a state is written directly)."""

    subaccount_id: SubaccountId
    quote_quantums: int
    # Read-only and shared until the first write: take them to write with ``own_*``.
    assets: dict[AssetId, int]  # balances of assets other than the quote, nonzero only
    positions: dict[MarketId, Position]
    open_orders: dict[MarketId, OpenOrders]
    order_ids: dict[OrderId, MarketId]  # resting orders and triggers
    client_order_ids: dict[int, OrderId]  # client id -> order id

    def __init__(
        self,
        subaccount_id: SubaccountId,
        balances: Mapping[AssetId, int] | None = None,
        positions: dict[MarketId, Position] | None = None,
        open_orders: dict[MarketId, OpenOrders] | None = None,
        order_ids: dict[OrderId, MarketId] | None = None,
        client_order_ids: dict[int, OrderId] | None = None,
        *,
        quote_quantums: int = 0,  # with ``assets``: the fields, as ``dataclasses.replace`` passes
        assets: dict[AssetId, int] | None = None,
    ) -> None:
        self.subaccount_id = subaccount_id
        self.quote_quantums = quote_quantums
        self.assets = _NO_ENTRIES if assets is None else assets
        for asset_id, amount in (balances or {}).items():
            self.set_balance(asset_id, amount)
        self.positions = {} if positions is None else positions
        self.open_orders = _NO_ENTRIES if open_orders is None else open_orders
        self.order_ids = _NO_ENTRIES if order_ids is None else order_ids
        self.client_order_ids = _NO_ENTRIES if client_order_ids is None else client_order_ids

    @property
    def balances(self) -> Mapping[AssetId, int]:
        """Every nonzero balance, the quote's included: a read-only view made on each call."""
        if not self.quote_quantums:
            return MappingProxyType(self.assets)
        return MappingProxyType({QUOTE_ASSET: self.quote_quantums, **self.assets})

    def set_balance(self, asset_id: AssetId, amount_quantums: int) -> None:
        """Write a balance: ``Ledger`` moving value by a transfer, or a state written whole (a
        restore, a benchmark's venue, a test's fixture)."""
        if asset_id == QUOTE_ASSET:
            self.quote_quantums = amount_quantums
        elif amount_quantums:
            if isinstance(self.assets, _NoEntries):
                self.assets = {}
            self.assets[asset_id] = amount_quantums
        elif asset_id in self.assets:
            del self.assets[asset_id]

    def own_open_orders(self) -> dict[MarketId, OpenOrders]:
        if isinstance(self.open_orders, _NoEntries):
            self.open_orders = {}
        return self.open_orders

    def own_order_ids(self) -> dict[OrderId, MarketId]:
        if isinstance(self.order_ids, _NoEntries):
            self.order_ids = {}
        return self.order_ids

    def own_client_order_ids(self) -> dict[int, OrderId]:
        if isinstance(self.client_order_ids, _NoEntries):
            self.client_order_ids = {}
        return self.client_order_ids

    def balance(self, asset_id: AssetId) -> int:
        if asset_id == QUOTE_ASSET:
            return self.quote_quantums
        return self.assets.get(asset_id, 0)

    def position_size(self, market_id: MarketId) -> int:
        position = self.positions.get(market_id)
        return 0 if position is None else position.size_base_quantums

    def encode(self) -> dict[str, object]:
        return {
            "id": str(self.subaccount_id),
            "balances": dict(sorted(self.balances.items())),
            "positions": [self.positions[m].encode() for m in sorted(self.positions)],
        }


@dataclass(slots=True)
class Ledger:
    """Balances of the system accounts and the transfer primitive. Subaccounts are owned here too,
    so that one object can apply a transfer to either kind of account."""

    subaccounts: dict[SubaccountId, Subaccount] = field(default_factory=dict)
    system: dict[SystemAccount, dict[AssetId, int]] = field(default_factory=dict)

    def subaccount(self, subaccount_id: SubaccountId) -> Subaccount:
        """The subaccount, created empty on first use (a ledger account exists once touched)."""
        found = self.subaccounts.get(subaccount_id)
        if found is None:
            found = Subaccount(subaccount_id)
            self.subaccounts[subaccount_id] = found
        return found

    def balance(self, account: AccountKey, asset_id: AssetId) -> int:
        if isinstance(account, SystemAccount):
            return self.system.get(account, {}).get(asset_id, 0)
        found = self.subaccounts.get(account)
        return 0 if found is None else found.balance(asset_id)

    def apply(self, transfer: Transfer) -> None:
        """Apply one transfer: the only way any balance in Clearhouse changes."""
        self._add(transfer.source, transfer.asset_id, -transfer.amount_quantums)
        self._add(transfer.target, transfer.asset_id, transfer.amount_quantums)

    def _add(self, account: AccountKey, asset_id: AssetId, delta: int) -> None:
        if not isinstance(account, SystemAccount):
            subaccount = self.subaccount(account)
            updated = subaccount.balance(asset_id) + delta
            assert abs(updated) <= limits.amount_quantums_max * 1_000, (account, updated)
            subaccount.set_balance(asset_id, updated)
            return
        balances = self.system.setdefault(account, {})
        updated = balances.get(asset_id, 0) + delta
        assert abs(updated) <= limits.amount_quantums_max * 1_000, (account, updated)
        if updated == 0:
            balances.pop(asset_id, None)
        else:
            balances[asset_id] = updated

    def totals(self) -> dict[AssetId, int]:
        """Sum of every balance per asset: exactly zero for every asset, always."""
        totals: dict[AssetId, int] = {}
        for sub in self.subaccounts.values():
            for asset_id, amount in sub.balances.items():
                totals[asset_id] = totals.get(asset_id, 0) + amount
        for balances in self.system.values():
            for asset_id, amount in balances.items():
                totals[asset_id] = totals.get(asset_id, 0) + amount
        return totals
