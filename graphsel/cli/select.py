"""``graphsel select``: choose and weight the source rows that look like the target domain.

Options come from the stage classes' defaults, then ``--config FILE``, then the flags: every
flag defaults to None and only replaces the value it names (:class:`SelectionConfig`).
``--engine spark`` (or ``engine: spark`` in the config) runs the same stages on Spark
(:mod:`graphsel.engines.spark_select`; pyspark is imported only then) and writes what the
in-memory engine writes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from graphsel._table import round_floats
from graphsel.cli._common import (
    emit,
    examples,
    json_option,
    show_progress,
    terminal_options,
)
from graphsel.data.datasets import TRUTH_FILE, read_truth
from graphsel.data.io import atomic_outputs, check_paths, write_json
from graphsel.data.log import check_pair, read_pair
from graphsel.engines import ENGINES
from graphsel.errors import InputError, check_choice
from graphsel.select.config import SelectionConfig
from graphsel.select.stage import STAGES, ParamError

__all__ = ["FLAGS", "check_flags", "command", "graph_flags", "parse_conf", "parse_max_degree",
           "parse_max_user_rows", "renamed"]

FLAGS: dict[tuple[str, str], str] = {
    ("graph", "num_hops"): "--hops", ("graph", "max_degree"): "--max-degree",
    ("graph", "fanout"): "--fanout", ("graph", "max_user_rows"): "--max-user-rows",
    ("graph", "mode"): "--mode", ("graph", "edges"): "--edges",
    ("graph", "relations"): "--relations", ("graph", "as_of"): "--as-of",
    ("da", "threshold"): "--da-threshold", ("da", "keep_quantile"): "--keep-quantile",
    ("da", "budget"): "--budget", ("knn", "index"): "--knn-index", ("knn", "k"): "--knn-k",
    ("knn", "threshold"): "--knn-threshold",
}
"""The flag of each stage parameter that ``select`` and ``expand`` set from the command line."""


def check_flags(params: dict[str, dict[str, Any]]) -> None:
    """Checks each parameter a flag gave on its own, so that an error names the flag.

    Args:
        params: ``{stage: {parameter: value}}`` from the flags (None values: not given).

    Raises:
        InputError: ``--knn-threshold: threshold must be a number in [-1.0, 1.0], got 2.0``.

    >>> check_flags({"graph": {"fanout": -1}})
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: --fanout: fanout must be an integer >= 1 or None, got -1
    """
    for stage, values in params.items():
        for name, value in values.items():
            if value is None:
                continue
            try:
                STAGES.get(stage)(**{name: value}).check_params()
            except InputError as exc:
                raise InputError(f"{FLAGS[stage, name]}: {exc}") from None


def renamed(error: ParamError, flags: dict[str, dict[str, Any]]) -> InputError:
    """``error`` naming the flag that set its parameter, if a flag did."""
    given = flags.get(error.stage, {}).get(error.param) is not None
    return error.renamed(FLAGS[error.stage, error.param]) if given else error


def parse_max_degree(value: str) -> float | str | None:
    """``--max-degree`` as the graph stage's ``max_degree``: ``"auto"``, None or a number.

    >>> parse_max_degree("auto"), parse_max_degree("none"), parse_max_degree("50")
    ('auto', None, 50.0)
    """
    if value == "auto":
        return "auto"
    if value.lower() in ("none", "inf"):
        return None
    try:
        number = float(value)
    except ValueError:
        raise InputError(
            f"--max-degree must be a number, 'auto' or 'none', got {value!r}") from None
    if number < 0:
        raise InputError(f"--max-degree must be >= 0, got {value}")
    return number


def parse_max_user_rows(value: str) -> int | str | None:
    """``--max-user-rows`` as the graph stage's ``max_user_rows``: ``"auto"``, None or a count.

    >>> parse_max_user_rows("auto"), parse_max_user_rows("none"), parse_max_user_rows("500")
    ('auto', None, 500)
    """
    if value == "auto":
        return "auto"
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"--max-user-rows must be an integer >= 1, 'auto' or 'none', got "
                         f"{value!r}") from None


def parse_conf(values: tuple[str, ...]) -> dict[str, str]:
    """``--conf KEY=VALUE`` flags as Spark settings (a later key wins).

    >>> parse_conf(("spark.driver.memory=4g", "spark.sql.shuffle.partitions=8"))
    {'spark.driver.memory': '4g', 'spark.sql.shuffle.partitions': '8'}
    >>> parse_conf(("memory",))
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: --conf must be KEY=VALUE (e.g. spark.driver.memory=4g), got 'memory'
    """
    conf: dict[str, str] = {}
    for value in values:
        key, equals, setting = value.partition("=")
        if not equals or not key.strip():
            raise InputError(f"--conf must be KEY=VALUE (e.g. spark.driver.memory=4g), "
                             f"got {value!r}")
        conf[key.strip()] = setting
    return conf


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def graph_flags(num_hops: int | None, max_degree: str | None, fanout: int | None,
                max_user_rows: str | None, mode: str | None, edges: str | None,
                relations: str | None, as_of: int | None) -> dict[str, Any]:
    """The graph stage's parameters that flags gave (a flag left out is not in the dict),
    each checked on its own (:func:`check_flags`)."""
    given = {"num_hops": num_hops, "fanout": fanout, "mode": mode, "edges": edges,
             "as_of": as_of, "relations": None if relations is None else _names(relations)}
    params: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    check_flags({"graph": params})
    # "none" gives None, a value of its own: checked by the parsers
    if max_degree is not None:
        params["max_degree"] = parse_max_degree(max_degree)
    if max_user_rows is not None:
        params["max_user_rows"] = parse_max_user_rows(max_user_rows)
        check_flags({"graph": {"max_user_rows": params["max_user_rows"]}})
    return params


def graph_options(command: Any) -> Any:
    """The flags ``select`` and ``expand`` share: the graph stage's parameters (each None
    unless given: the defaults are the stage's), ``--config`` and ``--seed``."""
    for option in reversed([
        click.option("--hops", "num_hops", type=int,
                     help="Hops to expand (one hop: user -> item or item -> user) [default: 2]."),
        click.option("--max-degree",
                     help="Hub cap: nodes with more edges are reached but not expanded "
                          "through; a number, 'auto' (99th percentile of the degrees, at "
                          "least 50) or 'none' [default: auto]."),
        click.option("--fanout", type=int,
                     help="Expand hubs through this many random edges instead of none."),
        click.option("--max-user-rows",
                     help="Rows kept per user (seeds too), drawn at random from a heavier "
                          "user's: a number, 'auto' (the hub cap) or 'none' [default: auto]."),
        click.option("--mode",
                     help="Rows the expansion selects: both, user, item or any end reached "
                          "[default: both]."),
        click.option("--edges",
                     help="Rows that make graph edges: all (every logged row links its user "
                          "and item) or positive (label 1) [default: all]."),
        click.option("--relations",
                     help="Comma-separated relations to walk, e.g. click,purchase "
                          "[default: all]."),
        click.option("--as-of", type=int, help="Ignore graph edges at or after this Unix time."),
        click.option("--config", "config_path", type=click.Path(path_type=str),
                     help="YAML file of selection options (stages, seed, one mapping per "
                          "stage); flags override it."),
        click.option("--seed", type=int, help="Seed of every stage [default: 0]."),
    ]):
        command = option(command)
    return command


