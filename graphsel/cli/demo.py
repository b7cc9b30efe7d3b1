"""``graphsel demo``: the embedded synthetic default, end to end (so far: data preparation)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from graphsel.cli._common import emit, json_option
from graphsel.cli.datasets import prepared_text
from graphsel.datasets import prepare

__all__ = ["command", "run_demo"]


def run_demo(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Runs the demo into ``out_dir`` and returns its results.

    Args:
        out_dir: folder for the demo's files (created if missing).
        seed: random seed of the synthetic data (default 0).

    Returns:
        ``{"out_dir": str, "card": the synthetic dataset's card}``; later stages of the
        pipeline add their own entries.
    """
    card = prepare("synthetic", out_dir, seed=seed)
    return {"out_dir": str(out_dir), "card": card}


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Keep the demo's files in this folder (default: a temporary folder, "
                   "removed at the end).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@json_option
def command(out_dir: Path | None, seed: int, as_json: bool) -> None:
    """Run the embedded synthetic default: needs nothing but the repository."""
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="graphsel-demo-") as tmp:
            result = {**run_demo(Path(tmp), seed), "out_dir": None}
    else:
        result = run_demo(out_dir, seed)
    emit(as_json, result, prepared_text(result["card"], out_dir))
