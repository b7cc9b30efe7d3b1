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
  source rows as large as the selection;
- ``budget_finetune``: the cheap recipe. Its first step trains on the target rows and only the
  :data:`SOURCE_BUDGET` share of the source rows that the selection ranks highest, shared out
  over the source's users in turns (:func:`budget_mask`), not on every row, then fine-tunes on
  the target rows: the industrial argument for selection is a model nearly as good for a
  fifth of the rows. A selection smaller than the budget is filled up to it with the
  next-ranked unselected rows. Why users in turns: the kNN score favours the rows of a few
  heavy users, while what a target model gains from the source is, first, its users'
  embeddings. Both choices were made on validation, on ``make bench-quality``'s 19 splits:
  the turns scored a higher validation AUC than the plain top 20 % on 14 splits, and a
  filled small selection a higher one than an unfilled one on 18.

The fine-tuning step early-stops on the target's validation rows and keeps the merged model
when no fine-tuning epoch beats it on validation (``Trainer.fit(keep_start=True)``), so it can
only move away from ``merge_all`` where validation says so. Its learning rate is the run's
times :attr:`~graphsel.transfer.models.options.FinetuneOptions.lr_factor`.

When fine-tuning wins, the learner then tries weight-space mixes of the merged and the
fine-tuned model, ``(1 - a) * merged + a * fine_tuned`` for each ``a`` of
:attr:`~graphsel.transfer.models.options.FinetuneOptions.mix` (WiSE-FT, Wortsman et al.,
CVPR 2022: a fine-tuned model and its start lie in one basin, and the mixes between them are
often better than either, at no training cost), and keeps the one with the best validation
AUC (``a = 1`` included). The kept weight ``a`` of each period is in :meth:`details`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from graphsel.graph.expansion import rank_in_runs
from graphsel.select.pipeline import Selection
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
    selection_of,
)
from graphsel.transfer.train.metrics import auc
from graphsel.transfer.train.trainer import state_copy

__all__ = ["SOURCE_BUDGET", "FinetuneLearner", "FinetuneOptions", "budget_finetune",
           "budget_mask", "merge_finetune", "merge_finetune_random", "merge_finetune_selected",
           "mix_states"]

SOURCE_BUDGET = 0.2
"""The share of the source rows ``budget_finetune`` trains on (at most)."""


def mix_states(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor],
               weight: float) -> dict[str, torch.Tensor]:
    """The state dict ``(1 - weight) * start + weight * end`` (floating-point entries; the
    others, e.g. BatchNorm's batch counter, are ``end``'s).

    >>> a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(1)}
    >>> mixed = mix_states(a, {"w": torch.tensor([4.0, 2.0]), "n": torch.tensor(3)}, 0.25)
    >>> mixed["w"].tolist(), mixed["n"].item()
    ([1.0, 2.0], 3)
    """
    return {key: torch.lerp(start[key], value, weight) if value.is_floating_point() else value
            for key, value in end.items()}



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
        self.mixes_: list[float] = []

    def fit_period(self, data: PeriodData) -> None:
        super().fit_period(data)  # the entire space, as merge_all
        self.specialise(self.finetune_rows(data), data)

    def specialise(self, rows: CTRDataset, data: PeriodData) -> float:
        """Fine-tunes :attr:`model` (just trained on the entire space) on ``rows``, then
        keeps the best mix on validation (module docstring).

        Returns:
            the kept weight of the fine-tuned model: 0.0 if no fine-tuning epoch beat the
            merged model, 1.0 for the fine-tuned model, else one of ``options.mix``
            (also appended to :attr:`mixes_`).
        """
        merged = state_copy(self.model)
        result = self.finetuner.fit(self.model, rows, data.valid, keep_start=True)
        kept = 0.0
        if result.best_epoch >= 0:
            tuned = state_copy(self.model)
            label = data.valid.label.numpy()
            scores = {}
            for weight in (*self.options.mix, 1.0):  # ties: the smaller step from merged
                self.model.load_state_dict(mix_states(merged, tuned, weight))
                scores[weight] = auc(label, self.predict(data.valid))
            kept = max(scores, key=lambda weight: scores[weight])
            self.model.load_state_dict(mix_states(merged, tuned, kept))
        self.mixes_.append(kept)
        return kept

    def details(self) -> dict[str, Any]:
        """The kept weight of the fine-tuned model (:meth:`specialise`), last period."""
        return {"mix": self.mixes_[-1]} if self.mixes_ else {}

    def finetune_rows(self, data: PeriodData) -> CTRDataset:
        """The period's target rows, plus the focus rows of its source window."""
        return focus_rows(data, self.context.plan.focus)


