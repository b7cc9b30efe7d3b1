"""CTR models built from parts, and the registry that names them.

The base model is ``CTRModel(EmbeddingBlock, MLPBlock, Head)`` (as in torchrec's
``DLRM(SparseArch, DenseArch, ..., OverArch)``): embeddings of the ``F`` categorical fields,
flattened and concatenated with the ``M`` numeric features, go through an MLP, and a linear
head gives one logit per sample; with ``ModelConfig(fm=True)`` a factorisation machine's terms
on the same embeddings (:class:`FMTerm`) are added to it, as DeepFM adds its FM component to
its deep part. ``forward`` returns logits; the loss (and any sample weight or distillation
term) lives in the trainer.

Transfer models reuse the parts: :meth:`CTRModel.forward_hidden` returns the hidden state of
every MLP layer (DIIT distils at several of them), and :meth:`MLPLayer.forward` accepts an
extra pre-activation term (CTNet adds a source-tower adapter's output at every layer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from graphsel.errors import InputError
from graphsel.registry import Registry
from graphsel.transfer.models.multidomain_options import MULTI_DOMAIN_MODELS
from graphsel.transfer.models.options import ModelConfig

__all__ = [
    "ModelConfig",  # defined in graphsel.transfer.models.options (no torch there)
    "EmbeddingBlock",
    "MLPLayer",
    "MLPBlock",
    "Head",
    "FMTerm",
    "fm_term",
    "CTRModel",
    "ModelOutput",
    "ModelBuilder",
    "MODELS",
    "register_model",
    "get_model",
    "model_names",
    "build_base_model",
]

EMBEDDING_INIT_STD = 0.01
"""Std of the normal initialisation of embedding rows (torch's default of 1 is far too large
for hundreds of summed-in features)."""


class EmbeddingBlock(nn.Module):
    """One ``nn.Embedding`` over the concatenated vocabularies of ``F`` fields.

    Field ``f``'s local index ``i`` (``0`` = its out-of-vocabulary bucket) reads row
    ``offsets[f] + i`` of the table, so one lookup serves every field.

    Args:
        vocab_sizes: ``(F,)`` rows per field, OOV bucket included (``FeatureSpec.vocab_sizes``).
        embed_dim: ``D``.
        sparse: sparse gradients (only the rows a batch used). Default True.
    """

    offsets: torch.Tensor  # a buffer: (F,) first row of each field in the table

    def __init__(self, vocab_sizes: Sequence[int], embed_dim: int, sparse: bool = True) -> None:
        super().__init__()
        if len(vocab_sizes) == 0 or min(vocab_sizes) < 1:
            raise InputError(f"vocab_sizes must be non-empty and >= 1, got {list(vocab_sizes)}")
        self.vocab_sizes = tuple(int(size) for size in vocab_sizes)
        offsets = np.concatenate([[0], np.cumsum(self.vocab_sizes)[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.int64))
        self.table = nn.Embedding(sum(self.vocab_sizes), embed_dim, sparse=sparse)
        nn.init.normal_(self.table.weight, std=EMBEDDING_INIT_STD)

    @property
    def num_fields(self) -> int:
        return len(self.vocab_sizes)

    @property
    def embed_dim(self) -> int:
        return self.table.embedding_dim

    def forward(self, cat: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` local indices -> ``(B, F, D)`` embeddings."""
        return self.table(cat + self.offsets)


