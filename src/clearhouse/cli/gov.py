"""``clearhouse gov``: governance from the command line (SPEC §10) — proposals through the
council and its timelock, the risk steward, the guardian, fallback settlement prices, and what
the venue's governance looks like (docs/GOVERNANCE.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer
from rich.markup import escape
from rich.table import Column, Table
from typer.core import TyperCommand

from clearhouse.core.errors import InvalidArgument

if TYPE_CHECKING:
    from clearhouse.client import Client, Units
    from clearhouse.client.governance import ActionInput
    from clearhouse.core.messages import GovAction

from clearhouse.cli.output import (
    DEFAULT_URL,
    AsJson,
    SignerKey,
    Url,
    console,
    node_client,
    print_json,
    progress_bar,
    progress_callback,
    utc,
)

# ── Governance (SPEC §10) ─────────────────────────────────────────────────────────────────

gov = typer.Typer(
    no_args_is_help=True,
    help="Governance: proposals through the council and its timelock, the risk steward, the "
    "guardian, fallback settlement prices; and what the venue's governance looks like.",
)


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


ProposalId = Annotated[int, typer.Argument(min=1, help="The proposal's id.")]
Settings = Annotated[
    list[ParamSetting] | None,
    typer.Option("--set", metavar="NAME TARGET VALUE", parser=lambda raw: ParamSetting(*raw),
                 help="Set a governed parameter (clearhouse gov params); TARGET - for none; "
                 "VALUE in its unit: 4.5% or 45000 (ppm), 90s (ns), 2500000 (USDC)."),
]  # fmt: skip
Markets = list[str] | None


def _node(
    url: str, key_file: Path | None = None, *, signs: bool = False
) -> AbstractContextManager[Client]:
    """A client of the node at ``url``; governance's refusals said in words."""
    from clearhouse.client.governance import refusal_reason

    return node_client(url, key_file, signs=signs, reasons=refusal_reason)


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
        print_json({"proposal_id": _proposal_id(answer), "answer": answer,
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
    with progress_bar(eta=True) as progress:
        on_path = progress_callback(progress, "simulating with and without the change", 1)
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
        print_json(answer)
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
        print_json(found)
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
        print_json(proposal)
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
        print_json(found)
        return
    table = Table("id", "status", "approvals", "executable from", "actions", Column("memo"))
    for p in found:
        table.add_row(
            str(p["proposal_id"]), _status_name(p["status"]), _approvals(p),
            utc(p.get("eta_ns") or 0), escape("; ".join(_describe_all(p.get("actions", [])))),
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
        print_json(page)
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
        print_json(registry)
        return
    _print_params(registry, units)


# ── What the governance commands print ────────────────────────────────────────────────────


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


def _config_rows(found: dict[str, Any]) -> dict[str, str]:
    from clearhouse.client.governance import format_duration

    waits = ("timelock", "execution_window", "proposal_lifetime", "phase_in", "dispute_window")
    phases = [f"{p['market_id']} until {utc(p['end_ns'])}" for p in found.get("phases", [])]
    fallbacks = [f"{f['market_id']} at {f['price_quantums']} quote quantums, disputable until "
                 f"{utc(f['dispute_until_ns'])}" for f in found.get("fallbacks", [])]  # fmt: skip
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
            when = f", executable from {utc(eta)}" if eta else ""
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
                    f"unless disputed before {utc(event['dispute_until_ns'])}")  # fmt: skip
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
    phased = f" (existing positions pay all of it from {utc(phase)})" if phase else ""
    return f"{name}{f' of {target}' if target else ''}: {old} → {new}{phased}"


def _print_proposal(proposal: dict[str, Any], units: Units | None) -> None:
    table = Table(show_header=False, box=None)
    queued_left = proposal.get("timelock_left_ns")
    rows = {
        "proposal": str(proposal["proposal_id"]),
        "status": _status_name(proposal["status"]),
        "proposer": str(proposal.get("proposer", "")),
        "created": utc(proposal.get("created_ns") or 0),
        "approvals": f"{_approvals(proposal)}: {', '.join(proposal.get('approvals', []))}",
        "executable from": utc(proposal.get("eta_ns") or 0),
        "executable": "yes" if proposal.get("executable") else (
            "no" if queued_left is None else f"in {_rounded_duration(queued_left)}"),
        "expires": utc(proposal.get("expires_ns") or 0),
        "memo": proposal.get("memo") or "-",
    }  # fmt: skip
    for key, value in rows.items():
        table.add_row(key, escape(value))
    for number, line in enumerate(_describe_all(proposal.get("actions", []), units), 1):
        table.add_row(f"action {number}", escape(line))
    for step in proposal.get("events", []):
        said = _event_line(step)
        if said is not None:
            table.add_row(utc(step.get("timestamp_ns") or 0), escape(said))
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
            utc(c.get("timestamp_ns") or 0), name, c.get("target") or "-",
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
