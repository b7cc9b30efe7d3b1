"""The layout of DESIGN.md: the core never imports graphsel.transfer or graphsel.cli."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "graphsel"
OUTER = ("graphsel.transfer", "graphsel.cli")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _core_files() -> list[Path]:
    """Every module but transfer/, cli/ and __main__.py (``python -m graphsel`` runs the CLI)."""
    return [p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"
            and not any(part in ("transfer", "cli") for part in p.relative_to(PACKAGE).parts)]


def test_there_is_a_core():
    names = {p.name for p in _core_files()}
    assert {"log.py", "graph.py", "expand.py", "selector.py"} <= names


def test_core_never_imports_transfer_or_cli():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if n.startswith(OUTER))
        for path in _core_files()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_transfer_never_imports_cli():
    for path in (PACKAGE / "transfer").rglob("*.py"):
        assert not any(n.startswith("graphsel.cli") for n in _imports(path)), path
