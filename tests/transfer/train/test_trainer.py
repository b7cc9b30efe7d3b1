"""Trainer: weighted loss, optimisers, early stopping, seeding, prediction, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch, CTRDataset
from graphsel.transfer.models.base import ModelConfig, build_base_model
from graphsel.transfer.train.losses import weighted_bce, weighted_bce_loss
from graphsel.transfer.train.metrics import auc, logloss
from graphsel.transfer.train.optim import RowwiseSparseAdam, split_parameters
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import (
    Trainer,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
)

TINY = ModelConfig(embed_dim=4, hidden=(8, 4))
QUIET = TrainConfig(epochs=3, batch_size=16, lr=0.05, progress=False)


def _separable(n: int, seed: int) -> CTRDataset:
    """Field 0's value decides the label (even: 0, odd: 1); field 1 is noise."""
    rng = np.random.default_rng(seed)
    first = rng.integers(1, 9, n)
    cat = np.stack([first, rng.integers(1, 5, n)], axis=1)
    return CTRDataset(cat, rng.normal(size=(n, 1)), first % 2)


def _model(seed: int = 0, config: ModelConfig = TINY) -> nn.Module:
    torch.manual_seed(seed)
    return build_base_model([9, 5], num_numeric=1, config=config)


# -- the loss ---------------------------------------------------------------------------------


def test_weighted_bce_by_hand():
    # bce(0, y=1) = ln 2; bce(ln 3, y=0) = -ln(1 - 3/4) = ln 4 = 2 ln 2
    logits, label = torch.tensor([0.0, math.log(3.0)]), torch.tensor([1.0, 0.0])
    loss = weighted_bce(logits, label, torch.tensor([1.0, 3.0]))
    assert loss.item() == pytest.approx((1 * math.log(2) + 3 * 2 * math.log(2)) / 4, rel=1e-6)
    unweighted = weighted_bce(logits, label, torch.ones(2))
    assert unweighted.item() == pytest.approx(1.5 * math.log(2), rel=1e-6)


def test_weighted_bce_laws():
    torch.manual_seed(0)
    logits, label = torch.randn(6), torch.tensor([1.0, 0, 1, 1, 0, 0])
    weight = torch.tensor([0.5, 2.0, 1.0, 0.0, 3.0, 1.0])
    loss = weighted_bce(logits, label, weight)
    # all ones: the mean BCE
    torch.testing.assert_close(weighted_bce(logits, label, torch.ones(6)),
                               F.binary_cross_entropy_with_logits(logits, label))
    # scale-free
    torch.testing.assert_close(weighted_bce(logits, label, 7 * weight), loss)
    # weight 0 removes a row; weight 2 equals the row twice
    keep = weight > 0
    torch.testing.assert_close(weighted_bce(logits[keep], label[keep], weight[keep]), loss)
    torch.testing.assert_close(
        weighted_bce(logits[[1, 1, 2]], label[[1, 1, 2]], torch.ones(3)),
        weighted_bce(logits[[1, 2]], label[[1, 2]], torch.tensor([2.0, 1.0])))
    assert weighted_bce(logits, label, torch.zeros(6)).item() == 0.0


def test_default_loss_fn_uses_batch_weights():
    model = _model()
    data = _separable(8, 0).with_weight(np.arange(8.0))
    batch = data.batch(slice(None))
    expected = weighted_bce(model(batch.cat, batch.num), batch.label, batch.weight)
    torch.testing.assert_close(weighted_bce_loss(model, batch), expected)
    assert Trainer().loss_fn is weighted_bce_loss


