"""subdomain_gap: per source sub-domain, its transfer gap on validation; drop those that hurt."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.transfer.data import CTRDataset
from graphsel.transfer.models import subdomain
from graphsel.transfer.models.base import ModelConfig, build_base_model
from graphsel.transfer.models.diit import source_sub_domains
from graphsel.transfer.models.options import SubdomainOptions
from graphsel.transfer.models.subdomain import (
    OTHER,
    SubdomainGapLearner,
    source_subdomains,
    subdomain_gaps,
)
from graphsel.transfer.protocol.runner import compare_strategies
from graphsel.transfer.protocol.split import ProtocolConfig, split_by_time
from graphsel.transfer.protocol.strategies import get_strategy
from graphsel.transfer.train.options import TrainConfig
from graphsel.transfer.train.trainer import Trainer
from tests.transfer.tiny import synthetic_pair, with_test_labels_flipped

TINY = ModelConfig(embed_dim=4, hidden=(8, 4))
QUICK = TrainConfig(epochs=1, batch_size=256, lr=0.01, num_threads=1, progress=False)


@pytest.fixture(scope="module")
def data():
    return synthetic_pair()


def _rule(n: int, seed: int, flip: bool = False) -> CTRDataset:
    """Field 0's value decides the label (odd: 1), or the other way round when ``flip``."""
    rng = np.random.default_rng(seed)
    first = rng.integers(1, 9, n)
    cat = np.stack([first, rng.integers(1, 5, n)], axis=1)
    return CTRDataset(cat, rng.normal(size=(n, 1)), (first + flip) % 2)


def test_subdomains_are_a_columns_largest_values_then_other():
    log = InteractionLog.from_columns(
        ["u"] * 7, list("abcdefg"), range(7), [1] * 7, "s",
        first_genre=["Drama", "Comedy", "Drama", "War", "Comedy", "Drama", "Horror"])
    groups, names = source_subdomains(log, max_subdomains=3)
    assert names == ["Drama", "Comedy", OTHER]
    assert groups.tolist() == [0, 1, 0, 2, 1, 0, 2]
    groups, names = source_subdomains(log, "first_genre", max_subdomains=4)
    assert names == ["Drama", "Comedy", "Horror", "War"] and groups.tolist() == [
        0, 1, 0, 3, 1, 0, 2]
    with pytest.raises(InputError, match="column 'genre' is not a column of"):
        source_subdomains(log, "genre")


def test_without_a_subdomain_column_the_subdomains_are_item_clusters(data):
    source, _ = data
    plain = InteractionLog.from_columns(source.column("user_id"), source.column("item_id"),
                                        source.ts, source.label, "s")
    groups, names = source_subdomains(plain, max_subdomains=3, seed=1)
    assert groups.tolist() == source_sub_domains(plain, 3, seed=1).tolist()
    assert names == ["cluster 0", "cluster 1", "cluster 2"]
    # the synthetic default names its items' category: that column comes first
    _, names = source_subdomains(source, max_subdomains=4)
    assert len(names) == 4 and names[-1] == OTHER


def test_a_pure_noise_subdomain_has_the_worst_gap():
    target, valid = _rule(256, 0), _rule(512, 1)
    source = CTRDataset.concat([_rule(512, 2), _rule(512, 3), _rule(512, 4, flip=True)])
    groups = np.repeat([0, 1, 2], 512)
    model = build_base_model([9, 5], 1, TINY)
    config = TrainConfig(epochs=3, batch_size=64, lr=0.01, num_threads=1, progress=False)
    Trainer(config).fit(model, CTRDataset.concat([target, source]), valid)  # the merged model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = Trainer(TrainConfig(epochs=1, batch_size=64, lr=0.01, num_threads=1,
                                progress=False))
    gaps = subdomain_gaps(model, probe, target, source, groups, valid)
    assert gaps.shape == (3,) and int(np.argmax(gaps)) == 2
    assert gaps[2] > 0.01 > max(gaps[0], gaps[1])  # the flipped labels hurt, the others not
    assert all((before[k] == v).all() for k, v in model.state_dict().items())  # untouched
    # a sub-domain without rows has no gap
    assert np.isnan(subdomain_gaps(model, probe, target, source, groups, valid, 4)[3])


