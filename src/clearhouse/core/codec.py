"""Canonical encoding of commands, events and state leaves: compact JSON, sorted keys.

The encoding is part of consensus: block hashes, event digests and state roots are taken over
these bytes, so it must be byte-stable. Decoding is strict (unknown or missing fields, wrong
types, out-of-range enums are errors) because journal bytes and API payloads are untrusted.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from clearhouse.core import limits, messages, params, payoffs, surface
from clearhouse.core.errors import MalformedCommand
from clearhouse.core.ids import Address, MarketId, OracleId

_COMMANDS: dict[str, type[messages.Command]] = {c.__name__: c for c in messages.USER_COMMANDS}


def canonical_json(value: object) -> bytes:
    return _CANONICAL.encode(value).encode()


# What json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True) builds on
# every call; encoding keeps no state in the encoder, so one serves every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def to_plain(value: object) -> Any:
    """A dataclass tree as plain JSON-able values (enums as ints, tuples as lists)."""
    kind = type(value)
    if kind is int or kind is str or kind is bool or value is None:
        return value
    if isinstance(value, IntEnum):
        return int(value)
    names = _FIELD_NAMES.get(kind) if kind in _FIELD_NAMES else _field_names(kind)
    if names is not None:
        plain = {name: to_plain(getattr(value, name)) for name in names}
        for name in _LEFT_OUT_WHEN_NONE.get(kind, ()):
            if plain[name] is None:
                del plain[name]
        return plain
    if isinstance(value, tuple | list):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}
# Optional fields added after journals were written: left out of the bytes while None, so a
# command without one encodes (and hashes) as it always did; decoding a missing one gives None.
_LEFT_OUT_WHEN_NONE: dict[type, tuple[str, ...]] = {surface.SviSlice: ("forward_basis_ppm",)}


def _field_names(kind: type) -> tuple[str, ...] | None:
    names = (
        tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None
    )
    _FIELD_NAMES[kind] = names
    return names


def encode_command(command: messages.Command | messages.AgentSigned) -> bytes:
    """Journal bytes of a command; an agent-signed one carries its agent beside the body."""
    if isinstance(command, messages.AgentSigned):
        inner = command.command
        name = type(inner).__name__
        assert name in _COMMANDS, name
        return canonical_json({"type": name, "body": to_plain(inner), "agent": command.agent})
    name = type(command).__name__
    assert name in _COMMANDS, name
    return canonical_json({"type": name, "body": to_plain(command)})


def decode_command(data: bytes) -> messages.Command | messages.AgentSigned:
    """Bytes to a command (with its agent, if an agent signed it); raises MalformedCommand with
    the reason on any defect."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedCommand(f"not JSON: {error}") from None
    keys = set(document) if isinstance(document, dict) else set()
    if keys not in ({"type", "body"}, {"type", "body", "agent"}):
        raise MalformedCommand("expected an object with 'type', 'body' and at most 'agent'")
    command_type = _COMMANDS.get(document["type"]) if isinstance(document["type"], str) else None
    if command_type is None:
        raise MalformedCommand(f"unknown command type {document['type']!r}")
    try:
        command = _decoder(command_type)(document["body"])
    except _Defect as defect:
        raise MalformedCommand(f"body{''.join(reversed(defect.path))}: {defect}") from None
    assert isinstance(command, messages.Command)
    if "agent" not in document:
        return command
    agent = document["agent"]
    if type(agent) is not str:
        raise MalformedCommand("agent: expected an address")
    return messages.AgentSigned(command, Address(agent))


def decode_plain(kind: type, raw: object) -> object:
    """Plain JSON values back into ``kind`` (a dataclass tree), as strictly as a command's
    body; raises MalformedCommand with the path of the first defect."""
    try:
        return _decoder(kind)(raw)
    except _Defect as defect:
        raise MalformedCommand(
            f"{kind.__name__}{''.join(reversed(defect.path))}: {defect}"
        ) from None


def out_of_range(command: messages.Command) -> tuple[str, int, str] | None:
    """``plain_out_of_range`` of a command."""
    return plain_out_of_range(to_plain(command))


