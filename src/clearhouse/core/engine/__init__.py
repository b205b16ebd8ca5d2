"""The clearing state machine, one module per domain (see ``docs/ARCHITECTURE.md``).

Outside this package only the facade is used: ``Engine`` (``machine.py``), and the names below.
"""

from clearhouse.core.engine.context import Rejected
from clearhouse.core.engine.expiry import ARCHIVE_AFTER_NS
from clearhouse.core.engine.machine import Engine
from clearhouse.core.engine.preview import (
    LIQUIDATION_PRICES_MAX,
    MarginPreview,
    PositionPreview,
    Trial,
)
from clearhouse.core.engine.risk import Greeks

__all__ = [
    "ARCHIVE_AFTER_NS",
    "LIQUIDATION_PRICES_MAX",
    "Engine",
    "Greeks",
    "MarginPreview",
    "PositionPreview",
    "Rejected",
    "Trial",
]
