"""Training, prediction and checkpoints for any model whose forward is ``(cat, num) -> logits``.

The trainer owns what a model should not: the loss (weighted binary cross-entropy by
default, or any ``loss_fn(model, batch)``, :mod:`~graphsel.transfer.train.losses`), the
optimisers (:mod:`~graphsel.transfer.train.optim`), seeding, early stopping and checkpoints.
Its options are :class:`~graphsel.transfer.train.options.TrainConfig`. The fast path on CPU:

* embedding tables built with ``sparse=True`` produce sparse gradients (only the rows of the
  batch) and are updated by SparseAdam (:class:`~graphsel.transfer.train.optim.RowwiseSparseAdam`:
  torch's update, computed on gathered rows); a dense Adam over a table of a million rows
  would read and write every row at every step;
* every other trainable parameter is updated by ``Adam(fused=True)`` (``foreach`` where the
  fused kernel is unavailable);
* batches are sliced from index arrays (:func:`~graphsel.transfer.data.iter_batches`), not
  collated row by row.

Under an active process group of several ranks (``graphsel run --nproc N``, ``torchrun``),
each rank trains on its shard of every batch and the gradients are summed over the ranks
with the weighted loss normalised globally: :mod:`~graphsel.transfer.train.distributed`.

Parameters with ``requires_grad=False`` (e.g. a frozen source tower) are never optimised.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from graphsel._runtime import training_threads
from graphsel.data.io import atomic_path
from graphsel.errors import InputError
from graphsel.transfer.data import CTRDataset, iter_batches
from graphsel.transfer.train import distributed
from graphsel.transfer.train.losses import LossFn, weighted_bce_loss
from graphsel.transfer.train.metrics import auc, gauc, logloss
from graphsel.transfer.train.optim import (
    RowwiseSparseAdam,
    dense_adam,
    split_parameters,
)
from graphsel.transfer.train.options import TrainConfig

__all__ = [
    "TrainConfig",  # defined in graphsel.transfer.train.options (no torch there)
    "EpochRecord",
    "FitResult",
    "Trainer",
    "fit",
    "predict",
    "evaluate",
    "seed_everything",
    "state_copy",
    "save_checkpoint",
    "load_checkpoint",
]


@dataclass(frozen=True)
class EpochRecord:
    """What happened in one epoch.

    Attributes:
        epoch: 0-based epoch number.
        train_loss: mean of the batch losses, weighted by batch size.
        valid_auc: validation AUC after the epoch (None without validation data).
        seconds: wall time of the training pass (validation excluded).
        samples_per_s: training rows per second.
        steps: optimiser steps taken (batches trained on). Default 0.
        rows: training rows seen. Default 0.
    """

    epoch: int
    train_loss: float
    valid_auc: float | None
    seconds: float
    samples_per_s: float
    steps: int = 0
    rows: int = 0


@dataclass
class FitResult:
    """The outcome of :meth:`Trainer.fit`.

    Attributes:
        history: one record per epoch run.
        best_epoch: the epoch whose weights the model holds now (the last one without
            validation data; -1 when ``keep_start`` kept the starting weights).
        best_valid_auc: its validation AUC (None without validation data).
        stopped_early: True if patience ran out before ``epochs``.
        reached_cap: True if the fit ran all ``epochs`` while validation AUC was still
            improving within ``patience`` (or had no validation data): the epoch cap, not
            early stopping, ended it, so more epochs might have helped.
    """

    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    best_valid_auc: float | None = None
    stopped_early: bool = False
    reached_cap: bool = False

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.history)

    @property
    def steps(self) -> int:
        """Optimiser steps taken over all epochs."""
        return sum(record.steps for record in self.history)

    @property
    def rows(self) -> int:
        """Training rows seen over all epochs (rows x epochs)."""
        return sum(record.rows for record in self.history)

    @property
    def seconds(self) -> float:
        """Wall time of the training passes (validation excluded)."""
        return sum(record.seconds for record in self.history)


def seed_everything(seed: int) -> None:
    """Seeds Python's ``random``, numpy's global generator and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state dict (parameters and buffers), to restore later
    with ``model.load_state_dict``."""
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


@contextmanager
def _torch_settings(num_threads: int | None, deterministic: bool = False) -> Iterator[None]:
    """Sets torch's thread count (None: the thread policy's, :func:`training_threads`) and
    determinism for a block, then restores them."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    num_threads = training_threads(num_threads, torch_threads=old_threads)
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)


