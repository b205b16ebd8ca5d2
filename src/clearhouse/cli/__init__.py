"""The ``clearhouse`` command line: demo, verify, init, serve, bots; simulate, the backtests and
the stress lab (``cli/lab.py``); the proof of liabilities (``cli/custody.py``); the ``gov``,
``vault`` and ``options-vault`` groups in modules of their own."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table

from clearhouse.app.chain import verify as verify_journal
from clearhouse.cli import custody, lab
from clearhouse.cli.gov import gov
from clearhouse.cli.output import (
    NodeRefused,
    console,
    fail,
    progress_bar,
    signer_key,
)
from clearhouse.cli.vault import options_vault, vault
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
    ProofRejected,
    ReplicaGap,
    ReplicaMismatch,
    ReplicationFenced,
    ReplicationUnavailable,
    StorageError,
    VerificationError,
)

if TYPE_CHECKING:
    from clearhouse.client import Client
    from clearhouse.client.bots import Bot
    from clearhouse.node.dev import VenueRoles

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Clearhouse clearing engine.")
app.add_typer(gov, name="gov")
app.add_typer(vault, name="vault")
app.add_typer(options_vault, name="options-vault")


# The exit codes, one per kind of failure an operator can meet (stable: scripts test them; the
# README lists them). The first class an error is an instance of decides: subclasses first.
EXIT_OK = 0
EXIT_CODES: tuple[tuple[type[ClearhouseError], int], ...] = (
    (ReplicaMismatch, 17),  # a streamed block does not verify (tampered, forked): not stored
    (ReplicaGap, 17),  # a streamed block is not the next height (before their base, below)
    (VerificationError, 1),  # the journal disagrees with itself (verify, a node's recovery)
    (ProofRejected, 1),  # a proof of liabilities that does not verify (verify-liabilities)
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
    (ReplicationUnavailable, 15),  # the block stream (NATS) cannot be reached
    (ReplicationFenced, 16),  # another sequencer appended to the block stream: this one stops
    (StorageError, 11),  # any other storage failure (a server that cannot be reached, …)
    (NodeRefused, 14),  # the node refused a request or a command (gov): its code is printed
    (ClearhouseError, 12),
)

# A client-only install (``pip install "clearhouse[client]"``) lacks the ``node`` extra's
# packages; a command that needs one says which extra to install instead of a traceback.
NODE_EXTRA_MODULES = frozenset(
    {"numpy", "scipy", "fastapi", "starlette", "uvicorn", "httptools", "psycopg",
     "prometheus_client", "plotly", "fastapi_offline", "nats"}
)  # fmt: skip
EXIT_MISSING_EXTRA = 13


def exit_code(error: ClearhouseError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


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

    with progress_bar() as progress:
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


def _print_options_vault(amm: Any) -> None:
    use = amm["cap_use_max"]
    console.print(
        f"options vault: NAV {amm['nav_usdc']:,.2f} USDC   owners: {amm['owners']}   "
        f"quoting {amm['quoted_markets']} options now   every active option quoted in "
        f"{amm['blocks_all_options_quoted']} of {amm['blocks_quoting']} blocks, "
        f"{amm['sides_resting_share']:.0%} of their bids and asks resting   "
        f"fills: {amm['fills']} ({amm['premium_usdc']:,.0f} USDC of premium)   "
        f"hedges: {amm['hedges']} ({amm['hedged_btc']:,.2f} BTC filled)   most of each cap "
        f"used (each minute): vega {use['vega']:.0%}, gamma {use['gamma']:.0%}, "
        f"delta {use['delta']:.0%}",
        soft_wrap=True,
    )


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
    if "options_vault" in summary:
        _print_options_vault(summary["options_vault"])
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
        with progress_bar() as progress:
            task = progress.add_task("verifying", total=total)
            result = verify_journal(
                journal,
                on_block=lambda n: progress.update(task, completed=n) if n % 500 == 0 else None,
            )
    except VerificationError as failure:
        fail(failure.code, f"verification failed at height {failure.height}: {failure.what}")
        raise typer.Exit(exit_code(failure)) from None
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
        fail(failure.code, f"signature check failed at height {failure.height}: {failure.what}")
        raise typer.Exit(exit_code(failure)) from None
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
    """Write a commented genesis file describing the default venue, with fresh keys for its
    roles (operator, custody relayer, publishers) in a keys file beside it, readable by its
    owner only (edit the genesis, then serve it)."""
    import time

    from clearhouse.node.genesis import default_genesis_text, fresh_roles

    keys_path = path.with_name(f"{path.stem}.keys.toml")
    for target in (path, keys_path):
        if target.exists():
            raise ConfigError(f"{target} exists: not overwritten")
    roles, contract, keys_text = fresh_roles()
    text = default_genesis_text(time.time_ns(), roles, contract, keys_file=keys_path.name)
    _write_new(keys_path, keys_text, mode=0o600)
    _write_new(path, text, mode=0o644)
    console.print(f"wrote {path} and the keys of its roles to {keys_path} (keep it secret); "
                  f"edit it, then clearhouse serve --genesis {path}")  # fmt: skip


def _write_new(path: Path, text: str, *, mode: int) -> None:
    """Create ``path`` with ``text``, never over an existing file."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigError(f"{path} exists: not overwritten") from None
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65_535, help="Port to listen on.")] = 8400,
    data: Annotated[
        Path, typer.Option(help="Data directory (the SQLite journal lives here).")
    ] = Path("data"),
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            "--journal",
            help="A journal instead of --data's: a SQLite file "
            "(a replica's, to take over) or postgresql://...",
        ),
    ] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Dev venue: its own price feed and a faucet.")
    ] = False,
    replicate: Annotated[
        str | None,
        typer.Option(
            help="nats://HOST:PORT: publish every block to NATS JetStream; commands "
            "are acknowledged once it has their block."
        ),
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(help="With --replicate: the stream (default CLEARHOUSE-<chain id>)."),
    ] = None,
    stream_replicas: Annotated[
        int,
        typer.Option(
            min=1,
            max=5,
            help="With --replicate: replicas of a new stream (3 on a "
            "cluster; 1 on a single server).",
        ),
    ] = 1,
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
    public_keys: Annotated[
        bool,
        typer.Option(
            "--public-keys",
            help="Serve a new venue whose roles are the dev node's public keys (a throwaway: "
            "anyone can sign as them).",
        ),
    ] = False,
) -> None:
    """Run a node: the sequencer, its journal and the HTTP/WebSocket API."""
    from clearhouse.core.ids import is_address
    from clearhouse.node.server import NodeConfig
    from clearhouse.node.server import serve as run_node

    roles = _roles(operator, relayer, publisher)
    if verifying_contract is not None and not is_address(verifying_contract.lower()):
        raise ConfigError("--verifying-contract is an address (0x and 40 hex digits)")
    config = NodeConfig(
        host=host, port=port, data_dir=data, store=store, dev=dev,
        snapshot_every=snapshot_every, ip_rate=ip_rate, account_rate=account_rate,
        verify_workers=verify_workers, roles=roles, genesis=genesis, chain_id=chain_id,
        verifying_contract=None if verifying_contract is None else verifying_contract.lower(),
        public_keys=public_keys,
        replicate=replicate, stream=stream, stream_replicas=stream_replicas,
    )  # fmt: skip
    raise typer.Exit(run_node(config))


