"""The ``clearhouse`` command line: demo, verify, init, serve, simulate, backtests, bots."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

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
from rich.table import Column, Table
from typer.core import TyperCommand

from clearhouse.app.chain import verify as verify_journal
from clearhouse.core.errors import (
    BadDataDir,
    BadLocation,
    ClearhouseError,
    ConfigError,
    InvalidArgument,
    JournalCorrupt,
    JournalExists,
    JournalFormatError,
    JournalLocked,
    JournalNotFound,
    NodeFailed,
    StorageError,
    VerificationError,
)

if TYPE_CHECKING:
    from clearhouse.client import Client, Units, Wallet
    from clearhouse.client.bots import Bot
    from clearhouse.client.governance import ActionInput
    from clearhouse.core.messages import GovAction
    from clearhouse.core.params import MarketParams
    from clearhouse.node.dev import VenueRoles
    from clearhouse.sim.stress.montecarlo import Task as StressTask
    from clearhouse.sim.stress.scenario import Scenario as StressScenario

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Clearhouse clearing engine.")
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


class NodeRefused(ClearhouseError):
    """The node refused a request or a command; ``code`` is the node's own (a RejectReason's
    name such as ``PARAM_COOLDOWN``, or ``NOT_FOUND``, ``BAD_SIGNATURE``, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# The exit codes, one per kind of failure an operator can meet (stable: scripts test them; the
# README lists them). The first class an error is an instance of decides: subclasses first.
EXIT_OK = 0
EXIT_CODES: tuple[tuple[type[ClearhouseError], int], ...] = (
    (VerificationError, 1),  # the journal disagrees with itself (verify, a node's recovery)
    (InvalidArgument, 2),  # bad input, as click's usage errors (also 2)
    (ConfigError, 2),
    (JournalNotFound, 3),  # no journal where one was to be read
    (JournalLocked, 4),  # another process (a node, a demo) holds the journal
    (JournalFormatError, 5),  # a newer format version, an older or unknown schema
    (JournalCorrupt, 6),  # damaged SQLite pages, a file that is no database
    (BadDataDir, 8),  # --data / --out is a file, or cannot be created or written
    (BadLocation, 7),  # an unknown URL scheme, a URL without a path
    (JournalExists, 9),  # demo: the folder already holds a journal
    (NodeFailed, 10),  # a node whose sequencer stopped on an error
    (StorageError, 11),  # any other storage failure (a server that cannot be reached, …)
    (NodeRefused, 14),  # the node refused a request or a command (gov): its code is printed
    (ClearhouseError, 12),
)

# A client-only install (``pip install "clearhouse[client]"``) lacks the ``node`` extra's
# packages; a command that needs one says which extra to install instead of a traceback.
NODE_EXTRA_MODULES = frozenset(
    {"numpy", "scipy", "fastapi", "starlette", "uvicorn", "psycopg", "prometheus_client",
     "plotly", "fastapi_offline"}
)  # fmt: skip
EXIT_MISSING_EXTRA = 13


def exit_code(error: ClearhouseError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


def fail(code: str, message: str) -> None:
    """One line on stderr, however long and whatever it holds: never wrapped, never markup."""
    line = escape(f"[{code}] {' '.join(message.split())}")
    errors.print(f"[red]error[/red] {line}", soft_wrap=True)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        console.print(f"clearhouse {version('clearhouse')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:  # fmt: skip
    """Clearhouse clearing engine."""


def _progress(*, eta: bool = False) -> Progress:
    remaining = (TimeRemainingColumn(),) if eta else ()
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), *remaining, console=errors, transient=True,
        disable=not errors.is_terminal,
    )  # fmt: skip


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 30, help="Simulated hours.")] = 24.0,
    out: Annotated[Path, typer.Option(help="Directory for the journal.")] = Path("out/demo"),
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary as JSON here.")
    ] = None,
    block_seconds: Annotated[int, typer.Option(min=1, max=60, help="Block interval.")] = 10,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a journal already in --out (never one a running node holds).",
        ),
    ] = False,
) -> None:
    """Run a venue on a seeded synthetic market and print what happened."""
    from clearhouse.sim.demo import run_demo

    with _progress() as progress:
        task = progress.add_task("simulating", total=None)

        def advance(done: int, total: int) -> None:
            if done % 200 == 0 or done == total:
                progress.update(task, completed=done, total=total)

        result = run_demo(
            seed=seed, hours=hours, out_dir=out, block_seconds=block_seconds,
            on_progress=advance, force=force,
        )  # fmt: skip
    _print_summary(result.summary, result.journal_path)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.summary, indent=2, sort_keys=True) + "\n")


def _print_liquidations(liquidations: object) -> None:
    assert isinstance(liquidations, dict)
    stages = ", ".join(f"{k.lower()} {v}" for k, v in liquidations["by_stage"].items())
    console.print(
        f"liquidations: {liquidations['steps']} steps ({stages}) on "
        f"{liquidations['subaccounts']} subaccounts, {liquidations['notional_usdc']:,.0f} USDC "
        f"closed; fees {liquidations['fees_to_keepers_usdc']:,.2f} to keepers, "
        f"{liquidations['fees_to_fund_usdc']:,.2f} to the fund"
    )
    console.print(
        f"backstops: {liquidations['auctions']} auctions, {liquidations['adl_events']} ADL "
        f"fills absorbing {liquidations['adl_shortfall_usdc']:,.2f} USDC, insurance drawn "
        f"{liquidations['insurance_drawn_usdc']:,.2f} USDC, collateral seized "
        f"{liquidations['collateral_seized_usdc']:,.2f} USDC, deficit "
        f"{liquidations['deficit_usdc']:,.2f} USDC"
    )


def _print_options(options: object) -> None:
    assert isinstance(options, dict)
    settled = ", ".join(f"{m} at {p:,.2f}" for m, p in options["settlements"].items()) or "none"
    console.print(
        f"options: {options['markets_listed']} markets listed, {options['trades']} trades, "
        f"{options['volume_usdc']:,.0f} USDC premium volume; settled: {settled}"
    )
    table = Table(Column("portfolio", no_wrap=True), "mode", "equity", "IM", "MM",
                  "IM if standard", "delta BTC", "gamma /USD", "vega USDC",
                  "theta USDC/day")  # fmt: skip
    for name, p in options["portfolios"].items():
        table.add_row(
            name, p["mode"], f"{p['equity_usdc']:,.0f}", f"{p['initial_margin_usdc']:,.0f}",
            f"{p['maintenance_margin_usdc']:,.0f}", f"{p['standard_mode_initial_usdc']:,.0f}",
            f"{p['delta_btc']:+.3f}", f"{p['gamma_per_usd']:+.2e}", f"{p['vega_usdc']:+,.0f}",
            f"{p['theta_usdc_per_day']:+,.0f}",
        )  # fmt: skip
    console.print(table)
    for name, p in options["portfolios"].items():
        positions = ", ".join(f"{size:+g} {m}" for m, size in p["positions"].items())
        console.print(f"  {name}: {positions or 'flat'}")


