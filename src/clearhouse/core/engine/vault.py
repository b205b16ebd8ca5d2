"""The market-making vault (SPEC §11, as Hyperliquid's HLP or dYdX's MegaVault): ``DepositVault``
and ``WithdrawVault`` (shares at NAV, ``core/vault.py``), and each block its quotes on the book.

The vault is the ``VAULT`` subaccount: its NAV is that subaccount's equity, its positions are
margined, watched and liquidated like anyone's. Its quotes are ordinary post-only orders placed
through ``PlaceOrder``'s handler (the same checks: price band, size grid, IM with resting orders
on their worst side), so it never takes. Its backstop role, taking over what liquidation
auctions and bankrupt remainders leave, is ``liquidation/insolvency.vault_takeover``.
"""

from __future__ import annotations

from typing import Protocol

from clearhouse.core import limits
from clearhouse.core.engine.context import (
    Context,
    Rejected,
    check_amount,
    check_subaccount_number,
    mutated,
    transfer,
)
from clearhouse.core.engine.liquidation.insolvency import vault_cap
from clearhouse.core.engine.risk import is_paused, is_reduce_only, risk_of
from clearhouse.core.engine.subaccounts import check_can_release, check_withdrawals_open
from clearhouse.core.engine.trading.orders import place_order
from clearhouse.core.engine.trading.resting import cancel_quotes, cancel_resting
from clearhouse.core.errors import RejectReason
from clearhouse.core.ids import QUOTE_ASSET, Address, OrderId, Side, SubaccountId
from clearhouse.core.ledger import VAULT, Subaccount
from clearhouse.core.margin import Risk
from clearhouse.core.messages import (
    CancelCause,
    DepositOptionsVault,
    DepositVault,
    PlaceOrder,
    TimeInForce,
    VaultDeposited,
    VaultWithdrawn,
    WithdrawOptionsVault,
    WithdrawVault,
)
from clearhouse.core.oracle import annual_volatility_ppm
from clearhouse.core.params import MarketKind, VaultMarketParams
from clearhouse.core.settlement import funding_index_step_e9, funding_owed, hourly_funding_rate_ppb
from clearhouse.core.state import MarketState, MarketStatus, VaultOwner, VaultQuote
from clearhouse.core.units import div_toward_zero
from clearhouse.core.vault import (
    QuoteInputs,
    make_quote,
    moved_beyond,
    quote_for_shares,
    shares_for_deposit,
)


class ShareBook(Protocol):
    """What a vault's shares are: its owners and their total. The market-making vault and the
    options vault hold theirs alike, and buy and redeem them through the same two functions."""

    total_shares: int
    owners: dict[Address, VaultOwner]


def vault_risk(ctx: Context) -> Risk | None:
    """The vault subaccount's risk (its equity is the NAV); None before the first deposit."""
    found = ctx.state.ledger.subaccounts.get(VAULT)
    return None if found is None else risk_of(ctx, found)


def funding_accrued(ctx: Context, subaccount: Subaccount) -> int:
    """What the subaccount's perpetual positions have accrued (+ owed to them) in the funding
    intervals under way, not yet in its equity (an interval pays when it ends): each
    interval's rate at its average premium so far, for the share of the interval sampled, at
    the index now. Share prices count it against whoever buys or redeems (``share_nav``)."""
    total = 0
    for market_id, position in sorted(subaccount.positions.items()):
        market = ctx.state.markets[market_id]
        params = market.params
        if params.kind is not MarketKind.PERPETUAL or not market.premium_time_ns:
            continue
        rate = hourly_funding_rate_ppb(
            premium_time_ppb_ns=market.premium_time_ppb_ns,
            premium_time_ns=market.premium_time_ns, funding=params.funding, margin=params.margin,
        )  # fmt: skip
        interval = params.funding.interval_ns
        accrued_ppb = div_toward_zero(rate * min(market.premium_time_ns, interval), interval)
        index = ctx.state.oracles[params.oracle_id].index_price_quantums
        step = funding_index_step_e9(index_price_quantums=index, rate_ppb=accrued_ppb)
        total -= funding_owed(position.size_base_quantums, step, params.base_quantums_per_unit)
    return total


