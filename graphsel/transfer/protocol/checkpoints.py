"""Finished work of a comparison kept on disk, so that a killed ``graphsel run`` resumes.

A :class:`RunStore` is one run directory. :func:`~graphsel.transfer.protocol.runner.compare_strategies`
saves into it, each as soon as it is done, the fitted selection and every finished
(strategy, seed) unit, and on the next call loads them instead of recomputing them::

    <run dir>/selection.npz                   mask, weight, scores; summary and report (JSON)
    <run dir>/units/<strategy>.seed<S>.npz    test predictions; records, effort and the
                                              tuning choice (JSON)
    <run dir>/units/<strategy>.seed<S>.partial.pkl
                                              an unfinished unit after its last finished
                                              period (pickle; removed once the unit is saved)

Each file is written atomically (:func:`graphsel.data.io.atomic_path`), so a process killed
outright (SIGKILL) leaves finished files and no half-written one. A file that cannot be read
back (truncated, corrupt, another format, rows that do not fit the split) is reported by
``on_warning`` and recomputed. A loaded unit gives exactly the records, predictions and effort
(timing fields included) that were saved, so a resumed run's results equal an uninterrupted
one's.

An unfinished unit's *progress* (:meth:`RunStore.save_progress`) is rewritten after each
finished period: the runner pickles its learner (models, trainers, their fits), the records
so far and the random generators' state, so that a rerun continues at the first unfinished
period. Large objects the runner holds anyway (the source log, the plan, loss functions,
which are closures) are pickled by reference (``externals``) and re-attached on load. A
progress file is a pickle: load only run directories you wrote.

The directory of a run is keyed by :func:`experiment_key`: a hash of everything that decides a
unit's content (the config less ``seeds`` and ``strategies``, the data's paths with their
sizes and modification times, graphsel's version). Adding seeds or strategies to a config
thus reuses the units already done; any other change starts a new directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphsel.data.io import PathArg, atomic_path
from graphsel.select.pipeline import Selection
from graphsel.transfer.protocol.results import (
    EffortRecord,
    GridPoint,
    PeriodRecord,
    SelectionSummary,
)

__all__ = ["RUNS_DIR", "RUNS_ENV", "RunStore", "UnitResult", "experiment_key",
           "input_fingerprint", "runs_root"]

RUNS_DIR = ".graphsel-runs"
"""The default folder of run directories, in the working directory."""
RUNS_ENV = "GRAPHSEL_RUNS"
"""The environment variable that, when set, replaces :data:`RUNS_DIR`."""
_FORMAT = 3
"""The layout version of a saved file; a file of another version is recomputed (2: the
records carry ECE and the predicted and actual CTR; 3: units keep their validation
predictions)."""
_META = "meta"


def runs_root(given: PathArg | None = None) -> Path:
    """The folder of run directories: ``given``, else ``$GRAPHSEL_RUNS``, else
    :data:`RUNS_DIR` (in the working directory)."""
    return Path(given if given is not None else os.environ.get(RUNS_ENV) or RUNS_DIR)


# --------------------------------------------------------------------------------------------
# The key
# --------------------------------------------------------------------------------------------


def input_fingerprint(paths: Mapping[str, PathArg]) -> dict[str, Any]:
    """Per key, the resolved path with its size and modification time (ns), or, for a
    folder, those of every non-hidden file below it; ``None`` for a path that is missing.

    Cheap for logs of any size, and any rewrite of a file changes it (a copy that keeps
    size and mtime, e.g. ``cp -p`` of a different file of the same size, would not).
    """
    out: dict[str, Any] = {}
    for key, value in paths.items():
        path = Path(os.path.realpath(os.fspath(value)))
        if path.is_file():
            stat = path.stat()
            out[key] = [str(path), stat.st_size, stat.st_mtime_ns]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            out[key] = [str(path)] + [[str(p.relative_to(path)), p.stat().st_size,
                                       p.stat().st_mtime_ns] for p in files]
        else:
            out[key] = None
    return out


def experiment_key(config: Any) -> str:
    """16 hex digits naming the run directory of an
    :class:`~graphsel.transfer.config.ExperimentConfig`.

    The blake2b hash of a canonical JSON of the config without ``seeds`` and
    ``strategies`` (each unit is keyed by its strategy and seed inside the directory), of
    :func:`input_fingerprint` of :meth:`~graphsel.transfer.config.ExperimentConfig.input_paths`
    and of graphsel's version.
    """
    from graphsel import __version__

    content = {key: value for key, value in dataclasses.asdict(config).items()
               if key not in ("seeds", "strategies")}
    text = json.dumps({"config": content, "inputs": input_fingerprint(config.input_paths()),
                       "graphsel": __version__, "format": _FORMAT},
                      sort_keys=True, default=repr)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UnitResult:
    """One finished (strategy, seed): what the comparison keeps of it.

    Attributes:
        records: one per period, in order.
        test_predictions: ``(N_test,)`` the scored model's predictions on the test rows.
        effort: its tuning choice and training cost.
        reused_choice: the grid point it was told to use (an earlier seed's choice), or None
            when it tuned its own.
        valid_predictions: ``(N_valid,)`` the scored model's predictions on the validation
            rows (``auto`` compares them). Default empty.
    """

    records: tuple[PeriodRecord, ...]
    test_predictions: np.ndarray
    effort: EffortRecord
    reused_choice: GridPoint | None = None
    valid_predictions: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def strategy(self) -> str:
        return self.effort.strategy

    @property
    def seed(self) -> int:
        return self.effort.seed


class _ExternalPickler(pickle.Pickler):
    """Pickles the objects whose ``id`` is in ``names`` as their name."""

    def __init__(self, handle: Any, names: Mapping[int, str]) -> None:
        super().__init__(handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.names = names

    def persistent_id(self, obj: Any) -> str | None:
        return self.names.get(id(obj))


class _ExternalUnpickler(pickle.Unpickler):
    """Resolves the names of :class:`_ExternalPickler` in ``externals``."""

    def __init__(self, handle: Any, externals: Mapping[str, Any]) -> None:
        super().__init__(handle)
        self.externals = externals

    def persistent_load(self, pid: Any) -> Any:
        if pid not in self.externals:
            raise pickle.UnpicklingError(f"it refers to {pid!r}, which this run lacks")
        return self.externals[pid]


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


class RunStore:
    """A run directory: saves and loads the selection and the finished units.

    Nothing is written until the first save (the folders are made then).

    Args:
        path: the run directory (e.g. ``runs_root() / experiment_key(config)``).
        on_warning: called with one line when a saved file is unusable and is recomputed.
            Default: :func:`warnings.warn`.
        read_only: load only; every save (and :meth:`drop_progress`) does nothing. The
            ranks other than 0 of a data-parallel run resume from rank 0's store this way.
            Default False.
    """

    def __init__(self, path: PathArg,
                 on_warning: Callable[[str], None] | None = None,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.on_warning = on_warning or _warn
        self.read_only = read_only
        self.loaded_units = 0

    def clear(self) -> None:
        """Removes everything saved in the run directory (``--fresh``)."""
        shutil.rmtree(self.path, ignore_errors=True)

    # ---- the selection ----

    @property
    def selection_path(self) -> Path:
        return self.path / "selection.npz"

    def save_selection(self, selection: Selection, summary: SelectionSummary | None) -> None:
        """Saves the selection's arrays, its summary and its report (for reading)."""
        if self.read_only:
            return
        meta = {"format": _FORMAT, "scores": list(selection.scores),
                "summary": None if summary is None else summary.to_json(),
                "report": None if selection.report is None else selection.report.to_json()}
        arrays = {"mask": selection.mask, "weight": selection.weight,
                  **{f"score.{name}": values for name, values in selection.scores.items()}}
        self._save(self.selection_path, meta, arrays)

    def load_selection(self, n_rows: int) -> tuple[Selection, SelectionSummary | None] | None:
        """The saved selection over ``n_rows`` source rows and its summary (its ``report``
        is None), or None when there is none that fits."""
        loaded = self._load(self.selection_path, "the selection")
        if loaded is None:
            return None
        meta, arrays = loaded
        try:
            scores = {name: arrays[f"score.{name}"] for name in meta["scores"]}
            selection = Selection(arrays["mask"], arrays["weight"], scores)
            if any(len(values) != n_rows for values in (selection.mask, selection.weight,
                                                        *scores.values())):
                raise ValueError(f"its arrays do not hold {n_rows} rows")
            summary = (None if meta["summary"] is None
                       else SelectionSummary.from_json(meta["summary"]))
        except (KeyError, TypeError, ValueError) as exc:
            self._unusable(self.selection_path, "the selection", exc)
            return None
        return selection, summary

    # ---- the units ----

    def progress_path(self, strategy: str, seed: int) -> Path:
        return self.path / "units" / f"{strategy}.seed{seed}.partial.pkl"

    def save_progress(self, strategy: str, seed: int, header: Mapping[str, Any], body: Any,
                      externals: Mapping[str, Any]) -> bool:
        """Saves an unfinished unit: ``header`` (plain data, read first on load) then
        ``body``, whose references to the objects of ``externals`` are saved as their names.

        Returns:
            False, after one ``on_warning`` line, when ``body`` holds an object that pickle
            cannot save (e.g. a class made at run time): nothing is written then, and the
            caller should not try again for this unit.
        """
        if self.read_only:
            return True
        path = self.progress_path(strategy, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = {id(value): name for name, value in externals.items()}
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                pickle.dump({**header, "format": _FORMAT, "strategy": strategy, "seed": seed},
                            handle, protocol=pickle.HIGHEST_PROTOCOL)
                _ExternalPickler(handle, names).dump(body)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.on_warning(f"{path}: cannot save the progress of ({strategy}, seed {seed}) "
                            f"({reason}); if killed, it restarts at its first period")
            return False
        return True

    def load_progress(self, strategy: str, seed: int, header: Mapping[str, Any],
                      externals: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Any | None:
        """The body saved by :meth:`save_progress` for ``strategy`` at ``seed``, or None when
        there is none or it is unusable (reported by ``on_warning``): unreadable, or its
        header differs from ``header`` on a key ``header`` has.

        Args:
            strategy: the unit's strategy.
            seed: the unit's seed.
            header: what the saved header must hold (e.g. the tuning grid).
            externals: given the saved header, the objects that the body's references name.
        """
        path = self.progress_path(strategy, seed)
        what = f"the unfinished unit ({strategy}, seed {seed})"
        if not path.exists():
            return None
        try:
            with open(path, "rb") as handle:
                saved = pickle.load(handle)
                expected = {**header, "format": _FORMAT, "strategy": strategy, "seed": seed}
                if not isinstance(saved, dict) or any(
                        saved.get(key) != value for key, value in expected.items()):
                    raise ValueError("it was saved by another run or format")
                return _ExternalUnpickler(handle, externals(saved)).load()
        except Exception as exc:  # any unreadable file restarts the unit
            self._unusable(path, what, exc)
            return None

    def drop_progress(self, strategy: str, seed: int) -> None:
        """Removes the progress of ``strategy`` at ``seed`` (once its unit is saved)."""
        if self.read_only:
            return
        self.progress_path(strategy, seed).unlink(missing_ok=True)

    def unit_path(self, strategy: str, seed: int) -> Path:
        return self.path / "units" / f"{strategy}.seed{seed}.npz"

    def save_unit(self, unit: UnitResult) -> None:
        """Saves one finished (strategy, seed)."""
        if self.read_only:
            return
        meta = {"format": _FORMAT, "records": [record.to_json() for record in unit.records],
                "effort": unit.effort.to_json(),
                "reused_choice": (None if unit.reused_choice is None
                                  else unit.reused_choice.to_json())}
        self._save(self.unit_path(unit.strategy, unit.seed), meta,
                   {"test_predictions": unit.test_predictions,
                    "valid_predictions": unit.valid_predictions})

    def load_unit(self, strategy: str, seed: int, reused_choice: GridPoint | None,
                  n_test: int, n_valid: int) -> UnitResult | None:
        """The saved unit of ``strategy`` at ``seed``, or None when there is none that fits:
        one that reused another choice (or tuned when it should reuse ``reused_choice``),
        or whose predictions do not cover the ``n_test`` test and ``n_valid`` validation
        rows, is recomputed."""
        path = self.unit_path(strategy, seed)
        what = f"the unit ({strategy}, seed {seed})"
        loaded = self._load(path, what)
        if loaded is None:
            return None
        meta, arrays = loaded
        try:
            saved_choice = (None if meta["reused_choice"] is None
                            else GridPoint(**meta["reused_choice"]))
            unit = UnitResult(tuple(PeriodRecord.from_json(r) for r in meta["records"]),
                              arrays["test_predictions"], EffortRecord.from_json(meta["effort"]),
                              saved_choice, arrays["valid_predictions"])
            if (unit.strategy, unit.seed) != (strategy, seed):
                raise ValueError(f"it holds ({unit.strategy}, seed {unit.seed})")
            if unit.test_predictions.shape != (n_test,):
                raise ValueError(f"its predictions do not cover the {n_test} test rows")
            if unit.valid_predictions.shape != (n_valid,):
                raise ValueError(f"its predictions do not cover the {n_valid} validation rows")
        except (KeyError, TypeError, ValueError) as exc:
            self._unusable(path, what, exc)
            return None
        if saved_choice != reused_choice:
            self.on_warning(f"{path}: {what} was tuned differently from this run; recomputing it")
            return None
        self.loaded_units += 1
        return unit

    # ---- files ----

    def _save(self, path: Path, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            # a file object: np.savez would add ".npz" to the temporary file's name
            payload: dict[str, Any] = {_META: np.array(json.dumps(meta)), **arrays}
            np.savez(handle, **payload)

    def _load(self, path: Path, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(str(arrays.pop(_META)))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"not a format-{_FORMAT} file")
        except Exception as exc:  # any unreadable file (zip, npy, JSON errors) is recomputed
            self._unusable(path, what, exc)
            return None
        return meta, arrays

    def _unusable(self, path: Path, what: str, exc: BaseException) -> None:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.on_warning(f"{path}: cannot use {what} ({reason}); recomputing it")
