"""ECAT's adaptive knowledge distillation for continual transfer (AKD-CT).

ECAT (arXiv 2407.02542) has two halves: sample transfer (graph-guided selection refined by
domain adaptation, :mod:`graphsel.select.pipeline`) and representation transfer, here. A source
model trained on the entire space (source + target) is frozen; the target model receives
its representations through adapter layers, each opened by an adaptive gate computed from
the target's own hidden state::

    z_l = relu(W_l z_{l-1} + sigmoid(A_l z_{l-1}) * g_l(z^s_{l-1}))

and is distilled towards it with a per-sample *intensity* that grows where the source model
predicts the sample better than the target does, so the target is not pulled towards the
source where it is already better::

    w_i = sigmoid(beta * (bce(target_i) - bce(source_i)))       (no gradient)
    distill_i = rep_w * mean_l mse(h_l,i, h^s_l,i) + logit_w * (logit_i - logit^s_i)^2

No gradient reaches the source model: it runs frozen under ``no_grad``, and its outputs
enter the losses as constants. The model returns logits; :func:`ecat_loss` builds the
``loss_fn(model, batch)`` for :class:`~graphsel.transfer.train.trainer.Trainer`: weighted BCE plus
``distill_weight`` times the adaptive distillation.

The per-sample distillation terms (:func:`distillation_terms`) are shared with DIIT's
multi-spot distillation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch
from graphsel.transfer.models.base import (
    CTRModel,
    ModelConfig,
    ModelOutput,
    build_base_model,
    register_model,
)
from graphsel.transfer.models.ctnet import ADAPTER_INIT_STD, FrozenTower, layer_adapters
from graphsel.transfer.train.trainer import LossFn, weighted_bce

__all__ = [
    "DistillConfig",
    "TeacherStudentOutput",
    "distillation_terms",
    "weighted_mean",
    "distillation_intensity",
    "adaptive_distillation_loss",
    "ECAT",
    "ecat_loss",
    "build_ecat",
]


@dataclass(frozen=True)
class DistillConfig:
    """Options of the distillation terms.

    Attributes:
        beta: sharpness of the intensity ``sigmoid(beta * (loss_target - loss_source))``;
            0 gives the constant intensity 0.5 (plain distillation). Default 5.0.
        representation_weight: weight of the hidden-state MSE. Default 1.0.
        logit_weight: weight of the squared logit difference. Default 1.0.
        layers: indices into :attr:`ModelOutput.hidden` to match (0 the MLP input, ``l``
            the ``l``-th MLP layer's output, negative from the end). Default None: every
            hidden state, from the embeddings to the last layer (ECAT transfers all layers).
    """

    beta: float = 5.0
    representation_weight: float = 1.0
    logit_weight: float = 1.0
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.beta < 0 or self.representation_weight < 0 or self.logit_weight < 0:
            raise InputError(f"beta and the distillation weights must be >= 0, got {self}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))


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
    is 0 (the reduction of :func:`~graphsel.transfer.train.trainer.weighted_bce`)."""
    return (weight * values).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)


def distillation_intensity(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                           label: torch.Tensor, beta: float = 5.0) -> torch.Tensor:
    """ECAT's per-sample intensity ``w_i = sigmoid(beta * (bce_student_i - bce_teacher_i))``.

    Above 0.5 where the teacher's loss on the sample is lower than the student's, below
    where the student is already better; a constant (no gradient).

    Args:
        student_logits: ``(B,)``.
        teacher_logits: ``(B,)``.
        label: ``(B,)`` 0/1.
        beta: sharpness. Default 5.0.

    Returns:
        ``(B,)`` in ``(0, 1)``.

    >>> w = distillation_intensity(torch.zeros(2), torch.tensor([3.0, -3.0]), torch.ones(2))
    >>> [round(v, 3) for v in w.tolist()]
    [0.962, 0.0]
    """
    with torch.no_grad():
        student_loss = F.binary_cross_entropy_with_logits(student_logits, label,
                                                          reduction="none")
        teacher_loss = F.binary_cross_entropy_with_logits(teacher_logits, label,
                                                          reduction="none")
        return torch.sigmoid(beta * (student_loss - teacher_loss))


def adaptive_distillation_loss(output: TeacherStudentOutput, label: torch.Tensor,
                               weight: torch.Tensor,
                               config: DistillConfig | None = None) -> torch.Tensor:
    """``sum_i weight_i * w_i * distill_i / sum_i weight_i`` (see the module doc).

    Args:
        output: student and teacher of one batch.
        label: ``(B,)`` 0/1.
        weight: ``(B,)`` per-sample loss weights (e.g. a selection's weights).
        config: default ``DistillConfig()``.

    Returns:
        A scalar; its gradient reaches the student only.
    """
    config = config or DistillConfig()
    intensity = distillation_intensity(output.student.logits, output.teacher.logits, label,
                                       config.beta)
    terms = distillation_terms(output.student, output.teacher, config.layers,
                               config.representation_weight, config.logit_weight)
    return weighted_mean(intensity * terms, weight)


