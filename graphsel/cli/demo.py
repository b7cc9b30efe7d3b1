"""``graphsel demo``: the embedded synthetic default, end to end."""

from __future__ import annotations

import math
import tempfile
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
from graphsel.cli.datasets import prepared_text
from graphsel.data.datasets import TRUTH_FILE, prepare, read_truth
from graphsel.data.datasets._registry import PREPARED_FILES
from graphsel.data.io import OutputFolder, atomic_outputs, check_paths, write_json
from graphsel.data.log import read_pair
from graphsel.errors import check_integer, check_real
from graphsel.select.config import SelectionConfig

__all__ = ["command", "run_demo"]

SELECTED_FILE, REPORT_FILE = "selected.parquet", "report.json"


def run_demo(out_dir: Path, seed: int = 0, scale: float = 1.0, progress: bool = False,
             transfer: bool = True) -> dict[str, Any]:
    """Runs the demo into ``out_dir`` and returns its results.

    Prepares the synthetic default, selects and weights its source rows with the default
    :class:`~graphsel.select.pipeline.SampleSelector` (graph, domain classifier, neighbours),
    scored against the planted truth, then compares the transfer strategies on a time split
    (:func:`~graphsel.transfer.protocol.experiment.synthetic_default`, the settings of
    ``configs/synthetic.yaml``; its selection is fitted again on training-time rows only).

    Args:
        out_dir: folder for the demo's files (created if missing).
        seed: random seed of the data and the selection (default 0).
        scale: size multiplier of the synthetic data (default 1.0).
        progress: show progress bars (default False).
        transfer: also train and compare the strategies (default True).

    Returns:
        ``{"out_dir": str, "card": the dataset card, "selection": the selection report,
        "transfer": the strategy comparison (see ``graphsel run --json``), or None}``.
    """
    out_dir = Path(out_dir)
    card = prepare("synthetic", out_dir, seed=seed, scale=scale)
    source, target = read_pair(out_dir / "source.parquet", out_dir / "target.parquet")
    truth = read_truth(out_dir / TRUTH_FILE, len(source))
    selector = SelectionConfig(seed=seed).build(progress=progress)
    selection = selector.fit(source, target, truth).selection_
    assert selection.report is not None  # a fitted selector always reports
    selection.write(source, out_dir / SELECTED_FILE)
    write_json(round_floats(selection.report.to_json()), out_dir / REPORT_FILE)
    results = None
    if transfer:
        # torch is imported when the transfer runs, not whenever the CLI starts.
        from graphsel.transfer.protocol.experiment import (
            run_experiment,
            synthetic_default,
        )

        results = run_experiment(synthetic_default(seed, scale), progress=progress,
                                 data=(source, target, truth))
    return {"out_dir": str(out_dir), "card": card, "selection": selection.report,
            "transfer": None if results is None else results.to_json(),
            "transfer_table": None if results is None else results.table()}


@click.command("demo", epilog=examples(
    "graphsel demo",
    "graphsel demo --scale 0.1 --no-transfer",
    "graphsel demo --seed 1 --out demo-files --quiet"))
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Keep the demo's files in this folder (default: a temporary folder, "
                   "removed at the end).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Size multiplier of the synthetic data.")
@click.option("--no-transfer", is_flag=True,
              help="Stop after the selection: no training of the strategies.")
@terminal_options
@json_option
def command(out_dir: Path | None, seed: int, scale: float, no_transfer: bool,
            progress: bool | None, quiet: bool, as_json: bool) -> None:
    """Run the whole pipeline on the embedded synthetic data.

    Needs nothing but the repository: prepares the synthetic default, prints its card,
    selects and weights its source rows (the funnel, with precision and recall against the
    planted truth), then compares every registered transfer strategy on a time split of
    the target (the settings of configs/synthetic.yaml).
    """
    check_paths({}, folders={"--out": None if out_dir is None else OutputFolder(
        out_dir, (*PREPARED_FILES, SELECTED_FILE, REPORT_FILE))})
    check_real("--scale", scale, 0.0, math.inf, low_open=True)
    check_integer("--seed", seed, 0)
    show = show_progress(progress, quiet, as_json)
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="graphsel-demo-") as tmp:
            result = {**run_demo(Path(tmp), seed, scale, show, not no_transfer),
                      "out_dir": None}
    else:
        # the demo's files appear together when it ends, or not at all
        with atomic_outputs() as outputs:
            result = {**run_demo(outputs.folder(out_dir), seed, scale, show,
                                 not no_transfer), "out_dir": str(out_dir)}
    for warning in result["selection"].warnings:
        click.echo(f"warning: {warning}", err=True)
    parts = [prepared_text(result["card"], out_dir), result["selection"].format()]
    table = result.pop("transfer_table")
    if table is not None:
        parts.append(table)
    emit(as_json, result, "\n\n".join(parts), quiet)
