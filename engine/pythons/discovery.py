"""Finding the interpreters on this machine and saying, for each, whether it can run the engine.

Where it looks, in this order (the first path to a real executable wins; the others are the
same interpreter under another name):

* the current interpreter (``sys.executable``);
* ``PATH``: ``python3.X``, ``python3.Xt`` and ``python3`` in each folder. Version-manager shims
  (a folder named ``shims``: pyenv, asdf, mise) are skipped: they are scripts that pick an
  interpreter by the current folder's settings, and pyenv's own versions are listed directly;
* pyenv's versions: ``$PYENV_ROOT`` (else ``~/.pyenv``, else what ``pyenv root`` says), each
  ``versions/*/bin/python3*``.

Every interpreter but the current one is run once (:mod:`.probe`, in parallel). It can run the
engine when the engine and its dependencies import there as it is (the current interpreter, or
one where TaskScope is installed), or in the environment ``taskscope pythons add`` prepared
for it. Otherwise the answer is one line of why and one of what to do. The judgement
(:func:`assess`) is a pure function of the probes, so a free-threaded 3.14t that this machine
cannot have is tested from a description of one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..build import current as current_build
from .envs import env_dir, env_python, marker_path, read_marker
from .probe import Probe, probe

MIN_VERSION = (3, 11)
_NAME = re.compile(r"^python3(\.\d+t?)?(\.exe)?$")


@cache
def engine_dir() -> str:
    """The real folder of the engine package this process runs."""
    return str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class Interpreter:
    """One interpreter, as ``taskscope pythons`` shows it."""

    path: str
    #: Where it was found: "current", "PATH", "pyenv" or "given".
    source: str
    version: str
    free_threaded: bool
    #: ``sys._is_gil_enabled()`` at start-up; None before 3.13.
    gil_enabled: bool | None
    ready: bool
    #: Why it cannot run the engine now, and what to do: one line each ("" when ready).
    reason: str = ""
    fix: str = ""
    #: The executable to start the engine process with (itself, or its prepared environment's).
    engine_python: str | None = None
    #: The prepared environment's folder, if it has one.
    env: str | None = None
    #: Where InterpreterPoolExecutor comes from for the engine here: "stdlib", "backport", None.
    subinterpreters: str | None = None
    #: The GIL stays off with the engine imported: the free-threaded model can run here.
    free_threaded_model: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def build(self) -> str:
        if not self.version:
            return "?"
        if not self.free_threaded:
            return "GIL"
        return "free-threaded" + {True: " (GIL on)", False: "", None: ""}[self.gil_enabled]

    def python_block(self) -> dict[str, Any]:
        """The ``python`` block a run on this interpreter carries (see :mod:`engine.build`)."""
        return {"executable": self.path, "version": self.version,
                "free_threaded": self.free_threaded, "gil_enabled": self.gil_enabled}

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["build"] = self.build
        return d


def _add_fix(path: str, what: str = "") -> str:
    return f"run: taskscope pythons add {shlex.quote(path)}" + (f" ({what})" if what else "")


def _imports_note(p: Probe) -> str:
    first = next(iter(p.import_errors.items()))
    return f"{first[0]}: {first[1]}"


def assess(base: Probe, source: str = "given", env: Path | None = None,
           env_probe: Probe | None = None) -> Interpreter:
    """Whether the interpreter ``base`` describes can run this engine now, and if not why not.

    ``env_probe`` describes its prepared environment's python (``env``), when there is one."""
    path = base.path
    if not base.ok:
        return Interpreter(path, source, "", False, None, False,
                           reason=f"not a Python: {base.error}",
                           fix="give the path of a Python 3.11+ executable")
    common = {"path": path, "source": source, "version": base.version,
              "free_threaded": base.free_threaded, "gil_enabled": base.gil_enabled}
    if base.version_info < MIN_VERSION:
        return Interpreter(**common, ready=False,
                           reason=f"Python {base.version} is older than 3.11, which the engine needs",
                           fix="use Python 3.11 or later (e.g. pyenv install 3.13)")
    env_s = str(env) if env is not None and env_probe is not None else None
    runner: Probe | None = None
    if base.engine_imports and base.engine_dir == engine_dir():
        runner = base
    elif env_probe is not None:
        if not env_probe.ok or not env_probe.engine_imports:
            why = env_probe.error if not env_probe.ok else _imports_note(env_probe)
            return Interpreter(**common, ready=False, env=env_s,
                               reason=f"its TaskScope environment is broken ({why})",
                               fix=_add_fix(path, "repairs it"))
        if env_probe.engine_dir != engine_dir():
            return Interpreter(**common, ready=False, env=env_s,
                               reason=f"its environment runs the engine in {env_probe.engine_dir}, "
                                      f"not this TaskScope's ({engine_dir()})",
                               fix=_add_fix(path, "points it here"))
        runner = env_probe
    if runner is None:
        return Interpreter(**common, ready=False,
                           reason="no TaskScope environment for it yet "
                                  "(the engine needs psutil and numpy there)",
                           fix=_add_fix(path))
    notes: list[str] = []
    ft_model = base.free_threaded and runner.gil_after_imports is False
    if base.free_threaded and runner.gil_after_imports:
        notes.append("the GIL comes back on when the engine's dependencies are imported "
                     "(an extension without free-threading support): no free-threaded model")
    if runner.subinterpreters is None and base.version_info >= (3, 12):
        if runner.subinterpreters_error:
            why = runner.subinterpreters_error
        elif base.version_info[:2] == (3, 12):
            why = ("the interpreters-pep-734 backport needs the _interpreters C module on 3.12 "
                   "(package interpreters-3-12, built from source)")
        elif base.version_info[:2] == (3, 13):
            why = f"the interpreters-pep-734 backport is not installed ({_add_fix(path)} installs it)"
        else:
            why = "concurrent.futures.InterpreterPoolExecutor is missing"
        notes.append(f"no sub-interpreters: {why}")
    return Interpreter(**common, ready=True, engine_python=runner.path, env=env_s,
                       subinterpreters=runner.subinterpreters, free_threaded_model=ft_model,
                       notes=tuple(notes))


