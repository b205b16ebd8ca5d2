"""``clearhouse simulate``, ``backtest-margin``, ``backtest-solvency`` and ``stress``: the
commands that run the engine through seeded workloads, real candle history and the stress lab
(SPEC §13, §16), registered on the ``clearhouse`` app by ``clearhouse.cli``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearhouse.cli.output import console, errors, progress_bar, progress_callback
from clearhouse.core.errors import BadDataDir, ConfigError, InvalidArgument

if TYPE_CHECKING:
    from clearhouse.core.params import MarketParams
    from clearhouse.sim.stress.montecarlo import Task as StressTask
    from clearhouse.sim.stress.scenario import Scenario as StressScenario


def simulate(
    seeds: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many seeds to run.")] = 20,
    seed: Annotated[
        int | None, typer.Option(help="Run this one seed (to reproduce a failure).")
    ] = None,
    start: Annotated[int, typer.Option(min=0, help="First seed of the range.")] = 0,
    blocks: Annotated[int, typer.Option(min=10, max=100_000, help="Blocks per seed.")] = 80,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Processes to run seeds in (default: one per core)."),
    ] = None,
) -> None:
    """Drive the engine through seeded random workloads with injected faults; check every block."""
    from clearhouse.sim.harness import SeedResult
    from clearhouse.sim.harness import simulate as run_simulation
    from clearhouse.sim.stress.montecarlo import default_workers

    chosen = range(seed, seed + 1) if seed is not None else range(start, start + seeds)
    with progress_bar() as progress:
        task = progress.add_task("simulating", total=len(chosen))

        def advance(result: SeedResult) -> None:
            progress.advance(task)

        count = workers if workers is not None else default_workers()
        results = run_simulation(chosen, blocks=blocks, on_seed=advance, workers=count)
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


def backtest_margin(
    csv: Annotated[
        list[Path] | None,
        typer.Argument(help="Candle CSVs (any common exchange layout), one publisher each."),
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
    )

    if (data is None) == (not csv):
        raise InvalidArgument("give CSV files or --data, one of the two")
    if data is not None and not data.is_dir():
        raise InvalidArgument(f"--data {data}: no such folder")
    wanted = csv if data is None else [data / f for w in CRASH_WINDOWS for f in w.files]
    missing = [path for path in wanted or [] if not path.is_file()]
    if missing:
        raise InvalidArgument(f"{'--data: ' if data else ''}{missing[0]} is missing")
    rows = []
    if data is not None:
        for window in CRASH_WINDOWS:
            rows.append(backtest_window(window, data).as_row())
            _print_backtest_row(rows[-1])
    else:
        assert csv is not None
        start_ns, end_ns = _files_window(market, start, end)
        rows.append(backtest_files(
            ", ".join(p.name for p in csv), csv, oracle_id=OracleId(f"{market}-USD"),
            start_ns=start_ns, end_ns=end_ns,
            warmup_ns=warmup_days * NS_PER_DAY,
        ).as_row())  # fmt: skip
        _print_backtest_row(rows[-1])
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(rows, indent=2) + "\n")


def _files_window(market: str, start: str, end: str) -> tuple[int, int]:
    """A command given candle files: its --market, --start and --end checked; the window in
    nanoseconds of UTC."""
    from clearhouse.sim.backtest import parse_utc_ns

    if market not in ("BTC", "ETH"):
        raise InvalidArgument(f"--market is BTC or ETH, not {market!r}")
    if not start or not end:
        raise InvalidArgument("--market BTC|ETH, --start and --end are needed")
    start_ns, end_ns = parse_utc_ns(start), parse_utc_ns(end)
    if end_ns <= start_ns:
        raise InvalidArgument(f"--end {end} is not after --start {start}")
    return start_ns, end_ns


def backtest_solvency(
    csv: Annotated[
        list[Path] | None,
        typer.Argument(help="Candle CSVs (any common exchange layout), one publisher each."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="The data folder holding the crash windows.")
    ] = None,
    market: Annotated[str, typer.Option(help="BTC or ETH (with CSV files).")] = "BTC",
    start: Annotated[str, typer.Option(help="First block, ISO UTC (with CSV files).")] = "",
    end: Annotated[str, typer.Option(help="End of the last block, ISO UTC.")] = "",
    warmup_days: Annotated[
        int, typer.Option(min=0, max=365, help="Warm-up on prices (with CSV files).")
    ] = 7,
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
    keeper, the vault, the insurance fund) and report its liquidations and solvency: over the
    crash windows of --data, or over CSV files from --start to --end."""
    from clearhouse.core.ids import OracleId
    from clearhouse.sim.backtest import CRASH_WINDOWS, Window
    from clearhouse.sim.solvency import replay_window

    if (data is None) == (not csv):
        raise InvalidArgument("give CSV files or --data, one of the two")
    if csv:
        # A user's own candle files (1-minute crash exports, say) as one window: the same
        # replay as the bundled windows', which only --data could run before.
        _files_window(market, start, end)
        if crash_days or window:
            raise InvalidArgument("--crash-days and --window choose among --data's windows")
        chosen = [Window(", ".join(p.name for p in csv), OracleId(f"{market}-USD"),
                         tuple(str(p) for p in csv), start, end, warmup_days)]  # fmt: skip
        data = Path()  # the files' own paths
    else:
        assert data is not None
        chosen = [w for w in CRASH_WINDOWS if window.lower() in w.name.lower()]
        if not chosen:
            raise InvalidArgument(f"no crash window's name contains {window!r}")
        if not data.is_dir():
            raise InvalidArgument(f"--data {data}: no such folder")
    missing = [f for w in chosen for f in w.files if not (data / f).is_file()]
    if missing:
        raise InvalidArgument(f"{'' if csv else '--data: '}{data / missing[0]} is missing")
    rows = []
    for each in chosen:
        with progress_bar() as progress:
            outcome = replay_window(
                each, data, crash_day=crash_days, block_ns=block_seconds * 1_000_000_000,
                on_block=progress_callback(progress, each.name),
            )  # fmt: skip
        rows.append(outcome.as_row())
        _print_solvency_row(rows[-1])
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(rows, indent=2) + "\n")
    if not all(row["solvent"] for row in rows):
        raise typer.Exit(1)


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
    options: Annotated[
        bool,
        typer.Option(
            "--options",
            # "\\[" is a bracket to rich, which took "[options]" for markup and dropped it
            help="Add options and the options AMM (the \\[options] defaults, unless the "
            "scenario has an \\[options] table).",
        ),
    ] = False,
) -> None:
    """Drive the engine through a scenario's paths (Monte Carlo over seeds and its parameter
    grid), then write an HTML report and the numbers as JSON."""
    from clearhouse.sim.stress.scenario import (
        bundled_scenarios,
        find_scenario,
        load_scenario,
        with_options,
    )

    if list_bundled:
        for name in bundled_scenarios():
            console.print(name)
        return
    loaded = load_scenario(find_scenario(scenario), data, genesis_markets=_genesis_markets)
    if options:
        loaded = with_options(loaded)
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
    from clearhouse.sim.stress.run import data_notes
    from clearhouse.sim.stress.summary import summarize

    _output_folder(out)  # before any path runs, not once they have all run
    notes = (*scenario.prices.notes, *data_notes(scenario))
    scenario = dataclasses.replace(
        scenario, prices=dataclasses.replace(scenario.prices, notes=notes)
    )
    for note in scenario.prices.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)  # [prices.rates] is text
    todo = tasks(scenario, paths)
    if journal is not None:
        _stress_journal(scenario, todo[0], journal)
    count = workers if workers is not None else min(default_workers(), len(todo))
    with progress_bar(eta=True) as progress:
        bar = progress.add_task(f"{scenario.settings.name}: {len(todo)} paths", total=len(todo))
        results = run_all(scenario, todo, workers=count, ray_address=ray,
                          on_done=lambda _: progress.advance(bar))  # fmt: skip
    summary = summarize(scenario, results)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    report = write_report(out / "report.html", summary, results)
    for row in summary["points"]:
        _print_stress_row(row)
    console.print(f"report: {report}\nnumbers: {out / 'summary.json'}", soft_wrap=True)


