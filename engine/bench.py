"""The engine's half of ``taskscope bench``: figures measured against plain Python, in one run.

Every figure is a :class:`Figure`: what was measured, the target, and whether it was met. The
baselines (raw ``asyncio.gather``, ``ThreadPoolExecutor.map``, ``ProcessPoolExecutor.map``) run
in the same process, just before the engine does the same work, so machine load affects both.
GUI figures (loop lag with the window open, paint time, idle cost, start-up) live in
:mod:`gui.bench`, which adds them to these.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from .clock import now_ns
from .events import Event, Kind
from .session import Session
from .spec import make_spec
from .store import EventStore


@dataclass
class Figure:
    """One measured figure and its target. ``ok`` is None for figures without a target."""

    key: str
    label: str
    measured: float | None
    unit: str
    target: float | None = None
    #: "max": measured must be <= target; "min": measured must be >= target.
    sense: str = "max"
    note: str = ""
    #: Structured detail for ``--json`` (p50/max beside a p99, per-case figures, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        if self.target is None or self.measured is None:
            return None
        return self.measured <= self.target if self.sense == "max" else self.measured >= self.target

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


# -- raw baselines (top level: ProcessPoolExecutor pickles them by reference) -----------------
def _noop(x: int) -> int:
    return x


def _sleep_1ms(x: int) -> int:
    time.sleep(0.001)
    return x


async def _anoop() -> None:
    return None


async def _asleep_1ms() -> None:
    await asyncio.sleep(0.001)


def _raw_asyncio(n: int, sleep_s: float) -> float:
    fn = _asleep_1ms if sleep_s else _anoop

    async def main() -> None:
        await asyncio.gather(*(fn() for _ in range(n)))

    t = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t


def _raw_threads(n: int, sleep_s: float, workers: int) -> float:
    fn = _sleep_1ms if sleep_s else _noop
    with ThreadPoolExecutor(workers) as ex:
        t = time.perf_counter()
        list(ex.map(fn, range(n)))
        return time.perf_counter() - t


def _raw_processes(n: int, sleep_s: float, workers: int) -> float:
    fn = _sleep_1ms if sleep_s else _noop
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(_noop, range(workers * 4)))  # warm: workers started and imported
        t = time.perf_counter()
        list(ex.map(fn, range(n)))
        return time.perf_counter() - t


def _engine_wall(session: Session, model: str, n: int, size_s: float,
                 workers: int | None) -> tuple[float, float]:
    """``(time, startup)`` of an engine run of ``n`` tasks.

    In-process models: the whole wall time, queued to last end (creating the tasks is part of
    the overhead). Process models: first task start to last end, because the raw baseline
    times ``map`` on a pool it warmed first; the run's pool start-up (queued to first start)
    is returned beside it and reported, not hidden.
    """
    run = session.start(make_spec(model, "sleep", n, size_s, workers))
    run.wait(600)
    rec = run.record
    assert rec.end_ns is not None
    first = min(t.start_ns for t in session.store.tasks(run.run_id) if t.start_ns)
    startup = (first - rec.start_ns) / 1e9
    if model in ("processes", "asyncio-processes"):
        return (rec.end_ns - first) / 1e9, startup
    return (rec.end_ns - rec.start_ns) / 1e9, startup


def overhead_figures(quick: bool, workers: int = 2) -> list[Figure]:
    """Engine overhead per task, no-op and 1 ms tasks: (engine time - raw time) / tasks."""
    figs: list[Figure] = []
    n_in = 2000 if quick else 10000
    n_proc = 300 if quick else 2000
    n_ms = 200 if quick else 1000
    rounds = 2 if quick else 4
    with Session(sample_hz=None) as s:
        _engine_wall(s, "processes", workers, 0.0, workers)  # start the forkserver
        for size_s, tag, n_a, n_p in ((0.0, "no-op", n_in, n_proc), (0.001, "1 ms", n_ms, n_ms)):
            cases: list[tuple[str, Callable[[], float], str, int, int | None, float]] = [
                ("asyncio", lambda n=n_a, sz=size_s: _raw_asyncio(n, sz), "asyncio.gather", n_a, None, 20),
                ("threads", lambda n=n_a, sz=size_s: _raw_threads(n, sz, workers),
                 "ThreadPoolExecutor.map", n_a, workers, 20),
                ("processes", lambda n=n_p, sz=size_s: _raw_processes(n, sz, workers),
                 "ProcessPoolExecutor.map", n_p, workers, 100),
            ]
            for model, raw_fn, raw_name, n, w, target in cases:
                # Raw and engine alternate over several rounds (raw first, then engine first)
                # and the median difference counts: on a machine other work is loading, one
                # pair alone swings by tens of µs either way.
                pers: list[float] = []
                raws: list[float] = []
                engs: list[float] = []
                startup = 0.0
                for k in range(rounds):
                    if k % 2:
                        eng, startup = _engine_wall(s, model, n, size_s, w)
                        raw = raw_fn()
                    else:
                        raw = raw_fn()
                        eng, startup = _engine_wall(s, model, n, size_s, w)
                    pers.append((eng - raw) / n * 1e6)
                    raws.append(raw / n * 1e6)
                    engs.append(eng / n * 1e6)
                per = statistics.median(pers)
                note = (f"median of {rounds} alternating rounds (each {min(pers):.1f} to "
                        f"{max(pers):.1f}); engine {statistics.median(engs):.1f} µs/task, raw "
                        f"{statistics.median(raws):.1f} µs/task")
                if model == "processes":
                    note += f"; starting the run's {w} workers took {startup * 1e3:.0f} ms"
                figs.append(Figure(
                    f"overhead.{model}.{tag.replace(' ', '')}",
                    f"overhead per task, {model}, {tag} ({n} tasks vs {raw_name})",
                    round(per, 1), "µs", target, note=note,
                    extra={"rounds_us": [round(x, 2) for x in pers]},
                ))
    return figs


def pipeline_figure(quick: bool, seconds: float | None = None,
                    session: Session | None = None) -> Figure:
    """Events per second from worker processes into the store (the ``events`` workload)."""
    secs = seconds or (0.5 if quick else 2.0)
    own = session is None
    s = session or Session(sample_hz=None)
    try:
        before = s.store.event_count
        run = s.start(make_spec("processes", "events", 2, secs, 2))
        run.wait(60)
        n = s.store.event_count - before
        rec = run.record
        wall = rec.wall_s or secs
        # Count from the first task start: pool start-up is not pipeline time.
        starts = [t.start_ns for t in s.store.tasks(run.run_id) if t.start_ns]
        span = ((rec.end_ns or 0) - min(starts)) / 1e9 if starts else wall
        rate = n / span if span > 0 else 0.0
    finally:
        if own:
            s.shutdown()
    return Figure("pipeline.events_per_s", "events/s from 2 worker processes into the store",
                  round(rate), "ev/s", 200_000, sense="min", note=f"{n:,} events in {span:.2f} s")


#: Modules a TaskScope worker process must never have imported (see :func:`worker_qt_check`).
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "qasync")


def worker_qt_check() -> None:
    """Run as a custom-workload task in a worker process: fail if Qt was imported there.

    A worker whose ``__main__`` pulls in Qt takes about ten times as long to start (see
    DESIGN.md), so ``taskscope bench`` checks it: the task finishes when the worker is Qt-free
    and fails naming the modules when it is not.
    """
    loaded = [m for m in QT_MODULES if m in sys.modules]
    if loaded:
        raise RuntimeError(f"Qt imported in a worker process: {', '.join(loaded)}")


def pipeline_rate(session: Session, run_id: int, events: int) -> tuple[float, float]:
    """``(events/s, span s)`` of a finished ``events`` run that added ``events`` to the
    store, counted from its first task start (pool start-up is not pipeline time)."""
    rec = session.store.run(run_id)
    if rec is None:
        raise KeyError(f"no run {run_id} in the store")
    starts = [t.start_ns for t in session.store.tasks(run_id) if t.start_ns]
    span = ((rec.end_ns or 0) - min(starts)) / 1e9 if starts else (rec.wall_s or 0.0)
    return (events / span if span > 0 else 0.0), span


def cancel_latency_figures(quick: bool) -> list[Figure]:
    """Time from ``cancel_task`` to the task's terminal event, per model (cooperative), and
    for force cancel of process tasks."""
    reps = 6 if quick else 20
    figs: list[Figure] = []
    with Session(sample_hz=None) as s:
        for model, force in (("sequential", False), ("asyncio", False), ("threads", False),
                             ("processes", False), ("asyncio-processes", False),
                             ("processes", True)):
            lat: list[float] = []
            workers = None if model in ("sequential", "asyncio") else 2
            for _ in range(reps):
                run = s.start(make_spec(model, "cpu", 1, "30s", workers))
                tid = run.first_task_id
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    rec = s.store.task(tid)
                    if rec is not None and rec.start_ns is not None:
                        break
                    time.sleep(0.002)
                time.sleep(0.02)  # let it get into its stride
                t0 = now_ns()
                s.cancel_task(tid, force=force)
                run.wait(20)
                rec = s.store.task(tid)
                if rec is not None and rec.end_ns is not None and rec.state.value == "cancelled":
                    lat.append((rec.end_ns - t0) / 1e6)
            target = 500 if force else 50
            name = f"{model} (force)" if force else model
            if lat:
                lat.sort()
                p50 = statistics.median(lat)
                p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
            else:
                p50 = p99 = None
            figs.append(Figure(f"cancel.{model}{'.force' if force else ''}.p99",
                               f"cancel latency p99, {name}", _r(p99), "ms", target,
                               note=f"p50 {_r(p50)} ms over {len(lat)} cancels"))
    return figs


def memory_figure() -> Figure:
    """Bytes held per 100k retained events in the store (tracemalloc, realistic events)."""
    store = EventStore(max_events=200_000)
    store.add_run(1, None, 1, 100, now_ns())
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t = now_ns()
    batch: list[Event] = []
    for i in range(100_000):
        batch.append(Event(1, 1 + i % 100, Kind.PROGRESS, t + i, 4242, 4243, "run1-thread_0",
                           "", i % 2, i / 100_000))
        if len(batch) == 1000:
            store.append(batch)
            batch = []
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return Figure("memory.per_100k_events", "memory per 100k retained events",
                  round(used / 2**20, 1), "MiB", 32,
                  note=f"{used / 100_000:.0f} bytes per event; the store keeps at most "
                       f"{EventStore().max_events:,} events")


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def engine_figures(quick: bool, progress: Callable[[str], None] | None = None) -> list[Figure]:
    say = progress or (lambda _m: None)
    figs: list[Figure] = []
    say("engine overhead per task")
    figs += overhead_figures(quick)
    say("event pipeline")
    figs.append(pipeline_figure(quick))
    say("cancel latency")
    figs += cancel_latency_figures(quick)
    say("memory")
    figs.append(memory_figure())
    return figs


def format_table(figs: list[Figure]) -> str:
    rows = [("figure", "measured", "target", "met", "note")]
    for f in figs:
        meas = "n/a" if f.measured is None else f"{f.measured:,g} {f.unit}"
        if f.target is None:
            tgt = "(reported)"
        else:
            tgt = f"{'≤' if f.sense == 'max' else '≥'} {f.target:,g} {f.unit}"
        met = {True: "yes", False: "NO", None: "-"}[f.ok]
        rows.append((f.label, meas, tgt, met, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for i, r in enumerate(rows):
        out.append("  ".join(r[j].ljust(widths[j]) for j in range(4)) + "  " + r[4])
        if i == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(out)
