"""Giving freed memory back to the operating system between the large steps of a selection.

Two allocators keep what a step frees for later reuse instead of returning it: Arrow's pool
(mimalloc), which holds the buffers of decoded Parquet pages and of columns taken from a
table, and glibc's ``malloc``, whose heaps keep freed blocks below its mmap threshold (numpy's
temporaries of a few MB; the threshold grows to 32 MB once large blocks are freed). Neither is
a leak, but the kept memory counts in the process's resident size, and the next step
allocates fresh memory on top of it: on ML-1M Documentary the domain classifier's stage left
180 MB of such memory (Arrow's pool 79 MB, glibc's heaps 100 MB) under the neighbour search.
:func:`release_memory` returns both; it costs a few milliseconds.

Between those calls, mimalloc still holds what a step's Arrow temporaries freed (the decoded
pages of a read, the casts of a validation), so ``import graphsel`` makes Arrow allocate with
the C library's ``malloc`` instead (:func:`use_system_pool`), unless the user chose a pool
with ``ARROW_DEFAULT_MEMORY_POOL``. Measured with ``graphsel select`` at load about 1: ML-1M
Documentary peaked at 787 MiB instead of 803 MiB, in 0.96x the wall time (6 alternating runs
each); the synthetic default at ``--scale 30`` (6M rows) at 2,099 MiB instead of 2,200 MiB,
in 19.8 s instead of 21.0 s (one run each).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable, Mapping

import pyarrow as pa

__all__ = ["POOL_VARIABLE", "release_memory", "use_system_pool"]

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
"""Arrow's own variable naming its default pool (``system``, ``jemalloc`` or ``mimalloc``)."""


def use_system_pool(environ: Mapping[str, str] = os.environ) -> bool:
    """Makes the C library's ``malloc`` Arrow's default pool, unless ``environ`` names one
    (:data:`POOL_VARIABLE`); what ``import graphsel`` runs.

    Returns:
        Whether it changed the pool.
    """
    if POOL_VARIABLE in environ:
        return False
    pa.set_memory_pool(pa.system_memory_pool())
    return True


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory() -> None:
    """Returns the free memory of Arrow's pool and of glibc's heaps to the operating system."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
