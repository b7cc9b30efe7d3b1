"""The options of the multi-domain models, importable without torch.

The multi-domain models (:mod:`~graphsel.transfer.models.multidomain`) take the base model's
:class:`~graphsel.transfer.models.options.ModelConfig` (embedding size, MLP widths, dropout,
sparse embeddings) and one of these for what is their own. ``config.hidden`` is the depth and
width of their shared part in every model: Shared-Bottom's bottom, each MMoE expert, PLE's
levels (one CGC level per width), STAR's star-topology layers and PEPNet's gated MLP.

=========================  =======================================================
:class:`TowerOptions`      ``shared_bottom``: the per-domain towers
:class:`MMoEOptions`       ``mmoe``: towers, number of experts
:class:`PLEOptions`        ``ple``: towers, shared and specific experts per level
:class:`STAROptions`       ``star``: auxiliary network, partitioned normalisation
:class:`PEPNetOptions`     ``pepnet``: the gate neural units
=========================  =======================================================

>>> MMoEOptions().num_experts, PLEOptions().tower_hidden, PEPNetOptions().gate_scale
(4, (64,), 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from graphsel.errors import InputError

__all__ = ["MULTI_DOMAIN_MODELS", "TowerOptions", "MMoEOptions", "PLEOptions", "STAROptions",
           "PEPNetOptions"]


def _widths(name: str, widths: tuple[int, ...]) -> tuple[int, ...]:
    widths = tuple(int(width) for width in widths)
    if any(width < 1 for width in widths):
        raise InputError(f"{name} widths must be >= 1, got {widths}")
    return widths


def _at_least_one(**counts: int) -> None:
    for name, count in counts.items():
        if count < 1:
            raise InputError(f"{name} must be >= 1, got {count}")


@dataclass(frozen=True)
class TowerOptions:
    """Per-domain towers on top of a shared part (the ``shared_bottom`` model's options).

    Attributes:
        tower_hidden: widths of each domain's tower MLP before its logit head; empty gives a
            linear head per domain. Default ``(64,)``.
    """

    tower_hidden: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tower_hidden", _widths("tower_hidden", self.tower_hidden))


@dataclass(frozen=True)
class MMoEOptions(TowerOptions):
    """Options of ``mmoe`` (Ma et al., KDD 2018, one gate and tower per domain).

    Attributes:
        num_experts: shared experts, each an MLP of ``config.hidden``. Default 4.
    """

    num_experts: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least_one(num_experts=self.num_experts)


@dataclass(frozen=True)
class PLEOptions(TowerOptions):
    """Options of ``ple`` (Tang et al., RecSys 2020): one CGC level per ``config.hidden`` width.

    Attributes:
        num_shared_experts: shared experts per level, each one MLP layer. Default 1.
        num_specific_experts: experts of each domain per level. Default 1.
    """

    num_shared_experts: int = 1
    num_specific_experts: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least_one(num_shared_experts=self.num_shared_experts,
                      num_specific_experts=self.num_specific_experts)


@dataclass(frozen=True)
class STAROptions:
    """Options of ``star`` (Sheng et al., CIKM 2021, the paper's version).

    Attributes:
        aux_hidden: widths of the auxiliary network on the domain indicator's embedding,
            whose logit is added to the star network's. Default ``(64,)``.
        partitioned_norm: partitioned normalisation of the star network's input (per-domain
            statistics, scale and shift); False feeds the input unnormalised (an ablation).
            Default True.
        norm_momentum: momentum of each domain's running mean and variance (as BatchNorm's).
            Default 0.1.
    """

    aux_hidden: tuple[int, ...] = (64,)
    partitioned_norm: bool = True
    norm_momentum: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "aux_hidden", _widths("aux_hidden", self.aux_hidden))
        if not 0.0 < self.norm_momentum <= 1.0:
            raise InputError(f"norm_momentum must be in (0, 1], got {self.norm_momentum}")


@dataclass(frozen=True)
class PEPNetOptions:
    """Options of ``pepnet`` (Chang et al., KDD 2023, single task).

    Attributes:
        gate_hidden: width of every gate neural unit's hidden layer. Default 64.
        gate_scale: ``gamma``: a gate is ``gamma * sigmoid(...)``, in ``(0, gamma)``, so
            ``gamma = 2`` lets a gate amplify as well as damp (the paper's choice).
            Default 2.0.
    """

    gate_hidden: int = 64
    gate_scale: float = 2.0

    def __post_init__(self) -> None:
        _at_least_one(gate_hidden=self.gate_hidden)
        if self.gate_scale <= 0:
            raise InputError(f"gate_scale must be > 0, got {self.gate_scale}")


MULTI_DOMAIN_MODELS: dict[str, TowerOptions | STAROptions | PEPNetOptions] = {
    "shared_bottom": TowerOptions(), "mmoe": MMoEOptions(), "ple": PLEOptions(),
    "star": STAROptions(), "pepnet": PEPNetOptions()}
"""The multi-domain models by their registered name, with their default options: each is also
a strategy of the same name (``graphsel run``), trained on every row with the row's domain."""
