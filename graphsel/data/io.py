"""Small file helpers: the input/output path guard, and atomic writes that never leave a
partial output file behind.

Every command calls :func:`check_paths` up front, before any work, with all of its input
paths and all of its output paths: an output that is an input, or that would write into an
input (a file inside a Parquet directory that is read as a log, or a folder that is an input
folder), is refused with one line naming both options and both paths.

Atomic writes (:func:`atomic_path`) write to a hidden temporary file next to the output,
``.<name>.<pid>.<random>.tmp``, and rename it onto the output when the write succeeded. On
any exception, ``KeyboardInterrupt`` (Ctrl-C) and SIGTERM included (the command line turns
SIGTERM into an exception), the temporary file is removed. Only a process killed outright
(``kill -9``) can leave one behind; the next write of the same output removes the leftovers
whose writing process is gone (the pid in the name says which), and log readers skip hidden
files, so such a leftover is never read as data.

Several outputs written as one unit (:func:`atomic_outputs`: ``graphsel select``'s selected
rows, ``--report`` and ``--plots`` folder) are each written into a hidden staging folder
next to them, ``.<name>.<pid>.<random>.tmp/``, and moved into place together at the end,
with Ctrl-C and SIGTERM held back for the few renames: an interrupted command leaves all of
them or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from graphsel.errors import InputError

__all__ = [
    "read_yaml",
    "OutputFolder",
    "OutputSet",
    "atomic_outputs",
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "check_paths",
    "remove_stale_temporaries",
    "write_json",
]

PathArg: TypeAlias = str | os.PathLike
"""A path as commands receive it: text or a :class:`~pathlib.Path`."""


def check_output_file(path: PathArg) -> Path:
    """Checks that ``path`` can be written as a file: not a directory, parent exists."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file path for the output")
    if not path.parent.exists():
        raise InputError(f"{path}: parent directory {path.parent} does not exist")
    return path


