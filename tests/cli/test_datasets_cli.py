"""``graphsel datasets list`` / ``prepare``: files written, card printed, bad input exit 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from graphsel.cli import cli


def _run(*args):
    return CliRunner().invoke(cli, ["datasets", *args])


def test_list_names_and_describes_every_dataset():
    result = _run("list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "description"]
    assert [line.split()[0] for line in lines[2:]] == [
        "synthetic", "movielens-1m", "taobao-userbehavior"]


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
     "option --path does not apply to dataset 'synthetic' (it takes: --seed, --scale)"),
    (["taobao-userbehavior", "--target-genre", "Drama"],
     "option --target-genre does not apply to dataset 'taobao-userbehavior' (it takes: "
     "--path, --target-categories)"),
    (["movielens"], "Could not resolve dataset 'movielens' among ['movielens-1m', "
                    "'synthetic', 'taobao-userbehavior']"),
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
                             "'synthetic' (it takes: --seed, --scale)\n")
