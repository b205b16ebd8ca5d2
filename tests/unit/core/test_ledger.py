"""ledger: transfers are the only balance change, they sum to zero, and zero balances vanish."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.core import limits
from clearhouse.core.ids import Address, AssetId, MarketId, SubaccountId
from clearhouse.core.ledger import (
    CUSTODY,
    DEFICIT,
    FEES,
    INSURANCE,
    AccountKey,
    Ledger,
    OpenOrders,
    Position,
    Subaccount,
    SystemAccount,
    Transfer,
    clearing_account,
    funding_account,
)

USDC = AssetId("USDC")
BTC = AssetId("BTC")
ALICE = SubaccountId(Address("0x" + "aa" * 20), 0)
ALICE_1 = SubaccountId(Address("0x" + "aa" * 20), 1)
BOB = SubaccountId(Address("0x" + "bb" * 20), 0)
BTC_PERP = MarketId("BTC-PERP")

ACCOUNTS: list[AccountKey] = [
    ALICE,
    ALICE_1,
    BOB,
    CUSTODY,
    INSURANCE,
    FEES,
    DEFICIT,
    clearing_account(BTC_PERP),
    funding_account(BTC_PERP),
]


# ── Transfer ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("amount", [0, -1, -(10**6)])
def test_transfer_refuses_non_positive_amounts(amount: int) -> None:
    with pytest.raises(AssertionError):
        Transfer(CUSTODY, ALICE, USDC, amount)


def test_transfer_refuses_amounts_beyond_the_limit() -> None:
    Transfer(CUSTODY, ALICE, USDC, limits.amount_quantums_max)
    with pytest.raises(AssertionError):
        Transfer(CUSTODY, ALICE, USDC, limits.amount_quantums_max + 1)


@pytest.mark.parametrize(
    "account", [ALICE, CUSTODY, clearing_account(BTC_PERP), SystemAccount("insurance")]
)
def test_transfer_refuses_self_transfers(account: AccountKey) -> None:
    with pytest.raises(AssertionError):
        Transfer(account, account, USDC, 1)
    # An equal key is the same account, even if built separately.
    twin = (
        SubaccountId(account.owner, account.number)
        if isinstance(account, SubaccountId)
        else (SystemAccount(account.name))
    )
    with pytest.raises(AssertionError):
        Transfer(account, twin, USDC, 1)


def test_subaccounts_of_one_owner_are_distinct_accounts() -> None:
    transfer = Transfer(ALICE, ALICE_1, USDC, 1)
    assert (transfer.source, transfer.target) == (ALICE, ALICE_1)


def test_system_account_names() -> None:
    assert str(clearing_account(BTC_PERP)) == "clearing:BTC-PERP"
    assert str(funding_account(BTC_PERP)) == "funding:BTC-PERP"
    assert clearing_account(BTC_PERP) == SystemAccount("clearing:BTC-PERP")
    assert len({str(a) for a in ACCOUNTS}) == len(ACCOUNTS)


# ── Ledger ───────────────────────────────────────────────────────────────────────────────

transfers = (
    st.tuples(
        st.sampled_from(ACCOUNTS),
        st.sampled_from(ACCOUNTS),
        st.sampled_from([USDC, BTC]),
        st.one_of(
            st.integers(min_value=1, max_value=100),
            st.integers(min_value=1, max_value=limits.amount_quantums_max),
        ),
    )
    .filter(lambda t: t[0] != t[1])
    .map(lambda t: Transfer(*t))
)


def _all_balances(ledger: Ledger) -> dict[tuple[str, AssetId], int]:
    found: dict[tuple[str, AssetId], int] = {}
    for sub_id, sub in ledger.subaccounts.items():
        for asset_id, amount in sub.balances.items():
            found[(str(sub_id), asset_id)] = amount
    for account, balances in ledger.system.items():
        for asset_id, amount in balances.items():
            found[(str(account), asset_id)] = amount
    return found


@settings(max_examples=100, deadline=None)
@given(st.lists(transfers, max_size=40))
def test_random_transfers_keep_every_total_at_zero(sequence: list[Transfer]) -> None:
    ledger = Ledger()
    model: dict[tuple[str, AssetId], int] = {}
    for transfer in sequence:
        ledger.apply(transfer)
        source = (str(transfer.source), transfer.asset_id)
        target = (str(transfer.target), transfer.asset_id)
        model[source] = model.get(source, 0) - transfer.amount_quantums
        model[target] = model.get(target, 0) + transfer.amount_quantums
        assert all(total == 0 for total in ledger.totals().values())
    # Every balance is what the transfers say; zero balances are not stored at all.
    assert _all_balances(ledger) == {key: v for key, v in model.items() if v != 0}
    for account in ACCOUNTS:
        for asset_id in (USDC, BTC):
            assert ledger.balance(account, asset_id) == model.get((str(account), asset_id), 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(transfers, min_size=1, max_size=20))
def test_undoing_transfers_empties_the_ledger(sequence: list[Transfer]) -> None:
    ledger = Ledger()
    for transfer in sequence:
        ledger.apply(transfer)
    for transfer in reversed(sequence):
        ledger.apply(
            Transfer(transfer.target, transfer.source, transfer.asset_id, transfer.amount_quantums)
        )
    assert _all_balances(ledger) == {}
    assert all(not sub.balances for sub in ledger.subaccounts.values())
    assert ledger.totals() == {}


def test_a_balance_dropping_to_zero_is_removed() -> None:
    ledger = Ledger()
    ledger.apply(Transfer(CUSTODY, ALICE, USDC, 100))
    ledger.apply(Transfer(CUSTODY, ALICE, BTC, 5))
    assert ledger.subaccounts[ALICE].balances == {USDC: 100, BTC: 5}
    assert ledger.system[CUSTODY] == {USDC: -100, BTC: -5}
    ledger.apply(Transfer(ALICE, CUSTODY, USDC, 100))
    assert ledger.subaccounts[ALICE].balances == {BTC: 5}
    assert ledger.system[CUSTODY] == {BTC: -5}
    assert USDC not in ledger.subaccounts[ALICE].balances
    assert ledger.balance(ALICE, USDC) == 0
    ledger.apply(Transfer(ALICE, CUSTODY, BTC, 5))
    assert ledger.subaccounts[ALICE].balances == {}
    assert ledger.system[CUSTODY] == {}
    assert ledger.totals() == {}


def test_balances_may_go_negative() -> None:
    ledger = Ledger()
    ledger.apply(Transfer(ALICE, INSURANCE, USDC, 7))  # a loss beyond collateral
    assert ledger.balance(ALICE, USDC) == -7
    assert ledger.balance(INSURANCE, USDC) == 7
    assert ledger.totals() == {USDC: 0}


def test_a_subaccount_is_created_on_first_touch() -> None:
    ledger = Ledger()
    assert ledger.balance(ALICE, USDC) == 0  # reading does not create it
    assert ALICE not in ledger.subaccounts
    ledger.apply(Transfer(CUSTODY, ALICE, USDC, 1))
    created = ledger.subaccounts[ALICE]
    assert created.subaccount_id == ALICE
    assert created.balances == {USDC: 1}
    assert (created.positions, created.open_orders, created.order_ids) == ({}, {}, {})
    # Touching it again returns the same object; a sender is created too.
    assert ledger.subaccount(ALICE) is created
    ledger.apply(Transfer(BOB, ALICE, USDC, 3))
    assert ledger.subaccounts[BOB].balances == {USDC: -3}
    assert ledger.subaccount(ALICE_1) is ledger.subaccounts[ALICE_1]
    assert ledger.subaccounts[ALICE_1].balances == {}


def test_an_emptied_subaccount_is_kept() -> None:
    ledger = Ledger()
    ledger.apply(Transfer(CUSTODY, ALICE, USDC, 1))
    ledger.apply(Transfer(ALICE, CUSTODY, USDC, 1))
    assert ALICE in ledger.subaccounts
    assert ledger.subaccounts[ALICE].balances == {}


def test_balance_overflow_is_refused() -> None:
    ledger = Ledger()
    top = limits.amount_quantums_max
    for _ in range(1_000):
        ledger.apply(Transfer(CUSTODY, ALICE, USDC, top))
    assert ledger.balance(ALICE, USDC) == top * 1_000
    with pytest.raises(AssertionError):
        ledger.apply(Transfer(CUSTODY, ALICE, USDC, 1))


# ── Value objects ────────────────────────────────────────────────────────────────────────


def test_subaccount_accessors_and_encoding() -> None:
    sub = Subaccount(ALICE)
    assert sub.balance(USDC) == 0
    assert sub.position_size(BTC_PERP) == 0
    sub.set_balance(USDC, 10)
    sub.set_balance(BTC, 2)
    sub.positions[BTC_PERP] = Position(BTC_PERP, size_base_quantums=-3, cost_quote_quantums=-30)
    assert sub.position_size(BTC_PERP) == -3
    assert sub.encode() == {
        "id": str(ALICE),
        "balances": {"BTC": 2, "USDC": 10},
        "positions": [
            {"market": "BTC-PERP", "size": -3, "cost": -30, "funding_paid": 0, "funding_index": 0}
        ],
    }


def test_open_orders_emptiness_is_about_sizes() -> None:
    assert OpenOrders().is_empty()
    assert OpenOrders(count=3).is_empty()
    assert not OpenOrders(bid_base_quantums=1).is_empty()
    assert not OpenOrders(ask_base_quantums=1).is_empty()
