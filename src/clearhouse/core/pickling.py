"""Pickling the core's frozen dataclasses in the compiled build (``make compiled``).

mypyc gives a compiled class a ``__setstate__`` that restores each attribute through the class's
``__setattr__``, which a frozen dataclass refuses: pickle, ``copy.deepcopy`` and process pools
(the node's signature workers) could not rebuild a command, an event, parameters or an id. Each
compiled frozen dataclass of the core is registered with ``copyreg`` to be rebuilt from its
field values instead, each set as the dataclass's own ``__init__`` sets it. In the pure build no
class is compiled, and nothing is registered.
"""

from __future__ import annotations

import copyreg
import dataclasses
import sys
from typing import Any

_FIELDS: dict[type, tuple[str, ...]] = {}


def register_compiled_frozen_dataclasses() -> int:
    """Register every compiled frozen dataclass of the loaded core modules; how many."""
    registered = 0
    for name, module in list(sys.modules.items()):
        if not (name == "clearhouse.core" or name.startswith("clearhouse.core.")):
            continue
        for value in list(getattr(module, "__dict__", {}).values()):
            if (
                isinstance(value, type)
                and value.__module__ == name
                and hasattr(value, "__mypyc_attrs__")  # compiled by mypyc
                and dataclasses.is_dataclass(value)
                and value.__dataclass_params__.frozen  # type: ignore[attr-defined]
            ):
                copyreg.pickle(value, _reduce)
                registered += 1
    return registered


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _reduce(value: Any) -> tuple[Any, ...]:
    cls = type(value)
    return _rebuild, (cls, tuple(getattr(value, name) for name in _names(cls)))


def _rebuild(cls: Any, values: tuple[object, ...]) -> object:
    value = cls.__new__(cls)
    for name, field_value in zip(_names(cls), values, strict=True):
        object.__setattr__(value, name, field_value)
    return value