def _rule(threshold: float | None, keep_quantile: float | None,
          budget: int | None) -> dict[str, Any]:
    """A keep rule given by flags replaces the whole rule of the config."""
    rule = {"threshold": threshold, "keep_quantile": keep_quantile, "budget": budget}
    return rule if any(value is not None for value in rule.values()) else {}


def save_plots(selector: Any, out_dir: str | Path, truth: Any = None) -> list[Path]:
    """Writes the figures of a fitted selector into ``out_dir`` (see graphsel.viz)."""
    from graphsel.viz import (
        save_selection_plots,  # matplotlib only when plots are asked for
    )

    return save_selection_plots(selector, out_dir, truth=truth)


def write_html_page(selector: Any, path: str | Path, truth: Any = None) -> Path:
    """Writes the HTML page of a fitted selector to ``path`` (see graphsel.viz.report)."""
    from graphsel.viz.report import (  # matplotlib only when a page is asked for
        selection_page,
        write_html,
    )

    return write_html(selection_page(selector, truth=truth), path)


@click.command("select", epilog=examples(
    "graphsel select --source demo/source.parquet --target demo/target.parquet "
    "--out selected.parquet --report report.json",
    "graphsel select --source demo/source.parquet --target demo/target.parquet "
    "--stages graph,da --keep-quantile 0.5 --out selected.parquet --plots plots",
    "graphsel select --engine spark --max-user-rows none "
    "--source table:logs.feed --target table:logs.miniapp --out hdfs:///selections/today"))
