"""The fitted selector and the small comparison that the figure and page tests share (each
made once per session)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from graphsel.data.datasets import get_dataset  # noqa: E402
from graphsel.select.domain import DomainClassifier  # noqa: E402
from graphsel.select.pipeline import SampleSelector  # noqa: E402


@pytest.fixture(scope="session")
def fitted():
    """``(selector, truth, graph)``: the default stages on a quarter of the synthetic data,
    with the logistic classifier (these tests check figures, not the selection, and the
    default's gradient boosting takes seconds per fold)."""
    split = get_dataset("synthetic")(scale=0.25)
    truth = split.truth.column("in_target_community").to_numpy()
    selector = SampleSelector(["graph", DomainClassifier("logistic", cv=3), "knn"])
    selector.fit(split.source, split.target, truth)
    return selector, truth, selector.named_stages_["graph"].graph_


@pytest.fixture(scope="session")
def transfer_results():
    """A real comparison, as small as it gets: 2 strategies x 2 seeds x 2 periods, 1 epoch."""
    from graphsel.transfer.models.base import ModelConfig
    from graphsel.transfer.protocol.runner import compare_strategies
    from graphsel.transfer.protocol.split import ProtocolConfig
    from graphsel.transfer.train.trainer import TrainConfig

    split = get_dataset("synthetic")(scale=0.05)
    return compare_strategies(
        split.source, split.target, ["target_only", "merge_all"],
        model=ModelConfig(embed_dim=4, hidden=(16,)),
        train=TrainConfig(epochs=1, batch_size=256, num_threads=1, progress=False),
        protocol=ProtocolConfig(periods=2, n_boot=20), seeds=[0, 1])


@pytest.fixture
def failing_savefig(monkeypatch):
    """``Figure.savefig`` writes the first bytes of a PNG, then fails with "disk full" (for
    the tests that no partial figure file is ever left)."""
    def broken_savefig(self, path, **kw):
        with open(path, "wb") as handle:
            handle.write(b"\x89PNG")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