class Trainer:
    """Trains a model with weighted BCE (or ``loss_fn``), early stopping on validation AUC.

    Every :meth:`fit` appends its :class:`FitResult` to :attr:`fits`, so whoever owns the
    trainer can account for the training effort (epochs, optimiser steps, seconds) of all
    the models it trained.

    Args:
        config: default ``TrainConfig()``.
        loss_fn: default :func:`~graphsel.transfer.train.losses.weighted_bce_loss`.
    """

    def __init__(self, config: TrainConfig | None = None, loss_fn: LossFn | None = None) -> None:
        self.config = config or TrainConfig()
        self.loss_fn = loss_fn or weighted_bce_loss
        self.fits: list[FitResult] = []

    def make_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """:class:`~graphsel.transfer.train.optim.RowwiseSparseAdam` for sparse embedding
        tables, fused Adam for the rest (see the module doc).

        Raises:
            InputError: if the model has no trainable parameter.
        """
        sparse, dense = split_parameters(model)
        if not sparse and not dense:
            raise InputError("the model has no trainable parameter")
        config = self.config
        optimizers: list[torch.optim.Optimizer] = []
        if sparse:
            embedding_lr = config.lr if config.embedding_lr is None else config.embedding_lr
            optimizers.append(RowwiseSparseAdam(sparse, lr=embedding_lr))
        if dense:
            optimizers.append(dense_adam(dense, config.lr, config.weight_decay))
        return optimizers

    def fit(self, model: nn.Module, train: CTRDataset,
            valid: CTRDataset | None = None, *, keep_start: bool = False) -> FitResult:
        """Trains ``model`` in place on ``train``; with ``valid``, stops early and keeps the best.

        After each epoch the validation AUC is computed; the weights (parameters and
        buffers) of the best epoch so far are kept in memory, training stops once
        ``patience`` epochs in a row did not beat it, and the best weights are loaded back
        into ``model`` at the end.

        Every epoch visits ``train`` in a new seeded order (a last batch of a single row is
        skipped, as BatchNorm cannot normalise it).

        Args:
            model: ``forward(cat (B, F), num (B, M)) -> logits (B,)``.
            train: training samples (with their weights).
            valid: validation samples. Default None: train all ``epochs``, keep the last.
            keep_start: also score ``model`` as given before the first epoch, so that if no
                epoch beats it the starting weights come back (a fine-tuning step that never
                helps changes nothing; ``best_epoch`` is then -1). Needs ``valid``. Default
                False.

        Raises:
            InputError: empty training data, or validation labels of one class only.
        """
        config = self.config
        if len(train) == 0:
            raise InputError("no training samples")
        if valid is not None and len(torch.unique(valid.label)) < 2:
            raise InputError("validation labels hold one class only: AUC is undefined")
        if keep_start and valid is None:
            raise InputError("keep_start needs validation samples")
        result = FitResult()
        self.fits.append(result)
        best_state: dict[str, torch.Tensor] | None = None
        epochs_without_gain = 0
        with _torch_settings(config.num_threads, config.deterministic):
            seed_everything(config.seed)
            model.to(config.device)
            if keep_start:
                assert valid is not None  # checked above
                result.best_epoch = -1
                result.best_valid_auc = auc(valid.label.numpy(), self._predict(model, valid))
                best_state = state_copy(model)
            optimizers = self.make_optimizers(model)
            for epoch in range(config.epochs):
                record = self._train_epoch(model, train, optimizers, epoch)
                if valid is None:
                    result.history.append(record)
                    result.best_epoch = epoch
                    continue
                record = replace(record, valid_auc=auc(valid.label.numpy(),
                                                       self._predict(model, valid)))
                result.history.append(record)
                valid_auc = record.valid_auc
                assert valid_auc is not None  # scored just above
                if result.best_valid_auc is None or valid_auc > result.best_valid_auc:
                    result.best_epoch, result.best_valid_auc = epoch, record.valid_auc
                    best_state = state_copy(model)
                    epochs_without_gain = 0
                else:
                    epochs_without_gain += 1
                    if epochs_without_gain >= config.patience:
                        result.stopped_early = epoch + 1 < config.epochs
                        break
            else:
                result.reached_cap = valid is None or epochs_without_gain < config.patience
            if best_state is not None:
                model.load_state_dict(best_state)
        return result

    def _train_epoch(self, model: nn.Module, train: CTRDataset,
                     optimizers: list[torch.optim.Optimizer], epoch: int) -> EpochRecord:
        config = self.config
        model.train()
        num_batches = -(-len(train) // config.batch_size)
        batches = iter_batches(train, config.batch_size, shuffle=True, seed=config.seed,
                               epoch=epoch)
        loss_sum = torch.zeros((), dtype=torch.float64)
        rows_seen = steps = 0
        rank, size = distributed.world()
        start = time.perf_counter()
        with tqdm(total=num_batches, desc=f"epoch {epoch}", leave=False, unit="batch",
                  disable=(None if config.progress is None  # None: a terminal only
                                   else not config.progress)) as bar:
            for batch in batches:
                if len(batch) == 1 < len(train):
                    continue  # BatchNorm cannot normalise a last batch of a single row
                batch = batch.to(config.device)
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                if size == 1:
                    loss = self.loss_fn(model, batch)
                    loss.backward()
                else:  # this rank's shard; its loss scaled to its share of the batch's
                    part = distributed.shard(batch, rank, size)
                    loss = (self.loss_fn(model, part) * distributed.global_scale(part, batch)
                            if len(part) else torch.zeros(()))
                    if loss.requires_grad:
                        loss.backward()
                    distributed.all_reduce_gradients(model)
                for optimizer in optimizers:
                    optimizer.step()
                loss_sum += loss.detach().double().cpu() * len(batch)
                rows_seen += len(batch)
                steps += 1
                bar.update(1)
        if size > 1:
            # the ranks' scaled shard losses sum to the batches' losses: one sum per epoch
            dist.all_reduce(loss_sum)
            distributed.broadcast_buffers(model)  # e.g. BatchNorm statistics: rank 0's
        seconds = time.perf_counter() - start
        return EpochRecord(epoch, float(loss_sum) / max(rows_seen, 1), None, seconds,
                           rows_seen / max(seconds, 1e-9), steps, rows_seen)

    def _predict(self, model: nn.Module, data: CTRDataset) -> np.ndarray:
        return predict(model, data, batch_size=self.config.eval_batch_size,
                       device=self.config.device)


def fit(model: nn.Module, train: CTRDataset, valid: CTRDataset | None = None,
        config: TrainConfig | None = None) -> FitResult:
    """Shorthand for ``Trainer(config).fit(model, train, valid)``."""
    return Trainer(config).fit(model, train, valid)


def predict(model: nn.Module, data: CTRDataset, batch_size: int = 65536,
            device: str = "cpu", num_threads: int | None = None) -> np.ndarray:
    """Click probabilities ``(N,)`` float64 of ``data``'s rows, in order.

    Runs in eval mode (dropout off, BatchNorm running statistics) under
    ``torch.inference_mode``, then restores the model's previous mode.

    Args:
        model: ``forward(cat, num) -> logits``.
        data: the samples (labels and weights are ignored).
        batch_size: rows per forward pass. Default 65536.
        device: where ``model`` lives. Default ``"cpu"``.
        num_threads: torch threads for the call. Default None: the thread policy's
            (:func:`graphsel._runtime.training_threads`; one unless the user set a count).
    """
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with _torch_settings(num_threads), torch.inference_mode():
            for batch in iter_batches(data, batch_size):
                batch = batch.to(device)
                outputs.append(torch.sigmoid(model(batch.cat, batch.num)).double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outputs).numpy() if outputs else np.zeros(0)


def evaluate(model: nn.Module, data: CTRDataset, groups: np.ndarray | None = None,
             batch_size: int = 65536) -> dict[str, float]:
    """``{"auc", "logloss"}`` of ``model`` on ``data``, plus ``"gauc"`` when ``groups`` (the
    ``(N,)`` user of each row) is given."""
    p = predict(model, data, batch_size=batch_size)
    y = data.label.numpy()
    scores = {"auc": auc(y, p), "logloss": logloss(y, p)}
    if groups is not None:
        scores["gauc"] = gauc(y, p, groups)
    return scores


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Writes ``model.state_dict()`` to ``path`` atomically (temporary file, then rename).

    The file holds only tensors, so ``torch.load(path, weights_only=True)`` reads it.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Loads a :func:`save_checkpoint` file into ``model`` (strictly) and returns it.

    Raises:
        InputError: one line, if ``path`` does not exist, is not a whole checkpoint
            (truncated, corrupt, another format) or holds another model's weights.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable checkpoint ({reason})") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise InputError(f"{path}: the checkpoint does not fit this model ({reason})") from None
    return model
