"""``graphsel select``: choose and weight the source rows that look like the target domain."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from graphsel.cli._common import emit, json_option
from graphsel.data.datasets import TRUTH_FILE, read_truth
from graphsel.data.io import check_output_dir, check_output_file, write_json
from graphsel.data.log import read_pair
from graphsel.errors import InputError
from graphsel.select.pipeline import STAGES, SampleSelector, format_report

__all__ = ["command", "parse_max_degree"]



def parse_max_degree(value: str | None) -> float | str | None:
    """``"auto"``, ``"none"`` (uncapped) or a number >= 0."""
    if value is None or value == "auto":
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


def save_plots(selector: SampleSelector, out_dir: str | Path,
               truth: np.ndarray | None = None) -> list[Path]:
    """Writes the figures of a fitted selector into ``out_dir`` (see graphsel.viz)."""
    from graphsel.viz import (
        save_selection_plots,  # matplotlib only when plots are asked for
    )

    classifier = getattr(selector, "domain_classifier_", None)
    return save_selection_plots(
        getattr(selector, "graph_", None), getattr(selector, "expansion_", None),
        selector.selection_, selector.selection_.report, out_dir, truth=truth,
        target_p=None if classifier is None else classifier.p_target_in_target_)


@click.command("select")
@click.option("--source", required=True, type=click.Path(path_type=str), help="Source log.")
@click.option("--target", required=True, type=click.Path(path_type=str), help="Target log.")
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Parquet file: the selected source rows plus hop, p_target, knn_score, weight.")
@click.option("--report", "report_path", type=click.Path(path_type=str),
              help="Also write the report as JSON to this file.")
@click.option("--stages", default=",".join(STAGES), show_default=True,
              help=f"Comma-separated stages, in order, from {', '.join(STAGES)}.")
@click.option("--hops", default=2, show_default=True, type=int, help="Graph expansion hops.")
@click.option("--max-degree", default="auto", show_default=True,
              help="Hub cap: a number, 'auto' (99th percentile of degrees) or 'none'.")
@click.option("--fanout", type=int, help="Expand hubs through this many random edges.")
@click.option("--mode", default="both", show_default=True,
              help="Rows the graph stage keeps: both, user, item or any end reached.")
@click.option("--edges", default="all", show_default=True,
              help="Rows that make graph edges: all or positive (label 1).")
@click.option("--relations", help="Comma-separated relations to walk (default: all).")
@click.option("--as-of", type=int, help="Ignore graph edges at or after this Unix time.")
@click.option("--da-threshold", type=float, help="DA stage: keep rows with p_target >= X.")
@click.option("--keep-quantile", type=float,
              help="DA stage: keep this top fraction of rows by p_target.")
@click.option("--budget", type=int, help="DA stage: keep the top N rows by p_target.")
@click.option("--knn-index", default="auto", show_default=True,
              help="FAISS index: Flat, HNSW32, IVF<n>,Flat, LSH or auto.")
@click.option("--knn-threshold", default=0.9, show_default=True, type=float,
              help="kNN stage: keep rows with knn_score >= X.")
@click.option("--knn-k", default=10, show_default=True, type=int,
              help="kNN stage: target neighbours averaged per row.")
@click.option("--truth", "truth_path", type=click.Path(path_type=str),
              help=f"Planted truth (default: {TRUTH_FILE} beside the source, if present).")
@click.option("--plots", "plots_dir", type=click.Path(path_type=str),
              help="Also write the selection's figures (PNG) into this folder.")
@click.option("--seed", default=0, show_default=True, type=int)
@json_option
def command(source: str, target: str, out: str, report_path: str | None, stages: str,
            hops: int, max_degree: str, fanout: int | None, mode: str, edges: str,
            relations: str | None, as_of: int | None, da_threshold: float | None,
            keep_quantile: float | None, budget: int | None, knn_index: str,
            knn_threshold: float, knn_k: int, truth_path: str | None,
            plots_dir: str | None, seed: int, as_json: bool) -> None:
    """Select and weight the source rows that look like the target domain.

    Stages run in the order given: the graph expansion from the users and items both logs
    share (hubs capped), the domain classifier (out-of-fold p_target and density-ratio
    weights; it cuts rows only with --da-threshold, --keep-quantile or --budget), and the
    FAISS neighbour score of each row against the target rows (kept at --knn-threshold).
    A summary table ends the output; --json prints the report instead.
    """
    check_output_file(out)
    if report_path is not None:
        check_output_file(report_path)
    if plots_dir is not None:
        check_output_dir(plots_dir)
    rules = [name for name, value in (("--da-threshold", da_threshold),
                                      ("--keep-quantile", keep_quantile),
                                      ("--budget", budget)) if value is not None]
    if len(rules) > 1:
        raise InputError(f"give at most one of --da-threshold, --keep-quantile, --budget "
                         f"(got {', '.join(rules)})")
    selector = SampleSelector(
        [s.strip() for s in stages.split(",") if s.strip()], num_hops=hops,
        max_degree=parse_max_degree(max_degree), fanout=fanout, mode=mode, edges=edges,
        relations=None if relations is None else [r.strip() for r in relations.split(",")],
        as_of=as_of, threshold=da_threshold, keep_quantile=keep_quantile, budget=budget,
        knn_index=knn_index, knn_threshold=knn_threshold, knn_k=knn_k, seed=seed,
        progress=not as_json)
    selector.check_params()  # bad options fail before the logs are read
    source_log, target_log = read_pair(source, target)
    if truth_path is None and (Path(source).parent / TRUTH_FILE).is_file():
        truth_path = str(Path(source).parent / TRUTH_FILE)
    truth = None if truth_path is None else read_truth(truth_path, len(source_log))
    selection = selector.fit(source_log, target_log, truth=truth).selection_
    selection.write(source_log, out)
    report = {**selection.report, "out": out}
    if plots_dir is not None:
        report["plots"] = [str(p) for p in save_plots(selector, plots_dir, truth)]
    if report_path is not None:
        write_json(report, report_path)
    emit(as_json, report, format_report(report) + f"\n\nwrote {selection.num_selected:,} rows "
         f"to {out}")

