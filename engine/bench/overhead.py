"""Engine overhead per task: the engine against plain Python doing the same work, same process.

**Monitoring on, as users run it.** The figures come from a :class:`~engine.session.Session`
with its sampler at 10 Hz, its GIL probe and the engine loop's lag probe: the session
``taskscope run`` makes. Each case has a second, labelled row, *bare*: the same with no sampler
and no probes (``Session(sample_hz=None)``), which no user runs; the two rows' difference is
what monitoring costs a task. The two sessions never live at once (one's sampler would tax the
other's runs); the raw baselines run beside the idle session of their phase, so the monitored
phase's raw figures pay its idle monitoring too (0.35-0.46% of a core measured:
:func:`~engine.bench.sampler_cost.measure_idle_cost`), a bias in the engine's favour that small.

**One clock for both sides.** Raw and engine alike are timed on this process's monotonic clock,
from submission to the moment the caller can read the last result: raw ``asyncio.run`` of a
``gather``, ``list(executor.map(...))``; the engine from just before ``Session.start`` to the
moment the last task's terminal event reached the store (:attr:`engine.session.Run.ended_ns`).
No side stops at a worker's own timestamp, which would leave out handing the last result back
(that gave the engine overheads below zero: -46.8 µs per process task). Noise still goes both
ways on a loaded machine, so a figure can come out a little below zero: the median of
alternating rounds damps it, and the note gives the rounds' spread.

**Process models.** The raw pool is warmed before it is timed (its workers started and
imported); the engine's run starts a pool of its own. So the engine is timed from the moment
all its workers were ready (:func:`~engine.bench.pool.workers_ready`) and counts only the work
done after it (a task that straddles that moment counts for its share after it): the pool's
start-up is its own figure (``startup.pool.processes``), neither charged to the tasks nor
hidden. The raw process pool forks: :mod:`gui.bench` measures this before Qt starts.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

from ..clock import now_ns
from ..models import model_info
from ..session import Session
from ..spec import make_spec
from ..store import TaskRecord
from .figures import Figure
from .pool import workers_ready


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
    asyncio.run(main())  # a plain script's way: its loop's creation and closing included
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


# -- the engine's side ----------------------------------------------------------------------
@dataclass
class EngineTime:
    """One engine run, timed on the caller's clock."""

    seconds: float
    #: Tasks the time covers: all of them, or for a process model those after its workers
    #: were ready (fractional: a task that straddles that moment counts for its share).
    tasks: float
    #: Submission to workers ready (process models), else None.
    startup_s: float | None = None
    #: How the ready moment was known (see :func:`~engine.bench.pool.workers_ready`).
    ready_from: str = ""


def _share_after(t: TaskRecord, ready_ns: int) -> float:
    """The share of task ``t``'s run that came after ``ready_ns`` (0..1)."""
    if t.start_ns is None or t.end_ns is None or t.end_ns <= ready_ns:
        return 0.0
    if t.start_ns >= ready_ns:
        return 1.0
    return (t.end_ns - ready_ns) / (t.end_ns - t.start_ns)


def engine_time(session: Session, model: str, n: int, size_s: float,
                workers: int | None) -> EngineTime:
    """Run ``n`` sleep tasks of ``size_s`` and time them (see the module docstring)."""
    t0 = now_ns()
    run = session.start(make_spec(model, "sleep", n, size_s, workers))
    if not run.wait(600) or run.ended_ns is None:
        raise RuntimeError(f"the {model} run did not end within 600 s")
    end = run.ended_ns
    if not model_info(model).isolated:
        return EngineTime((end - t0) / 1e9, float(n))
    tasks = session.store.tasks(run.run_id)
    ready, how = workers_ready(run.record, tasks)
    counted = sum(_share_after(t, ready) for t in tasks)
    return EngineTime((end - ready) / 1e9, counted, (ready - t0) / 1e9, how)


