"""``clearhouse vault`` and ``clearhouse options-vault``: the venue's two vaults from the command
line (SPEC §11) — buy shares at NAV with USDC, redeem them after the lock-up, and read a vault
and an owner's shares. Both groups have the same three commands; what differs is ``VaultKind``.

An amount is USDC as a person writes it (``2500``, ``2500.5``), converted exactly on the venue's
scale or refused before anything is signed (a float's digits, a fraction of a quantum, zero or
less); shares are whole numbers, as ``show`` prints them. A refusal is one line with the node's
code (exit 14), bad input one line with ``INVALID_ARGUMENT`` (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from clearhouse.cli.output import (
    DEFAULT_URL,
    AsJson,
    SignerKey,
    Url,
    console,
    node_client,
    print_json,
    utc,
)
from clearhouse.core.errors import InvalidArgument

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

    from clearhouse.client import Client, Units

Answer = dict[str, Any]

# The node's refusals of a deposit or a redemption, in words (the code is printed beside them).
_REFUSALS = {
    "OPTIONS_VAULT_NOT_SET_UP": "this venue has no options vault",
    "AMOUNT_NOT_POSITIVE": "the amount or the shares must be more than zero",
    "INSUFFICIENT_FUNDS": "the subaccount holds less USDC than that",
    "WITHDRAWAL_EXCEEDS_FREE_COLLATERAL": "more than the free collateral that may leave (the "
    "subaccount's, or for a redemption the vault's)",
    "VAULT_LOCKED": "the shares are still locked up after the last deposit (show says until when)",
    "VAULT_INSUFFICIENT_SHARES": "more shares than this account holds",
    "VAULT_AMOUNT_TOO_SMALL": "too small: it would mint no share, or redeem for nothing",
    "VAULT_INSOLVENT": "the vault's NAV is negative: no deposit may buy into its loss",
    "VAULT_FULL": "the vault has as many owners as it may",
    "ORACLE_STALE": "a price the vault or the subaccount depends on is stale: try again later",
    "WITHDRAWALS_PAUSED": "withdrawals are paused (the vault is under liquidation, or a market "
    "it holds has a bankrupt holder)",
}


@dataclass(frozen=True, slots=True)
class VaultKind:
    """One of the venue's vaults, as the SDK reaches it."""

    name: str  # as a sentence says it
    path: str  # its read route, as refusals name it
    deposit: Callable[[Client, Decimal, int], Answer]  # (client, USDC, subaccount)
    withdraw: Callable[[Client, int, int], Answer]  # (client, shares, subaccount)
    read: Callable[[Client], Answer]
    owner: Callable[[Client, str], Answer]  # (client, address)
    deposited: str  # the event a deposit answers with
    withdrawn: str


MARKET_MAKING = VaultKind(
    name="vault",
    path="/v1/vault",
    deposit=lambda c, amount, n: c.deposit_vault_decimal(amount, subaccount_number=n),
    withdraw=lambda c, shares, n: c.withdraw_vault(shares, subaccount_number=n),
    read=lambda c: c.vault(),
    owner=lambda c, address: c.vault_shares(address),
    deposited="VaultDeposited",
    withdrawn="VaultWithdrawn",
)
OPTIONS = VaultKind(
    name="options vault",
    path="/v1/options-vault",
    deposit=lambda c, amount, n: c.deposit_options_vault_decimal(amount, subaccount_number=n),
    withdraw=lambda c, shares, n: c.withdraw_options_vault(shares, subaccount_number=n),
    read=lambda c: c.options_vault(),
    owner=lambda c, address: c.options_vault_shares(address),
    deposited="OptionsVaultDeposited",
    withdrawn="OptionsVaultWithdrawn",
)

Amount = Annotated[
    str, typer.Argument(help="USDC to deposit, as written: 2500 or 2500.5 (exact, never rounded).")
]
Shares = Annotated[str, typer.Argument(help="Shares to redeem: a whole number, as show prints it.")]
Subaccount = Annotated[
    int, typer.Option(min=0, max=127, help="Your subaccount the USDC comes from or goes to.")
]
Owner = Annotated[
    str | None,
    typer.Option("--address", help="Whose shares to show (else the signer's, if a key is named)."),
]


def usdc_amount(text: str) -> Decimal:
    """``"2500.5"`` as a ``Decimal`` more than zero; anything else refused (InvalidArgument).
    Whether it is a whole number of quantums is checked on the venue's scale, later."""
    from clearhouse.client.units import human_decimal

    amount = human_decimal(text.strip(), "amount")
    if amount <= 0:
        raise InvalidArgument(f"amount must be more than 0 USDC, not {text}")
    return amount


def share_count(text: str) -> int:
    """``"2500000"`` (underscores allowed) as a whole number of shares more than zero."""
    try:
        shares = int(text.strip())
    except ValueError:
        raise InvalidArgument(f"shares must be a whole number, not {text!r}") from None
    if shares <= 0:
        raise InvalidArgument(f"shares must be more than 0, not {text}")
    return shares


def _node(
    url: str, key_file: Path | None = None, *, signs: bool = False
) -> AbstractContextManager[Client]:
    return node_client(url, key_file, signs=signs, reasons=_REFUSALS.get)


