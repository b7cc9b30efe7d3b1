"""The whole selection on Spark equals the in-memory one: same rows, weights within 1e-6,
knn scores within 1e-5, the same report and the same errors.

The oracle is the in-memory pipeline itself (:meth:`SelectionConfig.build` then ``fit``, what
``graphsel select`` runs), with the per-user row cap off on both engines (Spark refuses it).
The config tests at the top need no Spark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.data.log import read_log, read_pair
from graphsel.errors import InputError
from graphsel.select.config import SelectionConfig
from tests.engines.test_spark import log_table, write

spark_only = pytest.mark.spark

NO_USER_CAP = {"graph": {"max_user_rows": None}}

# --------------------------------------------------------------------------------------------
# engine: in the selection config (no Spark)
# --------------------------------------------------------------------------------------------


def test_config_engine_master_conf_and_flag_precedence() -> None:
    config = SelectionConfig.from_dict({"engine": "spark", "master": "local[2]",
                                        "conf": {"spark.driver.memory": "1g", "a": 2}},
                                       where="s.yaml:")
    assert (config.engine, config.master, config.conf) == (
        "spark", "local[2]", {"spark.driver.memory": "1g", "a": "2"})
    flags = config.merged(master="local[1]", conf={"a": "3"})
    assert (flags.engine, flags.master, flags.conf) == (
        "spark", "local[1]", {"spark.driver.memory": "1g", "a": "3"})
    local = config.merged(engine="local")  # another engine drops the Spark settings
    assert (local.engine, local.master, local.conf) == ("local", None, {})
    assert SelectionConfig().engine == "local" and local.build().stages
    assert config.subset(["graph"]).engine == "spark"


@pytest.mark.parametrize("raw, message", [
    ({"engine": "flink"}, "s.yaml: engine: Could not resolve engine 'flink' among ['local', 'spark']"),
    ({"master": "yarn"}, "s.yaml: master is a setting of engine spark; the engine is local"),
    ({"engine": "spark", "conf": ["a=1"]}, "s.yaml: conf must be a mapping of Spark settings"),
])
def test_config_engine_errors_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as error:
        SelectionConfig.from_dict(raw, where="s.yaml:")
    assert str(error.value).startswith(message)


def test_a_spark_config_builds_no_in_memory_selector() -> None:
    with pytest.raises(InputError, match="^run.yaml: selection.engine spark runs under "
                                         "graphsel select only"):
        SelectionConfig.from_dict({"engine": "spark"}, where="run.yaml: selection").build()


def test_expand_and_run_refuse_a_spark_config_before_any_work(
        synthetic: tuple[str, str], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from graphsel.cli import cli

    config = tmp_path / "s.yaml"
    config.write_text("engine: spark\n")
    result = CliRunner().invoke(cli, ["expand", "--source", synthetic[0], "--target",
                                      synthetic[1], "--config", str(config),
                                      "--out", str(tmp_path / "n.parquet")])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {config}: engine spark runs under graphsel select only; "
                             f"this command selects in memory (engine: local)\n")
    run = tmp_path / "run.yaml"
    run.write_text("dataset: {name: synthetic}\nselection: {engine: spark}\n")
    result = CliRunner().invoke(cli, ["run", "--config", str(run)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {run}: selection.engine spark runs under graphsel select "
                             f"only; this command selects in memory (engine: local)\n")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def in_memory(source: str, target: str, config: SelectionConfig) -> tuple[pa.Table, dict]:
    """The in-memory selection's rows (with ``_row``) and report JSON (the oracle)."""
    source_log, target_log = read_pair(source, target)
    selection = config.build().fit(source_log, target_log).selection_
    assert selection.report is not None
    table = selection.to_table(source_log)
    return (table.append_column("_row", pa.array(selection.indices())),
            selection.report.to_json())


