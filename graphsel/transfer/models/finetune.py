"""Entire space, then specialise: train on every row, then fine-tune on the target's.

None of the seed papers replaces the source's knowledge by a selected subset: ECAT distils
from a model of the entire space, CTNet and DIIT start from trained models, E-CDCTR initialises
the target model from a complete pre-trained one. This recipe is the plainest form of that
idea, and graphsel's candidate for beating ``merge_all``: at each period the base model trains
on the period's target rows and every source row of its window, exactly as ``merge_all``, and
then fine-tunes on

- ``merge_finetune``: the period's target rows alone;
- ``merge_finetune_selected``: the target rows plus the selected source rows of the window
  (the selection's graph, domain-classifier and neighbour stages pick the source rows that
  look like the target);
- ``merge_finetune_random``: its control, the target rows plus a seeded random subset of the
  source rows as large as the selection.

The fine-tuning step early-stops on the target's validation rows and keeps the merged model
when no fine-tuning epoch beats it on validation (``Trainer.fit(keep_start=True)``), so it can
only move away from ``merge_all`` where validation says so. Its learning rate is the run's
times :attr:`~graphsel.transfer.models.options.FinetuneOptions.lr_factor`.
"""

from __future__ import annotations

import numpy as np

from graphsel.transfer.data import CTRDataset
from graphsel.transfer.models.options import FinetuneOptions
from graphsel.transfer.protocol.learners import (
    LearnerContext,
    PeriodData,
    PlanLearner,
    focus_rows,
)
from graphsel.transfer.protocol.strategies import (
    SourcePlan,
    StrategyContext,
    merge_all,
    random_same_size_mask,
    register_strategy,
    selected_focus,
)

__all__ = ["FinetuneLearner", "FinetuneOptions", "merge_finetune", "merge_finetune_random",
           "merge_finetune_selected"]


class FinetuneLearner(PlanLearner):
    """``merge_all``'s model, fine-tuned after every period on the target's rows (and the
    plan's :attr:`~graphsel.transfer.protocol.strategies.SourcePlan.focus` rows).

    Args:
        context: the run's context; its plan holds every source row.
        options: the fine-tuning step. Default ``FinetuneOptions()``.
    """

    def __init__(self, context: LearnerContext, options: FinetuneOptions | None = None) -> None:
        super().__init__(context)
        self.options = options or FinetuneOptions()
        self.finetuner = context.trainer(lr_factor=self.options.lr_factor)

    def fit_period(self, data: PeriodData) -> None:
        super().fit_period(data)  # the entire space, as merge_all
        self.finetuner.fit(self.model, self.finetune_rows(data), data.valid, keep_start=True)

    def finetune_rows(self, data: PeriodData) -> CTRDataset:
        """The period's target rows, plus the focus rows of its source window."""
        return focus_rows(data, self.context.plan.focus)


@register_strategy("merge_finetune", learner=FinetuneLearner, options=FinetuneOptions())
def merge_finetune(context: StrategyContext) -> SourcePlan:
    """Every source row (as ``merge_all``), then fine-tuning on the target's rows."""
    return merge_all(context)


@register_strategy("merge_finetune_selected", needs_selection=True, learner=FinetuneLearner,
                   options=FinetuneOptions())
def merge_finetune_selected(context: StrategyContext) -> SourcePlan:
    """Every source row, then fine-tuning on the target's rows and the selected rows (the
    plan's ``focus``)."""
    return selected_focus(context)


@register_strategy("merge_finetune_random", needs_selection=True, learner=FinetuneLearner,
                   options=FinetuneOptions())
def merge_finetune_random(context: StrategyContext) -> SourcePlan:
    """The control of ``merge_finetune_selected``: fine-tuning on the target's rows and a
    seeded random subset of the source rows as large as the selection."""
    rows = np.asarray(context.source_rows, dtype=np.int64)
    return SourcePlan(rows, np.ones(len(rows), dtype=np.float32), "joint",
                      focus=random_same_size_mask(context))