@click.option("--source", required=True, type=click.Path(path_type=str), help="Source log.")
@click.option("--target", required=True, type=click.Path(path_type=str), help="Target log.")
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Parquet file: the selected source rows plus hop, p_target, knn_score, weight.")
@click.option("--report", "report_path", type=click.Path(path_type=str),
              help="Also write the report as JSON to this file.")
@click.option("--stages", help=f"Comma-separated stages, in order, from "
                               f"{', '.join(STAGES.names())} [default: graph,da,knn].")
@graph_options
@click.option("--da-threshold", type=float, help="DA stage: keep rows with p_target >= X.")
@click.option("--keep-quantile", type=float,
              help="DA stage: keep this top fraction of rows by p_target.")
@click.option("--budget", type=int, help="DA stage: keep the top N rows by p_target.")
@click.option("--knn-index", help="FAISS index: Flat, HNSW32, IVF<n>,Flat, LSH or auto "
                                  "[default: auto].")
@click.option("--knn-threshold", type=float,
              help="kNN stage: keep rows with knn_score >= X [default: 0.9].")
@click.option("--knn-k", type=int, help="kNN stage: target neighbours averaged per row "
                                        "[default: 10].")
@click.option("--truth", "truth_path", type=click.Path(path_type=str),
              help=f"Planted truth (default: {TRUTH_FILE} beside the source, if present).")
@click.option("--plots", "plots_dir", type=click.Path(path_type=str),
              help="Also write the selection's figures (PNG) into this folder.")
@click.option("--html", "html_path", type=click.Path(path_type=str),
              help="Also write one self-contained HTML page: the report, every figure and "
                   "the stages' options as used.")
@click.option("--engine",
              help=f"Where to run: {' or '.join(ENGINES)} [default: the config's engine:, "
                   f"else local]. spark runs the stages graph, da, knn (--max-user-rows none) "
                   f"and reads Parquet paths or table:db.name; --out is then a directory of "
                   f"Parquet files.")
@click.option("--master", help="Spark master, e.g. local[4], yarn, spark://host:7077 [default: "
                               "spark-submit's, else local[*]].")
@click.option("--conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
              help="A Spark setting, e.g. spark.driver.memory=4g (repeatable).")
@terminal_options
@json_option
def command(source: str, target: str, out: str, report_path: str | None, stages: str | None,
            num_hops: int | None, max_degree: str | None, fanout: int | None,
            max_user_rows: str | None, mode: str | None, edges: str | None,
            relations: str | None, as_of: int | None, config_path: str | None,
            seed: int | None, da_threshold: float | None, keep_quantile: float | None, budget: int | None, knn_index: str | None,
            knn_threshold: float | None, knn_k: int | None, truth_path: str | None,
            plots_dir: str | None, html_path: str | None, engine: str | None,
            master: str | None,
            spark_conf: tuple[str, ...], progress: bool | None, quiet: bool,
            as_json: bool) -> None:
    """Select and weight the source rows that look like the target.

    Stages run in the order given: the graph expansion from the users and items both logs
    share (hubs capped), the domain classifier (out-of-fold p_target and density-ratio
    weights; it cuts rows only with --da-threshold, --keep-quantile or --budget), and the
    FAISS neighbour score of each row against the target rows (kept at --knn-threshold).
    A summary table ends the output; --json prints the report instead.
    """
    engine = _engine(engine, config_path)
    if engine != "spark" and (master is not None or spark_conf):
        raise InputError(f"--{'master' if master is not None else 'conf'} is a setting of "
                         f"--engine spark; the engine is {engine}")
    if engine == "spark":
        for flag, value in (("--truth", truth_path), ("--plots", plots_dir),
                            ("--html", html_path)):
            if value is not None:
                raise InputError(f"{flag} is not supported with --engine spark; use --engine "
                                 f"local")
    else:
        if truth_path is None and (Path(source).parent / TRUTH_FILE).is_file():
            truth_path = str(Path(source).parent / TRUTH_FILE)
        check_paths({"--source": source, "--target": target, "--config": config_path,
                     "--truth": truth_path}, files={"--report": report_path,
                                                   "--html": html_path},
                    folders={"--plots": plots_dir}, logs={"--out": out})
    flags = {
        "graph": graph_flags(num_hops, max_degree, fanout, max_user_rows, mode, edges,
                             relations, as_of),
        "da": _rule(da_threshold, keep_quantile, budget),
        "knn": {**{key: value for key, value in (("index", knn_index), ("k", knn_k))
                   if value is not None}, **_rule(knn_threshold, None, None)},
    }
    check_flags(flags)
    show = show_progress(progress, quiet, as_json)
    if engine == "spark":
        _select_on_spark(source, target, out, report_path, stages, flags, config_path, seed,
                         master, parse_conf(spark_conf), as_json, quiet)
        return
    config = _config(config_path, stages, flags, seed).merged(engine=engine)
    if "graph" in config.stages and plots_dir is None and html_path is None:
        # no figure draws the expansion: the graph is freed before the next stage runs
        config = config.merged(params={"graph": {"keep_graph": False}})
    selector = config.build(progress=show)  # bad options fail before the logs are read
    source_log, target_log = read_pair(source, target)
    check_pair(source_log, target_log, min_rows=selector.min_target_rows(), both_labels=False)
    try:
        selector.check_inputs(source_log, target_log)  # e.g. --knn-k above the target's rows
    except ParamError as exc:
        raise renamed(exc, flags) from None
    truth = None if truth_path is None else read_truth(truth_path, len(source_log))
    selection = selector.fit(source_log, target_log, truth=truth).selection_
    assert selection.report is not None  # a fitted selection has one
    report = round_floats({**selection.report.to_json(), "out": out})
    # the rows, the figures and the report are written as one unit: all of them or none
    with atomic_outputs() as outputs:
        selection.write(source_log, outputs.file(out))
        if plots_dir is not None:
            staged = save_plots(selector, outputs.folder(plots_dir), truth)
            report["plots"] = [str(Path(plots_dir) / path.name) for path in staged]
        if html_path is not None:
            write_html_page(selector, outputs.file(html_path), truth)
            report["html"] = html_path
        if report_path is not None:
            write_json(report, outputs.file(report_path))
    for warning in selection.report.warnings:
        click.echo(f"warning: {warning}", err=True)
    emit(as_json, report, selection.report.format()
         + f"\n\nwrote {selection.num_selected:,} rows to {out}", quiet)


