"""The Spark graph stage equals the in-memory one: same hops, same rows, same order, same errors.

The oracle is the graph stage itself, ``GraphExpansion(...).fit(source, target)`` (what
``graphsel select --stages graph`` runs), with ``max_user_rows=None`` on both engines; the
tiny hand-built log also has hops worked out by hand. The histogram tests at the top need no
Spark: they hold the Spark engine's hub cap equal to the stage's ``resolve_max_degree``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphsel.data.log import decode_strings
from graphsel.data.log import read_log as read_local_log
from graphsel.data.log import read_pair as read_local_pair
from graphsel.engines.histogram import auto_max_degree, percentile_from_histogram
from graphsel.errors import InputError
from graphsel.graph.bipartite import BipartiteGraph
from graphsel.select.expansion import GraphExpansion, GraphReport, resolve_max_degree

# --------------------------------------------------------------------------------------------
# The hub cap from a histogram (no Spark)
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=400),
       st.sampled_from([0, 1, 33.3, 50, 90, 99, 99.9, 100]))
def test_histogram_percentile_is_numpys_bit_for_bit(degrees: list[int], q: float) -> None:
    values, counts = np.unique(degrees, return_counts=True)
    assert percentile_from_histogram(values, counts, q) == np.percentile(degrees, q)


def test_histogram_percentile_on_a_large_power_law() -> None:
    degrees = (np.random.default_rng(0).pareto(1.1, 2_000_003) * 3).astype(np.int64) + 1
    values, counts = np.unique(degrees, return_counts=True)
    assert percentile_from_histogram(values, counts, 99) == np.percentile(degrees, 99)
    assert auto_max_degree(values, counts) == max(50.0, float(np.percentile(degrees, 99)))


def test_auto_cap_ignores_zero_degrees_and_has_a_floor() -> None:
    assert auto_max_degree([0, 3], [10, 5]) == 50.0
    assert auto_max_degree([0], [7]) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)), min_size=1, max_size=600))
def test_histogram_cap_equals_the_stages_auto_cap(pairs: list[tuple[int, int]]) -> None:
    # the in-memory stage's rule on every node's degree vs the histogram Spark collects
    users, items = (np.array(side) for side in zip(*pairs))
    graph = BipartiteGraph.from_arrays(users, items)
    degrees = np.concatenate([graph.degree("user"), graph.degree("item")])
    values, counts = np.unique(degrees, return_counts=True)
    assert auto_max_degree(values, counts) == resolve_max_degree(graph, "auto")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

spark_only = pytest.mark.spark


def write(table: pa.Table, path: Path) -> str:
    pq.write_table(table, path)
    return str(path)


def log_table(rows: list[tuple[Any, ...]], columns: str = "user_id item_id ts label behavior",
              domain: str = "source") -> pa.Table:
    names = columns.split()
    data: dict[str, Any] = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    data["domain"] = [domain] * len(rows)
    return pa.table(data)


def assert_same_rows(spark_rows: pa.Table, local_rows: pa.Table) -> None:
    """Same columns, types and values (NaN equal to NaN), row for row; string columns as
    strings (a log read in memory holds them dictionary-encoded, both engines write strings)."""
    spark_rows, local_rows = decode_strings(spark_rows), decode_strings(local_rows)
    assert spark_rows.schema == local_rows.schema
    for name in local_rows.column_names:
        np.testing.assert_array_equal(spark_rows.column(name).to_numpy(zero_copy_only=False),
                                      local_rows.column(name).to_numpy(zero_copy_only=False),
                                      err_msg=name)


def stage(**params: Any) -> GraphExpansion:
    """The graph stage with the per-user cap off, as both engines run it."""
    return GraphExpansion(**{"max_user_rows": None, **params})


def in_memory(source: str, target: str, graph: GraphExpansion) -> tuple[GraphExpansion, pa.Table]:
    """The fitted in-memory stage and its selected rows with ``hop`` (the oracle)."""
    source_log, target_log = read_local_pair(source, target)
    fitted = graph.fit(source_log, target_log)
    rows = np.flatnonzero(fitted.support_)
    table = source_log.table.take(pa.array(rows))
    return fitted, table.append_column("hop", pa.array(fitted.hop_[rows]))


def both_engines(spark: Any, source: Any, target: Any,
                 graph: GraphExpansion) -> tuple[GraphReport, pa.Table, GraphExpansion, pa.Table]:
    """The Spark stage's report and rows, and the in-memory stage and rows, on the same files.

    ``source`` and ``target`` are paths, or Spark logs already read (one read for several
    parameter sets: every Spark job costs ~0.1 s on a test session).
    """
    from graphsel.engines import spark as engine

    if isinstance(source, str):
        source, target = engine.read_pair(spark, source, target)
    expansion = engine.expand(source, target, graph)
    rows = engine.graph_select(source, expansion, graph.mode).toArrow()
    local, local_rows = in_memory(source.name, target.name, graph)
    return expansion.report(), rows, local, local_rows


# A tiny log with string ids, two relations and parallel edges; target shares u1 and i3.
#   row: user item ts label behavior
SOURCE_ROWS = [
    ("u1", "i1", 10, 1, "click"),
    ("u1", "i2", 20, 0, "click"),
    ("u2", "i2", 30, 1, "purchase"),
    ("u2", "i3", 40, 1, "click"),
    ("u3", "i3", 50, 0, "click"),
    ("u3", "i4", 60, 1, "purchase"),
    ("u4", "i5", 70, 1, "click"),
    ("u1", "i2", 5, 1, "purchase"),   # the pair of row 1 in another relation: a parallel edge
    ("u5", "i1", 80, 1, "click"),
    ("u2", "i2", 35, 1, "purchase"),  # row 2 again, later: the edge keeps ts 30
    ("u6", "i6", 90, 0, "click"),
]
TARGET_ROWS = [("u1", "ix", 1, 1, "click"), ("uy", "i3", 2, 0, "click")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("tiny")
    source = log_table(SOURCE_ROWS).append_column("price", pa.array(
        [1.5 * i for i in range(len(SOURCE_ROWS))]))
    return (write(source, folder / "source.parquet"),
            write(log_table(TARGET_ROWS, domain="target"), folder / "target.parquet"))


@pytest.fixture(scope="module")
def tiny_logs(spark: Any, tiny: tuple[str, str]) -> tuple[Any, Any]:
    from graphsel.engines import spark as engine

    return engine.read_pair(spark, *tiny)


# --------------------------------------------------------------------------------------------
# Equality with the in-memory engine
# --------------------------------------------------------------------------------------------


@spark_only
def test_synthetic_default_equals_in_memory_and_writes_rows_in_order(
        spark: Any, synthetic: tuple[str, str], tmp_path: Path) -> None:
    from graphsel.engines import spark as engine

    graph = stage()  # every default of the stage but the per-user cap
    result = engine.run_graph_stage(spark, *synthetic, graph)
    local, local_rows = in_memory(*synthetic, graph)
    assert (local.report_.capped_users, local.report_.capped_items) != (0, 0)  # the cap bites
    assert result.report == local.report_
    out = engine.write_rows(result.rows, tmp_path / "selected.parquet")
    # written in order: graphsel's own reader (files by name) gives the in-memory rows
    assert_same_rows(read_local_log(out).table, local_rows)


@spark_only
def test_synthetic_positive_edges_any_mode_three_hops_as_of_broadcast(
        spark: Any, synthetic: tuple[str, str]) -> None:
    graph = stage(num_hops=3, mode="any", edges="positive", as_of=1_512_000_000)
    # with broadcast joins allowed, the small node sets are broadcast (explicit hints)
    key = "spark.sql.autoBroadcastJoinThreshold"
    spark.conf.set(key, "10m")
    try:
        report, rows, local, local_rows = both_engines(spark, *synthetic, graph)
    finally:
        spark.conf.set(key, "-1")
    assert report == local.report_
    assert_same_rows(rows, local_rows)


@spark_only
def test_tiny_log_hops_by_hand_in_every_mode(tiny: tuple[str, str],
                                             tiny_logs: tuple[Any, Any]) -> None:
    from graphsel.engines import spark as engine

    source, target = tiny_logs
    expansion = engine.expand(source, target, stage(max_degree=None))
    # seeds u1, i3; hop 1: i1 i2 (from u1), u2 u3 (from i3); hop 2: u5 (from i1), i4 (from u3)
    users = dict(expansion.users.collect())
    items = dict(expansion.items.collect())
    assert users == {"u1": 0, "u2": 1, "u3": 1, "u5": 2}
    assert items == {"i3": 0, "i1": 1, "i2": 1, "i4": 2}
    assert expansion.hop_counts == [(1, 1), (2, 2), (1, 1)]
    expected = {
        "both": [1, 1, 1, 1, 1, 2, 1, 2, 1],
        "user": [0, 0, 1, 1, 1, 1, 0, 2, 1],
        "item": [1, 1, 1, 0, 0, 2, 1, 1, 1],
        "any": [0, 0, 1, 0, 0, 1, 0, 1, 1],
    }
    for mode, hops in expected.items():
        rows = engine.graph_select(source, expansion, mode).toArrow()
        _, local_rows = in_memory(*tiny, stage(max_degree=None, mode=mode))
        assert rows.column("hop").to_pylist() == hops, mode
        assert_same_rows(rows, local_rows)
    assert rows.column_names == ["user_id", "item_id", "ts", "label", "behavior", "domain",
                                 "price", "hop"]


@spark_only
@pytest.mark.parametrize("params", [
    {"as_of": 36, "max_degree": None},
    {"relations": ["purchase"], "max_degree": None, "mode": "any"},
    {"relations": ("user", "click", "item"), "max_degree": None},  # one edge type
    {"edges": "positive", "max_degree": None, "num_hops": 3},
    # degrees count parallel edges: u1 and i2 have 3 (two relations), so both are hubs
    {"max_degree": 2, "mode": "user"},
    {"num_hops": 0, "mode": "any"},
], ids=["as_of", "relations", "edge_type", "positive", "hub_cap", "zero_hops"])
def test_tiny_log_parameters_equal_in_memory(spark: Any, tiny_logs: tuple[Any, Any],
                                             params: dict[str, Any]) -> None:
    report, rows, local, local_rows = both_engines(spark, *tiny_logs, stage(**params))
    assert report == local.report_
    assert_same_rows(rows, local_rows)
    if params.get("max_degree") == 2:
        assert (report.capped_users, report.capped_items) == (1, 0)  # u1; i2 at the last hop


@spark_only
def test_empty_reach_selects_no_rows(spark: Any, tmp_path: Path) -> None:
    # the one shared user has only a negative row: no edge, so nothing beyond the seed
    source = write(log_table(SOURCE_ROWS), tmp_path / "s.parquet")
    target = write(log_table([("u6", "iz", 1, 1, "click")], domain="target"),
                   tmp_path / "t.parquet")
    report, rows, local, local_rows = both_engines(spark, source, target,
                                                   stage(edges="positive"))
    # the in-memory stage also warns that it reached only the seeds; Spark does not
    assert local.report_.warning is not None
    assert report == dataclasses.replace(local.report_, warning=None)
    assert [(h.users, h.items) for h in report.hops] == [(1, 0), (0, 0), (0, 0)]
    assert rows.num_rows == local_rows.num_rows == 0
    assert_same_rows(rows, local_rows)


@spark_only
def test_integer_ids_across_files_of_a_directory(spark: Any, tmp_path: Path) -> None:
    # rows are numbered files-by-name then in file order, as the in-memory reader does
    rows = [(u, (u * 7) % 5, u, 1, "click") for u in range(12)]
    folder = tmp_path / "source"
    folder.mkdir()
    write(log_table(rows[6:]), folder / "b.parquet")
    write(log_table(rows[:6]), folder / "a.parquet")
    target = write(log_table([(3, 99, 0, 1, "click")], domain="target"), tmp_path / "t.parquet")
    _, spark_rows, _, local_rows = both_engines(spark, str(folder), target, stage(num_hops=3))
    assert local_rows.num_rows > 0
    assert_same_rows(spark_rows, local_rows)


# --------------------------------------------------------------------------------------------
# Bad input: the in-memory engine's messages
# --------------------------------------------------------------------------------------------

GOOD = [("a", "x", 1, 1, "click"), ("b", "y", 2, 0, "click"), ("c", "z", 3, 1, "click")]


def _bad(rows: list[tuple[Any, ...]] | None = None, **columns: Any) -> pa.Table:
    table = log_table(rows or GOOD)
    for name, values in columns.items():
        if values is None:
            table = table.drop_columns([name])
        elif name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table


BAD_TABLES = {
    "missing_column": _bad(domain=None),
    "label_outside": _bad(label=pa.array([0, 1, 2], pa.int64())),
    "label_fraction": _bad(label=pa.array([0.0, 0.5, 1.0])),
    "label_null": _bad(label=pa.array([0, None, 1], pa.int8())),
    "label_type": _bad(label=pa.array(["0", "1", "1"])),
    "null_user": _bad(user_id=pa.array(["a", None, "c"])),
    "empty_item": _bad(item_id=pa.array(["x", "y", ""])),
    "float_user": _bad(user_id=pa.array([1.5, 2.0, 3.0])),
    "ts_null": _bad(ts=pa.array([1, None, 3], pa.int64())),
    "ts_negative": _bad(ts=pa.array([1, 2, -3], pa.int64())),
    "ts_float": _bad(ts=pa.array([1.0, 2.5, 3.0])),
    "behavior_empty": _bad(behavior=pa.array(["click", "", "click"])),
    "domain_type": _bad(domain=pa.array([1, 2, 3])),
    "feature_type": _bad(day=pa.array([0, 1, 2], pa.int32()).cast(pa.date32())),
    "no_rows": _bad().slice(0, 0),
}


@spark_only
@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_input_raises_the_in_memory_message(spark: Any, tmp_path: Path, case: str) -> None:
    from graphsel.engines import spark as engine

    path = write(BAD_TABLES[case], tmp_path / f"{case}.parquet")
    with pytest.raises(InputError) as local:
        read_local_log(path)
    with pytest.raises(InputError) as remote:
        engine.read_log(spark, path)
    assert str(remote.value) == str(local.value)


@spark_only
def test_bad_row_is_numbered_across_files(spark: Any, tmp_path: Path) -> None:
    from graphsel.engines import spark as engine

    folder = tmp_path / "log"
    folder.mkdir()
    write(_bad(label=pa.array([0, 1, 7], pa.int64())), folder / "part-1.parquet")
    write(_bad(), folder / "part-0.parquet")
    with pytest.raises(InputError) as local:
        read_local_log(folder)
    with pytest.raises(InputError, match="has value 7 at row 5, expected 0 or 1") as remote:
        engine.read_log(spark, str(folder))
    assert str(remote.value) == str(local.value)


@spark_only
def test_pair_errors_equal_in_memory(spark: Any, tmp_path: Path) -> None:
    from graphsel.engines import spark as engine

    source = write(log_table(GOOD), tmp_path / "s.parquet")
    disjoint = write(log_table([("q", "w", 1, 1, "click")], domain="target"),
                     tmp_path / "t.parquet")
    integer = write(log_table([(1, "x", 1, 1, "click")], domain="target"),
                    tmp_path / "i.parquet")
    for target in (integer, disjoint):
        with pytest.raises(InputError) as local:
            in_memory(source, target, stage())
        with pytest.raises(InputError) as remote:
            engine.run_graph_stage(spark, source, target, stage())
        assert str(remote.value) == str(local.value)


@spark_only
def test_parameter_errors(spark: Any, tiny: tuple[str, str], tmp_path: Path) -> None:
    from graphsel.engines import spark as engine

    for params in ({"relations": ["cart"]}, {"relations": []}):
        with pytest.raises(InputError) as local:
            in_memory(*tiny, stage(**params))
        with pytest.raises(InputError) as remote:
            engine.run_graph_stage(spark, *tiny, stage(**params))
        assert str(remote.value) == str(local.value)
    with pytest.raises(InputError, match="^fanout=3 is not supported by the Spark engine"):
        engine.run_graph_stage(spark, *tiny, stage(fanout=3))
    with pytest.raises(InputError, match="^max_user_rows=5 is not supported by the Spark "
                                         "engine .*--max-user-rows none"):
        engine.run_graph_stage(spark, *tiny, GraphExpansion(max_user_rows=5))
    with pytest.raises(InputError) as local:  # the stage's own check, word for word
        stage(mode="all").check_params()
    with pytest.raises(InputError) as remote:
        engine.run_graph_stage(spark, *tiny, stage(mode="all"))
    assert str(remote.value) == str(local.value)
    with pytest.raises(InputError, match="no such file or directory"):
        engine.read_log(spark, str(tmp_path / "nowhere.parquet"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError, match=f"^{broken}: not a readable Parquet file "):
        engine.read_log(spark, str(broken))
    csv = tmp_path / "log.csv"
    csv.write_text("user_id,item_id,ts,label,domain\na,x,1,1,s\n")
    with pytest.raises(InputError, match="reads Parquet files or tables"):
        engine.read_log(spark, str(csv))


@spark_only
def test_table_source(spark: Any, tiny: tuple[str, str]) -> None:
    from graphsel.engines import spark as engine

    spark.read.parquet(tiny[0]).createOrReplaceTempView("tiny_source")
    log = engine.read_log(spark, "table:tiny_source")
    assert log.name == "table:tiny_source" and log.columns[:2] == ("user_id", "item_id")
    assert log.frame.count() == len(SOURCE_ROWS)
    with pytest.raises(InputError, match="table:nowhere: not a readable table"):
        engine.read_log(spark, "table:nowhere")


def test_importing_graphsel_engines_does_not_import_pyspark() -> None:
    import subprocess
    import sys

    code = ("import sys, graphsel, graphsel.engines.spark, graphsel.cli.select; "
            "print('pyspark' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