# -- the figures --------------------------------------------------------------------------------
def _phase(session: Session, quick: bool, workers: int, bare: bool) -> list[Figure]:
    """Every case, raw and engine alternating, in one session (monitored or bare)."""
    figs: list[Figure] = []
    n_in = 2000 if quick else 10000
    n_proc = 300 if quick else 2000
    n_ms = 200 if quick else 1000
    # A 1 ms case's run is short (1000 asyncio tasks: about 40 ms), so one full pass of the
    # garbage collector inside it (20-96 ms measured here, driven by the store's records)
    # moves that round by 20-90 µs a task either way (rounds from -38 to +71 µs on a quiet
    # machine): twice the rounds for those, so the median stands on more than two of them.
    rounds_of = {"no-op": 2 if quick else 4, "1 ms": 2 if quick else 8}
    engine_time(session, "processes", workers, 0.0, workers)  # the forkserver up, code warm
    for size_s, tag, n_a, n_p in ((0.0, "no-op", n_in, n_proc), (0.001, "1 ms", n_ms, n_ms)):
        rounds = rounds_of[tag]
        cases: list[tuple[str, Callable[[], float], str, int, int | None, float]] = [
            ("asyncio", lambda n=n_a, sz=size_s: _raw_asyncio(n, sz), "asyncio.gather",
             n_a, None, 20),
            ("threads", lambda n=n_a, sz=size_s: _raw_threads(n, sz, workers),
             "ThreadPoolExecutor.map", n_a, workers, 20),
            ("processes", lambda n=n_p, sz=size_s: _raw_processes(n, sz, workers),
             "ProcessPoolExecutor.map", n_p, workers, 100),
        ]
        for model, raw_fn, raw_name, n, w, target in cases:
            # Raw and engine alternate over several rounds (raw first, then engine first) and
            # the median difference counts: on a machine other work is loading, one pair
            # alone swings by tens of µs either way.
            pers: list[float] = []
            raws: list[float] = []
            engs: list[float] = []
            last: EngineTime | None = None
            for k in range(rounds):
                if k % 2:
                    last = engine_time(session, model, n, size_s, w)
                    raw = raw_fn()
                else:
                    raw = raw_fn()
                    last = engine_time(session, model, n, size_s, w)
                eng_us = last.seconds / last.tasks * 1e6
                raw_us = raw / n * 1e6
                pers.append(eng_us - raw_us)
                raws.append(raw_us)
                engs.append(eng_us)
            assert last is not None
            per = statistics.median(pers)
            note = (f"median of {rounds} alternating rounds (each {min(pers):.1f} to "
                    f"{max(pers):.1f}; noise goes both ways); engine "
                    f"{statistics.median(engs):.1f} µs/task, raw {statistics.median(raws):.1f} "
                    f"µs/task, both from submission to the caller holding the last result")
            if last.startup_s is not None:
                note += (f"; timed from the {w} workers ready ({last.ready_from}), "
                         f"{last.startup_s * 1e3:.0f} ms after submission")
            key = f"overhead.{model}.{tag.replace(' ', '')}" + (".bare" if bare else "")
            how = ("bare: no sampler, no probes" if bare
                   else "monitoring on: sampler 10 Hz + probes")
            figs.append(Figure(
                key, f"overhead per task, {model}, {tag}, {how} ({n} tasks vs {raw_name})",
                round(per, 1), "µs", target, note=note,
                extra={"rounds_us": [round(x, 2) for x in pers],
                       "engine_us": round(statistics.median(engs), 2),
                       "raw_us": round(statistics.median(raws), 2),
                       "monitoring": not bare}))
    return figs


def overhead_figures(quick: bool, workers: int = 2) -> list[Figure]:
    """Engine overhead per task, no-op and 1 ms tasks: engine µs/task - raw µs/task, with
    monitoring on (as ``taskscope run`` and the window run the engine), then bare."""
    with Session() as s:  # the CLI's session: sampler at 10 Hz, GIL and engine-loop probes
        figs = _phase(s, quick, workers, bare=False)
    with Session(sample_hz=None) as s:
        figs += _phase(s, quick, workers, bare=True)
    return figs
