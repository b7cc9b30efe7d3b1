"""CTRDataset and iter_batches: exact rows, seeded shuffling, DataLoader compatibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.transfer.data import CTRBatch, CTRDataset, iter_batches
from graphsel.transfer.features import FeatureEncoder


def _dataset(n: int = 10) -> CTRDataset:
    cat = np.stack([np.arange(n), np.arange(n) % 3], axis=1)
    num = np.arange(n, dtype=np.float32)[:, None] / 10
    return CTRDataset(cat, num, np.arange(n) % 2, np.linspace(0.5, 1.0, n))


def _rows(batch: CTRBatch) -> list[int]:
    return batch.cat[:, 0].tolist()


def test_item_is_a_dict_and_weights_default_to_one():
    data = CTRDataset(np.array([[1, 2], [3, 4]]), None, np.array([0, 1]))
    assert len(data) == 2 and data.num_fields == 2 and data.num_numeric == 0
    item = data[1]
    assert item["cat"].tolist() == [3, 4] and item["label"].item() == 1.0
    assert item["weight"].item() == 1.0 and item["num"].shape == (0,)
    assert data.cat.dtype == torch.int64 and data.label.dtype == torch.float32


def test_torch_dataloader_collates_it():
    loader = torch.utils.data.DataLoader(_dataset(), batch_size=4)
    first = next(iter(loader))
    assert first["cat"].shape == (4, 2) and first["num"].shape == (4, 1)
    assert first["label"].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_batches_in_order_without_shuffle():
    data = _dataset(10)
    batches = list(iter_batches(data, 4))
    assert [_rows(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[1].weight.tolist() == data.weight[4:8].tolist()
    assert [_rows(b) for b in iter_batches(data, 4, drop_last=True)] == [[0, 1, 2, 3],
                                                                         [4, 5, 6, 7]]


def test_shuffle_is_seeded_per_epoch_and_a_permutation():
    data = _dataset(10)

    def order(seed, epoch):
        return sum((_rows(b) for b in iter_batches(data, 3, shuffle=True, seed=seed,
                                                   epoch=epoch)), [])

    assert sorted(order(0, 0)) == list(range(10))
    assert order(0, 0) == order(0, 0)
    assert order(0, 1) != order(0, 0)
    assert order(1, 0) != order(0, 0)


def test_shuffled_batches_keep_columns_aligned():
    data = _dataset(10)
    for batch in iter_batches(data, 3, shuffle=True, seed=5):
        rows = batch.cat[:, 0]
        assert torch.equal(batch.num[:, 0], data.num[rows, 0])
        assert torch.equal(batch.label, data.label[rows])
        assert torch.equal(batch.weight, data.weight[rows])


def test_subset_concat_and_with_weight():
    data = _dataset(6)
    assert _rows(data.batch(slice(None))) == list(range(6))
    mask = np.array([True, False, True, False, False, True])
    assert data.subset(mask).cat[:, 0].tolist() == [0, 2, 5]
    assert data.subset(np.array([4, 1])).cat[:, 0].tolist() == [4, 1]
    both = CTRDataset.concat([data.subset(np.array([1])), data.subset(np.array([3, 0]))])
    assert both.cat[:, 0].tolist() == [1, 3, 0]
    assert both.weight.tolist() == data.weight[[1, 3, 0]].tolist()
    assert data.with_weight(np.full(6, 2.0)).weight.tolist() == [2.0] * 6


def test_from_log_uses_the_encoder_and_labels():
    log = InteractionLog.from_columns([1, 2, 1], [5, 5, 6], [0, 1, 2], [1, 0, 0], "t")
    data = CTRDataset.from_log(log, FeatureEncoder().fit(log), weight=np.array([1, 2, 3]))
    assert data.cat.tolist() == [[1, 1], [2, 1], [1, 2]]
    assert data.label.tolist() == [1.0, 0.0, 0.0]
    assert data.weight.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("label, weight, message", [
    ([0, 1, 2], None, "label must hold only 0 and 1"),
    ([0, 1, 1], [1.0, -1.0, 1.0], "weight must be finite"),
    ([0, 1, 1], [1.0, float("nan"), 1.0], "weight must be finite"),
    ([0, 1], None, "label has 2 rows, cat has 3"),
])
def test_invalid_inputs(label, weight, message):
    with pytest.raises(InputError, match=message):
        CTRDataset(np.zeros((3, 1)), None, np.array(label),
                   None if weight is None else np.array(weight))


def test_concat_needs_one_field_layout():
    with pytest.raises(InputError, match="different"):
        CTRDataset.concat([CTRDataset(np.zeros((1, 1)), None, [0]),
                           CTRDataset(np.zeros((1, 2)), None, [0])])
    with pytest.raises(InputError, match="batch_size"):
        next(iter_batches(_dataset(), 0))
