"""One whole comparison from an :class:`~graphsel.transfer.config.ExperimentConfig`.

``run_experiment(load_config("configs/synthetic.yaml")).table()`` is what ``graphsel run``
prints. ``graphsel demo``, which already holds the synthetic logs, ends with
``run_experiment(synthetic_default(seed, scale), data=(source, target, truth)).table()``:
:func:`synthetic_default` reads the same file (:data:`SYNTHETIC_CONFIG`, shipped inside the
package; ``configs/synthetic.yaml`` links to it), so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from graphsel.data.datasets import get_dataset, truth_mask
from graphsel.data.log import InteractionLog, check_pair, read_pair
from graphsel.transfer.config import DatasetConfig, ExperimentConfig, load_config
from graphsel.transfer.protocol.checkpoints import RunStore
from graphsel.transfer.protocol.results import Results
from graphsel.transfer.protocol.runner import compare_strategies

Data = tuple[InteractionLog, InteractionLog, "np.ndarray | None"]

__all__ = ["SYNTHETIC_CONFIG", "load_data", "run_experiment", "run_experiment_ranks",
           "synthetic_default"]

SYNTHETIC_CONFIG = Path(__file__).with_name("synthetic.yaml")
"""Every strategy on the synthetic default: the one copy of those settings."""


def load_data(config: ExperimentConfig) -> tuple[InteractionLog, InteractionLog, np.ndarray | None]:
    """``(source, target, truth)`` of ``config.data``; ``truth`` is None for real data.

    Raises:
        InputError: an unknown dataset or option, an unreadable or invalid log.
    """
    data = config.data
    if isinstance(data, DatasetConfig):
        split = get_dataset(data.name)(**data.options)
        truth = None if split.truth is None else truth_mask(split.truth, len(split.source))
        return split.source, split.target, truth
    source, target = read_pair(*data)
    return source, target, None


def synthetic_default(seed: int | None = None, scale: float | None = None) -> ExperimentConfig:
    """Every strategy on the synthetic default: :data:`SYNTHETIC_CONFIG`, read.

    Args:
        seed: the data's seed. Default None: the file's (0); the runs use seed 0.
        scale: the data's size multiplier. Default None: the file's (1.0: about 40 s of
            training for the eleven strategies on two cores, after a selection of about as
            long).
    """
    config = load_config(SYNTHETIC_CONFIG)
    dataset = config.dataset or DatasetConfig()
    given = {key: value for key, value in (("seed", seed), ("scale", scale))
             if value is not None}
    return dataclasses.replace(config, dataset=dataclasses.replace(
        dataset, options={**dataset.options, **given}))


def run_experiment(config: ExperimentConfig, progress: bool = False,
                   data: Data | None = None, store: RunStore | None = None) -> Results:
    """Loads the data and runs :func:`~graphsel.transfer.protocol.runner.compare_strategies`.

    Args:
        config: the experiment (seeds ``0 .. config.seeds - 1``).
        progress: progress bars on stderr (runs, selection stages, epochs). Default False.
        data: ``(source, target, truth)`` already in memory, used instead of loading
            ``config.data`` (``truth`` may be None). Default None.
        store: keeps the selection and the finished units, and resumes from them
            (``graphsel run`` passes the directory
            ``runs_root() / experiment_key(config)``, see
            :mod:`~graphsel.transfer.protocol.checkpoints`). Default None: nothing is kept.

    Raises:
        InputError: a pair :func:`graphsel.data.log.check_pair` rejects, before any work.
    """
    source, target, truth = load_data(config) if data is None else data
    selector = config.selection.build(progress=progress)
    check_pair(source, target, min_rows=max(selector.min_target_rows(), 5))
    options = {name: config.options_for(name) for name in config.strategies
               if config.options_for(name) is not None}
    return compare_strategies(
        source, target, config.strategies, model=config.model, train=config.train,
        protocol=config.protocol, selector=selector, strategy_options=options,
        seeds=range(config.seeds), truth=truth, progress=progress, store=store)


def run_experiment_ranks(config: ExperimentConfig, nproc: int, progress: bool = False,
                         run_dir: Path | None = None) -> tuple[Results, int]:
    """:func:`run_experiment` with data-parallel training on ``nproc`` processes.

    Every rank runs the whole experiment on the same data; each training step is shared
    (each rank trains on its shard of every batch, gradients summed with the weighted loss
    normalised over the whole batch: :mod:`graphsel.transfer.train.distributed`). Rank 0
    keeps the store and draws the progress bars; the other ranks resume from the same store
    but never write to it.

    Args:
        config: the experiment.
        nproc: processes, >= 1.
        progress: rank 0's progress bars. Default False.
        run_dir: the :class:`RunStore` folder. Default None: nothing is kept.

    Returns:
        Rank 0's results and the number of units it resumed from ``run_dir``.
    """
    from graphsel.transfer.train.distributed import spawn

    return spawn(_run_rank, nproc, config, progress, run_dir)


def _run_rank(config: ExperimentConfig, progress: bool,
              run_dir: Path | None) -> tuple[Results, int]:
    """One rank of :func:`run_experiment_ranks` (a module-level function: it is pickled)."""
    from graphsel.transfer.train.distributed import world

    rank = world()[0]
    store = None if run_dir is None else RunStore(run_dir, read_only=rank != 0)
    results = run_experiment(config, progress=progress and rank == 0, store=store)
    return results, 0 if store is None else store.loaded_units
