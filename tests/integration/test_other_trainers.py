"""`graphsel select`'s Parquet output trains models outside graphsel, its weights in their loss.

`graphsel select` runs once on a tiny synthetic pair (scale 0.05: 10,000 source rows, 450
target rows; the default stages, so the domain classifier's density-ratio weights vary from
0.05 to 20). The tests then only read Parquet files, as another trainer would:

* DeepCTR-Torch's DeepFM (its ``fit`` takes no sample weights, so the loop that owns the
  loss is ours, as in the README): the weighted loss equals scikit-learn's weighted log loss
  on the same predictions; rows of weight 0 leave the trained parameters equal to training
  without those rows; and the weights change what is learnt.
* plain PyTorch on graphsel's :class:`~graphsel.transfer.data.CTRDataset`: a ``DataLoader``
  batch carries each row's weight to :func:`~graphsel.transfer.train.losses.weighted_bce`,
  and a ``WeightedRandomSampler`` over the weight column never draws a row of weight 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from deepctr_torch.inputs import SparseFeat
from deepctr_torch.models import DeepFM
from sklearn.metrics import log_loss
from torch.utils.data import DataLoader, WeightedRandomSampler

from graphsel.cli import cli
from graphsel.data.log import read_log
from graphsel.transfer import CTRDataset, FeatureEncoder, weighted_bce

FIELDS = ("user_id", "item_id", "category", "city", "age_bucket")
SCORE_COLUMNS = ["hop", "p_target", "knn_score", "weight"]


@pytest.fixture(scope="module")
def selected(tmp_path_factory) -> Path:
    """The folder holding ``demo/`` (the synthetic pair) and ``selected.parquet``."""
    folder = tmp_path_factory.mktemp("select")
    for args in (["datasets", "prepare", "synthetic", "--scale", "0.05", "--out", "demo"],
                 ["select", "--source", "demo/source.parquet", "--target",
                  "demo/target.parquet", "--out", "selected.parquet"]):
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return folder


def _training_rows(folder: Path) -> pd.DataFrame:
    """The target's rows (weight 1) then the selected source rows with their weights."""
    selected = pd.read_parquet(folder / "selected.parquet")
    assert list(selected.columns[-4:]) == SCORE_COLUMNS
    target = pd.read_parquet(folder / "demo" / "target.parquet").assign(weight=1.0)
    return pd.concat([target, selected], ignore_index=True)


def _deepfm(rows: pd.DataFrame) -> tuple[DeepFM, torch.Tensor]:
    """A seeded DeepFM over ``FIELDS`` and its ``(N, F)`` input, in its feature order."""
    codes = {name: pd.factorize(rows[name])[0] for name in FIELDS}
    columns = [SparseFeat(name, int(codes[name].max()) + 1, embedding_dim=4) for name in FIELDS]
    model = DeepFM(columns, columns, task="binary", dnn_hidden_units=(16,), seed=0,
                   device="cpu")
    x = np.stack([codes[name] for name in model.feature_index], axis=1)
    return model, torch.tensor(x, dtype=torch.float32)


def _weighted_loss(model: DeepFM, x: torch.Tensor, y: torch.Tensor,
                   w: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy(model(x).squeeze(1), y, reduction="none")
    return (w * bce).sum() / w.sum() + model.get_regularization_loss()


def _train(rows: pd.DataFrame, weight: np.ndarray, keep: np.ndarray,
           steps: int = 5) -> dict[str, torch.Tensor]:
    """DeepFM's parameters after ``steps`` full-batch SGD steps on the rows ``keep``.

    The vocabularies cover every row, so that models trained on different rows have the
    same parameters; SGD, not Adam, so that float summation order stays a 1e-7 effect
    (Adam divides a near-zero gradient by its own size).
    """
    model, x = _deepfm(rows)
    y = torch.tensor(rows["label"].to_numpy(), dtype=torch.float32)
    w = torch.tensor(weight, dtype=torch.float32)
    keep_rows = torch.from_numpy(np.flatnonzero(keep))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        loss = _weighted_loss(model, x[keep_rows], y[keep_rows], w[keep_rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def test_deepfm_loss_is_the_weighted_log_loss(selected):
    rows = _training_rows(selected)
    model, x = _deepfm(rows)
    y, w = rows["label"].to_numpy(), rows["weight"].to_numpy()
    assert w.min() < 0.1 and w.max() > 10, "the domain classifier's weights should vary"
    with torch.no_grad():
        p = model(x).squeeze(1).double().numpy()
        loss = _weighted_loss(model, x, torch.tensor(y, dtype=torch.float32),
                              torch.tensor(w, dtype=torch.float32))
        regularization = model.get_regularization_loss()
    assert float(loss - regularization) == pytest.approx(
        log_loss(y, p, sample_weight=w), rel=1e-5)
    assert float(loss - regularization) != pytest.approx(log_loss(y, p), rel=1e-3)


def test_deepfm_rows_of_weight_zero_count_as_absent(selected):
    rows = _training_rows(selected)
    weight = rows["weight"].to_numpy().copy()
    weight[rows["hop"].to_numpy() >= 1] = 0.0  # keep the target and the hop-0 source rows
    assert 0 < (weight == 0).sum() < len(weight)
    everything = np.ones(len(rows), dtype=bool)
    zero_weighted = _train(rows, weight, keep=everything)
    without = _train(rows, weight, keep=weight > 0)
    unweighted = _train(rows, np.ones(len(rows)), keep=everything)
    for name, value in zero_weighted.items():
        torch.testing.assert_close(value, without[name], atol=1e-6, rtol=1e-5)
    moved = max(float((value - unweighted[name]).abs().max())
                for name, value in zero_weighted.items())
    assert moved > 1e-3, "training with and without the weights gave the same model"


def test_plain_pytorch_batches_carry_the_weight(selected):
    target_log = read_log(selected / "demo" / "target.parquet")
    selected_log = read_log(selected / "selected.parquet")
    encoder = FeatureEncoder().fit(target_log)  # the score columns are no features of it
    assert not set(SCORE_COLUMNS) & set(encoder.spec_.categorical_names
                                        + encoder.spec_.numeric_names)
    source_rows = CTRDataset.from_log(selected_log, encoder,
                                      weight=selected_log.column("weight"))
    train = CTRDataset.concat([CTRDataset.from_log(target_log, encoder), source_rows])
    expected = np.r_[np.ones(len(target_log)), selected_log.column("weight")]

    batches = list(DataLoader(train, batch_size=256, shuffle=False))
    np.testing.assert_allclose(torch.cat([b["weight"] for b in batches]).numpy(), expected)
    logits = torch.linspace(-2, 2, len(batches[-1]["label"]))
    batch = batches[-1]
    assert weighted_bce(logits, batch["label"], batch["weight"]).item() == pytest.approx(
        log_loss(batch["label"].numpy(), torch.sigmoid(logits).double().numpy(),
                 sample_weight=batch["weight"].numpy()), rel=1e-5)

    weight = train.weight.clone()
    weight[: len(target_log)] = 0.0  # draw source rows only, in proportion to their weight
    sampler = WeightedRandomSampler(weight, num_samples=20_000,
                                    generator=torch.Generator().manual_seed(0))
    drawn = np.bincount(np.fromiter(sampler, dtype=np.int64), minlength=len(train))
    assert drawn[: len(target_log)].sum() == 0
    heaviest = len(target_log) + int(np.argmax(selected_log.column("weight")))
    share = float(weight[heaviest] / weight.sum())
    assert drawn[heaviest] / drawn.sum() == pytest.approx(share, rel=0.15)