def plain_out_of_range(body: object) -> tuple[str, int, str] | None:
    """The first value of a command's plain body (by field order, nested ones included) beyond
    its field's bound: an integer's magnitude (``limits.integer_field_max``), a text's length
    (``limits.text_field_length_max``), a list's (``limits.list_field_length_max``). As its path
    (``body.size_…``), the bound, and what it bounds; None when all are within. Cheap: a list
    too long is found before its items are read."""
    return _first_out_of_range(body, "body", "")


def _first_out_of_range(value: object, path: str, name: str) -> tuple[str, int, str] | None:
    if type(value) is int:
        bound = limits.integer_field_max(name)
        return (path, bound, "in magnitude") if abs(value) > bound else None
    if type(value) is str:
        bound = limits.text_field_length_max(name)
        return (path, bound, "characters") if len(value) > bound else None
    if isinstance(value, dict):
        items = ((f"{path}.{key}", key, item) for key, item in value.items())
    elif isinstance(value, list):
        bound = limits.list_field_length_max(name)
        if len(value) > bound:
            return path, bound, "items"
        items = ((f"{path}[{index}]", name, item) for index, item in enumerate(value))
    else:
        return None
    for where, named, item in items:
        found = _first_out_of_range(item, where, named)
        if found is not None:
            return found
    return None


def encode_event(event: messages.Event) -> Any:
    return {"type": type(event).__name__, **to_plain(event)}


# ── Field types ───────────────────────────────────────────────────────────────────────────
#
# The decoders below, and the EIP-712 type tables (``app/signing.py``), read each field's type.
# A dataclass compiled by mypyc (``make compiled``) keeps only the class of each annotation:
# int, str, bool, NewTypes, enums and nested dataclasses survive, type arguments and unions do
# not (``tuple[PriceReport, ...]`` reads back as ``tuple``, ``MarketId | None`` as ``type``).
# The fields whose types have arguments are spelled out here and read in both builds; a test
# checks, in the pure build, that this table says exactly what the annotations say.

_PARAMETERIZED: dict[tuple[type, str], Any] = {
    (messages.CancelAll, "market_id"): MarketId | None,
    (messages.ReportPrices, "reports"): tuple[messages.PriceReport, ...],
    (messages.ReportSurface, "slices"): tuple[surface.SviSlice, ...],
    (surface.SviSlice, "forward_basis_ppm"): int | None,
    (params.OracleParams, "publishers"): tuple[params.Publisher, ...],
    (params.OracleParams, "quotes"): tuple[params.QuoteFeed, ...],
    (params.AssetParams, "oracle_id"): OracleId | None,
    (params.MarketParams, "payoff"): payoffs.Payoff | None,
    (params.VaultParams, "markets"): tuple[params.VaultMarketParams, ...],
    (payoffs.Payoff, "kinks"): tuple[tuple[int, int], ...],
    (messages.Propose, "actions"): tuple[messages.GovAction, ...],
    (messages.StewardUpdate, "actions"): tuple[messages.GovAction, ...],
    (messages.GuardianAct, "actions"): tuple[messages.GovAction, ...],
    (messages.GovAction, "oracle"): params.OracleParams | None,
    (messages.GovAction, "asset"): params.AssetParams | None,
    (messages.GovAction, "market"): params.MarketParams | None,
    (messages.GovAction, "option_series"): params.OptionSeriesParams | None,
    (params.GovernanceParams, "council"): tuple[Address, ...],
    (params.GovernanceParams, "steward"): Address | None,
    (params.GovernanceParams, "guardian"): Address | None,
}


def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's field types by name, the same in the pure and the compiled build."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: _PARAMETERIZED.get((cls, f.name), hints[f.name]) for f in dataclasses.fields(cls)
    }


# ── Strict decoding, compiled once per type ──────────────────────────────────────────────
#
# Each type gets a decoder function built from its type hints on first use. A defect raises
# _Defect, and each enclosing decoder adds its step to the path only on that error path, so a
# well-formed command costs no path bookkeeping at all.

Decoder = Callable[[object], object]


