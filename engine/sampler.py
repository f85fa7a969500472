"""The live system sampler: per-core CPU, our process, its threads, our workers, loop lag, GIL.

One :class:`Sampler` owns every psutil call, in one thread of its own, and puts one
:class:`~engine.samples.Sample` per tick into the session's store. Everything CPU-related is a
*difference between two reads of kernel counters* taken by this sampler, never psutil's
``cpu_percent()``: that keeps per-caller state (so a second reader would disturb the first)
and says 0.0 or 100.0 on its first call. Here the very first sample is already a true
measurement over [construction, first tick].

What is read how often:

* every tick: per-core CPU, this process's CPU, each of its threads' CPU, each worker's and
  each own process's CPU (and the core a worker last ran on), loop lag, the GIL probe; on
  Linux also each worker's and own process's resident memory (the same stat line holds it);
* once a second: this process's resident memory, and elsewhere every process's. The samples
  in between repeat the last read; CPU figures are never reused, each covers exactly its
  sample's interval.

Portable: psutil everywhere, so it works on macOS and Windows too. On Linux the same kernel
counters are read from /proc files the sampler keeps open (one ``pread`` each, instead of
psutil's open-stat-seek-read-close per figure; see :class:`~engine.counters.KeptFiles`), at most 128 of them (fewer
under a low open-files limit), psutil beyond that; this process's own CPU comes from
``getrusage``, and each of its threads' from the thread's CPU-time clock (``clock_gettime``,
nanoseconds; the task directory is listed again only when the number of threads changes or
one ends). Where the OS cannot tell something (the core a process last ran on), the sample
says -1.

Idle and busy (:meth:`Sampler.set_busy`): the session says when a run is active. Samples keep
coming at the same rate with the same figures; only the probes idle between runs: the GIL probe
pauses (``Sample.gil`` is None then: not measured, never a made-up 0) and the engine loop's lag
probe fires every 0.25 s instead of every 20 ms.

Cost, measured on the 2-core development VM (other test suites loading it at times):

* a tick at 10 Hz with 8 idle workers: 0.36-0.57% of one core (it was 0.85-0.97% through
  psutil alone); :func:`engine.bench.sampler_cost.measure_cost`. A tick is about 110 us of
  CPU when run back to back but 350-450 us at 10 Hz, each a first touch after 100 ms asleep;
* the GIL probe thread while it runs: 0.21-0.40% of one core (20 ms bursts of 2 ms sleeps,
  most of it the kernel's 100 wake-ups a second: a bare Python loop of the same sleeps costs
  0.28%); paused between runs: 0. The two together, 8 alternating 5 s measures on a quiet
  machine: 0.61-0.93%, the host's state moving it more than the code does;
* the engine process's monitoring while idle (sampler thread + GIL probe + the engine loop's
  lag probe): 0.35-0.46% of one core at 10 Hz (it was 1.8-2.0%);
  :func:`engine.bench.sampler_cost.measure_idle_cost`.

Both functions measure wherever they run. Averaging samples over a run (``taskscope run
--json``) is :mod:`engine.samples`' job.

Why one piece of about 700 lines: the readers that hold no state are in
:mod:`engine.counters`; what is left is one object whose state (the previous reading of every
counter, the kept files, the thread clocks, the processes tracked, the probes) one thread
owns and reads every tick. Split across modules, each tick's differences would be computed
from state that another module keeps, which is what the single owner exists to prevent.
"""
from __future__ import annotations

import asyncio
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from . import counters
from .clock import NS_PER_S, now_ns
from .counters import (
    _GONE,
    _HAS_CPU_NUM,
    _PID_STAT_BYTES,
    _PROC_STAT_BYTES,
    RSS_REFRESH_S,
    KeptFiles,
    _Core,
    _parse_pid_stat,
    _parse_proc_stat,
    _read_cores,
    _self_cpu_reader,
    _thread_clock,
)
from .errors import SpecError
from .probes import ExternalLag, GilProbe, LagProbe, ProbeTimer, gil_disabled
from .samples import Sample, WorkerSample

__all__ = ["Sampler", "check_hz"]

MIN_HZ = 1.0
MAX_HZ = 50.0