def _output_folder(out: Path) -> None:
    """``out`` made if need be; BadDataDir if it is a file or cannot be made or written."""
    import os

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = "not a folder" if out.exists() else error.strerror
        raise BadDataDir(f"cannot use --out {out}: {why}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BadDataDir(f"cannot use --out {out}: not writable")


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
        f"{row['capital_efficiency']:.1f}x, deficit {row['deficit_usdc']:,.2f} USDC",
        soft_wrap=True,
    )
    for attacker, pnl in row.get("attacker_pnl_usdc", {}).items():
        console.print(f"  attacker {attacker}: PnL {pnl['mean']:+,.2f} USDC mean, "
                      f"{pnl['max']:+,.2f} max over paths")  # fmt: skip
    amm = row.get("options_amm")
    if amm is not None:
        used = amm["utilization_max"]
        console.print(
            f"  options AMM: drawdown {amm['drawdown_usdc']:,.0f} USDC ({amm['drawdown']:.2%}), "
            f"max cap use vega {used['vega']:.0%} gamma {used['gamma']:.0%} delta "
            f"{used['delta']:.0%}, quoted share min {amm['quoted_share_min']:.0%}, "
            f"{amm['fills']} fills, {amm['hedges']} hedges, liquidated on "
            f"{amm['liquidated_paths']} paths, limit violations {amm['violations']}"
        )