class _Defect(Exception):  # an internal signal: decode_command turns it into MalformedCommand
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.path: list[str] = []


_DECODERS: dict[Any, Decoder] = {}


def _decoder(hint: Any) -> Decoder:
    found = _DECODERS.get(hint)
    if found is None:
        found = _compile(hint)
        _DECODERS[hint] = found
    return found


def _compile(hint: Any) -> Decoder:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _optional_decoder(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return _tuple_decoder(_decoder(args[0]))
        return _fixed_tuple_decoder([_decoder(a) for a in args])
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # a NewType: decode what it wraps
        return _decoder(supertype)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return _enum_decoder(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    if hint in (bool, int, str):
        return _primitive_decoder(hint)
    raise AssertionError(f"no decoder for {hint!r}")


def _primitive_decoder(kind: type) -> Decoder:
    expected = {bool: "true or false", int: "an integer", str: "a string"}[kind]

    def decode(raw: object) -> object:
        if type(raw) is not kind:
            raise _Defect(f"expected {expected}")
        return raw

    if kind is not str:
        return decode

    def decode_text(raw: object) -> object:
        decode(raw)
        assert isinstance(raw, str)
        if not raw.isascii() and _SURROGATE.search(raw):
            raise _Defect("not Unicode text (a lone surrogate escape such as \\ud800)")
        return raw

    return decode_text


# JSON's \u escapes can spell half of a surrogate pair alone, which no UTF-8 text holds (it
# cannot be signed, hashed or stored as text); json.loads joins a whole pair into one character.
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # the escapes read by re: no surrogate in the source


def _optional_decoder(hint: Any) -> Decoder:
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    assert len(options) == 1, f"only X | None unions are supported: {hint!r}"
    inner = _decoder(options[0])

    def decode(raw: object) -> object:
        return None if raw is None else inner(raw)

    return decode


def _tuple_decoder(item: Decoder) -> Decoder:
    def decode(raw: object) -> object:
        if type(raw) is not list:
            raise _Defect("expected a list")
        return _decode_items([(item, value) for value in raw])

    return decode


def _decode_items(pairs: list[tuple[Decoder, object]]) -> tuple[object, ...]:
    """Each value by its decoder; a defect names the index it was found at."""
    out = []
    for index, (item, value) in enumerate(pairs):
        try:
            out.append(item(value))
        except _Defect as defect:
            defect.path.append(f"[{index}]")
            raise
    return tuple(out)


def _fixed_tuple_decoder(items: list[Decoder]) -> Decoder:
    def decode(raw: object) -> object:
        if type(raw) is not list or len(raw) != len(items):
            raise _Defect(f"expected a list of {len(items)}")
        return _decode_items(list(zip(items, raw, strict=True)))

    return decode


def _enum_decoder(kind: type[IntEnum]) -> Decoder:
    members = {int(member): member for member in kind}

    def decode(raw: object) -> object:
        if type(raw) is not int:
            raise _Defect("expected an integer code")
        member = members.get(raw)
        if member is None:
            raise _Defect(f"{raw} is not a valid {kind.__name__}")
        return member

    return decode


def _dataclass_decoder(cls: type) -> Decoder:
    hints = field_types(cls)
    fields = [
        (
            f.name,
            _decoder(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    ]
    names = frozenset(name for name, _, _ in fields)

    def decode(raw: object) -> object:
        if type(raw) is not dict:
            raise _Defect("expected an object")
        if not names.issuperset(raw):
            raise _Defect(f"unknown field(s) {', '.join(sorted(set(raw) - names))}")
        values: dict[str, object] = {}
        for name, field_decoder, required in fields:
            if name in raw:
                try:
                    values[name] = field_decoder(raw[name])
                except _Defect as defect:
                    defect.path.append(f".{name}")
                    raise
            elif required:
                raise _Defect(f"missing field {name}")
        return cls(**values)

    return decode


__all__ = [
    "MalformedCommand",
    "canonical_json",
    "decode_command",
    "encode_command",
    "encode_event",
    "field_types",
    "out_of_range",
    "plain_out_of_range",
    "to_plain",
]