def test_zero_weight_rows_do_not_change_training():
    """One batch holds every row, so extra rows of weight 0 leave every update unchanged."""
    data = _separable(32, 0)
    junk = _separable(16, 1).with_weight(np.zeros(16))
    config = TrainConfig(epochs=2, batch_size=64, lr=0.05, progress=False)
    plain, padded = _model(), _model()
    fit(plain, data, config=config)
    fit(padded, CTRDataset.concat([data, junk]), config=config)
    for (name, a), b in zip(plain.state_dict().items(), padded.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


# -- optimisers -------------------------------------------------------------------------------


def test_sparse_table_gets_sparse_adam_the_rest_fused_adam():
    model = _model()
    sparse, dense = split_parameters(model)
    assert [p is model.embedding.table.weight for p in sparse] == [True]
    assert len(dense) == len(list(model.parameters())) - 1
    optimizers = Trainer(QUIET).make_optimizers(model)
    assert [type(o) for o in optimizers] == [RowwiseSparseAdam, torch.optim.Adam]
    assert isinstance(optimizers[0], torch.optim.SparseAdam)
    assert optimizers[1].defaults["fused"] or optimizers[1].defaults["foreach"]


def _sparse_adam_pair(maximize: bool = False, lr: float = 0.1) -> tuple[nn.Embedding, ...]:
    """Two equal sparse tables, one per optimiser (torch's SparseAdam first)."""
    torch.manual_seed(0)
    tables = [nn.Embedding(6, 3, sparse=True) for _ in range(2)]
    tables[1].load_state_dict(tables[0].state_dict())
    optimizers = [torch.optim.SparseAdam(tables[0].parameters(), lr=lr, maximize=maximize),
                  RowwiseSparseAdam(tables[1].parameters(), lr=lr, maximize=maximize)]
    return tables, optimizers


@pytest.mark.parametrize("maximize", [False, True])
def test_rowwise_sparse_adam_equals_torch_sparse_adam_bit_for_bit(maximize):
    tables, optimizers = _sparse_adam_pair(maximize)
    # duplicates within a batch, rows never seen, and rows revisited after a pause
    batches = [[0, 2, 2, 5, 0, 2], [1, 1], [2, 0, 4], [], [5, 5, 5, 3]]
    for rows in batches:
        for table, optimizer in zip(tables, optimizers):
            optimizer.zero_grad(set_to_none=True)
            out = table(torch.tensor(rows, dtype=torch.int64))
            (out * torch.arange(1.0, out.numel() + 1).view_as(out)).sin().sum().backward()
            optimizer.step()
        assert torch.equal(tables[0].weight, tables[1].weight)
    states = [optimizer.state[table.weight] for table, optimizer in zip(tables, optimizers)]
    assert states[0]["step"] == states[1]["step"] == len(batches)
    assert torch.equal(states[0]["exp_avg"], states[1]["exp_avg"])
    assert torch.equal(states[0]["exp_avg_sq"], states[1]["exp_avg_sq"])


def test_rowwise_sparse_adam_by_hand_and_only_touched_rows():
    table = nn.Embedding(4, 2, sparse=True)
    with torch.no_grad():
        table.weight.zero_()
    optimizer = RowwiseSparseAdam(table.parameters(), lr=0.1)
    table(torch.tensor([1, 1, 3])).sum().backward()  # row 1's gradient is 2, row 3's is 1
    optimizer.step()
    # first step: m = 0.1 g, v = 0.001 g^2, step = lr * sqrt(0.001) / 0.1 -> -lr * sign(g)
    expected = torch.tensor([[0.0, 0.0], [-0.1, -0.1], [0.0, 0.0], [-0.1, -0.1]])
    torch.testing.assert_close(table.weight.detach(), expected)
    assert torch.equal(optimizer.state[table.weight]["exp_avg"][[0, 2]], torch.zeros(2, 2))


def test_rowwise_sparse_adam_rejects_dense_gradients():
    weight = nn.Parameter(torch.zeros(3, 2))
    weight.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="row-sparse"):
        RowwiseSparseAdam([weight]).step()


def test_dense_table_and_frozen_parameters():
    model = _model(config=ModelConfig(embed_dim=4, hidden=(8,), sparse_embedding=False))
    model.mlp.requires_grad_(False)
    sparse, dense = split_parameters(model)
    assert sparse == [] and {id(p) for p in dense} == {
        id(model.embedding.table.weight), *map(id, model.head.parameters())}
    before = model.mlp.layers[0].linear.weight.clone()
    fit(model, _separable(32, 0), config=QUIET)
    assert torch.equal(model.mlp.layers[0].linear.weight, before)
    with pytest.raises(InputError, match="no trainable parameter"):
        Trainer().make_optimizers(model.requires_grad_(False))


# -- the training loop ------------------------------------------------------------------------


def test_learns_a_separable_task():
    train, valid = _separable(256, 0), _separable(128, 1)
    model = _model()
    result = fit(model, train, valid, TrainConfig(epochs=5, batch_size=32, lr=0.05,
                                                  progress=False))
    assert result.best_valid_auc > 0.95
    assert auc(valid.label.numpy(), predict(model, valid)) == pytest.approx(
        result.best_valid_auc, abs=1e-12)
    assert len(result.history) >= 1 and result.history[0].samples_per_s > 0


def test_same_seed_same_weights():
    train = _separable(64, 0)
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, progress=False, seed=3,
                         num_threads=1, deterministic=True)
    first, second = _model(), _model()
    fit(first, train, config=config)
    fit(second, train, config=config)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    third = _model()
    fit(third, train, config=TrainConfig(epochs=2, batch_size=16, lr=0.05, progress=False,
                                         seed=4))
    assert not torch.equal(third.head.linear.weight, first.head.linear.weight)


def test_thread_count_restored_after_fit():
    before = torch.get_num_threads()
    fit(_model(), _separable(16, 0), config=TrainConfig(epochs=1, num_threads=1,
                                                        progress=False))
    assert torch.get_num_threads() == before


