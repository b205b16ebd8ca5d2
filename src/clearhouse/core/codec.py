"""Canonical encoding of commands, events and state leaves: compact JSON, sorted keys.

The encoding is part of consensus: block hashes, event digests and state roots are taken over
these bytes, so it must be byte-stable. Decoding is strict (unknown or missing fields, wrong
types, out-of-range enums are errors) because journal bytes and API payloads are untrusted.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import IntEnum
from functools import cache
from typing import Any

from clearhouse.core import messages
from clearhouse.core.errors import InvalidArgument

_COMMANDS: dict[str, type[messages.Command]] = {c.__name__: c for c in messages.USER_COMMANDS}


class MalformedCommand(InvalidArgument):
    code = "MALFORMED_COMMAND"


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def to_plain(value: object) -> Any:
    """A dataclass tree as plain JSON-able values (enums as ints, tuples as lists)."""
    kind = type(value)
    if kind is int or kind is str or kind is bool or value is None:
        return value
    if isinstance(value, IntEnum):
        return int(value)
    names = _FIELD_NAMES.get(kind) if kind in _FIELD_NAMES else _field_names(kind)
    if names is not None:
        return {name: to_plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    names = (
        tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None
    )
    _FIELD_NAMES[kind] = names
    return names


def encode_command(command: messages.Command) -> bytes:
    name = type(command).__name__
    assert name in _COMMANDS, name
    return canonical_json({"type": name, "body": to_plain(command)})


def decode_command(data: bytes) -> messages.Command:
    """Bytes to a command; raises MalformedCommand with the reason on any defect."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedCommand(f"not JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != {"type", "body"}:
        raise MalformedCommand("expected an object with exactly 'type' and 'body'")
    command_type = _COMMANDS.get(document["type"]) if isinstance(document["type"], str) else None
    if command_type is None:
        raise MalformedCommand(f"unknown command type {document['type']!r}")
    command = _decode_dataclass(command_type, document["body"], "body")
    assert isinstance(command, messages.Command)
    return command


def encode_event(event: messages.Event) -> Any:
    return {"type": type(event).__name__, **to_plain(event)}


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode_dataclass(cls: type, raw: object, path: str) -> object:
    if not isinstance(raw, dict):
        raise MalformedCommand(f"{path}: expected an object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise MalformedCommand(f"{path}: unknown field(s) {', '.join(unknown)}")
    hints = _hints(cls)
    values: dict[str, object] = {}
    for name, spec in fields.items():
        if name in raw:
            values[name] = _decode_value(hints[name], raw[name], f"{path}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise MalformedCommand(f"{path}: missing field {name}")
    return cls(**values)


def _decode_value(hint: Any, raw: object, path: str) -> object:  # noqa: C901
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(hint, raw, path)
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        if not isinstance(raw, list):
            raise MalformedCommand(f"{path}: expected a list")
        return tuple(_decode_value(item_hint, item, f"{path}[{i}]") for i, item in enumerate(raw))
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # a NewType: check against what it wraps
        return _decode_value(supertype, raw, path)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return _decode_enum(hint, raw, path)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, raw, path)
    if hint is bool:
        if type(raw) is not bool:
            raise MalformedCommand(f"{path}: expected true or false")
        return raw
    if hint is int:
        if type(raw) is not int:
            raise MalformedCommand(f"{path}: expected an integer")
        return raw
    if hint is str:
        if not isinstance(raw, str):
            raise MalformedCommand(f"{path}: expected a string")
        return raw
    raise MalformedCommand(f"{path}: unsupported type {hint!r}")


def _decode_union(hint: Any, raw: object, path: str) -> object:
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if raw is None:
        if len(options) == len(typing.get_args(hint)):
            raise MalformedCommand(f"{path}: may not be null")
        return None
    assert len(options) == 1, hint
    return _decode_value(options[0], raw, path)


def _decode_enum(hint: type[IntEnum], raw: object, path: str) -> IntEnum:
    if type(raw) is not int:
        raise MalformedCommand(f"{path}: expected an integer code")
    try:
        return hint(raw)
    except ValueError:
        raise MalformedCommand(f"{path}: {raw} is not a valid {hint.__name__}") from None


__all__ = [
    "MalformedCommand",
    "canonical_json",
    "decode_command",
    "encode_command",
    "encode_event",
    "to_plain",
]
