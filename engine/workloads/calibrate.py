"""Calibration: the machine's rates that size a task's chunks of work, and the disk's pace.

Sizes are durations so that a demo means the same on a laptop and on a workstation. What a
duration means differs per workload (see :mod:`engine.workloads`): ``cpu`` and ``numpy`` tasks
run until their own CPU clock says their size, so their rates here only set how much work goes
between two checks of that clock (and the show-code scripts' iteration counts); ``file`` tasks
do a fixed number of rounds, at the disk's pace timed again at the start of every file run
(:func:`file_rate_now`). The CPU and NumPy rates are measured once (best of several short
trials) and cached per interpreter and machine in the user's cache folder
(``TASKSCOPE_CACHE_DIR`` overrides it; ``TASKSCOPE_RECALIBRATE=1`` measures again).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..cache import cache_root

CPU_TRIAL_ITERS = 40_000  # about 2 ms: short trials are likelier to run undisturbed
NUMPY_ELEMS = 65_536
FILE_CHUNK = 64 * 1024
FILE_TRIAL_ROUNDS = 8  # a file trial: a task's pace over several rounds, not one lucky round
FILE_PROBE_TRIALS = 6  # the re-timing at each file run's start (about 20 ms on an SSD)

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


def file_round_s(trials: int, budget_s: float | None = None) -> float:
    """Seconds a file round takes at the disk's pace now: the median of ``trials`` trials
    (fewer, but at least two, once ``budget_s`` has passed: a disk that other work keeps busy
    must not hold up a run's start for long).

    The median, not the best: a file task's rounds are sized at this pace, and the disk's
    typical pace now, not one lucky trial, is what makes them take their size. In a temporary
    directory beside the tasks' own temp files. The first rounds on a new file run 2-3x slower
    (measured 0.7 ms against 0.3), so a few untimed ones go first.
    """
    payload = os.urandom(FILE_CHUNK)
    paces = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="taskscope-cal-") as d:
        path = os.path.join(d, "f")
        for _ in range(3):
            file_round(path, payload)
        for _ in range(trials):
            t = time.perf_counter()
            for _ in range(FILE_TRIAL_ROUNDS):
                file_round(path, payload)
            paces.append(time.perf_counter() - t)
            if budget_s is not None and len(paces) >= 2 and t - start > budget_s:
                break
    return statistics.median(paces) / FILE_TRIAL_ROUNDS


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
    file_s = file_round_s(12)
    return {
        "cpu_iters_per_s": CPU_TRIAL_ITERS / cpu_s,
        "numpy_calls_per_s": 1.0 / np_s,
        "file_rounds_per_s": 1.0 / file_s,
    }


def _cache_path() -> Path:
    root = cache_root()
    key = f"{platform.python_implementation()}-{sys.version_info[0]}.{sys.version_info[1]}-{platform.machine()}"
    return root / f"calibration-{key}.json"


_KEYS = ("cpu_iters_per_s", "numpy_calls_per_s", "file_rounds_per_s")
#: A calibration taken while other processes kept this share of the cores busy is provisional.
BUSY_SHARE = 0.3
_provisional_at = 0.0  # when the provisional rates in _cached were measured (0: not provisional)
_tries = 0
#: At most this many measurements per process (each ~0.2 s, maybe on a GUI thread): a machine
#: that stays busy keeps the best rates seen so far, unsaved.
MAX_TRIES = 5


def _others_busy(measure_fn):
    """Run ``measure_fn`` and return ``(its result, the share of the machine's cores that
    *other* work kept busy meanwhile)``, from psutil's system-wide and own CPU times."""
    import psutil

    me = psutil.Process()
    t0 = time.monotonic()
    sys0 = psutil.cpu_times()
    own0 = sum(me.cpu_times()[:2])
    result = measure_fn()
    sys1 = psutil.cpu_times()
    own1 = sum(me.cpu_times()[:2])
    wall = time.monotonic() - t0
    idle = lambda c: c.idle + getattr(c, "iowait", 0.0)  # noqa: E731
    busy = (sum(sys1) - idle(sys1)) - (sum(sys0) - idle(sys0))
    cores = os.cpu_count() or 1
    return result, max(0.0, (busy - (own1 - own0)) / (wall * cores)) if wall > 0 else 0.0


def _merge(a: dict[str, float] | None, b: dict[str, float]) -> dict[str, float]:
    """Per rate, the higher: a calibration can only be too slow (a busy machine, a shared
    hyperthread, a throttled clock), never too fast, so the highest rate seen is the truest."""
    if a is None:
        return dict(b)
    return {k: max(a.get(k, 0.0), b[k]) for k in _KEYS}


def calibration() -> dict[str, float]:
    """The cached rates, measuring them first if there are none.

    On a busy machine even thread CPU time runs slow (on a VM a busy sibling hyperthread
    slows every cycle: measured 15M iterations/s against 22-25M quiet), which would make
    tasks shorter than their size. So a calibration taken while other work kept more than
    ``BUSY_SHARE`` of the cores busy is provisional: used, not saved, and measured again
    (keeping the highest rates) at the next call a few seconds later, until a quiet one.

    The file rate cached here only sizes the show-code scripts: file runs time the disk
    again at their start (:func:`file_rate_now`).
    """
    global _cached, _provisional_at, _tries
    if _cached is not None and not _provisional_at:
        return _cached
    if _provisional_at and (time.monotonic() - _provisional_at < 5.0 or _tries >= MAX_TRIES):
        assert _cached is not None
        return _cached
    path = _cache_path()
    if _cached is None and not os.environ.get("TASKSCOPE_RECALIBRATE"):
        try:
            data = json.loads(path.read_text())
            if all(isinstance(data.get(k), (int, float)) and data[k] > 0 for k in _KEYS):
                _cached = {k: float(data[k]) for k in _KEYS}
                return _cached
        except (OSError, ValueError, AttributeError):
            pass
    rates, others = _others_busy(measure)
    _tries += 1
    _cached = _merge(_cached, rates)
    if others > BUSY_SHARE:
        _provisional_at = time.monotonic()
        return _cached
    _provisional_at = 0.0
    _save(path)
    return _cached


#: How long timing the disk at a file run's start may go on (once it has two trials).
FILE_PROBE_BUDGET_S = 0.025


def file_rate_now() -> float:
    """Rounds per second the disk does now: the median of a few short trials (about 20 ms;
    ``FILE_PROBE_BUDGET_S`` at most, unless two trials take longer).

    The median of now, not the fastest ever seen: a file task does a fixed number of rounds
    (so that contention shows), and only the pace the disk has now makes an uncontended task
    take its size; fsync rounds on a shared VM disk took 0.26 ms in one second and 0.33-0.40
    ms in the next, for seconds at a time. Replaces the cached figure in memory (the show-code
    scripts then use it too); raises OSError when the temp directory is not writable."""
    global _cached
    rate = 1.0 / file_round_s(FILE_PROBE_TRIALS, FILE_PROBE_BUDGET_S)
    if _cached is not None:
        _cached = {**_cached, "file_rounds_per_s": rate}  # a new dict: runs hold the old one
    return rate


def _save(path: Path) -> None:
    assert _cached is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**_cached, "file_dir": tempfile.gettempdir()}, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home still works; we just measure again next time
