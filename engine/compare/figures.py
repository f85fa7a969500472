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


def _basis(results: list[ModelResult]) -> tuple[ModelResult | None, str | None]:
    """The run every speed-up is measured against, and how the figures name it: the baseline
    model's run when it completed, else the slowest complete run when at least two completed.
    A partial run is never a basis, and a run is never measured against itself alone."""
    complete = [r for r in results if r.complete and r.wall_s]
    seq = next((r for r in complete if registry.entry(r.model).baseline), None)
    if seq is not None:
        return seq, seq.model
    if len(complete) < 2:
        return None, None
    slowest = max(complete, key=lambda r: r.wall_s or 0.0)
    return slowest, f"slowest ({slowest.model})"


def _cpu_share(spec0: RunSpec, results: list[ModelResult]) -> float:
    share = CPU_SHARE.get(spec0.workload)
    if spec0.workload == "blocking":
        share = 1.0 if spec0.params.get("mode") == "cpu" else 0.0
    if share is None:  # file, custom: estimate from the baseline's run, one task at a time
        seq = next((r for r in results if r.complete and registry.entry(r.model).baseline),
                   None)
        share = min(1.0, max(0.0, seq.busy_cores or 0.0)) if seq is not None else 0.0
    return share


def _task_size(session: SessionAPI, spec0: RunSpec, results: list[ModelResult]) -> float:
    if spec0.workload != "custom":
        return spec0.size_s
    complete = [r for r in results if r.complete and r.wall_s]
    seq = next((r for r in complete if registry.entry(r.model).baseline), None)
    med = _median_task_s(session, seq.run_id) if seq is not None else None
    if med is None:
        meds = [m for m in (_median_task_s(session, r.run_id) for r in complete) if m]
        med = min(meds) if meds else 0.0
    return med


def finish(session: SessionAPI, specs: list[RunSpec], results: list[ModelResult],
           cores: int) -> None:
    """Cross-model figures: speed-ups (with and without start-up), ideal time and overhead,
    the winner, readings. Only complete runs are ranked: a partial run gets no speed-up, no
    overhead and no star, and is never the basis of another run's speed-up."""
    spec0 = specs[0]
    base, basis = _basis(results)
    share = _cpu_share(spec0, results)
    size = _task_size(session, spec0, results)
    complete = [r for r in results if r.complete and r.wall_s]
    winner = min(complete, key=lambda r: r.wall_s or math.inf) if len(complete) >= 2 else None
    for r in results:
        if r.complete and r.wall_s and base is not None and base.wall_s:
            r.speedup = base.wall_s / r.wall_s
            r.speedup_basis = basis
            if r.startup_s is not None and base.startup_s is not None:
                mine, theirs = r.wall_s - r.startup_s, base.wall_s - base.startup_s
                if mine > 0 and theirs > 0:
                    r.speedup_without_startup = theirs / mine
        lanes = max(1, min(r.workers, r.tasks))
        ideal = max(math.ceil(r.tasks / lanes) * size,
                    r.tasks * size * share / min(lanes, cores))
        r.ideal_s = ideal
        if r.complete and r.wall_s is not None and r.tasks:
            # What the model itself lost: its workers' start-up has a figure of its own.
            r.overhead_per_task_s = (r.wall_s - (r.startup_s or 0.0) - ideal) / r.tasks
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
            is_baseline=r is base and basis == r.model,
            cores_busy=r.busy_cores,
            workers=r.workers,
            cores=cores,
            cpu_share=share,
            size_s=size,
            overhead_per_task_s=r.overhead_per_task_s,
            gui_lag_p99_ms=r.gui_lag_p99_ms,
            baseline_cores=r.baseline_cores,
            machine_cores=r.machine_cores,
            startup_s=r.startup_s,
            workers_noun=r.workers_noun,
            speedup_without_startup=r.speedup_without_startup,
            counts=dict(r.counts),
            **_structure(r.model, spec0),
        ))
