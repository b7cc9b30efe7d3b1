"""Encoded CTR samples as tensors, and a fast seeded batch iterator over them.

:class:`CTRDataset` is a plain :class:`torch.utils.data.Dataset`: ``dataset[i]`` is a dict
of tensors (``cat``, ``num``, ``label``, ``weight``) that torch's default collate stacks, so
any trainer with a ``DataLoader`` can use it. Our own trainer skips the per-row path and
slices whole batches with index arrays (:func:`iter_batches`), which is what makes an epoch
over a million rows take seconds rather than minutes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.transfer.features import FeatureEncoder

__all__ = ["CTRBatch", "CTRDataset", "iter_batches"]


@dataclass(frozen=True)
class CTRBatch:
    """One mini-batch.

    Attributes:
        cat: ``(B, F)`` int64 per-field local indices (``0`` = out of vocabulary).
        num: ``(B, M)`` float32 standardised numeric features (``M`` may be 0).
        label: ``(B,)`` float32 labels, 0 or 1.
        weight: ``(B,)`` float32 per-sample loss weights.
    """

    cat: torch.Tensor
    num: torch.Tensor
    label: torch.Tensor
    weight: torch.Tensor

    def __len__(self) -> int:
        return self.label.shape[0]

    def to(self, device: torch.device | str) -> CTRBatch:
        """This batch on ``device`` (the same object when it is already there)."""
        if self.label.device == torch.device(device):
            return self
        return CTRBatch(*(t.to(device, non_blocking=True) for t in
                          (self.cat, self.num, self.label, self.weight)))


class CTRDataset(torch.utils.data.Dataset):
    """``N`` encoded samples held as four aligned tensors.

    Args:
        cat: ``(N, F)`` integer local indices.
        num: ``(N, M)`` numeric features; ``None`` for none (``M = 0``).
        label: ``(N,)`` labels, 0 or 1.
        weight: ``(N,)`` non-negative per-sample weights. Default ``None``: all 1.

    Raises:
        InputError: if the lengths differ, a weight is negative or not finite, or a label is
            not 0/1.

    >>> data = CTRDataset(np.array([[1, 2], [0, 1]]), None, np.array([1, 0]))
    >>> len(data), data[1]["cat"].tolist(), data[1]["weight"].item()
    (2, [0, 1], 1.0)
    """

    def __init__(
        self,
        cat: np.ndarray | torch.Tensor,
        num: np.ndarray | torch.Tensor | None,
        label: np.ndarray | torch.Tensor,
        weight: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        self.cat = _tensor(cat, torch.int64)
        n = self.cat.shape[0]
        if self.cat.ndim != 2:
            raise InputError(f"cat must be (N, F), got shape {tuple(self.cat.shape)}")
        self.num = (torch.zeros((n, 0), dtype=torch.float32) if num is None
                    else _tensor(num, torch.float32))
        self.label = _tensor(label, torch.float32)
        self.weight = (torch.ones(n, dtype=torch.float32) if weight is None
                       else _tensor(weight, torch.float32))
        for name, tensor in (("num", self.num), ("label", self.label), ("weight", self.weight)):
            if tensor.shape[0] != n:
                raise InputError(f"{name} has {tensor.shape[0]} rows, cat has {n}")
        if self.num.ndim != 2:
            raise InputError(f"num must be (N, M), got shape {tuple(self.num.shape)}")
        if not bool(((self.label == 0) | (self.label == 1)).all()):
            raise InputError("label must hold only 0 and 1")
        if not bool((torch.isfinite(self.weight) & (self.weight >= 0)).all()):
            raise InputError("weight must be finite and >= 0")

    @classmethod
    def from_log(
        cls,
        log: InteractionLog,
        encoder: FeatureEncoder,
        weight: np.ndarray | None = None,
    ) -> CTRDataset:
        """Encodes ``log`` with a fitted ``encoder``; ``weight`` ``(N,)`` defaults to ones."""
        cat, num = encoder.transform(log)
        return cls(cat, num, log.label, weight)

    @classmethod
    def concat(cls, datasets: Sequence[CTRDataset]) -> CTRDataset:
        """Rows of ``datasets`` one after another (e.g. source rows then target rows).

        Raises:
            InputError: if the datasets have different numbers of fields.
        """
        if not datasets:
            raise InputError("concat needs at least one dataset")
        shapes = {(d.cat.shape[1], d.num.shape[1]) for d in datasets}
        if len(shapes) > 1:
            raise InputError(f"datasets have different (F, M) field counts: {sorted(shapes)}")
        return cls(*(torch.cat([getattr(d, name) for d in datasets])
                     for name in ("cat", "num", "label", "weight")))

    def with_weight(self, weight: np.ndarray | torch.Tensor) -> CTRDataset:
        """The same rows with per-sample weights ``weight`` ``(N,)`` (tensors are shared)."""
        return CTRDataset(self.cat, self.num, self.label, weight)

    def subset(self, rows: np.ndarray | torch.Tensor) -> CTRDataset:
        """Rows selected by a boolean mask ``(N,)`` or an index array."""
        rows = _tensor(rows, None)
        if rows.dtype == torch.bool:
            rows = rows.nonzero().squeeze(1)
        return CTRDataset(*(t.index_select(0, rows) for t in
                            (self.cat, self.num, self.label, self.weight)))

    @property
    def num_fields(self) -> int:
        """``F``, the number of categorical fields."""
        return self.cat.shape[1]

    @property
    def num_numeric(self) -> int:
        """``M``, the number of numeric features."""
        return self.num.shape[1]

    def __len__(self) -> int:
        return self.cat.shape[0]

    def __getitem__(self, row: int) -> dict[str, torch.Tensor]:
        return {"cat": self.cat[row], "num": self.num[row], "label": self.label[row],
                "weight": self.weight[row]}

    def batch(self, rows: torch.Tensor | slice) -> CTRBatch:
        """The rows ``rows`` (an index tensor or a slice) as one :class:`CTRBatch`."""
        if isinstance(rows, slice):
            return CTRBatch(self.cat[rows], self.num[rows], self.label[rows], self.weight[rows])
        return CTRBatch(*(t.index_select(0, rows) for t in
                          (self.cat, self.num, self.label, self.weight)))


def iter_batches(
    dataset: CTRDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
) -> Iterator[CTRBatch]:
    """Yields mini-batches of ``dataset`` by slicing whole index ranges at once.

    Args:
        dataset: the samples.
        batch_size: rows per batch (the last one may be smaller unless ``drop_last``).
        shuffle: visit rows in a random order. Default False (row order, zero-copy slices).
        seed: with ``epoch``, fixes the order: the same ``(seed, epoch)`` gives the same
            batches, a new epoch a new order. Default 0.
        epoch: the epoch number. Default 0.
        drop_last: skip a last batch smaller than ``batch_size``. Default False.

    >>> data = CTRDataset(np.arange(5)[:, None], None, np.zeros(5))
    >>> [b.cat.squeeze(1).tolist() for b in iter_batches(data, 2)]
    [[0, 1], [2, 3], [4]]
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    n = len(dataset)
    stop = n - n % batch_size if drop_last else n
    if shuffle:
        generator = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        order = torch.randperm(n, generator=generator)
        for start in range(0, stop, batch_size):
            yield dataset.batch(order[start:start + batch_size])
    else:
        for start in range(0, stop, batch_size):
            yield dataset.batch(slice(start, start + batch_size))


def _tensor(values: np.ndarray | torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``values`` as a CPU tensor, sharing memory when no conversion is needed."""
    if isinstance(values, torch.Tensor):
        return values if dtype is None else values.to(dtype)
    array = np.asarray(values)
    if not array.flags.writeable:  # log columns are read-only; torch wants writable memory
        array = array.copy()
    tensor = torch.from_numpy(array)
    return tensor if dtype is None else tensor.to(dtype)


def _epoch_seed(seed: int, epoch: int) -> int:
    # SeedSequence mixes (seed, epoch) so neighbouring seeds do not give shifted orders.
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
               % (2**63 - 1))
