"""Governance actions (SPEC §10) from human input, exactly or not at all.

A governed parameter's unit is in its name (``core/governance.REGISTRY``): ``_ppm`` and
``_ppb`` take whole parts or a percent (``"4.5%"`` is 45_000 ppm) or basis points
(``"25bp"``); ``_ns`` takes nanoseconds or a duration (``"90s"``, ``"1.5h"``); ``_quantums``
takes an amount in human units (USDC, or the market's base asset, or the asset itself),
converted on the venue's scales as orders are (``client/units.py``). A value finer than its
unit, outside the parameter's hard bounds, or a name the registry does not know, is refused
(InvalidArgument) before anything is signed: a rounded parameter is a change nobody voted for.

An action whose value needs the venue's scales (an amount, a settlement price) is built as
``NeedsUnits`` and finished by the client once it has them (``finish``); every other builder
gives its ``GovAction`` at once.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from clearhouse.client.addresses import normalize_address
from clearhouse.client.units import Human, Units, from_quantums, human_decimal, whole_multiple
from clearhouse.core import limits
from clearhouse.core.errors import InvalidArgument
from clearhouse.core.governance import REGISTRY, Governed, Scope
from clearhouse.core.ids import QUOTE_ASSET
from clearhouse.core.messages import ActionKind, GovAction
from clearhouse.core.params import AssetParams, MarketParams, OptionSeriesParams, OracleParams
from clearhouse.core.units import NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_MS, NS_PER_SECOND


class Unit(Enum):
    """What a governed parameter's integer counts, read from its name."""

    PPM = "ppm"  # parts per million of one
    PPB = "ppb"  # parts per billion of one
    DURATION = "ns"
    QUOTE_AMOUNT = "quote quantums"  # of the quote asset (USDC)
    BASE_SIZE = "base quantums"  # of the target market's base asset
    ASSET_AMOUNT = "asset quantums"  # of the target asset


_PARTS_PER_ONE = {Unit.PPM: 10**6, Unit.PPB: 10**9}
_RATIO_SUFFIXES = (("%", 100), ("bp", 10_000))  # "4.5%": 4.5 / 100 of one
_DURATIONS_NS = {
    "d": NS_PER_DAY, "h": NS_PER_HOUR, "m": NS_PER_MINUTE, "min": NS_PER_MINUTE,
    "s": NS_PER_SECOND, "ms": NS_PER_MS, "us": 1_000, "µs": 1_000, "ns": 1,
}  # fmt: skip
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zµ]+)\s*$")
_UNLIMITED_WORDS = frozenset({"unlimited", "none"})  # a cap where 0 means "no cap"
_VENUE_WIDE = frozenset({Scope.VAULT, Scope.GOVERNANCE})


def unit_of(name: str) -> Unit:
    """The unit of a governed parameter's value (``name`` in the registry)."""
    if name.endswith("_ns"):
        return Unit.DURATION
    if "_quote_quantums" in name:
        return Unit.QUOTE_AMOUNT
    if "_base_quantums" in name:
        return Unit.BASE_SIZE
    if name.endswith("_quantums"):
        return Unit.ASSET_AMOUNT
    if "_ppb" in name:
        return Unit.PPB
    if "_ppm" in name:
        return Unit.PPM
    raise InvalidArgument(f"{name}: no unit in its name this client knows (a newer build?)")


def governed(name: str) -> Governed:
    """The registry's entry for ``name``; an unknown name is refused with the nearest ones."""
    entry = REGISTRY.get(name)
    if entry is None:
        near = difflib.get_close_matches(name, REGISTRY, n=2)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise InvalidArgument(
            f"no governed parameter {name!r}{hint} (clearhouse gov params lists them)"
        )
    return entry


# ── Builders ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class NeedsUnits:
    """An action whose value is in the venue's units (an amount, a price): ``finish`` converts
    it exactly, or refuses it, once the client has read the venue's scales."""

    what: str  # for messages: the action as the caller wrote it
    finish: Callable[[Units], GovAction]


ActionInput = GovAction | NeedsUnits


def set_param(name: str, target: str, value: Human) -> ActionInput:
    """Set governed parameter ``name`` of ``target`` (a market, oracle or asset id; ``""`` for
    the vault's and governance's own) to ``value`` in the unit its name says."""
    entry = governed(name)
    checked_target = _target(entry, target)
    unit = unit_of(name)
    if _is_unlimited(entry, value):
        return _set(entry, checked_target, 0)
    if unit in _PARTS_PER_ONE:
        return _set(entry, checked_target, ratio_value(value, _PARTS_PER_ONE[unit], name))
    if unit is Unit.DURATION:
        return _set(entry, checked_target, duration_ns(value, name))
    amount = _amount(value, name)
    return NeedsUnits(f"{name} {value}", lambda units: _set(
        entry, checked_target, _scaled(units, entry, checked_target, amount)
    ))  # fmt: skip


