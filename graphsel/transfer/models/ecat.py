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

The per-sample distillation terms
(:func:`~graphsel.transfer.train.losses.distillation_terms`) are shared with DIIT's multi-spot
distillation.

**The strategies.** ``ecat`` (:class:`ECATLearner`) runs the method as the paper lays it out:
the *teacher* is a model of the entire space (the base model trained, as ``merge_all``, on the
period's target rows and every source row of its window); the *student* (the target model of
:class:`ECAT`) trains on the target's rows plus the selected source rows of the window (the
plan's :attr:`~graphsel.transfer.protocol.strategies.SourcePlan.focus`), starts from the
teacher's weights at the first period (:func:`~graphsel.transfer.models.towers.warm_start`)
and from its own previous period afterwards; the teacher is retrained (warm-started) and
refreshed at every transfer period (continual transfer; with ``mode="once"`` only at the
first). ``ecat_cold`` (:class:`ColdECATLearner`) is what graphsel ran before: the "entire
space" is only the selected rows + the target's, and the student starts from a fresh model.

Where ``ecat`` deliberately differs from the paper (and why):

- *Selection*: the run's one selection (:mod:`graphsel.select.pipeline`), by default graph,
  then DA, then kNN; ECAT's is graph (GST) then DA. Set ``selection: {stages: [graph, da]}``
  for the paper's. One selection per run keeps every selection-based strategy comparable.
- *Teacher*: the paper distils from Taobao's production model, trained continually on the
  whole space by its own pipeline; here graphsel trains it on the run's rows, warm-started
  period after period, with the run's early stopping.
- *Model*: graphsel's base model (embeddings + MLP) for teacher and student, not the paper's
  ETA sequence model; "every layer" is the MLP input, each MLP layer and the logit.
- *Gate and intensity*: the paper does not give their exact form; the gate reads the
  student's own hidden state, and the intensity is the sigmoid of the loss gap above.
- *Early stopping*: every student fit keeps its starting weights when no epoch beats them on
  validation (``keep_start``), so the warm start is never lost to a bad first epoch; the
  paper trains on a fixed schedule.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from graphsel.transfer.data import CTRBatch, CTRDataset
from graphsel.transfer.models.base import (
    CTRModel,
    ModelConfig,
    ModelOutput,
    build_base_model,
    register_model,
)
from graphsel.transfer.models.options import (
    ADAPTER_INIT_STD,
    AdapterOptions,
    DistillConfig,
    ECATOptions,
)
from graphsel.transfer.models.towers import FrozenTower, layer_adapters, warm_start
from graphsel.transfer.protocol.learners import (
    Learner,
    LearnerContext,
    PeriodData,
    focus_rows,
    joint_rows,
)
from graphsel.transfer.protocol.strategies import (
    register_strategy,
    selected,
    selected_focus,
)
from graphsel.transfer.train.losses import (
    LossFn,
    TeacherStudentOutput,
    distillation_terms,
    weighted_bce,
    weighted_mean,
)

__all__ = [
    "DistillConfig",  # the options live in graphsel.transfer.models.options (no torch)
    "ECATOptions",
    "TeacherStudentOutput",  # shared with DIIT: graphsel.transfer.train.losses
    "distillation_terms",
    "distillation_intensity",
    "adaptive_distillation_loss",
    "ECAT",
    "ecat_loss",
    "build_ecat",
    "ECATLearner",
    "ColdECATLearner",
]


def distillation_intensity(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                           label: torch.Tensor, beta: float = DistillConfig.beta) -> torch.Tensor:
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
            :class:`~graphsel.transfer.models.towers.FrozenTower`).
        target_model: trained in place (``self.target``); as many MLP layers as the source.
        adapter: ``"glu"`` or ``"linear"`` (see :mod:`graphsel.transfer.models.towers`). Default
            ``"glu"``.
        adapter_init_std: std of the adapters' initial weights; near zero, the initial model
            computes what the target model alone computes. Default
            :data:`~graphsel.transfer.models.options.ADAPTER_INIT_STD`.

    Raises:
        InputError: unknown ``adapter``, or models with different numbers of MLP layers.
    """

    def __init__(self, source_model: CTRModel, target_model: CTRModel,
                 adapter: str = AdapterOptions.adapter,
                 adapter_init_std: float = ADAPTER_INIT_STD) -> None:
        super().__init__()
        self.source = FrozenTower(source_model)
        self.target = target_model
        self.adapters = layer_adapters(source_model, target_model, adapter, adapter_init_std)
        # One gate per layer, read from the target's own input to that layer: the target
        # decides per sample and per unit how much source knowledge it lets in.
        self.gates = nn.ModuleList(nn.Linear(width_in, width_out)
                                   for width_in, width_out in target_model.mlp.widths)

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
        return TeacherStudentOutput(ModelOutput(self.target.logits(cat, x), tuple(hidden)),
                                    teacher)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64, ``(B, M)`` float32 -> ``(B,)`` logits of the gated target."""
        return self.forward_both(cat, num).student.logits

    def refresh_source(self, new_source_model: CTRModel) -> None:
        """Copies the retrained source model's weights into the frozen copy (continual)."""
        self.source.load_from(new_source_model)


