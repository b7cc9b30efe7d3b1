"""Public datasets and the embedded synthetic default, as source/target logs.

Each dataset is registered by name and builds a :class:`DatasetSplit`: a source and a target
:class:`~graphsel.data.log.InteractionLog` on one shared id index (``domain`` ``"source"`` /
``"target"``) and, for the synthetic default, the ground truth of which source rows are
target-like. :func:`prepare` writes a split to a folder with its card.

>>> [d.name for d in list_datasets()]
['synthetic', 'movielens-1m', 'movielens-100k', 'taobao-userbehavior']
"""

from graphsel.data.datasets._registry import (
    CARD_FILE,
    DATASETS,
    SOURCE_FILE,
    TARGET_FILE,
    TRUTH_COLUMN,
    TRUTH_FILE,
    Dataset,
    DatasetSplit,
    get_dataset,
    list_datasets,
    prepare,
    prepare_paths,
    read_truth,
    register_dataset,
    truth_mask,
)

__all__ = [
    "CARD_FILE",
    "DATASETS",
    "SOURCE_FILE",
    "TARGET_FILE",
    "TRUTH_COLUMN",
    "TRUTH_FILE",
    "Dataset",
    "DatasetSplit",
    "get_dataset",
    "list_datasets",
    "prepare",
    "prepare_paths",
    "read_truth",
    "register_dataset",
    "truth_mask",
]

# Importing a dataset module registers it; this order is the listing order.
from graphsel.data.datasets import synthetic, movielens, taobao  # noqa: E402, F401, I001