def on_spark(spark: Any, source: str, target: str, config: SelectionConfig
             ) -> tuple[pa.Table, list[dict]]:
    """The Spark selection's rows (unwritten, by ``_row``) and stage reports."""
    from graphsel.engines import spark_select

    rows, _, reports = spark_select.run_stages(spark, source, target,
                                               [config.stage(n) for n in config.stages])
    table = rows.orderBy("_row").drop("_pos").toArrow()
    return table, [stage.to_json() for stage in reports]


def assert_same_selection(local: pa.Table, spark_rows: pa.Table) -> None:
    """Same rows (``_row``, when both have it); weights and ``p_target`` within 1e-6,
    ``knn_score`` within 1e-5; every other column equal."""
    assert spark_rows.num_rows == local.num_rows
    renamed = {"_weight": "weight"}
    columns = {renamed.get(name, name): spark_rows.column(name) for name in spark_rows.column_names}
    for name in local.column_names:
        expected = local.column(name).to_numpy(zero_copy_only=False)
        if name not in columns:  # a score of a stage that did not run
            assert name in ("hop", "p_target", "knn_score", "weight"), name
            continue
        got = columns[name].to_numpy(zero_copy_only=False)
        tolerance = {"weight": 1e-6, "p_target": 1e-6, "knn_score": 1e-5}.get(name)
        if tolerance is None:
            np.testing.assert_array_equal(got, expected, err_msg=name)
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance, err_msg=name)


def without_seconds(stages: list[dict]) -> list[dict]:
    return [{key: value for key, value in stage.items() if key != "seconds"} for stage in stages]


def _hand_built_rows(n: int, domain: str, seed: int, users: int, items: int) -> pa.Table:
    """``n`` rows over a few users and items with every kind of side feature: a string with
    a value one domain alone has and tied counts, an integer and a boolean category, and a
    float with nulls."""
    rng = np.random.default_rng(seed)
    table = log_table([(f"u{rng.integers(users)}", int(rng.integers(items)), 100 + i,
                        int(rng.integers(2)), "click") for i in range(n)], domain=domain)
    colour = ["red", "blue"] if domain == "source" else ["red", "blue", "green"]
    price = rng.normal(size=n)
    return (table.append_column("colour", pa.array([colour[i % len(colour)] for i in range(n)]))
            .append_column("size", pa.array(rng.integers(0, 3, n), pa.int32()))
            .append_column("promoted", pa.array(rng.integers(0, 2, n).astype(bool)))
            .append_column("price", pa.array(np.where(np.arange(n) % 7 == 0, None, price),
                                             pa.float64())))


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("hand")
    return (write(_hand_built_rows(120, "source", 0, 30, 12), folder / "source.parquet"),
            write(_hand_built_rows(30, "target", 1, 40, 6), folder / "target.parquet"))


# --------------------------------------------------------------------------------------------
# Equality with the in-memory pipeline
# --------------------------------------------------------------------------------------------


@spark_only
@pytest.mark.usefixtures("spark")
def test_yaml_engine_spark_writes_what_local_writes_on_the_synthetic_default(
        synthetic: tuple[str, str], tmp_path: Path) -> None:
    from graphsel.engines.spark import SMALL_CONF

    spark_yaml = tmp_path / "spark.yaml"
    spark_yaml.write_text(json.dumps({"engine": "spark", "master": "local[1]",
                                      "conf": SMALL_CONF, **NO_USER_CAP}))
    local_yaml = tmp_path / "local.yaml"
    local_yaml.write_text(json.dumps(NO_USER_CAP))
    reports = []
    for name, config in (("local", local_yaml), ("spark", spark_yaml)):
        out, report = tmp_path / f"{name}.parquet", tmp_path / f"{name}.json"
        result = CliRunner().invoke(cli, ["select", "--source", synthetic[0], "--target",
                                          synthetic[1], "--config", str(config), "--out",
                                          str(out), "--report", str(report)])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(report.read_text()))
    local, on_spark = (read_log(tmp_path / f"{name}.parquet").table for name in ("local", "spark"))
    assert on_spark.schema.remove_metadata() == local.schema.remove_metadata()
    assert on_spark.column_names[-4:] == ["hop", "p_target", "knn_score", "weight"]
    assert_same_selection(local, on_spark)
    for report in reports:
        report.pop("out")
        report["stages"] = without_seconds(report["stages"])
    assert [stage["name"] for stage in reports[0]["stages"]] == ["graph", "da", "knn"]
    assert reports[1] == reports[0]
    assert 0 < reports[0]["selected"] < reports[0]["stages"][1]["kept"]  # knn cuts


