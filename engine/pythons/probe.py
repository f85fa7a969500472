"""Asking an interpreter what it is: run it for a moment and read one line of JSON back.

An interpreter is known only by running it: its version, whether it is a free-threaded build,
whether the GIL is on, and whether the engine and its dependencies import there. The probe is
one short ``python -c`` (written so that even Python 2 answers, so "too old" can be said
instead of "not a Python"), under a timeout, with the environment the engine process will
get (``PYTHONPATH`` included: what imports in the probe imports in the engine). Answers are
cached per executable and modification time, and per site-packages modification time, so
installing a package there is seen without a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

#: Longest a probe may take (an interpreter importing NumPy on a loaded 2-core machine takes
#: well under 2 s; one that takes 15 s is broken or hanging).
TIMEOUT_S = 15.0
_MARK = "TASKSCOPE-PROBE "
_SUB_MARK = "TASKSCOPE-PROBE-SUB "

#: Python 2.7-compatible on purpose. ``imports`` in argv asks for the import checks (3.11+).
PROBE_SCRIPT = r"""
import sys, json, os
d = {"executable": sys.executable, "version_info": list(sys.version_info[:3]),
     "implementation": getattr(getattr(sys, "implementation", None), "name", "cpython"),
     "prefix": sys.prefix, "base_prefix": getattr(sys, "base_prefix", sys.prefix)}
try:
    import sysconfig
    d["free_threaded"] = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    d["purelib"] = sysconfig.get_path("purelib")
except Exception:
    d["free_threaded"] = False
def gil():
    f = getattr(sys, "_is_gil_enabled", None)
    return None if f is None else bool(f())
d["gil_enabled"] = gil()
if "imports" in sys.argv[1:] and sys.version_info >= (3, 11):
    errors = {}
    for name in ("psutil", "numpy", "engine"):
        try:
            __import__(name)
        except BaseException as e:
            errors[name] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    d["import_errors"] = errors
    m = sys.modules.get("engine")
    f = getattr(m, "__file__", None) if m is not None else None
    d["engine_dir"] = os.path.dirname(os.path.realpath(f)) if f else None
    d["gil_after_imports"] = gil()
sys.stdout.write("\n" + "TASKSCOPE-PROBE " + json.dumps(d) + "\n")
sys.stdout.flush()
if "imports" in sys.argv[1:] and sys.version_info >= (3, 12):
    # Last and on a line of its own: a broken _interpreters module can crash the process.
    sub = None
    try:
        if sys.version_info >= (3, 14):
            from concurrent.futures import InterpreterPoolExecutor
            sub = "stdlib"
        else:
            from interpreters_backport.concurrent.futures import InterpreterPoolExecutor
            sub = "backport"
    except BaseException:
        pass
    sys.stdout.write("TASKSCOPE-PROBE-SUB " + json.dumps(sub) + "\n")
