"""A process pool's start-up: when a run's workers were ready, and how long that took.

A processes run starts a pool of its own; its tasks cannot start before its workers do. The
bench times that on its own line (``startup.pool.processes``) and leaves it out of the
per-task overhead (:mod:`~engine.bench.overhead`), as a comparison reports it apart from the
model's speed-up (issue 17).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from ..clock import now_ns
from ..session import Session
from ..spec import make_spec
from ..store import RunRecord, TaskRecord
from .figures import Figure

REPORTED = "reported by the run"
FROM_EVENTS = "the last worker's first task start: the run reported no workers_ready_ns"


def workers_ready(rec: RunRecord, tasks: Iterable[TaskRecord]) -> tuple[int, str]:
    """``(t_ns, how)``: when every first worker of a process run was ready, engine clock.

    The run's own ``workers_ready_ns`` when its model reports one (through
    ``RunSink.run_info``: every first worker said it was up); else the latest of each worker
    process's first task start, which comes one hand-off after that worker was ready."""
    t = rec.info.get("workers_ready_ns")
    if isinstance(t, int):
        return t, REPORTED
    first: dict[int, int] = {}
    for task in tasks:
        if task.pid is not None and task.start_ns is not None:
            first[task.pid] = min(first.get(task.pid, task.start_ns), task.start_ns)
    if not first:
        raise RuntimeError(f"run {rec.run_id}: no task started, so no worker was ever ready")
    return max(first.values()), FROM_EVENTS


def pool_startup_figure(quick: bool, workers: int = 2) -> Figure:
    """``startup.pool.processes``: seconds from submitting a processes run to all its workers
    ready, median of several fresh runs in one session with monitoring on (the forkserver
    already up, as it is for every run but a session's first)."""
    reps = 3 if quick else 7
    out: list[float] = []
    engine_s: list[float] = []
    how = ""
    with Session() as s:
        s.start(make_spec("processes", "sleep", workers, 0.0, workers)).wait(60)  # forkserver
        for _ in range(reps):
            t0 = now_ns()
            run = s.start(make_spec("processes", "sleep", workers * 2, 0.01, workers))
            if not run.wait(60):
                raise RuntimeError("a processes run of 4 short tasks did not end in 60 s")
            ready, how = workers_ready(run.record, s.store.tasks(run.run_id))
            out.append((ready - t0) / 1e9)
            own = run.record.info.get("startup_s")
            if isinstance(own, int | float):
                engine_s.append(float(own))
    med = statistics.median(out)
    note = (f"median of {reps} runs ({min(out) * 1e3:.0f}-{max(out) * 1e3:.0f} ms), "
            f"{workers} workers, from submission to all workers ready ({how})")
    if engine_s:
        note += f"; the runs' own startup_s {statistics.median(engine_s) * 1e3:.0f} ms median"
    return Figure("startup.pool.processes",
                  f"start-up: a processes run's {workers} workers ready (fresh pool)",
                  round(med, 3), "s", None, note=note,
                  extra={"runs_s": [round(x, 4) for x in out], "ready_from": how,
                         "engine_startup_s": [round(x, 4) for x in engine_s]})