@app.command()
def replica(
    nats: Annotated[str, typer.Option("--nats", help="nats://HOST:PORT of the block stream.")],
    journal: Annotated[
        str, typer.Option(help="The replica's journal: a SQLite file or postgresql://...")
    ],
    chain_id: Annotated[
        int | None, typer.Option(min=1, max=2**63 - 1, help="The venue's chain id.")
    ] = None,
    genesis: Annotated[
        Path | None, typer.Option(help="Or the venue's genesis file (its chain id).")
    ] = None,
    dev: Annotated[bool, typer.Option("--dev", help="Or the dev venue's chain id.")] = False,
    stream: Annotated[
        str | None, typer.Option(help="The JetStream stream (default CLEARHOUSE-<chain id>).")
    ] = None,
    stream_replicas: Annotated[
        int, typer.Option(min=1, max=5, help="Replicas of the stream if it must be created.")
    ] = 1,
) -> None:
    """Follow a node's block stream: re-execute every block, check its hashes and state root,
    and store it in a journal of its own (which `serve --journal` can take over)."""
    from clearhouse.node.replica import ReplicaConfig, ReplicaProgress, run_replica
    from clearhouse.node.server import configure_logging

    config = ReplicaConfig(nats, journal, _replica_chain_id(chain_id, genesis, dev), stream,
                           stream_replicas)  # fmt: skip
    configure_logging()

    def show(progress: ReplicaProgress) -> None:
        if progress.caught_up or progress.height % 100 == 0:
            console.print(f"height {progress.height} root 0x{progress.state_root.hex()} "
                          f"commands {progress.commands}", soft_wrap=True)  # fmt: skip

    height = run_replica(config, show)
    console.print(f"replica stopped at height {height}")


