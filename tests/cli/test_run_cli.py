"""`graphsel run`: JSON schema, --out, flags over the file, and one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from tests.transfer.tiny import TINY_RUN_CONFIG

TINY_CONFIG = TINY_RUN_CONFIG


def _config(tmp_path: Path, text: str = TINY_CONFIG) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def _run(*args: str):
    return CliRunner().invoke(cli, ["run", *args])


@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("run")
    out = tmp_path / "results.json"
    result = _run("--config", str(_config(tmp_path)), "--seeds", "2", "--json", "--out", str(out))
    return result, out


def test_json_schema(json_run):
    result, out = json_run
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload == json.loads(out.read_text())
    assert list(payload["strategies"]) == ["target_only", "selected_weighted"]
    for metrics in payload["strategies"].values():
        assert set(metrics) == {"auc", "gauc", "logloss", "ece", "pred_ctr", "ctr"}
        for value in metrics.values():
            assert set(value) == {"mean", "std"}
            assert isinstance(value["mean"], float) and value["std"] >= 0.0
    comparison = payload["vs_target_only"]["selected_weighted"]
    assert set(comparison) == {"auc_diff", "ci95"} and len(comparison["ci95"]) == 2
    assert list(payload["vs_target_only"]) == ["selected_weighted"]
    assert payload["seeds"] == [0, 1]  # --seeds 2 beat the file's default of 1
    assert sorted((r["strategy"], r["seed"]) for r in payload["periods"]) == [
        ("selected_weighted", 0), ("selected_weighted", 1), ("target_only", 0),
        ("target_only", 1)]
    for record in payload["periods"]:
        assert {"strategy", "seed", "period", "auc", "gauc", "logloss", "n_train"} <= set(record)


def test_table_output_and_flags(tmp_path):
    result = _run("--config", str(_config(tmp_path)), "--strategies", "target_only,merge_all",
                  "--periods", "2", "--mode", "once")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("test set:") and "2 period(s)" in lines[0]
    assert lines[1].split()[:4] == ["strategy", "AUC", "GAUC", "LogLoss"]
    assert [line.split()[0] for line in lines[3:5]] == ["target_only", "merge_all"]
    assert "±" not in lines[3] and "[" in lines[4]  # one seed: the mean alone, no "± 0.0000"
    assert "AUC per period" in result.stdout and "period 1" in result.stdout


@pytest.mark.parametrize("text, flags, message", [
    (TINY_CONFIG + "epoch: 2\n", [], "unknown key 'epoch'"),
    (TINY_CONFIG.replace("selected_weighted", "best_one"), [],
     "Could not resolve strategy 'best_one'"),
    (TINY_CONFIG, ["--strategies", "target_only,nope"], "Could not resolve strategy 'nope'"),
    (TINY_CONFIG + "strategy_options: {diit: {num_sources: 0}}\n", [],
     "strategy_options.diit: num_sources must be >= 1, got 0"),
    (TINY_CONFIG + "strategy_options: {ctnet: {adapter: gru}}\n", [],
     "Could not resolve adapter 'gru' among ['glu', 'linear']"),
    ("dataset:\n  name: movielens-1m\n  options:\n    path: ${GRAPHSEL_UNSET_FOR_TEST}/x\n", [],
     "environment variable GRAPHSEL_UNSET_FOR_TEST is not set"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, text, flags, message):
    out = tmp_path / "results.json"
    result = _run("--config", str(_config(tmp_path, text)), "--out", str(out), "--json", *flags)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not out.exists()


def test_missing_config_file(tmp_path):
    result = _run("--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2 and "nope.yaml: cannot read the config" in result.stderr


PLOTS_CONFIG = TINY_CONFIG.replace("selected_weighted", "merge_all") + "periods: 2\n"


def test_plots_writes_the_pngs_and_lists_them(tmp_path):
    plots = tmp_path / "plots"
    out = tmp_path / "results.json"
    result = _run("--config", str(_config(tmp_path, PLOTS_CONFIG)), "--plots", str(plots),
                  "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["plots"] == [str(plots / "periods.png"), str(plots / "calibration.png")]
    assert json.loads(out.read_text())["plots"] == payload["plots"]
    assert sorted(p.name for p in plots.iterdir()) == ["calibration.png", "periods.png"]
    for path in payload["plots"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_interrupt_while_plotting_leaves_neither_plots_nor_json(tmp_path, monkeypatch):
    import graphsel.viz

    real = graphsel.viz.save_transfer_plots

    def interrupted(results, out_dir, **kw):
        real(results, out_dir, **kw)  # the figures are written (staged) ...
        raise KeyboardInterrupt  # ... and Ctrl-C comes before the JSON

    monkeypatch.setattr(graphsel.viz, "save_transfer_plots", interrupted)
    config = _config(tmp_path, PLOTS_CONFIG)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _run("--config", str(config), "--plots", str(tmp_path / "plots"),
                  "--out", str(tmp_path / "results.json"), "--json")
    assert result.exit_code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no plots, no JSON, no staging


def test_plots_pointing_at_a_file_exits_2_before_any_work(tmp_path, monkeypatch):
    import graphsel.transfer.protocol.experiment as experiment

    def no_work(*args, **kwargs):
        raise AssertionError("the experiment ran")

    monkeypatch.setattr(experiment, "run_experiment", no_work)
    plots = tmp_path / "plots"
    plots.write_text("x")
    out = tmp_path / "results.json"
    result = _run("--config", str(_config(tmp_path)), "--plots", str(plots), "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "is a file" in result.stderr
    assert not out.exists() and plots.read_text() == "x"


def test_cli_starts_without_torch_and_knows_the_modes():
    import subprocess
    import sys

    from graphsel.cli import run
    from graphsel.transfer.protocol.split import MODES

    assert run.MODES is MODES  # one tuple, imported without torch
    code = ("import sys, graphsel.cli; "
            "print(sorted({'torch', 'graphsel.transfer.models.base', "
            "'graphsel.transfer.protocol.runner'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"


def _next_item_config(tmp_path: Path) -> Path:
    from tests.transfer.sequential.tiny import tiny_next_item_config, write_tiny_ml1m

    return _config(tmp_path, tiny_next_item_config(write_tiny_ml1m(tmp_path / "ml-1m")))


def test_next_item_plots_writes_the_pngs_and_lists_them(tmp_path):
    from matplotlib.image import imread

    plots, out = tmp_path / "plots", tmp_path / "results.json"
    result = _run("--config", str(_next_item_config(tmp_path)), "--plots", str(plots),
                  "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = ["domains.png", "differences.png", "ntg.png"]
    assert payload["plots"] == [str(plots / name) for name in names]
    assert json.loads(out.read_text()) == payload
    assert sorted(p.name for p in plots.iterdir()) == sorted(names)
    for path in payload["plots"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(path).ndim == 3
    assert set(payload["intervals"]) == {"syncrec", "sasrec_cdsr"}


def test_next_item_plots_pointing_at_a_file_exits_2_before_any_work(tmp_path, monkeypatch):
    import graphsel.transfer.sequential.runner as runner

    def no_work(*args, **kwargs):
        raise AssertionError("the comparison ran")

    monkeypatch.setattr(runner, "run_next_item", no_work)
    plots, out = tmp_path / "plots", tmp_path / "results.json"
    plots.write_text("x")
    result = _run("--config", str(_next_item_config(tmp_path)), "--plots", str(plots),
                  "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "is a file" in result.stderr
    assert not out.exists() and plots.read_text() == "x"