def current_probe() -> Probe:
    """The current interpreter, described from inside (no subprocess)."""
    import importlib.util
    import sysconfig

    errors: dict[str, str] = {}
    for name in ("psutil", "numpy"):
        try:
            __import__(name)
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"
    b = current_build()
    sub = None
    if sys.version_info >= (3, 14):
        import concurrent.futures as cf

        sub = "stdlib" if hasattr(cf, "InterpreterPoolExecutor") else None
    elif sys.version_info >= (3, 12) and importlib.util.find_spec("interpreters_backport"):
        sub = "backport"
    return Probe(
        path=sys.executable, ok=True, executable=sys.executable,
        version_info=tuple(sys.version_info[:3]),  # type: ignore[arg-type]
        implementation=sys.implementation.name, prefix=sys.prefix, base_prefix=sys.base_prefix,
        purelib=sysconfig.get_path("purelib"), free_threaded=b.free_threaded,
        gil_enabled=b.gil_enabled, checked_imports=True, import_errors=errors,
        engine_dir=engine_dir(), gil_after_imports=b.gil_enabled, subinterpreters=sub,
    )


def describe(path: str, source: str = "given", refresh: bool = False) -> Interpreter:
    """Probe one interpreter (and its prepared environment, if any) and assess it."""
    if source == "current":
        return assess(current_probe(), source)
    base = probe(path, refresh=refresh)
    env = env_probe = None
    if base.ok and base.version_info >= MIN_VERSION:
        env = env_dir(base)
        if read_marker(env) is not None and not (base.engine_imports
                                                 and base.engine_dir == engine_dir()):
            env_probe = probe(str(env_python(env)), extra_stamp=str(marker_path(env)),
                              refresh=refresh)
    return assess(base, source, env, env_probe)


def pyenv_root() -> Path | None:
    """pyenv's root as pyenv itself finds it: ``$PYENV_ROOT``, else ``~/.pyenv``, else
    ``pyenv root`` (a pyenv installed elsewhere, by a package manager)."""
    env = os.environ.get("PYENV_ROOT")
    if env:
        return Path(env)
    home = Path.home() / ".pyenv"
    if home.is_dir():
        return home
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=5,
                                 check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        return Path(out) if out else None
    return None


def _version_key(name: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.\-t]", name)[:3])


def _executables(folder: Path) -> list[Path]:
    try:
        names = [e.name for e in os.scandir(folder) if _NAME.match(e.name)]
    except OSError:
        return []
    names.sort(key=lambda n: (n.startswith("python3.") is False, n))  # python3.X before python3
    return [folder / n for n in names if os.access(folder / n, os.X_OK)
            and not (folder / n).is_dir()]


