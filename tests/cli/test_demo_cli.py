"""``graphsel demo``: prepares the synthetic default, selects from it, prints card and funnel."""

from __future__ import annotations

import json
import tempfile

from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.cli.demo import run_demo
from graphsel.transfer.protocol.strategies import strategy_names


def test_demo_keeps_its_files_with_out(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--scale", "0.25",
                                      "--no-transfer", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["out_dir"] == str(tmp_path)
    card = payload["card"]
    assert card == json.loads((tmp_path / "card.json").read_text())
    assert card["dataset"] == "synthetic" and card["options"]["seed"] == 0
    assert (card["domains"]["source"]["rows"], card["domains"]["target"]["rows"]) == (
        50_000, 2_250)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "card.json", "report.json", "selected.parquet", "source.parquet", "target.parquet",
        "truth.parquet"]
    selection = payload["selection"]
    assert selection == json.loads((tmp_path / "report.json").read_text())
    assert [stage["name"] for stage in selection["stages"]] == ["graph", "da", "knn"]
    assert selection["truth"]["precision"] >= 0.9 and selection["truth"]["recall"] >= 0.9
    assert payload["transfer"] is None


def test_demo_without_out_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo", "--seed", "1", "--scale", "0.1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "dataset: synthetic"
    assert ("wrote source.parquet, target.parquet, truth.parquet, card.json to a temporary "
            "folder, now removed (keep them with --out DIR)") in lines
    assert "selection funnel" in lines
    assert any(line.startswith("planted truth: precision ") for line in lines)
    # it ends with the strategy table, then each strategy against merge_all, then the
    # strategies that have a control against it (a random subset, as many merge_all models)
    headers = [i for i, line in enumerate(lines) if line.startswith("strategy ")]
    assert len(headers) == 3 and "lr" in lines[headers[0]].split()
    assert "control" in lines[headers[2]].split()
    strategies = [line.split()[0] for line in lines[headers[0] + 2:headers[1]]]
    assert strategies == strategy_names()  # every registered strategy, in order
    picked = next(i for i, line in enumerate(lines) if line.startswith("auto picked "))
    against_merge = [line.split()[0] for line in lines[headers[1] + 2:headers[2]]]
    assert against_merge == [name for name in strategy_names() if name != "merge_all"]
    against_control = [line.split()[:2] for line in lines[headers[2] + 2:picked]]
    assert against_control == [["selected", "random_same_size"],
                               ["selected_weighted", "random_same_size"],
                               ["merge_finetune_selected", "merge_finetune_random"],
                               ["ensemble", "merge_all_ensemble"]]
    assert lines[picked].startswith(
        "auto picked (merge_all unless beaten beyond noise on validation): seed 0: ")
    # then the learners' details (subdomain_gap's gaps), then the selection
    assert "subdomain_gap: validation log-loss gap of each source sub-domain" in "\n".join(
        lines[picked:])
    assert lines[-1].startswith("selection: ")
    # (torch may leave its own cache folder in the temporary directory; the demo leaves none)
    assert list(tmp_path.glob("graphsel-demo-*")) == []


def test_demo_out_is_a_file_exits_2(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--out", str(file)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {file}: is a file, expected a directory for the output\n"


def test_run_demo_returns_card_selection_and_transfer(tmp_path):
    result = run_demo(tmp_path / "demo", seed=2, scale=0.1)
    assert result["out_dir"] == str(tmp_path / "demo")
    assert result["card"].options["seed"] == 2
    assert result["selection"].source_rows == result["card"].source.rows
    transfer = result["transfer"]
    assert list(transfer["strategies"]) == strategy_names()
    assert set(transfer["vs_target_only"]) == set(transfer["strategies"]) - {"target_only"}
    for scores in transfer["strategies"].values():
        assert 0.0 <= scores["auc"]["mean"] <= 1.0