def share_nav(ctx: Context, subaccount: Subaccount, equity: int, *, buying: bool) -> int:
    """The NAV shares change hands at: equity, or equity with the funding accrued in the
    intervals under way where that is worse for the one who buys (higher) or redeems (lower).
    Funding is paid when an interval ends, to whoever holds then: at equity alone, a deposit
    in the block before a payment was paid the hour it was not there for."""
    accrued = equity + funding_accrued(ctx, subaccount)
    return max(equity, accrued) if buying else min(equity, accrued)


def buy_shares(
    ctx: Context, book: ShareBook, vault_id: SubaccountId, command: DepositVault
    | DepositOptionsVault, cause: str,
) -> tuple[int, int, int]:  # fmt: skip
    """Quote from the signer's subaccount into ``vault_id`` for shares at NAV, released under a
    withdrawal's rules (settled quote, fresh prices, IM kept). Returns (shares minted, NAV
    before, total shares before); the caller marks its leaves and says what happened."""
    check_subaccount_number(command.subaccount_number)
    check_amount(command.amount_quantums)
    source = SubaccountId(command.signer, command.subaccount_number)
    found = ctx.state.ledger.subaccounts.get(vault_id)
    risk = None if found is None else risk_of(ctx, found)
    if risk is not None and not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)  # no NAV without fresh prices
    nav = 0 if risk is None or found is None else share_nav(ctx, found, risk.equity, buying=True)
    if nav < 0:
        raise Rejected(RejectReason.VAULT_INSOLVENT)
    if command.signer not in book.owners and len(book.owners) >= limits.vault_owners_max:
        raise Rejected(RejectReason.VAULT_FULL)
    check_can_release(ctx, source, QUOTE_ASSET, command.amount_quantums)
    shares = shares_for_deposit(
        command.amount_quantums, nav_quantums=nav, total_shares=book.total_shares
    )
    if shares <= 0:
        raise Rejected(RejectReason.VAULT_AMOUNT_TOO_SMALL)
    mutated(ctx)
    transfer(ctx, source, vault_id, QUOTE_ASSET, command.amount_quantums, cause)
    owner = book.owners.setdefault(command.signer, VaultOwner())
    owner.shares += shares
    owner.last_deposit_ns = ctx.state.timestamp_ns  # the lock-up starts again
    total_before = book.total_shares
    book.total_shares += shares
    return shares, nav, total_before


def redeem_shares(
    ctx: Context, book: ShareBook, vault_id: SubaccountId, command: WithdrawVault
    | WithdrawOptionsVault, *, lockup_ns: int, cause: str,
) -> tuple[int, int, int]:  # fmt: skip
    """Redeem shares at NAV into the signer's subaccount: only after the lock-up, on fresh
    prices, while the vault is not under liquidation and no market it holds has a bankrupt
    holder, and never more than the vault's withdrawable quote (what it can release and still
    meet IM). Returns (quote paid, NAV before, total shares before)."""
    check_subaccount_number(command.subaccount_number)
    if not 0 < command.shares <= limits.vault_shares_max:
        raise Rejected(RejectReason.AMOUNT_NOT_POSITIVE)
    owner = book.owners.get(command.signer)
    if owner is None or owner.shares < command.shares:
        raise Rejected(RejectReason.VAULT_INSUFFICIENT_SHARES)
    if ctx.state.timestamp_ns < owner.last_deposit_ns + lockup_ns:
        raise Rejected(RejectReason.VAULT_LOCKED)
    subaccount = ctx.state.ledger.subaccounts[vault_id]
    risk = risk_of(ctx, subaccount)
    if not risk.usable:
        raise Rejected(RejectReason.ORACLE_STALE)
    if vault_id in ctx.state.liquidations:
        raise Rejected(RejectReason.WITHDRAWALS_PAUSED)
    check_withdrawals_open(ctx, subaccount)
    nav = share_nav(ctx, subaccount, risk.equity, buying=False)
    amount = quote_for_shares(command.shares, nav_quantums=nav, total_shares=book.total_shares)
    if amount <= 0:
        raise Rejected(RejectReason.VAULT_AMOUNT_TOO_SMALL)
    if amount > risk.withdrawable_quote:
        raise Rejected(RejectReason.WITHDRAWAL_EXCEEDS_FREE_COLLATERAL)
    mutated(ctx)
    target = SubaccountId(command.signer, command.subaccount_number)
    transfer(ctx, vault_id, target, QUOTE_ASSET, amount, cause)
    owner.shares -= command.shares
    if owner.shares == 0:
        del book.owners[command.signer]
    total_before = book.total_shares
    book.total_shares -= command.shares
    return amount, nav, total_before


