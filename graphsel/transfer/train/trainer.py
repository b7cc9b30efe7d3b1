"""Training, prediction and checkpoints for any model whose forward is ``(cat, num) -> logits``.

The trainer owns what a model should not: the loss (weighted binary cross-entropy by
default, or any ``loss_fn(model, batch)``), the optimisers, seeding, early stopping and
checkpoints. The fast path on CPU:

* embedding tables built with ``sparse=True`` produce sparse gradients (only the rows of the
  batch) and are updated by SparseAdam (:class:`RowwiseSparseAdam`: torch's update, computed
  on gathered rows); a dense Adam over a table of a million rows would read and write every
  row at every step;
* every other trainable parameter is updated by ``Adam(fused=True)`` (``foreach`` where the
  fused kernel is unavailable);
* batches are sliced from index arrays (:func:`~graphsel.transfer.data.iter_batches`), not
  collated row by row.

Parameters with ``requires_grad=False`` (e.g. a frozen source tower) are never optimised.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from graphsel.data.io import atomic_path
from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch, CTRDataset, iter_batches
from graphsel.transfer.train.metrics import auc, gauc, logloss

__all__ = [
    "TrainConfig",
    "EpochRecord",
    "FitResult",
    "LossFn",
    "Trainer",
    "fit",
    "predict",
    "evaluate",
    "weighted_bce",
    "weighted_bce_loss",
    "split_parameters",
    "RowwiseSparseAdam",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
]


@dataclass(frozen=True)
class TrainConfig:
    """Options of :class:`Trainer`.

    Attributes:
        epochs: maximum passes over the training data. Default 10.
        batch_size: training batch size ``B``. Default 4096.
        lr: learning rate of the dense parameters (Adam). Default 1e-3.
        embedding_lr: learning rate of sparse embedding tables (SparseAdam). Default None:
            ``lr``.
        weight_decay: L2 penalty of the dense parameters (SparseAdam has none). Default 0.0.
        patience: stop after this many epochs without a better validation AUC. Default 2.
        seed: seeds torch, numpy and random at the start of :meth:`Trainer.fit` and the
            shuffling of every epoch. Default 0.
        num_threads: ``torch.set_num_threads`` during training and prediction, restored
            afterwards. Default None: leave torch's setting.
        eval_batch_size: batch size of prediction. Default 65536.
        progress: show a tqdm progress bar per epoch. Default True.
        deterministic: ``torch.use_deterministic_algorithms(True)`` during training (CPU
            training is already deterministic at a fixed thread count). Default False.
        device: where the model and batches live. Default ``"cpu"``.
    """

    epochs: int = 10
    batch_size: int = 4096
    lr: float = 1e-3
    embedding_lr: float | None = None
    weight_decay: float = 0.0
    patience: int = 2
    seed: int = 0
    num_threads: int | None = None
    eval_batch_size: int = 65536
    progress: bool = True
    deterministic: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_threads is not None and self.num_threads < 1:
            raise InputError(f"TrainConfig.num_threads must be >= 1, got {self.num_threads}")


@dataclass(frozen=True)
class EpochRecord:
    """What happened in one epoch.

    Attributes:
        epoch: 0-based epoch number.
        train_loss: mean of the batch losses, weighted by batch size.
        valid_auc: validation AUC after the epoch (None without validation data).
        seconds: wall time of the training pass (validation excluded).
        samples_per_s: training rows per second.
    """

    epoch: int
    train_loss: float
    valid_auc: float | None
    seconds: float
    samples_per_s: float


@dataclass
class FitResult:
    """The outcome of :meth:`Trainer.fit`.

    Attributes:
        history: one record per epoch run.
        best_epoch: the epoch whose weights the model holds now (the last one without
            validation data).
        best_valid_auc: its validation AUC (None without validation data).
        stopped_early: True if patience ran out before ``epochs``.
    """

    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    best_valid_auc: float | None = None
    stopped_early: bool = False


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
    bce = F.binary_cross_entropy_with_logits(logits, label, reduction="none")
    return (weight * bce).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)


def weighted_bce_loss(model: nn.Module, batch: CTRBatch) -> torch.Tensor:
    """The default :data:`LossFn`: :func:`weighted_bce` of ``model(batch.cat, batch.num)``."""
    return weighted_bce(model(batch.cat, batch.num), batch.label, batch.weight)


def seed_everything(seed: int) -> None:
    """Seeds Python's ``random``, numpy's global generator and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(sparse, dense)`` trainable parameters.

    ``sparse`` are the weights of ``nn.Embedding`` / ``nn.EmbeddingBag`` modules built with
    ``sparse=True``; ``dense`` is everything else. Frozen parameters are in neither.
    """
    sparse_ids = {id(module.weight) for module in model.modules()
                  if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse}
    sparse, dense = [], []
    for parameter in model.parameters():  # parameters() already skips shared duplicates
        if parameter.requires_grad:
            (sparse if id(parameter) in sparse_ids else dense).append(parameter)
    return sparse, dense


def _dense_adam(params: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Adam:
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):  # no fused kernel for this device / dtype / version
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


class RowwiseSparseAdam(torch.optim.SparseAdam):
    """``torch.optim.SparseAdam``, computed on the rows of the batch.

    The update, its options and its state (``step``, ``exp_avg``, ``exp_avg_sq``) are
    SparseAdam's, operation for operation, so the weights are the same bit for bit (the tests
    compare the two). Only the bookkeeping differs, and it was most of the step's time:
    SparseAdam coalesces the gradient by sorting (index, row) pairs, then moves the moments
    through sparse-tensor arithmetic (``sparse_mask``, dense += sparse, row by row). Here
    duplicate rows are summed by one ``index_add_``, and the parameter's and both moments'
    rows are read once (``index_select``) and written once (``index_copy_``). On the training
    benchmark (106k looked-up rows per batch, 68k distinct) this takes the embedding update
    from about 40 ms to 29 ms of CPU time per step (one thread), the whole fast step from
    about 75 ms to 63 ms.

    Every parameter must be at least 2-D with row-sparse gradients (``sparse_dim() == 1``),
    which is what ``nn.Embedding`` / ``nn.EmbeddingBag`` with ``sparse=True`` produce.
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a gradient.

        Raises:
            RuntimeError: for a dense gradient, or a sparse one that is not row-sparse.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param,
                                                           memory_format=torch.preserve_format)
                state["step"] += 1  # as in SparseAdam, even when the gradient is empty
                rows, grad = _summed_rows(param.grad)
                if rows.numel():
                    _sparse_adam_rows(param, state, rows, -grad if group["maximize"] else grad,
                                      group)
        return loss


