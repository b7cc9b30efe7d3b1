"""Typed selection options: the stage list, each stage's own parameters and one seed.

The same :class:`SelectionConfig` serves ``graphsel select --config FILE``, ``graphsel
expand --config FILE`` (its ``graph`` part) and the ``selection:`` part of ``graphsel run``'s
YAML. Every default lives in the stage classes' signatures
(:class:`~graphsel.select.expansion.GraphExpansion`,
:class:`~graphsel.select.domain.DomainClassifier`,
:class:`~graphsel.select.neighbors.NeighborScorer`); a config names only what it changes,
and command-line flags replace single values (:meth:`SelectionConfig.merged`). Precedence:
signature defaults < YAML < flags. A YAML file, every key optional::

    stages: [graph, da, knn]          # registered stage names, in order
    seed: 0                           # every stage's random_state (unless it sets its own)
    graph: {num_hops: 2, max_degree: auto, edges: all}
    da: {model: hgb, cv: 5}
    knn: {index: auto, k: 10, threshold: 0.9}
    engine: local                     # or spark (graphsel select only), with:
    master: local[4]                  # the Spark master (default: spark-submit's, else local[*])
    conf: {spark.driver.memory: 2g}   # Spark settings; --conf flags override key by key

Loading a config imports neither torch nor the transfer layer.

>>> config = SelectionConfig.from_dict({"stages": ["graph", "knn"], "knn": {"k": 5}})
>>> config.build().stages[1].get_params()["k"]
5
>>> SelectionConfig.from_dict({"knn": {"kk": 5}}, where="my.yaml: selection")
Traceback (most recent call last):
...
graphsel.errors.InputError: my.yaml: selection.knn: unknown key 'kk' (valid: index, k, \
nprobe, ef_search, lsh_nbits, lsh_rerank, embedding_dim, normalize, threshold, keep_quantile, \
budget, batch_size, n_threads, random_state)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphsel.data.io import read_yaml
from graphsel.errors import InputError, check_integer, choice_error
from graphsel.select.pipeline import DEFAULT_STAGES, SampleSelector
from graphsel.select.stage import STAGES, SelectionStage

__all__ = ["ENGINES", "SelectionConfig"]

ENGINES: tuple[str, ...] = ("local", "spark")
"""Where a selection runs: ``"local"`` (in memory, :mod:`graphsel.select`) or ``"spark"``
(:mod:`graphsel.engines.spark`, ``graphsel select`` only)."""


def _at(where: str, key: str) -> str:
    """The name of ``key`` under ``where``: ``"run.yaml: selection.da"``, ``"x.yaml: da"``."""
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def _param_names(cls: type[SelectionStage]) -> list[str]:
    """The stage's parameters in signature order (``get_param_names`` sorts them)."""
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


