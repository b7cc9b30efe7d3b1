"""The options of every model and transfer learner, importable without torch.

A config file (:mod:`graphsel.transfer.config`) is checked against these dataclasses before
anything trains, so they live apart from the models: loading a config imports no torch. Each
default is written once, here; the models, losses and learners take these objects.

=======================  ==========================================================================
:class:`ModelConfig`     the base model (embeddings + MLP), shared by every strategy
:class:`AdapterOptions`  ``strategy_options: {ctnet: ...}`` (and ``ctnet_linear``): the adapters
:class:`ECATOptions`     ``strategy_options: {ecat: ...}``: adapters, distillation weight and terms
:class:`DIITOptions`     ``strategy_options: {diit: ...}``: sub-domains, extractors, loss weights
:class:`FinetuneOptions` ``strategy_options: {merge_finetune: ...}``: the fine-tuning step
:class:`WeightedOptions` ``strategy_options: {weighted_all: ...}``: the tempering grid
:class:`SubdomainOptions` ``strategy_options: {subdomain_gap: ...}``: sub-domains and gap probes
:class:`EnsembleOptions` ``strategy_options: {ensemble: ...}``: the strategies it averages
:class:`SeedEnsembleOptions` ``strategy_options: {merge_all_ensemble: ...}``: how many models
=======================  ==========================================================================

>>> DIITOptions().num_sources, AdapterOptions(adapter="linear").adapter
(3, 'linear')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from graphsel.errors import InputError, check_choice, check_integer

__all__ = [
    "ModelConfig",
    "ADAPTER_INIT_STD",
    "ADAPTER_KINDS",
    "AdapterOptions",
    "DistillConfig",
    "ECATOptions",
    "DIITConfig",
    "DIITLossConfig",
    "DIITOptions",
    "FinetuneOptions",
    "WeightedOptions",
    "SUBDOMAIN_COLUMNS",
    "SubdomainOptions",
    "EnsembleOptions",
    "SeedEnsembleOptions",
]


@dataclass(frozen=True)
class ModelConfig:
    """Options of the base model.

    Attributes:
        embed_dim: ``D``, embedding size of every field. Default 16.
        hidden: widths of the MLP's hidden layers. Default ``(256, 128, 64)``.
        dropout: dropout after each hidden layer's activation. Default 0.0.
        batch_norm: BatchNorm1d between each hidden layer's linear map and activation.
            Default False.
        sparse_embedding: the embedding table produces sparse gradients (the trainer then
            updates it with ``SparseAdam``, touching only the rows of the batch). Default True.
        fm: add a factorisation machine's terms to the logit (DeepFM's FM component, Guo et
            al., IJCAI 2017): a learnt weight per feature value and the inner products of
            every pair of field embeddings, which are the MLP's embeddings (see
            :class:`~graphsel.transfer.models.base.FMTerm`). Default False.
    """

    embed_dim: int = 16
    hidden: tuple[int, ...] = (256, 128, 64)
    dropout: float = 0.0
    batch_norm: bool = False
    sparse_embedding: bool = True
    fm: bool = False

    def __post_init__(self) -> None:
        if self.embed_dim < 1:
            raise InputError(f"embed_dim must be >= 1, got {self.embed_dim}")
        if any(width < 1 for width in self.hidden):
            raise InputError(f"hidden widths must be >= 1, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "hidden", tuple(int(width) for width in self.hidden))


ADAPTER_INIT_STD = 1e-3
"""Std of the normal initialisation of adapter weights: small enough that the adapters' first
outputs are negligible next to the target tower's pre-activations (hidden values of order
0.1 to 1 give adapter outputs of order 1e-3 * sqrt(width) * 0.1)."""

ADAPTER_KINDS: tuple[str, ...] = ("glu", "linear")
"""Adapter kinds (:data:`graphsel.transfer.models.towers.ADAPTERS` builds them)."""


@dataclass(frozen=True)
class AdapterOptions:
    """Adapters from a frozen source model into a target model: the options of the ``ctnet``
    learner (and of ``ctnet_cold``, and of ``ctnet_linear``, whose default adapter is
    ``"linear"``) and ECAT's.

    Attributes:
        adapter: ``"glu"`` (CTNet eq. 5) or ``"linear"`` (the ablation). Default ``"glu"``.
        adapter_init_std: std of the adapters' initial weights. Default
            :data:`ADAPTER_INIT_STD`.
    """

    adapter: str = "glu"
    adapter_init_std: float = ADAPTER_INIT_STD

    def __post_init__(self) -> None:
        check_choice("adapter", self.adapter, ADAPTER_KINDS)
        if self.adapter_init_std < 0:
            raise InputError(f"adapter_init_std must be >= 0, got {self.adapter_init_std}")


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
class ECATOptions:
    """Options of the ``ecat`` and ``ecat_cold`` learners and of
    :func:`~graphsel.transfer.models.ecat.ecat_loss`.

    Attributes:
        adapters: the gated adapters from the frozen source model. Default ``AdapterOptions()``.
        distill_weight: ``lambda``, weight of the adaptive distillation next to the BCE; 0
            trains on the BCE alone. Default 1.0.
        distill: the distillation terms. Default ``DistillConfig()``.
    """

    adapters: AdapterOptions = field(default_factory=AdapterOptions)
    distill_weight: float = 1.0
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        if self.distill_weight < 0:
            raise InputError(f"distill_weight must be >= 0, got {self.distill_weight}")


@dataclass(frozen=True)
class DIITConfig:
    """Options of :class:`DIIT`'s extractors.

    Attributes:
        discriminator_hidden: widths of the discriminator's hidden layers. Default ``(16,)``.
        align_layer: index into :attr:`ModelOutput.hidden` of the representation the
            discriminator sees (negative from the end). Default -1: the last MLP layer.
        reversal: coefficient of the gradient reversal (0 trains the discriminator but lets
            no adversarial signal into the target). Default 1.0.
    """

    discriminator_hidden: tuple[int, ...] = (16,)
    align_layer: int = -1
    reversal: float = 1.0

    def __post_init__(self) -> None:
        if self.reversal < 0:
            raise InputError(f"reversal must be >= 0, got {self.reversal}")
        object.__setattr__(self, "discriminator_hidden",
                           tuple(int(width) for width in self.discriminator_hidden))


@dataclass(frozen=True)
class DIITLossConfig:
    """Weights of :func:`diit_loss`'s terms.

    Attributes:
        distill_weight: multi-spot distillation (hidden states and logit). Default 1.0.
        layers: indices into :attr:`ModelOutput.hidden` distilled. Default None: every
            hidden state.
        logit_weight: weight of the logit inside the distillation term. Default 1.0.
        gate_weight: BCE of the gated teacher logits against the labels, which is what
            teaches the gate which source fits which sample. Default 1.0.
        adversarial_weight: domain BCE of the discriminator (reversed into the target).
            Default 0.1.
    """

    distill_weight: float = 1.0
    layers: tuple[int, ...] | None = None
    logit_weight: float = 1.0
    gate_weight: float = 1.0
    adversarial_weight: float = 0.1

    def __post_init__(self) -> None:
        weights = (self.distill_weight, self.logit_weight, self.gate_weight,
                   self.adversarial_weight)
        if min(weights) < 0:
            raise InputError(f"loss weights must be >= 0, got {self}")


@dataclass(frozen=True)
class DIITOptions:
    """Options of the ``diit`` and ``diit_cold`` learners.

    Attributes:
        num_sources: ``K``, source sub-domains, one frozen source model each (fewer when the
            source has fewer item communities). Default 3.
        model: the gate and discriminator. Default ``DIITConfig()``.
        loss: the weights of :func:`~graphsel.transfer.models.diit.diit_loss`. Default
            ``DIITLossConfig()``.
    """

    num_sources: int = 3
    model: DIITConfig = field(default_factory=DIITConfig)
    loss: DIITLossConfig = field(default_factory=DIITLossConfig)

    def __post_init__(self) -> None:
        if self.num_sources < 1:
            raise InputError(f"num_sources must be >= 1, got {self.num_sources}")


@dataclass(frozen=True)
class FinetuneOptions:
    """Options of ``merge_finetune`` and ``merge_finetune_selected``: the model first trains
    on every source row and the target's rows (``merge_all``), then fine-tunes.

    Attributes:
        lr_factor: the fine-tuning learning rate is the run's ``lr`` times this. Default 1.0
            (measured on ML-1M Documentary before this recipe existed: a full learning rate
            gained more over ``merge_all`` than a third of it).
        mix: weights ``a`` of the fine-tuned model in weight-space mixes
            ``(1 - a) * merged + a * fine_tuned`` (WiSE-FT, Wortsman et al. 2022) tried after
            the fine-tuning step; the mix (or the fine-tuned model, ``a = 1``) with the best
            validation AUC is kept. Default ``(0.25, 0.5, 0.75)``; ``()``: no mixing.
    """

    lr_factor: float = 1.0
    mix: tuple[float, ...] = (0.25, 0.5, 0.75)

    def __post_init__(self) -> None:
        if not (isinstance(self.lr_factor, (int, float)) and 0 < self.lr_factor <= 10):
            raise InputError(f"lr_factor must be a number in (0, 10], got {self.lr_factor!r}")
        mix = tuple(self.mix) if isinstance(self.mix, (list, tuple)) else None
        if mix is None or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                  and 0 < a < 1 for a in mix):
            raise InputError(f"mix must be a list of numbers in (0, 1), got {self.mix!r}")
        object.__setattr__(self, "mix", tuple(float(a) for a in mix))


def _grid(name: str, values: object, low: float, low_open: bool) -> tuple[float, ...]:
    """``values`` as a non-empty tuple of finite numbers above ``low`` (or at it)."""
    grid: tuple[object, ...] = tuple(values) if isinstance(values, (list, tuple)) else ()
    bound = f"> {low}" if low_open else f">= {low}"
    numbers = [float(v) for v in grid if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not grid or len(numbers) < len(grid) or not all(
            math.isfinite(v) and (v > low if low_open else v >= low) for v in numbers):
        raise InputError(f"{name} must be a non-empty list of numbers {bound}, got {values!r}")
    return tuple(numbers)


@dataclass(frozen=True)
class WeightedOptions:
    """Options of ``weighted_all``: every source row, weighted by its tempered density ratio.

    A source row of density ratio ``w`` (the ``da`` stage's clipped ``p / (1 - p) * N_src /
    N_tgt``) trains with weight ``lambda * w**alpha / mean(w**alpha)`` (mean over the
    period's source rows), a target row with weight 1. Every ``(alpha, lambda)`` of the grid
    trains its own model; the one with the best validation AUC predicts. ``alpha = 0,
    lambda = 1`` is ``merge_all``.

    Attributes:
        alphas: the tempering exponents tried. Default ``(0.0, 0.5, 1.0)`` (a probe on ML-1M
            Documentary, #13: alpha 0.5 and 1 alone were below ``merge_all``, so 0 stays in).
        lambdas: the source loss scales tried. Default ``(0.5, 1.0)``.
    """

    alphas: tuple[float, ...] = (0.0, 0.5, 1.0)
    lambdas: tuple[float, ...] = (0.5, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alphas", _grid("alphas", self.alphas, 0.0, False))
        object.__setattr__(self, "lambdas", _grid("lambdas", self.lambdas, 0.0, True))


SUBDOMAIN_COLUMNS: tuple[str, ...] = ("first_genre", "category_id", "category")
"""Source columns ``SubdomainOptions(column="auto")`` looks for, in order: MovieLens' first
genre, Taobao's category, the synthetic default's item category."""


@dataclass(frozen=True)
class SubdomainOptions:
    """Options of ``subdomain_gap``: per source sub-domain, its transfer gap on validation.

    Attributes:
        column: the source column whose values are the sub-domains; ``"auto"`` takes the
            first of :data:`SUBDOMAIN_COLUMNS` the source has, else ``"clusters"``;
            ``"clusters"`` uses k-means communities of items (DIIT's sub-domains). Default
            ``"auto"``.
        max_subdomains: sub-domains at most: the ``max_subdomains - 1`` largest values of
            the column, the rest pooled as ``"other"`` (the number of clusters). Default 8.
        probe_epochs: epochs of each probe fine-tuning that measures a gap. Default 1.
        max_gap: sub-domains whose gap (validation log-loss with them minus without them)
            is above this are dropped from the fine-tuning step. Default 0.0: keep those
            that help or do not hurt.
        finetune: the fine-tuning step on the target's rows and the kept sub-domains.
            Default ``FinetuneOptions()``.
    """

    column: str = "auto"
    max_subdomains: int = 8
    probe_epochs: int = 1
    max_gap: float = 0.0
    finetune: FinetuneOptions = field(default_factory=FinetuneOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise InputError(f"column must be 'auto', 'clusters' or a source column, "
                             f"got {self.column!r}")
        check_integer("max_subdomains", self.max_subdomains, 1)
        check_integer("probe_epochs", self.probe_epochs, 1)
        if not (isinstance(self.max_gap, (int, float)) and math.isfinite(self.max_gap)):
            raise InputError(f"max_gap must be a finite number, got {self.max_gap!r}")


@dataclass(frozen=True)
class EnsembleOptions:
    """Options of ``ensemble``: at each seed, the mean logit of other strategies' models.

    Attributes:
        members: the strategies whose scored models are averaged; a run with ``ensemble``
            trains the ones its ``strategies`` do not name. Default ``("star_finetune",
            "ctnet", "merge_finetune_selected")``: the set of the highest mean validation
            AUC among six sets tried on eight ``make bench-quality`` splits (#13; chosen on
            validation, not test).
    """

    members: tuple[str, ...] = ("star_finetune", "ctnet", "merge_finetune_selected")

    def __post_init__(self) -> None:
        members = tuple(self.members) if isinstance(self.members, (list, tuple)) else ()
        if (len(members) < 2 or not all(isinstance(m, str) and m for m in members)
                or len(set(members)) < len(members)):
            raise InputError(f"members must be a list of at least two distinct strategy "
                             f"names, got {self.members!r}")
        object.__setattr__(self, "members", members)


@dataclass(frozen=True)
class SeedEnsembleOptions:
    """Options of ``merge_all_ensemble``: ``merge_all``'s model trained ``size`` times, each
    from its own initialisation and batch order, predicting their mean logit (the control of
    ``ensemble``: as many models, no transfer recipe).

    Attributes:
        size: models. Default: as many as ``ensemble`` averages by default.
    """

    size: int = len(EnsembleOptions.members)

    def __post_init__(self) -> None:
        check_integer("size", self.size, 1)