@spark_only
def test_domain_and_neighbour_options_without_the_graph_stage(
        spark: Any, synthetic: tuple[str, str]) -> None:
    # every candidate scored; each fold's model learns from 500 drawn candidates; a top rule
    # at both stages (collected to the driver); ids as features; a logistic model; IVF
    config = SelectionConfig(("da", "knn"), {
        "da": {"max_train_candidates": 500, "keep_quantile": 0.6, "shared_ids": True,
               "model": "logistic", "cv": 3},
        "knn": {"index": "IVF8,Flat", "budget": 3_000, "k": 5}}, seed=3)
    local, report = in_memory(*synthetic, config)
    rows, stages = on_spark(spark, *synthetic, config)
    assert_same_selection(local, rows)
    assert without_seconds(stages) == without_seconds(report["stages"])
    assert [stage["kept"] for stage in stages] == [6_000, 3_000]


@spark_only
def test_hand_built_log_with_every_feature_kind(spark: Any,
                                                hand_built: tuple[str, str]) -> None:
    config = SelectionConfig(params={
        "graph": {"max_user_rows": None, "max_degree": None, "mode": "any"},
        "da": {"cv": 2, "embedding_dim": 2, "threshold": 0.2},
        "knn": {"index": "LSH", "k": 3, "embedding_dim": 2, "threshold": 0.0}})
    local, report = in_memory(*hand_built, config)
    rows, stages = on_spark(spark, *hand_built, config)
    assert_same_selection(local, rows)
    assert without_seconds(stages) == without_seconds(report["stages"])
    assert 0 < local.num_rows < 120


# --------------------------------------------------------------------------------------------
# Bad input: the in-memory pipeline's messages
# --------------------------------------------------------------------------------------------


@spark_only
@pytest.mark.parametrize("params", [
    {"da": {"threshold": 1.0}},                       # the da stage keeps nothing
    {"da": {"cv": 200}},                              # cv above the target's rows
    {"knn": {"k": 31}},                               # k above the target's rows
    {"graph": {"num_hops": 0, "max_degree": None}},   # the knn stage keeps nothing
], ids=["da_keeps_none", "cv", "knn_k", "knn_keeps_none"])
def test_errors_equal_in_memory(spark: Any, hand_built: tuple[str, str],
                                params: dict[str, Any]) -> None:
    graph = {**NO_USER_CAP["graph"], **params.get("graph", {})}
    config = SelectionConfig(params={**params, "graph": graph})
    with pytest.raises(InputError) as local:
        in_memory(*hand_built, config)
    with pytest.raises(InputError) as remote:
        on_spark(spark, *hand_built, config)
    assert str(remote.value) == str(local.value)


def test_unsupported_stage_lists_fail_before_any_work() -> None:
    from graphsel.engines.spark_select import spark_stages
    from graphsel.select.domain import DomainClassifier
    from graphsel.select.expansion import GraphExpansion

    for stages in ([DomainClassifier(), GraphExpansion(max_user_rows=None)], []):
        with pytest.raises(InputError, match="^the Spark engine runs the stages graph,da,knn "
                                             "in that order, or some of them"):
            spark_stages(stages)
    with pytest.raises(InputError, match="^cv must be an integer >= 2"):
        spark_stages([DomainClassifier(cv=1)])
    with pytest.raises(InputError, match="^max_user_rows='auto' is not supported"):
        spark_stages([GraphExpansion()])
