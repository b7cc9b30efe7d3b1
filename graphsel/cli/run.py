"""``graphsel run``: a whole strategy comparison from one YAML config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from graphsel.cli._common import emit, json_option, to_jsonable
from graphsel.data.io import OutputFolder, atomic_outputs, check_paths, write_json
from graphsel.errors import InputError, check_integer

# The protocol's split module imports no torch, so the CLI starts without it; the models,
# the trainer and the runner are imported when the command runs.
from graphsel.transfer.protocol.split import MODES
from graphsel.viz.transfer import PLOT_FILES

__all__ = ["command"]


def _strategy_list(ctx: click.Context, param: click.Parameter, value: str | None
                   ) -> list[str] | None:
    return None if value is None else [s.strip() for s in value.split(",") if s.strip()]


@click.command("run")
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
                   "strategy, and each strategy's calibration on the test set.")
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
@json_option
def command(config_path: Path, seeds: int | None, strategies: list[str] | None,
            periods: int | None, mode: str | None, epochs: int | None, out: Path | None,
            plots_dir: Path | None, runs_dir: Path | None, nproc: int | None, fresh: bool,
            as_json: bool) -> None:
    """Compare transfer strategies on a time split of the target domain.

    Every strategy uses the same model and training options (the baselines train the base
    model on their rows; ctnet, ctnet_linear, ecat, diit and ecdctr build theirs from its
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
    task, raw = read_config(config_path)
    if task == "next_item":
        for flag, given in (("--run-dir", runs_dir), ("--fresh", fresh or None),
                            ("--nproc", nproc)):
            if given is not None:
                raise InputError(f"{flag} does not apply to task: next_item ({config_path})")
        _run_next_item(raw, config_path, seeds, strategies, periods, mode, epochs, out,
                       plots_dir, as_json)
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
    check_paths({"--config": config_path, **config.input_paths()}, files={"--out": out},
                folders={"--plots": OutputFolder(plots_dir, PLOT_FILES)
                         if plots_dir is not None else None,
                         "--run-dir": run_dir})
    rank = _torchrun_rank()
    store = RunStore(run_dir, on_warning=lambda line: click.echo(f"warning: {line}", err=True),
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

        results, loaded_units = run_experiment_ranks(config, nproc, progress=not as_json,
                                                     run_dir=run_dir)
    else:
        results = run_experiment(config, progress=not as_json and rank <= 0, store=store)
        loaded_units = store.loaded_units
    if rank > 0:
        return  # rank 0 of the torchrun group reports
    if loaded_units and not as_json:
        click.echo(f"resumed {loaded_units} finished (strategy, seed) unit(s) from "
                   f"{run_dir}", err=True)
    payload = to_jsonable(results.to_json())
    text = results.table()
    # the figures and the JSON are written as one unit: all of them or none
    with atomic_outputs() as outputs:
        if plots_dir is not None:
            from graphsel.viz import (
                save_transfer_plots,  # matplotlib only when plots are asked for
            )

            staged = save_transfer_plots(results, outputs.folder(plots_dir))
            payload["plots"] = [str(plots_dir / path.name) for path in staged]
            text += "\n\nplots: " + ", ".join(payload["plots"])
        if out is not None:
            write_json(payload, outputs.file(out))
    emit(as_json, payload, text)


def _run_next_item(raw: Any, config_path: Path, seeds: int | None, models: list[str] | None,
                   periods: int | None, mode: str | None, epochs: int | None,
                   out: Path | None, plots_dir: Path | None, as_json: bool) -> None:
    """``task: next_item``: SyNCRec and its baselines (graphsel.transfer.sequential)."""
    from graphsel.transfer.sequential.options import next_item_config_from_dict

    for flag, value in (("--periods", periods), ("--mode", mode), ("--plots", plots_dir)):
        if value is not None:
            raise InputError(f"{flag} does not apply to task: next_item ({config_path})")
    config = next_item_config_from_dict(raw, str(config_path))
    train = config.train if epochs is None else replace(config.train, epochs=epochs)
    config = replace(config, train=train, seeds=config.seeds if seeds is None else seeds,
                     models=config.models if models is None else tuple(models))
    path = config.dataset.options.get("path")
    check_paths({"--config": config_path, "dataset.options.path": path},
                files={"--out": out})
    from graphsel.transfer.sequential.runner import run_next_item

    results = run_next_item(config, progress=not as_json)
    payload = to_jsonable(results.to_json())
    if out is not None:
        write_json(payload, out)
    emit(as_json, payload, results.table())


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
