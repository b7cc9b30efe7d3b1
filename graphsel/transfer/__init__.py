"""Transfer models and their training: features, datasets, models, trainer, metrics.

This layer sits on top of the core (:mod:`graphsel.log` and the selection stages) and never
imports :mod:`graphsel.cli`.
"""

from graphsel.transfer.data import CTRBatch, CTRDataset, iter_batches
from graphsel.transfer.features import (
    OOV_INDEX,
    CategoricalField,
    FeatureEncoder,
    FeatureSpec,
    NumericField,
)
from graphsel.transfer.metrics import METRICS, auc, gauc, logloss, paired_bootstrap_ci
from graphsel.transfer.models import (
    CTRModel,
    EmbeddingBlock,
    Head,
    MLPBlock,
    MLPLayer,
    ModelConfig,
    ModelOutput,
    build_base_model,
    get_model,
    model_names,
    register_model,
)
from graphsel.transfer.trainer import (
    EpochRecord,
    FitResult,
    Trainer,
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
    seed_everything,
    split_parameters,
    weighted_bce,
    weighted_bce_loss,
)

__all__ = [
    "CTRBatch",
    "CTRDataset",
    "CTRModel",
    "CategoricalField",
    "EmbeddingBlock",
    "EpochRecord",
    "FeatureEncoder",
    "FeatureSpec",
    "FitResult",
    "Head",
    "METRICS",
    "MLPBlock",
    "MLPLayer",
    "ModelConfig",
    "ModelOutput",
    "NumericField",
    "OOV_INDEX",
    "TrainConfig",
    "Trainer",
    "auc",
    "build_base_model",
    "evaluate",
    "fit",
    "gauc",
    "get_model",
    "iter_batches",
    "load_checkpoint",
    "logloss",
    "model_names",
    "paired_bootstrap_ci",
    "predict",
    "register_model",
    "save_checkpoint",
    "seed_everything",
    "split_parameters",
    "weighted_bce",
    "weighted_bce_loss",
]
