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
:class:`~graphsel.transfer.models.ecat.ECATLearner`          ``ecat``
:class:`~graphsel.transfer.models.diit.DIITLearner`          ``diit``
:class:`~graphsel.transfer.models.ecdctr.ECDCTRLearner`      ``ecdctr``
===========================================================  =================================

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
from typing import ClassVar

import numpy as np
from torch import nn

from graphsel.data.log import InteractionLog
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import FeatureSpec
from graphsel.transfer.models.base import CTRModel, ModelConfig, build_base_model
from graphsel.transfer.protocol.results import Effort
from graphsel.transfer.protocol.strategies import SourcePlan
from graphsel.transfer.train.losses import LossFn
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import Trainer, predict

__all__ = [
    "LearnerContext",
    "PeriodData",
    "Learner",
    "PlanLearner",
    "fit_if_any",
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

    def trainer(self, loss_fn: LossFn | None = None, *, lr_factor: float = 1.0) -> Trainer:
        """A :class:`Trainer` with the run's options (and ``loss_fn``; its learning rates
        times ``lr_factor``, default 1.0), counted in :meth:`effort`."""
        config = self.train
        if lr_factor != 1.0:
            config = replace(config, lr=config.lr * lr_factor, embedding_lr=(
                None if config.embedding_lr is None else config.embedding_lr * lr_factor))
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


def fit_if_any(trainer: Trainer, model: nn.Module, train: CTRDataset,
               valid: CTRDataset) -> None:
    """``trainer.fit(model, train, valid)`` unless ``train`` is empty (a period's window may
    hold no source row)."""
    if len(train):
        trainer.fit(model, train, valid)


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
            self.trainer.fit(self.model, CTRDataset.concat([data.target, data.source]),
                             data.valid)