def vault_group(kind: VaultKind, help_text: str) -> typer.Typer:
    """The ``deposit``, ``withdraw`` and ``show`` commands for one vault."""
    group = typer.Typer(no_args_is_help=True, help=help_text)

    @group.command()
    def deposit(
        amount: Amount,
        subaccount: Subaccount = 0,
        url: Url = DEFAULT_URL,
        key_file: SignerKey = None,
        as_json: AsJson = False,
    ) -> None:
        """Buy shares at NAV with USDC from your subaccount (the lock-up starts again)."""
        usdc = usdc_amount(amount)
        with _node(url, key_file, signs=True) as client:
            answer = kind.deposit(client, usdc, subaccount)
        _print_answer(answer, kind, as_json)

    @group.command()
    def withdraw(
        shares: Shares,
        subaccount: Subaccount = 0,
        url: Url = DEFAULT_URL,
        key_file: SignerKey = None,
        as_json: AsJson = False,
    ) -> None:
        """Redeem shares at NAV into your subaccount, once the lock-up has run."""
        count = share_count(shares)
        with _node(url, key_file, signs=True) as client:
            answer = kind.withdraw(client, count, subaccount)
        _print_answer(answer, kind, as_json)

    @group.command()
    def show(
        address: Owner = None,
        url: Url = DEFAULT_URL,
        key_file: SignerKey = None,
        as_json: AsJson = False,
    ) -> None:
        """NAV and shares, and an owner's shares, their value at NAV now and when they unlock."""
        from clearhouse.client.addresses import normalize_address

        named = None if address is None else normalize_address(address)  # before any request
        with _node(url, key_file) as client:
            found = kind.read(client)
            who = named or client.account
            owner = None if who is None else kind.owner(client, who)
            units = None if as_json or found.get("caps") is None else client.units()
        if as_json:
            print_json({"vault": found, "owner": owner})
            return
        _print_vault(kind, found, owner, units)

    return group


vault = vault_group(
    MARKET_MAKING,
    "The market-making vault: buy shares at NAV with USDC, redeem them after the lock-up, read "
    "NAV and shares.",
)
options_vault = vault_group(
    OPTIONS,
    "The options vault (the options AMM): buy shares at NAV with USDC, redeem them after the "
    "lock-up, read NAV, shares and its vega, gamma and delta against their caps.",
)


# ── What the vault commands print ──────────────────────────────────────────────────────────


def _print_answer(answer: Answer, kind: VaultKind, as_json: bool) -> None:
    if as_json:
        print_json(answer)
        return
    line = f"accepted at height {answer.get('height')}"
    for event in answer.get("events", []):
        said = _event_line(event, kind)
        if said is not None:
            line += f": {said}"
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _event_line(event: Answer, kind: VaultKind) -> str | None:
    amount = _usdc(event.get("amount_quote"))
    if event.get("type") == kind.deposited:
        return (f"{amount} USDC from {event['subaccount']} bought {event['shares']:,} shares "
                f"of the {kind.name}")  # fmt: skip
    if event.get("type") == kind.withdrawn:
        return (f"{event['shares']:,} shares of the {kind.name} redeemed for {amount} USDC "
                f"into {event['subaccount']}")  # fmt: skip
    return None


def _usdc(text: object) -> str:
    """A decimal string of USDC with thousands separated: ``"2500.5"`` → ``2,500.5``."""
    return "-" if text is None else _plain(Decimal(str(text)))


def _plain(amount: Decimal) -> str:
    """``Decimal("2500.500000")`` as ``2,500.5``: exact, no exponent, no trailing zeros."""
    return f"{amount.normalize():,f}"


def _print_vault(kind: VaultKind, found: Answer, owner: Answer | None, units: Units | None) -> None:
    if found.get("set_up") is False:
        console.print(f"no {kind.name} on this venue (GET {kind.path}: set_up false)")
        return
    rows = {
        "NAV": f"{_usdc(found.get('nav_quote'))} USDC",
        "shares": f"{found['total_shares']:,}",
        "owners": f"{found.get('owners', 0):,}",
        **_options_rows(found, units),
    }
    if owner is not None:
        held = int(owner["shares"])
        rows |= {
            "owner": str(owner["address"]),
            "its shares": f"{held:,}",
            "their value at NAV": f"{_usdc(owner.get('value_quote'))} USDC",
            "redeemable from": utc(owner["unlocked_at_ns"]) if held else "-",
        }
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(key, escape(value))
    console.print(table)


def _options_rows(found: Answer, units: Units | None) -> dict[str, str]:
    """The options vault's exposure against its caps, in USDC, and what it quotes."""
    caps = found.get("caps")
    if units is None or caps is None:
        return {}
    exposure = found.get("exposure") or {}
    names = {"vega": "vega (per vol point)", "gamma": "gamma (per 1% move)", "delta": "delta"}
    rows = {
        label: _against(exposure.get(f"{name}_quantums", 0), caps[f"{name}_quantums"], units)
        for name, label in names.items()
    }
    rows["hedge (base quantums)"] = f"{found.get('hedge_position_base_quantums', 0):,}"
    rows["options quoted"] = str(found.get("quoted_markets", 0))
    return rows


def _against(value: int, cap: int, units: Units) -> str:
    """``12.5 of 200 USDC (6.25%)``: an exposure beside its cap."""
    from clearhouse.core.ids import QUOTE_ASSET

    used = "" if cap <= 0 else f" ({Decimal(abs(value) * 100) / Decimal(cap):.2f}%)"
    shown, most = _plain(units.amount(QUOTE_ASSET, value)), _plain(units.amount(QUOTE_ASSET, cap))
    return f"{shown} of {most} USDC{used}"
