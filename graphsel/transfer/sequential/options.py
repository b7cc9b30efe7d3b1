"""Options of the sequential (next-item) models, their training and their evaluation; no torch.

Each option has one default, here. The model variants (:data:`VARIANTS`) are SyNCRec, its
three ablations and the two SASRec baselines, each a function of one :class:`SyNCRecConfig`
so that every variant shares the same sizes and training.

>>> variant_config("sasrec_cdsr", SyNCRecConfig()).tasks
'cdsr'
>>> SyNCRecConfig().expert_split()
((0, 1, 2, 3), (4,))
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphsel.data.io import read_yaml
from graphsel.errors import InputError, check_choice, check_integer, check_real
from graphsel.registry import Registry
from graphsel.transfer.config import build_dataclass, expand_env

__all__ = ["NTGConfig", "SyNCRecConfig", "SequentialTrainConfig", "EvalConfig",
           "SequenceDatasetConfig", "NextItemConfig", "VARIANTS", "variant_config", "TASKS",
           "load_next_item_config", "next_item_config_from_dict"]

TASKS = ("both", "sdsr", "cdsr")


@dataclass(frozen=True)
class NTGConfig:
    """LC-NTG: ``lambda <- alpha * lambda + beta * phi``, weights ``softmax(lambda / tau)``.

    ``phi_d = L_S(d) - L_C(d)`` is the detached negative-transfer gap of domain ``d``; a domain
    whose cross-domain loss exceeds its single-domain loss gets a lower weight. Both alpha and
    beta are fixed hyper-parameters (the reference code draws them at random and never trains
    them; a negative beta would invert the correction, so it must be > 0).

    Attributes:
        alpha: memory of lambda, in [0, 1). Default 0.9.
        beta: step on the gap, > 0. Default 1.0.
        tau: softmax temperature, > 0. Default 1.0.
    """

    alpha: float = 0.9
    beta: float = 1.0
    tau: float = 1.0

    def __post_init__(self) -> None:
        check_real("ntg.alpha", self.alpha, 0.0, 0.999999)
        check_real("ntg.beta", self.beta, 0.0, 1e6, low_open=True)
        check_real("ntg.tau", self.tau, 0.0, 1e6, low_open=True)


@dataclass(frozen=True)
class SyNCRecConfig:
    """The model: sizes, the expert mixture and the loss terms.

    Attributes:
        hidden: ``H``, the width of every embedding and expert. Default 64.
        num_layers: SASRec blocks per expert. Default 2.
        num_heads: attention heads (must divide ``hidden``). Default 2.
        dropout: on embeddings, attention and feed-forward outputs. Default 0.2.
        max_length: ``L``, the input window. Default 50.
        num_experts: ``K`` causal Transformer experts, each its own parameters. Default 5.
        cdsr_share: rho, the share of experts serving the CDSR task (the rest serve SDSR;
            with ``acmoe`` each group keeps at least one). Default 0.8.
        gate_noise: Gaussian noise on the gate logits in training (noisy gating). Default True.
        tasks: ``"both"`` (SyNCRec), ``"sdsr"`` or ``"cdsr"`` (the SASRec baselines train
            and predict with that path only). Default ``"both"``.
        acmoe: partitioned experts, one gate per task and the asymmetric stop-gradient; False
            makes one pool trained by both tasks through one gate (w/o ACMoE). Default True.
        lc_ntg: weight the CDSR losses by LC-NTG; False weighs every domain equally.
            Default True.
        ntg: :class:`NTGConfig`. Default ``NTGConfig()``.
        mi_weight: weight of the SC-MIM loss (0 turns it off). Default 0.1.
        domain_balanced: each domain's loss is the mean over its positions and domains are
            summed; False averages over all positions (plain SASRec). Default True.
    """

    hidden: int = 64
    num_layers: int = 2
    num_heads: int = 2
    dropout: float = 0.2
    max_length: int = 50
    num_experts: int = 5
    cdsr_share: float = 0.8
    gate_noise: bool = True
    tasks: str = "both"
    acmoe: bool = True
    lc_ntg: bool = True
    ntg: NTGConfig = field(default_factory=NTGConfig)
    mi_weight: float = 0.1
    domain_balanced: bool = True

    def __post_init__(self) -> None:
        check_integer("model.hidden", self.hidden, 1)
        check_integer("model.num_layers", self.num_layers, 1)
        heads = check_integer("model.num_heads", self.num_heads, 1)
        if self.hidden % heads:
            raise InputError(f"model.num_heads={heads} must divide model.hidden={self.hidden}")
        check_real("model.dropout", self.dropout, 0.0, 0.99)
        check_integer("model.max_length", self.max_length, 2)
        check_integer("model.num_experts", self.num_experts, 1)
        check_real("model.cdsr_share", self.cdsr_share, 0.0, 1.0)
        check_choice("model.tasks", self.tasks, TASKS)
        check_real("model.mi_weight", self.mi_weight, 0.0, 1e6)
        if self.tasks == "both" and self.acmoe and self.num_experts < 2:
            raise InputError("model.num_experts must be >= 2 with acmoe (one per task at least)")

    def expert_split(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(cdsr_experts, sdsr_experts)``: a partition of ``0 .. K-1``, CDSR first.

        Without ACMoE (or with one task) every expert serves both groups' callers: both
        tuples are all experts.
        """
        experts = tuple(range(self.num_experts))
        if self.tasks != "both" or not self.acmoe:
            return experts, experts
        num_cdsr = min(max(round(self.cdsr_share * self.num_experts), 1), self.num_experts - 1)
        return experts[:num_cdsr], experts[num_cdsr:]