def _print_summary(summary: dict[str, object], journal_path: Path) -> None:
    console.print(
        f"[bold]Clearhouse demo[/bold]  seed {summary['seed']}, {summary['hours']} h, "
        f"{summary['blocks']} blocks, {summary['commands']} commands"
    )
    table = Table("market", "status", "trades", "volume (USDC)", "open interest", "mark",
                  "funding paid (USDC)", "settled at")  # fmt: skip
    markets = summary["markets"]
    assert isinstance(markets, dict)
    for market_id, m in markets.items():
        table.add_row(
            market_id, m["status"], str(m["trades"]), f"{m['volume_usdc']:,.0f}",
            f"{m['open_interest']:,.4f}", f"{m['mark_price_usdc']:,.2f}",
            f"{m['funding_paid_usdc']:,.2f}",
            "-" if m["settlement_price_usdc"] is None else f"{m['settlement_price_usdc']:,.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"trades: {summary['trades']}   volume: {summary['volume_usdc']:,.0f} USDC")
    console.print(f"funding payments: {summary['funding_payments']}")
    console.print(f"insurance fund: {summary['insurance_fund_usdc']:,.6f} USDC   "
                  f"fee pool: {summary['fee_pool_usdc']:,.6f} USDC")  # fmt: skip
    _print_liquidations(summary["liquidations"])
    vault = summary["vault"]
    assert isinstance(vault, dict)
    console.print(
        f"vault: NAV {vault['nav_usdc']:,.6f} USDC   owners: {vault['owners']}   "
        f"positions: {vault['positions']}   resting quotes: {vault['resting_orders']}   "
        f"takeovers: {vault['takeovers']}"
    )
    if "options" in summary:
        _print_options(summary["options"])
    console.print(f"rejected commands: {summary['rejections']}")
    console.print(f"journal: {journal_path}")
    console.print(f"final state root: {summary['state_root']}")
    _print_dashboard_hint()


def _print_dashboard_hint() -> None:
    # The demo replays a simulated clock; the dashboard wants a live node with a bot quoting.
    console.print("dashboard: `clearhouse serve --dev`, then in another terminal")
    console.print("  `clearhouse maker BTC-PERP --size 1000000 --faucet 1000000`;")
    console.print("  open http://127.0.0.1:8400/ (orders sent with the SDK trade against it)")


@app.command()
def verify(
    location: Annotated[
        str, typer.Argument(help="A journal: a SQLite file, or a postgresql:// URL.")
    ],
    signatures: Annotated[
        bool, typer.Option("--signatures", help="Also re-check every journaled signature.")
    ] = False,
    chain_id: Annotated[
        int | None,
        typer.Option(help="Override the journal's EIP-712 chain id (journals that lack one)."),
    ] = None,
    verifying_contract: Annotated[
        str | None,
        typer.Option(help="Override the journal's custody contract (journals that lack one)."),
    ] = None,
) -> None:
    """Replay a journal from genesis and check every block's hashes and state root."""
    from clearhouse.adapters.stores import open_journal

    # Read only: a mistyped location is reported (JournalNotFound), never made into a journal.
    journal = open_journal(location, read_only=True)  # main() reports a StorageError
    try:
        head = journal.head()
        total = 0 if head is None else head.header.height
        with _progress() as progress:
            task = progress.add_task("verifying", total=total)
            result = verify_journal(
                journal,
                on_block=lambda n: progress.update(task, completed=n) if n % 500 == 0 else None,
            )
    except VerificationError as failure:
        errors.print(f"[red]verification failed[/red] at height {failure.height}: "
                     f"{escape(failure.what)}", soft_wrap=True)  # fmt: skip
        raise typer.Exit(1) from None
    finally:
        journal.close()
    console.print(f"verified {result.blocks} blocks, state root 0x{result.state_root.hex()}")
    if signatures:
        _verify_signatures(location, chain_id, verifying_contract)


def _verify_signatures(location: str, chain_id: int | None, verifying_contract: str | None) -> None:
    from clearhouse.adapters.stores import open_journal
    from clearhouse.app.audit import check_signatures, journal_domain
    from clearhouse.app.signing import Domain
    from clearhouse.node.dev import dev_address
    from clearhouse.node.genesis import DEV_CHAIN_ID

    journal = open_journal(location, read_only=True)
    try:
        # The domain the journal records; the flags override it (a journal written before it
        # was recorded: the dev node's by default).
        recorded = journal_domain(journal)
        name, version = (recorded.name, recorded.version) if recorded else ("Clearhouse", "1")
        domain = Domain(
            chain_id or (recorded.chain_id if recorded else DEV_CHAIN_ID),
            (verifying_contract or (recorded.verifying_contract if recorded else "")
             or dev_address("custody-contract")).lower(),
            name, version,
        )  # fmt: skip
        console.print(f"signing domain: {domain.name} {domain.version}, chain {domain.chain_id}, "
                      f"contract {domain.verifying_contract}"
                      f"{'' if recorded else ' (not recorded in the journal)'}")  # fmt: skip
        audit = check_signatures(journal, domain)
    except VerificationError as failure:
        errors.print(f"[red]signature check failed[/red] at height {failure.height}: "
                     f"{escape(failure.what)}", soft_wrap=True)  # fmt: skip
        raise typer.Exit(1) from None
    finally:
        journal.close()
    console.print(f"checked {audit.checked} signatures ({audit.unsigned} commands the node "
                  "made itself carry none)")  # fmt: skip


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the genesis file.")] = Path(
        "genesis.toml"
    ),
) -> None:
    """Write a commented genesis file describing the default venue (edit it, then serve it)."""
    import time

    from clearhouse.node.genesis import default_genesis_text

    text = default_genesis_text(time.time_ns())
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        errors.print(f"[red]error[/red] [CONFIG_ERROR] {path} exists: not overwritten")
        raise typer.Exit(2) from None
    except OSError as error:
        errors.print(f"[red]error[/red] [CONFIG_ERROR] cannot write {path}: {error.strerror}")
        raise typer.Exit(2) from None
    console.print(f"wrote {path}: replace its domain and addresses, then "
                  f"clearhouse serve --genesis {path}")  # fmt: skip


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65_535, help="Port to listen on.")] = 8400,
    data: Annotated[
        Path, typer.Option(help="Data directory (the SQLite journal lives here).")
    ] = Path("data"),
    store: Annotated[
        str | None, typer.Option(help="postgresql://... to journal in PostgreSQL instead.")
    ] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Dev venue: its own price feed and a faucet.")
    ] = False,
    snapshot_every: Annotated[
        int, typer.Option(min=0, help="Blocks between snapshots (0: none).")
    ] = 1_000,
    ip_rate: Annotated[
        float, typer.Option(min=0, help="Request weight per second per IP (0: no limit).")
    ] = 2_000.0,
    account_rate: Annotated[
        float, typer.Option(min=0, help="Commands per second per account (0: no limit).")
    ] = 1_000.0,
    verify_workers: Annotated[
        int, typer.Option(min=0, max=64, help="Processes recovering batches' signatures.")
    ] = 0,
    operator: Annotated[
        str | None, typer.Option(help="A new venue's operator (lists markets).")
    ] = None,
    relayer: Annotated[
        str | None, typer.Option(help="A new venue's custody relayer (credits deposits).")
    ] = None,
    publisher: Annotated[
        list[str] | None, typer.Option(help="A new venue's oracle publisher (repeat, >= 3).")
    ] = None,
    genesis: Annotated[
        Path | None,
        typer.Option(help="A new venue's genesis file: domain, roles, listings (see init)."),
    ] = None,
    chain_id: Annotated[
        int | None,
        typer.Option(min=1, max=2**63 - 1, help="With the role flags: the venue's chain id."),
    ] = None,
    verifying_contract: Annotated[
        str | None, typer.Option(help="With the role flags: the venue's custody contract.")
    ] = None,
) -> None:
    """Run a node: the sequencer, its journal and the HTTP/WebSocket API."""
    from clearhouse.core.ids import is_address
    from clearhouse.node.server import NodeConfig
    from clearhouse.node.server import serve as run_node

    roles = _roles(operator, relayer, publisher)
    if verifying_contract is not None and not is_address(verifying_contract.lower()):
        errors.print("[red]error[/red] [CONFIG_ERROR] --verifying-contract is an address "
                     "(0x and 40 hex digits)")  # fmt: skip
        raise typer.Exit(2)
    config = NodeConfig(
        host=host, port=port, data_dir=data, store=store, dev=dev,
        snapshot_every=snapshot_every, ip_rate=ip_rate, account_rate=account_rate,
        verify_workers=verify_workers, roles=roles, genesis=genesis, chain_id=chain_id,
        verifying_contract=None if verifying_contract is None else verifying_contract.lower(),
    )  # fmt: skip
    raise typer.Exit(run_node(config))


