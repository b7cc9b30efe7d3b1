"""``graphsel demo``: prepares the synthetic default and prints its card."""

from __future__ import annotations

import json
import tempfile

from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.cli.demo import run_demo


def test_demo_keeps_its_files_with_out(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["out_dir"] == str(tmp_path)
    card = payload["card"]
    assert card == json.loads((tmp_path / "card.json").read_text())
    assert card["dataset"] == "synthetic" and card["options"]["seed"] == 0
    assert (card["domains"]["source"]["rows"], card["domains"]["target"]["rows"]) == (
        200_000, 9_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "card.json", "source.parquet", "target.parquet", "truth.parquet"]


def test_demo_without_out_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo", "--seed", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "dataset: synthetic"
    assert lines[-1] == ("wrote source.parquet, target.parquet, truth.parquet, card.json to a "
                         "temporary folder, now removed (keep them with --out DIR)")
    assert list(tmp_path.iterdir()) == []


def test_demo_out_is_a_file_exits_2(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--out", str(file)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {file}: is a file, expected a directory for the output\n"


def test_run_demo_returns_the_card(tmp_path):
    result = run_demo(tmp_path / "demo", seed=2)
    assert result["out_dir"] == str(tmp_path / "demo")
    assert result["card"]["options"]["seed"] == 2
