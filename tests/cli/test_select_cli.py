"""`graphsel select`: output file, report schema, planted truth, and bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.data.log import InteractionLog, write_log
from graphsel.errors import check_real
from graphsel.select.stage import (
    STAGES,
    Score,
    SelectionStage,
    StageDetails,
    register_stage,
)
from tests.cli.bad_input import snapshot
from tests.engines.conftest import spark  # noqa: F401  (the fixture: one Spark session)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "demo"
    result = CliRunner().invoke(cli, ["datasets", "prepare", "synthetic", "--scale", "0.2",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _select(demo: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["select", "--source", str(demo / "source.parquet"),
                                    "--target", str(demo / "target.parquet"),
                                    "--out", str(out), *extra])


def test_report_schema_and_output(demo, tmp_path):
    out, report_path = tmp_path / "selected.parquet", tmp_path / "report.json"
    result = _select(demo, out, "--stages", "graph,knn", "--report", str(report_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == json.loads(report_path.read_text())
    assert set(report) >= {"rows", "stages", "selected", "coverage", "label_rate", "truth"}
    assert [s["name"] for s in report["stages"]] == ["graph", "knn"]
    for stage in report["stages"]:
        assert set(stage) >= {"name", "kept", "seconds"}
    assert set(report["coverage"]) == {"target_users", "target_items"}
    assert set(report["label_rate"]) == {"target", "selected", "source"}
    assert set(report["truth"]) == {"precision", "recall"}
    table = pq.read_table(out)
    assert table.num_rows == report["selected"]
    assert table.column_names[:5] == ["user_id", "item_id", "ts", "label", "domain"]
    assert table.column_names[-4:] == ["hop", "p_target", "knn_score", "weight"]
    source = pq.read_table(demo / "source.parquet")
    assert set(source.column_names) <= set(table.column_names)


def test_text_output_ends_with_the_funnel(demo, tmp_path):
    result = _select(demo, tmp_path / "s.parquet", "--stages", "graph")
    assert result.exit_code == 0, result.output
    assert "selection funnel" in result.output
    assert "planted truth: precision" in result.output


@pytest.mark.parametrize("args, words", [
    (["--stages", "graph,magic"], ["stage 'magic'"]),
    (["--knn-index", "hnsw32"], ["hnsw32"]),
    (["--budget", "10", "--keep-quantile", "0.5"], ["at most one"]),
    (["--max-degree", "lots"], ["--max-degree"]),
    (["--hops", "-1"], ["num_hops"]),
    (["--stages", "graph", "--budget", "5"], ["'da' stage"]),
])
def test_bad_options_exit_2_without_output(demo, tmp_path, args, words):
    out = tmp_path / "s.parquet"
    result = _select(demo, out, *args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    for word in words:
        assert word in result.output
    assert not out.exists()


def test_bad_source_file_exits_2(tmp_path, demo):
    bad = tmp_path / "source.parquet"
    bad.write_text("not parquet")
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(cli, ["select", "--source", str(bad), "--target",
                                      str(demo / "target.parquet"), "--out", str(out)])
    assert result.exit_code == 2 and "source.parquet" in result.output
    assert not out.exists()


def test_out_is_a_directory(tmp_path, demo):
    result = _select(demo, tmp_path, "--stages", "graph")
    assert result.exit_code == 2 and "is a directory" in result.output


def test_plots_are_written(demo, tmp_path):
    plots = tmp_path / "plots"
    result = _select(demo, tmp_path / "s.parquet", "--stages", "graph,knn", "--plots",
                     str(plots), "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)["plots"]
    assert {Path(p).name for p in written} >= {"funnel.png", "scores.png", "hops.png",
                                               "expansion.png"}
    for path in written:
        assert Path(path).read_bytes()[:4] == b"\x89PNG"


def test_plots_dir_is_a_file(demo, tmp_path):
    file = tmp_path / "plots"
    file.write_text("x")
    out = tmp_path / "s.parquet"
    result = _select(demo, out, "--stages", "graph", "--plots", str(file))
    assert result.exit_code == 2 and "is a file" in result.output
    assert not out.exists()


# -- a new stage is one class and one registration line --------------------------------------


@dataclass(frozen=True)
class _RateReport(StageDetails):
    target_rate: float

    def note(self) -> str:
        return f"target label rate {self.target_rate:.2f}"


class _UserLabelRate(SelectionStage):
    """Keeps the rows whose user's label rate (over the candidates) is at least the
    target's plus ``margin``."""

    SCORES = (Score("user_label_rate", "user_label_rate_"),)

    def __init__(self, margin: float = 0.0) -> None:
        self.margin = margin

    def check_params(self) -> None:
        check_real("margin", self.margin, -1.0, 1.0)

    def fit(self, candidates, target, *, context=None):
        self.check_params()
        size = candidates.index.num_users
        rate = (np.bincount(candidates.user, weights=candidates.label, minlength=size)
                / np.maximum(np.bincount(candidates.user, minlength=size), 1))
        target_rate = float(target.label.mean())
        self.user_label_rate_ = rate[candidates.user].astype(np.float32)
        self.support_ = self.user_label_rate_ >= target_rate + self.margin
        self.report_ = _RateReport(target_rate)
        return self