def _roles(
    operator: str | None, relayer: str | None, publishers: list[str] | None
) -> VenueRoles | None:
    """A venue's roles from the command line: all three named, or none (``--dev``)."""
    from clearhouse.core.ids import Address, is_address
    from clearhouse.node.dev import VenueRoles

    if operator is None and relayer is None and not publishers:
        return None
    named = [operator or "", relayer or "", *(publishers or [])]
    bad = [a for a in named if not is_address(a.lower())]
    if operator is None or relayer is None or len(publishers or []) < 3 or bad:
        errors.print("[red]error[/red] [CONFIG_ERROR] name --operator, --relayer and at least "
                     f"three --publisher addresses (0x and 40 hex digits){'; bad: ' if bad else ''}"
                     f"{', '.join(bad)}")  # fmt: skip
        raise typer.Exit(2)
    return VenueRoles(Address(operator.lower()), Address(relayer.lower()),
                      tuple(Address(p.lower()) for p in publishers or []))  # fmt: skip


KeyFile = Annotated[
    Path | None,
    typer.Option("--key-file", help="A file holding the bot's hex private key (mode 600)."),
]


def _bot_client(url: str, faucet: int, key_file: Path | None) -> Client:
    """The bot's client: its key from --key-file or CLEARHOUSE_KEY (hex), else a new one;
    funded in dev. Its actions and refusals are logged to stderr, one line each."""
    import logging

    from clearhouse.client import Client, Wallet

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the bot logs its own actions
    wallet = _key(key_file) or Wallet.create()
    import httpx

    client = Client(url, wallet)
    try:
        client.info()  # the node answers before the bot starts, or the bot does not start
        if faucet:
            client.faucet(faucet)
    except httpx.TransportError as error:  # already retried with backoff
        raise ConfigError(f"cannot reach a node at {url} ({error}): is --url right?") from None
    console.print(f"bot account {wallet.address} on {url}")
    return client


def _run_bot(
    make: Callable[[Client], Bot], url: str, faucet: int, key_file: Path | None, interval: float
) -> None:
    """Step until SIGINT or SIGTERM, then stop the bot (the maker cancels its quotes). The
    signals are caught first, so that one sent while the bot starts still stops it cleanly."""
    import threading

    from clearhouse.client.bots import run, stop_on_signals

    stop = threading.Event()
    stop_on_signals(stop)
    run(make(_bot_client(url, faucet, key_file)), interval, stop=stop)


@app.command()
def keeper(
    url: Annotated[str, typer.Option(help="The node's base URL.")] = "http://127.0.0.1:8400",
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between passes.")] = 1.0,
    bid_share_ppm: Annotated[
        int, typer.Option(min=0, max=1_000_000, help="Share of each auction to bid for.")
    ] = 0,
    faucet: Annotated[int, typer.Option(min=0, help="Dev nodes: USDC to fund it with.")] = 0,
    key_file: KeyFile = None,
) -> None:
    """The reference keeper bot: liquidate what the node lists, bid in auctions."""
    from clearhouse.client.bots import KeeperBot

    _run_bot(lambda client: KeeperBot(client, bid_share_ppm=bid_share_ppm), url, faucet,
             key_file, interval)  # fmt: skip


@app.command()
def maker(
    market: Annotated[str, typer.Argument(help="Market to quote, e.g. BTC-PERP.")],
    size: Annotated[int, typer.Option(min=1, help="Size per level, base quantums.")],
    url: Annotated[str, typer.Option(help="The node's base URL.")] = "http://127.0.0.1:8400",
    levels: Annotated[int, typer.Option(min=1, max=50, help="Levels per side.")] = 5,
    spread_ppm: Annotated[int, typer.Option(min=0, help="First level's distance.")] = 1_000,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between requotes.")] = 2.0,
    faucet: Annotated[int, typer.Option(min=0, help="Dev nodes: USDC to fund it with.")] = 0,
    key_file: KeyFile = None,
) -> None:
    """The reference market-maker bot: a ladder around the index, requoted every interval;
    its quotes are cancelled when it stops (Ctrl-C, SIGTERM)."""
    from clearhouse.client.bots import MarketMaker

    def make(client: Client) -> Bot:
        return MarketMaker(client, market, size, levels=levels, spread_ppm=spread_ppm)

    _run_bot(make, url, faucet, key_file, interval)


@app.command()
def simulate(
    seeds: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many seeds to run.")] = 20,
    seed: Annotated[
        int | None, typer.Option(help="Run this one seed (to reproduce a failure).")
    ] = None,
    start: Annotated[int, typer.Option(min=0, help="First seed of the range.")] = 0,
    blocks: Annotated[int, typer.Option(min=10, max=100_000, help="Blocks per seed.")] = 80,
) -> None:
    """Drive the engine through seeded random workloads with injected faults; check every block."""
    from clearhouse.sim.harness import SeedResult
    from clearhouse.sim.harness import simulate as run_simulation

    chosen = range(seed, seed + 1) if seed is not None else range(start, start + seeds)
    with _progress() as progress:
        task = progress.add_task("simulating", total=len(chosen))

        def advance(result: SeedResult) -> None:
            progress.advance(task)

        results = run_simulation(chosen, blocks=blocks, on_seed=advance)
    commands = sum(r.commands for r in results)
    failed = next((r.violation for r in results if r.violation is not None), None)
    liquidations = sum(r.liquidations for r in results)
    deleveraged = sum(r.deleveraged for r in results)
    receipts = sum(r.receipts for r in results)
    if failed is None:
        console.print(
            f"checked {liquidations} liquidation steps and {deleveraged} ADL fills, "
            f"{receipts} liquidation receipts rechecked"
        )
        option_fills = sum(r.option_fills for r in results)
        settlements = sum(r.settlements for r in results)
        console.print(f"checked {option_fills} option fills and {settlements} expiry settlements")
        console.print(f"{len(results)} seeds, {commands} commands, 0 invariant violations")
        return
    errors.print(
        f"[red]seed {failed.seed} failed[/red] at height {failed.height}: {failed.what}\n"
        f"reproduce with: clearhouse simulate --seed {failed.seed} --blocks {blocks}"
    )
    raise typer.Exit(1)


