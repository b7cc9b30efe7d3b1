"""Checks shared by the dataset readers: option ``path`` must name an existing folder."""

from __future__ import annotations

import os
from pathlib import Path

from graphsel.errors import InputError

__all__ = ["data_folder", "data_file"]


def data_folder(dataset: str, path: str | os.PathLike | None, example: str) -> Path:
    """The folder given as option ``path`` of ``dataset``.

    Raises:
        InputError: if ``path`` is missing, does not exist, or is a file.
    """
    if path is None:
        raise InputError(f"dataset {dataset!r} needs option 'path' (the folder, e.g. {example})")
    folder = Path(path)
    if not folder.exists():
        raise InputError(f"{folder}: no such directory (option 'path' of {dataset!r})")
    if not folder.is_dir():
        raise InputError(f"{folder}: is a file, expected the {dataset!r} folder (e.g. {example})")
    return folder


def data_file(folder: Path, name: str) -> Path:
    """``folder / name``, which must be a file.

    Raises:
        InputError: naming the missing file.
    """
    path = folder / name
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected in the dataset folder {folder})")
    return path
