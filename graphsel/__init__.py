"""graphsel: graph-centric sample transfer for cross-domain CTR prediction.

The core (this package: logs, graphs, selection) never imports :mod:`graphsel.transfer` or
:mod:`graphsel.cli`.
"""

from graphsel.errors import InputError
from graphsel.log import (
    IdIndex,
    InteractionLog,
    read_log,
    read_pair,
    share_index,
    write_log,
)

__version__ = "0.1.0"

__all__ = [
    "IdIndex",
    "InputError",
    "InteractionLog",
    "read_log",
    "read_pair",
    "share_index",
    "write_log",
]
