"""Plain-text tables for summaries (used by the CLI, cards and reports), and the rounding of
floats in their JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["format_table", "round_floats"]


def round_floats(obj: Any, digits: int = 6) -> Any:
    """``obj`` with every float rounded to ``digits`` decimals, and to ``digits`` significant
    digits where that keeps more (a float below 1); ints, bools and strings unchanged.

    Walks mappings (into dicts), lists and tuples; numpy floats become Python floats. NaN and
    infinities stay as they are. Used on every JSON object a command writes, so that
    ``75.11000000000013`` reads ``75.11`` and ``1.234567891e-09`` ``1.23457e-09``.

    Args:
        obj: a JSON-like value (nested dicts, lists, tuples, numbers, strings, None).
        digits: decimals kept, and significant digits kept below 1 (default 6).

    >>> round_floats({"max_degree": 75.11000000000013, "rows": 3, "auc": [0.81234567, 2e-10]})
    {'max_degree': 75.11, 'rows': 3, 'auc': [0.812346, 2e-10]}
    >>> round_floats((1234567.123456789, True, np.float32(0.1), None))
    (1234567.123457, True, 0.1, None)
    """
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if value == 0.0 or not math.isfinite(value):
            return value
        magnitude = math.floor(math.log10(abs(value)))
        return round(value, max(digits, digits - 1 - magnitude))
    if isinstance(obj, Mapping):
        return {key: round_floats(value, digits) for key, value in obj.items()}
    if isinstance(obj, list):
        return [round_floats(value, digits) for value in obj]
    if isinstance(obj, tuple):
        return tuple(round_floats(value, digits) for value in obj)
    return obj


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain-text table: left-aligned text, right-aligned numbers (counts with thousands
    separators, floats with 4 decimals); an empty cell (``""``) leaves a column numeric.

    >>> print(format_table(["domain", "rows", "users"], [["source", 1200, ""], ["target", 35, 7]]))
    domain   rows  users
    ------  -----  -----
    source  1,200
    target     35      7
    """
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [any(_is_number(row[i]) for row in rows)
               and all(_is_number(row[i]) or _is_blank(row[i]) for row in rows)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
