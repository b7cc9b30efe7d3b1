"""Data-parallel training: sharding, the global loss normalisation, and two real ranks (gloo)
giving one process's weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch, CTRDataset, iter_batches
from graphsel.transfer.models.base import ModelConfig, build_base_model
from graphsel.transfer.train import distributed
from graphsel.transfer.train.losses import weighted_bce, weighted_bce_loss
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import Trainer


def test_shards_cover_the_batch_once_in_order():
    for n in range(0, 9):
        for size in (1, 2, 3):
            bounds = [distributed.shard_bounds(n, rank, size) for rank in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_scaled_shard_losses_sum_to_the_batch_loss():
    # the rule that makes two ranks train as one: sum_r scale_r * loss(shard_r) = loss(batch)
    torch.manual_seed(0)
    logits, label = torch.randn(7), (torch.rand(7) > 0.5).float()
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.0, 1.0, 4.0])
    batch = CTRBatch(torch.zeros(7, 1, dtype=torch.int64), torch.zeros(7, 0), label, weight)
    whole = weighted_bce(logits, label, weight)
    total = torch.zeros(())
    for rank in range(3):
        start, stop = distributed.shard_bounds(7, rank, 3)
        part = distributed.shard(batch, rank, 3)
        total += (weighted_bce(logits[start:stop], part.label, part.weight)
                  * distributed.global_scale(part, batch))
    assert total.item() == pytest.approx(whole.item(), rel=1e-6)
    # the per-rank mean without the scale (what a naive DDP loss does) is another number
    naive = sum(weighted_bce(logits[a:b], label[a:b], weight[a:b])
                for a, b in (distributed.shard_bounds(7, r, 3) for r in range(3))) / 3
    assert abs(naive.item() - whole.item()) > 1e-3


def test_one_process_has_no_group():
    assert distributed.world() == (0, 1)
    with pytest.raises(InputError, match="--nproc must be >= 1, got 0"):
        distributed.spawn(_fit, 0)


class _CountingLoss:
    """The default loss, remembering the size of every batch it saw (picklable)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, model: torch.nn.Module, batch: CTRBatch) -> torch.Tensor:
        self.sizes.append(len(batch))
        return weighted_bce_loss(model, batch)


def _fit() -> tuple[dict[str, np.ndarray], list[int], list[float]]:
    """A seeded fit with sparse embeddings and uneven weights; runs on every rank."""
    rng = np.random.default_rng(0)
    n = 300
    first = rng.integers(1, 30, n)
    cat = np.stack([first, rng.integers(1, 7, n)], axis=1)
    data = CTRDataset(cat, rng.normal(size=(n, 2)), (first % 3 == 0).astype(int),
                      rng.uniform(0.1, 5.0, n))
    torch.manual_seed(0)
    model = build_base_model([30, 7], num_numeric=2,
                             config=ModelConfig(embed_dim=4, hidden=(8,)))
    loss = _CountingLoss()
    result = Trainer(TrainConfig(epochs=3, batch_size=64, lr=0.05, progress=False,
                                 num_threads=1), loss).fit(model, data)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return state, loss.sizes, [record.train_loss for record in result.history]


def test_two_ranks_train_as_one_process():
    one_state, one_sizes, one_losses = _fit()
    two_state, two_sizes, two_losses = distributed.spawn(_fit, 2, threads=1)
    # rank 0 saw the first half of every batch (64 -> 32; the last batch of 300 % 64 = 44
    # rows -> 22), and its weights equal one process's
    assert one_sizes == [64, 64, 64, 64, 44] * 3
    assert two_sizes == [32, 32, 32, 32, 22] * 3
    assert one_state.keys() == two_state.keys()
    for name in one_state:
        np.testing.assert_allclose(two_state[name], one_state[name], atol=1e-5, err_msg=name)
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)


def test_batches_are_the_same_on_every_rank():
    # the ranks agree on each batch without communication because the order is seeded
    data = CTRDataset(np.arange(10).reshape(10, 1), None, np.arange(10) % 2)
    first = [b.cat[:, 0].tolist() for b in iter_batches(data, 4, shuffle=True, seed=3, epoch=1)]
    again = [b.cat[:, 0].tolist() for b in iter_batches(data, 4, shuffle=True, seed=3, epoch=1)]
    assert first == again