def candidates(path_env: str | None = None, pyenv: Path | None = None) -> list[tuple[str, str]]:
    """(path, source) of every interpreter found, the current one first, de-duplicated by
    real path."""
    found: list[tuple[str, str]] = [(sys.executable, "current")]
    for folder in (path_env if path_env is not None else os.environ.get("PATH", "")).split(
            os.pathsep):
        if folder and Path(folder).name != "shims":
            found += [(str(p), "PATH") for p in _executables(Path(folder))]
    root = pyenv if pyenv is not None else pyenv_root()
    if root is not None:
        try:
            versions = sorted((d for d in (root / "versions").iterdir() if d.is_dir()),
                              key=lambda d: _version_key(d.name))
        except OSError:
            versions = []
        for v in versions:
            found += [(str(p), "pyenv") for p in _executables(v / "bin")]
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for path, source in found:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append((path, source))
    return out


def discover(path_env: str | None = None, pyenv: Path | None = None,
             refresh: bool = False) -> list[Interpreter]:
    """Every interpreter found (see the module's docstring), probed in parallel."""
    found = candidates(path_env, pyenv)
    with ThreadPoolExecutor(max_workers=min(8, len(found)),
                            thread_name_prefix="taskscope-pythons") as pool:
        return list(pool.map(lambda c: describe(c[0], c[1], refresh), found))


def find(interpreters: Iterable[Interpreter], path: str) -> Interpreter | None:
    """The entry for ``path`` (any name of the same executable)."""
    real = os.path.realpath(path)
    for i in interpreters:
        if os.path.realpath(i.path) == real:
            return i
    return None


class NotPrepared(Exception):
    """The interpreter cannot run the engine yet: why, and the fix, in one line."""


def engine_python(path: str) -> str:
    """The executable to start an engine process with, to run the engine on the interpreter at
    ``path``: ``sys.executable`` for this interpreter, else the python of the environment that
    ``taskscope pythons add`` prepared for it, running this very engine. Quick: one short run
    of the interpreter (no import checks; ``pythons add`` made them).

    Raises :class:`NotPrepared` with one line: not a Python, too old, not prepared (the fix
    names ``taskscope pythons add PATH``), or prepared for another TaskScope."""
    exe = os.path.expanduser(path)
    if os.sep not in exe and not os.path.exists(exe):
        exe = shutil.which(exe) or exe  # a name on PATH: python3.13
    if os.path.abspath(exe) == os.path.abspath(sys.executable):
        return sys.executable
    base = probe(exe, imports=False)
    if not base.ok:
        raise NotPrepared(f"{path}: not a Python: {base.error}")
    if base.version_info < MIN_VERSION:
        raise NotPrepared(f"{path}: Python {base.version} is older than 3.11, which the "
                          "engine needs")
    if (os.path.realpath(base.executable) == os.path.realpath(sys.executable)
            and base.prefix == sys.prefix):
        return sys.executable
    env = env_dir(base)
    marker = read_marker(env)
    if marker is None or not env_python(env).exists():
        raise NotPrepared(f"{path}: Python {base.version} has no TaskScope environment yet; "
                          f"{_add_fix(path)}")
    if marker.get("engine") != engine_dir():
        raise NotPrepared(f"{path}: its environment runs the engine in {marker.get('engine')}, "
                          f"not this TaskScope's; {_add_fix(path, 'points it here')}")
    return str(env_python(env))


def prepared() -> list[Interpreter]:
    """The interpreters ``taskscope pythons add`` prepared for this engine, from their
    environments' markers alone: quick (no interpreter is run), for a list shown at once. A
    marker can be stale (the interpreter removed since): the engine process that starts on it
    says so then, in one line."""
    from .envs import envs_root

    out: list[Interpreter] = []
    try:
        folders = sorted(p for p in envs_root().iterdir() if p.is_dir())
    except OSError:
        return out
    for env in folders:
        m = read_marker(env)
        py = env_python(env)
        if m is None or not py.exists() or not m.get("interpreter"):
            continue
        path = str(m["interpreter"])
        common = {"path": path, "source": "prepared", "version": str(m.get("version", "")),
                  "free_threaded": bool(m.get("free_threaded")), "gil_enabled": None,
                  "env": str(env)}
        if m.get("engine") != engine_dir():
            out.append(Interpreter(**common, ready=False,
                                   reason=f"its environment runs the engine in {m.get('engine')}",
                                   fix=_add_fix(path, "points it here")))
            continue
        out.append(Interpreter(**common, ready=True, engine_python=str(py),
                               subinterpreters=m.get("subinterpreters"),
                               free_threaded_model=bool(m.get("free_threaded"))))
    return out
