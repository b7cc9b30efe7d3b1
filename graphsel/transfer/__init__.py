"""Transfer models and their training: features, datasets, models, trainer, metrics, protocol.

This layer sits on top of the core (:mod:`graphsel.data.log` and the selection stages) and never
imports :mod:`graphsel.cli`. Its rooms:

* :mod:`graphsel.transfer.models`: the base model's parts (``base``), the shared towers and
  adapters (``towers``), one module per seed method (``ctnet``, ``ecat``, ``diit``,
  ``ecdctr``: model, loss, learner and strategy registration) and every option dataclass
  (``options``, no torch);
* :mod:`graphsel.transfer.train`: ``trainer``, ``optim``, ``losses``, ``metrics`` and the
  ``options`` (no torch);
* :mod:`graphsel.transfer.protocol`: ``split``, ``strategies``, ``learners``, ``runner``,
  ``results``, ``experiment``;
* :mod:`graphsel.transfer.config`: the experiment config of ``graphsel run``.

Every name below loads on first use, so ``from graphsel.transfer.config import load_config``
reads and checks a config without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "graphsel.transfer.config": ["DatasetConfig", "ExperimentConfig", "config_from_dict",
                                 "load_config", "override"],
    "graphsel.transfer.data": ["CTRBatch", "CTRDataset", "iter_batches"],
    "graphsel.transfer.features": ["OOV_INDEX", "CategoricalField", "FeatureEncoder",
                                   "FeatureSpec", "NumericField"],
    "graphsel.transfer.models.options": ["ModelConfig", "AdapterOptions", "DistillConfig",
                                         "ECATOptions", "DIITConfig", "DIITLossConfig",
                                         "DIITOptions", "FinetuneOptions"],
    "graphsel.transfer.models.base": ["CTRModel", "EmbeddingBlock", "Head", "MLPBlock",
                                      "MLPLayer", "ModelOutput", "build_base_model",
                                      "get_model", "model_names", "register_model"],
    "graphsel.transfer.models.towers": ["FrozenTower", "GLUAdapter", "LinearAdapter"],
    "graphsel.transfer.models.multidomain": ["route", "DomainInput", "SharedBottom", "MMoE",
                                             "PLE", "STAR", "PEPNet", "build_shared_bottom",
                                             "build_mmoe", "build_ple", "build_star",
                                             "build_pepnet"],
    "graphsel.transfer.models.multidomain_options": ["TowerOptions", "MMoEOptions",
                                                     "PLEOptions", "STAROptions",
                                                     "PEPNetOptions"],
    "graphsel.transfer.models.finetune": ["FinetuneLearner"],
    "graphsel.transfer.models.ctnet": ["CTNet", "CTNetLearner"],
    "graphsel.transfer.models.ecat": ["ECAT", "ECATLearner", "adaptive_distillation_loss",
                                      "ecat_loss"],
    "graphsel.transfer.models.diit": ["DIIT", "DIITLearner", "diit_loss", "grad_reverse",
                                      "source_sub_domains"],
    "graphsel.transfer.models.ecdctr": ["ECDCTRLearner", "EntityEmbeddings",
                                        "TinyPretrainModel", "add_embedding_features",
                                        "aggregate_periods", "init_from", "reset_batchnorm"],
    "graphsel.transfer.train.options": ["TrainConfig"],
    "graphsel.transfer.train.losses": ["weighted_bce", "weighted_bce_loss"],
    "graphsel.transfer.train.optim": ["split_parameters"],
    "graphsel.transfer.train.trainer": ["EpochRecord", "FitResult", "Trainer", "evaluate", "fit",
                                        "load_checkpoint", "predict", "save_checkpoint",
                                        "seed_everything"],
    "graphsel.transfer.train.metrics": ["METRICS", "auc", "gauc", "logloss", "mean_auc",
                                        "paired_bootstrap_ci"],
    "graphsel.transfer.protocol.split": ["MODES", "ProtocolConfig", "TimeSplit",
                                         "split_by_time"],
    "graphsel.transfer.protocol.strategies": ["SourcePlan", "Strategy", "StrategyContext",
                                              "default_options", "get_strategy",
                                              "register_strategy", "strategy_names"],
    "graphsel.transfer.protocol.learners": ["Learner", "LearnerContext", "PeriodData",
                                            "PlanLearner"],
    "graphsel.transfer.protocol.runner": ["compare_strategies", "fit_selection"],
    "graphsel.transfer.protocol.results": ["Results", "score_predictions"],
    "graphsel.transfer.protocol.experiment": ["load_data", "run_experiment",
                                              "synthetic_default"],
}

_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphsel.transfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