def pause(market: str) -> GovAction:
    """Pause ``market``: its resting orders are cancelled and it takes cancels only."""
    return GovAction(kind=ActionKind.PAUSE_MARKET, target=_market(market))


def resume(market: str) -> GovAction:
    return GovAction(kind=ActionKind.RESUME_MARKET, target=_market(market))


def reduce_only(market: str, on: bool = True) -> GovAction:
    """Make ``market`` reduce-only (orders may only shrink positions), or lift it."""
    kind = ActionKind.REDUCE_ONLY_ON if on else ActionKind.REDUCE_ONLY_OFF
    return GovAction(kind=kind, target=_market(market))


def settlement_price(market: str, price: Human) -> NeedsUnits:
    """Price an expired market its oracle never settled (SPEC §8), in quote units per base
    unit on the market's tick; it settles at this price unless disputed in the window."""
    target = _market(market)
    human_decimal(price, f"{target} settlement price")  # refused now, not after a request

    def finish(units: Units) -> GovAction:
        price_quantums = units.market(target).price_quantums(price)
        if price_quantums <= 0:
            raise InvalidArgument(f"{target} settlement price must be above 0")
        return GovAction(kind=ActionKind.SET_SETTLEMENT_PRICE, target=target, value=price_quantums)

    return NeedsUnits(f"settle {target} at {price}", finish)


def add_council_member(address: str) -> GovAction:
    return GovAction(kind=ActionKind.ADD_COUNCIL_MEMBER, target=normalize_address(address))


def remove_council_member(address: str) -> GovAction:
    return GovAction(kind=ActionKind.REMOVE_COUNCIL_MEMBER, target=normalize_address(address))


def set_threshold(approvals: int) -> GovAction:
    """How many council approvals a proposal needs (1..the council's size)."""
    if isinstance(approvals, bool) or not isinstance(approvals, int):
        raise InvalidArgument(f"a threshold is a whole number of approvals, not {approvals!r}")
    if not 1 <= approvals <= limits.council_members_max:
        raise InvalidArgument(f"a threshold is 1..{limits.council_members_max}, not {approvals}")
    return GovAction(kind=ActionKind.SET_THRESHOLD, value=approvals)


def set_steward(address: str | None) -> GovAction:
    """The risk steward's key, or None for no steward."""
    target = "" if address is None else normalize_address(address)
    return GovAction(kind=ActionKind.SET_STEWARD, target=target)


def set_guardian(address: str | None) -> GovAction:
    """The guardian's key, or None for no guardian."""
    target = "" if address is None else normalize_address(address)
    return GovAction(kind=ActionKind.SET_GUARDIAN, target=target)


def list_oracle(params: OracleParams) -> GovAction:
    return GovAction(kind=ActionKind.LIST_ORACLE, oracle=params)


def list_asset(params: AssetParams) -> GovAction:
    return GovAction(kind=ActionKind.LIST_ASSET, asset=params)


def list_market(params: MarketParams) -> GovAction:
    return GovAction(kind=ActionKind.LIST_MARKET, market=params)


def list_option_series(params: OptionSeriesParams) -> GovAction:
    return GovAction(kind=ActionKind.LIST_OPTION_SERIES, option_series=params)


def needs_units(actions: Iterable[ActionInput]) -> bool:
    return any(isinstance(action, NeedsUnits) for action in actions)


def finish(actions: Sequence[ActionInput], units: Units | None) -> tuple[GovAction, ...]:
    """Every action as a ``GovAction``; ``units`` are needed only by a ``NeedsUnits``. A batch
    the venue takes holds 1..32 actions (``limits.actions_per_proposal_max``)."""
    if not 1 <= len(actions) <= limits.actions_per_proposal_max:
        raise InvalidArgument(
            f"a proposal holds 1 to {limits.actions_per_proposal_max} actions, not {len(actions)}"
        )
    done: list[GovAction] = []
    for action in actions:
        if isinstance(action, GovAction):
            done.append(action)
        elif isinstance(action, NeedsUnits):
            if units is None:
                raise InvalidArgument(f"{action.what}: needs the venue's units (client.units())")
            done.append(action.finish(units))
        else:
            raise InvalidArgument(f"not a governance action: {action!r}")
    return tuple(done)


