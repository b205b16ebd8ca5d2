"""What every command of the command line shares: the consoles, one-line errors, the progress
bar, the signer's key, and the error a node's refusal becomes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from clearhouse.core.errors import ClearhouseError, ConfigError

if TYPE_CHECKING:
    from clearhouse.client import Wallet


console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


class NodeRefused(ClearhouseError):
    """The node refused a request or a command; ``code`` is the node's own (a RejectReason's
    name such as ``PARAM_COOLDOWN``, or ``NOT_FOUND``, ``BAD_SIGNATURE``, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def fail(code: str, message: str) -> None:
    """One line on stderr, however long and whatever it holds: never wrapped, never markup."""
    line = escape(f"[{code}] {' '.join(message.split())}")
    errors.print(f"[red]error[/red] {line}", soft_wrap=True)


def progress_bar(*, eta: bool = False) -> Progress:
    remaining = (TimeRemainingColumn(),) if eta else ()
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), *remaining, console=errors, transient=True,
        disable=not errors.is_terminal,
    )  # fmt: skip


def progress_callback(
    progress: Progress, name: str, every: int = 500
) -> Callable[[int, int], None]:
    task = progress.add_task(name, total=None)

    def advance(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            progress.update(task, completed=done, total=total)

    return advance


def signer_key(key_file: Path | None) -> Wallet | None:
    """The key named by --key-file or CLEARHOUSE_KEY (hex), if any; both is refused."""
    import os

    from clearhouse.client import Wallet

    key = os.environ.get("CLEARHOUSE_KEY")
    if key_file is not None and key:
        # Two keys named: signing with the one not meant is worse than not starting.
        raise ConfigError("name the key once: --key-file or CLEARHOUSE_KEY, not both")
    if key_file is not None:
        return Wallet.from_key_file(key_file)
    return Wallet.from_hex(key) if key else None