def _engine(engine: str | None, config_path: str | None) -> str:
    """``--engine``, else the ``engine:`` of ``--config``, else the config's default."""
    if engine is not None:
        return check_choice("--engine", engine, ENGINES)
    if config_path is not None:
        with contextlib.suppress(InputError):  # a bad file is reported where it is read
            return SelectionConfig.from_yaml(config_path).engine
    return SelectionConfig().engine


def _config(config_path: str | None, stages: str | None, flags: dict[str, dict[str, Any]],
            seed: int | None) -> SelectionConfig:
    """Stage defaults < ``--config`` < flags."""
    config = (SelectionConfig() if config_path is None
              else SelectionConfig.from_yaml(config_path))
    return config.merged(None if stages is None else _names(stages),
                         {name: params for name, params in flags.items() if params}, seed)


def _select_on_spark(source: str, target: str, out: str, report_path: str | None,
                     stages: str | None, flags: dict[str, dict[str, Any]],
                     config_path: str | None, seed: int | None, master: str | None,
                     conf: dict[str, str], as_json: bool, quiet: bool) -> None:
    """``select --engine spark``: the stages on Spark, written as the local engine writes
    them (``out`` a directory of Parquet files), the same report."""
    from graphsel.engines import spark as engine  # pyspark only when this engine runs
    from graphsel.engines import spark_select

    local = {option: path for option, path in (("--source", source), ("--target", target))
             if engine.local_path(path) is not None}
    check_paths({**local, "--config": config_path}, files={"--report": report_path},
                folders={"--out": out if engine.local_path(out) is not None else None})
    config = _config(config_path, stages, flags, seed).merged(engine="spark", master=master,
                                                              conf=conf)
    # refused stages and options fail before a session starts
    chosen = spark_select.spark_stages([config.stage(name) for name in config.stages])
    session = engine.spark_session(config.master, config.conf)
    try:
        selection = spark_select.run_selection(session, source, target, chosen, out)
    except ParamError as exc:  # e.g. --knn-k above the target's rows
        raise renamed(exc, flags) from None
    report = round_floats({**selection.to_json(), "out": out})
    if report_path is not None:
        with atomic_outputs() as outputs:
            write_json(report, outputs.file(report_path))
    emit(as_json, report, selection.format()
         + f"\n\nwrote {selection.selected:,} rows to {out}", quiet)
