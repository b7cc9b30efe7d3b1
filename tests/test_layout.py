"""The layout of DESIGN.md: layers import only downward.

``data < graph < select < engines < transfer < viz < cli``, with ``errors`` and the other
top-level plumbing modules below them all (``engines`` runs the stages of ``select`` on
another engine, Spark, taking the stage objects themselves). In particular the core (data,
graph, select) never imports graphsel.engines, graphsel.transfer, graphsel.viz or
graphsel.cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "graphsel"
LAYERS = ("data", "graph", "select", "engines", "transfer", "viz", "cli")
CORE = ("data", "graph", "select")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _layer(module: str) -> int:
    """0 for top-level plumbing (errors, registry, ...), else 1 + the index in LAYERS."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return 1 + LAYERS.index(parts[1])
    return 0


def _module_name(path: Path) -> str:
    return ".".join(("graphsel",) + path.relative_to(PACKAGE).with_suffix("").parts)


def test_every_layer_is_a_package():
    assert all((PACKAGE / name / "__init__.py").is_file() for name in LAYERS)


def test_layer_of_names():
    assert _layer("graphsel.errors") == 0
    assert _layer("graphsel.graph.expansion") == 2
    assert _layer("graphsel.select.expansion") == 3
    assert _layer("graphsel.engines.spark") == 4
    assert _layer("graphsel.transfer.models.ctnet") == 5


def test_layers_import_only_downward():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE) in (Path("__main__.py"), Path("__init__.py")):
            continue  # the entry points: ``python -m graphsel`` and the lazy public names
        own = _layer(_module_name(path))
        upward = sorted(n for n in _imports(path)
                        if n.startswith("graphsel.") and _layer(n) > own)
        if upward:
            offenders[_module_name(path)] = upward
    assert offenders == {}


def test_core_never_imports_the_outer_layers():
    core = [p for p in PACKAGE.rglob("*.py") if _layer(_module_name(p)) <= len(CORE)
            and p.name != "__main__.py"]
    assert len(core) > 10
    outer = tuple(f"graphsel.{name}" for name in LAYERS[len(CORE):])
    for path in core:
        assert not any(n.startswith(outer) for n in _imports(path)), path
