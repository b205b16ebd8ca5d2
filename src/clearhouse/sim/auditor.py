"""A reference auditor: re-derives balances and positions from events alone and compares them
with the engine's state (TigerBeetle's auditor). It shares no code with the engine's ledger or
settlement: if both agree, a bug would have to be made twice, the same way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from fractions import Fraction

from clearhouse.core.engine import Engine
from clearhouse.core.ids import MarketId, Side
from clearhouse.core.ledger import FUND_BOOK
from clearhouse.core.messages import (
    Deleveraged,
    Event,
    InsuranceDrawn,
    Liquidated,
    LiquidationReceipt,
    LiquidationStage,
    MarketSettled,
    OrderFilled,
    Transferred,
    VaultDeposited,
    VaultWithdrawn,
)
from clearhouse.core.units import window_start_ns


class AuditFailure(AssertionError):
    """The engine's state differs from what its own events say."""


class Auditor:
    def __init__(self) -> None:
        self.balances: dict[tuple[str, str], int] = defaultdict(int)
        self.positions: dict[tuple[str, str], int] = defaultdict(int)
        self.fees_paid = 0
        self.fees_seen = 0
        self.block_draws: dict[str, int] = defaultdict(int)  # per market, the last block
        self.block_liquidations: set[str] = set()  # markets liquidated in the last block
        self.window_draws: dict[str, tuple[int, int]] = {}  # per market: (window, drawn in it)
        self.block_receipts: list[LiquidationReceipt] = []
        self.last_step: Liquidated | None = None
        self.receipts_checked = 0
        self.vault_shares: dict[str, int] = defaultdict(int)  # per owner, from vault events

    def observe(self, events: Iterable[Event]) -> None:
        """Fold one block's events in (call once per block, in order)."""
        self.block_draws.clear()
        self.block_liquidations.clear()
        self.block_receipts.clear()
        for event in events:
            if isinstance(event, LiquidationReceipt):
                self._pair_receipt(event)
            self.last_step = event if isinstance(event, Liquidated) else None
            if isinstance(event, Liquidated | Deleveraged):
                self.block_liquidations.add(event.market_id)
            if isinstance(event, Deleveraged) or (
                isinstance(event, Liquidated)
                and event.stage
                in (LiquidationStage.AUCTION, LiquidationStage.FUND, LiquidationStage.VAULT)
            ):  # these move positions themselves: check before they do (book fills came first)
                self._check_reduces(event)
            self._observe_vault(event)
            self._fold(event)

    def _fold(self, event: Event) -> None:
        """One event into the balances, positions, fees and draws derived from events."""
        match event:
            case InsuranceDrawn():
                self.block_draws[event.market_id] += event.amount_quote_quantums
            case Transferred():
                self.balances[(event.source, event.asset_id)] -= event.amount_quantums
                self.balances[(event.target, event.asset_id)] += event.amount_quantums
                if event.cause == "trading fee":
                    self.fees_paid += event.amount_quantums
            case OrderFilled():
                size = event.size_base_quantums * event.taker_side
                self.positions[(event.taker, event.market_id)] += size
                self.positions[(event.maker, event.market_id)] -= size
                self.fees_seen += event.maker_fee_quote_quantums
                self.fees_seen += event.taker_fee_quote_quantums
            case Deleveraged():  # the bankrupt side closes, the counterparty with it
                size = event.size_base_quantums * event.side
                self.positions[(event.subaccount, event.market_id)] += size
                self.positions[(event.counterparty, event.market_id)] -= size
            case Liquidated(
                stage=LiquidationStage.AUCTION | LiquidationStage.FUND | LiquidationStage.VAULT
            ):  # the bidder (or the fund's book, or the vault) takes the slice
                size = event.size_base_quantums * event.side
                self.positions[(event.subaccount, event.market_id)] += size
                self.positions[(event.keeper, event.market_id)] -= size
            case MarketSettled():
                for key in [k for k in self.positions if k[1] == event.market_id]:
                    self.positions[key] = 0

    def _observe_vault(self, event: Event) -> None:
        """Vault shares per owner, from the deposit and redemption events."""
        if isinstance(event, VaultDeposited):
            self.vault_shares[event.owner] += event.shares
        elif isinstance(event, VaultWithdrawn):
            self.vault_shares[event.owner] -= event.shares

    def _check_reduces(self, event: Liquidated | Deleveraged) -> None:
        """A liquidation closes the liquidated side's position toward zero, never past it."""
        held = self.positions[(event.subaccount, event.market_id)]
        closes = -event.side  # a sell closes a long (+), a buy a short (−)
        if held * closes <= 0 or event.size_base_quantums > abs(held):
            raise AuditFailure(
                f"liquidation of {event.subaccount} in {event.market_id} does not reduce: "
                f"holds {held}, closes {event.size_base_quantums} by {event.side.name}"
            )

    def _pair_receipt(self, receipt: LiquidationReceipt) -> None:
        """A receipt follows its step's ``Liquidated`` event and says the same thing."""
        step = self.last_step
        same = step is not None and (
            step.subaccount, step.market_id, step.stage, step.side, step.size_base_quantums,
            step.notional_quote_quantums,
        ) == (
            receipt.subaccount, receipt.market_id, receipt.stage, receipt.side,
            receipt.size_base_quantums, receipt.notional_quote_quantums,
        )  # fmt: skip
        if not same:
            raise AuditFailure(f"a liquidation receipt without its step: {receipt}")
        self.block_receipts.append(receipt)

    def check_receipts(self, engine: Engine) -> None:
        """Recheck every receipt of the block from its own numbers: it closes the position
        toward zero by at most its size, its fills are no worse than its bound, its
        bankruptcy price is where the position's loss equals the equity, and the account was
        below initial margin (the ladder's condition; the fund's own unwind aside)."""
        for receipt in self.block_receipts:
            market = engine.state.markets.get(MarketId(receipt.market_id))
            if market is None:
                continue  # settled and archived in the same block
            problem = receipt_problem(receipt, market.params.base_quantums_per_unit)
            if problem:
                raise AuditFailure(f"liquidation receipt {receipt}: {problem}")
            self.receipts_checked += 1

    def check_block(self, engine: Engine) -> None:
        """Liquidation rules of the block just observed: only on fresh prices that did not just
        come back from an outage, and the fund's draws within each market's cap per window of
        block time; every liquidation receipt rechecked."""
        self.check_receipts(engine)
        state = engine.state
        for market_id in sorted(self.block_liquidations):
            oracle = state.oracles[state.markets[MarketId(market_id)].params.oracle_id]
            if not oracle.is_usable() or oracle.restart_guard:
                raise AuditFailure(f"{market_id}: a liquidation on a stale or guarded price")
        for market_id, drawn in sorted(self.block_draws.items()):
            params = state.markets[MarketId(market_id)].params.liquidation
            window = window_start_ns(state.timestamp_ns, params.insurance_draw_window_ns)
            last_window, before = self.window_draws.get(market_id, (window, 0))
            total = drawn + (before if last_window == window else 0)
            self.window_draws[market_id] = (window, total)
            if total > params.insurance_draw_max_quote_quantums_per_window:
                raise AuditFailure(f"{market_id}: insurance drew {total} in one window, over cap")

    def check(self, engine: Engine) -> None:
        """Compare everything derived from events with the engine's state; raise on a difference."""
        self.check_block(engine)
        state = engine.state
        actual_balances: dict[tuple[str, str], int] = {}
        actual_positions: dict[tuple[str, str], int] = {}
        for subaccount in state.ledger.subaccounts.values():
            for asset_id, amount in subaccount.balances.items():
                actual_balances[(str(subaccount.subaccount_id), asset_id)] = amount
            for market_id, position in subaccount.positions.items():
                key = (str(subaccount.subaccount_id), market_id)
                actual_positions[key] = position.size_base_quantums
        for account, balances in state.ledger.system.items():
            for asset_id, amount in balances.items():
                actual_balances[(str(account), asset_id)] = amount
        _compare("balance", {k: v for k, v in self.balances.items() if v}, actual_balances)
        _compare("position", {k: v for k, v in self.positions.items() if v}, actual_positions)
        if self.fees_paid != self.fees_seen:
            raise AuditFailure(f"fees: transfers {self.fees_paid} != fills {self.fees_seen}")
        shares = {owner: held.shares for owner, held in state.vault.owners.items()}
        if {k: v for k, v in self.vault_shares.items() if v} != shares:
            raise AuditFailure(
                f"vault shares: events say {dict(self.vault_shares)}, state {shares}"
            )