def _summed_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows (U,), values (U, D))`` of a row-sparse gradient, duplicate rows summed in
    index order (the sums ``coalesce`` gives, without its sort of every value)."""
    if not grad.is_sparse or grad.sparse_dim() != 1 or grad.dense_dim() < 1:
        raise RuntimeError("RowwiseSparseAdam needs row-sparse gradients (nn.Embedding with "
                           "sparse=True); use Adam for dense parameters")
    indices, values = grad._indices()[0], grad._values()
    if grad.is_coalesced():
        return indices, values
    rows, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    summed = values.new_zeros((rows.numel(), *values.shape[1:]))
    return rows, summed.index_add_(0, inverse, values)


def _sparse_adam_rows(param: torch.Tensor, state: dict, rows: torch.Tensor, grad: torch.Tensor,
                      group: dict) -> None:
    """SparseAdam's update (``torch.optim._functional.sparse_adam``, same operations in the
    same order) of ``param``'s ``rows`` given their summed gradient ``grad``."""
    beta1, beta2 = group["betas"]
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    # old <- b * old + (1 - b) * new, written old + (1 - b) * (new - old) as SparseAdam does
    old_exp_avg = exp_avg.index_select(0, rows)
    new_exp_avg = grad.sub(old_exp_avg).mul_(1 - beta1).add_(old_exp_avg)
    old_exp_avg_sq = exp_avg_sq.index_select(0, rows)
    new_exp_avg_sq = grad.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2).add_(old_exp_avg_sq)
    exp_avg.index_copy_(0, rows, new_exp_avg)
    exp_avg_sq.index_copy_(0, rows, new_exp_avg_sq)
    denom = new_exp_avg_sq.sqrt_().add_(group["eps"])
    step = state["step"]
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = float(group["lr"]) * math.sqrt(bias_correction2) / bias_correction1
    new_rows = param.index_select(0, rows).add_(-step_size * new_exp_avg.div_(denom))
    param.index_copy_(0, rows, new_rows)


@contextmanager
def _torch_settings(num_threads: int | None, deterministic: bool = False) -> Iterator[None]:
    """Sets torch's thread count (and determinism) for a block, then restores them."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
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

    Args:
        config: default ``TrainConfig()``.
        loss_fn: default :func:`weighted_bce_loss`.
    """

    def __init__(self, config: TrainConfig | None = None, loss_fn: LossFn | None = None) -> None:
        self.config = config or TrainConfig()
        self.loss_fn = loss_fn or weighted_bce_loss

    def make_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        """:class:`RowwiseSparseAdam` for sparse embedding tables, fused Adam for the rest (see
        the module doc).

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
            optimizers.append(_dense_adam(dense, config.lr, config.weight_decay))
        return optimizers

    def fit(self, model: nn.Module, train: CTRDataset,
            valid: CTRDataset | None = None) -> FitResult:
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

        Raises:
            InputError: empty training data, or validation labels of one class only.
        """
        config = self.config
        if len(train) == 0:
            raise InputError("no training samples")
        if valid is not None and len(torch.unique(valid.label)) < 2:
            raise InputError("validation labels hold one class only: AUC is undefined")
        result = FitResult()
        best_state: dict[str, torch.Tensor] | None = None
        epochs_without_gain = 0
        with _torch_settings(config.num_threads, config.deterministic):
            seed_everything(config.seed)
            model.to(config.device)
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
                if result.best_valid_auc is None or record.valid_auc > result.best_valid_auc:
                    result.best_epoch, result.best_valid_auc = epoch, record.valid_auc
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    epochs_without_gain = 0
                else:
                    epochs_without_gain += 1
                    if epochs_without_gain >= config.patience:
                        result.stopped_early = epoch + 1 < config.epochs
                        break
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
        rows_seen = 0
        start = time.perf_counter()
        with tqdm(total=num_batches, desc=f"epoch {epoch}", disable=not config.progress,
                  leave=False, unit="batch") as bar:
            for batch in batches:
                if len(batch) == 1 < len(train):
                    continue  # BatchNorm cannot normalise a last batch of a single row
                batch = batch.to(config.device)
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss = self.loss_fn(model, batch)
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
                loss_sum += loss.detach().double().cpu() * len(batch)
                rows_seen += len(batch)
                bar.update(1)
        seconds = time.perf_counter() - start
        return EpochRecord(epoch, float(loss_sum) / max(rows_seen, 1), None, seconds,
                           rows_seen / max(seconds, 1e-9))

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
        num_threads: torch threads for the call. Default None: leave torch's setting.
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
        InputError: if ``path`` does not exist.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such checkpoint file")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model
