"""One whole comparison from an :class:`~graphsel.transfer.config.ExperimentConfig`.

``run_experiment(load_config("configs/synthetic.yaml")).table()`` is what ``graphsel run``
prints. ``graphsel demo``, which already holds the synthetic logs, ends with
``run_experiment(synthetic_default(seed, scale), data=(source, target, truth)).table()``.
"""

from __future__ import annotations

import numpy as np

from graphsel.data.datasets import get_dataset, truth_mask
from graphsel.data.log import InteractionLog, read_pair
from graphsel.select.pipeline import SampleSelector
from graphsel.transfer.config import DatasetConfig, ExperimentConfig
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.protocol.runner import Results, compare_strategies
from graphsel.transfer.train.trainer import TrainConfig

Data = tuple[InteractionLog, InteractionLog, "np.ndarray | None"]

__all__ = ["load_data", "run_experiment", "synthetic_default"]

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


def synthetic_default(seed: int = 0, scale: float = 1.0) -> ExperimentConfig:
    """Every strategy on the synthetic default: the settings of ``configs/synthetic.yaml``.

    Args:
        seed: the data's seed (default 0); the runs use seed 0.
        scale: the data's size multiplier (default 1.0: about 40 s of training for the six
            strategies on two cores, after a selection of about as long).
    """
    return ExperimentConfig(
        dataset=DatasetConfig("synthetic", {"seed": seed, "scale": scale}),
        model=ModelConfig(embed_dim=16, hidden=(64, 32)),
        train=TrainConfig(epochs=5, batch_size=1024, lr=1e-3, patience=2))


def run_experiment(config: ExperimentConfig, progress: bool = False,
                   data: Data | None = None) -> Results:
    """Loads the data and runs :func:`~graphsel.transfer.protocol.runner.compare_strategies`.

    Args:
        config: the experiment (seeds ``0 .. config.seeds - 1``).
        progress: progress bars on stderr (runs, selection stages, epochs). Default False.
        data: ``(source, target, truth)`` already in memory, used instead of loading
            ``config.data`` (``truth`` may be None). Default None.
    """
    source, target, truth = load_data(config) if data is None else data
    selector = SampleSelector(**config.selection, progress=progress)
    return compare_strategies(
        source, target, config.strategies, model=config.model, train=config.train,
        protocol=config.protocol, selector=selector, seeds=range(config.seeds), truth=truth,
        progress=progress)
