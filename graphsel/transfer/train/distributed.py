"""Data-parallel training on CPU processes (torch.distributed with gloo).

Every process (rank) runs the same program on the same data (selection, splits, models and
seeds are deterministic, so they agree without communication); only the training step is
shared. Inside :meth:`~graphsel.transfer.train.trainer.Trainer.fit`, when a process group of
more than one rank is active, each batch is cut into ``world_size`` contiguous shards, rank
``r`` computes the loss of shard ``r``, and the gradients are summed over the ranks before the
optimisers step, so every rank applies the same update and the models stay identical.

The one subtle part is the normalisation of the weighted loss. The trainer's losses are
per-sample weighted means, ``sum_i w_i l_i / sum_i w_i`` over the batch. Summing each rank's
weighted mean over its own shard would weight shards, not samples, and the model drifts
away from one-process training (by 0.058 in the parameters on an early probe). Here rank
``r``'s loss is scaled by ``W_r / W`` (its shard's weight sum over the whole batch's, which
every rank knows because it holds the whole batch), so the summed gradient is exactly the
gradient of the batch's weighted mean: :func:`global_scale`. Losses of that form (weighted
BCE and the distillation terms of :mod:`~graphsel.transfer.train.losses`) give one-process
results up to floating-point summation order.

What is not shared: BatchNorm computes its batch statistics on each shard (torch's
``SyncBatchNorm`` has no CPU kernel); the running statistics of rank 0 are broadcast after
every epoch (:func:`broadcast_buffers`) so that validation, early stopping and the kept
weights agree on every rank. Prediction runs whole on every rank (the same numbers
everywhere); selection runs on every rank too. Start several ranks with :func:`spawn`
(``graphsel run --nproc N``) or with ``torchrun`` (:func:`init_from_env`).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch

__all__ = [
    "world",
    "shard_bounds",
    "shard",
    "global_scale",
    "all_reduce_gradients",
    "broadcast_buffers",
    "spawn",
    "init_from_env",
]

_TIMEOUT = timedelta(minutes=30)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the active process group; ``(0, 1)`` without one.

    >>> world()
    (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous shard of ``n`` rows (sizes differ by at
    most one, the first ``n % size`` shards one row longer, as ``numpy.array_split``).

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    >>> shard_bounds(1, 1, 2)
    (1, 1)
    """
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard(batch: CTRBatch, rank: int, size: int) -> CTRBatch:
    """Rank ``rank``'s rows of ``batch`` (views, no copy)."""
    start, stop = shard_bounds(len(batch), rank, size)
    return CTRBatch(batch.cat[start:stop], batch.num[start:stop], batch.label[start:stop],
                    batch.weight[start:stop])


def global_scale(part: CTRBatch, batch: CTRBatch) -> torch.Tensor:
    """``W_part / W_batch``: the factor that turns ``part``'s weighted-mean loss into its share
    of ``batch``'s weighted-mean loss (0 when the batch weighs nothing).

    >>> from graphsel.transfer.data import CTRDataset, iter_batches
    >>> data = CTRDataset(torch.zeros(4, 1), None, torch.ones(4), torch.tensor([1., 1., 2., 4.]))
    >>> batch = next(iter_batches(data, 4))
    >>> [round(global_scale(shard(batch, r, 2), batch).item(), 4) for r in range(2)]
    [0.25, 0.75]
    """
    total = batch.weight.sum()
    return part.weight.sum() / total.clamp_min(torch.finfo(total.dtype).tiny)


def all_reduce_gradients(model: nn.Module) -> None:
    """Sums every trainable parameter's gradient over the ranks, in place (sparse embedding
    gradients stay sparse; a rank without a gradient for a parameter contributes zeros, so
    every rank makes the same calls in the same order)."""
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if parameter.grad is None:
            sparse = _has_sparse_grad(model, parameter)
            parameter.grad = (torch.sparse_coo_tensor(
                torch.zeros((1, 0), dtype=torch.int64),
                parameter.new_zeros((0, *parameter.shape[1:])), parameter.shape)
                if sparse else torch.zeros_like(parameter))
        dist.all_reduce(parameter.grad)


def _has_sparse_grad(model: nn.Module, parameter: nn.Parameter) -> bool:
    return any(isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse
               and module.weight is parameter for module in model.modules())


def broadcast_buffers(model: nn.Module, src: int = 0) -> None:
    """Copies rank ``src``'s buffers (e.g. BatchNorm running statistics) to every rank."""
    for buffer in model.buffers():
        dist.broadcast(buffer, src)


def init_from_env() -> bool:
    """Joins the process group that ``torchrun`` describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), with gloo.

    Returns:
        True if a group of more than one rank was joined (or was already active); False
        when the environment names no such group.
    """
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    dist.init_process_group("gloo", timeout=_TIMEOUT)
    return True


def spawn(fn: Callable[..., Any], nproc: int, *args: Any, threads: int | None = None) -> Any:
    """Runs ``fn(*args)`` on ``nproc`` new processes joined in one gloo group; returns rank
    0's return value.

    Every rank calls ``fn(*args)`` (so ``fn`` and ``args`` must be picklable); the processes
    are started with the ``spawn`` method and rendezvous through a file in a temporary folder.
    If a rank raises, the others are stopped and the error is raised here.

    Args:
        fn: the program every rank runs.
        nproc: number of ranks, >= 1 (1 still runs ``fn`` in a child process).
        threads: torch threads per rank. Default None: the machine's cores divided by
            ``nproc`` (at least 1).

    Raises:
        InputError: if ``nproc < 1``.
    """
    if nproc < 1:
        raise InputError(f"--nproc must be >= 1, got {nproc}")
    threads = threads or max(1, (os.cpu_count() or 1) // nproc)
    with tempfile.TemporaryDirectory(prefix="graphsel-ddp-") as folder:
        try:
            torch.multiprocessing.spawn(_worker, args=(nproc, folder, threads, fn, args),
                                        nprocs=nproc, join=True)
        except torch.multiprocessing.ProcessExitedException:
            # a rank killed by a signal while its interpreter shut down, after every rank had
            # finished its work and left the group, changes nothing; before that, it is an error
            if not all(os.path.exists(os.path.join(folder, f"done.{rank}"))
                       for rank in range(nproc)):
                raise
        with open(os.path.join(folder, "result.pkl"), "rb") as handle:
            return pickle.load(handle)


def _worker(rank: int, nproc: int, folder: str, threads: int, fn: Callable[..., Any],
            args: tuple[Any, ...]) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method="file://" + os.path.join(folder, "store"),
                            rank=rank, world_size=nproc, timeout=_TIMEOUT)
    try:
        result = fn(*args)
        if rank == 0:
            with open(os.path.join(folder, "result.pkl"), "wb") as handle:
                pickle.dump(result, handle)
        dist.barrier()  # no rank tears the group down while another still uses it
    finally:
        dist.destroy_process_group()
    open(os.path.join(folder, f"done.{rank}"), "w").close()