def deposit_vault(ctx: Context, command: DepositVault) -> None:
    """Buy market-making vault shares at NAV (``buy_shares``)."""
    vault = ctx.state.vault
    shares, nav, total_before = buy_shares(ctx, vault, VAULT, command, "vault deposit")
    ctx.touched.vault = True
    ctx.touched.vault_owners.add(command.signer)
    source = SubaccountId(command.signer, command.subaccount_number)
    ctx.events.append(VaultDeposited(
        owner=command.signer, subaccount=str(source), amount_quote_quantums=command.amount_quantums,
        shares=shares, nav_quote_quantums=nav, total_shares=total_before,
    ))  # fmt: skip


def withdraw_vault(ctx: Context, command: WithdrawVault) -> None:
    """Redeem market-making vault shares at NAV (``redeem_shares``)."""
    vault = ctx.state.vault
    amount, nav, total_before = redeem_shares(
        ctx, vault, VAULT, command, lockup_ns=ctx.state.venue.vault.lockup_ns,
        cause="vault withdrawal",
    )  # fmt: skip
    ctx.touched.vault = True
    ctx.touched.vault_owners.add(command.signer)
    target = SubaccountId(command.signer, command.subaccount_number)
    ctx.events.append(VaultWithdrawn(
        owner=command.signer, subaccount=str(target), shares=command.shares,
        amount_quote_quantums=amount, nav_quote_quantums=nav, total_shares=total_before,
    ))  # fmt: skip


# ── Quoting, each block ─────────────────────────────────────────────────────────────────────


def quote_vault(ctx: Context) -> None:
    """Per configured market, in the order the venue lists them: keep a bid and an ask around
    the mark (``core/vault.make_quote``). Runs after the marks and before the liquidation pass,
    so the quotes see this block's marks and the pass sees the quotes' margin. A market is
    requoted only when its mark moved ``requote_move_ppm``, ``requote_interval_ns`` passed, the
    vault's position there changed or one of its orders left the book; and then an order is
    replaced only when its price or size would change. Nothing is quoted while the vault is
    under liquidation (the ladder has its orders), or on an unusable price."""
    params = ctx.state.venue.vault
    subaccount = ctx.state.ledger.subaccounts.get(VAULT)
    if not params.markets or subaccount is None or VAULT in ctx.state.liquidations:
        return
    for market_params in params.markets:
        market = ctx.state.markets.get(market_params.market_id)
        if market is None or market.status is not MarketStatus.ACTIVE:
            forget_quote(ctx, market_params)
            continue
        if market.params.settling(ctx.state.timestamp_ns):
            withdraw_quote(ctx, market)  # the TWAP has fixed much of what it pays
        elif quotable(ctx, market):
            quote_market(ctx, subaccount, market, market_params)


def withdraw_quote(ctx: Context, market: MarketState) -> None:
    record = ctx.state.vault.quotes.pop(market.params.market_id, None)
    if record is not None:
        ctx.touched.vault = True
        cancel_quotes(ctx, market, (record.bid_order_id, record.ask_order_id))


def forget_quote(ctx: Context, market_params: VaultMarketParams) -> None:
    """A market that stopped trading cancelled its orders itself: drop the record."""
    if ctx.state.vault.quotes.pop(market_params.market_id, None) is not None:
        ctx.touched.vault = True


def quotable(ctx: Context, market: MarketState) -> bool:
    oracle = ctx.state.oracles[market.params.oracle_id]
    return (
        market.params.kind is not MarketKind.OPTION
        and oracle.is_usable()
        and not oracle.restart_guard
        and not is_reduce_only(ctx, market)
        and not is_paused(ctx, market.params.market_id)
        and market.mark_price_quantums > 0
    )


