"""Tests of ``graphsel expand``."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.data.log import InteractionLog, write_log


@pytest.fixture
def logs(tmp_path):
    """Source: a-x, b-x, c-x (x a hub of 3), a-y (purchase), d-z; target shares user a."""
    source = InteractionLog.from_columns(
        ["a", "b", "c", "a", "d"], ["x", "x", "x", "y", "z"], [1, 2, 3, 4, 5], [1, 1, 1, 1, 1],
        "source", ["click", "click", "click", "purchase", "click"])
    target = InteractionLog.from_columns(["a", "e"], ["v", "v"], [6, 7], [1, 1], "target")
    source_path, target_path = tmp_path / "source.parquet", tmp_path / "target.parquet"
    write_log(source, source_path)
    write_log(target, target_path)
    return ["--source", str(source_path), "--target", str(target_path)]


def _run(args):
    return CliRunner().invoke(cli, ["expand", *args])


def test_expand_writes_reached_nodes_and_prints_hops(logs, tmp_path):
    out = tmp_path / "nodes.parquet"
    result = _run([*logs, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pydict() == {
        "node_type": ["user", "user", "user", "item", "item"],
        "node_id": ["a", "b", "c", "x", "y"],
        "hop": [0, 2, 2, 1, 1],
        "degree": [2, 1, 1, 3, 1],
    }
    lines = result.output.splitlines()
    assert lines[0] == "expansion over click, purchase (5 source rows)"
    assert lines[1].split() == ["hop", "users", "items", "rows", "(both)", "rows", "so", "far"]
    assert [line.split() for line in lines[3:6]] == [
        ["0", "1", "0", "0", "0"], ["1", "0", "2", "2", "2"], ["2", "2", "0", "2", "4"]]
    # the graph stage's default cap, "auto": at least 50 edges, so nothing is capped here
    assert lines[-2:] == ["hubs above 50 edges (auto) capped: 0 users, 0 items",
                          f"wrote 5 nodes to {out}"]
    uncapped = _run([*logs, "--out", str(out), "--max-degree", "none"])
    assert uncapped.exit_code == 0, uncapped.output
    assert uncapped.output.splitlines()[-2:] == ["no hub cap", f"wrote 5 nodes to {out}"]
    assert pq.read_table(out).column("node_id").to_pylist() == ["a", "b", "c", "x", "y"]


def test_expand_caps_hubs_and_prints_json(logs, tmp_path):
    out = tmp_path / "nodes.parquet"
    result = _run([*logs, "--out", str(out), "--max-degree", "2", "--relations", "click",
                   "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["capped"] == {"users": 0, "items": 1}
    assert payload["relations"] == ["click"]
    assert payload["reached"] == {"users": 1, "items": 1}
    assert [hop["rows_cumulative"] for hop in payload["hops"]] == [0, 1, 1]
    assert pq.read_table(out).column("node_id").to_pylist() == ["a", "x"]
    assert payload["max_degree"] == 2.0
    assert result.exit_code == 0 and _run([*logs, "--out", str(out), "--max-degree", "2",
                                           "--relations", "click"]).output.splitlines()[-2] == (
        "hubs above 2 edges capped: 0 users, 1 items")


def test_expand_reads_the_graph_part_of_a_selection_config(logs, tmp_path):
    config = tmp_path / "select.yaml"
    config.write_text("stages: [graph, knn]\nknn: {k: 3}\n"
                      "graph: {num_hops: 1, max_degree: 2, relations: [click]}\n")
    out = tmp_path / "nodes.parquet"
    result = _run([*logs, "--out", str(out), "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert (payload["max_degree"], payload["relations"]) == (2, ["click"])
    assert [hop["hop"] for hop in payload["hops"]] == [0, 1]
    # a flag replaces the one value it names
    result = _run([*logs, "--out", str(out), "--config", str(config), "--hops", "2", "--json"])
    payload = json.loads(result.output)
    assert [hop["hop"] for hop in payload["hops"]] == [0, 1, 2]
    assert payload["capped"] == {"users": 0, "items": 1}


@pytest.mark.parametrize("extra, message", [
    (["--relations", "click,buy"],
     "error: Could not resolve relation 'buy' among ['click', 'purchase']"),
    (["--hops", "-1"], "error: --hops: num_hops must be an integer >= 0 and <= 100, got -1"),
    (["--edges", "some"],
     "error: --edges: Could not resolve edges 'some' among ['all', 'positive']"),
    (["--fanout", "0"], "error: --fanout: fanout must be an integer >= 1 or None, got 0"),
    (["--mode", "edge"], "error: --mode: Could not resolve mode 'edge' among"),
])
def test_bad_input_exits_2_with_one_line_and_no_file(logs, tmp_path, extra, message):
    out = tmp_path / "nodes.parquet"
    result = _run([*logs, "--out", str(out), *extra])
    assert result.exit_code == 2
    assert result.output.strip().startswith(message)
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.parquet", "target.parquet"]


def test_missing_output_folder_exits_2(logs, tmp_path):
    result = _run([*logs, "--out", str(tmp_path / "missing" / "nodes.parquet")])
    assert result.exit_code == 2
    assert "parent directory" in result.output


def test_expand_prints_the_hops_that_reached_something(logs, tmp_path):
    out = tmp_path / "nodes.parquet"
    result = _run([*logs, "--out", str(out), "--hops", "100"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # hops 0, 1, 2 reach nodes; the 98 empty hops after them are one line
    assert [line.split()[0] for line in lines[3:6]] == ["0", "1", "2"]
    assert lines[6] == "the expansion stopped at hop 2 of 100: hop 3 reached no new user or item"
    assert len(lines) == 10
    payload = json.loads(_run([*logs, "--out", str(out), "--hops", "100", "--json"]).output)
    assert len(payload["hops"]) == 101  # the JSON keeps every hop asked for
    exact = _run([*logs, "--out", str(out), "--hops", "2"]).output
    assert "stopped" not in exact


def test_expand_counts_have_thousands_separators(tmp_path):
    """1,500 users click hub x; the target shares user u0."""
    users = [f"u{i}" for i in range(1500)]
    source = InteractionLog.from_columns(users, ["x"] * 1500, list(range(1500)), [1] * 1500,
                                         "source")
    target = InteractionLog.from_columns(["u0", "v"], ["y", "y"], [0, 1], [1, 0], "target")
    write_log(source, tmp_path / "source.parquet")
    write_log(target, tmp_path / "target.parquet")
    out = tmp_path / "nodes.parquet"
    result = _run(["--source", str(tmp_path / "source.parquet"), "--target",
                   str(tmp_path / "target.parquet"), "--out", str(out), "--max-degree", "none"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "expansion over click (1,500 source rows)"
    assert [line.split() for line in lines[3:6]] == [
        ["0", "1", "0", "0", "0"], ["1", "0", "1", "1", "1"],
        ["2", "1,499", "0", "1,499", "1,500"]]
    assert lines[-1] == f"wrote 1,501 nodes to {out}"