@app.command("backtest-margin")
def backtest_margin(
    csv: Annotated[
        list[Path] | None,
        typer.Argument(help="Candle CSVs (date,open,high,low,close,...), one publisher each."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Run the crash windows of this data folder instead.")
    ] = None,
    market: Annotated[str, typer.Option(help="BTC or ETH (with CSV files).")] = "BTC",
    start: Annotated[str, typer.Option(help="First period, ISO UTC (with CSV files).")] = "",
    end: Annotated[str, typer.Option(help="End of the last period, ISO UTC.")] = "",
    warmup_days: Annotated[int, typer.Option(min=0, max=365, help="EWMA warm-up.")] = 7,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the rows as JSON here.")
    ] = None,
) -> None:
    """Backtest the engine's margin as CCPs do: per period of risk (one step of the data), a
    long and a short at maximum leverage against the maintenance margin held at its start."""
    from clearhouse.core.ids import OracleId
    from clearhouse.sim.backtest import (
        CRASH_WINDOWS,
        NS_PER_DAY,
        backtest_files,
        backtest_window,
        parse_utc_ns,
    )

    if (data is None) == (not csv):
        raise typer.BadParameter("give CSV files or --data, not both")
    rows = []
    if data is not None:
        for window in CRASH_WINDOWS:
            rows.append(backtest_window(window, data).as_row())
            _print_backtest_row(rows[-1])
    else:
        assert csv is not None
        if market not in ("BTC", "ETH") or not start or not end:
            raise typer.BadParameter("--market BTC|ETH, --start and --end are needed")
        rows.append(backtest_files(
            ", ".join(p.name for p in csv), csv, oracle_id=OracleId(f"{market}-USD"),
            start_ns=parse_utc_ns(start), end_ns=parse_utc_ns(end),
            warmup_ns=warmup_days * NS_PER_DAY,
        ).as_row())  # fmt: skip
        _print_backtest_row(rows[-1])
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(rows, indent=2) + "\n")


@app.command("backtest-solvency")
def backtest_solvency(
    data: Annotated[Path, typer.Option(help="The data folder holding the crash windows.")],
    crash_days: Annotated[
        bool, typer.Option(help="Only each window's steepest 24 hours (about 10 s each).")
    ] = False,
    window: Annotated[str, typer.Option(help="Only windows whose name contains this.")] = "",
    block_seconds: Annotated[int, typer.Option(min=1, max=300, help="Block interval.")] = 30,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the rows as JSON here.")
    ] = None,
) -> None:
    """Run a venue through each crash window (leveraged traders, a maker that thins out, a
    keeper, the vault, the insurance fund) and report its liquidations and solvency."""
    from clearhouse.sim.backtest import CRASH_WINDOWS
    from clearhouse.sim.solvency import replay_window

    chosen = [w for w in CRASH_WINDOWS if window.lower() in w.name.lower()]
    if not chosen:
        raise typer.BadParameter(f"no crash window's name contains {window!r}")
    missing = [f for w in chosen for f in w.files if not (data / f).is_file()]
    if missing:
        raise typer.BadParameter(f"{data / missing[0]} is missing", param_hint="--data")
    rows = []
    for each in chosen:
        with _progress() as progress:
            outcome = replay_window(
                each, data, crash_day=crash_days, block_ns=block_seconds * 1_000_000_000,
                on_block=_progress_callback(progress, each.name),
            )  # fmt: skip
        rows.append(outcome.as_row())
        _print_solvency_row(rows[-1])
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(rows, indent=2) + "\n")
    if not all(row["solvent"] for row in rows):
        raise typer.Exit(1)


def _progress_callback(
    progress: Progress, name: str, every: int = 500
) -> Callable[[int, int], None]:
    task = progress.add_task(name, total=None)

    def advance(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            progress.update(task, completed=done, total=total)

    return advance


def _print_solvency_row(row: dict[str, object]) -> None:
    fund, vault = row["fund_usdc"], row["vault_usdc"]
    assert isinstance(fund, list) and isinstance(vault, list)
    steps = row["steps"]
    assert isinstance(steps, dict)
    console.print(
        f"{row['window']}: {row['blocks']} blocks, {row['opens']} positions opened, "
        f"{sum(steps.values())} liquidation steps "
        f"({', '.join(f'{k.lower()} {v}' for k, v in steps.items())}), "
        f"{row['liquidated_usdc']:,.0f} USDC liquidated, liquidatable → safe in "
        f"{row['seconds_to_safe_median']:.0f} s median, {row['seconds_to_safe_max']:.0f} s max; "
        f"{row['bankrupt_steps']} steps found the account under water; bad debt "
        f"{row['bad_debt_usdc']:,.2f} USDC (fund paid {row['fund_paid_usdc']:,.2f}, ADL took "
        f"{row['adl_shortfall_usdc']:,.2f} in {row['adl_events']} fills), hidden debt "
        f"{row['hidden_debt_usdc']:,.2f}; fund {fund[0]:,.0f} → low {fund[1]:,.0f} → "
        f"{fund[2]:,.0f}, vault {vault[0]:,.0f} → low {vault[1]:,.0f} → {vault[2]:,.0f}; "
        f"deficit {row['deficit_usdc']:,.2f} USDC: {'solvent' if row['solvent'] else 'INSOLVENT'}"
    )


def _print_backtest_row(row: dict[str, object]) -> None:
    im = row["im_fraction_range"]
    assert isinstance(im, list)
    console.print(
        f"{row['window']}: {row['periods']} periods of {row['cadence_min']} min, "
        f"{row['breaches']} breaches in {row['observations']}, coverage {row['coverage']:.2%}, "
        f"{row['breaches_per_250']:.2f} per 250, Kupiec p {row['kupiec_p']:.3f}, "
        f"Christoffersen p {row['christoffersen_p']:.3f}, max leverage "
        f"{row['max_leverage']:.1f}x, IM {im[0]:.2%}..{im[1]:.2%} (median "
        f"{row['im_fraction_median']:.2%}), deficit {row['deficit_usdc']:,.2f} USDC"
    )


@app.command()
def stress(
    scenario: Annotated[
        str, typer.Argument(help="A scenario file, or a bundled scenario's name (--list).")
    ] = "jumps",
    paths: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="Paths per grid point (seeds).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, max=256, help="Local processes (0: this one).")
    ] = None,
    ray: Annotated[
        str | None, typer.Option(help="Run the paths on Ray: a cluster's address, or local.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the report and JSON go.")] = Path("out/stress"),
    data: Annotated[
        Path | None, typer.Option(help="The folder candle files are read from.")
    ] = None,
    journal: Annotated[
        Path | None, typer.Option(help="Write the first path as a journal here (verify it).")
    ] = None,
    list_bundled: Annotated[
        bool, typer.Option("--list", help="List the bundled scenarios and exit.")
    ] = False,
) -> None:
    """Drive the engine through a scenario's paths (Monte Carlo over seeds and its parameter
    grid), then write an HTML report and the numbers as JSON."""
    from clearhouse.sim.stress.scenario import bundled_scenarios, find_scenario, load_scenario

    if list_bundled:
        for name in bundled_scenarios():
            console.print(name)
        return
    loaded = load_scenario(find_scenario(scenario), data, genesis_markets=_genesis_markets)
    _run_stress(loaded, paths or loaded.settings.paths, workers, ray, out, journal)


