"""The data layer: validated interaction logs on one shared id index, their files, cards and the
registered datasets (:mod:`graphsel.data.datasets`).
"""

from graphsel.data.log import (
    IdIndex,
    InteractionLog,
    read_log,
    read_pair,
    share_index,
    write_log,
)

__all__ = ["IdIndex", "InteractionLog", "read_log", "read_pair", "share_index", "write_log"]
