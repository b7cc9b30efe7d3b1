"""Sequences from logs, leave-one-out and the windows that training reads."""

from __future__ import annotations

import numpy as np
import pytest

from graphsel.data.log import InteractionLog
from graphsel.data.sequences import (
    build_sequences,
    last_window,
    leave_one_out,
    load_sequences,
    sequences_from_log,
)
from graphsel.errors import InputError


def test_users_are_time_ordered_and_short_users_dropped():
    data = build_sequences(user=[1, 1, 1, 2, 2], item=[30, 10, 20, 10, 20],
                           ts=[9, 5, 5, 1, 2], domain=["a", "a", "b", "a", "b"])
    assert data.user_ids.tolist() == [1]
    # 10 and 20 share ts 5: they keep their input order
    assert data.item_ids[data.sequence(0) - 1].tolist() == [10, 20, 30]


def test_an_item_in_two_domains_is_an_input_error():
    with pytest.raises(InputError, match="item 'x' is in two domains"):
        build_sequences([1, 1, 1], ["x", "x", "y"], [1, 2, 3], ["a", "b", "a"])


def test_from_log_with_an_item_mapping():
    log = InteractionLog.from_columns([1, 1, 1], ["m", "n", "m"], [1, 2, 3], [1, 0, 1], "src")
    data = sequences_from_log(log, item_domains={"m": "drama", "n": "comedy"})
    assert data.domain_names == ("comedy", "drama")
    assert data.item_domain.tolist() == [-1, 1, 0]
    with pytest.raises(InputError, match="item 'n' has no domain"):
        sequences_from_log(log, item_domains={"m": "drama"})


def test_last_window_left_pads_and_truncates():
    items = np.arange(1, 8)
    assert last_window(items, np.array([0, 5]), np.array([5, 7]), 3).tolist() == [
        [3, 4, 5], [0, 6, 7]]


@pytest.mark.parametrize("mode", ["last", "all"])
def test_leave_one_out_never_lets_held_out_items_into_training(mode):
    from graphsel.transfer.sequential.train import (
        DomainSampler,
        make_batch,
        training_windows,
    )

    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(20), rng.integers(3, 40, 20))
    items = np.arange(len(users))  # every event its own item: a leak would show by id
    data = build_sequences(users, items, rng.random(len(users)), np.where(items % 3, "a", "b"))
    split = leave_one_out(data)
    assert (split.train_end == data.offsets[1:] - 2).all()
    starts, ends = training_windows(split, 5, mode)
    batch = make_batch(data, starts, ends, 5, DomainSampler(data), rng)
    seen = set(np.concatenate([batch.items.numpy().ravel(), batch.next_items.numpy().ravel(),
                               batch.same_next.numpy().ravel()]).tolist()) - {0}
    held_out = set(split.valid_target.tolist()) | set(split.test_target.tolist())
    assert not seen & held_out
    training = set(np.concatenate([split.train_sequence(u) for u in range(20)]).tolist())
    if mode == "all":  # every training item is read
        assert seen == training
    ends_valid, _ = split.history("valid")
    assert (ends_valid == split.train_end).all()


def test_unknown_sequence_dataset_and_option():
    with pytest.raises(InputError, match="among"):
        load_sequences("nope")
    with pytest.raises(InputError, match="has no option 'colour'"):
        load_sequences("taobao-categories", {"colour": 1})


@pytest.mark.data
def test_taobao_head_as_five_category_domains(taobao_path):
    data = load_sequences("taobao-categories", {"path": taobao_path})
    assert data.domain_names == ("c2355072", "c3607361", "c4145813", "c4756105", "c982926")
    assert (data.lengths >= 3).all()
    assert (data.item_domain[1:] >= 0).all()