@dataclass(frozen=True)
class SequentialTrainConfig:
    """Training of one variant.

    Attributes:
        epochs: at most this many passes. Default 20.
        batch_size: windows per step. Default 256.
        lr: Adam's learning rate. Default 1e-3.
        weight_decay: Adam's L2 term. Default 0.0.
        patience: stop after this many epochs without a better validation score; the best
            epoch's weights are kept (model selection on validation only). Default 3.
        windows: ``"last"``: each user's last ``max_length + 1`` training items (SASRec's
            convention); ``"all"``: windows covering every training transition once.
            Default ``"last"``.
        threads: torch threads. Default 2.
    """

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 3
    windows: str = "last"
    threads: int = 2

    def __post_init__(self) -> None:
        check_integer("train.epochs", self.epochs, 1)
        check_integer("train.batch_size", self.batch_size, 1)
        check_real("train.lr", self.lr, 0.0, 10.0, low_open=True)
        check_real("train.weight_decay", self.weight_decay, 0.0, 10.0)
        check_integer("train.patience", self.patience, 1)
        check_choice("train.windows", self.windows, ("all", "last"))
        check_integer("train.threads", self.threads, 1)


@dataclass(frozen=True)
class EvalConfig:
    """Leave-one-out ranking.

    Attributes:
        negatives: sampled negatives per user, from the target's domain, none of them an item
            the user interacted with (fewer when the domain has fewer left). Default 100.
        full_ranking: also rank every item of the target's domain. Default True.
        metric: selects the epoch on validation and is compared between models with a paired
            bootstrap CI. Default ``"ndcg@10"``.
        n_boot: bootstrap replicates. Default 1000.
    """

    negatives: int = 100
    full_ranking: bool = True
    metric: str = "ndcg@10"
    n_boot: int = 1000

    def __post_init__(self) -> None:
        check_integer("evaluation.negatives", self.negatives, 1)
        check_choice("evaluation.metric", self.metric,
                     ("hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "mrr"))
        check_integer("evaluation.n_boot", self.n_boot, 1)


@dataclass(frozen=True)
class SequenceDatasetConfig:
    """A sequence dataset (:data:`graphsel.data.sequences.SEQUENCE_DATASETS`).

    Attributes:
        name: default ``"movielens-1m-genres"``.
        options: its keyword options, e.g. ``{"path": ...}``. Default none.
    """

    name: str = "movielens-1m-genres"
    options: dict[str, Any] = field(default_factory=dict)


VARIANTS: Registry[Callable[[SyNCRecConfig], SyNCRecConfig]] = Registry("model")
"""Model variants by name; each maps the shared :class:`SyNCRecConfig` to its own."""


def _register(name: str, **changes: Any) -> None:
    VARIANTS.add(name, lambda config: dataclasses.replace(config, **changes))


_register("syncrec")
_register("syncrec_no_lcntg", lc_ntg=False)
_register("syncrec_no_scmim", mi_weight=0.0)
_register("syncrec_no_acmoe", acmoe=False)
_SASREC = {"num_experts": 1, "lc_ntg": False, "mi_weight": 0.0, "domain_balanced": False}
_register("sasrec_sdsr", tasks="sdsr", **_SASREC)
_register("sasrec_cdsr", tasks="cdsr", **_SASREC)


def variant_config(name: str, config: SyNCRecConfig) -> SyNCRecConfig:
    """The config of variant ``name`` built from ``config``.

    Raises:
        InputError: an unknown name, listing the variants.
    """
    return VARIANTS.get(name)(config)


@dataclass(frozen=True)
class NextItemConfig:
    """Everything a next-item comparison needs (``task: next_item`` in YAML).

    Attributes:
        task: always ``"next_item"``. Default ``"next_item"``.
        dataset: :class:`SequenceDatasetConfig`. Default ML-1M genres (needs a path).
        model: the shared :class:`SyNCRecConfig`. Default ``SyNCRecConfig()``.
        train: :class:`SequentialTrainConfig`. Default ``SequentialTrainConfig()``.
        evaluation: :class:`EvalConfig`. Default ``EvalConfig()``.
        models: variant names in run order. Default: all of :data:`VARIANTS`.
        reference: the variant every other one is compared with. Default ``"syncrec"``.
        seeds: runs with seeds ``0 .. seeds - 1``. Default 1.
    """

    task: str = "next_item"
    dataset: SequenceDatasetConfig = field(default_factory=SequenceDatasetConfig)
    model: SyNCRecConfig = field(default_factory=SyNCRecConfig)
    train: SequentialTrainConfig = field(default_factory=SequentialTrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    models: tuple[str, ...] = field(default_factory=lambda: tuple(VARIANTS.names()))
    reference: str = "syncrec"
    seeds: int = 1

    def __post_init__(self) -> None:
        check_choice("task", self.task, ("next_item",))
        if not self.models:
            raise InputError(f"models is empty; choose from {VARIANTS.names()}")
        for name in (*self.models, self.reference):
            VARIANTS.get(name)
        if self.reference not in self.models:
            raise InputError(f"reference {self.reference!r} must be one of models "
                             f"{list(self.models)}")
        check_integer("seeds", self.seeds, 1)


def load_next_item_config(path: str | os.PathLike) -> NextItemConfig:
    """Reads a ``task: next_item`` YAML (see the module docstring).

    Raises:
        InputError: unreadable file or YAML, an unknown key, a wrong type or value; one line
            naming the file and the key.
    """
    return next_item_config_from_dict(read_yaml(path), str(path))


def next_item_config_from_dict(raw: Any, where: str = "<config>") -> NextItemConfig:
    """A :class:`NextItemConfig` from a parsed mapping (``${VAR}`` expanded).

    >>> next_item_config_from_dict({"models": ["syncrec"], "train": {"epochs": 2}}).train.epochs
    2
    """
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping of keys at the top level")
    config = build_dataclass(NextItemConfig, expand_env(raw, where, ""), where, "")
    assert isinstance(config, NextItemConfig)
    return config