def ecat_loss(options: ECATOptions | None = None) -> LossFn:
    """``loss_fn(model, batch)`` for :class:`~graphsel.transfer.train.trainer.Trainer`:
    ``weighted_bce + options.distill_weight * adaptive_distillation_loss``.

    Args:
        options: its ``distill_weight`` and ``distill`` are used. Default ``ECATOptions()``.
    """
    options = options or ECATOptions()
    distill_weight, config = options.distill_weight, options.distill

    def loss_fn(model: nn.Module, batch: CTRBatch) -> torch.Tensor:
        if not isinstance(model, ECAT):
            raise TypeError(f"ecat_loss trains an ECAT, got {type(model).__name__}")
        output = model.forward_both(batch.cat, batch.num)
        loss = weighted_bce(output.student.logits, batch.label, batch.weight)
        if distill_weight:
            loss = loss + distill_weight * adaptive_distillation_loss(
                output, batch.label, batch.weight, config)
        return loss

    return loss_fn


@register_model("ecat")
def build_ecat(vocab_sizes: Sequence[int], num_numeric: int = 0,
               config: ModelConfig | None = None, adapter: str = AdapterOptions.adapter) -> ECAT:
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


class ColdECATLearner(Learner):
    """ECAT on the selected rows alone, student from scratch (the ablation ``ecat_cold``).

    At each transfer period the source model (warm-started) trains on the window's selected
    source rows and the period's target rows; its frozen copy then feeds the target model
    (from a fresh base model at the first period) through gated adapters while the target
    model trains on the target's and the selected rows with :func:`ecat_loss`.

    Args:
        context: the run's context.
        options: adapters and distillation. Default ``ECATOptions()``.
    """

    def __init__(self, context: LearnerContext, options: ECATOptions | None = None) -> None:
        super().__init__(context)
        options = options or ECATOptions()
        self.source_model = context.base_model()
        self.ecat = ECAT(self.source_model, context.base_model(), options.adapters.adapter,
                         options.adapters.adapter_init_std)
        self.model = self.ecat
        self.source_trainer = context.trainer()
        self.trainer = context.trainer(ecat_loss(options))

    def fit_period(self, data: PeriodData) -> None:
        joint = joint_rows(data)
        self.refresh_teacher(data, joint)
        self.trainer.fit(self.ecat, joint, data.valid)

    def refresh_teacher(self, data: PeriodData, rows: CTRDataset) -> None:
        """At a transfer period: trains the source model (the teacher) on ``rows`` (the
        period's target and source rows) and copies it into the frozen copy."""
        if data.transfer:
            self.source_trainer.fit(self.source_model, rows, data.valid)
            self.ecat.refresh_source(self.source_model)


class ECATLearner(ColdECATLearner):
    """ECAT as the paper lays it out (``ecat``; see the module doc).

    The plan holds every source row, the selected ones as its ``focus``. At each transfer
    period the teacher (warm-started) trains on the entire space: the period's target rows
    and every source row of its window; the student (:attr:`ECAT.target`), loaded with the
    teacher's weights before its first fit, trains on the target's rows and the window's
    selected rows with :func:`ecat_loss`, keeping its starting weights when no epoch beats
    them on validation. The teacher mixes domains, so the domain feature is tuned like
    ``merge_all``'s.

    Args:
        context: the run's context.
        options: adapters and distillation. Default ``ECATOptions()``.
    """

    mixes_domains = True

    def __init__(self, context: LearnerContext, options: ECATOptions | None = None) -> None:
        super().__init__(context, options)
        self.started = False

    def fit_period(self, data: PeriodData) -> None:
        self.refresh_teacher(data, joint_rows(data))
        if not self.started:
            warm_start(self.ecat.target, self.source_model)
            self.started = True
        self.trainer.fit(self.ecat, focus_rows(data, self.context.plan.focus), data.valid,
                         keep_start=True)


register_strategy("ecat", needs_selection=True, learner=ECATLearner)(selected_focus)
register_strategy("ecat_cold", needs_selection=True, learner=ColdECATLearner)(selected)
