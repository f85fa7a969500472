"""Engine overhead per task: the engine against plain Python doing the same work, same process.

The baselines (raw ``asyncio.gather``, ``ThreadPoolExecutor.map``, ``ProcessPoolExecutor.map``)
run in the same process just before or after the engine does the same work, so machine load
affects both. The raw process pool forks: :mod:`gui.bench` measures this before Qt starts.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from ..models import model_info
from ..session import Session
from ..spec import make_spec
from .figures import Figure


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
    if model_info(model).isolated:
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
                ("asyncio", lambda n=n_a, sz=size_s: _raw_asyncio(n, sz), "asyncio.gather",
                 n_a, None, 20),
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
