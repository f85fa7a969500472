"""The live system sampler: per-core CPU, our process, its threads, our workers, loop lag, GIL.

One :class:`Sampler` owns every psutil call, in one thread of its own, and puts one
:class:`~engine.samples.Sample` per tick into the session's store. Everything CPU-related is a
*difference between two reads of kernel counters* taken by this sampler, never psutil's
``cpu_percent()``: that keeps per-caller state (so a second reader would disturb the first)
and says 0.0 or 100.0 on its first call. Here the very first sample is already a true
measurement over [construction, first tick].

Portable by construction: psutil only (no /proc reads), so it works on macOS and Windows too.
Where the OS cannot tell something (the core a process last ran on), the sample says -1.

Cost: a full tick at 10 Hz with 8 idle workers is under 1% of one core (0.8-0.9% measured on
the 2-core development VM while other test suites loaded it; most of it is waking up and
reading /proc-backed counters through psutil); the GIL probe thread adds about 1% of one core.
:func:`measure_cost` measures both wherever it runs.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from .clock import NS_PER_S, now_ns
from .probes import GilProbe, LagProbe, gil_disabled
from .samples import Sample, WorkerSample
from .spec import SpecError

__all__ = ["Sampler", "check_hz", "core_averages", "measure_cost", "run_samples"]

MIN_HZ = 1.0
MAX_HZ = 50.0

# Busy and idle fields of psutil.cpu_times(). Linux already counts guest time inside user and
# guest_nice inside nice, so the guest fields are not added again. Missing fields (other
# platforms have fewer) count as 0.
_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")
_IDLE = ("idle", "iowait")
_USER = ("user", "nice")
_SYSTEM = ("system", "irq", "softirq")

_HAS_CPU_NUM = hasattr(psutil.Process, "cpu_num")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


def check_hz(hz: Any) -> float:
    """Validate a sampling rate (samples per second, 1..50) and return it as a float.

    Raises :class:`~engine.spec.SpecError` (a ValueError) naming the field ``hz``.
    """
    if isinstance(hz, bool) or not isinstance(hz, int | float) or not math.isfinite(hz):
        raise SpecError("hz", f"expected a number of samples per second, got {hz!r}")
    if not MIN_HZ <= hz <= MAX_HZ:
        raise SpecError("hz", f"expected {MIN_HZ:g} to {MAX_HZ:g} samples per second, got {hz!r}")
    return float(hz)


def _fields(ct: Any, names: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(getattr(ct, n, 0.0) for n in names)


class _Core:
    """One core's counters at one read: (busy, idle, user, system) seconds."""

    __slots__ = ("busy", "idle", "system", "user")

    def __init__(self, ct: Any) -> None:
        self.busy = sum(_fields(ct, _BUSY))
        self.idle = sum(_fields(ct, _IDLE))
        self.user = sum(_fields(ct, _USER))
        self.system = sum(_fields(ct, _SYSTEM))


def _read_cores() -> list[_Core]:
    return [_Core(ct) for ct in psutil.cpu_times(percpu=True)]


class _Tracked:
    """A worker process we keep a live ``psutil.Process`` for (so its counters can be
    differenced tick to tick, and psutil can tell if the pid was reused)."""

    __slots__ = ("cpu_s", "proc")

    def __init__(self, proc: psutil.Process, cpu_s: float) -> None:
        self.proc = proc
        self.cpu_s = cpu_s