class ECAT(nn.Module):
    """Target model with gated adapters from a frozen entire-space source model.

    Args:
        source_model: the model trained on the entire space; copied and frozen (see
            :class:`~graphsel.transfer.models.ctnet.FrozenTower`).
        target_model: trained in place (``self.target``); as many MLP layers as the source.
        adapter: ``"glu"`` or ``"linear"`` (see :mod:`graphsel.transfer.models.ctnet`). Default
            ``"glu"``.
        adapter_init_std: std of the adapters' initial weights; near zero, the initial model
            computes what the target model alone computes. Default
            :data:`~graphsel.transfer.models.ctnet.ADAPTER_INIT_STD`.

    Raises:
        InputError: unknown ``adapter``, or models with different numbers of MLP layers.
    """

    def __init__(self, source_model: CTRModel, target_model: CTRModel, adapter: str = "glu",
                 adapter_init_std: float = ADAPTER_INIT_STD) -> None:
        super().__init__()
        self.source = FrozenTower(source_model)
        self.target = target_model
        self.adapters = layer_adapters(source_model, target_model, adapter, adapter_init_std)
        # One gate per layer, read from the target's own input to that layer: the target
        # decides per sample and per unit how much source knowledge it lets in.
        self.gates = nn.ModuleList(nn.Linear(layer.linear.in_features, layer.linear.out_features)
                                   for layer in target_model.mlp.layers)

    def forward_both(self, cat: torch.Tensor, num: torch.Tensor) -> TeacherStudentOutput:
        """The gated target's output (student) and the frozen source's (teacher)."""
        teacher = self.source.forward_hidden(cat, num)
        x = self.target.mlp_input(cat, num)
        hidden = [x]
        # The gate needs the target's hidden state of the layer below, so the layers are
        # run one by one rather than through MLPBlock.forward_hidden's precomputed extras.
        for layer, gate, adapter, z_source in zip(self.target.mlp.layers, self.gates,
                                                  self.adapters, teacher.hidden[:-1]):
            x = layer(x, torch.sigmoid(gate(x)) * adapter(z_source))
            hidden.append(x)
        return TeacherStudentOutput(ModelOutput(self.target.head(x), tuple(hidden)), teacher)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64, ``(B, M)`` float32 -> ``(B,)`` logits of the gated target."""
        return self.forward_both(cat, num).student.logits

    def refresh_source(self, new_source_model: CTRModel) -> None:
        """Copies the retrained source model's weights into the frozen copy (continual)."""
        self.source.load_from(new_source_model)


def ecat_loss(distill_weight: float = 1.0, config: DistillConfig | None = None) -> LossFn:
    """``loss_fn(model, batch)`` for :class:`~graphsel.transfer.train.trainer.Trainer`:
    ``weighted_bce + distill_weight * adaptive_distillation_loss``.

    Args:
        distill_weight: ``lambda``. Default 1.0.
        config: default ``DistillConfig()``.
    """
    config = config or DistillConfig()

    def loss_fn(model: ECAT, batch: CTRBatch) -> torch.Tensor:
        output = model.forward_both(batch.cat, batch.num)
        loss = weighted_bce(output.student.logits, batch.label, batch.weight)
        if distill_weight:
            loss = loss + distill_weight * adaptive_distillation_loss(
                output, batch.label, batch.weight, config)
        return loss

    return loss_fn


@register_model("ecat")
def build_ecat(vocab_sizes: Sequence[int], num_numeric: int = 0,
               config: ModelConfig | None = None, adapter: str = "glu") -> ECAT:
    """An ECAT whose source and target are fresh base models of ``config``.

    Load trained weights with :meth:`ECAT.refresh_source` and
    ``ecat.target.load_state_dict(...)``; train with ``Trainer(loss_fn=ecat_loss())``.

    Args:
        vocab_sizes: ``(F,)`` rows per field, OOV bucket included.
        num_numeric: ``M``. Default 0.
        config: default ``ModelConfig()``.
        adapter: ``"glu"`` or ``"linear"``. Default ``"glu"``.
    """
    return ECAT(build_base_model(vocab_sizes, num_numeric, config),
                build_base_model(vocab_sizes, num_numeric, config), adapter)
