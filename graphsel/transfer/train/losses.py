"""Losses: the trainer's weighted BCE and the distillation terms ECAT and DIIT share.

A loss is a ``loss_fn(model, batch) -> scalar`` (:data:`LossFn`); the trainer calls it on
every batch. Every reduction here is a per-sample *weighted* mean, so a selection's
density-ratio weights weigh each term alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch
from graphsel.transfer.models.base import ModelOutput

__all__ = [
    "LossFn",
    "weighted_bce",
    "weighted_bce_loss",
    "weighted_mean",
    "TeacherStudentOutput",
    "distillation_terms",
]


LossFn = Callable[[nn.Module, CTRBatch], torch.Tensor]
"""``loss_fn(model, batch) -> scalar loss``; transfer strategies add terms (distillation,
alignment) by passing their own."""


def weighted_bce(logits: torch.Tensor, label: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted binary cross-entropy of one batch.

    ``loss = sum_i w_i * bce_i / sum_i w_i`` with ``bce_i = -(y_i log s(x_i) + (1 - y_i)
    log(1 - s(x_i)))``, ``s`` the sigmoid, computed from logits (numerically stable). With
    all weights 1 it is the plain mean BCE; multiplying every weight by a constant changes
    nothing; a row of weight 2 counts as that row twice. A batch whose weights are all 0
    has loss 0 (and zero gradients).

    Args:
        logits: ``(B,)``.
        label: ``(B,)`` 0/1.
        weight: ``(B,)`` non-negative.

    >>> round(weighted_bce(torch.zeros(2), torch.tensor([1., 0.]), torch.tensor([1., 3.]))
    ...       .item(), 6)
    0.693147
    """
    return weighted_mean(F.binary_cross_entropy_with_logits(logits, label, reduction="none"),
                         weight)


def weighted_bce_loss(model: nn.Module, batch: CTRBatch) -> torch.Tensor:
    """The default :data:`LossFn`: :func:`weighted_bce` of ``model(batch.cat, batch.num)``."""
    return weighted_bce(model(batch.cat, batch.num), batch.label, batch.weight)


@dataclass(frozen=True)
class TeacherStudentOutput:
    """What a distillation loss needs from one forward pass.

    Attributes:
        student: the trained model's logits ``(B,)`` and hidden states (the prediction).
        teacher: the frozen source side's logits and hidden states (no gradient).
    """

    student: ModelOutput
    teacher: ModelOutput


def distillation_terms(student: ModelOutput, teacher: ModelOutput,
                       layers: Sequence[int] | None = None, representation_weight: float = 1.0,
                       logit_weight: float = 1.0) -> torch.Tensor:
    """Per-sample distillation of ``student`` towards ``teacher`` (the teacher is detached).

    ``rep_w * mean_l mean_j (h_l[i, j] - hs_l[i, j])^2 + logit_w * (logit_i - logit^s_i)^2``.

    Args:
        student: hidden states ``(B, H_l)`` and logits ``(B,)`` receiving gradient.
        teacher: the same shapes at the matched layers.
        layers: indices into ``hidden``. Default None: every hidden state.
        representation_weight: weight of the hidden-state MSE. Default 1.0.
        logit_weight: weight of the logit term. Default 1.0.

    Returns:
        ``(B,)`` non-negative terms.

    Raises:
        InputError: if a matched layer has different widths in the two models.
    """
    if layers is None:
        layers = range(len(student.hidden))
    terms = logit_weight * (student.logits - teacher.logits.detach()) ** 2
    if representation_weight and len(layers):
        squared = []
        for layer in layers:
            mine, theirs = student.hidden[layer], teacher.hidden[layer].detach()
            if mine.shape != theirs.shape:
                raise InputError(f"hidden state {layer} has shape {tuple(mine.shape)} in the "
                                 f"student and {tuple(theirs.shape)} in the teacher")
            squared.append(((mine - theirs) ** 2).mean(dim=1))
        terms = terms + representation_weight * torch.stack(squared).mean(dim=0)
    return terms


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum_i weight_i * values_i / sum_i weight_i`` of ``(B,)`` tensors; 0 when every weight
    is 0 (the reduction of :func:`weighted_bce`).

    >>> weighted_mean(torch.tensor([1.0, 4.0]), torch.tensor([3.0, 1.0])).item()
    1.75
    """
    return (weight * values).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)
