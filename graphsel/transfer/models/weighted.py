"""Soft selection over every source row: tempered density-ratio weights (``weighted_all``).

Instead of cutting the source to the rows that look like the target, ``weighted_all`` keeps
every source row and weighs it by how target-like it is (Ngiam et al. 2018, domain-adaptive
transfer). The ``da`` stage (:class:`~graphsel.select.domain.DomainClassifier`) is fitted on
*every* source row before the test start against the target's training rows, and gives each
source row its clipped density ratio ``w = p / (1 - p) * N_src / N_tgt`` (out of fold).
Importance weights fade in over-parameterised networks unless tempered (Byrd & Lipton 2019),
so a source row trains with

    ``weight = lambda * w**alpha / mean(w**alpha)``

(the mean over the period's source rows), a target row with weight 1: ``alpha`` tempers the
ratios (0: all equal, 1: the density ratio), the normalisation keeps the source's total
weight at ``lambda`` times its row count, and ``lambda`` scales the source loss against the
target's. Each ``(alpha, lambda)`` of :class:`~graphsel.transfer.models.options.WeightedOptions`
trains its own base model from the same initial weights as ``merge_all``'s, and the one with
the best validation AUC predicts: at ``alpha = 0, lambda = 1`` every weight is 1 and that
model *is* ``merge_all``'s (a test checks the predictions are equal).

The plan (:class:`~graphsel.transfer.protocol.strategies.SourcePlan`) holds every source row
with its density ratio ``w`` as ``weight``; :class:`WeightedLearner` tempers it per grid
point. The domain classifier sees training-time rows only (the target's training rows and
source rows older than the test start), so no validation or test label shapes a weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.select.domain import DomainClassifier
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.models.options import WeightedOptions
from graphsel.transfer.protocol.learners import Learner, LearnerContext, PeriodData
from graphsel.transfer.protocol.strategies import SourcePlan, StrategyContext, register_strategy

__all__ = ["WeightedLearner", "WeightedOptions", "density_ratios", "tempered_weights",
           "weighted_all"]


def density_ratios(source: InteractionLog, target: InteractionLog,
                   classifier: DomainClassifier | None = None) -> np.ndarray:
    """``(N_src,)`` float32 clipped density ratio of every row of ``source`` against ``target``.

    Args:
        source: the source rows to weigh (all of them are the classifier's candidates).
        target: the target's training rows, on the same id index.
        classifier: an unfitted domain classifier (its parameters are used, it is not
            changed). Default None: ``DomainClassifier()`` (the ``da`` stage's defaults).
    """
    stage = DomainClassifier() if classifier is None else classifier
    return np.asarray(stage.fit(source, target).sample_weight(), dtype=np.float32)


def tempered_weights(ratio: np.ndarray, alpha: float, scale: float = 1.0) -> np.ndarray:
    """``scale * ratio**alpha / mean(ratio**alpha)``: ``(N,)`` float32 weights of mean ``scale``.

    Args:
        ratio: ``(N,)`` positive density ratios.
        alpha: the tempering exponent (0: every weight ``scale``).
        scale: ``lambda``, the mean weight. Default 1.0.

    >>> tempered_weights(np.array([1.0, 4.0, 16.0]), 0.5).tolist()
    [0.4285714328289032, 0.8571428656578064, 1.7142857313156128]
    >>> tempered_weights(np.array([1.0, 4.0]), 0.0, 0.5).tolist()
    [0.5, 0.5]
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    if len(ratio) == 0:
        return np.zeros(0, dtype=np.float32)
    if alpha == 0:
        return np.full(len(ratio), scale, dtype=np.float32)  # exactly merge_all's at scale 1
    powered = ratio ** alpha
    return (scale * powered / powered.mean()).astype(np.float32)


class WeightedLearner(Learner):
    """One base model per ``(alpha, lambda)``, each trained on the target's rows and every
    source row with :func:`tempered_weights`; the best on validation predicts.

    The plan's weights are the rows' density ratios. Every grid point's model starts from
    the weights ``merge_all``'s model starts from (the random state is the same at each
    build) and warm-starts from its own previous period; after each period :attr:`model` is
    the model with the best validation AUC (the first of equals, in grid order).

    Args:
        context: the run's context; its plan holds every source row and its density ratio.
        options: the grid. Default ``WeightedOptions()``.
    """

    mixes_domains = True

    def __init__(self, context: LearnerContext, options: WeightedOptions | None = None) -> None:
        super().__init__(context)
        self.options = options or WeightedOptions()
        self.points = [(alpha, scale) for alpha in self.options.alphas
                       for scale in self.options.lambdas]
        state = torch.get_rng_state()
        self.models = []
        for _ in self.points:
            torch.set_rng_state(state)
            self.models.append(context.base_model())
        self.trainer = context.trainer()
        self.valid_auc_: list[float | None] = [None] * len(self.points)
        self.chosen_ = 0
        self.model = self.models[0]

    def fit_period(self, data: PeriodData) -> None:
        ratio = data.source.weight.numpy()
        for i, ((alpha, scale), model) in enumerate(zip(self.points, self.models)):
            source = data.source.with_weight(tempered_weights(ratio, alpha, scale))
            fit = self.trainer.fit(model, CTRDataset.concat([data.target, source]), data.valid)
            self.valid_auc_[i] = (None if fit.best_valid_auc is None
                                  else round(fit.best_valid_auc, 6))  # as the results' AUCs
        scores = [-np.inf if auc is None else auc for auc in self.valid_auc_]
        self.chosen_ = int(np.argmax(scores))
        self.model = self.models[self.chosen_]

    def details(self) -> dict[str, Any]:
        """The chosen ``alpha`` and ``lambda`` and every grid point's validation AUC."""
        alpha, scale = self.points[self.chosen_]
        return {"alpha": alpha, "lambda": scale,
                "grid": [{"alpha": a, "lambda": s, "valid_auc": auc}
                         for (a, s), auc in zip(self.points, self.valid_auc_)]}


@register_strategy("weighted_all", learner=WeightedLearner, options=WeightedOptions())
def weighted_all(context: StrategyContext) -> SourcePlan:
    """Every source row before the test starts, its weight the ``da`` stage's density ratio
    fitted on all of them against the target's training rows (tempered by the learner).

    Raises:
        InputError: the context carries no source or target log.
    """
    if context.source is None or context.target is None:
        raise InputError("strategy 'weighted_all' scores every source row against the "
                         "target's training rows: its StrategyContext needs source and target")
    rows = np.asarray(context.source_rows, dtype=np.int64)
    return SourcePlan(rows, density_ratios(context.source[rows], context.target), "joint")