def _replica_chain_id(chain_id: int | None, genesis: Path | None, dev: bool) -> int:
    """The venue's chain id, named exactly one way (the stream's name comes from it)."""
    import time

    from clearhouse.node.genesis import DEV_CHAIN_ID, load_genesis

    flags = (("--chain-id", chain_id is not None), ("--genesis", genesis is not None),
             ("--dev", dev))  # fmt: skip
    named = [name for name, given in flags if given]
    if len(named) != 1:
        raise ConfigError("name the venue once: --chain-id N, --genesis FILE or --dev"
                          f"{' (given: ' + ', '.join(named) + ')' if named else ''}")  # fmt: skip
    if genesis is not None:
        return load_genesis(genesis, time.time_ns()).domain.chain_id
    return DEV_CHAIN_ID if dev else int(chain_id or 0)


def _roles(
    operator: str | None, relayer: str | None, publishers: list[str] | None
) -> VenueRoles | None:
    """A venue's roles from the command line: all three named, or none (``--dev``)."""
    from clearhouse.core.ids import Address, is_address
    from clearhouse.node.dev import VenueRoles

    if operator is None and relayer is None and not publishers:
        return None
    named = [operator or "", relayer or "", *(publishers or [])]
    bad = [a for a in named if a and not is_address(a.lower())]
    if operator is None or relayer is None or len(publishers or []) < 3 or bad:
        raise ConfigError(
            "name --operator, --relayer and at least three --publisher addresses (0x and 40 hex "
            f"digits){'; bad: ' if bad else ''}{', '.join(bad)}"
        )
    return VenueRoles(Address(operator.lower()), Address(relayer.lower()),
                      tuple(Address(p.lower()) for p in publishers or []))  # fmt: skip


KeyFile = Annotated[
    Path | None,
    typer.Option("--key-file", help="A file holding the bot's hex private key (mode 600)."),
]


def _bot_client(url: str, faucet: int, key_file: Path | None, market: str | None) -> Client:
    """The bot's client: its key from --key-file or CLEARHOUSE_KEY (hex), else a new one;
    funded in dev, once the node has answered and has ``market``, if one is named (else
    NodeRefused: a mistyped market, refused at every step, is refused once, at the start). Its
    actions and refusals are logged to stderr, one line each."""
    import logging

    from clearhouse.client import ApiRejection, Client, Wallet

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the bot logs its own actions
    wallet = signer_key(key_file) or Wallet.create()
    import httpx

    client = Client(url, wallet)
    try:
        client.info()  # the node answers before the bot starts, or the bot does not start
        if market is not None:
            client.market(market)
        if faucet:
            client.faucet(faucet)
    except httpx.TransportError as error:  # already retried with backoff
        raise ConfigError(f"cannot reach a node at {url} ({error}): is --url right?") from None
    except ApiRejection as refused:
        why = refused.message
        if refused.status == 404 and refused.request.endswith("/v1/dev/faucet"):
            why = f"--faucet needs a dev node (clearhouse serve --dev); {url} has no faucet"
        raise NodeRefused(
            refused.code, f"{refused.request} refused ({refused.status}): {why}"
        ) from None
    console.print(f"bot account {wallet.address} on {url}")
    return client


def _run_bot(
    make: Callable[[Client], Bot],
    url: str,
    faucet: int,
    key_file: Path | None,
    interval: float,
    market: str | None = None,
) -> None:
    """Step until SIGINT or SIGTERM, then stop the bot (the maker cancels its quotes). The
    signals are caught first, so that one sent while the bot starts still stops it cleanly."""
    import threading

    from clearhouse.client.bots import run, stop_on_signals

    stop = threading.Event()
    stop_on_signals(stop)
    run(make(_bot_client(url, faucet, key_file, market)), interval, stop=stop)


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

    _run_bot(make, url, faucet, key_file, interval, market)


# The lab's commands (``cli/lab.py``), in the order ``--help`` lists them.
app.command()(lab.simulate)
app.command("backtest-margin")(lab.backtest_margin)
app.command("backtest-solvency")(lab.backtest_solvency)
app.command()(lab.stress)

# Custody (``cli/custody.py``): the proof of liabilities and the withdrawals tree of an epoch.
app.command()(custody.liabilities)
app.command("verify-liabilities")(custody.verify_liabilities)


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