# ── Values ────────────────────────────────────────────────────────────────────────────────


def ratio_value(value: Human, parts_per_one: int, what: str) -> int:
    """Whole parts (``45000``), a percent (``"4.5%"``) or basis points (``"450bp"``) as parts
    of ``parts_per_one``; anything finer than one part is refused."""
    unit = "ppm" if parts_per_one == 10**6 else "ppb"
    if isinstance(value, str):
        text = value.strip()
        for suffix, per_one in _RATIO_SUFFIXES:
            if text.endswith(suffix):
                amount = human_decimal(text.removesuffix(suffix).strip(), what)
                return _whole(amount, parts_per_one, per_one, f"{what} {value}", unit)
    return _whole(human_decimal(value, what), 1, 1, f"{what} {value}", unit,
                  hint=" (write a percent as '4.5%')")  # fmt: skip


def duration_ns(value: Human, what: str) -> int:
    """Nanoseconds (``3600000000000``) or a duration with its unit (``"1h"``, ``"1.5d"``,
    ``"250ms"``; d, h, m or min, s, ms, us, ns)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        number, unit = match.groups()
        if unit not in _DURATIONS_NS:
            raise InvalidArgument(f"{what} {value}: no unit {unit!r} (d, h, m, s, ms, us, ns)")
        scale = _DURATIONS_NS[unit]
        return _whole(human_decimal(number, what), scale, 1, f"{what} {value}", "nanoseconds")
    return _whole(human_decimal(value, what), 1, 1, f"{what} {value}", "nanoseconds",
                  hint=" (or give a unit: '90s', '1h')")  # fmt: skip


def _whole(amount: Decimal, factor: int, divisor: int, what: str, unit: str, hint: str = "") -> int:
    """``amount`` × ``factor`` / ``divisor`` as a whole number, or refused: never rounded."""
    scaled = whole_multiple(amount, factor)
    if scaled is None or scaled % divisor:
        raise InvalidArgument(f"{what} is not a whole number of {unit}{hint}: not rounded")
    return scaled // divisor


def _amount(value: Human, name: str) -> Human:
    """An amount's syntax, checked before any request: a number, not a percent."""
    if isinstance(value, str) and value.strip().endswith(tuple(s for s, _ in _RATIO_SUFFIXES)):
        raise InvalidArgument(f"{name} is an amount in human units, not a ratio: {value!r}")
    human_decimal(value, name)
    return value


def _scaled(units: Units, entry: Governed, target: str, amount: Human) -> int:
    """An amount parameter's human value in quantums of its asset (exactly, or refused)."""
    unit = unit_of(entry.name)
    if unit is Unit.QUOTE_AMOUNT:
        return units.amount_quantums(QUOTE_ASSET, amount)
    if unit is Unit.ASSET_AMOUNT:
        return units.amount_quantums(target, amount)
    return units.market(target).base_quantums(amount)


def _set(entry: Governed, target: str, value: int) -> GovAction:
    if not entry.lower <= value <= entry.upper:
        low, high = format_value(entry.name, entry.lower), format_value(entry.name, entry.upper)
        raise InvalidArgument(
            f"{entry.name} is bounded to {low} .. {high}: {format_value(entry.name, value)} "
            "is outside"
        )
    return GovAction(kind=ActionKind.SET_PARAM, target=target, name=entry.name, value=value)


def _is_unlimited(entry: Governed, value: Human) -> bool:
    if not (isinstance(value, str) and value.strip().lower() in _UNLIMITED_WORDS):
        return False
    if not entry.zero_unlimited:
        raise InvalidArgument(f"{entry.name} has no 'unlimited' value")
    return True


def _target(entry: Governed, target: str) -> str:
    if entry.scope in _VENUE_WIDE:
        if target:
            raise InvalidArgument(f"{entry.name} is venue-wide: no target, not {target!r}")
        return target
    if not target or target != target.strip():
        scope = entry.scope.name.lower()
        raise InvalidArgument(f"{entry.name} needs its {scope}'s id as target, not {target!r}")
    return target


def _market(market: str) -> str:
    if not market or market != market.strip():
        raise InvalidArgument(f"a market id, not {market!r}")
    return market


# ── Reading them back ─────────────────────────────────────────────────────────────────────