class MLPLayer(nn.Module):
    """``dropout(relu(norm(linear(x) + extra)))``.

    Args:
        in_dim: input width.
        out_dim: output width.
        batch_norm: BatchNorm1d before the activation. Default False.
        dropout: dropout probability after the activation. Default 0.0.
    """

    def __init__(self, in_dim: int, out_dim: int, batch_norm: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim) if batch_norm else nn.Identity()
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, in_dim)`` -> ``(B, out_dim)``.

        Args:
            x: the layer input.
            extra: ``(B, out_dim)`` added to the linear map's output before normalisation and
                activation (CTNet's adapter term ``g_l(z_s)``). Default None.
        """
        z = self.linear(x)
        if extra is not None:
            z = z + extra
        return self.dropout(self.activation(self.norm(z)))


class MLPBlock(nn.Module):
    """A stack of :class:`MLPLayer`.

    Args:
        in_dim: input width.
        hidden: widths of the layers, e.g. ``(256, 128, 64)``; empty gives the identity.
        batch_norm: see :class:`MLPLayer`. Default False.
        dropout: see :class:`MLPLayer`. Default 0.0.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], batch_norm: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        widths = [in_dim, *hidden]
        self.layers = nn.ModuleList(
            MLPLayer(widths[i], widths[i + 1], batch_norm, dropout) for i in range(len(hidden)))
        self.in_dim = in_dim
        self.out_dim = widths[-1]
        self.widths: list[tuple[int, int]] = list(zip(widths[:-1], widths[1:]))
        """``(in, out)`` width of every layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_dim)`` -> ``(B, out_dim)``."""
        for layer in self.layers:
            x = layer(x)
        return x

    def forward_hidden(
        self, x: torch.Tensor, extras: Sequence[torch.Tensor | None] | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Every layer's output.

        Args:
            x: ``(B, in_dim)`` input.
            extras: one pre-activation term per layer (or None) passed to
                :meth:`MLPLayer.forward`. Default None.

        Returns:
            ``L`` tensors, ``(B, hidden[l])`` each; the last one is :meth:`forward`'s output.
        """
        if extras is not None and len(extras) != len(self.layers):
            raise InputError(f"extras has {len(extras)} entries, the MLP has "
                             f"{len(self.layers)} layers")
        hidden = []
        for i, layer in enumerate(self.layers):
            x = layer(x, None if extras is None else extras[i])
            hidden.append(x)
        return tuple(hidden)


class Head(nn.Module):
    """Linear map to one logit: ``(B, in_dim)`` -> ``(B,)``."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


class FMTerm(nn.Module):
    """A factorisation machine's first- and second-order terms (Rendle, ICDM 2010) on the
    ``F`` field embeddings of a model, to add to its logit (DeepFM's FM component, Guo et al.,
    IJCAI 2017).

    ``fm(cat, e) = sum_f w[cat_f] + sum_{f < g} <e_f, e_g>``: ``w`` holds one learnt weight per
    feature value (zero at the start, so the term starts as the pairwise products alone) and
    the ``e_f`` are the model's own field embeddings, shared with its MLP as in DeepFM. The
    pairwise sum is computed as ``((sum_f e_f)^2 - sum_f e_f^2) / 2``, summed over the ``D``
    dimensions. An MLP learns such inner products (a user's embedding against an item's)
    only roughly (Rendle et al., RecSys 2020); the FM term gives them to the logit exactly.

    Args:
        vocab_sizes: ``(F,)`` rows per field, as the model's :class:`EmbeddingBlock`.
        sparse: sparse gradients for the first-order weights. Default True.

    >>> fm = FMTerm([3, 4])
    >>> e = torch.tensor([[[1., 2.], [3., 4.]]])  # one row, F = 2 fields, D = 2
    >>> fm(torch.tensor([[1, 2]]), e).tolist()  # 1*3 + 2*4, the first-order weights are 0
    [11.0]
    """

    def __init__(self, vocab_sizes: Sequence[int], sparse: bool = True) -> None:
        super().__init__()
        self.first_order = EmbeddingBlock(vocab_sizes, 1, sparse=sparse)
        nn.init.zeros_(self.first_order.table.weight)

    def forward(self, cat: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` local indices and their ``(B, F, D)`` embeddings -> ``(B,)``."""
        pairwise = 0.5 * (embedded.sum(1).square() - embedded.square().sum(1)).sum(1)
        return self.first_order(cat).sum((1, 2)) + pairwise


@dataclass(frozen=True)
class ModelOutput:
    """Logits and the hidden states that produced them.

    Attributes:
        logits: ``(B,)``.
        hidden: ``L + 1`` tensors: ``hidden[0]`` the MLP input ``(B, F*D + M)`` (CTNet's
            ``z_0``), ``hidden[l]`` layer ``l``'s output ``(B, hidden[l-1])``.
    """

    logits: torch.Tensor
    hidden: tuple[torch.Tensor, ...]


class CTRModel(nn.Module):
    """Embeddings + MLP + head (+ an FM term).

    Args:
        embedding: maps ``cat`` ``(B, F)`` to ``(B, F, D)``.
        mlp: its ``in_dim`` must be ``F * D + M``.
        head: maps the MLP output to logits.
        fm: added to the head's logits, on ``embedding``'s output. Default None: none.

    >>> model = build_base_model([3, 4], num_numeric=1, config=ModelConfig(8, (4, 2)))
    >>> cat, num = torch.tensor([[1, 2], [0, 3]]), torch.zeros(2, 1)
    >>> model(cat, num).shape, [h.shape[1] for h in model.forward_hidden(cat, num).hidden]
    (torch.Size([2]), [17, 4, 2])
    """

    def __init__(self, embedding: EmbeddingBlock, mlp: MLPBlock, head: Head,
                 fm: FMTerm | None = None) -> None:
        super().__init__()
        self.embedding = embedding
        self.mlp = mlp
        self.head = head
        self.fm = fm

    def mlp_input(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)``, ``(B, M)`` -> ``(B, F*D + M)``: flattened embeddings, then numerics."""
        embedded = self.embedding(cat).flatten(1)
        return torch.cat([embedded, num], dim=1) if num.shape[1] else embedded

    def logits(self, cat: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        """``(B,)``: the head's logits of ``top``, the ``(B, H)`` output of the MLP (or of a
        transfer model's version of it), plus the FM term of ``cat`` if the model has one."""
        logits = self.head(top)
        return logits if self.fm is None else logits + self.fm(cat, self.embedding(cat))

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64 indices and ``(B, M)`` float32 numerics -> ``(B,)`` logits."""
        return self.logits(cat, self.mlp(self.mlp_input(cat, num)))

    def forward_hidden(self, cat: torch.Tensor, num: torch.Tensor) -> ModelOutput:
        """Like :meth:`forward`, also returning every hidden state (see :class:`ModelOutput`)."""
        x = self.mlp_input(cat, num)
        hidden = self.mlp.forward_hidden(x)
        return ModelOutput(self.logits(cat, hidden[-1] if hidden else x), (x, *hidden))


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

ModelBuilder = Callable[..., nn.Module]
"""``builder(vocab_sizes, num_numeric=0, config=None) -> nn.Module`` whose forward is
``(cat (B, F), num (B, M)) -> logits (B,)``."""

MODELS: Registry[ModelBuilder] = Registry("model")
"""Model builders by name: ``"base"`` here, ``"ctnet"``, ``"ecat"``, ``"diit"`` and
``"ecdctr_tpm"`` in their method modules (registered when those are imported), and the
multi-domain models, declared here and registered by :mod:`graphsel.transfer.models.multidomain`
on first use."""
for _name in MULTI_DOMAIN_MODELS:
    MODELS.declare(_name, "graphsel.transfer.models.multidomain")


Builder = TypeVar("Builder", bound=ModelBuilder)


def register_model(name: str) -> Callable[[Builder], Builder]:
    """``@register_model("name")``: registers a model builder under ``name`` (and returns it
    unchanged, with its own signature).

    Raises:
        ValueError: if ``name`` is already registered (a programming error, not bad input).
    """

    def decorate(builder: Builder) -> Builder:
        MODELS.add(name, builder)
        return builder

    return decorate


def get_model(name: str) -> ModelBuilder:
    """The builder registered as ``name``.

    Raises:
        InputError: ``Could not resolve model 'x' among ['base', ...]``.
    """
    return MODELS.get(name)


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODELS.names())


def fm_term(vocab_sizes: Sequence[int], config: ModelConfig) -> FMTerm | None:
    """The :class:`FMTerm` of a model of ``config`` over ``vocab_sizes``, or None without
    ``config.fm``."""
    return FMTerm(vocab_sizes, sparse=config.sparse_embedding) if config.fm else None


@register_model("base")
def build_base_model(
    vocab_sizes: Sequence[int], num_numeric: int = 0, config: ModelConfig | None = None
) -> CTRModel:
    """The base CTR model (embeddings + MLP + head, and an :class:`FMTerm` if ``config.fm``).

    Args:
        vocab_sizes: ``(F,)`` rows per field, OOV bucket included.
        num_numeric: ``M``. Default 0.
        config: default ``ModelConfig()``.
    """
    config = config or ModelConfig()
    embedding = EmbeddingBlock(vocab_sizes, config.embed_dim, sparse=config.sparse_embedding)
    mlp = MLPBlock(len(vocab_sizes) * config.embed_dim + num_numeric, config.hidden,
                   batch_norm=config.batch_norm, dropout=config.dropout)
    fm = fm_term(vocab_sizes, config)  # before the head: the seeded draws keep their order
    return CTRModel(embedding, mlp, Head(mlp.out_dim), fm)