def _genesis_markets(path: Path) -> list[MarketParams]:
    """A genesis file's markets, each checked as ``serve --genesis`` checks it (a scenario
    may stress a venue's own listing; no dry run: a dated market long expired in an old file
    does not stop its perpetual being stressed)."""
    from clearhouse.app.toml_file import read_toml
    from clearhouse.node.genesis import parse_genesis

    return [market for market, _ in parse_genesis(read_toml(path, "genesis")).markets]


def _run_stress(
    scenario: StressScenario,
    paths: int,
    workers: int | None,
    ray: str | None,
    out: Path,
    journal: Path | None,
) -> None:
    from clearhouse.sim.stress.montecarlo import default_workers, run_all, tasks
    from clearhouse.sim.stress.report import write_report
    from clearhouse.sim.stress.summary import summarize

    todo = tasks(scenario, paths)
    if journal is not None:
        _stress_journal(scenario, todo[0], journal)
    count = workers if workers is not None else min(default_workers(), len(todo))
    with _progress(eta=True) as progress:
        bar = progress.add_task(f"{scenario.settings.name}: {len(todo)} paths", total=len(todo))
        results = run_all(scenario, todo, workers=count, ray_address=ray,
                          on_done=lambda _: progress.advance(bar))  # fmt: skip
    summary = summarize(scenario, results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    report = write_report(out / "report.html", summary, results)
    for row in summary["points"]:
        _print_stress_row(row)
    console.print(f"report: {report}\nnumbers: {out / 'summary.json'}", soft_wrap=True)


def _stress_journal(scenario: StressScenario, task: StressTask, path: Path) -> None:
    from clearhouse.adapters.sqlite_journal import SqliteJournal
    from clearhouse.sim.stress.run import run_path

    if path.exists():
        raise ConfigError(f"{path} exists: not overwritten")
    store = SqliteJournal(path)
    try:
        result = run_path(scenario, task.point, task.seed, store)
    finally:
        store.close()
    console.print(f"journal of seed {task.seed}: {path} ({result.blocks} blocks, state root "
                  f"{result.state_root}); check it with clearhouse verify {path}",
                  soft_wrap=True)  # fmt: skip


def _print_stress_row(row: dict[str, Any]) -> None:
    point = ", ".join(f"{k}={v}" for k, v in row["point"].items()) or "the scenario's venue"
    backtest = row["backtest"]
    coverage = backtest.get("coverage")
    console.print(
        f"{point}: VaR {row['var_usdc']:,.2f} USDC, LaR {row['lar_usdc']:,.0f} USDC, "
        f"fund drawdown {row['fund_drawdown_usdc']:,.2f}, ADL events {row['adl_events']}, "
        f"coverage {'n/a' if coverage is None else f'{coverage:.2%}'} "
        f"({backtest.get('traffic_light', 'no positions')}), leverage allowed "
        f"{row['capital_efficiency']:.1f}x, deficit {row['deficit_usdc']:,.2f} USDC"
    )


# ── Governance (SPEC §10) ─────────────────────────────────────────────────────────────────

gov = typer.Typer(
    no_args_is_help=True,
    help="Governance: proposals through the council and its timelock, the risk steward, the "
    "guardian, fallback settlement prices; and what the venue's governance looks like.",
)
app.add_typer(gov, name="gov")


@dataclass(frozen=True, slots=True)
class ParamSetting:
    """One ``--set NAME TARGET VALUE``; a target of ``-`` is none (vault, governance)."""

    name: str
    target: str
    value: str


@dataclass(frozen=True, slots=True)
class PriceSetting:
    """One ``--settle MARKET PRICE``."""

    market: str
    price: str


class _SeveralValues(TyperCommand):
    """Typer has no repeatable option of several values (``--set NAME TARGET VALUE``, again
    and again): the options in ``ARITY`` take theirs here, each occurrence a tuple that the
    option's parser turns into its setting."""

    ARITY: ClassVar[dict[str, int]] = {"settings": 3, "settle": 2}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            arity = self.ARITY.get(param.name or "")
            if arity:
                param.nargs = arity


Url = Annotated[str, typer.Option(help="The node's base URL.")]
SignerKey = Annotated[
    Path | None,
    typer.Option("--key-file", help="A file holding the signer's hex private key (mode 600); "
                 "else CLEARHOUSE_KEY."),
]  # fmt: skip
AsJson = Annotated[bool, typer.Option("--json", help="Print the node's JSON, for machines.")]
ProposalId = Annotated[int, typer.Argument(min=1, help="The proposal's id.")]
Settings = Annotated[
    list[ParamSetting] | None,
    typer.Option("--set", metavar="NAME TARGET VALUE", parser=lambda raw: ParamSetting(*raw),
                 help="Set a governed parameter (clearhouse gov params); TARGET - for none; "
                 "VALUE in its unit: 4.5% or 45000 (ppm), 90s (ns), 2500000 (USDC)."),
]  # fmt: skip
Markets = list[str] | None
DEFAULT_URL = "http://127.0.0.1:8400"


def _key(key_file: Path | None) -> Wallet | None:
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
def _node(url: str, key_file: Path | None = None, *, signs: bool = False) -> Iterator[Client]:
    """A client of the node at ``url``: a refusal or a node out of reach is one line."""
    import httpx

    from clearhouse.client import ApiRejection, Client
    from clearhouse.client.governance import refusal_reason

    wallet = _key(key_file)
    if signs and wallet is None:
        raise ConfigError("this command is signed: name its key with --key-file or CLEARHOUSE_KEY")
    client = Client(url, wallet)
    try:
        yield client
    except httpx.TransportError as error:  # already retried with backoff
        raise ConfigError(f"cannot reach a node at {url} ({error}): is --url right?") from None
    except ApiRejection as refused:
        why = refusal_reason(refused.code) or refused.message
        raise NodeRefused(
            refused.code, f"{refused.request} refused ({refused.status}): {why}"
        ) from None
    finally:
        client.close()


def _actions(
    settings: list[ParamSetting] | None = None,
    *,
    pause: list[str] | None = None,
    resume: list[str] | None = None,
    reduce_only: list[str] | None = None,
    reduce_only_off: list[str] | None = None,
    settle: list[PriceSetting] | None = None,
) -> list[ActionInput]:
    """The options' actions, in this order: settings as given, pauses, resumptions,
    reduce-only on, off, settlement prices. Each is checked here, before any request."""
    from clearhouse.client import governance as g

    actions: list[ActionInput] = [
        g.set_param(s.name, "" if s.target == "-" else s.target, s.value) for s in settings or ()
    ]
    actions += [g.pause(m) for m in pause or ()]
    actions += [g.resume(m) for m in resume or ()]
    actions += [g.reduce_only(m, on=True) for m in reduce_only or ()]
    actions += [g.reduce_only(m, on=False) for m in reduce_only_off or ()]
    actions += [g.settlement_price(s.market, s.price) for s in settle or ()]
    if not actions:
        raise InvalidArgument("no action: give --set, --pause, --resume, --reduce-only or --settle")
    return actions


@gov.command(cls=_SeveralValues)
def propose(
    settings: Settings = None,
    pause: Annotated[
        Markets, typer.Option("--pause", metavar="MARKET", help="Pause a market.")
    ] = None,
    resume: Annotated[
        Markets, typer.Option("--resume", metavar="MARKET", help="Resume a paused market.")
    ] = None,
    reduce_only: Annotated[
        Markets,
        typer.Option("--reduce-only", metavar="MARKET", help="Let orders only reduce positions."),
    ] = None,
    reduce_only_off: Annotated[
        Markets, typer.Option("--reduce-only-off", metavar="MARKET", help="Lift reduce-only.")
    ] = None,
    settle: Annotated[
        list[PriceSetting] | None,
        typer.Option(
            "--settle",
            metavar="MARKET PRICE",
            parser=lambda raw: PriceSetting(*raw),
            help="Settle an expired market its oracle never priced (USDC per unit).",
        ),
    ] = None,
    memo: Annotated[str, typer.Option(help="What the proposal is for, for the council.")] = "",
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Stress-test the change first; attach the diff.")
    ] = False,
    paths: Annotated[int, typer.Option(min=1, max=10_000, help="--simulate: paths.")] = 4,
    workers: Annotated[
        int, typer.Option(min=0, max=256, help="--simulate: processes (0: this one).")
    ] = 1,
    url: Url = DEFAULT_URL,
    key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:
    """A council member proposes actions (its proposal counts as its approval)."""
    from clearhouse.client.governance import finish, needs_units

    drafts = _actions(settings, pause=pause, resume=resume, reduce_only=reduce_only,
                      reduce_only_off=reduce_only_off, settle=settle)  # fmt: skip
    with _node(url, key_file, signs=True) as client:
        actions = finish(drafts, client.units() if needs_units(drafts) else None)
        document = _simulate(client, actions, paths, workers, quiet=as_json) if simulate else None
        simulation = "" if document is None else document
        answer = client.propose(actions, memo=memo, simulation=simulation)
    if as_json:
        parsed = None if document is None else json.loads(document)
        _print_json({"proposal_id": _proposal_id(answer), "answer": answer,
                     "simulation": parsed})  # fmt: skip
        return
    _print_answer(answer)


def _simulate(
    client: Client, actions: tuple[GovAction, ...], paths: int, workers: int, *, quiet: bool
) -> str:
    """The stress lab run with and without the change, here, and the node's list of holders
    it would make liquidatable at once: one JSON document, as the proposal carries it."""
    from clearhouse.client.governance import simulation_json

    # The stress lab needs the node extra (numpy): imported here, so that the rest of the
    # command line runs in a client-only install (main() names the extra otherwise).
    from clearhouse.sim.stress.proposal import compact_json, render_text, simulate_proposal

    impact = client.impact(actions)  # first: the node refuses a bad action in a moment
    with _progress(eta=True) as progress:
        on_path = _progress_callback(progress, "simulating with and without the change", 1)
        result = simulate_proposal(actions, paths=paths, workers=workers, progress=on_path)
    try:
        stress = compact_json(result)
    except ValueError as error:  # the diff alone outgrows what a proposal carries
        raise InvalidArgument(f"the simulation does not fit a proposal: {error}") from None
    document = simulation_json(stress, impact)
    if not quiet:
        for line in render_text(result):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(_liquidatable_line(json.loads(document)))
    return document


def _liquidatable_line(document: dict[str, Any]) -> str:
    listed = len(document.get("liquidatable", []))
    count = document.get("liquidatable_count", listed)
    attached = f" (the first {listed} attached)" if listed < count else ""
    more = "; the node's scan was cut: there may be more" if document.get("truncated") else ""
    return f"liquidatable at once if it passed: {count} accounts{attached}{more}"


def _proposal_id(answer: dict[str, Any]) -> int | None:
    changed = [e for e in answer.get("events", []) if e.get("type") == "ProposalChanged"]
    return changed[0]["proposal_id"] if changed else None


def _signed(
    send: Callable[[Client], dict[str, Any]], url: str, key_file: Path | None, as_json: bool
) -> None:
    with _node(url, key_file, signs=True) as client:
        answer = send(client)
    if as_json:
        _print_json(answer)
    else:
        _print_answer(answer)


@gov.command()
def approve(
    proposal_id: ProposalId, url: Url = DEFAULT_URL, key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """A council member approves a pending proposal."""
    _signed(lambda client: client.approve_proposal(proposal_id), url, key_file, as_json)


@gov.command()
def queue(
    proposal_id: ProposalId, url: Url = DEFAULT_URL, key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Start the timelock of a proposal the council approved (any key may)."""
    _signed(lambda client: client.queue_proposal(proposal_id), url, key_file, as_json)


@gov.command()
def execute(
    proposal_id: ProposalId, url: Url = DEFAULT_URL, key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """Apply a queued proposal whose timelock has run (any key may): all its actions or none."""
    _signed(lambda client: client.execute_proposal(proposal_id), url, key_file, as_json)


@gov.command()
def cancel(
    proposal_id: ProposalId, url: Url = DEFAULT_URL, key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """A council member or the guardian cancels a pending or queued proposal."""
    _signed(lambda client: client.cancel_proposal(proposal_id), url, key_file, as_json)


@gov.command(cls=_SeveralValues)
def steward(
    settings: Settings = None, url: Url = DEFAULT_URL, key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """The risk steward moves parameters at once, each by at most one step per cooldown."""
    actions = _actions(settings)
    _signed(lambda client: client.steward_update(actions), url, key_file, as_json)


@gov.command(cls=_SeveralValues)
def guardian(
    settings: Settings = None,
    pause: Annotated[
        Markets, typer.Option("--pause", metavar="MARKET", help="Pause a market.")
    ] = None,
    reduce_only: Annotated[
        Markets,
        typer.Option("--reduce-only", metavar="MARKET", help="Let orders only reduce positions."),
    ] = None,
    url: Url = DEFAULT_URL,
    key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:
    """The guardian reduces risk at once: pause, reduce-only, tighten a parameter (--set).

    A --set only toward safety: the guardian never loosens."""
    actions = _actions(settings, pause=pause, reduce_only=reduce_only)
    _signed(lambda client: client.guardian_act(actions), url, key_file, as_json)


@gov.command()
def dispute(
    market: Annotated[str, typer.Argument(help="The market whose settlement price to dispute.")],
    subaccount: Annotated[
        int, typer.Option(min=0, max=127, help="Your subaccount holding the market.")
    ] = 0,
    url: Url = DEFAULT_URL,
    key_file: SignerKey = None,
    as_json: AsJson = False,
) -> None:
    """Dispute a governance settlement price inside its dispute window.

    A holder of the market (--subaccount names the subaccount holding it), a council member or
    the guardian may, each once per market."""
    _signed(
        lambda client: client.dispute_settlement(market, subaccount_number=subaccount),
        url, key_file, as_json,
    )  # fmt: skip


@gov.command()
def config(url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Who governs the venue, its waits, and what governance holds on markets now."""
    with _node(url) as client:
        found = client.governance()
    if as_json:
        _print_json(found)
        return
    if not found.get("governed"):
        console.print("this venue has no governance: its operator still lists markets")
        return
    table = Table(show_header=False, box=None)
    for key, value in _config_rows(found).items():
        table.add_row(key, escape(value))
    console.print(table)


@gov.command()
def show(proposal_id: ProposalId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """One proposal: where it stands, its actions, its steps and its simulation."""
    with _node(url) as client:
        proposal = client.proposal(proposal_id)
        units = _units_for(client, proposal.get("actions", []))
    if as_json:
        _print_json(proposal)
        return
    _print_proposal(proposal, units)
    simulation = proposal.get("simulation")
    if isinstance(simulation, dict):
        _print_simulation(simulation)
    else:
        console.print("simulation: none attached")


@gov.command("list")
def list_proposals(
    status: Annotated[
        str | None,
        typer.Option(help="pending, queued, executed, cancelled, expired, or open (the first "
                     "two)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 100,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:  # fmt: skip
    """The venue's proposals, newest first."""
    wanted = None if status is None else _status_filter(status)
    with _node(url) as client:
        found = client.proposals(wanted, limit=limit)
    if as_json:
        _print_json(found)
        return
    table = Table("id", "status", "approvals", "executable from", "actions", Column("memo"))
    for p in found:
        table.add_row(
            str(p["proposal_id"]), _status_name(p["status"]), _approvals(p),
            _utc(p.get("eta_ns") or 0), escape("; ".join(_describe_all(p.get("actions", [])))),
            escape(p.get("memo", "")),
        )  # fmt: skip
    console.print(table if found else "no proposals")


@gov.command()
def history(
    name: Annotated[str | None, typer.Option(help="Only this parameter's changes.")] = None,
    target: Annotated[str | None, typer.Option(help="Only this market's, oracle's, …")] = None,
    cursor: Annotated[str | None, typer.Option(help="Older changes (from the last page).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000, help="Changes per page.")] = 100,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Governed parameters' changes, newest first."""
    if name is not None:
        from clearhouse.client.governance import governed

        governed(name)  # an unknown name is refused here, with the nearest names
    with _node(url) as client:
        page = client.param_history(name=name, target=target, cursor=cursor, limit=limit)
    if as_json:
        _print_json(page)
        return
    _print_history(page)


@gov.command()
def params(
    name: Annotated[str | None, typer.Option(help="Only this parameter.")] = None,
    target: Annotated[str | None, typer.Option(help="Only this market's, oracle's, …")] = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Every governed parameter: bounds, step, cooldown, and its value for each target."""
    if name is not None:
        from clearhouse.client.governance import governed

        governed(name)
    with _node(url) as client:
        registry = client.governed_params(name=name, target=target)
        units = None if as_json else client.units()  # amounts in USDC, sizes in base units
    if as_json:
        _print_json(registry)
        return
    _print_params(registry, units)


# ── What the governance commands print ────────────────────────────────────────────────────


def _print_json(value: object) -> None:
    console.print_json(json.dumps(value), highlight=False)


def _units_for(client: Client, actions: list[dict[str, Any]]) -> Units | None:
    """The venue's units where an action's value is an amount or a price (to show it as one)."""
    from clearhouse.client.governance import shown_in_units

    return client.units() if any(shown_in_units(a) for a in actions) else None


def _describe_all(actions: list[dict[str, Any]], units: Units | None = None) -> list[str]:
    from clearhouse.client.governance import describe

    return [describe(a, units) for a in actions]


def _status_filter(text: str) -> str:
    from clearhouse.core.governance import ProposalStatus

    names = [s.name.lower() for s in ProposalStatus] + ["open"]
    if text.lower() not in names:
        raise InvalidArgument(f"no proposal status {text!r}: {', '.join(names)}")
    return text.lower()


def _status_name(value: object) -> str:
    """A proposal's status as a word, whether the node gave its name or its number."""
    from clearhouse.core.governance import ProposalStatus

    if isinstance(value, int) and value in ProposalStatus._value2member_map_:
        return ProposalStatus(value).name.lower()
    return str(value).lower()


def _approvals(proposal: dict[str, Any]) -> str:
    count = proposal.get("approvals_count", len(proposal.get("approvals", [])))
    threshold = proposal.get("threshold")
    return f"{count} of {threshold}" if threshold else str(count)


def _utc(ns: int) -> str:
    from datetime import UTC, datetime

    if not ns:
        return "-"
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _config_rows(found: dict[str, Any]) -> dict[str, str]:
    from clearhouse.client.governance import format_duration

    waits = ("timelock", "execution_window", "proposal_lifetime", "phase_in", "dispute_window")
    phases = [f"{p['market_id']} until {_utc(p['end_ns'])}" for p in found.get("phases", [])]
    fallbacks = [f"{f['market_id']} at {f['price_quantums']} quote quantums, disputable until "
                 f"{_utc(f['dispute_until_ns'])}" for f in found.get("fallbacks", [])]  # fmt: skip
    return {
        "council": ", ".join(found.get("council", [])),
        "threshold": f"{found.get('threshold')} of {len(found.get('council', []))}",
        "steward": found.get("steward") or "none",
        "guardian": found.get("guardian") or "none",
        **{w.replace("_", " "): format_duration(found.get(f"{w}_ns") or 0) for w in waits},
        "open proposals": str(found.get("open_proposals", "-")),
        "paused": ", ".join(found.get("paused", [])) or "none",
        "reduce-only": ", ".join(found.get("reduce_only", [])) or "none",
        "margins phasing in": "; ".join(phases) or "none",
        "fallback prices": "; ".join(fallbacks) or "none",
    }


def _print_answer(answer: dict[str, Any]) -> None:
    console.print(f"accepted at height {answer.get('height')}")
    for line in _event_lines(answer.get("events", [])):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _event_lines(events: list[dict[str, Any]]) -> list[str]:
    """Governance's events in words; the orders a pause cancelled, counted."""
    lines = [line for e in events if (line := _event_line(e)) is not None]
    cancelled = sum(1 for e in events if e.get("type") == "OrderCancelled")
    if cancelled:
        lines.append(f"{cancelled} resting orders cancelled")
    return lines


def _event_line(event: dict[str, Any]) -> str | None:
    match event.get("type"):
        case "ProposalChanged":
            eta = event.get("eta_ns") or 0
            when = f", executable from {_utc(eta)}" if eta else ""
            count = event["approvals"]
            return (f"proposal {event['proposal_id']}: {_status_name(event['status'])}, "
                    f"{count} approval{'' if count == 1 else 's'}{when}")  # fmt: skip
        case "ParamChanged":
            return _change_line(event)
        case "MarketFlagsChanged":
            flags = "paused" if event["paused"] else "trading"
            return f"{event['market_id']}: {flags}{', reduce-only' if event['reduce_only'] else ''}"
        case "SettlementPriceProposed":
            return (f"{event['market_id']} settles at {event['price_quantums']} quote quantums "
                    f"unless disputed before {_utc(event['dispute_until_ns'])}")  # fmt: skip
        case "SettlementDisputed":
            return f"{event['market_id']}: settlement price disputed by {event['by']}"
        case "GovernanceConfigured":
            return (
                f"council of {len(event['council'])}, threshold {event['threshold']}, "
                f"steward {event['steward'] or 'none'}, guardian {event['guardian'] or 'none'}"
            )
    return None


def _change_line(change: dict[str, Any]) -> str:
    from clearhouse.client.governance import format_value

    name, target = change["name"], change.get("target") or ""
    old, new = format_value(name, change["old_value"]), format_value(name, change["new_value"])
    phase = change.get("phase_end_ns") or 0
    phased = f" (existing positions pay all of it from {_utc(phase)})" if phase else ""
    return f"{name}{f' of {target}' if target else ''}: {old} → {new}{phased}"


def _print_proposal(proposal: dict[str, Any], units: Units | None) -> None:
    table = Table(show_header=False, box=None)
    queued_left = proposal.get("timelock_left_ns")
    rows = {
        "proposal": str(proposal["proposal_id"]),
        "status": _status_name(proposal["status"]),
        "proposer": str(proposal.get("proposer", "")),
        "created": _utc(proposal.get("created_ns") or 0),
        "approvals": f"{_approvals(proposal)}: {', '.join(proposal.get('approvals', []))}",
        "executable from": _utc(proposal.get("eta_ns") or 0),
        "executable": "yes" if proposal.get("executable") else (
            "no" if queued_left is None else f"in {_rounded_duration(queued_left)}"),
        "expires": _utc(proposal.get("expires_ns") or 0),
        "memo": proposal.get("memo") or "-",
    }  # fmt: skip
    for key, value in rows.items():
        table.add_row(key, escape(value))
    for number, line in enumerate(_describe_all(proposal.get("actions", []), units), 1):
        table.add_row(f"action {number}", escape(line))
    for step in proposal.get("events", []):
        said = _event_line(step)
        if said is not None:
            table.add_row(_utc(step.get("timestamp_ns") or 0), escape(said))
    console.print(table)


def _rounded_duration(ns: int) -> str:
    """``3_599_000_000_000`` as ``59m 59s``: the two largest units, rounded down."""
    rest, parts = ns // 1_000_000_000, []
    for unit, seconds in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if rest >= seconds:
            parts.append(f"{rest // seconds}{unit}")
            rest %= seconds
    return " ".join(parts[:2]) or "under 1s"


def _print_simulation(simulation: dict[str, Any]) -> None:
    """The attached diff as the stress lab renders it, and the holders the change would make
    liquidatable at once."""
    console.print("[bold]simulation[/bold]")
    for line in _stress_lines(simulation.get("stress")):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(_liquidatable_line(simulation))
    for holder in simulation.get("liquidatable", [])[:10]:
        console.print(f"  {holder}", markup=False, highlight=False)


def _stress_lines(stress: object) -> list[str]:
    if not isinstance(stress, dict):
        return _plain_lines(stress)
    try:
        from clearhouse.sim.stress.proposal import render_text
    except ModuleNotFoundError:  # a client-only install (no numpy): the numbers as they are
        return _plain_lines(stress)
    try:
        return list(render_text(stress))
    except (KeyError, TypeError, ValueError, AttributeError):
        # A diff another build attached, in a shape this build's renderer does not read.
        return _plain_lines(stress)


def _plain_lines(value: object, prefix: str = "", budget: int = 60) -> list[str]:
    """A JSON document as ``path: value`` lines (at most ``budget``), when no renderer reads it."""
    if isinstance(value, dict):
        pairs: list[tuple[str, object]] = [(f"{prefix}{k}", v) for k, v in value.items()]
    elif isinstance(value, list):
        pairs = [(f"{prefix}[{i}]", v) for i, v in enumerate(value)]
    else:
        return [f"{prefix.rstrip('.')}: {value}"]
    lines: list[str] = []
    for path, item in pairs:
        nested = isinstance(item, dict | list)
        lines += _plain_lines(item, f"{path}.", budget) if nested else [f"{path}: {item}"]
        if len(lines) >= budget:
            return [*lines[:budget], "…"]
    return lines


def _print_history(page: dict[str, Any]) -> None:
    from clearhouse.client.governance import format_value

    changes = page.get("items", [])
    table = Table("when", Column("parameter", no_wrap=True), "target", "old", "new", "by",
                  "proposal")  # fmt: skip
    for c in changes:
        name, by = c["name"], str(c.get("by", ""))
        role = c.get("role_name") or _role_name(c.get("role"))
        table.add_row(
            _utc(c.get("timestamp_ns") or 0), name, c.get("target") or "-",
            format_value(name, c["old_value"], brief=True),
            format_value(name, c["new_value"], brief=True),
            f"{role} {by[:6]}…{by[-4:]}" if len(by) > 12 else f"{role} {by}",
            str(c.get("proposal_id") or "-"),
        )  # fmt: skip
    console.print(table if changes else "no parameter changes")
    if page.get("next_cursor"):
        console.print(f"older changes: --cursor {page['next_cursor']}")


def _role_name(value: object) -> str:
    from clearhouse.core.governance import Role

    if isinstance(value, int) and value in Role._value2member_map_:
        return Role(value).name.lower()
    return str(value or "").lower()


def _print_params(registry: list[dict[str, Any]], units: Units | None) -> None:
    """One row a parameter: its name over its rules, beside its value for each target."""
    from clearhouse.client.governance import format_duration, format_value

    table = Table("parameter", Column("values", no_wrap=True), show_lines=True)
    for entry in registry:
        name = entry["name"]

        def shown(value: int, target: str = "", name: str = name) -> str:
            return format_value(name, value, units, target, brief=True)

        direction = str(entry.get("direction", "")).replace("_", " ").replace("neither", "")
        cooldown = format_duration(entry.get("cooldown_ns", 0))
        rules = (f"{shown(entry['lower'])} .. {shown(entry['upper'])}, step {_step(entry, shown)}, "
                 f"cooldown {cooldown}{', ' if direction else ''}{direction}")  # fmt: skip
        values = [f"{v['target'] + ': ' if v['target'] else ''}{shown(v['value'], v['target'])}"
                  for v in entry.get("values", [])]  # fmt: skip
        table.add_row(f"[bold]{escape(name)}[/bold]\n{escape(rules)}",
                      escape("\n".join(values) or "-"))  # fmt: skip
    console.print(table)


def _step(entry: dict[str, Any], shown: Callable[[int], str]) -> str:
    share = entry.get("step_ppm") or 0
    fixed = shown(entry["step"]) if entry.get("step") else ""
    relative = f"{share / 10_000:g}% of the value" if share else ""
    return " or ".join(p for p in (fixed, relative) if p) or "-"


def main() -> int:
    if not __debug__:
        raise SystemExit("clearhouse must not run with -O: its assertions guard the invariants")
    try:
        app()
    except ClearhouseError as error:  # an operating error: one line and its exit code
        fail(error.code, str(error))
        return exit_code(error)
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in NODE_EXTRA_MODULES:
            raise  # not a missing extra: a bug, with its traceback
        fail("MISSING_EXTRA", f"this command needs {error.name}, from the node extra: "
             'pip install "clearhouse[node]"')  # fmt: skip
        return EXIT_MISSING_EXTRA
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
