"""graphsel: graph-centric sample transfer for cross-domain CTR prediction.

The core (this package: logs, graphs, selection) never imports :mod:`graphsel.transfer` or
:mod:`graphsel.cli`. The graph and selection names load on first use, so ``import graphsel``
stays light (no torch, FAISS or scikit-learn until they are needed).

Importing it first applies the thread policy of :mod:`graphsel._runtime` (idle OpenMP
threads sleep instead of spinning; ``GRAPHSEL_THREADS=off`` leaves the libraries' defaults):
it must be in the environment before numpy, torch or FAISS load their thread pools. It also
makes Arrow allocate with ``malloc``, which returns freed memory sooner than Arrow's default
pool (:func:`graphsel._memory.use_system_pool`; ``ARROW_DEFAULT_MEMORY_POOL`` wins).
"""

from __future__ import annotations

import importlib
from typing import Any

from graphsel._runtime import apply_policy, set_threads

apply_policy()  # before the next import loads numpy and its BLAS threads

from graphsel._memory import use_system_pool  # noqa: E402

use_system_pool()

from graphsel.data.log import (  # noqa: E402
    IdIndex,
    InteractionLog,
    read_log,
    read_pair,
    share_index,
    write_log,
)
from graphsel.errors import InputError  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "BipartiteGraph": "graphsel.graph",
    "Expansion": "graphsel.graph.expansion",
    "graph_select": "graphsel.graph.expansion",
    "shared_seeds": "graphsel.graph.expansion",
    "DomainClassifier": "graphsel.select.domain",
    "NeighborScorer": "graphsel.select.neighbors",
    "SampleSelector": "graphsel.select.pipeline",
    "Selection": "graphsel.select.pipeline",
}

__all__ = [
    "IdIndex",
    "InputError",
    "InteractionLog",
    "read_log",
    "read_pair",
    "set_threads",
    "share_index",
    "write_log",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphsel' has no attribute {name!r}")
