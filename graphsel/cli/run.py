"""``graphsel run``: a whole strategy comparison from one YAML config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from graphsel._table import round_floats
from graphsel.cli._common import (
    echo_note,
    emit,
    examples,
    json_option,
    show_progress,
    terminal_options,
    to_jsonable,
)
from graphsel.data.io import OutputFolder, atomic_outputs, check_paths, write_json
from graphsel.errors import InputError, check_integer

# The protocol's split module imports no torch, so the CLI starts without it; the models,
# the trainer and the runner are imported when the command runs.
from graphsel.transfer.protocol.split import MODES
from graphsel.viz.sequential import NEXT_ITEM_PLOT_FILES
from graphsel.viz.transfer import PLOT_FILES

__all__ = ["command"]


def _strategy_list(ctx: click.Context, param: click.Parameter, value: str | None
                   ) -> list[str] | None:
    return None if value is None else [s.strip() for s in value.split(",") if s.strip()]


@click.command("run", epilog=examples(
    "graphsel run --config configs/synthetic.yaml --seeds 1 --epochs 1 "
    "--strategies target_only,selected_weighted",
    "graphsel run --config configs/ml1m-documentary.yaml --out results.json --plots plots",
    "graphsel run --config configs/taobao.yaml --quiet --json"))
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="Experiment YAML (see configs/ for examples).")
@click.option("--seeds", type=int, help="Runs with seeds 0..N-1 (overrides the config).")
@click.option("--strategies", callback=_strategy_list,
              help="Comma-separated strategies (overrides the config).")
@click.option("--periods", type=int, help="Training periods of the continual runner.")
@click.option("--mode", type=click.Choice(MODES), help="Transfer at every period or once.")
@click.option("--epochs", type=int, help="Training epochs (overrides train.epochs).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Also write the JSON results to this file.")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path),
              help="Also write the figures (PNG) into this folder: AUC per period per "
                   "strategy, and each strategy's calibration on the test set (task: "
                   "next_item: the metric per domain and model, each model minus the "
                   "reference, LC-NTG's gaps and weights per epoch).")
@click.option("--html", "html_path", type=click.Path(path_type=Path),
              help="Also write one self-contained HTML page: the tables, the selection "
                   "funnel, the figures and the configuration used.")
@click.option("--run-dir", "runs_dir", type=click.Path(path_type=Path),
              help="Keep the fitted selection and each finished (strategy, seed) under "
                   "DIR/<key of the config and data>/, and resume from them when run again. "
                   "Default: $GRAPHSEL_RUNS, else .graphsel-runs in the working directory.")
@click.option("--nproc", type=int,
              help="Train data-parallel on N processes (torch.distributed, gloo): each "
                   "rank trains on its shard of every batch. Default 1; under torchrun, "
                   "its ranks.")
@click.option("--fresh", is_flag=True,
              help="Discard the kept work of this config and data, and start over.")
@terminal_options
@json_option
def command(config_path: Path, seeds: int | None, strategies: list[str] | None,
            periods: int | None, mode: str | None, epochs: int | None, out: Path | None,
            plots_dir: Path | None, html_path: Path | None, runs_dir: Path | None,
            nproc: int | None, fresh: bool,
            progress: bool | None, quiet: bool, as_json: bool) -> None:
    """Compare transfer strategies on a time split of the target.

    Every strategy uses the same model and training options (the baselines train the base
    model on their rows; the paper models and their *_cold ablations build theirs from its
    parts); the table shows test AUC, GAUC and LogLoss (mean ± std over seeds) and each
    strategy's AUC minus target_only's with a paired bootstrap 95% CI. Precedence:
    defaults < the YAML file < these flags. A run killed at any point resumes from its
    finished units when the same command runs again (see --run-dir).
    """
    from graphsel.transfer.config import config_from_dict, override, read_config

    for flag, value in (("--seeds", seeds), ("--periods", periods), ("--epochs", epochs),
                        ("--nproc", nproc)):
        if value is not None:
            check_integer(flag, value, 1)
    show = show_progress(progress, quiet, as_json)
    task, raw = read_config(config_path)
    if task == "next_item":
        for flag, given in (("--run-dir", runs_dir), ("--fresh", fresh or None),
                            ("--nproc", nproc), ("--html", html_path)):
            if given is not None:
                raise InputError(f"{flag} does not apply to task: next_item ({config_path})")
        _run_next_item(raw, config_path, seeds, strategies, periods, mode, epochs, out,
                       plots_dir, as_json, show, quiet)
        return
    from graphsel.transfer.protocol.checkpoints import (
        RunStore,
        experiment_key,
        runs_root,
    )
    from graphsel.transfer.protocol.experiment import run_experiment

    config = override(config_from_dict(raw, str(config_path)), seeds=seeds,
                      strategies=strategies, periods=periods, mode=mode, epochs=epochs)
    run_dir = runs_root(runs_dir) / experiment_key(config)
    check_paths({"--config": config_path, **config.input_paths()},
                files={"--out": out, "--html": html_path},
                folders={"--plots": OutputFolder(plots_dir, PLOT_FILES)
                         if plots_dir is not None else None,
                         "--run-dir": run_dir})
    rank = _torchrun_rank()
    store = RunStore(run_dir, on_warning=lambda line: echo_note(f"warning: {line}"),
                     read_only=rank > 0)
    if rank >= 0 and nproc is not None:
        raise InputError("--nproc does not apply under torchrun (its ranks are the processes)")
    if fresh and rank <= 0:
        store.clear()
    if rank >= 0:
        import torch.distributed as dist

        dist.barrier()  # no rank reads the store before rank 0 has cleared it
    if nproc is not None and nproc > 1:
        from graphsel.transfer.protocol.experiment import run_experiment_ranks

        results, loaded_units = run_experiment_ranks(config, nproc, progress=show,
                                                     run_dir=run_dir)
    else:
        results = run_experiment(config, progress=show and rank <= 0, store=store)
        loaded_units = store.loaded_units
    if rank > 0:
        return  # rank 0 of the torchrun group reports
    if loaded_units and not as_json and not quiet:
        click.echo(f"resumed {loaded_units:,} finished (strategy, seed) unit(s) from "
                   f"{run_dir}", err=True)
    payload = round_floats(to_jsonable(results.to_json()))
    text = results.table()
    # the figures and the JSON are written as one unit: all of them or none
    with atomic_outputs() as outputs:
        if plots_dir is not None:
            from graphsel.viz import (
                save_transfer_plots,  # matplotlib only when plots are asked for
            )

            text += _stage_plots(save_transfer_plots(results, outputs.folder(plots_dir)),
                                 plots_dir, payload)
        if html_path is not None:
            from graphsel.viz.report import run_page, write_html

            write_html(run_page(results, config), outputs.file(html_path))
            payload["html"] = str(html_path)
            text += f"\n\nhtml: {html_path}"
        if out is not None:
            write_json(payload, outputs.file(out))
    emit(as_json, payload, text, quiet)


def _run_next_item(raw: Any, config_path: Path, seeds: int | None, models: list[str] | None,
                   periods: int | None, mode: str | None, epochs: int | None,
                   out: Path | None, plots_dir: Path | None, as_json: bool, show: bool,
                   quiet: bool) -> None:
    """``task: next_item``: SyNCRec and its baselines (graphsel.transfer.sequential)."""
    from graphsel.transfer.sequential.options import next_item_config_from_dict

    for flag, value in (("--periods", periods), ("--mode", mode)):
        if value is not None:
            raise InputError(f"{flag} does not apply to task: next_item ({config_path})")
    config = next_item_config_from_dict(raw, str(config_path))
    train = config.train if epochs is None else replace(config.train, epochs=epochs)
    config = replace(config, train=train, seeds=config.seeds if seeds is None else seeds,
                     models=config.models if models is None else tuple(models))
    path = config.dataset.options.get("path")
    check_paths({"--config": config_path, "dataset.options.path": path},
                files={"--out": out},
                folders={"--plots": OutputFolder(plots_dir, NEXT_ITEM_PLOT_FILES)
                         if plots_dir is not None else None})
    from graphsel.transfer.sequential.runner import run_next_item

    results = run_next_item(config, progress=show)
    payload = round_floats(to_jsonable(results.to_json()))
    text = results.table()
    with atomic_outputs() as outputs:  # the figures and the JSON: all of them or none
        if plots_dir is not None:
            from graphsel.viz.sequential import save_next_item_plots

            text += _stage_plots(save_next_item_plots(results, outputs.folder(plots_dir)),
                                 plots_dir, payload)
        if out is not None:
            write_json(payload, outputs.file(out))
    emit(as_json, payload, text, quiet)


def _stage_plots(staged: list[Path], plots_dir: Path, payload: dict[str, Any]) -> str:
    """Lists the figures written (into a staging folder) under ``payload["plots"]`` by their
    final paths in ``plots_dir``; returns the table's line that names them."""
    payload["plots"] = [str(plots_dir / path.name) for path in staged]
    return "\n\nplots: " + ", ".join(payload["plots"])


def _torchrun_rank() -> int:
    """This process's rank when ``torchrun`` started it (the group is joined here), else -1.

    Under torchrun every rank runs ``graphsel run`` itself; the trainer shares each step.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return -1
    from graphsel.transfer.train.distributed import init_from_env, world

    init_from_env()
    return world()[0]
