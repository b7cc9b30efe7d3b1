"""Sub-domain negative-transfer gaps (``subdomain_gap``): which parts of the source hurt?

SyNCRec measures each domain's negative-transfer gap (the loss of the joint model against a
model without that domain) and down-weights the domains that hurt. ``subdomain_gap`` does
the same for parts of one source domain, on the target's validation rows:

1. **Sub-domains** (:func:`source_subdomains`): the values of a column the source has (a
   readable answer to "which parts hurt": MovieLens' ``first_genre``, Taobao's
   ``category_id``, the synthetic ``category``; the ``max_subdomains - 1`` largest values,
   the rest pooled as ``"other"``), else DIIT's k-means communities of items
   (:func:`~graphsel.transfer.models.diit.source_sub_domains`).
2. **The entire space**: each period the base model trains on the target's rows and every
   source row of the window, exactly as ``merge_all``.
3. **Gaps** (:func:`subdomain_gaps`): leave-one-sub-domain-out from the merged model. A copy
   of the merged model is fine-tuned for ``probe_epochs`` (default 1) on the target's rows
   and every source row of the window (the control), and one copy per sub-domain ``k`` on
   the same rows with ``k``'s weighted 0; ``gap_k = L_valid(with k) - L_valid(without k)``,
   ``L`` the validation log-loss. A positive gap says the model is worse on the target's
   validation rows for having seen ``k``. Retraining from scratch once per sub-domain (the
   exact with / without comparison) would cost ``K + 1`` full trainings; the probes cost
   ``K + 1`` epochs from a converged model, a first-order estimate of each sub-domain's
   effect on the validation loss. Weighting ``k`` out instead of dropping its rows keeps
   every probe's batches, their order and its number of optimiser steps the same, so the
   difference between two probes is the sub-domain's gradient alone (dropping the rows gave
   ML-1M Documentary gaps whose signs flipped together from seed to seed: a probe with fewer
   rows also takes fewer steps). The log-loss is used, not the AUC, because a small
   validation set's AUC moves in steps.
4. **Specialise**: the merged model fine-tunes on the target's rows and the rows of the
   sub-domains whose gap is at most ``max_gap`` (default 0: those that help or do not
   hurt), early-stopping on validation and keeping the merged weights when no epoch beats
   them (as ``merge_finetune_selected``, with the kept sub-domains as the focus).

The last period's gaps are the learner's :meth:`~SubdomainGapLearner.details`: per
sub-domain its name, source rows, gap and whether it was kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.models.diit import source_sub_domains
from graphsel.transfer.models.finetune import FinetuneLearner
from graphsel.transfer.models.options import SUBDOMAIN_COLUMNS, SubdomainOptions
from graphsel.transfer.protocol.learners import LearnerContext, PeriodData, PlanLearner
from graphsel.transfer.protocol.strategies import (
    SourcePlan,
    StrategyContext,
    merge_all,
    register_strategy,
)
from graphsel.transfer.train.metrics import logloss
from graphsel.transfer.train.trainer import Trainer, predict

__all__ = ["OTHER", "SubdomainGap", "SubdomainGapLearner", "SubdomainOptions",
           "source_subdomains", "subdomain_gap", "subdomain_gaps"]

OTHER = "other"
"""The name of the pooled sub-domain of a column's smaller values."""

CLUSTERS = "clusters"
"""``SubdomainOptions.column`` value that asks for k-means communities of items."""


def source_subdomains(source: InteractionLog, column: str = "auto", max_subdomains: int = 8,
                      seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """The sub-domain of every source row, and the sub-domains' names.

    Args:
        source: ``N`` source rows.
        column: a column of ``source``; ``"auto"`` (default): the first of
            :data:`~graphsel.transfer.models.options.SUBDOMAIN_COLUMNS` it has, else
            ``"clusters"``: k-means communities of items, named ``"cluster 0"``, ...
        max_subdomains: at most this many: the ``max_subdomains - 1`` most frequent values
            (ties: the smaller value first), the others pooled as :data:`OTHER` (or this many
            clusters). Default 8.
        seed: the clusters' seed. Default 0.

    Returns:
        ``(groups, names)``: ``(N,)`` int64 sub-domain of each row, numbered by decreasing
        rows (:data:`OTHER` last), and ``names[k]`` of sub-domain ``k``.

    Raises:
        InputError: a column ``source`` does not have.

    >>> log = InteractionLog.from_columns(["u"] * 5, list("abcde"), range(5), [1] * 5, "s",
    ...                                   first_genre=["X", "Y", "X", "Z", "W"])
    >>> groups, names = source_subdomains(log, max_subdomains=3)
    >>> groups.tolist(), names
    ([0, 2, 0, 2, 1], ['X', 'W', 'other'])
    """
    if column == "auto":
        column = next((c for c in SUBDOMAIN_COLUMNS if c in source.columns), CLUSTERS)
    if column == CLUSTERS:
        groups = source_sub_domains(source, max_subdomains, seed=seed)
        return groups, [f"cluster {k}" for k in range(int(groups.max()) + 1)]
    if column not in source.columns:
        raise InputError(f"subdomain_gap: column '{column}' is not a column of {source.name} "
                         f"(valid: auto, {CLUSTERS}, {', '.join(source.feature_columns)})")
    values = pd.Series(source.column(column)).astype(str).to_numpy()
    uniques, codes = np.unique(values, return_inverse=True)
    counts = np.bincount(codes, minlength=len(uniques))
    order = np.lexsort((np.arange(len(uniques)), -counts))  # most rows first, then by value
    pooled = len(uniques) > max_subdomains
    named = order[:max_subdomains - 1] if pooled else order
    rank = np.full(len(uniques), len(named), dtype=np.int64)
    rank[named] = np.arange(len(named))
    names = [str(uniques[i]) for i in named] + ([OTHER] if pooled else [])
    return rank[codes], names


@dataclass(frozen=True)
class SubdomainGap:
    """One sub-domain's transfer gap on the target's validation rows.

    Attributes:
        name: the sub-domain (a column value, :data:`OTHER` or ``"cluster k"``).
        rows: its source rows in the period's window.
        gap: validation log-loss of the probe that saw it minus that of the probe without
            it (6 decimals); positive: it hurts.
        kept: the fine-tuning step used its rows.
    """

    name: str
    rows: int
    gap: float
    kept: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "gap": self.gap, "kept": self.kept}


