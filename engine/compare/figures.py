"""Cross-model figures: the speed-up basis, the ideal time and overhead, the winner, readings.

Computed once every model of a comparison has run (see :func:`finish`).
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING

from ..models import registry
from ..spec import RunSpec
from .readings import Figures, reading
from .results import ModelResult

if TYPE_CHECKING:
    from ..api import SessionAPI

#: Share of a task spent computing, per built-in workload (see ``overhead_per_task_s``).
CPU_SHARE: dict[str, float] = {
    "cpu": 1.0,
    "numpy": 1.0,
    "crash": 1.0,
    "events": 1.0,
    "mixed": 0.5,
    "sleep": 0.0,
    "http": 0.0,
    "fail": 0.0,
}


def _median_task_s(session: SessionAPI, run_id: int | None) -> float | None:
    if run_id is None:
        return None
    d = [t.duration_ns for t in session.store.tasks(run_id) if t.duration_ns]
    return statistics.median(d) / 1e9 if d else None


def _structure(model: str, spec: RunSpec) -> dict[str, bool]:
    """How the model runs Python, for :class:`Figures` (which explanation fits, not which
    sentence): several threads under one GIL, or one thread for every task."""
    e = registry.entry(model)
    if e.coroutines:  # a plain custom function is offloaded to the loop's thread pool
        offloaded = spec.workload == "custom" and not spec.params.get("is_async")
        return {"shares_gil": offloaded, "one_thread": not offloaded}
    return {"shares_gil": e.shares_gil, "one_thread": e.max_workers == 1}


def finish(session: SessionAPI, specs: list[RunSpec], results: list[ModelResult],
           cores: int) -> None:
    """Cross-model figures: speedup, ideal time and overhead, winner, readings."""
    spec0 = specs[0]
    complete = [r for r in results if r.complete and r.wall_s]
    seq = next((r for r in complete if registry.entry(r.model).baseline), None)
    base: ModelResult | None = seq or (max(complete, key=lambda r: r.wall_s or 0.0)
                                       if complete else None)
    basis = None if base is None else (base.model if base is seq else f"slowest ({base.model})")

    share = CPU_SHARE.get(spec0.workload)
    if spec0.workload == "blocking":
        share = 1.0 if spec0.params.get("mode") == "cpu" else 0.0
    if share is None:  # file, custom: estimate from the sequential run, one task at a time
        share = min(1.0, max(0.0, seq.own_cores or 0.0)) if seq is not None else 0.0
    size = spec0.size_s
    if spec0.workload == "custom":
        med = _median_task_s(session, seq.run_id) if seq is not None else None
        if med is None:
            meds = [m for m in (_median_task_s(session, r.run_id) for r in complete) if m]
            med = min(meds) if meds else 0.0
        size = med

    winner = min(complete, key=lambda r: r.wall_s or math.inf) if complete else None
    for r in results:
        if r.wall_s and r.complete and base is not None and base.wall_s:
            r.speedup = base.wall_s / r.wall_s
            r.speedup_basis = basis
        lanes = max(1, min(r.workers, r.tasks))
        ideal = max(math.ceil(r.tasks / lanes) * size,
                    r.tasks * size * share / min(lanes, cores))
        r.ideal_s = ideal
        if r.wall_s is not None and r.tasks:
            r.overhead_per_task_s = (r.wall_s - ideal) / r.tasks
        r.winner = r is winner
        if r.status in ("skipped", "error"):
            r.reading = f"{r.model}: {'not run (compare cancelled)' if r.status == 'skipped' else r.error}"
            continue
        ok = r.counts.get("finished", 0) + r.counts.get("failed", 0)
        r.reading = reading(Figures(
            model=r.model,
            complete=r.complete,
            tasks=r.tasks,
            tasks_ok=ok,
            wall_s=r.wall_s,
            speedup=r.speedup,
            is_baseline=r is base and base is seq,
            cores_busy=r.own_cores,
            workers=r.workers,
            cores=cores,
            cpu_share=share,
            size_s=size,
            overhead_per_task_s=r.overhead_per_task_s,
            gui_lag_p99_ms=r.gui_lag_p99_ms,
            baseline_cores=r.baseline_cores,
            **_structure(r.model, spec0),
        ))
