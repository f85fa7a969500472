"""Where the prepared environment of an interpreter lives in TaskScope's cache, and what its
marker says.

One environment per interpreter (by its real path), under ``<cache>/pythons/``, named so a
person can tell them apart: ``cpython-3.13.0-1a2b3c4d5e``, ``cpython-3.14.0t-…``. The marker
(:data:`~engine.build.MARKER`) is written last, after the environment was checked,
so an environment without one was never finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..build import MARKER
from ..cache import cache_root
from .probe import Probe


def envs_root() -> Path:
    return cache_root() / "pythons"


def env_dir(p: Probe) -> Path:
    """The environment folder for the interpreter ``p`` describes."""
    real = os.path.realpath(p.executable or p.path)
    digest = hashlib.sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    name = f"{p.implementation or 'python'}-{p.version}{'t' if p.free_threaded else ''}-{digest}"
    return envs_root() / name


def env_python(env: Path) -> Path:
    if sys.platform == "win32":
        return env / "Scripts" / "python.exe"
    return env / "bin" / "python"


def marker_path(env: Path) -> Path:
    return env / MARKER


def read_marker(env: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(marker_path(env).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None
