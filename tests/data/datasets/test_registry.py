"""The dataset registry and prepare(): names, options, output folder, nothing partial."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from graphsel.data.datasets import (
    DatasetSplit,
    _registry,
    get_dataset,
    list_datasets,
    prepare,
    register_dataset,
)
from graphsel.data.log import InteractionLog, read_pair
from graphsel.errors import InputError
from graphsel.registry import Registry

TINY = dict(num_users=400, num_items=200, num_communities=4, num_target_communities=1,
            source_rows=3000, target_rows=300)


def test_registry_lists_the_datasets_in_order():
    assert [d.name for d in list_datasets()] == [
        "synthetic", "movielens-1m", "movielens-100k", "taobao-userbehavior"]
    assert all(d.description and "\n" not in d.description for d in list_datasets())


def test_unknown_name_lists_valid_names():
    with pytest.raises(InputError) as info:
        get_dataset("movielens")
    assert str(info.value) == ("Could not resolve dataset 'movielens' among "
                               "['movielens-100k', 'movielens-1m', 'synthetic', 'taobao-userbehavior']")


def test_options_are_the_keyword_parameters_with_defaults():
    assert get_dataset("movielens-1m").defaults == {"path": None, "target_genre": "Documentary"}
    assert list(get_dataset("synthetic").defaults)[:2] == ["seed", "scale"]


def test_unknown_option_is_named_with_the_valid_ones(tmp_path):
    with pytest.raises(InputError, match=r"dataset 'movielens-1m' has no option 'seed' "
                                         r"\(options: path, target_genre\)"):
        prepare("movielens-1m", tmp_path / "out", seed=1)
    assert not (tmp_path / "out").exists()


def test_duplicate_registration_is_a_programming_error():
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("synthetic")(lambda: None)


def test_prepare_writes_files_and_returns_the_card(tmp_path):
    out = tmp_path / "new" / "folder"
    card = prepare("synthetic", out, seed=3, **TINY)
    assert sorted(p.name for p in out.iterdir()) == [
        "card.json", "source.parquet", "target.parquet", "truth.parquet"]
    assert json.loads((out / "card.json").read_text()) == card.to_json()
    assert card.dataset == "synthetic"
    assert card.options is not None
    assert card.options["seed"] == 3 and card.options["source_rows"] == 3000
    assert card.files == {"source": "source.parquet", "target": "target.parquet",
                          "truth": "truth.parquet", "card": "card.json"}
    assert card.source.rows == 3000
    assert card.target is not None and card.target.rows == 300
    assert card.truth is not None and card.truth.rows == 3000
    source, target = read_pair(out / "source.parquet", out / "target.parquet")
    assert source.domains == ["source"] and target.domains == ["target"]
    assert pq.read_table(out / "truth.parquet").num_rows == len(source)


def test_prepare_into_a_file_is_an_input_error(tmp_path):
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(InputError, match="is a file, expected a directory"):
        prepare("synthetic", file, **TINY)
    assert file.read_text() == "x"


def test_a_failed_load_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="'scale' must be > 0"):
        prepare("synthetic", tmp_path / "out", scale=0)
    assert not (tmp_path / "out").exists()


def test_a_failed_write_removes_what_it_wrote(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    def broken(obj, path):
        raise OSError("disk full")

    monkeypatch.setattr(_registry, "write_json", broken)
    with pytest.raises(OSError, match="disk full"):
        prepare("synthetic", out, **TINY)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_a_stale_truth_file_is_removed_when_the_dataset_has_none(tmp_path, monkeypatch):
    prepare("synthetic", tmp_path, **TINY)

    synthetic = get_dataset("synthetic")

    def no_truth(*, seed: int = 0) -> DatasetSplit:
        source, target, _ = synthetic(seed=seed, **TINY)
        return DatasetSplit(source, target, None)

    datasets: Registry[_registry.Dataset] = Registry("dataset")
    datasets.add("no-truth", _registry.Dataset("no-truth", "test", no_truth))
    monkeypatch.setattr(_registry, "DATASETS", datasets)
    card = prepare("no-truth", tmp_path)
    assert card.options == {"seed": 0}
    assert card.truth is None and card.files is not None and "truth" not in card.files
    assert "truth" not in card.to_json()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "card.json", "source.parquet", "target.parquet"]


def test_split_is_a_named_tuple_of_logs():
    split = get_dataset("synthetic")(**TINY)
    source, target, truth = split
    assert isinstance(source, InteractionLog) and split.target is target
    assert source.index is target.index


def test_truth_mask_places_flags_by_row_and_checks_coverage(tmp_path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graphsel.data.datasets import read_truth, truth_mask

    table = pa.table({"row": [2, 0, 1], "in_target_community": [True, False, True]})
    assert truth_mask(table, 3).tolist() == [False, True, True]
    with pytest.raises(InputError, match="does not cover the 4 source rows"):
        truth_mask(table, 4)
    with pytest.raises(InputError, match="missing column 'row'"):
        truth_mask(table.drop_columns(["row"]), 3)
    pq.write_table(table, tmp_path / "truth.parquet")
    assert np.array_equal(read_truth(tmp_path / "truth.parquet", 3), [False, True, True])
    (tmp_path / "bad.parquet").write_text("no")
    with pytest.raises(InputError, match="bad.parquet: not a readable Parquet file"):
        read_truth(tmp_path / "bad.parquet", 3)
