"""weighted_all: every source row, weighted by its tempered density ratio."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.errors import InputError
from graphsel.select.domain import DomainClassifier
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.models.options import WeightedOptions
from graphsel.transfer.models.weighted import (
    WeightedLearner,
    density_ratios,
    tempered_weights,
)
from graphsel.transfer.protocol.runner import compare_strategies
from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
from graphsel.transfer.protocol.strategies import StrategyContext, get_strategy
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import Trainer
from tests.transfer.tiny import synthetic_pair, with_test_labels_flipped

TINY = ModelConfig(embed_dim=4, hidden=(8, 4))
QUICK = TrainConfig(epochs=1, batch_size=256, lr=0.01, num_threads=1, progress=False)
GRID = WeightedOptions(alphas=(0.0, 1.0), lambdas=(0.5, 1.0))


@pytest.fixture(scope="module")
def data():
    return synthetic_pair()


def test_tempered_weights_have_mean_lambda_and_alpha_zero_is_exactly_one():
    ratio = np.array([0.05, 1.0, 4.0, 20.0])
    for alpha, scale in ((0.5, 1.0), (1.0, 0.5), (2.0, 2.0)):
        weights = tempered_weights(ratio, alpha, scale)
        assert weights.dtype == np.float32
        np.testing.assert_allclose(weights.mean(), scale, rtol=1e-6)
        np.testing.assert_allclose(weights, scale * ratio ** alpha / np.mean(ratio ** alpha),
                                   rtol=1e-6)
    assert tempered_weights(ratio, 0.0).tolist() == [1.0] * 4
    with pytest.raises(InputError, match="lambdas"):
        WeightedOptions(lambdas=(0.0,))
    with pytest.raises(InputError, match="alphas"):
        WeightedOptions(alphas=())


def test_plan_weighs_every_source_row_by_the_da_stage_fitted_on_all_of_them(data):
    source, target = data
    protocol = ProtocolConfig(periods=1)
    split = split_by_time(source, target, protocol)
    train_target = target[split.target_train]
    plan = get_strategy("weighted_all").plan(
        StrategyContext(split.source_rows, None, 0, source, train_target))
    assert plan.rows.tolist() == split.source_rows.tolist() and plan.schedule == "joint"
    oracle = DomainClassifier().fit(source[split.source_rows], train_target).weight_
    np.testing.assert_array_equal(plan.weight, oracle.astype(np.float32))
    assert plan.weight.min() < 0.5 < 2.0 < plan.weight.max()  # the weights do differ
    assert not get_strategy("weighted_all").needs_selection
    with pytest.raises(InputError, match="needs source and target"):
        get_strategy("weighted_all").plan(StrategyContext(split.source_rows, None, 0))


def test_each_period_trains_every_grid_point_on_every_row_with_its_weights(data):
    source, target = data
    protocol = ProtocolConfig(periods=2, n_boot=20, domain_feature="off")
    fits = []
    trainer_fit = Trainer.fit

    def spy_fit(self, model, rows, valid=None, *, keep_start=False):
        fits.append((id(model), rows.weight.numpy().copy()))
        return trainer_fit(self, model, rows, valid, keep_start=keep_start)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "fit", spy_fit)
        results = compare_strategies(source, target, ["weighted_all"], model=TINY,
                                     train=QUICK, protocol=protocol,
                                     strategy_options={"weighted_all": GRID})
    split = split_by_time(source, target, protocol)
    ratio = density_ratios(source[split.source_rows], target[split.target_train])
    ts = source.ts[split.source_rows]
    points = [(0.0, 0.5), (0.0, 1.0), (1.0, 0.5), (1.0, 1.0)]
    assert len(fits) == 2 * len(points)
    models = [model for model, _ in fits[:4]]
    assert len(set(models)) == 4 and [model for model, _ in fits[4:]] == models  # warm start
    for period in range(2):
        t = len(split.periods_rows[period])
        window = ratio[split.source_window(period, ts)]
        for i, (alpha, scale) in enumerate(points):
            weights = fits[4 * period + i][1]
            assert weights[:t].tolist() == [1.0] * t  # the target's rows first, weight 1
            np.testing.assert_array_equal(weights[t:], tempered_weights(window, alpha, scale))
    (effort,) = results.effort
    grid = effort.details["grid"]
    assert [(p["alpha"], p["lambda"]) for p in grid] == points
    chosen = max(range(4), key=lambda i: (grid[i]["valid_auc"], -i))  # first of equals
    assert (effort.details["alpha"], effort.details["lambda"]) == points[chosen]


def test_alpha_zero_lambda_one_is_merge_all_and_test_labels_are_never_read(data):
    source, target = data
    protocol = ProtocolConfig(periods=1, n_boot=20, domain_feature="off")
    options = {"weighted_all": WeightedOptions(alphas=(0.0,), lambdas=(1.0,))}
    results = compare_strategies(source, target, ["merge_all", "weighted_all"], model=TINY,
                                 train=QUICK, protocol=protocol, strategy_options=options)
    np.testing.assert_array_equal(results.test_predictions["weighted_all"],
                                  results.test_predictions["merge_all"])
    valid = {e.strategy: e.valid_auc for e in results.effort}
    assert valid["weighted_all"] == valid["merge_all"]
    # in the default grid, the (0, 1) point's model is merge_all's model
    default = compare_strategies(source, target, ["weighted_all"], model=TINY, train=QUICK,
                                 protocol=protocol)
    (effort,) = default.effort
    point = next(p for p in effort.details["grid"] if (p["alpha"], p["lambda"]) == (0.0, 1.0))
    assert point["valid_auc"] == valid["merge_all"]
    # flipping every test label changes neither the weights, the choice nor a prediction
    flipped = with_test_labels_flipped(source, target, protocol)
    again = compare_strategies(source, flipped, ["weighted_all"], model=TINY, train=QUICK,
                               protocol=protocol)
    assert again.effort[0].details == effort.details
    np.testing.assert_array_equal(again.test_predictions["weighted_all"],
                                  default.test_predictions["weighted_all"])



def test_the_learner_is_registered_with_its_options():
    strategy = get_strategy("weighted_all")
    assert strategy.learner is WeightedLearner and strategy.options == WeightedOptions()
    assert WeightedLearner.mixes_domains
