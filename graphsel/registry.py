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
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from graphsel.errors import choice_error

__all__ = ["Registry"]

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
