"""Parsers for loosely typed user values (a CLI flag, a form field, a JSON file).

The ground floor, beside :mod:`engine.errors`: each parser returns a clean value or raises
:class:`~engine.errors.SpecError` naming the field.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import SpecError

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|µs|ms|s|m|min)?\s*$")
_UNIT = {None: 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "m": 60.0, "min": 60.0}


def parse_duration(value: Any, field: str, *, default_unit: str = "s") -> float:
    """Seconds from ``"200ms"``, ``"1.5s"``, ``"500us"``, ``"2m"`` or a plain number.

    A plain number is in ``default_unit``. Negative, NaN and infinite values are refused.
    """
    if isinstance(value, bool):
        raise SpecError(field, f"expected a duration such as 200ms, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value) * _UNIT[default_unit]
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise SpecError(field, f"expected a duration such as 200ms or 1.5s, got {value!r}")
        number, unit = m.groups()
        seconds = float(number) * _UNIT[unit or default_unit]
    else:
        raise SpecError(field, f"expected a duration such as 200ms, got {type(value).__name__}")
    if math.isnan(seconds) or math.isinf(seconds):
        raise SpecError(field, f"must be a finite duration, got {value!r}")
    if seconds < 0:
        raise SpecError(field, f"must not be negative, got {value!r}")
    return seconds


def parse_int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise SpecError(field, f"expected a whole number, got {value!r}")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or value != int(value):
            raise SpecError(field, f"expected a whole number, got {value!r}")
        value = int(value)
    if isinstance(value, str):
        try:
            if not value.isascii():  # int() takes any Unicode digits ('١٢' is 12): refuse them
                raise ValueError(value)
            value = int(value.strip().replace("_", ""))
        except ValueError:
            raise SpecError(field, f"expected a whole number, got {value!r}") from None
    if not isinstance(value, int):
        raise SpecError(field, f"expected a whole number, got {type(value).__name__}")
    if value < lo:
        raise SpecError(field, f"must be at least {lo}, got {value}")
    if value > hi:
        raise SpecError(field, f"must be at most {hi:,}, got {value:,}")
    return value
