"""Where TaskScope keeps what it can make again: calibrations, prepared interpreter environments.

One root for all of it, so that ``TASKSCOPE_CACHE_DIR`` moves everything at once (CI and the
tests point it at a temporary folder); otherwise the platform's user cache folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_root() -> Path:
    """TaskScope's cache folder (not created here)."""
    base = os.environ.get("TASKSCOPE_CACHE_DIR")
    if base:
        return Path(base)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "taskscope"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "taskscope"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "taskscope"
