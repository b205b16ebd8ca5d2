"""Subaccounts: ``Deposit``, ``Withdraw``, ``TransferCollateral``, ``SetMarginMode``, and
what may leave a subaccount (settled balance only, fresh prices, IM kept, no pause).
"""

from __future__ import annotations

from clearhouse.core.engine.context import (
    Context,
    Rejected,
    check_amount,
    check_subaccount_number,
    listed_asset,
    mutated,
    transfer,
    with_balance,
)
from clearhouse.core.engine.risk import admit, risk_of
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import (
    QUOTE_ASSET,
    AssetId,
    SubaccountId,
    is_address,
)
from clearhouse.core.ledger import (
    CUSTODY,
    INSURANCE,
    Subaccount,
)
from clearhouse.core.messages import (
    Deposit,
    DepositInsurance,
    MarginModeChanged,
    SetMarginMode,
    TransferCollateral,
    Withdraw,
)


def deposit(ctx: Context, command: Deposit) -> None:
    if command.signer != ctx.state.venue.custody_relayer:
        raise Rejected(RejectReason.UNAUTHORIZED_SIGNER)
    if command.deposit_id <= ctx.state.last_deposit_id:
        raise Rejected(RejectReason.DUPLICATE_DEPOSIT)
    if not is_address(command.owner):
        raise Rejected(RejectReason.MALFORMED_COMMAND)
    check_subaccount_number(command.subaccount_number)
    asset = listed_asset(ctx, command.asset_id)
    check_amount(command.amount_quantums)
    held = -ctx.state.ledger.balance(CUSTODY, command.asset_id)
    if held + command.amount_quantums > asset.venue_cap_quantums:
        raise Rejected(RejectReason.COLLATERAL_CAP_EXCEEDED)
    mutated(ctx)
    ctx.state.last_deposit_id = command.deposit_id
    target = SubaccountId(command.owner, command.subaccount_number)
    transfer(ctx, CUSTODY, target, command.asset_id, command.amount_quantums, "deposit")


def withdraw(ctx: Context, command: Withdraw) -> None:
    check_subaccount_number(command.subaccount_number)
    listed_asset(ctx, command.asset_id)
    check_amount(command.amount_quantums)
    source = SubaccountId(command.signer, command.subaccount_number)
    check_can_release(ctx, source, command.asset_id, command.amount_quantums)
    mutated(ctx)
    transfer(ctx, source, CUSTODY, command.asset_id, command.amount_quantums, "withdrawal")


def deposit_insurance(ctx: Context, command: DepositInsurance) -> None:
    """Quote into the fund, released under the same rules as a withdrawal (margin after it,
    never unrealized profit)."""
    check_subaccount_number(command.subaccount_number)
    check_amount(command.amount_quantums)
    source = SubaccountId(command.signer, command.subaccount_number)
    check_can_release(ctx, source, QUOTE_ASSET, command.amount_quantums)
    mutated(ctx)
    transfer(ctx, source, INSURANCE, QUOTE_ASSET, command.amount_quantums, "insurance deposit")


def transfer_collateral(ctx: Context, command: TransferCollateral) -> None:
    check_subaccount_number(command.source_number)
    check_subaccount_number(command.target_number)
    if command.source_number == command.target_number:
        raise Rejected(RejectReason.SELF_TRANSFER)
    listed_asset(ctx, command.asset_id)
    check_amount(command.amount_quantums)
    source = SubaccountId(command.signer, command.source_number)
    check_can_release(ctx, source, command.asset_id, command.amount_quantums)
    mutated(ctx)
    target = SubaccountId(command.signer, command.target_number)
    transfer(ctx, source, target, command.asset_id, command.amount_quantums, "transfer")


def check_can_release(ctx: Context, source: SubaccountId, asset_id: AssetId, amount: int) -> None:
    """Collateral may leave a subaccount only from its settled balance, only on fresh
    prices, and only while IM stays met: never unrealized profit (Mango 2022)."""
    subaccount = ctx.state.ledger.subaccounts.get(source)
    if subaccount is None or subaccount.balance(asset_id) < amount:
        raise Rejected(RejectReason.INSUFFICIENT_FUNDS)
    risk = risk_of(ctx, subaccount)
    if not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)
    check_withdrawals_open(ctx, subaccount)
    if asset_id == QUOTE_ASSET:
        if amount > risk.withdrawable_quote:
            raise Rejected(RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
        return
    # Volatile collateral may leave only while IM stays met and what remains settled (quote
    # plus haircut collateral, no PnL) still covers any quote debt: a negative quote balance
    # may never end up backed by unrealized profit alone.
    after = risk_of(ctx, with_balance(subaccount, asset_id, subaccount.balance(asset_id) - amount))
    if not after.satisfies_initial or after.settled_collateral < 0:
        raise Rejected(RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)


def check_withdrawals_open(ctx: Context, subaccount: Subaccount) -> None:
    """No collateral leaves while a market the subaccount holds has a bankrupt holder (its
    profit may be what that holder cannot pay), nor in the grace period after an outage of
    a price it depends on, when no one may yet be liquidated on the returning prices."""
    for market_id in subaccount.positions:
        market = ctx.state.markets[market_id]
        if market.underwater_count:
            raise Rejected(RejectReason.WITHDRAWALS_PAUSED)
        if ctx.state.oracles[market.params.oracle_id].restart_guard:
            raise Rejected(RejectReason.WITHDRAWALS_PAUSED)
    for asset_id in subaccount.assets:  # the quote asset has no oracle
        oracle_id = ctx.state.assets[asset_id].oracle_id
        if oracle_id is not None and ctx.state.oracles[oracle_id].restart_guard:
            raise Rejected(RejectReason.WITHDRAWALS_PAUSED)


def set_margin_mode(ctx: Context, command: SetMarginMode) -> None:
    check_subaccount_number(command.subaccount_number)
    subaccount_id = SubaccountId(command.signer, command.subaccount_number)
    if (subaccount_id in ctx.state.portfolio_margin) == command.portfolio:
        raise Rejected(RejectReason.MARGIN_MODE_UNCHANGED)
    if subaccount_id in ctx.state.liquidations:
        raise Rejected(RejectReason.INSUFFICIENT_MARGIN)
    subaccount = ctx.state.ledger.subaccounts.get(subaccount_id)
    if subaccount is not None and (subaccount.positions or subaccount.order_ids):
        refusal = admit(
            ctx, subaccount, subaccount, None, strict_im=True, portfolio=command.portfolio
        )
        if refusal is not None:
            raise Rejected(refusal)
    mutated(ctx)
    if command.portfolio:
        ctx.state.portfolio_margin.add(subaccount_id)
    else:
        ctx.state.portfolio_margin.discard(subaccount_id)
    ctx.touched.modes.add(subaccount_id)
    ctx.derived.risk_changed[subaccount_id] = None  # its margin is now reckoned another way
    ctx.events.append(MarginModeChanged(subaccount=str(subaccount_id), portfolio=command.portfolio))
