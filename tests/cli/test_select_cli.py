"""`graphsel select`: output file, report schema, planted truth, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from graphsel.cli import cli


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