def quote_market(
    ctx: Context, subaccount: Subaccount, market: MarketState, market_params: VaultMarketParams
) -> None:
    market_id = market.params.market_id
    record = ctx.state.vault.quotes.get(market_id)
    position = subaccount.position_size(market_id)
    if record is not None and not needs_requote(ctx, record, market, position):
        return
    nav = risk_of(ctx, subaccount).equity
    oracle = ctx.state.oracles[market.params.oracle_id]
    target = make_quote(ctx.state.venue.vault, QuoteInputs(
        mark_price_quantums=market.mark_price_quantums,
        vol_annual_ppm=annual_volatility_ppm(
            oracle.variance_e18, oracle.params.vol_sample_interval_ns
        ),
        position_base_quantums=position,
        cap_base_quantums=vault_cap(ctx, market, nav),
        level_quote_quantums=market_params.size_per_level_quote_quantums,
        tick_quantums=market.params.tick_quantums,
        step_base_quantums=market.params.step_base_quantums,
        min_order_base_quantums=market.params.min_order_base_quantums,
        base_quantums_per_unit=market.params.base_quantums_per_unit,
    ))  # fmt: skip
    bid_id = 0 if record is None else record.bid_order_id
    ask_id = 0 if record is None else record.ask_order_id
    wanted = (
        (Side.BUY, bid_id, target.bid_price_quantums, target.bid_base_quantums),
        (Side.SELL, ask_id, target.ask_price_quantums, target.ask_base_quantums),
    )
    # Cancel every order that changes first, then place: a new bid may not meet an old ask.
    kept = [unchanged(market, order_id, price, size) for _, order_id, price, size in wanted]
    for (_, order_id, _, _), keep in zip(wanted, kept, strict=True):
        if order_id and not keep and market.book.get(OrderId(order_id)) is not None:
            mutated(ctx)
            cancel_resting(ctx, market, OrderId(order_id), CancelCause.USER)
    placed = [
        order_id if keep else place_quote(ctx, market, side, price, size)
        for (side, order_id, price, size), keep in zip(wanted, kept, strict=True)
    ]
    ctx.state.vault.quotes[market_id] = VaultQuote(
        bid_order_id=placed[0], ask_order_id=placed[1],
        mark_price_quantums=market.mark_price_quantums, quoted_ns=ctx.state.timestamp_ns,
        position_base_quantums=position,
    )  # fmt: skip
    ctx.touched.vault = True


def needs_requote(ctx: Context, record: VaultQuote, market: MarketState, position: int) -> bool:
    params = ctx.state.venue.vault
    if position != record.position_base_quantums:
        return True  # a fill: the inventory, and so the skew and the room, changed
    if ctx.state.timestamp_ns - record.quoted_ns >= params.requote_interval_ns:
        return True
    if moved_beyond(
        record.mark_price_quantums, market.mark_price_quantums, params.requote_move_ppm
    ):
        return True
    return any(  # cancelled by someone else's rule (maker margin, cooling-off, ...)
        order_id and market.book.get(OrderId(order_id)) is None
        for order_id in (record.bid_order_id, record.ask_order_id)
    )


def unchanged(market: MarketState, order_id: int, price: int, size: int) -> bool:
    """Is the order resting already exactly as wanted (or is nothing wanted, and none rests)?"""
    order = market.book.get(OrderId(order_id)) if order_id else None
    if order is None:
        return size == 0 and order_id == 0
    return order.price_quantums == price and order.remaining_base_quantums == size


def place_quote(ctx: Context, market: MarketState, side: Side, price: int, size: int) -> int:
    """A post-only order through the ``PlaceOrder`` handler; its id, or 0 when there is nothing
    to quote or the handler refuses it (margin, band): a refusal changes nothing. Where orders
    rest through its own quote (a bid above its ask), it trades with them instead, at their
    prices, as a taker of its quote's size: it would have sold there had its quote rested
    first, and an order nobody trades with, far from the index, cannot set the funding
    premium (the impact price) for free."""
    if size <= 0:
        return 0
    order_id = ctx.state.next_order_id
    refused = _submit(ctx, market, side, price, size, TimeInForce.POST_ONLY)
    if refused is None:
        return order_id
    if refused is RejectReason.POST_ONLY_WOULD_CROSS and ctx.state.venue.vault.takes_through_quotes:
        _submit(ctx, market, side, price, size, TimeInForce.IOC)
    return 0


def _submit(
    ctx: Context, market: MarketState, side: Side, price: int, size: int, tif: TimeInForce
) -> RejectReason | None:
    """The vault's order through the ``PlaceOrder`` handler; why it refused (nothing changed),
    or None."""
    command = PlaceOrder(
        signer=VAULT.owner, nonce=0, expiry_ns=ctx.state.timestamp_ns,
        subaccount_number=VAULT.number, market_id=market.params.market_id, side=side,
        size_base_quantums=size, price_quantums=price, time_in_force=tif,
    )  # fmt: skip
    events_before = len(ctx.events)
    try:
        place_order(ctx, command)
    except Rejected as refusal:
        assert len(ctx.events) == events_before
        return refusal.reason
    return None
