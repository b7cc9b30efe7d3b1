"""Errors that graphsel raises for bad input, and the parameter checks that raise them.

Every problem with a user's file, column, value or option is an :class:`InputError` with a
one-line message naming the file, the column and an example bad value. The command line turns
it into ``error: <message>`` on stderr and exit code 2; anything else is a bug (exit code 1).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["InputError", "check_choice", "check_integer", "check_real", "choice_error"]


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


def check_choice(what: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else an :class:`InputError` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise choice_error(what, value, choices)
    return value


def check_integer(name: str, value: object, low: int, high: float = math.inf) -> int:
    """``value`` as an ``int`` in ``[low, high]``, else an :class:`InputError`.

    >>> check_integer("num_hops", 2, 0), check_integer("k", 3, 1, 3)
    (2, 3)
    >>> check_integer("num_hops", True, 0)
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: num_hops must be an integer >= 0, got True
    """
    if isinstance(value, Integral) and not isinstance(value, bool) and low <= int(value) <= high:
        return int(value)
    bound = f" and <= {high}" if high != math.inf else ""
    raise InputError(f"{name} must be an integer >= {low}{bound}, got {value!r}")


def check_real(
    name: str, value: object, low: float, high: float, *, low_open: bool = False
) -> float:
    """``value`` as a ``float`` in ``[low, high]`` (``(low, high]`` if ``low_open``).

    >>> check_real("quantile", 1, 0.0, 1.0)
    1.0
    >>> check_real("quantile", 0, 0.0, 1.0, low_open=True)
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: quantile must be a number in (0.0, 1.0], got 0
    """
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else math.nan
    if (math.isfinite(number) and (low < number if low_open else low <= number)
            and number <= high):
        return number
    interval = f"{'(' if low_open else '['}{low}, {high}]"
    raise InputError(f"{name} must be a number in {interval}, got {value!r}")
