"""The dataset registry and :func:`prepare`, which writes a dataset's domain split to a folder.

A dataset is a function that takes keyword-only options (each with a default) and returns a
:class:`DatasetSplit`. Its keyword parameters ARE its options (:attr:`Dataset.options`: names,
types, defaults and the help of its docstring's ``Args:``): :func:`prepare` and the command
line reject any other name with the list of valid ones, and ``graphsel datasets prepare``
offers one flag per option, so an option is declared in one place.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graphsel.data.card import DatasetCard, TruthSummary
from graphsel.data.io import OutputFolder, check_output_dir, check_paths, write_json
from graphsel.data.log import InteractionLog, write_log
from graphsel.errors import InputError
from graphsel.registry import Option, Registry, keyword_options

__all__ = [
    "DATASETS",
    "DatasetSplit",
    "Dataset",
    "register_dataset",
    "get_dataset",
    "list_datasets",
    "prepare",
    "prepare_paths",
    "SOURCE_FILE",
    "TARGET_FILE",
    "TRUTH_FILE",
    "TRUTH_COLUMN",
    "CARD_FILE",
    "truth_mask",
    "read_truth",
]

SOURCE_FILE = "source.parquet"
TARGET_FILE = "target.parquet"
TRUTH_FILE = "truth.parquet"
TRUTH_COLUMN = "in_target_community"
"""The truth table's flag: the source row belongs with the target (its ``row`` column says
which source row)."""
CARD_FILE = "card.json"


class DatasetSplit(NamedTuple):
    """A source and a target log on one shared id index, and the ground truth if known.

    Attributes:
        source: the source-domain log (``domain == "source"``), ``N_src`` rows.
        target: the target-domain log (``domain == "target"``), same ``IdIndex`` as source.
        truth: ``N_src`` rows that say which source rows are truly target-like (columns
            ``row`` and ``in_target_community``), or ``None`` for real data.
    """

    source: InteractionLog
    target: InteractionLog
    truth: pa.Table | None = None


Loader = Callable[..., DatasetSplit]


@dataclass(frozen=True)
class Dataset:
    """A registered dataset.

    Attributes:
        name: the registry name, e.g. ``"synthetic"``.
        description: one line shown by ``graphsel datasets list``.
        load: the function that builds the :class:`DatasetSplit` from keyword options.
    """

    name: str
    description: str
    load: Loader

    @cached_property
    def options(self) -> tuple[Option, ...]:
        """Every option of the dataset (the keyword-only parameters of ``load``), in order."""
        return keyword_options(self.load)

    @property
    def defaults(self) -> dict[str, Any]:
        """Every option of the dataset with its default value, in declaration order."""
        return {option.name: option.default for option in self.options}

    def resolve(self, options: dict[str, Any]) -> dict[str, Any]:
        """The defaults updated with ``options``.

        Raises:
            InputError: if an option is not one of this dataset's.
        """
        defaults = self.defaults
        unknown = [key for key in options if key not in defaults]
        if unknown:
            raise InputError(f"dataset {self.name!r} has no option {unknown[0]!r} "
                             f"(options: {', '.join(defaults) or 'none'})")
        return {**defaults, **options}

    def __call__(self, **options: Any) -> DatasetSplit:
        """Builds the split with ``options`` (unknown names raise :class:`InputError`)."""
        return self.load(**self.resolve(options))


DATASETS: Registry[Dataset] = Registry("dataset")
"""Every registered dataset by name, in registration order (the order of listings)."""


def register_dataset(name: str, description: str = "") -> Callable[[Loader], Loader]:
    """Registers a loader under ``name``; its keyword-only parameters are its options.

    An option's command-line flag reads its value with the parameter's type (``int``,
    ``float``, ``str``, a path for ``os.PathLike``); a parameter annotated
    ``Annotated[T, parse]`` has its text read by ``parse`` instead.

    Args:
        name: the registry name.
        description: one line for listings (default: the first line of the docstring).

    Raises:
        ValueError: if ``name`` is already registered (a programming error, not bad input).
    """

    def decorate(load: Loader) -> Loader:
        text = description or (inspect.getdoc(load) or "").split("\n", 1)[0]
        DATASETS.add(name, Dataset(name, text, load))
        return load

    return decorate


def get_dataset(name: str) -> Dataset:
    """The registered dataset ``name``.

    Raises:
        InputError: if no dataset has that name; the message lists the valid names.
    """
    return DATASETS.get(name)


def list_datasets() -> list[Dataset]:
    """Every registered dataset, in registration order."""
    return [DATASETS.get(name) for name in DATASETS.names()]


def prepare(name: str, out_dir: str | os.PathLike, **options: Any) -> DatasetCard:
    """Builds dataset ``name`` and writes it to ``out_dir``; returns its card.

    Writes ``source.parquet``, ``target.parquet``, ``truth.parquet`` (only for a dataset with
    ground truth; a stale one from an earlier preparation is removed) and ``card.json``.
    ``out_dir`` is created if missing. Everything is built in memory before the first file is
    written, and if a write fails the files written so far (and a folder created here) are
    removed, so a failure leaves nothing partial.

    Args:
        name: a registered dataset name (see :func:`list_datasets`).
        out_dir: the output folder.
        **options: the dataset's options (see ``get_dataset(name).defaults``).

    Returns:
        The card, with ``dataset``, ``options`` (every option, defaults included), ``files``
        and, for a dataset with ground truth, ``truth``.

    Raises:
        InputError: unknown dataset or option, bad option value, unreadable input data,
            ``out_dir`` exists as a file, or ``out_dir`` is (or lies inside) an input folder
            or would overwrite an input (:func:`graphsel.data.io.check_paths`).
    """
    dataset = get_dataset(name)
    out_dir = check_output_dir(out_dir)
    resolved = dataset.resolve(options)
    inputs, folder = prepare_paths(dataset, out_dir, resolved)
    check_paths(inputs, folders={"out_dir": folder})
    split = dataset.load(**resolved)
    files = {"source": SOURCE_FILE, "target": TARGET_FILE}
    if split.truth is not None:
        files["truth"] = TRUTH_FILE
    files["card"] = CARD_FILE
    card = DatasetCard.of(
        split.source, split.target, dataset=name,
        options={k: _jsonable_option(v) for k, v in resolved.items()}, files=files,
        truth=None if split.truth is None else _truth_summary(split.truth))
    _write_all(out_dir, split, card)
    return card


PREPARED_FILES = (SOURCE_FILE, TARGET_FILE, TRUTH_FILE, CARD_FILE)
"""Every file :func:`prepare` writes or removes in its output folder."""


def prepare_paths(dataset: Dataset, out_dir: str | os.PathLike, options: dict[str, Any]
                  ) -> tuple[dict[str, Any], OutputFolder]:
    """The paths :func:`prepare` reads and writes, for :func:`~graphsel.data.io.check_paths`.

    Returns:
        ``({option name: path}`` of the given options that are paths (a dataset's
        ``os.PathLike`` parameters, such as ``path``), and the output folder with the files
        written in it).
    """
    takes = {option.name: option for option in dataset.options}
    inputs = {key: value for key, value in options.items()
              if value is not None and key in takes and takes[key].value_type is Path}
    return inputs, OutputFolder(out_dir, PREPARED_FILES)


def _write_all(out_dir: Path, split: DatasetSplit, card: DatasetCard) -> None:
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        written.append(write_log(split.source, out_dir / SOURCE_FILE))
        written.append(write_log(split.target, out_dir / TARGET_FILE))
        if split.truth is not None:
            written.append(write_log(split.truth, out_dir / TRUTH_FILE))
        write_json(card.to_json(), out_dir / CARD_FILE)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        else:
            for path in written:
                path.unlink(missing_ok=True)
        raise
    if split.truth is None:
        (out_dir / TRUTH_FILE).unlink(missing_ok=True)


def _truth_summary(truth: pa.Table) -> TruthSummary:
    flags = truth.column(TRUTH_COLUMN).to_numpy(zero_copy_only=False)
    return TruthSummary(rows=truth.num_rows, in_target_community=int(flags.sum()))


def truth_mask(truth: pa.Table, num_rows: int, where: str = "truth") -> np.ndarray:
    """A truth table (``row``, :data:`TRUTH_COLUMN`) as an ``(N_src,)`` bool mask.

    Raises:
        InputError: a missing column, or ``row`` not covering ``0 .. num_rows - 1``.
    """
    for column in ("row", TRUTH_COLUMN):
        if column not in truth.column_names:
            raise InputError(f"{where}: missing column '{column}'")
    rows = truth.column("row").to_numpy()
    if len(rows) != num_rows or (np.sort(rows) != np.arange(num_rows)).any():
        raise InputError(f"{where}: column 'row' does not cover the {num_rows} source rows")
    mask = np.zeros(num_rows, dtype=bool)
    mask[rows] = truth.column(TRUTH_COLUMN).to_numpy(zero_copy_only=False)
    return mask


def read_truth(path: str | os.PathLike, num_rows: int) -> np.ndarray:
    """:func:`truth_mask` of a ``truth.parquet`` file."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same bad input
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    return truth_mask(table, num_rows, str(path))


def _jsonable_option(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        return list(value)
    return value
