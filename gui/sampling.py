"""Connect the window to the engine's sampler, or stand in for it until the engine has one.

The engine's :class:`Session` is gaining ``sample_hz=`` and ``session.sampler`` (psutil, loop lag
probes, GIL probe) that put :class:`engine.samples.Sample` objects in the store. When this
engine has it, :func:`attach` only registers the GUI loop's lag probe. When it does not,
:class:`FallbackSampler` produces the same Sample records from one background thread, so the
window reads one source either way. It stays Qt-free: it is the engine's job, done here only
as a stop-gap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psutil

from engine import Session
from engine.clock import now_ns
from engine.samples import Sample, WorkerSample

SAMPLE_HZ = 10.0


def make_session() -> Session:
    """A session that samples at SAMPLE_HZ (where the engine supports ``sample_hz``)."""
    try:
        return Session(sample_hz=SAMPLE_HZ)  # type: ignore[call-arg]
    except TypeError:
        return Session()


class _LoopLag:
    """A self re-arming timer on a loop; ``take`` = worst lateness (ms) since the last take,
    including a stall still in progress. One timer at a time (qasync: one Qt timer)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float = 0.02) -> None:
        self.loop = loop
        self.interval = interval_s
        self.due = 0.0
        self.worst = 0.0
        self.stopped = False
        self.lock = threading.Lock()
        loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        if self.stopped:
            return
        with self.lock:
            self.due = time.monotonic() + self.interval
        self.loop.call_later(self.interval, self._fire)

    def _fire(self) -> None:
        late = max(0.0, time.monotonic() - self.due) * 1e3
        with self.lock:
            self.worst = max(self.worst, late)
        self._arm()

    def take(self) -> float:
        with self.lock:
            pending = max(0.0, time.monotonic() - self.due) * 1e3 if self.due else 0.0
            w = max(self.worst, pending)
            self.worst = 0.0
        return w


class _GilWait:
    """Share of time a probe thread spends waiting to run again after a 1 ms sleep.

    Waking from ``time.sleep`` needs the GIL; when other threads hold it the wake-up is late.
    The overshoot beyond the scheduler's own (measured when idle) approximates GIL waiting.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wait = 0.0
        self.t0 = time.monotonic()
        self.stopped = False
        self.thread = threading.Thread(target=self._main, name="taskscope-gil-probe", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        floor = 0.0002
        while not self.stopped:
            a = time.perf_counter()
            time.sleep(0.001)
            over = time.perf_counter() - a - 0.001
            if over > floor:
                with self.lock:
                    self.wait += over - floor

    def take(self) -> float:
        with self.lock:
            now = time.monotonic()
            share = self.wait / max(1e-6, now - self.t0)
            self.wait = 0.0
            self.t0 = now
        return min(1.0, share)


class FallbackSampler:
    """Samples the machine at ``hz`` into ``session.store`` (only when the engine cannot)."""

    def __init__(self, session: Session, hz: float = SAMPLE_HZ) -> None:
        self.session = session
        self.period = 1.0 / hz
        self.probes: dict[str, _LoopLag] = {}
        self.gil = _GilWait()
        self.me = psutil.Process()
        self.procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        # psutil's first cpu_percent is meaningless; keep our own deltas from cpu_times.
        self._last_cores = psutil.cpu_times(percpu=True)
        self._last_self = sum(self.me.cpu_times()[:2])
        self._last_t = time.monotonic()
        self._last_workers: dict[int, float] = {}
        self.thread = threading.Thread(target=self._main, name="taskscope-gui-sampler",
                                       daemon=True)
        self.thread.start()

    def add_loop_probe(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.probes[name] = _LoopLag(loop)

    def stop(self) -> None:
        self._stop.set()
        self.gil.stopped = True
        for p in self.probes.values():
            p.stopped = True
        self.thread.join(0.5)

    def _main(self) -> None:
        engine_probe_added = False
        while not self._stop.wait(self.period):
            try:
                if not engine_probe_added and self.session.active_runs():
                    # The engine loop exists once a run used it; probe it from then on.
                    self.probes["engine"] = _LoopLag(self.session.loop)
                    engine_probe_added = True
                self.session.store.add_sample(self._sample())
            except Exception:  # noqa: BLE001 - a sampler must never die of one bad read
                continue

    def _sample(self) -> Sample:
        t = time.monotonic()
        dt = max(1e-6, t - self._last_t)
        cores_now = psutil.cpu_times(percpu=True)
        cores, users, systems = [], [], []
        for a, b in zip(self._last_cores, cores_now, strict=False):
            tot = sum(b) - sum(a)
            idle = (b.idle - a.idle) + (getattr(b, "iowait", 0) - getattr(a, "iowait", 0))
            tot = tot if tot > 0 else 1e-9
            cores.append(max(0.0, min(100.0, 100 * (tot - idle) / tot)))
            users.append(max(0.0, 100 * (b.user - a.user) / tot))
            systems.append(max(0.0, 100 * (b.system - a.system) / tot))
        self._last_cores = cores_now
        s = sum(self.me.cpu_times()[:2])
        self_cpu = 100 * (s - self._last_self) / dt
        self._last_self = s
        workers: dict[int, WorkerSample] = {}
        alive: dict[int, float] = {}
        for pid in self.session.worker_pids():
            try:
                p = self.procs.get(pid) or psutil.Process(pid)
                self.procs[pid] = p
                with p.oneshot():
                    c = sum(p.cpu_times()[:2])
                    rss = p.memory_info().rss
                    core = p.cpu_num() if hasattr(p, "cpu_num") else -1
                prev = self._last_workers.get(pid)
                alive[pid] = c
                cpu = 0.0 if prev is None else 100 * (c - prev) / dt
                workers[pid] = WorkerSample(pid, cpu, rss, core)
            except (psutil.Error, OSError):
                continue
        self._last_workers = alive
        self.procs = {p: self.procs[p] for p in alive if p in self.procs}
        self._last_t = t
        lag = {name: p.take() for name, p in list(self.probes.items())}
        return Sample(now_ns(), dt, tuple(cores), tuple(users), tuple(systems),
                      sum(cores) / max(1, len(cores)), self_cpu, self.me.memory_info().rss,
                      workers, {}, lag, self.gil.take())


def attach(session: Session, gui_loop: asyncio.AbstractEventLoop) -> Any:
    """Start sampling for the window; return the sampler (the engine's or the fallback)."""
    sampler = getattr(session, "sampler", None)
    if sampler is None:
        sampler = FallbackSampler(session)
    try:
        sampler.add_loop_probe("gui", gui_loop)
    except Exception:  # noqa: BLE001 - lag display is optional; never block the window
        pass
    return sampler