@register_strategy("merge_finetune", learner=FinetuneLearner, options=FinetuneOptions())
def merge_finetune(context: StrategyContext) -> SourcePlan:
    """Every source row (as ``merge_all``), then fine-tuning on the target's rows."""
    return merge_all(context)


@register_strategy("merge_finetune_selected", needs_selection=True, learner=FinetuneLearner,
                   options=FinetuneOptions(), control="merge_finetune_random")
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


def budget_mask(selection: Selection, fraction: float, groups: np.ndarray | None = None,
                fill: bool = False) -> np.ndarray:
    """``(N,)`` bool: the selected rows, cut to the ``int(fraction * N)`` ranked highest.

    The rank is the selection's last score: ``knn_score`` (descending), then ``p_target``,
    then the training weight, then the row order; a NaN score (a row a stage did not score)
    ranks last. With ``groups`` (e.g. each row's user), the budget is shared out in turns:
    every group's best row first, then every group's second best, and so on (each turn in
    rank order), so that a few heavy groups cannot take it all. A selection within the
    budget is returned whole; with ``fill``, the rest of the budget then goes to the
    unselected rows, in the same order.

    >>> nan = np.nan
    >>> selection = Selection(np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], bool),
    ...     np.ones(10, np.float32), {"knn_score": np.array([.5, .9, nan, .99, .5, .7, 0, 0, 0, 0])})
    >>> np.flatnonzero(budget_mask(selection, 0.3)).tolist()
    [0, 1, 5]
    >>> users = np.array([7, 7, 8, 7, 7, 7, 7, 7, 7, 7])  # row 2 is user 8's only row
    >>> np.flatnonzero(budget_mask(selection, 0.3, users)).tolist()
    [1, 2, 5]
    >>> np.flatnonzero(budget_mask(selection, 0.6, fill=True)).tolist()  # row 3 fills it
    [0, 1, 2, 3, 4, 5]
    """
    mask = np.asarray(selection.mask, dtype=bool)
    budget = int(fraction * len(mask))
    chosen = np.zeros(len(mask), dtype=bool)
    if int(mask.sum()) <= budget:
        chosen[mask] = True
        if fill:
            rest = _ranked(selection, np.flatnonzero(~mask), groups)
            chosen[rest[:budget - int(mask.sum())]] = True
        return chosen
    chosen[_ranked(selection, np.flatnonzero(mask), groups)[:budget]] = True
    return chosen


def _ranked(selection: Selection, rows: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """``rows`` in :func:`budget_mask`'s order (in turns over ``groups`` when given)."""
    keys = [rows, -selection.weight[rows].astype(np.float64)]  # lexsort: the last key first
    for name in ("p_target", "knn_score"):
        if name in selection.scores:
            keys.append(np.nan_to_num(-selection.scores[name][rows].astype(np.float64),
                                      nan=np.inf))
    ranked = rows[np.lexsort(keys)]
    if groups is None:
        return ranked
    group = np.asarray(groups)[ranked]
    by_group = np.argsort(group, kind="stable")  # each group's rows, in rank order
    turn = np.empty(len(ranked), dtype=np.int64)
    turn[by_group] = rank_in_runs(group[by_group])
    return ranked[np.argsort(turn, kind="stable")]


@register_strategy("budget_finetune", needs_selection=True, learner=FinetuneLearner,
                   options=FinetuneOptions())
def budget_finetune(context: StrategyContext) -> SourcePlan:
    """The target rows and the selection's top :data:`SOURCE_BUDGET` of the source rows (a
    smaller selection filled up with the next-ranked rows), in turns over their users
    (without the source log in ``context``: the plain rank), then fine-tuning on the
    target's rows."""
    users = (None if context.source is None
             else np.asarray(context.source.user)[context.source_rows])
    mask = budget_mask(selection_of(context), SOURCE_BUDGET, users, fill=True)
    rows = np.asarray(context.source_rows[mask], dtype=np.int64)
    return SourcePlan(rows, np.ones(len(rows), dtype=np.float32), "joint")
