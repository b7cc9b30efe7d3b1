from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from graphsel import _memory


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(_memory._malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_freed_heap_memory_goes_back_to_the_system():
    # 2,000 blocks of 96 KiB sit on glibc's heap (below its mmap threshold); the last one
    # stays alive, so the heap cannot shrink from its top by itself when the others go
    blocks = [np.ones(96 * 1024 // 8) for _ in range(2_000)]
    last = blocks[-1]
    del blocks
    before = _rss_mib()
    _memory.release_memory()
    assert before - _rss_mib() > 100  # of the ~190 MiB freed
    assert last.sum() == 96 * 1024 // 8


def test_import_makes_malloc_arrows_pool_unless_the_user_named_one():
    code = "import graphsel, pyarrow as pa; print(pa.default_memory_pool().backend_name)"

    def backend(**env: str) -> str:
        base = {k: v for k, v in os.environ.items() if k != _memory.POOL_VARIABLE}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**base, **env}, check=True, timeout=120)
        return run.stdout.strip()

    assert backend() == "system"
    assert backend(ARROW_DEFAULT_MEMORY_POOL="jemalloc") == "jemalloc"
    assert not _memory.use_system_pool({_memory.POOL_VARIABLE: "mimalloc"})