def test_each_period_merges_probes_and_fine_tunes_on_the_kept_subdomains(data):
    source, target = data
    protocol = ProtocolConfig(periods=2, n_boot=20, domain_feature="off")
    options = SubdomainOptions(max_subdomains=3, probe_epochs=1)
    fits, measured = [], []
    trainer_fit, measure = Trainer.fit, subdomain.subdomain_gaps

    def spy_fit(self, model, rows, valid=None, *, keep_start=False):
        fits.append((len(rows), float(rows.weight.sum()), valid is not None, keep_start,
                     self.config.epochs))
        return trainer_fit(self, model, rows, valid, keep_start=keep_start)

    def spy_gaps(*args, **kwargs):
        measured.append(measure(*args, **kwargs))
        return measured[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "fit", spy_fit)
        patch.setattr(subdomain, "subdomain_gaps", spy_gaps)
        results = compare_strategies(source, target, ["subdomain_gap"], model=TINY,
                                     train=replace(QUICK, epochs=2),
                                     protocol=protocol,
                                     strategy_options={"subdomain_gap": options})
    split = split_by_time(source, target, protocol)
    groups, names = source_subdomains(source[split.source_rows], max_subdomains=3)
    ts = source.ts[split.source_rows]
    expected = []
    for period in range(2):
        t = len(split.periods_rows[period])
        window = groups[split.source_window(period, ts)]
        sizes = [int((window == k).sum()) for k in range(3)]
        kept = measured[period] <= 0.0
        n = t + len(window)
        expected += [(n, n, True, False, 2),  # merge_all's fit
                     (n, n, False, False, 1)]  # the probe with every sub-domain
        # each probe without a sub-domain: the same rows, that sub-domain's weighted 0
        expected += [(n, n - sizes[k], False, False, 1) for k in range(3) if sizes[k]]
        chosen = t + sum(s for s, keep in zip(sizes, kept) if keep)
        expected += [(chosen, chosen, True, True, 2)]
    assert fits == expected
    (effort,) = results.effort
    last = {g["name"]: g for g in effort.details["subdomains"]}
    assert sorted(last) == sorted(names)
    assert [last[name]["gap"] for name in names] == [round(float(g), 6) for g in measured[1]]
    assert [last[name]["kept"] for name in names] == (measured[1] <= 0.0).tolist()
    gaps = [g["gap"] for g in effort.details["subdomains"]]
    assert gaps == sorted(gaps, reverse=True)  # the most harmful first
    assert "validation log-loss gap of each source sub-domain" in results.table()
    # 12 fits: per period merge, 4 probes, fine-tune; the 8 fixed-length probes are never
    # counted as models cut short by the epoch cap (only the 2-epoch merges and fine-tunes)
    assert effort.effort.fits == 12 and effort.effort.capped_fits <= 4


def test_test_labels_are_never_read(data):
    source, target = data
    protocol = ProtocolConfig(periods=1, n_boot=20, domain_feature="off")
    options = {"subdomain_gap": SubdomainOptions(max_subdomains=3)}
    first = compare_strategies(source, target, ["subdomain_gap"], model=TINY, train=QUICK,
                               protocol=protocol, strategy_options=options)
    flipped = with_test_labels_flipped(source, target, protocol)
    again = compare_strategies(source, flipped, ["subdomain_gap"], model=TINY, train=QUICK,
                               protocol=protocol, strategy_options=options)
    assert again.effort[0].details == first.effort[0].details
    np.testing.assert_array_equal(again.test_predictions["subdomain_gap"],
                                  first.test_predictions["subdomain_gap"])


def test_the_learner_is_registered_with_its_options():
    strategy = get_strategy("subdomain_gap")
    assert strategy.learner is SubdomainGapLearner and strategy.options == SubdomainOptions()
    with pytest.raises(InputError, match="probe_epochs"):
        SubdomainOptions(probe_epochs=0)
    with pytest.raises(InputError, match="max_gap"):
        SubdomainOptions(max_gap=float("nan"))