def format_value(
    name: str, value: int, units: Units | None = None, target: str = "", *, brief: bool = False
) -> str:
    """A governed parameter's integer as a person reads it (``4.5% (45000 ppm)``, ``1h``,
    ``250 USDC``; ``brief``: ``4.5%``); an amount without the venue's units stays in quantums."""
    entry = REGISTRY.get(name)
    if entry is not None and entry.zero_unlimited and value == 0:
        return "unlimited"
    unit = unit_of(name) if entry is not None else None
    if unit in _PARTS_PER_ONE:
        assert unit is not None
        percent = _plain(from_quantums(value * 100, _PARTS_PER_ONE[unit]))
        return f"{percent}%" if brief else f"{percent}% ({value} {unit.value})"
    if unit is Unit.DURATION:
        return format_duration(value)
    human = _human_amount(unit, value, units, target)
    return human if human is not None else f"{value} {unit.value if unit else ''}".strip()


def shown_in_units(action: Mapping[str, Any]) -> bool:
    """Whether an action (its JSON) has a value in the venue's units: an amount, a price."""
    name = action.get("name") or ""
    if name in REGISTRY:
        return unit_of(name) in {Unit.QUOTE_AMOUNT, Unit.BASE_SIZE, Unit.ASSET_AMOUNT}
    kind = action.get("kind")
    return kind in (ActionKind.SET_SETTLEMENT_PRICE, ActionKind.SET_SETTLEMENT_PRICE.name)


def format_duration(ns: int) -> str:
    """The largest unit that counts ``ns`` exactly: ``3600000000000`` is ``1h``."""
    if ns == 0:
        return "0"
    for unit in ("d", "h", "m", "s", "ms", "us"):
        if ns % _DURATIONS_NS[unit] == 0:
            return f"{ns // _DURATIONS_NS[unit]}{unit}"
    return f"{ns}ns"


def describe(action: GovAction | Mapping[str, Any], units: Units | None = None) -> str:
    """One action in words, from a ``GovAction`` or its JSON as the node shows it."""
    plain = _plain_action(action)
    kind, target, value = plain["kind"], plain["target"], plain["value"]
    match kind:
        case ActionKind.SET_PARAM:
            where = f" of {target}" if target else ""
            shown = format_value(plain["name"], value, units, target)
            return f"set {plain['name']}{where} to {shown}"
        case ActionKind.SET_SETTLEMENT_PRICE:
            return f"settle {target} at {_price(value, units, target)}"
        case ActionKind.SET_THRESHOLD:
            return f"set the council's threshold to {value}"
        case ActionKind.LIST_ORACLE | ActionKind.LIST_ASSET | ActionKind.LIST_MARKET:
            return f"list {kind.name.removeprefix('LIST_').lower()} {_listed_id(plain)}"
        case ActionKind.LIST_OPTION_SERIES:
            return f"list option series {_listed_id(plain)}"
    return _WORDS[kind].format(target=target or "none")


_WORDS = {
    ActionKind.PAUSE_MARKET: "pause {target}",
    ActionKind.RESUME_MARKET: "resume {target}",
    ActionKind.REDUCE_ONLY_ON: "make {target} reduce-only",
    ActionKind.REDUCE_ONLY_OFF: "lift reduce-only on {target}",
    ActionKind.ADD_COUNCIL_MEMBER: "add {target} to the council",
    ActionKind.REMOVE_COUNCIL_MEMBER: "remove {target} from the council",
    ActionKind.SET_STEWARD: "set the risk steward to {target}",
    ActionKind.SET_GUARDIAN: "set the guardian to {target}",
}