@dataclass(frozen=True)
class SelectionConfig:
    """The options of one selection.

    Attributes:
        stages: registered stage names, in order. Defaults to :data:`DEFAULT_STAGES`.
        params: per stage name, the stage's own keyword parameters. Defaults to none (the
            stages' signature defaults).
        seed: every stage's ``random_state``, unless ``params`` sets it. Defaults to None
            (the stages' defaults).
        origin: where the values came from, named by errors (e.g. ``"run.yaml:
            selection"``). Defaults to None: errors name the key alone.
        engine: one of :data:`ENGINES`. Defaults to ``"local"``.
        master: the Spark master of ``engine="spark"``. Defaults to None (spark-submit's,
            else ``local[*]``).
        conf: Spark settings of ``engine="spark"``. Defaults to none.

    Raises:
        InputError: an unknown stage, parameters of a stage not in ``stages``, an unknown
            parameter or a bad value (checked by the stage that owns it).
    """

    stages: tuple[str, ...] = DEFAULT_STAGES
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int | None = None
    origin: str | None = field(default=None, compare=False)
    engine: str = "local"
    master: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "conf", {str(key): str(value)
                                          for key, value in self.conf.items()})
        object.__setattr__(self, "params", {name: dict(values)
                                            for name, values in self.params.items()})
        where = self.origin or "selection"
        if not self.stages:
            raise InputError(f"{_at(where, 'stages')} is empty; choose from {STAGES.names()}")
        for name in self.stages:
            try:
                STAGES.get(name)
            except InputError as exc:
                raise InputError(f"{_at(where, 'stages')}: {exc}") from None
        for name, values in self.params.items():
            if name not in self.stages:
                raise InputError(f"{_at(where, name)} sets parameters of the {name!r} stage, which "
                                 f"is not among the stages {list(self.stages)}")
            valid = _param_names(STAGES.get(name))
            for key in values:
                if key not in valid:
                    raise InputError(f"{_at(where, name)}: unknown key {key!r} (valid: "
                                     f"{', '.join(valid)})")
        if self.seed is not None:
            check_integer(_at(where, "seed"), self.seed, 0)
        if self.engine not in ENGINES:
            raise InputError(f"{_at(where, 'engine')}: "
                             f"{choice_error('engine', self.engine, ENGINES)}")
        if self.engine != "spark" and (self.master is not None or self.conf):
            raise InputError(f"{_at(where, 'master' if self.master is not None else 'conf')} "
                             f"is a setting of engine spark; the engine is {self.engine}")
        for name in self.stages:
            try:
                self.stage(name).check_params()
            except InputError as exc:
                if self.origin is None:
                    raise
                raise InputError(f"{_at(where, name)}: {exc}") from None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None,
                  where: str = "selection") -> SelectionConfig:
        """A config from parsed YAML: ``stages``, ``seed`` and one mapping per stage name.

        Args:
            raw: the mapping (None: every default).
            where: what to name in errors: a key path (``"run.yaml: selection"``: errors
                name ``run.yaml: selection.da``) or a file (``"select.yaml:"``: errors name
                ``select.yaml: da``). Defaults to ``"selection"``.

        Raises:
            InputError: naming ``where`` and the key, listing the valid keys.
        """
        raw = {} if raw is None else raw
        if not isinstance(raw, Mapping):
            raise InputError(f"{where.rstrip(':')} must be a mapping, got {type(raw).__name__}")
        valid = ["stages", "seed", *STAGES.names(), "engine", "master", "conf"]
        for key in raw:
            if key not in valid:
                raise InputError(f"{where.rstrip(':')}: unknown key {key!r} (valid: "
                                 f"{', '.join(valid)})")
        stages = raw.get("stages", DEFAULT_STAGES)
        if isinstance(stages, str) or not isinstance(stages, Sequence) or \
                not all(isinstance(name, str) for name in stages):
            raise InputError(f"{_at(where, 'stages')} must be a list of stage names, got {stages!r}")
        params = {}
        for name in STAGES.names():
            values = raw.get(name)
            if values is None:
                continue
            if not isinstance(values, Mapping):
                raise InputError(f"{_at(where, name)} must be a mapping of the stage's parameters, "
                                 f"got {values!r}")
            params[name] = dict(values)
        conf = raw.get("conf") or {}
        if not isinstance(conf, Mapping):
            raise InputError(f"{_at(where, 'conf')} must be a mapping of Spark settings, got "
                             f"{conf!r}")
        return cls(tuple(stages), params, raw.get("seed"), origin=where,
                   engine=raw.get("engine", "local"), master=raw.get("master"), conf=conf)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> SelectionConfig:
        """A config from a YAML file (see the module docstring).

        Raises:
            InputError: an unreadable file, bad YAML, or a bad key or value (naming the file).
        """
        return cls.from_dict(read_yaml(path), where=f"{path}:")

    def merged(self, stages: Sequence[str] | None = None,
               params: Mapping[str, Mapping[str, Any]] | None = None,
               seed: int | None = None, *, engine: str | None = None,
               master: str | None = None,
               conf: Mapping[str, str] | None = None) -> SelectionConfig:
        """This config with some values replaced (command-line flags over YAML).

        Args:
            stages: a new stage list. Defaults to None (keep).
            params: per stage, parameters to set; the others keep their values.
                Defaults to None.
            seed: a new seed. Defaults to None (keep).
            engine, master: a new engine, master. Default None (keep). Another engine
                than this config's drops its ``master`` and ``conf``.
            conf: Spark settings to set; the others keep their values. Defaults to None.

        >>> SelectionConfig(engine="spark", conf={"a": "1"}).merged(conf={"b": "2"}).conf
        {'a': '1', 'b': '2'}
        """
        merged = {name: dict(values) for name, values in self.params.items()}
        for name, values in (params or {}).items():
            merged.setdefault(name, {}).update(values)
        same = engine is None or engine == self.engine
        return SelectionConfig(self.stages if stages is None else tuple(stages), merged,
                               self.seed if seed is None else seed, self.origin,
                               engine=self.engine if engine is None else engine,
                               master=master if master is not None else
                               (self.master if same else None),
                               conf={**(self.conf if same else {}), **(conf or {})})

    def subset(self, stages: Sequence[str]) -> SelectionConfig:
        """This config with only ``stages``, in that order, and their parameters.

        >>> SelectionConfig(params={"knn": {"k": 5}}).subset(["graph"]).params
        {}
        """
        return SelectionConfig(tuple(stages), {name: values for name, values in
                                               self.params.items() if name in stages},
                               self.seed, self.origin, self.engine, self.master, self.conf)

    def stage(self, name: str) -> SelectionStage:
        """An unfitted stage ``name`` with this config's parameters (and seed)."""
        cls = STAGES.get(name)
        params = dict(self.params.get(name, {}))
        if self.seed is not None and "random_state" in _param_names(cls):
            params.setdefault("random_state", self.seed)
        return cls(**params)

    def build(self, progress: bool = False) -> SampleSelector:
        """The :class:`~graphsel.select.pipeline.SampleSelector` of this config.

        Args:
            progress: show a progress bar over the stages. Defaults to False.

        Raises:
            InputError: for ``engine="spark"`` (:meth:`require_local`).
        """
        self.require_local()
        return SampleSelector([self.stage(name) for name in self.stages], progress=progress)

    def require_local(self) -> SelectionConfig:
        """This config, if its engine is ``"local"``: for the commands that select in memory
        (``graphsel expand``, ``graphsel run``; only ``graphsel select`` runs Spark's).

        Raises:
            InputError: ``run.yaml: selection.engine spark runs under graphsel select only;
                this command selects in memory (engine: local)``.
        """
        if self.engine != "local":
            raise InputError(f"{_at(self.origin or 'selection', 'engine')} {self.engine} runs "
                             f"under graphsel select only; this command selects in memory "
                             f"(engine: local)")
        return self
