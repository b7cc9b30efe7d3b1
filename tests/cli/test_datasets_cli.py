"""``graphsel datasets list`` / ``prepare``: files written, card printed, bad input exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import click
import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.cli.datasets import dataset_options, prepare_command
from graphsel.data.datasets import Dataset, DatasetSplit

SYNTHETIC_FLAGS = ("--seed, --scale, --num-users, --num-items, --num-communities, "
                   "--num-target-communities, --source-rows, --target-rows, "
                   "--within-community, --target-only, --days")


def _run(*args):
    return CliRunner().invoke(cli, ["datasets", *args])


def test_list_names_and_describes_every_dataset():
    result = _run("list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "description"]
    assert [line.split()[0] for line in lines[2:]] == [
        "synthetic", "movielens-1m", "movielens-100k", "taobao-userbehavior"]


def test_list_json():
    result = _run("list", "--json")
    assert result.exit_code == 0
    datasets = json.loads(result.stdout)["datasets"]
    assert datasets[1]["name"] == "movielens-1m"
    assert datasets[1]["options"] == ["path", "target_genre"]


def test_prepare_writes_the_files_and_prints_the_card(tmp_path):
    out = tmp_path / "syn"
    result = _run("prepare", "synthetic", "--out", str(out), "--seed", "3", "--scale", "0.05")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "card.json", "source.parquet", "target.parquet", "truth.parquet"]
    lines = result.stdout.splitlines()
    assert lines[0] == "dataset: synthetic"
    assert lines[3].split() == ["rows", "10,000", "450"]
    assert lines[-1] == (f"wrote source.parquet, target.parquet, truth.parquet, card.json "
                         f"to {out}")
    card = json.loads((out / "card.json").read_text())
    assert card["options"]["seed"] == 3 and card["options"]["scale"] == 0.05


def test_prepare_json_prints_the_card_file(tmp_path):
    result = _run("prepare", "synthetic", "--out", str(tmp_path), "--scale", "0.05", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((tmp_path / "card.json").read_text())


@pytest.mark.parametrize("args, message", [
    (["movielens-1m", "--seed", "1"],
     "option --seed does not apply to dataset 'movielens-1m' (it takes: --path, "
     "--target-genre)"),
    (["synthetic", "--path", "/data"],
     f"option --path does not apply to dataset 'synthetic' (it takes: {SYNTHETIC_FLAGS})"),
    (["taobao-userbehavior", "--target-genre", "Drama"],
     "option --target-genre does not apply to dataset 'taobao-userbehavior' (it takes: "
     "--path, --target-categories, --label)"),
    (["movielens"], "Could not resolve dataset 'movielens' among ['movielens-100k', "
                    "'movielens-1m', 'synthetic', 'taobao-userbehavior']"),
    (["synthetic", "--scale", "0"], "synthetic: option 'scale' must be > 0, got 0.0"),
    (["movielens-1m"], "dataset 'movielens-1m' needs option 'path'"),
    (["taobao-userbehavior", "--path", ".", "--target-categories", "1,x"],
     "option 'target_categories': 'x' is not an integer category id"),
])
def test_bad_options_exit_2_with_one_line_and_no_output(tmp_path, args, message):
    out = tmp_path / "out"
    result = _run("prepare", *args, "--out", str(out))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not out.exists()


def test_out_is_a_file_exits_2_and_keeps_the_file(tmp_path):
    file = tmp_path / "card.json"
    file.write_text("mine")
    result = _run("prepare", "synthetic", "--out", str(file), "--scale", "0.05")
    assert result.exit_code == 2
    assert result.stderr == f"error: {file}: is a file, expected a directory for the output\n"
    assert file.read_text() == "mine"


def test_missing_out_is_a_usage_error():
    result = _run("prepare", "synthetic")
    assert result.exit_code == 2 and "Missing option '--out'" in result.stderr


@pytest.mark.data
def test_prepare_taobao_with_categories(taobao_path, tmp_path):
    result = _run("prepare", "taobao-userbehavior", "--path", str(taobao_path),
                  "--target-categories", "2735466,1464116", "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["options"]["target_categories"] == [2735466, 1464116]
    assert card["domains"]["target"]["rows"] == 1007 + 480
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "card.json", "source.parquet", "target.parquet"]


def test_an_inapplicable_option_is_named_before_its_value_is_parsed(tmp_path):
    result = _run("prepare", "synthetic", "--target-categories", "x", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == ("error: option --target-categories does not apply to dataset "
                             f"'synthetic' (it takes: {SYNTHETIC_FLAGS})\n")


def test_every_loader_parameter_is_a_flag_with_its_type_and_docstring_help():
    params = {p.name: p for p in prepare_command.params if isinstance(p, click.Option)}
    assert list(params) == [
        "out_dir", "seed", "scale", "num_users", "num_items", "num_communities",
        "num_target_communities", "source_rows", "target_rows", "within_community",
        "target_only", "days", "path", "target_genre", "target_categories", "label",
        "progress", "quiet", "as_json"]
    assert params["num_users"].opts == ["--num-users"]
    assert params["num_users"].type is click.INT and params["num_users"].default is None
    assert params["within_community"].type is click.FLOAT
    assert isinstance(params["path"].type, click.Path)
    assert params["target_categories"].type is click.STRING  # parsed once known to apply
    assert params["num_users"].help == "synthetic: users of the world, before scale (default 20,000)."
    assert params["path"].help == (
        "movielens-1m: the ml-1m folder holding ml-1m.inter.gz, ml-1m.item.gz and "
        "ml-1m.user.gz (required). movielens-100k: the ml-100k folder holding ml-100k.inter.gz, "
        "ml-100k.item.gz and ml-100k.user.gz (required). taobao-userbehavior: the folder "
        "holding UserBehavior.csv.gz (required).")


def test_a_derived_flag_reaches_the_loader_and_the_card(tmp_path):
    result = _run("prepare", "synthetic", "--out", str(tmp_path), "--scale", "0.05",
                  "--num-communities", "5", "--num-target-communities", "2", "--days", "3",
                  "--json")
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert (options["num_communities"], options["num_target_communities"], options["days"]) == (
        5, 2, 3)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["domains"]["source"]["ts_max"] - card["domains"]["source"]["ts_min"] < 3 * 86400


def _toy_loader(*, size: int = 3, name: str = "toy", where: str | os.PathLike | None = None,
                ids: Annotated[list[int] | str, _ids] = (1,)) -> DatasetSplit:
    """A toy dataset.

    Args:
        size: rows (default 3).
        name: what to call it (default ``"toy"``).
        where: a folder (default none).
        ids: the ids, comma-separated
            on the command line (default 1).
    """
    raise NotImplementedError


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def test_a_new_loader_parameter_is_a_new_flag_with_no_cli_edit():
    received = []

    @click.command()
    @dataset_options([Dataset("toy", "A toy dataset.", _toy_loader)])
    def toy(**given):
        received.append(given)

    params = {p.name: p for p in toy.params}
    assert list(params) == ["size", "name", "where", "ids"]
    assert params["size"].type is click.INT and params["size"].help == "toy: rows (default 3)."
    assert params["name"].help == 'toy: what to call it (default "toy").'
    assert isinstance(params["where"].type, click.Path)
    assert params["ids"].type is click.STRING
    assert params["ids"].help == "toy: the ids, comma-separated on the command line (default 1)."
    result = CliRunner().invoke(toy, ["--size", "5", "--where", "/tmp"])
    assert result.exit_code == 0, result.output
    assert received == [{"size": 5, "name": None, "where": Path("/tmp"), "ids": None}]


def test_one_option_name_with_two_types_is_a_programming_error():
    def other(*, size: float = 1.0) -> DatasetSplit:
        raise NotImplementedError

    with pytest.raises(ValueError, match="dataset option 'size' has different types in toy, "
                                         "other"):
        dataset_options([Dataset("toy", "", _toy_loader), Dataset("other", "", other)])