def check_output_dir(path: PathArg) -> Path:
    """Checks that ``path`` can hold output files: an existing directory or a new one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file, expected a directory for the output")
    return path


# --------------------------------------------------------------------------------------------
# The path guard
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFolder:
    """An output folder and the names of the files a command writes (or removes) in it.

    Attributes:
        path: the folder.
        writes: the file names written or removed inside ``path``; ``None`` (default) means
            "any file", so the folder may then hold no input at all.
    """

    path: PathArg
    writes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Place:
    option: str
    given: str
    resolved: Path

    def describe(self) -> str:
        same = "" if self.given == str(self.resolved) else f" ({self.resolved})"
        return f"{self.option} {self.given}{same}"


def _places(paths: Mapping[str, PathArg | Iterable[PathArg] | None]) -> list[_Place]:
    places = []
    for option, value in paths.items():
        if value is None:
            continue
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for one in values:
            places.append(_Place(option, os.fspath(one), _resolve(one)))
    return places


def _resolve(path: PathArg) -> Path:
    """``path`` made absolute with every symlink, ``.`` and ``..`` resolved."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _same(a: Path, b: Path) -> bool:
    """The same file or folder: equal resolved paths, or one inode (hard links, case folds)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _within(inner: Path, outer: Path) -> bool:
    """``inner`` is ``outer`` or lies somewhere below it."""
    return _same(inner, outer) or any(_same(parent, outer) for parent in inner.parents
                                      if len(parent.parts) >= len(outer.parts))


def check_paths(
    inputs: Mapping[str, PathArg | Iterable[PathArg] | None],
    files: Mapping[str, PathArg | None] | None = None,
    folders: Mapping[str, PathArg | OutputFolder | None] | None = None,
    logs: Mapping[str, PathArg | None] | None = None,
) -> None:
    """Refuses any output that is, or would overwrite or write into, an input.

    Call it first thing in a command, with every path it reads and writes, keyed by the
    option (or argument) that gave it; ``None`` values (options not given) are skipped. Paths
    are compared resolved (absolute, symlinks followed, ``./x`` and ``x`` alike, hard links
    by inode), so no spelling slips through.

    Refused, for an output file (``files`` and ``logs``): being an input file, lying inside
    an input folder (a Parquet directory read as one log: the new file would become part of
    it), being a folder, or having no parent folder. For an output folder: being an input or
    lying inside an input folder, being a file, or, among the files it writes, one that is
    an input or holds one (with ``writes=None``, holding any input at all). Two outputs that
    are the same file are refused too. ``logs`` are output files written with
    :func:`graphsel.data.log.write_log`, whose extension must name a format.

    Args:
        inputs: ``{option: path or paths}`` of everything read (files or folders).
        files: ``{option: path}`` of output files (JSON, PNG, Parquet...). Default: none.
        folders: ``{option: path or OutputFolder}`` of output folders. Default: none.
        logs: ``{option: path}`` of output logs (Parquet or CSV by extension). Default: none.

    Raises:
        InputError: one line naming the output's option and path and the input's.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> source = folder / "s.parquet"
    >>> _ = source.write_bytes(b"PAR1")
    >>> check_paths({"--source": source}, files={"--card": folder / "card.json"})
    >>> try:
    ...     check_paths({"--source": str(source)}, files={"--card": f"{folder}/./s.parquet"})
    ... except InputError as exc:
    ...     print(str(exc).replace(str(folder), "D").split(":")[0])
    --card D/./s.parquet (D/s.parquet) is the input --source D/s.parquet
    """
    from graphsel.data.log import log_format  # the log module imports this one

    read = _places(inputs)
    out_files = _places(files or {}) + _places(logs or {})
    for place in _places(logs or {}):
        log_format(place.given)
    for place in out_files:
        check_output_file(place.given)
        for source in read:
            if _same(place.resolved, source.resolved):
                raise _clash(place, "is the input", source, "writing it would destroy the "
                             "input; choose another path")
            if source.resolved.is_dir() and _within(place.resolved, source.resolved):
                raise _clash(place, "lies inside the input folder", source,
                             "the new file would change that input; choose another path")
    out_folders = []
    for option, value in (folders or {}).items():
        if value is None:
            continue
        folder = value if isinstance(value, OutputFolder) else OutputFolder(value)
        check_output_dir(folder.path)
        out_folders.append((_Place(option, os.fspath(folder.path), _resolve(folder.path)),
                            folder.writes))
    for place, writes in out_folders:
        for source in read:
            if _within(place.resolved, source.resolved):
                relation = ("is the input" if _same(place.resolved, source.resolved)
                            else "lies inside the input")
                raise _clash(place, relation, source,
                             "writing there would change that input; choose another folder")
            if writes is None:
                if _within(source.resolved, place.resolved):
                    raise _clash(place, "holds the input", source,
                                 "write the output to another folder")
                continue
            for name in writes:
                written = place.resolved / name
                if _within(source.resolved, written):
                    raise _clash(place, f"would overwrite {name}, which is (or holds) the "
                                 f"input", source, "write the output to another folder")
    outputs = out_files + [place for place, _ in out_folders]
    for i, first in enumerate(outputs):
        for second in outputs[i + 1:]:
            if _same(first.resolved, second.resolved):
                raise _clash(second, "is the same path as", first,
                             "give each output its own path")


def _clash(output: _Place, relation: str, other: _Place, advice: str) -> InputError:
    return InputError(f"{output.describe()} {relation} {other.describe()}: {advice}")


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


_STALE_UNTAGGED_S = 24 * 3600
"""Temporary files from before the pid was in their name are removed after a day."""


@contextlib.contextmanager
def atomic_path(path: PathArg) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; renames it onto ``path`` on success.

    On any exception (``KeyboardInterrupt`` included) the temporary file is removed and
    ``path`` is left as it was, so a reader never sees a half-written file. Leftover
    temporary files of ``path`` from killed processes are removed first
    (:func:`remove_stale_temporaries`).
    """
    path = check_output_file(path)
    remove_stale_temporaries(path)
    tmp_path: Path | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
        tmp_path = Path(tmp)
        os.close(fd)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: PathArg) -> list[Path]:
    """Removes the temporary files (and staging folders) that killed writers of ``path``
    left next to it.

    A temporary file of :func:`atomic_path`, or a staging folder of :func:`atomic_outputs`,
    is named ``.<name>.<pid>.<random>.tmp``; it is
    stale when no process with that pid runs on this machine (an untagged
    ``.<name>.<random>.tmp`` of an older version: when older than a day). Files of a live
    writer are kept.

    Returns:
        The files removed.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp$")
    removed: list[Path] = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        match = pattern.match(sibling.name)
        if match is None:
            continue
        pid = match.group(1)
        if pid is not None and (int(pid) == os.getpid() or _alive(int(pid))):
            continue
        try:
            if pid is None and time.time() - sibling.stat().st_mtime < _STALE_UNTAGGED_S:
                continue
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling)  # a staging folder of atomic_outputs
            else:
                sibling.unlink()
            removed.append(sibling)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputSet:
    """The outputs of one :func:`atomic_outputs` block: where to write each, for now.

    :meth:`file` and :meth:`folder` give the path to write to instead of the output's own:
    inside a hidden staging folder next to the output, under the output's own name (so a
    writer that picks the format by extension still sees ``.parquet`` or ``.csv``).
    """

    def __init__(self) -> None:
        # (staging folder, final path, whether the output is a file)
        self._staged: list[tuple[Path, Path, bool]] = []

    def _stage(self, path: Path, is_file: bool) -> Path:
        remove_stale_temporaries(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                        dir=path.parent))
        self._staged.append((staging, path, is_file))
        return staging

    def file(self, path: PathArg) -> Path:
        """Where to write the output file ``path`` (checked like :func:`atomic_path`)."""
        path = check_output_file(path)
        return self._stage(path, is_file=True) / path.name

    def folder(self, path: PathArg) -> Path:
        """An empty folder to fill in place of the output folder ``path`` (which may exist:
        its other files are kept, files of the same name replaced)."""
        path = check_output_dir(path)
        if not path.parent.exists():
            raise InputError(f"{path}: parent directory {path.parent} does not exist")
        return self._stage(path, is_file=False)

    def _commit(self) -> None:
        for staging, path, is_file in self._staged:
            if is_file:
                os.replace(staging / path.name, path)
            elif not path.exists():
                os.rename(staging, path)  # a new folder, in one step
                continue
            else:
                for entry in sorted(os.listdir(staging)):
                    os.replace(staging / entry, path / entry)
            staging.rmdir()
        self._staged.clear()

    def _discard(self) -> None:
        for staging, _, _ in self._staged:
            shutil.rmtree(staging, ignore_errors=True)
        self._staged.clear()


@contextlib.contextmanager
def atomic_outputs() -> Iterator[OutputSet]:
    """Writes several outputs as one unit: all of them when the block succeeds, none if not.

    Usage::

        with atomic_outputs() as outputs:
            write_log(table, outputs.file("selected.parquet"))
            save_plots(..., outputs.folder("plots"))
            write_json(report, outputs.file("report.json"))

    Each output is written into its staging folder (see :class:`OutputSet`); when the block
    ends without an exception they are moved into place one after another with SIGINT and
    SIGTERM blocked (a signal that arrives meanwhile is delivered after the last rename), so
    Ctrl-C leaves either every output or none. On any exception the staging folders are
    removed. Only ``kill -9`` can leave one behind; the next write of that output removes it.
    """
    outputs = OutputSet()
    try:
        yield outputs
    except BaseException:
        outputs._discard()
        raise
    with _signals_held():
        try:
            outputs._commit()
        except BaseException:
            outputs._discard()
            raise


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Blocks SIGINT and SIGTERM in this thread for the block (where the platform can)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # not POSIX
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def write_json(obj: Any, path: PathArg) -> None:
    """Writes ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_yaml(path: PathArg) -> Any:
    """The parsed YAML of a config file; never None.

    An empty file (or one with comments only) is refused rather than read as "every
    default": it is far more often a mistake (a wrong file, a failed copy) than a wish; a file
    that means the defaults says so with ``{}``.

    Raises:
        InputError: an unreadable or empty file, or a YAML syntax error, in one line naming
            the file and, for a syntax error, its line and column.
    """
    import yaml  # only commands that read a config pay for it

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{path}: cannot read the config ({reason})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        raise InputError(f"{path}: not valid YAML{where} ({problem})") from None
    if raw is None:
        raise InputError(f"{path}: the config is empty; write {{}} to mean every default")
    return raw
