"""A reference auditor: re-derives balances and positions from events alone and compares them
with the engine's state (TigerBeetle's auditor). It shares no code with the engine's ledger or
settlement: if both agree, a bug would have to be made twice, the same way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from clearhouse.core.engine import Engine
from clearhouse.core.messages import Event, MarketSettled, OrderFilled, Transferred


class AuditFailure(AssertionError):
    """The engine's state differs from what its own events say."""


class Auditor:
    def __init__(self) -> None:
        self.balances: dict[tuple[str, str], int] = defaultdict(int)
        self.positions: dict[tuple[str, str], int] = defaultdict(int)
        self.fees_paid = 0
        self.fees_seen = 0

    def observe(self, events: Iterable[Event]) -> None:
        for event in events:
            match event:
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
                case MarketSettled():
                    for key in [k for k in self.positions if k[1] == event.market_id]:
                        self.positions[key] = 0

    def check(self, engine: Engine) -> None:
        """Compare everything derived from events with the engine's state; raise on a difference."""
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
