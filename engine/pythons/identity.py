"""Which interpreter this is: the ``python`` block that every run's JSON, trace and compare row
carries.

``{"executable", "version", "free_threaded", "gil_enabled"}``: ``free_threaded`` is the build
(``Py_GIL_DISABLED``), ``gil_enabled`` whether the GIL is on right now
(``sys._is_gil_enabled()``, 3.13+; null before, where a GIL build always has it on). Inside an
environment that ``taskscope pythons add`` prepared, ``executable`` is the interpreter it was
prepared for (the path a user picked, ``/…/versions/3.13.0/bin/python3.13``), not the
environment's own ``bin/python``: the environment only adds site-packages, and the block must
name the same interpreter that ``taskscope pythons`` lists.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import sysconfig
from functools import cache
from typing import Any

#: The file in a prepared environment's folder that says what it was prepared for.
MARKER = "taskscope-env.json"


def free_threaded_build() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool | None:
    f = getattr(sys, "_is_gil_enabled", None)
    return None if f is None else bool(f())


@cache
def _executable() -> str:
    try:
        with open(os.path.join(sys.prefix, MARKER), encoding="utf-8") as f:
            given = json.load(f).get("interpreter")
        if given:
            return str(given)
    except (OSError, ValueError, AttributeError):
        pass
    return sys.executable


def python_block() -> dict[str, Any]:
    """This interpreter's ``python`` block (``gil_enabled`` read now: it can change at run time,
    when an extension that does not support free threading is imported)."""
    return {
        "executable": _executable(),
        "version": platform.python_version(),
        "free_threaded": free_threaded_build(),
        "gil_enabled": gil_enabled(),
    }