class Scripted(nn.Module):
    """``logits = num @ weight``; its loss sets ``weight`` to the next scripted value and has
    zero gradient, so Adam leaves it there: the validation AUC of every epoch is known."""

    def __init__(self, script: list[list[float]]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.script = iter(script)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        return num @ self.weight


def scripted_loss(model: Scripted, batch: CTRBatch) -> torch.Tensor:
    with torch.no_grad():
        model.weight.copy_(torch.tensor(next(model.script)))
    return (model.weight * 0.0).sum()


def test_early_stopping_restores_the_best_epoch():
    valid = CTRDataset(np.zeros((4, 1)), np.array([[1., 1.], [3., 2.], [2., 3.], [4., 4.]]),
                       np.array([0, 0, 1, 1]))
    # AUC of feature 0: 3 of 4 pairs ordered; of feature 1: all; of -feature 0: 1 of 4
    assert auc(valid.label.numpy(), valid.num[:, 0].numpy()) == 0.75
    assert auc(valid.label.numpy(), valid.num[:, 1].numpy()) == 1.0
    script = [[1, 0], [0, 1], [1, 0], [-1, 0], [0, 1], [0, 1]]
    model = Scripted(script)
    config = TrainConfig(epochs=6, batch_size=8, patience=2, progress=False)
    result = Trainer(config, loss_fn=scripted_loss).fit(model, valid, valid)
    assert [r.valid_auc for r in result.history] == [0.75, 1.0, 0.75, 0.25]
    assert result.best_epoch == 1 and result.best_valid_auc == 1.0 and result.stopped_early
    assert model.weight.tolist() == [0.0, 1.0]


def test_without_validation_all_epochs_run_and_last_is_kept():
    model = Scripted([[1, 0], [0, 1], [-1, 0]])
    data = CTRDataset(np.zeros((2, 1)), np.eye(2), np.array([0, 1]))
    result = Trainer(TrainConfig(epochs=3, progress=False), scripted_loss).fit(model, data)
    assert result.best_epoch == 2 and result.best_valid_auc is None
    assert not result.stopped_early and model.weight.tolist() == [-1.0, 0.0]


def test_fit_rejects_bad_data():
    with pytest.raises(InputError, match="one class"):
        fit(_model(), _separable(8, 0), _separable(8, 0).subset(np.array([0])))
    with pytest.raises(InputError, match="no training samples"):
        fit(_model(), _separable(8, 0).subset(np.array([], dtype=np.int64)))
    with pytest.raises(InputError, match="patience"):
        TrainConfig(patience=0)


# -- prediction and checkpoints ---------------------------------------------------------------


def test_predict_is_sigmoid_of_logits_in_row_order():
    model, data = _model(), _separable(10, 0)
    model.train()
    p = predict(model, data, batch_size=3)
    with torch.no_grad():
        expected = torch.sigmoid(model(data.cat, data.num)).double().numpy()
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    assert p.shape == (10,) and model.training
    scores = evaluate(model, data, groups=np.arange(10) % 2)
    assert scores["auc"] == auc(data.label.numpy(), p)
    assert scores["logloss"] == logloss(data.label.numpy(), p)
    assert set(scores) == {"auc", "logloss", "gauc"}


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = _model()
    path = tmp_path / "model.pt"
    save_checkpoint(model, path)
    state = torch.load(path, weights_only=True)
    assert state.keys() == model.state_dict().keys()
    other = load_checkpoint(_model(seed=1), path)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(_model(), path)
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_model(seed=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    with pytest.raises(InputError, match="no such checkpoint"):
        load_checkpoint(_model(), tmp_path / "missing.pt")


def test_a_truncated_or_foreign_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(_model(seed=1), path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"model\.pt: not a readable checkpoint \(") as error:
        load_checkpoint(_model(), path)
    assert "\n" not in str(error.value)
    other = build_base_model([6, 3], 1, TINY)
    save_checkpoint(other, path)
    with pytest.raises(InputError, match=r"model\.pt: the checkpoint does not fit this model") \
            as error:
        load_checkpoint(_model(), path)
    assert "\n" not in str(error.value)


def test_batch_norm_model_trains_when_the_last_batch_has_one_row():
    model = _model(config=ModelConfig(embed_dim=4, hidden=(8,), batch_norm=True))
    result = fit(model, _separable(17, 0), config=TrainConfig(epochs=1, batch_size=8,
                                                              progress=False))
    assert len(result.history) == 1 and math.isfinite(result.history[0].train_loss)


def test_fit_counts_steps_rows_and_whether_the_cap_ended_it():
    torch.manual_seed(0)
    train = CTRDataset(np.arange(10).reshape(10, 1) % 3, None, np.arange(10) % 2)
    model = build_base_model([3], 0, ModelConfig(embed_dim=2, hidden=(4,)))
    trainer = Trainer(TrainConfig(epochs=2, batch_size=4, progress=False))
    capped = trainer.fit(model, train)  # no validation: the cap ends it
    assert [r.steps for r in capped.history] == [3, 3] and capped.steps == 6  # 4 + 4 + 2
    assert capped.rows == 20 and capped.epochs == 2 and capped.reached_cap
    valid = CTRDataset(np.array([[0], [1], [2], [0]]), None, np.array([0, 1, 0, 1]))
    stopped = Trainer(TrainConfig(epochs=50, patience=1, batch_size=4, progress=False,
                                  lr=1e-9)).fit(model, train, valid)
    assert stopped.stopped_early and not stopped.reached_cap and stopped.epochs == 2
    assert trainer.fits == [capped]
