"""What every command of the command line shares: the consoles, one-line errors, the progress
bar, the signer's key, the options of a command that talks to a node, a client of that node
whose refusals become one line (``NodeRefused``), JSON and times as printed."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
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
    from clearhouse.client import Client, Wallet


console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)

# The options of every command that talks to a node.
DEFAULT_URL = "http://127.0.0.1:8400"
Url = Annotated[str, typer.Option(help="The node's base URL.")]
SignerKey = Annotated[
    Path | None,
    typer.Option("--key-file", help="A file holding the signer's hex private key (mode 600); "
                 "else CLEARHOUSE_KEY."),
]  # fmt: skip
AsJson = Annotated[bool, typer.Option("--json", help="Print the node's JSON, for machines.")]


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


@contextmanager
def node_client(
    url: str,
    key_file: Path | None = None,
    *,
    signs: bool = False,
    reasons: Callable[[str], str | None] | None = None,
) -> Iterator[Client]:
    """A client of the node at ``url``, signing with the key --key-file or CLEARHOUSE_KEY
    names (required when ``signs``): a refusal (``reasons`` puts its code in words, where it
    knows it) or a node out of reach is one line."""
    import httpx

    from clearhouse.client import ApiRejection, Client

    wallet = signer_key(key_file)
    if signs and wallet is None:
        raise ConfigError("this command is signed: name its key with --key-file or CLEARHOUSE_KEY")
    client = Client(url, wallet)
    try:
        yield client
    except httpx.TransportError as error:  # already retried with backoff
        raise ConfigError(f"cannot reach a node at {url} ({error}): is --url right?") from None
    except ApiRejection as refused:
        why = (reasons(refused.code) if reasons else None) or refused.message
        raise NodeRefused(
            refused.code, f"{refused.request} refused ({refused.status}): {why}"
        ) from None
    finally:
        client.close()


def print_json(value: object) -> None:
    console.print_json(json.dumps(value), highlight=False)


def utc(ns: int) -> str:
    """A time since the epoch in nanoseconds as ``2026-01-01 00:00:00 UTC``; ``-`` for 0."""
    from datetime import UTC, datetime

    if not ns:
        return "-"
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
