"""Tiny models and data shared by the transfer-model tests (two fields, one numeric)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from graphsel.data.datasets import get_dataset
from graphsel.data.log import InteractionLog
from graphsel.select.domain import DomainClassifier
from graphsel.select.pipeline import SampleSelector
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.models.base import CTRModel, ModelConfig, build_base_model
from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time

VOCAB = (5, 4)
TINY = ModelConfig(embed_dim=4, hidden=(8, 4))
TINY_BN = ModelConfig(embed_dim=4, hidden=(8, 4), batch_norm=True)

TINY_RUN_CONFIG = """
dataset: {name: synthetic, options: {scale: 0.05}}
selection: {stages: [graph, da], da: {model: logistic, cv: 2, embedding_dim: 4}}
model: {embed_dim: 4, hidden: [16]}
train: {epochs: 1, batch_size: 256, num_threads: 1}
strategies: [target_only, selected_weighted]
n_boot: 20
"""
"""A `graphsel run` config that trains two strategies in seconds."""


def tiny_model(seed: int, config: ModelConfig = TINY) -> CTRModel:
    """A seeded base model over :data:`VOCAB` and one numeric feature."""
    torch.manual_seed(seed)
    return build_base_model(list(VOCAB), num_numeric=1, config=config)


def tiny_inputs(n: int = 6, seed: int = 0, vocab: Sequence[int] = VOCAB,
                num_numeric: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``cat (n, F)`` codes below each field's vocabulary and ``num (n, M)``."""
    generator = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, size, (n,), generator=generator) for size in vocab],
                      dim=1)
    return cat, torch.randn(n, num_numeric, generator=generator)


def tiny_dataset(n: int = 32, seed: int = 0, vocab: Sequence[int] = VOCAB,
                 num_numeric: int = 1) -> CTRDataset:
    """:func:`tiny_inputs` with label = first field's code is odd."""
    cat, num = tiny_inputs(n, seed, vocab, num_numeric)
    return CTRDataset(cat, num, (cat[:, 0] % 2).float())


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def tiny_selector() -> SampleSelector:
    """A quick selector for protocol tests: the graph stage, then a 2-fold logistic domain
    classifier on 4 graph factors (non-trivial masks and weights, in a second)."""
    return SampleSelector(["graph", DomainClassifier("logistic", cv=2, embedding_dim=4)])


def synthetic_pair() -> tuple[InteractionLog, InteractionLog]:
    """The synthetic default at scale 0.05: ``(source, target)``."""
    split = get_dataset("synthetic")(scale=0.05)
    return split.source, split.target


def with_test_labels_flipped(source: InteractionLog, target: InteractionLog,
                             protocol: ProtocolConfig) -> InteractionLog:
    """``target`` with every label of its test rows (under ``protocol``'s split) flipped:
    a run on it must choose and train exactly as on ``target`` (the test never picks)."""
    test = split_by_time(source, target, protocol).target_test
    label = np.asarray(target.label).copy()
    label[test] = 1 - label[test]
    table = target.table.set_column(target.table.column_names.index("label"), "label",
                                    pa.array(label))
    return InteractionLog(table, target.index, target.user, target.item, target.ts, label,
                          target.name)


def strip_seconds(payload: Any) -> Any:
    """A results JSON without its timing fields (``seconds``, ``tuning_seconds``)."""
    if isinstance(payload, dict):
        return {key: strip_seconds(value) for key, value in payload.items()
                if key not in ("seconds", "tuning_seconds")}
    if isinstance(payload, list):
        return [strip_seconds(value) for value in payload]
    return payload
