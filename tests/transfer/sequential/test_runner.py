"""The runner's per-model intervals and group sizes (what ``--plots`` draws)."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.data.sequences import leave_one_out, load_sequences
from graphsel.transfer.sequential.evaluate import mean_interval
from graphsel.transfer.sequential.options import load_next_item_config
from graphsel.transfer.sequential.runner import run_next_item
from tests.transfer.sequential.tiny import tiny_next_item_config, write_tiny_ml1m


def test_mean_interval_is_the_mean_with_a_bootstrap_interval():
    assert mean_interval(np.array([0.25, 0.25]), n_boot=20) == (0.25, 0.25, 0.25)
    mean, lo, hi = mean_interval(np.array([0.0, 1.0, 0.0, 1.0]), n_boot=200)
    assert mean == 0.5 and 0.0 <= lo < 0.5 < hi <= 1.0


def test_intervals_hold_the_table_means_and_the_groups_count_test_users(tmp_path):
    folder = write_tiny_ml1m(tmp_path / "ml-1m")
    path = tmp_path / "c.yaml"
    path.write_text(tiny_next_item_config(folder))
    results = run_next_item(load_next_item_config(path))
    split = leave_one_out(load_sequences("movielens-1m-genres", {"path": str(folder)}))
    test_domain = split.data.item_domain[split.test_target]
    expected_users = {"overall": split.data.num_users,
                      **{d: int((test_domain == i).sum())
                         for i, d in enumerate(split.data.domain_names)
                         if (test_domain == i).any()}}
    assert results.group_users == expected_users
    assert set(results.intervals) == {"syncrec", "sasrec_cdsr"}
    for model, groups in results.intervals.items():
        assert list(groups) == list(expected_users)
        for group, (mean, lo, hi) in groups.items():
            assert mean == pytest.approx(results.mean(model, group, "ndcg@10"), abs=1e-6)
            assert lo <= mean <= hi
    payload = results.to_json()
    assert payload["group_users"] == expected_users
    mean, lo, hi = results.intervals["syncrec"]["overall"]
    assert payload["intervals"]["syncrec"]["overall"] == {
        "mean": round(mean, 6), "lo": round(lo, 6), "hi": round(hi, 6)}
