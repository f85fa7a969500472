"""What monitoring costs: the sampler thread, its GIL probe, and the idle engine's monitoring.

Each measures wherever it runs, with the threads' own CPU-time clocks. The sampler's budget,
its GIL probe included (issues 3 and 17): under 1% of one core at 10 Hz with 8 workers; the
idle engine process's monitoring: under 1.2% at 10 Hz. Figures on the development VM are in :mod:`engine.sampler`'s docstring.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import psutil

from ..clock import now_ns
from ..models.procpool import start_method
from ..sampler import Sampler, check_hz
from ..session import Session
from ..store import EventStore
from .figures import Figure


def measure_cost(seconds: float = 10.0, hz: float = 10.0, workers: int = 8,
                 gil_probe: bool = True) -> dict[str, float]:
    """Measure what sampling costs: ``workers`` real idle worker processes, sampled at ``hz``
    for ``seconds``; the sampler thread's and its GIL probe thread's own CPU time, each as
    percent of one core (:meth:`~engine.sampler.Sampler.cost`).

    Workers start the way the engine starts them (forkserver, else spawn) and just sleep, so
    the figure is the sampler's cost, not theirs. The benchmark (``taskscope bench``) reports
    it; the target is under 1% of one core for the two threads together at 10 Hz with 8
    workers.
    """
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


def _thread_cpu_ns(threads: dict[str, threading.Thread | None]) -> dict[str, int]:
    """CPU time (ns) of each named thread so far (-1 if unknown): its CPU-time clock where
    there is one (nanoseconds), else psutil's per-thread times (clock ticks)."""
    out: dict[str, int] = {}
    slow: dict[str, int | None] = {}
    for name, t in threads.items():
        try:
            clock = time.pthread_getcpuclockid(t.ident)  # type: ignore[union-attr,arg-type]
            out[name] = time.clock_gettime_ns(clock)
        except (AttributeError, TypeError, OSError):
            slow[name] = getattr(t, "native_id", None)
    if slow:
        try:
            times = {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
        except (psutil.Error, NotImplementedError):  # pragma: no cover
            times = {}
        for name, i in slow.items():
            out[name] = int(times[i] * 1e9) if i in times else -1
    return out


def measure_idle_cost(seconds: float = 10.0, hz: float = 10.0) -> dict[str, float]:
    """Measure what the engine's monitoring costs while nothing runs: a real
    :class:`~engine.session.Session` sampling at ``hz``, idle for ``seconds``, its monitoring
    threads' own CPU time as percent of one core.

    ``sampler_cpu_pct`` (the sampler thread), ``gil_probe_cpu_pct`` (the GIL probe thread,
    paused while idle), ``engine_loop_cpu_pct`` (the engine loop's thread, whose only work while
    idle is the lag probe's timer), and ``total_cpu_pct``, their sum: the figure the engine
    process adds while idle. The target is 1.2% of one core at 10 Hz. The window starts after a
    second of settling (the GIL probe's start-up calibration is not part of the idle cost).
    """
    check_hz(hz)
    session = Session(warm=False, sample_hz=hz)
    try:
        sampler = session.sampler
        assert sampler is not None
        session.loop  # noqa: B018 - make sure it runs
        gil = sampler._gil
        loop_thread = session._engine_loop.thread if session._engine_loop is not None else None
        threads = {"sampler": sampler.thread, "gil_probe": gil.thread if gil else None,
                   "engine_loop": loop_thread}
        time.sleep(1.0)
        t0 = now_ns()
        before = _thread_cpu_ns(threads)
        time.sleep(seconds)
        after = _thread_cpu_ns(threads)
        wall = now_ns() - t0
        busy = sampler.busy
    finally:
        session.shutdown()
    out: dict[str, float] = {"hz": float(hz), "seconds": float(seconds), "busy": float(busy)}
    total = 0.0
    for name in threads:
        a, b = before[name], after[name]
        pct = 100.0 * (b - a) / wall if a >= 0 and b >= 0 else 0.0
        out[f"{name}_cpu_pct"] = pct
        total += pct
    out["total_cpu_pct"] = total
    return out


def sampler_cost_figure(quick: bool) -> Figure:
    """The sampler's cost at 10 Hz with 8 idle worker processes, its GIL probe included: the
    budget is under 1% of one core for the two together (issues 3 and 17). The probe polls as
    during a run (in a burst after each sample); between runs it is paused."""
    secs = 1.5 if quick else 10.0
    c = measure_cost(seconds=secs, hz=10.0, workers=8)
    total = c["sampler_cpu_pct"] + c["gil_probe_cpu_pct"]
    c["total_cpu_pct"] = total
    return Figure(
        "idle.sampler_and_probe",
        "sampler + its GIL probe CPU at 10 Hz with 8 workers (% of one core)",
        round(total, 2), "%", 1.0,
        note=f"sampler thread {c['sampler_cpu_pct']:.2f}% + GIL probe thread "
             f"{c['gil_probe_cpu_pct']:.2f}%, each on its own CPU-time clock; {c['ticks']:.0f} "
             f"ticks in {secs:g} s, tick {c['tick_ms_mean']:.2f} ms mean / "
             f"{c['tick_ms_max']:.1f} ms max, {c['workers_seen']:.0f} workers seen",
        extra=dict(c))
