"""How compare measures a model's window: its own CPU and memory, the machine's, loop lag.

Compare keeps a light psutil monitor of its own (this process and the session's workers) and
reads the sampler's samples where the session has a sampler; the package docstring defines
each figure.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psutil

from .results import ModelResult

if TYPE_CHECKING:
    from ..api import SessionAPI


def _busy_cores(before: Any, after: Any) -> float | None:
    """Average busy cores between two ``psutil.cpu_times(percpu=True)`` readings."""
    total = 0.0
    for a, b in zip(before, after, strict=False):
        da = sum(b) - sum(a)
        if da <= 0:
            continue
        idle = (b.idle - a.idle) + (getattr(b, "iowait", 0.0) - getattr(a, "iowait", 0.0))
        total += max(0.0, min(1.0, 1.0 - idle / da))
    return total


def p99(values: Sequence[float]) -> float | None:
    """Nearest-rank 99th percentile, None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


class _Monitor:
    """compare's own light psutil monitor: RSS and CPU time of this process and the session's
    worker processes, read every ``interval`` s in a daemon thread (and on demand).

    ``psutil.Process`` objects are kept alive per pid: psutil keeps CPU state per object.
    """

    def __init__(self, session: SessionAPI, interval: float) -> None:
        self.session = session
        self.interval = interval
        self._me = psutil.Process()
        self._procs: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._peak = 0
        self._cpu: dict[int, float] = {}  # pid -> latest cpu seconds seen this window
        self._self0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskscope-compare-monitor",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        with self._lock:
            try:
                rss = self._me.memory_info().rss
                t = self._me.cpu_times()
                self._cpu[0] = t.user + t.system
            except psutil.Error:
                return
            for pid in self.session.worker_pids():
                p = self._procs.get(pid)
                if p is None:
                    try:
                        p = self._procs[pid] = psutil.Process(pid)
                    except psutil.Error:
                        continue
                try:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        t = p.cpu_times()
                    self._cpu[pid] = t.user + t.system
                except psutil.Error:
                    pass  # it exited; its last reading stands
            self._peak = max(self._peak, rss)

    def begin(self) -> None:
        """Start a window: reset the peak and the CPU counters."""
        with self._lock:
            self._peak = 0
            self._cpu = {}
            t = self._me.cpu_times()
            self._self0 = t.user + t.system
            self._procs = {}
        self.tick()

    def end(self) -> tuple[int, float]:
        """Finish the window: ``(peak RSS bytes, CPU seconds used by us and the workers)``.
        Workers first seen in the window count from 0 (their start-up is the model's cost)."""
        self.tick()
        with self._lock:
            cpu = self._cpu.get(0, self._self0) - self._self0
            cpu += sum(v for pid, v in self._cpu.items() if pid != 0)
            return self._peak, max(0.0, cpu)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


def _samples_in(samples: list[Any], start_ns: int, end_ns: int) -> list[Any]:
    """Samples whose interval's midpoint lies in the window."""
    out = []
    for s in samples:
        mid = s.t_ns - int(getattr(s, "interval_s", 0.0) * 5e8)
        if start_ns <= mid <= end_ns:
            out.append(s)
    return out


def _apply_samples(session: SessionAPI, r: ModelResult, cursor: int) -> None:
    """Fill a model's sampler figures as soon as it ends (not after the whole comparison),
    so a view shows each model complete as it finishes. Waits up to ~0.3 s for the sample
    that covers the run's end."""
    if r.start_ns is None or r.end_ns is None:
        return
    sampler = session.sampler
    deadline = time.monotonic() + (0.3 if sampler is not None else 0.0)
    while True:
        samples, _ = session.store.read_samples(cursor)
        if (samples and samples[-1].t_ns >= r.end_ns) or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    # A sampler that adds other TaskScope processes (the window's) into self_rss gives no
    # figure for "this process plus workers": the peak comes from compare's own readings.
    own_only = sampler is None or not sampler.counts_own_pids
    got = _from_samples(_samples_in(samples, r.start_ns, r.end_ns), rss=own_only)
    if "machine_cores" in got:
        r.machine_cores, r.machine_source = got["machine_cores"], "sampler"
    if "peak_rss" in got:
        r.peak_rss_bytes = max(r.peak_rss_bytes or 0, got["peak_rss"])
    r.gui_lag_p99_ms = got.get("gui_lag")
    r.engine_lag_p99_ms = got.get("engine_lag")


def _from_samples(samples: list[Any], rss: bool = True) -> dict[str, Any]:
    """Figures from sampler samples, where present: the machine's busy cores (every program's),
    peak RSS, loop lag p99s.
    ``rss`` False: no peak RSS (the samples' ``self_rss`` is not this process alone)."""
    out: dict[str, Any] = {}
    cores = [sum(s.cores) / 100.0 for s in samples if getattr(s, "cores", None)]
    if cores:
        out["machine_cores"] = statistics.fmean(cores)
    if rss:
        peaks = [
            int(getattr(s, "self_rss", 0) or 0)
            + sum(int(getattr(w, "rss", 0) or 0)
                  for w in (getattr(s, "workers", None) or {}).values())
            for s in samples
        ]
        if any(peaks):
            out["peak_rss"] = max(peaks)
    for loop in ("gui", "engine"):
        lags = [s.lag_ms[loop] for s in samples
                if loop in (getattr(s, "lag_ms", None) or {}) and s.lag_ms[loop] is not None]
        if lags:
            out[f"{loop}_lag"] = p99(lags)
    return out


def _ensure_forkserver() -> None:
    """Start the forkserver before timing anything: it is a one-off cost of the session, not of
    whichever process model happens to run first."""
    from ..models.procpool import start_method

    if start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _settle(seconds: float, cancel: threading.Event) -> float | None:
    """Pause; return the machine's busy cores over the pause (other load, our idle threads)."""
    if seconds <= 0:
        return None
    a = psutil.cpu_times(percpu=True)
    t = time.monotonic()
    cancel.wait(seconds)
    if time.monotonic() - t < 0.05:
        return None
    return _busy_cores(a, psutil.cpu_times(percpu=True))
