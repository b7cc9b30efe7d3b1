"""Small file helpers: atomic writes so that no partial output file is ever left behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphsel.errors import InputError

__all__ = ["atomic_path", "write_json", "check_output_file", "check_output_dir"]


def check_output_file(path: str | os.PathLike) -> Path:
    """Checks that ``path`` can be written as a file: not a directory, parent exists."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file path for the output")
    if not path.parent.exists():
        raise InputError(f"{path}: parent directory {path.parent} does not exist")
    return path


def check_output_dir(path: str | os.PathLike) -> Path:
    """Checks that ``path`` can hold output files: an existing directory or a new one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file, expected a directory for the output")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; renames it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it was, so a
    reader never sees a half-written file.
    """
    path = check_output_file(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Writes ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