class Sampler:
    """Samples the machine, this process and the engine's workers ``hz`` times a second.

    ``worker_pids`` is called once per tick from the sampler thread; it returns the pids of the
    worker processes the engine started (the engine tracks them; we never guess from
    ``children()``, which would also pick up the forkserver and resource tracker).

    Lag probes can be added for any asyncio loop, from any thread, at any time.
    """

    def __init__(self, store: Any, worker_pids: Callable[[], Iterable[int]],
                 hz: float = 10.0, *, gil_probe: bool = True) -> None:
        self.hz = check_hz(hz)
        self.period_ns = int(NS_PER_S / self.hz)
        self.store = store
        self._worker_pids = worker_pids
        self._tick_lock = threading.Lock()
        self._probes_lock = threading.Lock()
        self._lag: dict[str, LagProbe] = {}
        self._gil = GilProbe() if gil_probe else None
        self._gil_off = gil_disabled()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self._stopped = False
        #: Ticks that raised (the sampler keeps going); the last such error, for diagnosis.
        self.errors = 0
        self.last_error: BaseException | None = None
        self.ticks = 0
        self._tick_ns_total = 0
        self._tick_ns_max = 0
        self._thread_cpu_ns = 0
        self._thread_started_ns = 0
        self.latest: Sample | None = None

        self._proc = psutil.Process()
        # Prime every counter now (as glances does): CPU figures are differences between two
        # reads, so reading once here makes the very first tick a real measurement instead of
        # psutil's meaningless first 0.0/100.0.
        self._prev_t_ns = now_ns()
        self._prev_cores = _read_cores()
        self._prev_self_cpu = self._proc_cpu(self._proc)
        self._prev_threads = self._thread_times()
        self._workers: dict[int, _Tracked] = {}
        self._prev_wall = time.time()
        self._track_workers(self._prev_wall)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the sampler thread (and the GIL probe). Idempotent; a stopped sampler cannot
        restart."""
        if self._stopped:
            raise RuntimeError("a stopped Sampler cannot be restarted; make a new one")
        if self.thread is not None:
            return
        if self._gil is not None:
            self._gil.start()
        self.thread = threading.Thread(target=self._main, name="taskscope-sampler", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the thread, the GIL probe and every lag probe; joins within ``timeout``."""
        with self._probes_lock:
            self._stopped = True
            probes = list(self._lag.values())
            self._lag.clear()
        self._stop.set()
        for p in probes:
            p.stop()
        deadline = time.monotonic() + timeout
        if self._gil is not None:
            self._gil.stop(timeout)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _main(self) -> None:
        self._thread_started_ns = now_ns()
        cpu0 = time.thread_time_ns()
        period = self.period_ns
        next_t = now_ns() + period
        wait = self._stop.wait
        while not wait(max(0.0, (next_t - now_ns()) / NS_PER_S)):
            t0 = now_ns()
            try:
                self.sample_now()
            except Exception as e:  # never let one bad read end the monitor
                self.errors += 1
                self.last_error = e
            t1 = now_ns()
            dt = t1 - t0
            self._tick_ns_total += dt
            self._tick_ns_max = max(self._tick_ns_max, dt)
            self._thread_cpu_ns = time.thread_time_ns() - cpu0
            next_t += period
            if next_t <= t1:  # fell behind (machine stalled): resync, do not burst
                next_t = t1 + period

    # -- lag probes -------------------------------------------------------------------------
    def add_loop_probe(self, name: str, loop: asyncio.AbstractEventLoop,
                       interval_s: float = 0.02) -> LagProbe:
        """Measure how late ``loop`` runs a timer every ``interval_s``; reported as
        ``Sample.lag_ms[name]``. Replaces an existing probe of that name. Thread-safe.

        Raises RuntimeError if ``loop`` is closed or this sampler was stopped (a probe added
        then would keep a timer on the loop that nobody reads).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        probe = LagProbe(loop, interval_s)
        with self._probes_lock:
            if self._stopped:
                raise RuntimeError("this Sampler was stopped")
            old = self._lag.pop(name, None)
            self._lag[name] = probe
        if old is not None:
            old.stop()
        try:
            probe.start()  # a probe stopped meanwhile (by stop()) never arms: see LagProbe._arm
        except RuntimeError:  # the loop is closed
            with self._probes_lock:
                if self._lag.get(name) is probe:
                    del self._lag[name]
            raise
        return probe

    def remove_loop_probe(self, name: str) -> bool:
        """Stop and forget the probe ``name``; False if there was none."""
        with self._probes_lock:
            probe = self._lag.pop(name, None)
        if probe is None:
            return False
        probe.stop()
        return True

    def lag_stats(self, name: str, window_s: float = 10.0) -> dict[str, float] | None:
        """p50/p99/max lateness (ms) of loop ``name`` over the last ``window_s``; None if no
        such probe."""
        with self._probes_lock:
            probe = self._lag.get(name)
        return None if probe is None else probe.stats(window_s)

    # -- sampling ---------------------------------------------------------------------------------
    @staticmethod
    def _proc_cpu(proc: psutil.Process) -> float:
        ct = proc.cpu_times()
        return ct.user + ct.system

    def _thread_times(self) -> dict[int, float]:
        try:
            return {t.id: t.user_time + t.system_time for t in self._proc.threads()}
        except (psutil.AccessDenied, NotImplementedError):
            return {}

    def _track_workers(self, wall: float) -> dict[int, float]:
        """Refresh the set of tracked workers; return ``{pid: cpu seconds}`` to attribute to
        this interval for workers seen for the first time."""
        try:
            wanted = set(self._worker_pids())
        except Exception:  # the engine is shutting down: keep what we had
            wanted = set(self._workers)
        for pid in list(self._workers):
            if pid not in wanted:
                del self._workers[pid]
        fresh: dict[int, float] = {}
        for pid in wanted - self._workers.keys():
            try:
                proc = psutil.Process(pid)
                cpu = self._proc_cpu(proc)
                born = proc.create_time()
            except _GONE:
                continue
            self._workers[pid] = _Tracked(proc, cpu)
            # Its whole CPU time so far, spread over its age: exact when it was born during
            # the interval, an average since birth otherwise.
            fresh[pid] = cpu / max(wall - born, 1e-3)
        return fresh

    def sample_now(self) -> Sample:
        """Take one sample now (the interval since the previous one), store it, return it.

        Thread-safe: the sampler thread calls this every tick; a front end may call it too
        (the CLI does, to cover the tail of a short run). Intervals stay contiguous.
        """
        with self._tick_lock:
            return self._sample_locked()

    def _sample_locked(self) -> Sample:
        # The per-core read comes first and defines the sample's time, so that the interval
        # (prev t, t] is exactly the window the core figures cover.
        t = now_ns()
        cores_now = _read_cores()
        wall = time.time()
        dt_s = max((t - self._prev_t_ns) / NS_PER_S, 1e-9)

        cores: list[float] = []
        users: list[float] = []
        systems: list[float] = []
        prev = self._prev_cores
        if len(prev) == len(cores_now):
            for a, b in zip(prev, cores_now, strict=True):
                busy = max(0.0, b.busy - a.busy)
                total = busy + max(0.0, b.idle - a.idle)
                if total <= 0.0:  # no clock tick on this core yet (very short interval)
                    cores.append(0.0)
                    users.append(0.0)
                    systems.append(0.0)
                    continue
                # min(): the counters are float seconds; a fully busy core must not read 100.0001
                cores.append(min(100.0, 100.0 * busy / total))
                users.append(min(100.0, 100.0 * max(0.0, b.user - a.user) / total))
                systems.append(min(100.0, 100.0 * max(0.0, b.system - a.system) / total))
        else:  # a core went on- or offline: start again from this read
            cores = users = systems = [0.0] * len(cores_now)
        self._prev_cores = cores_now

        with self._proc.oneshot():
            self_cpu_s = self._proc_cpu(self._proc)
            self_rss = self._proc.memory_info().rss
            threads_now = self._thread_times()
        self_cpu = 100.0 * max(0.0, self_cpu_s - self._prev_self_cpu) / dt_s
        self._prev_self_cpu = self_cpu_s

        prev_th = self._prev_threads
        threads: dict[int, float] = {}
        for tid, cpu_s in threads_now.items():
            before = prev_th.get(tid, 0.0)
            if before > cpu_s:  # a reused thread id: a new thread, all its CPU is new
                before = 0.0
            threads[tid] = 100.0 * (cpu_s - before) / dt_s
        self._prev_threads = threads_now

        fresh = self._track_workers(wall)
        workers: dict[int, WorkerSample] = {}
        for pid, tr in list(self._workers.items()):
            proc = tr.proc
            try:
                with proc.oneshot():
                    cpu_s = self._proc_cpu(proc)
                    rss = proc.memory_info().rss
                    core = proc.cpu_num() if _HAS_CPU_NUM else -1
            except _GONE:
                del self._workers[pid]
                continue
            if pid in fresh:
                pct = 100.0 * min(fresh[pid], cpu_s / dt_s)
            else:
                pct = 100.0 * max(0.0, cpu_s - tr.cpu_s) / dt_s
            tr.cpu_s = cpu_s
            workers[pid] = WorkerSample(pid, pct, rss, core)

        with self._probes_lock:
            probes = list(self._lag.items())
        lag: dict[str, float] = {}
        for name, probe in probes:
            v = probe.take()
            if v is not None:
                lag[name] = v

        gil = self._gil.take() if self._gil is not None else None
        n = len(cores)
        s = Sample(
            t_ns=t,
            interval_s=dt_s,
            cores=tuple(cores),
            cores_user=tuple(users),
            cores_system=tuple(systems),
            total=sum(cores) / n if n else 0.0,
            self_cpu=self_cpu,
            self_rss=self_rss,
            workers=workers,
            threads=threads,
            lag_ms=lag,
            gil=gil,
            gil_disabled=self._gil_off,
        )
        self._prev_t_ns = t
        self._prev_wall = wall
        self.ticks += 1
        self.latest = s
        self.store.add_sample(s)
        return s

    # -- cost ---------------------------------------------------------------------------------
    def cost(self) -> dict[str, float]:
        """What monitoring costs, measured by the threads themselves (their own CPU time).

        ``sampler_cpu_pct``: the sampler thread's CPU since it started, percent of one core;
        ``gil_probe_cpu_pct``: likewise for the GIL probe thread; tick wall times in ms.
        """
        wall = now_ns() - self._thread_started_ns if self._thread_started_ns else 0
        ticks = max(1, self.ticks)
        return {
            "hz": self.hz,
            "ticks": self.ticks,
            "sampler_cpu_pct": 100.0 * self._thread_cpu_ns / wall if wall > 0 else 0.0,
            "gil_probe_cpu_pct": self._gil.cpu_percent if self._gil is not None else 0.0,
            "tick_ms_mean": self._tick_ns_total / ticks / 1e6,
            "tick_ms_max": self._tick_ns_max / 1e6,
        }


def core_averages(samples: Iterable[Sample], start_ns: int | None = None,
                  end_ns: int | None = None) -> list[float]:
    """Per-core utilisation (0..100) over ``[start_ns, end_ns]``, from samples.

    Each sample covers ``(t_ns - interval_s, t_ns]``; it is weighted by how much of that
    interval lies inside the window (so back-to-back samples average to exactly what the
    kernel counters say over the whole span).
    """
    sums: list[float] = []
    weight = 0.0
    for s in samples:
        hi = s.t_ns
        lo = hi - int(s.interval_s * NS_PER_S)
        if start_ns is not None:
            lo = max(lo, start_ns)
        if end_ns is not None:
            hi = min(hi, end_ns)
        w = (hi - lo) / NS_PER_S
        if w <= 0:
            continue
        if not sums:
            sums = [0.0] * len(s.cores)
        if len(s.cores) != len(sums):
            continue
        for i, c in enumerate(s.cores):
            sums[i] += c * w
        weight += w
    # min(): a weighted mean of 100s can come out a rounding error above 100.
    return [min(100.0, x / weight) for x in sums] if weight > 0 else []


def run_samples(session: Any, rec: Any) -> dict[str, Any]:
    """The sampler's part of ``taskscope run --json``: per-core averages over the run and the
    samples that overlap it (``Sample.as_dict()`` each).

    If the run ended after the last sample, one more sample is taken at once so that the tail of
    the run (and all of a run shorter than one tick) is covered.
    """
    sampler = getattr(session, "sampler", None)
    end = rec.end_ns
    if sampler is not None and sampler.running:
        latest = sampler.latest
        if end is None or latest is None or latest.t_ns < end:
            sampler.sample_now()
    samples, _ = session.store.read_samples(0)
    start = rec.start_ns
    hit = [s for s in samples
           if s.t_ns > start and (end is None or s.t_ns - int(s.interval_s * NS_PER_S) < end)]
    avg = core_averages(hit, start, end)
    return {
        "cores_avg": avg,
        "cpu_total_avg": sum(avg) / len(avg) if avg else None,
        "samples": [s.as_dict() for s in hit],
    }


def measure_cost(seconds: float = 10.0, hz: float = 10.0, workers: int = 8,
                 gil_probe: bool = True) -> dict[str, float]:
    """Measure what sampling costs: ``workers`` real idle worker processes, sampled at ``hz``
    for ``seconds``; the sampler thread's own CPU time as percent of one core.

    Workers start the way the engine starts them (forkserver, else spawn) and just sleep, so
    the figure is the sampler's cost, not theirs. The benchmark (``taskscope bench``) reports it;
    the target is under 1% of one core at 10 Hz with 8 workers.
    """
    import multiprocessing as mp

    from .models.procpool import start_method
    from .store import EventStore

    check_hz(hz)
    ctx = mp.get_context(start_method())
    procs = [ctx.Process(target=time.sleep, args=(seconds + 60.0,), daemon=True,
                         name=f"taskscope-idle-worker-{i}") for i in range(workers)]
    try:
        for p in procs:
            p.start()
        pids = [p.pid for p in procs if p.pid is not None]
        store = EventStore()
        sampler = Sampler(store, lambda: pids, hz, gil_probe=gil_probe)
        sampler.start()
        try:
            time.sleep(seconds)
            out = sampler.cost()
            seen = sampler.latest.workers if sampler.latest is not None else {}
        finally:
            sampler.stop()
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.join(2.0)
    out.update(seconds=seconds, workers=workers, workers_seen=len(seen))
    return out