def _probe_loss(model: nn.Module, trainer: Trainer, train: CTRDataset,
                valid: CTRDataset) -> float:
    """Validation log-loss of a copy of ``model`` fine-tuned by ``trainer`` on ``train``."""
    probe = copy.deepcopy(model)
    fit = trainer.fit(probe, train)
    fit.reached_cap = False  # a probe's length is fixed: no model here was cut short
    config = trainer.config
    p = predict(probe, valid, batch_size=config.eval_batch_size, device=config.device,
                num_threads=config.num_threads)
    return logloss(valid.label.numpy(), p)


def subdomain_gaps(model: nn.Module, trainer: Trainer, target: CTRDataset, source: CTRDataset,
                   groups: np.ndarray, valid: CTRDataset, count: int | None = None) -> np.ndarray:
    """Leave-one-sub-domain-out gaps from ``model`` (see the module docstring, step 3).

    Args:
        model: the model every probe starts from (not changed).
        trainer: trains each probe (its ``epochs`` and no early stopping) on the target's
            and source rows, the sub-domain's weighted 0 for its "without" probe.
        target: the target's training rows (in every probe).
        source: ``(N,)`` source rows.
        groups: ``(N,)`` int64 sub-domain of each source row.
        valid: the validation rows the log-loss is measured on.
        count: the number of sub-domains. Default None: ``groups.max() + 1``.

    Returns:
        ``(count,)`` float64 gaps; NaN for a sub-domain without rows here.
    """
    count = int(groups.max()) + 1 if count is None else count
    rows = CTRDataset.concat([target, source])
    with_all = _probe_loss(model, trainer, rows, valid)
    gaps = np.full(count, np.nan)
    for k in range(count):
        inside = groups == k
        if inside.any():
            weight = rows.weight.clone()
            weight[torch.from_numpy(len(target) + np.flatnonzero(inside))] = 0.0
            gaps[k] = with_all - _probe_loss(model, trainer, rows.with_weight(weight), valid)
    return gaps


class SubdomainGapLearner(FinetuneLearner):
    """``merge_all``'s model, its source's sub-domains probed for their gaps, then fine-tuned
    on the target's rows and the sub-domains that do not hurt (module docstring).

    Args:
        context: the run's context; its plan holds every source row.
        options: sub-domains, probes and the fine-tuning step. Default ``SubdomainOptions()``.
    """

    def __init__(self, context: LearnerContext, options: SubdomainOptions | None = None) -> None:
        self.subdomain_options = options or SubdomainOptions()
        super().__init__(context, self.subdomain_options.finetune)
        self.groups, self.names = source_subdomains(
            context.source, self.subdomain_options.column,
            self.subdomain_options.max_subdomains, seed=context.seed)
        self.prober = context.trainer(lr_factor=self.subdomain_options.finetune.lr_factor,
                                      epochs=self.subdomain_options.probe_epochs)
        self.gaps_: list[SubdomainGap] = []

    def fit_period(self, data: PeriodData) -> None:
        PlanLearner.fit_period(self, data)  # the entire space, as merge_all
        rows = data.target
        if len(data.source):
            groups = self.groups[data.source_positions]
            gaps = subdomain_gaps(self.model, self.prober, data.target, data.source, groups,
                                  data.valid, len(self.names))
            kept = np.flatnonzero(gaps <= self.subdomain_options.max_gap)  # NaN: no rows
            self.gaps_ = [SubdomainGap(name, int((groups == k).sum()), round(float(gap), 6),
                                       bool(k in kept))
                          for k, (name, gap) in enumerate(zip(self.names, gaps))
                          if not np.isnan(gap)]
            chosen = np.flatnonzero(np.isin(groups, kept))
            rows = CTRDataset.concat([data.target, data.source.subset(chosen)])
        self.specialise(rows, data)

    def details(self) -> dict[str, Any]:
        """The last transfer period's sub-domains, by decreasing gap, and the kept mix."""
        ordered = sorted(self.gaps_, key=lambda g: -g.gap)
        return {**super().details(), "subdomains": [gap.to_json() for gap in ordered]}


@register_strategy("subdomain_gap", learner=SubdomainGapLearner, options=SubdomainOptions())
def subdomain_gap(context: StrategyContext) -> SourcePlan:
    """Every source row (as ``merge_all``); the learner probes and drops sub-domains."""
    return merge_all(context)
