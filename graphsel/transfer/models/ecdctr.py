"""E-CDCTR: tiny long-term pre-training, complete short-term pre-training, BN re-initialisation.

E-CDCTR (arXiv 2408.16238) transfers a rich source domain into a sparse target in three
levels, each a plain function or small model here:

1. **Tiny pre-training model** (TPM, :class:`TinyPretrainModel`): user and item embeddings
   only (a biased matrix factorisation), trained on the source data of each past period.
   Its per-period embeddings (:meth:`TinyPretrainModel.user_item_embeddings`, keyed by id)
   are aggregated over periods (:func:`aggregate_periods`, the mean) and become extra dense
   features of the target's samples (:func:`add_embedding_features`): long-term user and
   item knowledge that daily fine-tuning cannot forget, because it is an input, not a weight.
2. **Complete pre-training model** (CPM): a model with the target's architecture and
   features trained on short-term source data; :func:`init_from` copies its matching
   parameters into the target model.
3. Before fine-tuning on the target, :func:`reset_batchnorm` re-initialises the BatchNorm
   running statistics, which describe the source distribution, not the target's.

:class:`ECDCTRLearner` runs the three levels period after period; this module registers it
as the strategy ``ecdctr`` (declared in :mod:`graphsel.transfer.protocol.strategies`).

>>> users = EntityEmbeddings(np.array([10, 20]), np.array([[1.0, 0.0], [0.0, 2.0]]))
>>> users.lookup(np.array([20, 30])).tolist()
[[0.0, 2.0], [0.0, 0.0]]
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from graphsel.errors import InputError
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.features import FeatureSpec
from graphsel.transfer.models.base import EmbeddingBlock, ModelConfig, register_model
from graphsel.transfer.protocol.learners import Learner, LearnerContext, PeriodData
from graphsel.transfer.protocol.strategies import merge_all, register_strategy

__all__ = [
    "TinyPretrainModel",
    "EntityEmbeddings",
    "aggregate_periods",
    "add_embedding_features",
    "init_from",
    "reset_batchnorm",
    "build_tiny_pretrain_model",
    "ECDCTRLearner",
]


@dataclass(frozen=True, eq=False)
class EntityEmbeddings:
    """Embeddings of users (or items) keyed by their raw ids.

    Keyed by id rather than by encoder index because every period (and the target) has its
    own feature encoder: an id is the one key they all share.

    Attributes:
        ids: ``(K,)`` distinct ids.
        vectors: ``(K, D)`` float32, row ``j`` the embedding of ``ids[j]``.

    Raises:
        InputError: ids not distinct, or lengths that differ.
    """

    ids: np.ndarray
    vectors: np.ndarray

    def __post_init__(self) -> None:
        ids, vectors = np.asarray(self.ids), np.asarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2 or ids.ndim != 1 or len(ids) != len(vectors):
            raise InputError(f"ids must be (K,) and vectors (K, D), got {ids.shape} and "
                             f"{vectors.shape}")
        if len(np.unique(ids)) != len(ids):
            raise InputError("ids must be distinct")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "vectors", vectors)

    @property
    def dim(self) -> int:
        """``D``."""
        return self.vectors.shape[1]

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """``(N,)`` ids -> ``(N, D)`` float32 vectors; an unknown id gets zeros (the mean of
        an untrained, zero-centred embedding), so cold users and items stay usable."""
        ids = np.asarray(ids)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        if len(self.ids) == 0 or len(ids) == 0:
            return out
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        position = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
        known = sorted_ids[position] == ids
        out[known] = self.vectors[order[position[known]]]
        return out


def aggregate_periods(periods: Sequence[EntityEmbeddings]) -> EntityEmbeddings:
    """Mean embedding of every id over the periods in which it appears.

    An id missing from a period is left out of that period's mean rather than counted as
    zeros: absent is not "average user".

    Args:
        periods: per-period embeddings of one entity type, all of the same ``D``.

    Returns:
        Embeddings of the union of the ids, sorted.

    Raises:
        InputError: no period, or periods of different ``D``.

    >>> first = EntityEmbeddings(np.array([1, 2]), np.array([[2.0], [4.0]]))
    >>> second = EntityEmbeddings(np.array([2, 3]), np.array([[8.0], [1.0]]))
    >>> mean = aggregate_periods([first, second])
    >>> mean.ids.tolist(), mean.vectors[:, 0].tolist()
    ([1, 2, 3], [2.0, 6.0, 1.0])
    """
    if not periods:
        raise InputError("aggregate_periods needs at least one period")
    dims = {period.dim for period in periods}
    if len(dims) > 1:
        raise InputError(f"periods have different embedding sizes: {sorted(dims)}")
    ids = np.unique(np.concatenate([period.ids for period in periods]))
    total = np.zeros((len(ids), dims.pop()), dtype=np.float64)
    count = np.zeros(len(ids), dtype=np.int64)
    for period in periods:
        rows = np.searchsorted(ids, period.ids)
        total[rows] += period.vectors
        count[rows] += 1
    return EntityEmbeddings(ids, (total / count[:, None]).astype(np.float32))


def add_embedding_features(data: CTRDataset, user_ids: np.ndarray, item_ids: np.ndarray,
                           users: EntityEmbeddings, items: EntityEmbeddings) -> CTRDataset:
    """``data`` with ``D_u + D_i`` extra numeric columns: each row's user, then item vector.

    Args:
        data: ``N`` samples with ``M`` numeric columns.
        user_ids: ``(N,)`` raw user id of each row (e.g. ``log.user_id``).
        item_ids: ``(N,)`` raw item id of each row.
        users: aggregated user embeddings (unknown ids get zeros).
        items: aggregated item embeddings.

    Returns:
        The same rows, labels and weights with ``num`` of shape ``(N, M + D_u + D_i)``.

    Raises:
        InputError: if ``user_ids`` or ``item_ids`` do not have ``N`` entries.
    """
    for name, ids in (("user_ids", user_ids), ("item_ids", item_ids)):
        if len(ids) != len(data):
            raise InputError(f"{name} has {len(ids)} entries, data has {len(data)} rows")
    extra = np.concatenate([users.lookup(user_ids), items.lookup(item_ids)], axis=1)
    num = torch.cat([data.num, torch.from_numpy(extra)], dim=1)
    return CTRDataset(data.cat, num, data.label, data.weight)


class TinyPretrainModel(nn.Module):
    """E-CDCTR's TPM: a biased matrix factorisation ``logit = <u, v> + b``.

    Reads two fields of ``cat`` (user and item local indices), so it trains on the same
    :class:`~graphsel.transfer.data.CTRDataset` as any model, with the same trainer.

    Args:
        user_vocab: rows of the user field, OOV bucket included.
        item_vocab: rows of the item field, OOV bucket included.
        embed_dim: ``D``. Default 8.
        user_field: column of ``cat`` holding the user. Default 0 (the encoder's order).
        item_field: column of ``cat`` holding the item. Default 1.
        sparse: sparse embedding gradients. Default True.
    """

    def __init__(self, user_vocab: int, item_vocab: int, embed_dim: int = 8,
                 user_field: int = 0, item_field: int = 1, sparse: bool = True) -> None:
        super().__init__()
        self.embedding = EmbeddingBlock([user_vocab, item_vocab], embed_dim, sparse=sparse)
        self.bias = nn.Parameter(torch.zeros(()))
        self.fields = (user_field, item_field)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` int64 (``num`` ignored) -> ``(B,)`` logits."""
        pair = self.embedding(cat[:, list(self.fields)])  # (B, 2, D)
        return (pair[:, 0] * pair[:, 1]).sum(dim=1) + self.bias

    def user_item_embeddings(self, spec: FeatureSpec) -> tuple[EntityEmbeddings,
                                                                EntityEmbeddings]:
        """The learned user and item vectors keyed by id.

        Args:
            spec: the feature spec of the encoder that produced the training data; its user
                and item fields' ``categories[j]`` is the id of local index ``j + 1``.

        Returns:
            ``(users, items)``; the OOV rows are left out.

        Raises:
            InputError: if the spec's field sizes differ from the model's vocabularies.
        """
        # A copy: the vectors of a past period must not follow the table as it trains on.
        table = self.embedding.table.weight.detach().cpu().numpy().copy()
        offsets = self.embedding.offsets.tolist()
        result = []
        for position, field_index in enumerate(self.fields):
            field = spec.categorical[field_index]
            if field.size != self.embedding.vocab_sizes[position]:
                raise InputError(f"field {field.name!r} has {field.size} rows in the spec, "
                                 f"{self.embedding.vocab_sizes[position]} in the model")
            start = offsets[position] + 1  # skip the OOV bucket
            result.append(EntityEmbeddings(field.categories,
                                           table[start:start + len(field.categories)]))
        return result[0], result[1]


@register_model("ecdctr_tpm")
def build_tiny_pretrain_model(vocab_sizes: Sequence[int], num_numeric: int = 0,
                              config: ModelConfig | None = None) -> TinyPretrainModel:
    """E-CDCTR's tiny pre-training model over fields 0 (user) and 1 (item).

    Args:
        vocab_sizes: ``(F,)`` rows per field; ``F >= 2``, user then item first (the
            :class:`~graphsel.transfer.features.FeatureEncoder` default order).
        num_numeric: ignored (the TPM reads ids only). Default 0.
        config: its ``embed_dim`` and ``sparse_embedding`` are used. Default
            ``ModelConfig()``.

    Raises:
        InputError: fewer than two fields.
    """
    config = config or ModelConfig()
    if len(vocab_sizes) < 2:
        raise InputError(f"the tiny pre-training model needs user and item fields, got "
                         f"{len(vocab_sizes)} field(s)")
    return TinyPretrainModel(vocab_sizes[0], vocab_sizes[1], config.embed_dim,
                             sparse=config.sparse_embedding)


def init_from(pretrained: nn.Module, target: nn.Module) -> list[str]:
    """Copies every parameter and buffer of ``pretrained`` whose name and shape match one of
    ``target`` into it (the CPM initialising the target model).

    Tensors that do not match (e.g. a first layer over a different number of features) keep
    the target's values. Embedding tables are copied only between
    :class:`~graphsel.transfer.models.base.EmbeddingBlock` s of equal per-field vocabularies (a
    table of the same total size but another layout would put every row under the wrong
    value), and their ``offsets`` buffers never, as they follow from the vocabularies. For
    the tables to transfer, encode the CPM's source data with the target's encoder.

    Args:
        pretrained: the complete pre-training model.
        target: the model to initialise, in place.

    Returns:
        The sorted names of the tensors copied.
    """
    source_state = pretrained.state_dict()
    target_state = target.state_dict()
    skipped = _layout_bound_names(pretrained, target)
    copied = sorted(name for name, tensor in source_state.items()
                    if name in target_state and name not in skipped
                    and target_state[name].shape == tensor.shape)
    with torch.no_grad():
        for name in copied:
            target_state[name].copy_(source_state[name])
    return copied


def _layout_bound_names(pretrained: nn.Module, target: nn.Module) -> set[str]:
    """State names whose values depend on an embedding block's vocabulary layout."""
    source_blocks = {name: module for name, module in pretrained.named_modules()
                     if isinstance(module, EmbeddingBlock)}
    names = set()
    for name, block in target.named_modules():
        if not isinstance(block, EmbeddingBlock):
            continue
        prefix = f"{name}." if name else ""
        names.add(f"{prefix}offsets")
        other = source_blocks.get(name)
        if other is None or other.vocab_sizes != block.vocab_sizes:
            names.add(f"{prefix}table.weight")
    return names


def reset_batchnorm(model: nn.Module, affine: bool = False) -> int:
    """Re-initialises every BatchNorm layer's running statistics (mean 0, variance 1, no
    batch tracked), so fine-tuning re-estimates them on the target's distribution.

    Args:
        model: changed in place.
        affine: also reset the learned scale (1) and shift (0). Default False: they hold
            pre-trained knowledge that fine-tuning can adjust.

    Returns:
        The number of BatchNorm layers reset.
    """
    count = 0
    for module in model.modules():
        # _BatchNorm is the common base of BatchNorm1d/2d/3d and SyncBatchNorm.
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if affine:
                module.reset_parameters()  # running statistics and affine parameters
            else:
                module.reset_running_stats()
            count += 1
    return count


class ECDCTRLearner(Learner):
    """E-CDCTR: long-term embedding features, short-term pre-training, BN re-initialised.

    * At each transfer period a :class:`TinyPretrainModel`
      (warm-started, so its periods share one embedding space) trains on the window's source
      rows; its user and item embeddings of every period so far, averaged
      (:func:`aggregate_periods`), are ``2 D`` extra numeric
      features of every sample the target model sees.
    * At the first period a complete pre-training model (the target's architecture and
      features) trains on the window's source rows and initialises the target model
      (:func:`init_from`); the BatchNorm running statistics are
      then reset (:func:`reset_batchnorm`) and the target model
      is fine-tuned on the target rows. Later periods warm-start from the previous target
      model, as every learner does.
    """

    def __init__(self, context: LearnerContext) -> None:
        super().__init__(context)
        user_vocab, item_vocab = context.spec.vocab_sizes[:2]
        self.tiny = TinyPretrainModel(user_vocab, item_vocab, context.model.embed_dim,
                                      sparse=context.model.sparse_embedding)
        self.history: list[tuple[EntityEmbeddings, EntityEmbeddings]] = []
        self.users = self.items = EntityEmbeddings(np.zeros(0, dtype=np.int64),
                                                   np.zeros((0, context.model.embed_dim)))
        self.model = context.base_model(extra_numeric=2 * context.model.embed_dim)
        self.trainer = context.trainer()

    def fit_period(self, data: PeriodData) -> None:
        if data.transfer and len(data.source):
            self.trainer.fit(self.tiny, data.source, data.valid)
            self._record_period()
        valid = self._inputs(data.valid)
        if data.period == 0 and len(data.source):
            complete = copy.deepcopy(self.model)
            self.trainer.fit(complete, self._inputs(data.source), valid)
            init_from(complete, self.model)
            reset_batchnorm(self.model)
        self.trainer.fit(self.model, self._inputs(data.target), valid)

    def _inputs(self, data: CTRDataset) -> CTRDataset:
        """``data`` with each row's aggregated user and item embeddings appended."""
        cat = data.cat.numpy()
        return add_embedding_features(data, cat[:, 0], cat[:, 1], self.users, self.items)

    def _record_period(self) -> None:
        """Appends the tiny model's embeddings to the history and re-aggregates them.

        Every period here uses one encoder, so the embeddings are keyed by local index (the
        OOV index 0 is no key: unknown users and items get zeros).
        """
        spec = self.context.spec
        period = [EntityEmbeddings(_local_index(spec, field, embeddings.ids),
                                   embeddings.vectors)
                  for field, embeddings in enumerate(self.tiny.user_item_embeddings(spec))]
        self.history.append((period[0], period[1]))
        self.users = aggregate_periods([users for users, _ in self.history])
        self.items = aggregate_periods([items for _, items in self.history])


def _local_index(spec: FeatureSpec, field: int, ids: np.ndarray) -> np.ndarray:
    """The local indices (``1 + position``) of known ``ids`` of categorical ``field``."""
    return np.searchsorted(spec.categorical[field].categories, ids) + 1


register_strategy("ecdctr", learner=ECDCTRLearner)(merge_all)