def _plain_action(action: GovAction | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(action, GovAction):
        action = {"kind": action.kind, "target": action.target, "name": action.name,
                  "value": action.value, "listed": action.oracle or action.asset
                  or action.market or action.option_series}  # fmt: skip
    kind = action.get("kind")
    try:
        read = ActionKind[kind.upper()] if isinstance(kind, str) else ActionKind(int(kind or 0))
    except (KeyError, ValueError, TypeError):
        raise InvalidArgument(f"not an action kind this client knows: {kind!r}") from None
    return {**action, "kind": read, "target": action.get("target") or "",
            "value": int(action.get("value") or 0)}  # fmt: skip


def _listed_id(plain: Mapping[str, Any]) -> str:
    listed = plain.get("listed") or next(
        (plain[k] for k in ("oracle", "asset", "market", "option_series") if plain.get(k)), None
    )
    if listed is None:
        return "?"
    fields = listed if isinstance(listed, Mapping) else {
        k: getattr(listed, k, None) for k in ("oracle_id", "asset_id", "market_id", "series_id")
    }  # fmt: skip
    return str(next((v for k, v in fields.items() if k.endswith("_id") and v), "?"))


def _human_amount(unit: Unit | None, value: int, units: Units | None, target: str) -> str | None:
    if units is None:
        return None
    try:
        if unit is Unit.QUOTE_AMOUNT:
            return f"{_plain(units.amount(QUOTE_ASSET, value))} {QUOTE_ASSET}"
        if unit is Unit.ASSET_AMOUNT:
            return f"{_plain(units.amount(target, value))} {target}"
        if unit is Unit.BASE_SIZE:
            return f"{_plain(units.market(target).size(value))} {target} base units"
    except InvalidArgument:  # a market or asset this node no longer lists
        return None
    return None


def _price(value: int, units: Units | None, market: str) -> str:
    if units is not None and market in units.markets:
        return f"{_plain(units.market(market).price(value))} {QUOTE_ASSET}"
    return f"{value} quote quantums"


def _plain(amount: Decimal) -> str:
    """``4.500000`` as ``4.5``; ``1E+1`` as ``10``."""
    return format(amount.normalize(), "f")


# The node's governance refusals in words, for a person (codes: ``core/errors.RejectReason``).
_REFUSALS = {
    "UNAUTHORIZED_SIGNER": "this key may not do that (not on the council, not the steward or "
    "the guardian; a council member cancels only its own proposals; or no governance here)",
    "GOVERNANCE_REQUIRED": "a governed venue changes itself only through governance",
    "UNKNOWN_PROPOSAL": "no proposal with that id",
    "PROPOSAL_NOT_OPEN": "the proposal is no longer open (queued, executed, cancelled or expired)",
    "ALREADY_APPROVED": "this key approved the proposal already",
    "QUORUM_NOT_MET": "fewer approvals than the council's threshold",
    "TIMELOCK_NOT_ELAPSED": "the proposal's timelock has not run yet",
    "PARAM_UNKNOWN": "the node knows no governed parameter of that name",
    "PARAM_OUT_OF_BOUNDS": "outside the parameter's hard bounds",
    "PARAM_STEP_TOO_LARGE": "more than one step of the parameter, where only one is allowed",
    "PARAM_COOLDOWN": "the parameter changed less than its cooldown ago",
    "ROLE_NOT_ALLOWED": "the role may not take this action (the guardian only reduces risk, "
    "the steward only moves parameters)",
    "SETTLEMENT_NOT_TIMED_OUT": "the market's oracle may still settle it: too early to price",
    "NO_PENDING_SETTLEMENT": "no governance settlement price awaits its dispute window",
    "DISPUTE_WINDOW_CLOSED": "the dispute window has closed",
    "ALREADY_DISPUTED": "this key disputed the market's settlement price already",
    "MARKET_PAUSED": "the market is paused",
    "TOO_MANY_PROPOSALS": "too many open proposals: let some execute, expire or be cancelled",
    "INVALID_PARAMETERS": "the node found the actions invalid (a value equal to the current "
    "one, an empty or too long batch, a memo or simulation too long)",
}


def refusal_reason(code: str) -> str | None:
    """A governance refusal's code in words (None for any other code)."""
    return _REFUSALS.get(code)


# ── A proposal's simulation ───────────────────────────────────────────────────────────────


def simulation_json(stress_json: str, impact: Mapping[str, Any]) -> str:
    """What a proposal carries as its ``simulation``: one compact JSON document,
    ``{"stress": the stress lab's diff, "liquidatable": the holders the change would put below
    maintenance at once, "liquidatable_count": how many, "truncated": whether the node's scan
    was cut}``, within the venue's 16,000 characters: the list is cut to fit (its first
    holders, ``liquidatable_count`` all of them); the diff is never cut, so one too long is
    refused."""
    stress = json.loads(stress_json)
    holders = list(impact.get("liquidatable", []))
    scan_cut = bool(impact.get("truncated", False))

    def document(keep: int) -> str:
        return json.dumps({
            "stress": stress, "liquidatable": holders[:keep], "liquidatable_count": len(holders),
            "truncated": scan_cut,
        }, separators=(",", ":"), sort_keys=True)  # fmt: skip

    most = limits.proposal_simulation_length_max
    if len(document(0)) > most:
        raise InvalidArgument(f"the simulation's JSON is {len(document(0)):,} characters: a "
                              f"proposal carries at most {most:,}")  # fmt: skip
    fits, too_many = 0, len(holders) + 1  # the longest list that fits: fits <= n < too_many
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        fits, too_many = (middle, too_many) if len(document(middle)) <= most else (fits, middle)
    return document(fits)
