"""Learners: how a strategy turns its data into a trained model, period after period.

A :class:`~graphsel.transfer.protocol.strategies.Strategy` names the source rows a run may use
(its :class:`~graphsel.transfer.protocol.strategies.SourcePlan`); its *learner* decides what is
trained on them. The runner (:mod:`graphsel.transfer.protocol.runner`) builds one learner per
(strategy, seed), calls :meth:`Learner.fit_period` once per period with that period's
:class:`PeriodData`, and scores :meth:`Learner.predict` on the next period's target rows.
A learner keeps its models between periods: that is the warm start.

This module holds the interface and the learner of every baseline strategy
(:class:`PlanLearner`). The seed papers' learners live with their models, one module per
method, each taking its options dataclass (:mod:`graphsel.transfer.models.options`):

===========================================================  =================================
:class:`~graphsel.transfer.models.ctnet.CTNetLearner`        ``ctnet`` / ``ctnet_linear``
:class:`~graphsel.transfer.models.ctnet.ColdCTNetLearner`    ``ctnet_cold``
:class:`~graphsel.transfer.models.ecat.ECATLearner`          ``ecat``
:class:`~graphsel.transfer.models.ecat.ColdECATLearner`      ``ecat_cold``
:class:`~graphsel.transfer.models.diit.DIITLearner`          ``diit``
:class:`~graphsel.transfer.models.diit.ColdDIITLearner`      ``diit_cold``
:class:`~graphsel.transfer.models.ecdctr.ECDCTRLearner`      ``ecdctr``
===========================================================  =================================

The warm-started learners (``ctnet``, ``diit``, ``ecat``) start their target model from a
model of the entire space (:class:`EntireSpaceStart`), as the papers start from a trained
model; the ``*_cold`` ablations start it from a fresh base model.

In ``mode="once"`` :attr:`PeriodData.transfer` is False after the first period: the
learners then keep the source models of the first period (no refresh) and train on the
target's rows only. Every source model is trained with the run's
:class:`~graphsel.transfer.train.options.TrainConfig` and early-stops on the target's
validation rows, like the target model, and warm-starts from its previous period.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from graphsel.data.log import InteractionLog
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import FeatureSpec
from graphsel.transfer.models.base import CTRModel, ModelConfig, build_base_model
from graphsel.transfer.models.options import SeedEnsembleOptions
from graphsel.transfer.models.towers import warm_start
from graphsel.transfer.protocol.results import Effort
from graphsel.transfer.protocol.strategies import (
    SourcePlan,
    merge_all,
    register_strategy,
)
from graphsel.transfer.train.losses import LossFn
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import Trainer, predict

__all__ = [
    "LearnerContext",
    "PeriodData",
    "Learner",
    "PlanLearner",
    "LogitMean",
    "SeedEnsembleLearner",
    "fit_if_any",
    "joint_rows",
    "focus_rows",
    "EntireSpaceStart",
]


@dataclass(frozen=True, eq=False)
class LearnerContext:
    """What a learner is built from; the same for every period of one (strategy, seed).

    Attributes:
        plan: the strategy's source rows and weights.
        spec: the feature spec of the run's encoder (target training rows + plan rows).
        model: the base model's options (every model of the run is built from them).
        train: the training options, ``seed`` set to the run's seed.
        source_log: the whole source log (:attr:`source` is the plan's part of it).
        seed: the run's seed.
        trainers: every :class:`Trainer` made by :meth:`trainer`, in order (their ``fits``
            are the run's training effort, :meth:`effort`). Default: none yet.
    """

    plan: SourcePlan
    spec: FeatureSpec
    model: ModelConfig
    train: TrainConfig
    source_log: InteractionLog
    seed: int
    trainers: list[Trainer] = field(default_factory=list, repr=False)

    @cached_property
    def source(self) -> InteractionLog:
        """The plan's source rows as a log (``source_log[plan.rows]``), aligned with
        ``plan.rows``, for learners that look at more than the encoded features. Taken on
        first use: most learners never need it (ML-1M: 0.3 s per copy)."""
        return self.source_log[self.plan.rows]

    def __getstate__(self) -> dict[str, object]:
        """Pickles without the cached :attr:`source` (taken again on first use); the runner
        saves :attr:`source_log` and :attr:`plan` by reference
        (:meth:`~graphsel.transfer.protocol.checkpoints.RunStore.save_progress`)."""
        return {key: value for key, value in self.__dict__.items() if key != "source"}

    def base_model(self, extra_numeric: int = 0) -> CTRModel:
        """A fresh base model over the run's features (plus ``extra_numeric`` columns)."""
        return build_base_model(self.spec.vocab_sizes, len(self.spec.numeric) + extra_numeric,
                                self.model)

    def trainer(self, loss_fn: LossFn | None = None, *, lr_factor: float = 1.0,
                epochs: int | None = None) -> Trainer:
        """A :class:`Trainer` with the run's options (and ``loss_fn``; its learning rates
        times ``lr_factor``, default 1.0; ``epochs`` instead of the run's cap, default None:
        the run's), counted in :meth:`effort`."""
        config = self.train
        if lr_factor != 1.0:
            config = replace(config, lr=config.lr * lr_factor, embedding_lr=(
                None if config.embedding_lr is None else config.embedding_lr * lr_factor))
        if epochs is not None:
            config = replace(config, epochs=epochs)
        trainer = Trainer(config, loss_fn)
        self.trainers.append(trainer)
        return trainer

    def effort(self) -> Effort:
        """What every model trained so far through :meth:`trainer` cost: fits, epochs,
        optimiser steps, rows x epochs, seconds, and fits that ran into the epoch cap."""
        fits = [fit for trainer in self.trainers for fit in trainer.fits]
        return Effort(fits=len(fits), epochs=sum(fit.epochs for fit in fits),
                      max_epochs=max((fit.epochs for fit in fits), default=0),
                      steps=sum(fit.steps for fit in fits),
                      rows_x_epochs=sum(fit.rows for fit in fits),
                      seconds=round(sum(fit.seconds for fit in fits), 3),
                      capped_fits=sum(fit.reached_cap for fit in fits))


@dataclass(frozen=True, eq=False)
class PeriodData:
    """One period's training data.

    Attributes:
        period: 0-based.
        transfer: False when ``mode="once"`` and ``period > 0``: no source row this period.
        target: the period's target training rows.
        source: the plan's source rows of the period's window with their plan weights
            (empty when not ``transfer``).
        source_positions: ``(len(source),)`` int64 positions of those rows in
            ``plan.rows`` (to look up per-row facts a learner computed from the plan).
        valid: the target's validation rows (early stopping).
    """

    period: int
    transfer: bool
    target: CTRDataset
    source: CTRDataset
    source_positions: np.ndarray
    valid: CTRDataset


class Learner(ABC):
    """Trains one strategy's models period after period and predicts with the result.

    Two class attributes tell the runner about the domain feature
    (:data:`~graphsel.transfer.features.DOMAIN_FIELD`): :attr:`mixes_domains` (one model
    trains on source and target rows, so ``domain_feature: auto`` tries the feature on and
    off on validation) and :attr:`needs_domain_field` (the model reads the field, e.g. a
    multi-domain model's domain index: the feature is then always on).
    """

    mixes_domains: ClassVar[bool] = False
    needs_domain_field: ClassVar[bool] = False

    model: nn.Module
    """The model :meth:`predict` runs (its forward is ``(cat, num) -> logits``)."""

    def __init__(self, context: LearnerContext) -> None:
        self.context = context

    @abstractmethod
    def fit_period(self, data: PeriodData) -> None:
        """Trains on one period's data, warm-starting from the previous period's models."""

    def predict(self, data: CTRDataset) -> np.ndarray:
        """``(N,)`` float64 click probabilities of :attr:`model` on ``data``."""
        train = self.context.train
        return predict(self.model, self._inputs(data), batch_size=train.eval_batch_size,
                       device=train.device, num_threads=train.num_threads)

    def _inputs(self, data: CTRDataset) -> CTRDataset:
        """``data`` as :attr:`model` reads it (learners that add features override this)."""
        return data

    def details(self) -> dict[str, Any]:
        """What the learner chose or measured that a reader of the results should see
        (JSON-ready, e.g. ``subdomain_gap``'s per-sub-domain gaps); empty by default."""
        return {}


def fit_if_any(trainer: Trainer, model: nn.Module, train: CTRDataset,
               valid: CTRDataset) -> None:
    """``trainer.fit(model, train, valid)`` unless ``train`` is empty (a period's window may
    hold no source row)."""
    if len(train):
        trainer.fit(model, train, valid)


def joint_rows(data: PeriodData) -> CTRDataset:
    """The period's target rows and its source rows together (what ``merge_all`` trains on)."""
    return CTRDataset.concat([data.target, data.source])


def focus_rows(data: PeriodData, focus: np.ndarray | None) -> CTRDataset:
    """The period's target rows plus its source rows that ``focus`` singles out.

    Args:
        data: the period.
        focus: ``(K,)`` bool over the plan's rows
            (:attr:`~graphsel.transfer.protocol.strategies.SourcePlan.focus`), or None: the
            target rows alone.
    """
    if focus is None or not len(data.source):
        return data.target
    chosen = np.flatnonzero(focus[data.source_positions])
    return CTRDataset.concat([data.target, data.source.subset(chosen)])


class EntireSpaceStart:
    """Where a warm-started learner's target model starts: a model of the entire space.

    CTNet starts its target tower from the well-trained target model, DIIT warm-starts its
    models, ECAT's student starts from its teacher: none starts cold. A small target domain
    has no well-trained model of its own, so the base model trained on the first period's
    target rows and source rows together (:func:`joint_rows`, as ``merge_all`` trains it)
    stands in for it: :meth:`start` trains it once and copies its weights into the target
    model before that model's first fit; in later periods the target model continues from
    its previous period.

    Args:
        context: the learner's context; the model is its base model, trained by one of its
            trainers (so counted in its effort).
    """

    def __init__(self, context: LearnerContext) -> None:
        self.model = context.base_model()
        self.trainer = context.trainer()
        self.started = False

    def start(self, target: nn.Module, data: PeriodData) -> None:
        """On the first call, trains :attr:`model` on ``data``'s target and source rows and
        copies its parameters and buffers into ``target`` (the base model's architecture,
        e.g. a CTNet's target tower); later calls do nothing."""
        if self.started:
            return
        self.trainer.fit(self.model, joint_rows(data), data.valid)
        warm_start(target, self.model)
        self.started = True


class PlanLearner(Learner):
    """The base model trained on the plan: the learner of every baseline strategy.

    ``"joint"`` plans train on the period's target rows and source rows together;
    ``"pretrain"`` plans train on the source rows, then on the target rows.
    """

    mixes_domains = True

    def __init__(self, context: LearnerContext) -> None:
        super().__init__(context)
        self.model = context.base_model()
        self.trainer = context.trainer()

    def fit_period(self, data: PeriodData) -> None:
        if self.context.plan.schedule == "pretrain":
            fit_if_any(self.trainer, self.model, data.source, data.valid)
            self.trainer.fit(self.model, data.target, data.valid)
        else:
            self.trainer.fit(self.model, joint_rows(data), data.valid)


class LogitMean(nn.Module):
    """The mean logit of ``models`` (each ``(cat, num) -> (B,)`` logits): an ensemble.

    >>> _ = torch.manual_seed(0)
    >>> a, b = (build_base_model([3], 0, ModelConfig(2, (2,))) for _ in range(2))
    >>> cat, num = torch.tensor([[1], [2]]), torch.zeros(2, 0)
    >>> torch.allclose(LogitMean([a, b])(cat, num), (a(cat, num) + b(cat, num)) / 2)
    True
    """

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64, ``(B, M)`` float32 -> ``(B,)`` mean logits."""
        return torch.stack([model(cat, num) for model in self.members]).mean(dim=0)


def member_seed(seed: int, member: int) -> int:
    """The training seed (batch order) of model ``member`` of a run at ``seed``: ``seed``
    itself for the first, so that it trains as the run's single model would.

    >>> member_seed(3, 0), member_seed(3, 1) == member_seed(3, 1) != member_seed(4, 1)
    (3, True)
    """
    if member == 0:
        return seed
    return int(np.random.SeedSequence([seed, member]).generate_state(1)[0])


class SeedEnsembleLearner(Learner):
    """``merge_all_ensemble``: the plan's base model trained ``size`` times, predicting their
    mean logit (a deep ensemble, Lakshminarayanan et al., NeurIPS 2017).

    Each model trains as :class:`PlanLearner`'s does, from its own initialisation (drawn one
    after another from the run's seeded generator, so the first is the single model's) and
    batch order (:func:`member_seed`). It is the control of ``ensemble``, which averages as
    many models of different transfer recipes: what averaging alone gives, without transfer.

    Args:
        context: the run's context (every model's trainer counts in its effort).
        options: how many models. Default ``SeedEnsembleOptions()``.
    """

    mixes_domains = True

    def __init__(self, context: LearnerContext,
                 options: SeedEnsembleOptions | None = None) -> None:
        super().__init__(context)
        size = (options or SeedEnsembleOptions()).size
        self.members = [PlanLearner(replace(context, train=replace(
            context.train, seed=member_seed(context.train.seed, j)))) for j in range(size)]
        self.model = LogitMean([member.model for member in self.members])

    def fit_period(self, data: PeriodData) -> None:
        for member in self.members:
            member.fit_period(data)


register_strategy("merge_all_ensemble", learner=SeedEnsembleLearner)(merge_all)