"""


@dataclass(frozen=True)
class Probe:
    """What one run of an interpreter said about itself (or why it could not say)."""

    path: str
    #: It ran and answered as a Python; otherwise ``error`` says why, in one line.
    ok: bool
    error: str = ""
    executable: str = ""
    version_info: tuple[int, int, int] = (0, 0, 0)
    implementation: str = ""
    prefix: str = ""
    base_prefix: str = ""
    purelib: str = ""
    free_threaded: bool = False
    #: ``sys._is_gil_enabled()`` at start-up; None where it does not exist (before 3.13).
    gil_enabled: bool | None = None
    #: Whether the import checks ran (3.11+ and asked for).
    checked_imports: bool = False
    #: module -> one-line error, for each of psutil, numpy, engine that failed to import.
    import_errors: dict[str, str] = field(default_factory=dict)
    engine_dir: str | None = None
    #: The GIL after importing the engine and its dependencies: an extension module that does
    #: not declare free-threading support switches it back on in a free-threaded build.
    gil_after_imports: bool | None = None
    #: Where InterpreterPoolExecutor comes from here: "stdlib", "backport" or None.
    subinterpreters: str | None = None
    #: Set when importing it crashed the interpreter (a broken _interpreters build).
    subinterpreters_error: str = ""

    @property
    def version(self) -> str:
        return ".".join(map(str, self.version_info))

    @property
    def engine_imports(self) -> bool:
        return self.ok and self.checked_imports and not self.import_errors

    @classmethod
    def from_answer(cls, path: str, d: dict[str, Any]) -> Probe:
        """A probe from the JSON an interpreter printed (or a fake one in a test)."""
        vi = tuple(int(x) for x in d.get("version_info", (0, 0, 0)))[:3]
        return cls(
            path=path, ok=True, executable=str(d.get("executable") or path),
            version_info=(vi + (0, 0, 0))[:3],  # type: ignore[arg-type]
            implementation=str(d.get("implementation", "")),
            prefix=str(d.get("prefix", "")), base_prefix=str(d.get("base_prefix", "")),
            purelib=str(d.get("purelib") or ""),
            free_threaded=bool(d.get("free_threaded")),
            gil_enabled=d.get("gil_enabled"),
            checked_imports="import_errors" in d,
            import_errors=dict(d.get("import_errors") or {}),
            engine_dir=d.get("engine_dir"),
            gil_after_imports=d.get("gil_after_imports"),
            subinterpreters=d.get("subinterpreters"),
            subinterpreters_error=str(d.get("subinterpreters_error") or ""),
        )


_lock = threading.Lock()
_cache: dict[tuple[str, bool], tuple[tuple, Probe]] = {}


def _stamp(path: str, purelib: str = "", extra: str = "") -> tuple:
    """What must be unchanged for a cached answer to stand."""
    out: list[Any] = []
    for p in (os.path.realpath(path), purelib, extra):
        try:
            st = os.stat(p) if p else None
        except OSError:
            st = None
        out.append((st.st_mtime_ns, st.st_size, st.st_ino) if st else None)
    return tuple(out)


def probe(path: str, imports: bool = True, timeout: float = TIMEOUT_S, extra_stamp: str = "",
          refresh: bool = False) -> Probe:
    """Run ``path`` once and describe it. Never raises: a failure is a Probe with ``ok=False``.

    ``extra_stamp`` names one more file whose change invalidates the cached answer (a prepared
    environment's marker)."""
    key = (os.path.abspath(path), imports)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and not refresh:
        stamp, p = hit
        if stamp == _stamp(path, p.purelib, extra_stamp):
            return p
    p = _run(path, imports, timeout)
    with _lock:
        _cache[key] = (_stamp(path, p.purelib, extra_stamp), p)
    return p


def _run(path: str, imports: bool, timeout: float) -> Probe:
    if not os.path.exists(path):
        return Probe(path, False, "no such file")
    if os.path.isdir(path):
        return Probe(path, False, "it is a folder, not a program")
    if not os.access(path, os.X_OK):
        return Probe(path, False, "it is not executable")
    args = [path, "-c", PROBE_SCRIPT] + (["imports"] if imports else [])
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)  # a test runner's "error" would turn numpy's warnings fatal
    try:
        cp = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                            stdin=subprocess.DEVNULL, check=False, errors="replace")
    except subprocess.TimeoutExpired:
        return Probe(path, False, f"it did not answer within {timeout:g} s")
    except OSError as e:
        return Probe(path, False, f"it does not run ({e.strerror or e})")
    answer: dict[str, Any] | None = None
    for line in cp.stdout.splitlines():
        try:
            if line.startswith(_MARK):
                answer = json.loads(line[len(_MARK):])
            elif line.startswith(_SUB_MARK) and answer is not None:
                answer["subinterpreters"] = json.loads(line[len(_SUB_MARK):])
        except (ValueError, TypeError):
            answer = None
            break
    if answer is not None:
        if imports and cp.returncode != 0 and "subinterpreters" not in answer:
            answer["subinterpreters_error"] = (
                f"importing InterpreterPoolExecutor ended the process (exit status {cp.returncode})")
        return Probe.from_answer(path, answer)
    lines = cp.stderr.strip().splitlines()
    if lines and lines[0].startswith("pyenv: "):  # a shim of a version pyenv has not selected
        return Probe(path, False, f"{lines[0].strip()} (a pyenv shim: give that version's own "
                                  "python, e.g. $(pyenv root)/versions/3.13.0/bin/python3.13)")
    last = (lines or [""])[-1].strip()
    # A Python that breaks says why on its last line (no module named 'encodings'); a program
    # that is not one may echo our script back: keep its last line only if short and not that.
    useful = last and len(last) <= 120 and "sys." not in last and _MARK not in last
    why = f"exit status {cp.returncode}" + (f": {last}" if useful else "")
    return Probe(path, False, f"it ran but did not answer as Python: {why}")
