"""Tests of graphsel.registry: one helper for datasets, stages and strategies."""

from __future__ import annotations

import sys
import types

import pytest

from graphsel.errors import InputError
from graphsel.registry import Registry


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
