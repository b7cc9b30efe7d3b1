"""``graphsel demo``: the embedded synthetic default, end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from graphsel._io import write_json
from graphsel.cli._common import emit, json_option
from graphsel.cli.datasets import prepared_text
from graphsel.cli.select import TRUTH_FILE, read_truth
from graphsel.datasets import prepare
from graphsel.log import read_pair
from graphsel.selector import SampleSelector, format_report

__all__ = ["command", "run_demo"]


def run_demo(out_dir: Path, seed: int = 0, scale: float = 1.0,
             progress: bool = False) -> dict[str, Any]:
    """Runs the demo into ``out_dir`` and returns its results.

    Prepares the synthetic default, then selects and weights its source rows with the
    default :class:`~graphsel.selector.SampleSelector` (graph, domain classifier,
    neighbours), scored against the planted truth.

    Args:
        out_dir: folder for the demo's files (created if missing).
        seed: random seed of the data and the selection (default 0).
        scale: size multiplier of the synthetic data (default 1.0).
        progress: show progress bars (default False).

    Returns:
        ``{"out_dir": str, "card": the dataset card, "selection": the selection report}``.
    """
    out_dir = Path(out_dir)
    card = prepare("synthetic", out_dir, seed=seed, scale=scale)
    source, target = read_pair(out_dir / "source.parquet", out_dir / "target.parquet")
    truth = read_truth(out_dir / TRUTH_FILE, source)
    selection = SampleSelector(seed=seed, progress=progress).fit(source, target, truth).selection_
    selection.write(source, out_dir / "selected.parquet")
    write_json(selection.report, out_dir / "report.json")
    return {"out_dir": str(out_dir), "card": card, "selection": selection.report}


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Keep the demo's files in this folder (default: a temporary folder, "
                   "removed at the end).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Size multiplier of the synthetic data.")
@json_option
def command(out_dir: Path | None, seed: int, scale: float, as_json: bool) -> None:
    """Run the embedded synthetic default end to end: needs nothing but the repository."""
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="graphsel-demo-") as tmp:
            result = {**run_demo(Path(tmp), seed, scale, progress=not as_json), "out_dir": None}
    else:
        result = run_demo(out_dir, seed, scale, progress=not as_json)
    text = "\n\n".join([prepared_text(result["card"], out_dir),
                        format_report(result["selection"])])
    emit(as_json, result, text)
