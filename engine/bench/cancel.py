"""Cancel latency: from ``cancel_task`` to the task's terminal event, per model.

Cooperative cancel for every model (the task's flag, checked as it runs), and force cancel of a
process task (its worker killed and the pool recovered). One 30 s ``cpu`` task at a time, in
its stride before the cancel comes.
"""

from __future__ import annotations

import statistics
import time

from ..clock import now_ns
from ..session import Session
from ..spec import make_spec
from .figures import Figure, rounded


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
                               f"cancel latency p99, {name}", rounded(p99), "ms", target,
                               note=f"p50 {rounded(p50)} ms over {len(lat)} cancels"))
    return figs
