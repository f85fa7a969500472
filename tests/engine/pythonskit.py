"""Other interpreters in tests: pyenv's real ones, and environments prepared for them once per
test session by the real ``taskscope pythons add``.

Preparing one takes 8-20 s here (a virtual environment, pip installing psutil, NumPy and the
sub-interpreters backport), so the ``prepared_pythons`` fixture (tests/conftest.py) prepares
each version at most once per session, when a test first asks for it, in a cache folder of the
session's own; every later test that runs the engine on 3.12 or 3.13 reuses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.pythons.discovery import pyenv_root

TASKSCOPE = str(Path(sys.executable).with_name("taskscope"))
#: The longest one ``taskscope pythons add`` may take in a test (a loaded CI machine).
ADD_TIMEOUT_S = 300


def pyenv_python(minor: str) -> Path | None:
    """pyenv's newest ``minor`` (e.g. "3.13") interpreter, or None where pyenv has none."""
    root = pyenv_root()
    if root is None:
        return None
    found = []
    for d in (root / "versions").glob(f"{minor}.*"):
        exe = d / "bin" / f"python{minor}"
        rest = d.name[len(minor) + 1:]
        if rest.isdigit() and exe.exists():
            found.append((int(rest), exe))
    return max(found)[1] if found else None


def need_pyenv(minor: str) -> Path:
    exe = pyenv_python(minor)
    if exe is None:
        pytest.skip(f"pyenv has no Python {minor} here (pyenv root: {pyenv_root()})")
    return exe


def taskscope(*args: str, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess:
    """The real console script, as a user runs it."""
    e = dict(os.environ if env is None else env)
    e.pop("PYTHONWARNINGS", None)
    return subprocess.run([TASKSCOPE, *args], capture_output=True, text=True, timeout=timeout,
                          env=e, check=False, stdin=subprocess.DEVNULL)


@dataclass(frozen=True)
class Added:
    """One ``taskscope pythons add`` that succeeded."""

    interpreter: Path
    #: The prepared environment's python (the engine runs on it).
    python: Path
    output: str
    seconds: float


class PreparedPythons:
    """pyenv's 3.12 and 3.13 prepared in one cache folder, each once, on first request."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self._done: dict[str, Added] = {}

    def environ(self) -> dict[str, str]:
        """This process's environment with TaskScope's cache pointed at the session's."""
        return {**os.environ, "TASKSCOPE_CACHE_DIR": str(self.cache)}

    def get(self, minor: str) -> Added:
        if minor not in self._done:
            exe = need_pyenv(minor)
            t0 = time.monotonic()
            p = taskscope("pythons", "add", str(exe), env=self.environ(), timeout=ADD_TIMEOUT_S)
            secs = time.monotonic() - t0
            if p.returncode != 0:
                pytest.fail(f"taskscope pythons add {exe} failed ({p.returncode}): {p.stderr}")
            envs = sorted((self.cache / "pythons").glob(f"cpython-{exe.parent.parent.name}-*"))
            envs = [e for e in envs if e.is_dir()]
            assert len(envs) == 1, envs
            self._done[minor] = Added(exe, envs[0] / "bin" / "python", p.stdout, secs)
            print(f"taskscope pythons add {exe}: {secs:.1f} s")
        return self._done[minor]