@pytest.fixture
def toy_stage(monkeypatch):
    """Registers the toy stage for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(STAGES, "_entries", dict(STAGES._entries))
    monkeypatch.setattr(STAGES, "_order", list(STAGES._order))
    register_stage("toy")(_UserLabelRate)


@pytest.fixture
def tiny(tmp_path) -> list[str]:
    """Users a, b, c near the target (items 1, 2, 3), x and y far away (items 8, 9).

    Source rows: 0 a-1 (1)  1 b-1 (0)  2 b-2 (0)  3 c-2 (1)  4 c-3 (0)  5 x-8  6 y-8  7 y-9
    8 x-9  9 c-9 (1). The graph keeps 0-4 and 9; label rates: a 1, b 0, c 2/3; target 1/2.
    """
    source = InteractionLog.from_columns(
        ["a", "b", "b", "c", "c", "x", "y", "y", "x", "c"], [1, 1, 2, 2, 3, 8, 8, 9, 9, 9],
        list(range(100, 110)), [1, 0, 0, 1, 0, 1, 1, 0, 1, 1], "source")
    target = InteractionLog.from_columns(["a", "a"], [1, 3], [200, 201], [1, 0], "target")
    write_log(source, tmp_path / "source.parquet")
    write_log(target, tmp_path / "target.parquet")
    return ["select", "--source", str(tmp_path / "source.parquet"), "--target",
            str(tmp_path / "target.parquet")]


def test_a_registered_stage_runs_through_the_cli(toy_stage, tiny, tmp_path):
    out = tmp_path / "selected.parquet"
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--stages", "graph,toy",
                                      "--json"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column("user_id").to_pylist() == ["a", "c", "c", "c"]
    assert table.column("item_id").to_pylist() == [1, 2, 3, 9]
    assert table.column_names[-5:] == ["hop", "p_target", "knn_score", "user_label_rate",
                                       "weight"]
    np.testing.assert_allclose(table.column("user_label_rate").to_numpy(),
                               [1, 2 / 3, 2 / 3, 2 / 3], rtol=1e-6)
    assert table.column("hop").to_pylist() == [0, 2, 1, 2]
    assert table.column("weight").to_pylist() == [1, 1, 1, 1]
    report = json.loads(result.output)
    assert [(s["name"], s["kept"]) for s in report["stages"]] == [("graph", 6), ("toy", 4)]
    assert report["stages"][1]["target_rate"] == 0.5
    text = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--stages", "graph,toy"])
    assert "target label rate 0.50" in text.output


def test_a_registered_stage_takes_its_parameters_from_the_config(toy_stage, tiny, tmp_path):
    config = tmp_path / "select.yaml"
    config.write_text("stages: [graph, toy]\ntoy: {margin: 0.2}\n")
    out = tmp_path / "selected.parquet"
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).column("user_id").to_pylist() == ["a"]
    config.write_text("stages: [graph, toy]\ntoy: {margin: 2}\n")
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--config", str(config)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {config}: toy: margin must be a number in")


# -- precedence: stage defaults < --config < flags ----------------------------------------------


def test_config_then_flags(tiny, tmp_path):
    config = tmp_path / "select.yaml"
    config.write_text("stages: [graph]\ngraph: {num_hops: 1, max_degree: none}\n")
    out = tmp_path / "selected.parquet"
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--config", str(config),
                                      "--json"])
    assert result.exit_code == 2 and "max_degree must be a number >= 0, 'auto' or None, got " \
                                      "'none'" in result.output
    config.write_text("stages: [graph]\ngraph: {num_hops: 1, max_degree: null}\n")
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--config", str(config),
                                      "--json"])
    assert result.exit_code == 0, result.output
    graph = json.loads(result.output)["stages"][0]
    assert (len(graph["hops"]), graph["max_degree"], graph["kept"]) == (2, None, 3)
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--config", str(config),
                                      "--hops", "2", "--max-degree", "1", "--json"])
    graph = json.loads(result.output)["stages"][0]
    assert (len(graph["hops"]), graph["max_degree"]) == (3, 1.0)


def test_a_rule_flag_replaces_the_configs_rule(tiny, tmp_path):
    config = tmp_path / "select.yaml"
    config.write_text("stages: [graph, knn]\nknn: {keep_quantile: 0.5, index: Flat, k: 2}\n")
    out = tmp_path / "selected.parquet"
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), "--config", str(config),
                                      "--knn-threshold", "-1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["stages"][1]["kept"] == report["stages"][0]["kept"] == 6
    assert report["stages"][1]["index"] == "Flat"


# -- outputs as one unit; degenerate selections say so --------------------------------------------


def test_interrupt_while_plotting_leaves_no_output(tiny, tmp_path, monkeypatch):
    """Ctrl-C while the figures are written: no rows, no plots folder, no report, no temp."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "plots").mkdir()
    (work / "plots" / "mine.txt").write_text("kept")

    def interrupted(selector, out_dir, truth=None):
        (out_dir / "funnel.png").write_bytes(b"half")  # some figures are written already
        raise KeyboardInterrupt

    monkeypatch.setattr("graphsel.cli.select.save_plots", interrupted)
    before = snapshot(work)
    result = CliRunner().invoke(cli, [*tiny, "--out", str(work / "s.parquet"), "--stages",
                                      "graph", "--plots", str(work / "plots"), "--report",
                                      str(work / "report.json")])
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines() == [
        "error: interrupted (Ctrl-C); unfinished output files were removed"]
    assert snapshot(work) == before


