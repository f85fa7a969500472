"""Calibration: how much work makes "200ms" of each workload on this machine.

Sizes are durations so that a demo means the same on a laptop and on a workstation. The rates
are measured once (best of several short trials, so a momentarily busy machine does not skew
them) and cached per interpreter and machine in the user's cache folder
(``TASKSCOPE_CACHE_DIR`` overrides it; ``TASKSCOPE_RECALIBRATE=1`` measures again).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

CPU_TRIAL_ITERS = 40_000  # about 2 ms: short trials are likelier to run undisturbed
NUMPY_ELEMS = 65_536
FILE_CHUNK = 64 * 1024

_cached: dict[str, float] | None = None


def cpu_chunk(n: int) -> int:
    """Pure-Python arithmetic: the sum of squares below ``n`` (holds the GIL throughout)."""
    s = 0
    for i in range(n):
        s += i * i
    return s


def numpy_chunk(a: object, out: object) -> None:
    """One GIL-releasing NumPy call: ``sin`` over a float64 array (single-threaded C)."""
    import numpy as np

    np.sin(a, out=out)


def file_round(path: str, payload: bytes) -> None:
    """Write ``payload``, fsync it, and read it back."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, payload)
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        back = os.read(fd, len(payload))
    finally:
        os.close(fd)
    if back != payload:
        raise OSError(f"read back {len(back)} bytes that differ from what was written")


def _best(fn, reps: int, clock=time.perf_counter) -> float:
    best = float("inf")
    for _ in range(reps):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best


def measure() -> dict[str, float]:
    """Measure the rates now (about 0.3 s).

    CPU and NumPy work is timed with this thread's own CPU time, not the wall clock: on a busy
    machine (a CI box, a laptop compiling) the wall clock counts time the thread sat waiting
    for a core, which made "50ms" tasks do 20-40 ms of work once the machine was quiet
    (measured). CPU time makes a task do at least its size of work however loaded the
    machine was at calibration. File rounds wait on the disk, so they keep the wall clock.
    """
    # Many short trials, best of them: on a VM, time the host takes from the vCPU shows up
    # even in thread CPU time, and a 2 ms trial often slips between two such interruptions.
    cpu_s = _best(lambda: cpu_chunk(CPU_TRIAL_ITERS), 25, time.thread_time)
    import numpy as np

    a = np.linspace(0.0, 100.0, NUMPY_ELEMS)
    out = np.empty_like(a)
    np_s = _best(lambda: [numpy_chunk(a, out) for _ in range(3)], 15, time.thread_time) / 3
    payload = os.urandom(FILE_CHUNK)
    with tempfile.TemporaryDirectory(prefix="taskscope-cal-") as d:
        path = os.path.join(d, "f")
        file_s = _best(lambda: [file_round(path, payload) for _ in range(2)], 12) / 2
    return {
        "cpu_iters_per_s": CPU_TRIAL_ITERS / cpu_s,
        "numpy_calls_per_s": 1.0 / np_s,
        "file_rounds_per_s": 1.0 / file_s,
    }


def _cache_path() -> Path:
    base = os.environ.get("TASKSCOPE_CACHE_DIR")
    if base:
        root = Path(base)
    elif sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home())) / "taskscope"
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "taskscope"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "taskscope"
    key = f"{platform.python_implementation()}-{sys.version_info[0]}.{sys.version_info[1]}-{platform.machine()}"
    return root / f"calibration-{key}.json"


def calibration() -> dict[str, float]:
    """The cached rates, measuring them first if there are none."""
    global _cached
    if _cached is not None:
        return _cached
    path = _cache_path()
    if not os.environ.get("TASKSCOPE_RECALIBRATE"):
        try:
            data = json.loads(path.read_text())
            if all(isinstance(data.get(k), (int, float)) and data[k] > 0 for k in
                   ("cpu_iters_per_s", "numpy_calls_per_s", "file_rounds_per_s")):
                _cached = {k: float(data[k]) for k in
                           ("cpu_iters_per_s", "numpy_calls_per_s", "file_rounds_per_s")}
                return _cached
        except (OSError, ValueError, AttributeError):
            pass
    _cached = measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_cached, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home still works; we just measure again next time
    return _cached
