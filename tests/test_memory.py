from __future__ import annotations

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
