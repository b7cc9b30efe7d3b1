"""Errors that graphsel raises for bad input.

Every problem with a user's file, column, value or option is an :class:`InputError` with a
one-line message naming the file, the column and an example bad value. The command line turns
it into ``error: <message>`` on stderr and exit code 2; anything else is a bug (exit code 1).
"""

from __future__ import annotations

__all__ = ["InputError", "choice_error"]


class InputError(ValueError):
    """Bad input: a file, column, value or option that graphsel cannot use.

    The message is always a single line, so it reads well on a terminal and in a log.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def choice_error(what: str, value: object, choices: list[str] | tuple[str, ...]) -> InputError:
    """An :class:`InputError` for a value that is not one of ``choices``.

    >>> str(choice_error("index", "hnsw32", ["flat", "hnsw", "ivf", "lsh"]))
    "Could not resolve index 'hnsw32' among ['flat', 'hnsw', 'ivf', 'lsh']"
    """
    return InputError(f"Could not resolve {what} {value!r} among {sorted(choices)!r}")