def check_hz(hz: Any) -> float:
    """Validate a sampling rate (samples per second, 1..50) and return it as a float.

    Raises :class:`~engine.spec.SpecError` (a ValueError) naming the field ``hz``.
    """
    if isinstance(hz, bool) or not isinstance(hz, int | float) or not math.isfinite(hz):
        raise SpecError("hz", f"expected a number of samples per second, got {hz!r}")
    if not MIN_HZ <= hz <= MAX_HZ:
        raise SpecError("hz", f"expected {MIN_HZ:g} to {MAX_HZ:g} samples per second, got {hz!r}")
    return float(hz)


class _Tracked:
    """A process we keep a live ``psutil.Process`` for (so its counters can be differenced
    tick to tick, and psutil can tell if the pid was reused), with its last RSS read, and on
    Linux its /proc/<pid>/stat kept open (``fd``; -1: none)."""

    __slots__ = ("cpu_s", "fd", "proc", "rss")

    def __init__(self, proc: psutil.Process, cpu_s: float, rss: int, fd: int = -1) -> None:
        self.proc = proc
        self.cpu_s = cpu_s
        self.rss = rss
        self.fd = fd


class Sampler:
    """Samples the machine, this process and the engine's workers ``hz`` times a second.

    ``worker_pids`` is called once per tick from the sampler thread; it returns the pids of the
    worker processes the engine started (the engine tracks them; we never guess from
    ``children()``, which would also pick up the forkserver and resource tracker).

    ``own_pids`` (optional) is called once per tick too: the pids of other processes that are
    part of TaskScope itself (the window's process, when the engine runs in a process of its
    own). Their CPU (differenced per pid, like a worker's) and resident memory are added into
    ``Sample.self_cpu`` and ``Sample.self_rss``. This process's own pid is skipped there (it is
    always counted, once). A pid that goes away drops out from the next sample; its CPU after
    the last read before it went is not seen.

    ``remote_workers`` (optional), once per tick: workers on other machines (a Dask cluster's),
    address -> a :class:`WorkerSample` of their own figures as their cluster reports them
    (psutil cannot read another machine). They go into ``Sample.remote`` as given.

    Lag probes can be added for any asyncio loop (:meth:`add_loop_probe`), and lag sources for
    loops in other processes (:meth:`add_external_lag`), from any thread, at any time.

    :meth:`set_busy` tells the sampler whether a run is active. Samples come at ``hz`` either
    way, with the same CPU and memory figures; while idle the GIL probe is paused (samples say
    ``gil=None``: not measured) and lag probes added with an ``idle_interval_s`` fire that much
    less often. A new Sampler is busy, measuring everything, until told otherwise.
    """

    def __init__(self, store: Any, worker_pids: Callable[[], Iterable[int]],
                 hz: float = 10.0, *, gil_probe: bool = True,
                 own_pids: Callable[[], Iterable[int]] | None = None,
                 remote_workers: Callable[[], dict[str, WorkerSample]] | None = None) -> None:
        self.hz = check_hz(hz)
        self.period_ns = int(NS_PER_S / self.hz)
        self.store = store
        self._worker_pids = worker_pids
        self._own_pids = own_pids
        self._remote_workers = remote_workers
        self._tick_lock = threading.Lock()
        self._probes_lock = threading.Lock()
        self._busy_lock = threading.Lock()  # taken before _probes_lock, never after
        self._busy = True
        self._lag: dict[str, LagProbe | ExternalLag] = {}
        self._lag_polls: dict[str, Callable[[], None]] = {}  # see add_external_lag
        # One burst of GIL polling per sample (see GilProbe): every sample is measured, for a
        # fifth of the GIL hand-overs a probe polling all the time takes from running work.
        every = 1.0 / self.hz
        self._gil = GilProbe(burst_s=min(0.02, every / 2), every_s=every) if gil_probe else None
        self._gil_off = gil_disabled()
        self._stop = threading.Event()
        # The sampler thread sleeps between ticks by acquiring this (held) lock with a
        # timeout; stop() releases it. A plain lock wait is one C call: Event.wait builds a
        # Condition waiter in Python each time, a tenth of an idle tick's cost.
        self._sleep_lock = threading.Lock()
        self._sleep_lock.acquire()
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

        self._me = os.getpid()
        self._proc = psutil.Process()
        self._self_cpu = _self_cpu_reader()
        # Linux: /proc/stat, our task directory and each process's stat file (each thread's
        # too, without THREAD_CLOCKS) are kept open (see KeptFiles); they are closed when the
        # sampler stops, or with it.
        self._files = KeptFiles(counters.fd_budget() if counters.FAST_PROC else 0)
        weakref.finalize(self, self._files.close_all).atexit = False
        self._ncpu = os.cpu_count() or 1
        self._stat_fd = self._files.open("/proc/stat")
        self._task_dir = self._files.open(f"/proc/{self._me}/task")
        self._thread_fds: dict[int, int] = {}
        # With THREAD_CLOCKS: {tid: its CPU-time clock} of the threads seen, listed again only
        # when their number changes or one of them ends (see _thread_times).
        self._thread_clocks: dict[int, int] | None = {} if counters.THREAD_CLOCKS else None
        self._prev_threads: dict[int, float] = {}
        # RSS is re-read on the first tick at least RSS_REFRESH_S after the last read (half a
        # period early is on time, so 10 Hz reads it every 10th tick, not every 11th).
        self._rss_every_ns = max(1, int(RSS_REFRESH_S * NS_PER_S) - self.period_ns // 2)
        # Prime every counter now (as glances does): CPU figures are differences between two
        # reads, so reading once here makes the very first tick a real measurement instead of
        # psutil's meaningless first 0.0/100.0.
        self._prev_t_ns = now_ns()
        self._prev_cores = self._cores()
        self._prev_self_cpu = self._self_cpu()
        self._self_rss = self._proc.memory_info().rss
        self._rss_t_ns = self._prev_t_ns
        self._prev_threads = self._thread_times()
        self._workers: dict[int, _Tracked] = {}
        self._own: dict[int, _Tracked] = {}
        self._prev_wall = time.time()
        self._track(self._workers, self._worker_pids, self._prev_wall)
        if own_pids is not None:
            self._track(self._own, own_pids, self._prev_wall)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the sampler thread (and the GIL probe). Idempotent; a stopped sampler cannot
        restart."""
        if self._stopped:
            raise RuntimeError("a stopped Sampler cannot be restarted; make a new one")
        if self.thread is not None:
            return
        if self._gil is not None:
            with self._busy_lock:
                if not self._busy:  # calibrate now, then wait for the first run
                    self._gil.pause()
            self._gil.start()
        self.thread = threading.Thread(target=self._main, name="taskscope-sampler", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the thread, the GIL probe and every lag probe; joins within ``timeout``."""
        with self._probes_lock:
            wake = not self._stopped
            self._stopped = True
            probes = list(self._lag.values())
            self._lag.clear()
            self._lag_polls.clear()
        self._stop.set()
        if wake:
            self._sleep_lock.release()
        for p in probes:
            p.stop()
        deadline = time.monotonic() + timeout
        if self._gil is not None:
            self._gil.stop(timeout)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(max(0.0, deadline - time.monotonic()))
        # Close the kept /proc files; a thread still in a tick closes them itself as it ends
        # (see _main).
        if (self.thread is None or not self.thread.is_alive()) and \
                self._tick_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                self._release_files()
            finally:
                self._tick_lock.release()

    def _release_files(self) -> None:
        """Close every kept /proc descriptor and forget them (tick lock held): later reads,
        if any (a sample_now() after stop()), go the slow way."""
        self._stat_fd = self._task_dir = -1
        self._thread_fds.clear()
        self._thread_clocks = None
        for tr in (*self._workers.values(), *self._own.values()):
            tr.fd = -1
        self._files.close_all()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def counts_own_pids(self) -> bool:
        """True when ``Sample.self_cpu`` and ``self_rss`` also count other processes of
        TaskScope (``own_pids``: the window's), not this process alone."""
        return self._own_pids is not None

    def set_busy(self, busy: bool) -> None:
        """Say whether a run is active (the session calls this when its first run starts and
        when its last one ends). Thread-safe, returns at once, idempotent.

        Idle: the GIL probe pauses (``Sample.gil`` is None, "not measured"; nothing runs that
        could hold the GIL but our own idle threads) and lag probes that have an
        ``idle_interval_s`` use it. Busy: everything measures at full rate again, from now.
        CPU, memory and per-core figures are sampled the same way in both states.
        """
        busy = bool(busy)
        with self._busy_lock:
            with self._probes_lock:
                if busy == self._busy:
                    return
                self._busy = busy
                probes = list(self._lag.values())
            if self._gil is not None:
                if busy:
                    self._gil.resume()
                else:
                    self._gil.pause()
            for p in probes:
                p.set_idle(not busy)

    @property
    def busy(self) -> bool:
        """False between :meth:`set_busy(False) <set_busy>` and the next ``set_busy(True)``."""
        return self._busy

    def _main(self) -> None:
        self._thread_started_ns = now_ns()
        cpu0 = time.thread_time_ns()
        period = self.period_ns
        next_t = now_ns() + period
        sleep = self._sleep_lock.acquire
        try:
            while not sleep(True, max(0.0, (next_t - now_ns()) / NS_PER_S)):
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
        finally:
            with self._tick_lock:
                self._release_files()

    # -- lag probes -------------------------------------------------------------------------
    def _register(self, name: str, probe: LagProbe | ExternalLag,
                  poll: Callable[[], None] | None = None) -> None:
        """Put ``probe`` under ``name`` (stopping the one it replaces), in the current
        busy/idle state. Raises RuntimeError if this sampler was stopped."""
        with self._busy_lock:
            with self._probes_lock:
                if self._stopped:
                    raise RuntimeError("this Sampler was stopped")
                old = self._lag.pop(name, None)
                self._lag[name] = probe
                self._lag_polls.pop(name, None)
                if poll is not None:
                    self._lag_polls[name] = poll
                idle = not self._busy
            probe.set_idle(idle)
        if old is not None:
            old.stop()

    @staticmethod
    def _check_name(name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")

    def add_loop_probe(self, name: str, loop: asyncio.AbstractEventLoop,
                       interval_s: float = 0.02, *,
                       idle_interval_s: float | None = None,
                       timer: ProbeTimer | None = None) -> LagProbe:
        """Measure how late ``loop`` runs a timer every ``interval_s``; reported as
        ``Sample.lag_ms[name]``. Replaces an existing probe or lag source of that name.
        Thread-safe.

        ``idle_interval_s``: the timer's interval while this sampler is idle (see
        :meth:`set_busy`); None keeps ``interval_s`` always. For a loop that runs nothing
        between runs (the engine's), this saves most of the probe's cost then.
        ``timer``: the probe's timer on that loop (see :class:`~engine.probes.LagProbe`).

        Raises RuntimeError if ``loop`` is closed or this sampler was stopped (a probe added
        then would keep a timer on the loop that nobody reads).
        """
        self._check_name(name)
        probe = LagProbe(loop, interval_s, idle_interval_s=idle_interval_s, timer=timer)
        self._register(name, probe)
        try:
            probe.start()  # a probe stopped meanwhile (by stop()) never arms: see LagProbe._arm
        except RuntimeError:  # the loop is closed
            with self._probes_lock:
                if self._lag.get(name) is probe:
                    del self._lag[name]
            raise
        return probe

    def add_external_lag(self, name: str,
                         poll: Callable[[], None] | None = None) -> ExternalLag:
        """A lag source for a loop that another process measures (a front end's), reported as
        ``Sample.lag_ms[name]`` and by :meth:`lag_stats` exactly as a probe's. Whoever receives
        that process's measurements calls ``.report(lateness_ms)`` on the returned object.
        Replaces an existing probe or source of that name; :meth:`remove_loop_probe` removes
        it. Thread-safe. Raises RuntimeError if this sampler was stopped.

        A sample has ``lag_ms[name]`` only if something was reported over its interval: the
        worst report then. ``poll`` (optional) is called in the sampling thread right before
        each sample reads the source: it should report whatever has already arrived (read a
        pipe without waiting), so that a report counts in the sample whose interval it
        arrived in even when its receiver is asleep. It must not block; an exception it
        raises is counted in :attr:`errors` and the sample goes on.
        """
        self._check_name(name)
        if poll is not None and not callable(poll):
            raise TypeError(f"poll: expected a callable, got {poll!r}")
        source = ExternalLag()
        self._register(name, source, poll)
        return source

    def remove_loop_probe(self, name: str) -> bool:
        """Stop and forget the probe (or external lag source) ``name``; False if there was
        none."""
        with self._probes_lock:
            probe = self._lag.pop(name, None)
            self._lag_polls.pop(name, None)
        if probe is None:
            return False
        probe.stop()
        return True

    def lag_stats(self, name: str, window_s: float = 10.0) -> dict[str, float] | None:
        """p50/p99/max lateness (ms) of loop ``name`` over the last ``window_s``; None if no
        such probe or source."""
        with self._probes_lock:
            probe = self._lag.get(name)
        return None if probe is None else probe.stats(window_s)

    # -- sampling ---------------------------------------------------------------------------------
    @staticmethod
    def _proc_cpu(proc: psutil.Process) -> float:
        ct = proc.cpu_times()
        return ct.user + ct.system

    def _cores(self) -> list[_Core]:
        if self._stat_fd >= 0:
            try:
                cores = _parse_proc_stat(os.pread(self._stat_fd, _PROC_STAT_BYTES, 0),
                                         self._ncpu)
            except (OSError, ValueError, IndexError):
                cores = None
            if cores is not None:
                return cores
        return _read_cores()

    def _thread_times(self) -> dict[int, float]:
        """{native thread id: user+system CPU seconds} for every thread of this process."""
        if self._task_dir < 0:
            try:
                return {t.id: t.user_time + t.system_time for t in self._proc.threads()}
            except (psutil.AccessDenied, NotImplementedError):
                return {}
        if self._thread_clocks is not None:
            return self._thread_clock_times(self._thread_clocks)
        try:
            names = os.listdir(self._task_dir)
        except OSError:  # pragma: no cover - /proc went away under us
            return {}
        fds = self._thread_fds
        files = self._files
        out: dict[int, float] = {}
        for name in names:
            tid = int(name)
            fd = fds.get(tid, -1)
            data = b""
            if fd >= 0:
                try:
                    data = os.pread(fd, _PID_STAT_BYTES, 0)
                except OSError:  # that thread ended; a new one has its id now
                    files.close(fd)
                    del fds[tid]
                    fd = -1
                    self._prev_threads.pop(tid, None)  # all its CPU is new
            if not data:
                path = f"/proc/{self._me}/task/{name}/stat"
                fd = files.open(path)
                try:
                    if fd >= 0:
                        fds[tid] = fd
                        data = os.pread(fd, _PID_STAT_BYTES, 0)
                    else:  # over budget: the slow way
                        with open(path, "rb", buffering=0) as f:
                            data = f.read(_PID_STAT_BYTES)
                except OSError:  # it ended since the listing
                    continue
            out[tid] = _parse_pid_stat(data)[0]
        for tid in fds.keys() - out.keys():
            files.close(fds.pop(tid))
        return out

    def _thread_clock_times(self, clocks: dict[int, int]) -> dict[int, float]:
        """:meth:`_thread_times` through the threads' CPU-time clocks (THREAD_CLOCKS). The
        task directory is listed only when the number of threads (its link count, 2 + the
        threads) differs from the threads read, or one of them ended: a thread that starts
        is seen in the sample of the interval it started in, as with a listing every tick."""
        clock = time.clock_gettime_ns
        out: dict[int, float] = {}
        ended = False
        for tid, cid in clocks.items():
            try:
                out[tid] = clock(cid) / NS_PER_S
            except OSError:  # it ended (EINVAL: no such thread in this process)
                ended = True
        try:
            n = os.fstat(self._task_dir).st_nlink - 2
        except OSError:  # pragma: no cover - /proc went away under us
            return out
        if not ended and n == len(out):
            return out
        try:
            listed = {int(name) for name in os.listdir(self._task_dir)}
        except OSError:  # pragma: no cover
            return out
        for tid in clocks.keys() - listed:
            del clocks[tid]
            out.pop(tid, None)
        for tid in listed - out.keys():
            cid = _thread_clock(tid)
            try:
                out[tid] = clock(cid) / NS_PER_S
            except OSError:  # it ended since the listing
                clocks.pop(tid, None)
                continue
            clocks[tid] = cid
        return out

    def _track(self, table: dict[int, _Tracked], pids: Callable[[], Iterable[int]],
               wall: float) -> dict[int, float]:
        """Refresh the set of processes in ``table`` from ``pids()``; return ``{pid: cpu
        share}`` to attribute to this interval for processes seen for the first time."""
        try:
            wanted = set(pids())
        except Exception:  # the engine is shutting down: keep what we had
            wanted = set(table)
        wanted.discard(self._me)
        for pid in list(table):
            if pid not in wanted:
                self._files.close(table.pop(pid).fd)
        fresh: dict[int, float] = {}
        for pid in wanted - table.keys():
            fd = -1
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    cpu = self._proc_cpu(proc)
                    born = proc.create_time()
                rss = proc.memory_info().rss
                fd = self._files.open(f"/proc/{pid}/stat")
                if fd >= 0:  # the kept file from now on (it pins this very process)
                    cpu, _, rss = _parse_pid_stat(os.pread(fd, _PID_STAT_BYTES, 0))
            except (*_GONE, OSError):
                self._files.close(fd)
                continue
            except (TypeError, ValueError):  # not a pid at all: nothing to track
                self._files.close(fd)
                continue
            table[pid] = _Tracked(proc, cpu, rss, fd)
            # Its whole CPU time so far, spread over its age: exact when it was born during
            # the interval, an average since birth otherwise.
            fresh[pid] = cpu / max(wall - born, 1e-3)
        return fresh

    def _read(self, table: dict[int, _Tracked], fresh: dict[int, float], dt_s: float,
              rss_now: bool, core: bool) -> dict[int, tuple[float, int, int]]:
        """Read every process in ``table``: ``{pid: (cpu % of one core over the interval,
        rss, core)}``; processes that went away are dropped from ``table``. A kept stat file
        gives all three in one read, every tick; through psutil, RSS is read only when
        ``rss_now`` (else the last read is repeated). The core only when ``core``."""
        out: dict[int, tuple[float, int, int]] = {}
        for pid, tr in list(table.items()):
            proc = tr.proc
            c = -1
            try:
                if tr.fd >= 0:
                    cpu_s, c, tr.rss = _parse_pid_stat(os.pread(tr.fd, _PID_STAT_BYTES, 0))
                else:
                    if core and _HAS_CPU_NUM:
                        with proc.oneshot():  # one /proc/<pid>/stat read for both
                            cpu_s = self._proc_cpu(proc)
                            c = proc.cpu_num()
                    else:
                        cpu_s = self._proc_cpu(proc)
                    if rss_now and pid not in fresh:  # fresh ones were read just now
                        tr.rss = proc.memory_info().rss
            except (*_GONE, OSError):  # it ended (ESRCH from a kept file: reaped)
                self._files.close(tr.fd)
                del table[pid]
                continue
            if not core:
                c = -1
            if pid in fresh:
                pct = 100.0 * min(fresh[pid], cpu_s / dt_s)
            else:
                pct = 100.0 * max(0.0, cpu_s - tr.cpu_s) / dt_s
            tr.cpu_s = cpu_s
            out[pid] = (pct, tr.rss, c)
        return out

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
        cores_now = self._cores()
        wall = time.time()
        dt_s = max((t - self._prev_t_ns) / NS_PER_S, 1e-9)
        rss_now = t - self._rss_t_ns >= self._rss_every_ns
        if rss_now:
            self._rss_t_ns = t

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

        self_cpu_s = self._self_cpu()
        if rss_now:
            try:
                self._self_rss = self._proc.memory_info().rss
            except (psutil.Error, OSError):  # keep the last read
                pass
        threads_now = self._thread_times()
        self_cpu = 100.0 * max(0.0, self_cpu_s - self._prev_self_cpu) / dt_s
        self._prev_self_cpu = self_cpu_s
        self_rss = self._self_rss
        if self._own_pids is not None:
            fresh_own = self._track(self._own, self._own_pids, wall)
            for pct, rss, _ in self._read(self._own, fresh_own, dt_s, rss_now, False).values():
                self_cpu += pct
                self_rss += rss

        prev_th = self._prev_threads
        threads: dict[int, float] = {}
        for tid, cpu_s in threads_now.items():
            before = prev_th.get(tid, 0.0)
            if before > cpu_s:  # a reused thread id: a new thread, all its CPU is new
                before = 0.0
            threads[tid] = 100.0 * (cpu_s - before) / dt_s
        self._prev_threads = threads_now

        fresh = self._track(self._workers, self._worker_pids, wall)
        workers = {pid: WorkerSample(pid, pct, rss, core) for pid, (pct, rss, core)
                   in self._read(self._workers, fresh, dt_s, rss_now, True).items()}

        with self._probes_lock:
            probes = list(self._lag.items())
            polls = dict(self._lag_polls) if self._lag_polls else None
        lag: dict[str, float] = {}
        for name, probe in probes:
            if polls is not None and name in polls:
                try:
                    polls[name]()
                except Exception as e:  # its reports stay late; the sample goes on
                    self.errors += 1
                    self.last_error = e
            v = probe.take()
            if v is not None:
                lag[name] = v

        remote: dict[str, WorkerSample] = {}
        if self._remote_workers is not None:
            try:
                remote = self._remote_workers()
            except Exception as e:  # the engine is shutting down: none this time
                self.errors += 1
                self.last_error = e
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
            remote=remote,
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