def _compare(
    what: str, expected: dict[tuple[str, str], int], actual: dict[tuple[str, str], int]
) -> None:
    if expected == actual:
        return
    for key in sorted(expected.keys() | actual.keys()):
        if expected.get(key, 0) != actual.get(key, 0):
            raise AuditFailure(
                f"{what} of {key[0]} in {key[1]}: events say {expected.get(key, 0)}, "
                f"state has {actual.get(key, 0)}"
            )


def receipt_problem(receipt: LiquidationReceipt, per_unit: int) -> str:
    """What is wrong with a receipt, from its own numbers (exact fractions, no engine code);
    "" when nothing is."""
    held, size, side = receipt.position_base_quantums, receipt.size_base_quantums, receipt.side
    if size <= 0 or size > abs(held) or held * side >= 0:
        return "does not close the position toward zero"
    price = Fraction(receipt.notional_quote_quantums * per_unit, size)  # average, per unit
    slack = Fraction(per_unit, size)  # a notional rounds by less than a quantum
    bound = receipt.bound_price_quantums
    if (side is Side.SELL and price < bound - slack) or (
        side is Side.BUY and price > bound + slack
    ):
        return f"filled at {float(price):.0f}, worse than its bound {bound}"
    exact = receipt.mark_price_quantums - Fraction(receipt.equity_quote_quantums * per_unit, held)
    if side is Side.SELL:  # a sell is bounded at one quantum; a buy back's bound may be below 0
        exact = max(exact, Fraction(1))
    if abs(exact - receipt.bankruptcy_price_quantums) > 1:
        return f"bankruptcy price {receipt.bankruptcy_price_quantums}, not {float(exact):.0f}"
    below = receipt.equity_quote_quantums < receipt.initial_quote_quantums
    if not below and receipt.subaccount != str(FUND_BOOK):
        return "an account at or above initial margin was liquidated"
    return ""
