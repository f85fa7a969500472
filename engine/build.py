"""Which interpreter the engine runs on: one description that every judgement of it reads.

The free-threaded model's availability, the GIL probe's "no GIL" and the ``python`` block that
every run, trace and compare row carries all depend on the same three facts: the version,
whether this is a free-threaded build (``Py_GIL_DISABLED``), and whether the GIL is on right
now (``sys._is_gil_enabled()``, 3.13+; it comes back on when an extension that does not
declare free-threading support is imported). They are read here, through :func:`current`,
and nowhere else, so a test can hand every judge the description of an interpreter this
machine cannot have (a 3.14t with the GIL off) by replacing :func:`current`.

``python`` block: ``{"executable", "version", "free_threaded", "gil_enabled"}``. Inside an
environment that ``taskscope pythons add`` prepared, ``executable`` is the interpreter it was
prepared for (the path a user picked, ``/…/versions/3.13.0/bin/python3.13``), not the
environment's own ``bin/python``: the environment only adds site-packages, and the block must
name the interpreter that ``taskscope pythons`` lists.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import sysconfig
from dataclasses import dataclass
from functools import cache
from typing import Any

#: The file in a prepared environment's folder that says what it was prepared for.
MARKER = "taskscope-env.json"


@dataclass(frozen=True)
class Build:
    """What an interpreter is, as far as the engine's judgements go."""

    executable: str
    version: str
    #: A free-threaded build (``Py_GIL_DISABLED``): python3.13t, 3.14t...
    free_threaded: bool
    #: The GIL is on now; None where the interpreter cannot say (before 3.13, where a GIL
    #: build always has it on).
    gil_enabled: bool | None

    @property
    def gil_off(self) -> bool:
        """Threads run Python at the same time: a free-threaded build with its GIL off."""
        return self.free_threaded and self.gil_enabled is False

    def block(self) -> dict[str, Any]:
        """The ``python`` block (see the module docstring)."""
        return {"executable": self.executable, "version": self.version,
                "free_threaded": self.free_threaded, "gil_enabled": self.gil_enabled}


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


def current() -> Build:
    """This interpreter, read now (``gil_enabled`` can change while the engine runs)."""
    f = getattr(sys, "_is_gil_enabled", None)
    return Build(_executable(), platform.python_version(),
                 bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                 None if f is None else bool(f()))


def python_block() -> dict[str, Any]:
    """This interpreter's ``python`` block, read now."""
    return current().block()


def python_label(block: dict[str, Any] | None) -> str:
    """A python block in a few characters, for tables: ``3.13.0``, ``3.14.0t`` (free-threaded),
    ``3.14.0t (GIL on)``; ``?`` when there is none."""
    if not block:
        return "?"
    label = str(block.get("version") or "?")
    if block.get("free_threaded"):
        label += "t" + (" (GIL on)" if block.get("gil_enabled") else "")
    return label
