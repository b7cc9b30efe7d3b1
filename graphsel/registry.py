"""One registry helper for every kind of named thing: datasets, selection stages, strategies.

A :class:`Registry` maps names to entries, in registration order, and answers an unknown name
with an :class:`~graphsel.errors.InputError` that lists the valid ones. An entry whose module
is heavy (torch) may be *declared* by name and module first: the name is known at once (a
config can be checked without importing torch), and the module is imported, registering the
entry, the first time the entry itself is asked for.

>>> colours = Registry("colour")
>>> @colours.register("red")
... def red():
...     return "#D55E00"
>>> colours.names(), colours.get("red")()
(['red'], '#D55E00')
>>> colours.get("blue")
Traceback (most recent call last):
...
graphsel.errors.InputError: Could not resolve colour 'blue' among ['red']
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Annotated,
    Any,
    Generic,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from graphsel.errors import choice_error

__all__ = ["Option", "Registry", "keyword_options", "option_flag"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries of one kind.

    Args:
        kind: what an entry is, for messages (``"dataset"``, ``"stage"``, ``"strategy"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._declared: dict[str, str] = {}  # name -> module that registers it on import
        self._order: list[str] = []  # every name, in the order it became known

    def add(self, name: str, entry: T) -> T:
        """Registers ``entry`` under ``name`` and returns it.

        A declared name keeps its place in :meth:`names`.

        Raises:
            ValueError: ``name`` is registered already (a programming error, not bad input).
        """
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if name not in self._declared:
            self._order.append(name)
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator form of :meth:`add`: ``@registry.register("name")``."""

        def decorate(entry: T) -> T:
            return self.add(name, entry)

        return decorate

    def declare(self, name: str, module: str) -> None:
        """Makes ``name`` known now; importing ``module`` registers its entry on first use."""
        if name in self._entries or name in self._declared:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._declared[name] = module
        self._order.append(name)

    def get(self, name: str) -> T:
        """The entry of ``name``, importing its declaring module if need be.

        Raises:
            InputError: ``Could not resolve <kind> 'x' among [...]``.
        """
        if name not in self._entries and name in self._declared:
            importlib.import_module(self._declared[name])
            if name not in self._entries:
                raise ValueError(f"importing {self._declared[name]} did not register "
                                 f"{self.kind} {name!r}")
        if name not in self._entries:
            raise choice_error(self.kind, name, self.names())
        return self._entries[name]

    def names(self) -> list[str]:
        """Every known name, registered or declared, in the order it became known."""
        return list(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._order)


@dataclass(frozen=True)
class Option:
    """One keyword-only parameter of a registered function, seen as a user's option.

    Attributes:
        name: the parameter name, ``target_genre``.
        value_type: what a command-line value is read as: ``int``, ``float``, ``bool``,
            ``str`` or ``Path`` (a parameter that takes an ``os.PathLike``); ``str`` for any
            other annotation.
        default: the parameter's default.
        help: the parameter's entry under ``Args:`` in the docstring, on one line and without
            reST markup (``""`` when it has none).
        parse: for a parameter annotated ``Annotated[T, parse]``, the function that turns the
            command-line text into its value (default ``None``: ``value_type`` reads it).
    """

    name: str
    value_type: type
    default: Any
    help: str = ""
    parse: Callable[[str], Any] | None = None

    @property
    def flag(self) -> str:
        """The command-line spelling: ``--target-genre``."""
        return option_flag(self.name)


def option_flag(name: str) -> str:
    """The command-line flag of a parameter name: ``option_flag("target_genre")`` is
    ``"--target-genre"``."""
    return "--" + name.replace("_", "-")


def keyword_options(function: Callable[..., Any]) -> tuple[Option, ...]:
    """The keyword-only parameters of ``function`` as :class:`Option` s, in signature order.

    Types come from the annotations, defaults from the signature and help from the Google-style
    ``Args:`` section of the docstring, so a new parameter is a new option with no other edit.

    >>> def load(*, seed: int = 0, path: str | os.PathLike | None = None) -> None:
    ...     '''Loads.
    ...
    ...     Args:
    ...         seed: random seed (default 0).
    ...         path: the ``data`` folder
    ...             (required).
    ...     '''
    >>> for option in keyword_options(load):
    ...     print(option.flag, option.value_type.__name__, option.default, "|", option.help)
    --seed int 0 | random seed (default 0).
    --path Path None | the data folder (required).
    """
    hints = get_type_hints(function, include_extras=True)
    helps = _args_help(inspect.getdoc(function) or "")
    options = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        hint = hints.get(parameter.name, str)
        parse = None
        if get_origin(hint) is Annotated:
            hint, *metadata = get_args(hint)
            parse = next((m for m in metadata if callable(m)), None)
        options.append(Option(parameter.name, _value_type(hint), parameter.default,
                              helps.get(parameter.name, ""), parse))
    return tuple(options)


def _value_type(hint: Any) -> type:
    """``int``, ``float``, ``bool``, ``Path`` or ``str``: what reads a value of type ``hint``."""
    union = get_origin(hint) in (Union, types.UnionType)
    members = [get_origin(m) or m for m in (get_args(hint) if union else (hint,))
               if m is not type(None)]
    if any(isinstance(m, type) and issubclass(m, (os.PathLike, Path)) for m in members):
        return Path
    for simple in (bool, int, float):
        if members == [simple]:
            return simple
    if set(members) == {int, float}:
        return float
    return str


_ARG_LINE = re.compile(r"\*{0,2}(\w+)(?: \(.*?\))?:\s*(.*)")


def _args_help(docstring: str) -> dict[str, str]:
    """The entries of a Google-style ``Args:`` section, by name, each on one line."""
    entries: dict[str, list[str]] = {}
    indent = None
    current: list[str] = []
    in_args = False
    for line in docstring.splitlines():
        stripped = line.strip()
        if not in_args:
            in_args = stripped == "Args:"
            continue
        if stripped and not line.startswith(" "):
            break  # the next section, ``Returns:`` or ``Raises:``
        if not stripped:
            continue
        width = len(line) - len(line.lstrip())
        indent = width if indent is None else indent
        match = _ARG_LINE.fullmatch(stripped)
        if width == indent and match:
            current = entries.setdefault(match.group(1), [])
            current.append(match.group(2))
        else:
            current.append(stripped)
    return {name: _plain(" ".join(parts)) for name, parts in entries.items()}


def _plain(text: str) -> str:
    """``text`` without reST roles and literals: ``:data:`X``` and ````x```` become X and x."""
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", text)
    return " ".join(text.replace("``", "").split())
