"""``graphsel select``: choose and weight the source rows that look like the target domain.

Options come from the stage classes' defaults, then ``--config FILE``, then the flags: every
flag defaults to None and only replaces the value it names (:class:`SelectionConfig`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from graphsel.cli._common import emit, json_option
from graphsel.data.datasets import TRUTH_FILE, read_truth
from graphsel.data.io import check_paths, write_json
from graphsel.data.log import check_pair, read_pair
from graphsel.errors import InputError
from graphsel.select.config import SelectionConfig
from graphsel.select.stage import STAGES

__all__ = ["command", "graph_flags", "parse_max_degree"]


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


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def graph_flags(num_hops: int | None, max_degree: str | None, fanout: int | None,
                mode: str | None, edges: str | None, relations: str | None,
                as_of: int | None) -> dict[str, Any]:
    """The graph stage's parameters that flags gave (a flag left out is not in the dict)."""
    given = {"num_hops": num_hops, "fanout": fanout, "mode": mode, "edges": edges,
             "as_of": as_of, "relations": None if relations is None else _names(relations)}
    params: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    if max_degree is not None:  # "none" gives None, a value of its own
        params["max_degree"] = parse_max_degree(max_degree)
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


@click.command("select")
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
@json_option
def command(source: str, target: str, out: str, report_path: str | None, stages: str | None,
            num_hops: int | None, max_degree: str | None, fanout: int | None,
            mode: str | None, edges: str | None, relations: str | None, as_of: int | None,
            config_path: str | None, seed: int | None, da_threshold: float | None,
            keep_quantile: float | None, budget: int | None, knn_index: str | None,
            knn_threshold: float | None, knn_k: int | None, truth_path: str | None,
            plots_dir: str | None, as_json: bool) -> None:
    """Select and weight the source rows that look like the target domain.

    Stages run in the order given: the graph expansion from the users and items both logs
    share (hubs capped), the domain classifier (out-of-fold p_target and density-ratio
    weights; it cuts rows only with --da-threshold, --keep-quantile or --budget), and the
    FAISS neighbour score of each row against the target rows (kept at --knn-threshold).
    A summary table ends the output; --json prints the report instead.
    """
    if truth_path is None and (Path(source).parent / TRUTH_FILE).is_file():
        truth_path = str(Path(source).parent / TRUTH_FILE)
    check_paths({"--source": source, "--target": target, "--config": config_path,
                 "--truth": truth_path}, files={"--report": report_path},
                folders={"--plots": plots_dir}, logs={"--out": out})
    config = (SelectionConfig() if config_path is None
              else SelectionConfig.from_yaml(config_path))
    flags = {
        "graph": graph_flags(num_hops, max_degree, fanout, mode, edges, relations, as_of),
        "da": _rule(da_threshold, keep_quantile, budget),
        "knn": {**{key: value for key, value in (("index", knn_index), ("k", knn_k))
                   if value is not None}, **_rule(knn_threshold, None, None)},
    }
    config = config.merged(None if stages is None else _names(stages),
                           {name: params for name, params in flags.items() if params}, seed)
    selector = config.build(progress=not as_json)  # bad options fail before the logs are read
    source_log, target_log = read_pair(source, target)
    check_pair(source_log, target_log, min_rows=selector.min_target_rows(), both_labels=False)
    truth = None if truth_path is None else read_truth(truth_path, len(source_log))
    selection = selector.fit(source_log, target_log, truth=truth).selection_
    selection.write(source_log, out)
    assert selection.report is not None  # a fitted selection has one
    report = {**selection.report.to_json(), "out": out}
    if plots_dir is not None:
        report["plots"] = [str(p) for p in save_plots(selector, plots_dir, truth)]
    if report_path is not None:
        write_json(report, report_path)
    emit(as_json, report, selection.report.format()
         + f"\n\nwrote {selection.num_selected:,} rows to {out}")
