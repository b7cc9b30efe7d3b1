"""Tests of graphsel.registry: one helper for datasets, stages and strategies, and the options
read from a registered function's signature."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Annotated

import pytest

from graphsel.errors import InputError
from graphsel.registry import Option, Registry, keyword_options


def test_names_keep_registration_order_and_unknown_names_list_them():
    registry: Registry[int] = Registry("number")
    registry.add("two", 2)
    registry.register("one")(1)
    assert registry.names() == ["two", "one"]
    assert registry.get("one") == 1
    with pytest.raises(InputError, match=r"Could not resolve number 'three' among \['one', 'two'\]"):
        registry.get("three")
    with pytest.raises(ValueError, match="already registered"):
        registry.add("two", 22)


def test_a_declared_entry_loads_its_module_on_first_use_and_keeps_its_place(monkeypatch):
    registry: Registry[str] = Registry("thing")
    registry.add("first", "a")
    registry.declare("lazy", "graphsel_test_lazy_module")
    registry.add("last", "c")
    module = types.ModuleType("graphsel_test_lazy_module")
    imported = []

    def exec_module():
        imported.append(True)
        registry.add("lazy", "b")

    class Finder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != "graphsel_test_lazy_module":
                return None
            import importlib.machinery

            class Loader:
                def create_module(self, spec):
                    return module

                def exec_module(self, mod):
                    exec_module()

            return importlib.machinery.ModuleSpec(name, Loader())

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    assert "lazy" in registry and imported == []
    assert registry.names() == ["first", "lazy", "last"]
    assert registry.get("lazy") == "b" and imported == [True]
    assert registry.names() == ["first", "lazy", "last"]
    monkeypatch.delitem(sys.modules, "graphsel_test_lazy_module", raising=False)


def test_a_declaration_whose_module_registers_nothing_is_a_bug():
    registry: Registry[str] = Registry("thing")
    registry.declare("ghost", "graphsel.errors")
    with pytest.raises(ValueError, match="did not register thing 'ghost'"):
        registry.get("ghost")


def _loader(first, *, seed: int = 0, rate: float | int = 0.5, on: bool = False,
            where: str | os.PathLike | None = None, folder: Path = Path("."),
            ids: Annotated[list[int] | str, _comma_ints] = (1,), anything=None,
            **extra: object) -> None:
    """Loads.

    Args:
        first: positional, so not an option.
        seed: random seed
            (default 0).
        rate (float): a share, see :data:`RATE` and ``rate`` (default 0.5).
        on: a switch (default False).
        where: a folder.
        **extra: not an option either.

    Returns:
        Nothing: ``ids`` has no help line.
    """


def _comma_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def test_keyword_options_read_types_defaults_and_help_from_the_function():
    options = keyword_options(_loader)
    assert [o.name for o in options] == ["seed", "rate", "on", "where", "folder", "ids",
                                         "anything"]
    assert [o.value_type for o in options] == [int, float, bool, Path, Path, str, str]
    assert [o.default for o in options] == [0, 0.5, False, None, Path("."), (1,), None]
    assert [o.help for o in options] == [
        "random seed (default 0).", "a share, see RATE and rate (default 0.5).",
        "a switch (default False).", "a folder.", "", "", ""]
    assert [o.parse for o in options] == [None] * 5 + [_comma_ints, None]
    assert options[-2].flag == "--ids" and Option("target_genre", str, "").flag == (
        "--target-genre")


def test_a_function_without_keyword_only_parameters_has_no_options():
    assert keyword_options(lambda seed=0: None) == ()
