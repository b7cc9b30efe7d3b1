"""A tiny ML-1M folder for the ``movielens-1m-genres`` sequences and a ``task: next_item``
config that trains on it in seconds (shared by the runner, figure and CLI tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.datasets.atomic import write_atomic

GENRES = ("Documentary", "Comedy", "Drama", "Action")
"""Item ``i`` has genre ``GENRES[i % 4]``: four of the six ML-1M domains."""


def write_tiny_ml1m(folder: Path, users: int = 24, length: int = 10, items: int = 40) -> Path:
    """``ml-1m.item.gz`` and ``ml-1m.inter.gz`` of ``users`` users with ``length`` seeded
    ratings each over ``items`` movies; returns ``folder`` (made if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_atomic(folder / "ml-1m.item.gz",
                 [("item_id:token", "genre:token_seq"),
                  *[(str(i), GENRES[i % len(GENRES)]) for i in range(items)]])
    write_atomic(folder / "ml-1m.inter.gz",
                 [("user_id:token", "item_id:token", "rating:float", "timestamp:float"),
                  *[(str(u), str(rng.integers(items)), "4", str(t))
                    for u in range(users) for t in range(length)]])
    return folder


def tiny_next_item_config(folder: Path, models: str = "[syncrec, sasrec_cdsr]") -> str:
    """The YAML text of a next-item comparison on :func:`write_tiny_ml1m`'s ``folder``:
    ``models``, 2 seeds, 2 epochs, a one-layer model of width 8."""
    return f"""task: next_item
dataset: {{name: movielens-1m-genres, options: {{path: "{folder}"}}}}
model: {{hidden: 8, num_layers: 1, num_experts: 2, max_length: 6}}
train: {{epochs: 2, batch_size: 8, patience: 2, threads: 1}}
evaluation: {{negatives: 5, n_boot: 50}}
models: {models}
seeds: 2
"""