def test_plots_report_and_rows_arrive_together(tiny, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "plots").mkdir()
    (work / "plots" / "mine.txt").write_text("kept")
    result = CliRunner().invoke(cli, [*tiny, "--out", str(work / "s.parquet"), "--stages",
                                      "graph", "--plots", str(work / "plots"), "--report",
                                      str(work / "report.json"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads((work / "report.json").read_text())
    assert sorted(p.name for p in work.iterdir()) == ["plots", "report.json", "s.parquet"]
    assert (work / "plots" / "mine.txt").read_text() == "kept"
    assert report["plots"] == [str(work / "plots" / name) for name in
                               ("funnel.png", "scores.png", "hops.png", "selected_hops.png",
                                "expansion.png")]
    assert all(Path(path).stat().st_size > 0 for path in report["plots"])
    # a new plots folder is renamed into place whole
    result = CliRunner().invoke(cli, [*tiny, "--out", str(work / "s.parquet"), "--stages",
                                      "graph", "--plots", str(work / "new")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (work / "new").iterdir()) == [
        "expansion.png", "funnel.png", "hops.png", "scores.png", "selected_hops.png"]
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_an_expansion_that_reaches_only_the_seeds_says_so(tiny, tmp_path):
    result = CliRunner().invoke(cli, [*tiny, "--out", str(tmp_path / "s.parquet"), "--stages",
                                      "graph", "--as-of", "0", "--json"])
    assert result.exit_code == 0, result.output
    warning = ("graph stage: the expansion reached nothing beyond the seeds: no edge is before "
               "as_of=0 (the candidates' first ts is 100); only rows between the 1 seed users "
               "and 2 seed items were kept")
    assert result.stderr.splitlines() == [f"warning: {warning}"]
    report = json.loads(result.stdout)
    assert report["warnings"] == [warning] and report["selected"] == 1


def test_a_seed_hub_keeps_no_more_rows_than_the_cap(tmp_path):
    """A seed user with 200 rows among 10 users of 3 rows: capped at --max-degree rows."""
    users = ["hub"] * 200 + [f"u{i}" for i in range(10) for _ in range(3)]
    items = [i % 5 for i in range(200)] + [i % 5 for i in range(30)]
    source = InteractionLog.from_columns(users, items, list(range(230)), [1, 0] * 115, "source")
    target = InteractionLog.from_columns(["hub", "u0"], [0, 1], [300, 301], [1, 0], "target")
    write_log(source, tmp_path / "source.parquet")
    write_log(target, tmp_path / "target.parquet")
    args = ["select", "--source", str(tmp_path / "source.parquet"), "--target",
            str(tmp_path / "target.parquet"), "--out", str(tmp_path / "s.parquet"),
            "--stages", "graph", "--max-degree", "20", "--json"]
    uncapped = json.loads(CliRunner().invoke(cli, [*args, "--max-user-rows", "none"]).stdout)
    capped = json.loads(CliRunner().invoke(cli, args).stdout)
    assert (uncapped["selected"], capped["selected"]) == (230, 50)
    assert capped["stages"][0]["user_rows"] == {"max": 20, "users": 1, "dropped": 180}
    rows = pq.read_table(tmp_path / "s.parquet").column("user_id").to_pylist()
    assert rows.count("hub") == 20 and len(rows) == 50


# --------------------------------------------------------------------------------------------
# --engine spark: what --engine local writes, row for row, and the same report
# --------------------------------------------------------------------------------------------

GRAPH_ONLY = ("--stages", "graph", "--max-user-rows", "none")


def _on_spark() -> list[str]:
    """``--engine spark`` on a small local session (the settings of the Spark tests)."""
    from graphsel.engines.spark import SMALL_CONF

    return ["--engine", "spark", "--master", "local[1]",
            *(flag for key, value in SMALL_CONF.items() for flag in ("--conf", f"{key}={value}"))]


def _both_engines(args: list[str], tmp_path: Path, *extra: str) -> tuple[dict, dict]:
    """Runs ``select`` on both engines; asserts equal rows; returns both reports."""
    from graphsel.data.log import read_log

    reports = []
    for engine in ("local", "spark"):
        out, report = tmp_path / f"{engine}.parquet", tmp_path / f"{engine}.json"
        result = CliRunner().invoke(cli, [*args, "--out", str(out), *GRAPH_ONLY, *extra,
                                          "--report", str(report),
                                          *(_on_spark() if engine == "spark" else [])])
        assert result.exit_code == 0, result.output
        assert f"rows to {out}" in result.output.splitlines()[-1]
        reports.append(json.loads(report.read_text()))
    local, on_spark = (read_log(tmp_path / f"{engine}.parquet").table
                       for engine in ("local", "spark"))
    assert on_spark.schema.remove_metadata() == local.schema.remove_metadata()
    for name in local.column_names:  # NaN p_target / knn_score equal NaN
        np.testing.assert_array_equal(on_spark.column(name).to_numpy(zero_copy_only=False),
                                      local.column(name).to_numpy(zero_copy_only=False), name)
    for report in reports:
        report.pop("out")
        report["stages"][0].pop("seconds")
    return reports[0], reports[1]


@pytest.mark.spark
@pytest.mark.usefixtures("spark")
def test_spark_engine_writes_what_the_local_engine_writes(tiny, tmp_path):
    local, on_spark = _both_engines(tiny, tmp_path, "--hops", "1", "--mode", "any")
    assert on_spark == local
    assert local["selected"] == 6 and local["stages"][0]["name"] == "graph"  # rows 0-4, 9


@pytest.mark.spark
@pytest.mark.usefixtures("spark")
def test_spark_engine_on_the_synthetic_default(demo, tmp_path):
    args = ["select", "--source", str(demo / "source.parquet"), "--target",
            str(demo / "target.parquet")]
    local, on_spark = _both_engines(args, tmp_path)
    assert local.pop("truth")  # the planted truth beside the source: the local engine only
    assert on_spark == local
    assert local["stages"][0]["capped"] != {"users": 0, "items": 0}  # the auto cap bites


@pytest.mark.spark
@pytest.mark.usefixtures("spark")
def test_spark_engine_empty_selection_says_what_local_says(tiny, tmp_path):
    # the target shares user a only: no row has both ends among the seeds at hop 0
    target = InteractionLog.from_columns(["a"], [99], [200], [1], "target")
    write_log(target, tmp_path / "target.parquet")
    outputs = []
    for engine in ([], _on_spark()):
        out = tmp_path / f"out{len(outputs)}.parquet"
        result = CliRunner().invoke(cli, [*tiny, "--out", str(out), *GRAPH_ONLY, "--hops", "0",
                                          *engine])
        assert result.exit_code == 2 and not out.exists()
        outputs.append(result.output)
    assert outputs[1] == outputs[0] and outputs[0].startswith("error: the selection is empty")


@pytest.mark.parametrize("args, words", [
    (["--engine", "spark", "--stages", "graph"], ["max_user_rows='auto'", "--max-user-rows none"]),
    (["--engine", "spark", "--stages", "knn,graph", "--max-user-rows", "none"],
     ["the Spark engine runs the stages graph,da,knn in that order", "got knn,graph"]),
    (["--engine", "spark", *GRAPH_ONLY, "--fanout", "2"], ["fanout=2", "not supported"]),
    (["--engine", "spark", *GRAPH_ONLY, "--conf", "memory"], ["--conf must be KEY=VALUE"]),
    (["--engine", "spark", *GRAPH_ONLY, "--plots", "figs"], ["--plots", "--engine local"]),
    (["--engine", "flink"], ["--engine 'flink'", "['local', 'spark']"]),
    (["--master", "local[2]"], ["--master", "--engine spark"]),
])
def test_bad_engine_options_exit_2_in_one_line(tiny, tmp_path, args, words):
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(cli, [*tiny, "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    for word in words:
        assert word in result.output
    assert not out.exists()


@pytest.mark.parametrize(("figures", "kept"), [((), False), (("--plots", "plots"), True),
                                               (("--html", "page.html"), True)])
def test_the_graph_is_kept_only_for_the_figures(tiny, tmp_path, monkeypatch, figures, kept):
    """Without a figure to draw the expansion, the graph stage frees its graph (keep_graph)."""
    from graphsel.select.expansion import GraphExpansion

    seen = []
    fit = GraphExpansion.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(self.keep_graph)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(GraphExpansion, "fit", recording_fit)
    paths = [figures[0], str(tmp_path / figures[1])] if figures else []
    result = CliRunner().invoke(cli, [*tiny, "--out", str(tmp_path / "s.parquet"), "--stages",
                                      "graph", *paths])
    assert result.exit_code == 0, result.output
    assert seen == [kept]
