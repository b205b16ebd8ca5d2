"""The functional core: a deterministic, synchronous state machine (no I/O, clock, randomness)."""

from clearhouse.core.block import BlockHeader, ExecutedBlock, execute_block
from clearhouse.core.engine import Engine
from clearhouse.core.errors import InvariantViolation, RejectReason
from clearhouse.core.pickling import register_compiled_frozen_dataclasses

register_compiled_frozen_dataclasses()  # the compiled build only (see core/pickling.py)

__all__ = [
    "BlockHeader",
    "Engine",
    "ExecutedBlock",
    "InvariantViolation",
    "RejectReason",
    "execute_block",
]
