"""Preparing an interpreter to run the engine: ``taskscope pythons add PATH``.

It makes a virtual environment for that interpreter in TaskScope's cache (:mod:`.envs`),
installs the engine's runtime dependencies there with pip (:mod:`.requirements`: psutil, NumPy,
the sub-interpreters backport on 3.12/3.13, extras on request), and makes *this* engine
importable there without Qt: a ``.pth`` file names a folder that holds only a link to the
engine package (never the folder the engine sits in, which may be the window's site-packages
or a checkout with ``gui/`` beside it). Then it imports the engine there to check, and writes
the marker last.

Re-running it repairs: a missing package is installed, a link pointing elsewhere re-pointed, an
environment whose interpreter changed made again. Bad input gets one line
(:class:`PrepareError`), before anything is left half-made: not a Python and too old are told
by a probe before anything is made; no registry reachable and a dependency with no build for
it are told by pip's resolver, which fails before it installs anything, and an environment
made by this call is removed again.

Wheels only (``--only-binary=:all:``): a dependency without a wheel for the interpreter is
reported as having no build for it, rather than compiled from source for many minutes
(NumPy) or failing half-way for want of a compiler. pip's own cache keeps downloads between
runs. Measured here (2 cores, pyenv 3.13.0, wheels from the registry): about 8-10 s for a new
environment, about 2 s to re-check a prepared one
(``time taskscope pythons add ~/.pyenv/versions/3.13.0/bin/python3.13``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .discovery import MIN_VERSION, engine_dir
from .envs import env_dir, env_python, envs_root, marker_path
from .probe import Probe, probe
from .requirements import requirements

Progress = Callable[[str], None]

#: pip's socket timeout and retries while preparing: an unreachable registry is told in
#: seconds (pip's default is 15 s and 5 retries, over a minute per index page).
PIP_TIMEOUT_S = 10
PIP_RETRIES = 1
#: The longest a whole pip install may take before it is stopped.
INSTALL_LIMIT_S = 900.0
LINK_DIR = "taskscope-engine"
PTH_NAME = "taskscope-engine.pth"

_CONNECT = re.compile(
    r"connection broken by|Could not fetch URL|NewConnectionError|NameResolutionError|"
    r"ConnectTimeout|Failed to establish a new connection|Network is unreachable|ProxyError|"
    r"Max retries exceeded|Read timed out|SSLError|CERTIFICATE_VERIFY_FAILED")
_NOT_FOUND = re.compile(r"Could not find a version that satisfies the requirement (\S+)")


class PrepareError(Exception):
    """Why an interpreter could not be prepared, in one line.

    ``bad_input``: the path itself is wrong (not a Python, too old), not the circumstances."""

    def __init__(self, message: str, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


@dataclass(frozen=True)
class Prepared:
    """An interpreter that can run the engine now."""

    #: The interpreter as given (resolved through any wrapper script).
    interpreter: str
    version: str
    free_threaded: bool
    #: The environment's folder (None: the interpreter runs the engine as it is).
    env: str | None
    #: The executable to start the engine process with.
    python: str
    seconds: float


def prepare(path: str, progress: Progress | None = None, extras: Iterable[str] = (),
            packages: Sequence[str] = ()) -> Prepared:
    """Make (or repair) the environment that lets the interpreter at ``path`` run this engine.

    ``progress`` gets one line at a time, from the calling thread (a CLI prints them; a window
    runs this in a worker and shows them). ``extras`` names optional extras (``dask``);
    ``packages`` are further pip requirements (what a user's own functions import).
    Raises :class:`PrepareError`; nothing else is expected to escape."""
    say = progress or (lambda _line: None)
    t0 = time.monotonic()
    try:
        reqs = requirements(extras) + list(packages)
    except ValueError as e:
        raise PrepareError(str(e), bad_input=True) from None
    base = probe(path, imports=False, refresh=True)
    if not base.ok:
        raise PrepareError(f"{path}: not a Python: {base.error}", bad_input=True)
    if base.version_info < MIN_VERSION:
        raise PrepareError(f"{path}: Python {base.version} is older than 3.11, "
                           "which the engine needs", bad_input=True)
    build = "free-threaded build" if base.free_threaded else "GIL build"
    say(f"Python {base.version} ({build}): {base.executable}")
    if os.path.realpath(base.executable) == os.path.realpath(sys.executable) and (
            base.prefix == sys.prefix):
        say("this is the interpreter TaskScope runs on: it runs the engine as it is")
        return Prepared(base.executable, base.version, base.free_threaded, None,
                        sys.executable, time.monotonic() - t0)
    env = env_dir(base)
    envs_root().mkdir(parents=True, exist_ok=True)
    with _locked(envs_root() / f".{env.name}.lock"):
        created = _make_env(base, env, say)
        try:
            _install(base, env, reqs, say)
            _link_engine(env, say)
            checked = _check(base, env, reqs, say)
        except BaseException:
            if created:
                shutil.rmtree(env, ignore_errors=True)
            raise
        _write_marker(base, env, reqs, checked)
    secs = time.monotonic() - t0
    say(f"ready in {secs:.1f} s: the engine runs on {env_python(env)}")
    return Prepared(base.executable, base.version, base.free_threaded, str(env),
                    str(env_python(env)), secs)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One preparation of an environment at a time (a window and a CLI may both try)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _own_pip() -> bool:
    """This interpreter's pip can install into another one (``pip --python``, pip 22.3+)."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("pip").split(".")[:2])
    except Exception:
        return False
    return (major, minor) >= (22, 3)


def _clean_env() -> dict[str, str]:
    """The environment for venv and pip: without PYTHONPATH, whose packages pip would take for
    installed in the new environment (or the new environment's for its own), and without a
    test runner's PYTHONWARNINGS."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONWARNINGS", None)
    return env


def _run(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=_clean_env(), stdin=subprocess.DEVNULL, check=False,
                          errors="replace")


def _make_env(base: Probe, env: Path, say: Progress) -> bool:
    """Make the virtual environment unless a sound one is there; True if made now."""
    py = env_python(env)
    if py.exists():
        p = probe(str(py), imports=False, refresh=True)
        if p.ok and p.version_info == base.version_info and (
                os.path.realpath(p.executable) == os.path.realpath(base.executable)):
            say(f"environment: {env} (there already)")
            return False
        say(f"environment: {env} (its interpreter changed: making it again)")
    else:
        say(f"environment: {env} (new)")
    args = [base.executable, "-m", "venv", "--clear"]
    if _own_pip():
        args.append("--without-pip")  # installed with this pip (--python): 6 s less
    try:
        cp = _run(args + [str(env)])
    except subprocess.TimeoutExpired:
        shutil.rmtree(env, ignore_errors=True)
        raise PrepareError(f"{base.path}: making a virtual environment took over 120 s") from None
    if cp.returncode != 0:
        shutil.rmtree(env, ignore_errors=True)
        lines = [ln.strip() for ln in (cp.stderr + cp.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "ensurepip" in ln or "venv" in ln), lines[-1] if lines
                   else f"exit status {cp.returncode}")
        raise PrepareError(f"{base.path}: cannot make a virtual environment ({why})")
    return True


def _installer(env: Path, say: Progress) -> list[str]:
    py = str(env_python(env))
    if _own_pip():
        return [sys.executable, "-m", "pip", "--python", py]
    if _run([py, "-m", "pip", "--version"]).returncode != 0:
        say("installing pip into the environment (ensurepip)")
        cp = _run([py, "-m", "ensurepip", "--default-pip"])
        if cp.returncode != 0:
            raise PrepareError(f"{env}: no pip to install with (ensurepip failed)")
    return [py, "-m", "pip"]


def _install(base: Probe, env: Path, reqs: list[str], say: Progress) -> None:
    names = ", ".join(_name(r) for r in reqs if _applies(r, base))
    say(f"installing with pip: {names}")
    args = _installer(env, say) + [
        "install", "--only-binary=:all:", "--timeout", str(PIP_TIMEOUT_S),
        "--retries", str(PIP_RETRIES), "--progress-bar", "off",
        "--disable-pip-version-check", "--no-input", *reqs]
    lines: list[str] = []
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_clean_env(), stdin=subprocess.DEVNULL, errors="replace")
    deadline = time.monotonic() + INSTALL_LIMIT_S
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                lines.append(line)
                say(f"  pip: {line}")
            if time.monotonic() > deadline:
                proc.kill()
                raise PrepareError(f"{base.path}: pip did not finish within "
                                   f"{INSTALL_LIMIT_S:.0f} s")
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if rc != 0:
        raise PrepareError(pip_failure(lines, base))


def pip_failure(lines: list[str], base: Probe) -> str:
    """One line for a failed pip install: no registry reachable, a dependency with no build for
    this interpreter, or pip's own last error."""
    for ln in lines:
        if _CONNECT.search(ln):
            m = re.search(r"host='([^']+)'", ln) or re.search(r"https?://([^/\s'\"]+)", ln)
            where = m.group(1) if m else "the package index"
            why = re.search(r"(\[Errno [-\d]+\] [^'\")]+|timed out|Name or service not known"
                            r"|certificate verify failed|Connection refused)", ln)
            return (f"no package registry reachable: pip could not connect to {where}"
                    + (f" ({why.group(1).strip()})" if why else "")
                    + "; check the network or pip's index settings (pip config list)")
    missing = [_name(m.group(1)) for m in map(_NOT_FOUND.search, lines) if m]
    for i, ln in enumerate(lines):  # pip 24+, when the failure shows as a conflict
        if "no matching distributions available" in ln and i + 1 < len(lines):
            missing.append(_name(lines[i + 1]))
    if missing:
        name = missing[0]
        build = " free-threaded" if base.free_threaded else ""
        return (f"{name} has no build for Python {base.version}{build} on "
                f"{sys.platform} {platform.machine()}: pip found no wheel of it that fits")
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    first = (errors or lines[-1:] or ["pip failed with no message"])[0]
    return f"pip could not install the engine's dependencies for Python {base.version}: {first}"


def _name(req: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0]


def _applies(req: str, base: Probe) -> bool:
    """Whether a requirement's python_version marker (the only kind we write) includes base."""
    _, _, marker = req.partition(";")
    if not marker.strip():
        return True
    v = base.version_info[:2]
    for op, ver in re.findall(r"python_version\s*([<>=!]=?)\s*'([\d.]+)'", marker):
        want = tuple(int(x) for x in ver.split("."))
        ok = {"<": v < want, "<=": v <= want, ">": v > want, ">=": v >= want,
              "==": v == want, "!=": v != want}[op]
        if not ok:
            return False
    return True


def _link_engine(env: Path, say: Progress) -> None:
    """Make this engine, and nothing beside it, importable in ``env``."""
    src = Path(engine_dir())
    folder = env / LINK_DIR
    link = folder / "engine"
    folder.mkdir(exist_ok=True)
    if not (link.is_symlink() and os.path.realpath(link) == str(src)):
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        try:
            link.symlink_to(src, target_is_directory=True)
            say(f"engine: {src} (linked)")
        except OSError:  # no symlinks (Windows without developer mode): a copy, refreshed here
            shutil.copytree(src, link, ignore=shutil.ignore_patterns("__pycache__"))
            say(f"engine: {src} (copied: run this again after updating TaskScope)")
    p = probe(str(env_python(env)), imports=False, refresh=True)
    if not p.ok or not p.purelib:
        raise PrepareError(f"{env}: its python does not run ({p.error or 'no site-packages'})")
    pth = Path(p.purelib) / PTH_NAME
    pth.write_text(f"{folder}\n", encoding="utf-8")


def _check(base: Probe, env: Path, reqs: list[str], say: Progress) -> Probe:
    say("checking: the engine imports there")
    p = probe(str(env_python(env)), imports=True, refresh=True)
    if not p.ok:
        raise PrepareError(f"{env}: its python does not run ({p.error})")
    if p.import_errors:
        name, err = next(iter(p.import_errors.items()))
        raise PrepareError(f"Python {base.version}: {name} does not import in the prepared "
                           f"environment ({err})")
    if p.engine_dir != engine_dir():
        raise PrepareError(f"Python {base.version}: the engine imported there is {p.engine_dir}, "
                           f"not {engine_dir()} (is PYTHONPATH set?)")
    # On 3.13 the backport is whole; on 3.12 it also needs the _interpreters C module, which
    # only the source-only interpreters-3-12 provides (a 66 s build here, and on 3.12.1 the
    # result crashes on import), so there its absence is reported by `taskscope pythons`, not
    # an error: 3.12 still runs every other model.
    wants_backport = base.version_info[:2] == (3, 13) and any(
        _name(r) == "interpreters-pep-734" and _applies(r, base) for r in reqs)
    if wants_backport and p.subinterpreters != "backport":
        raise PrepareError(f"Python {base.version}: interpreters-pep-734 is installed but its "
                           "InterpreterPoolExecutor does not import")
    return p


def _write_marker(base: Probe, env: Path, reqs: list[str], checked: Probe) -> None:
    doc = {
        "interpreter": base.executable,
        "real_path": os.path.realpath(base.executable),
        "version": base.version,
        "free_threaded": base.free_threaded,
        "engine": engine_dir(),
        "requirements": reqs,
        "subinterpreters": checked.subinterpreters,
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = marker_path(env).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, marker_path(env))
