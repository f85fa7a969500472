"""CSV export: one row per task, and one row per sample with a column per core.

:func:`export_tasks_csv` writes one row per task (every :class:`~engine.store.TaskRecord` field
plus the run's model and workload); :func:`export_samples_csv` one row per sample, with one
column per core. :func:`export_csv` writes both as ``PREFIX-tasks.csv`` and
``PREFIX-samples.csv``. Values are written as they are (no spreadsheet-formula escaping), since
the point of this app is to report data truthfully.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..spec import RunSpec
from ..store import EventStore, RunRecord
from .files import write_bytes_atomic
from .records import jsonable, samples_for

TASK_CSV_COLUMNS = (
    "run_id", "task_id", "index", "model", "workload", "state", "queued_ns", "start_ns",
    "end_ns", "duration_ns", "cancel_requested_ns", "pid", "tid", "thread", "task_name", "core",
    "progress", "reason", "error_type", "error_message", "error",
)


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue().encode("utf-8")


def _selected_runs(store: EventStore, run_ids: Iterable[int] | None) -> list[RunRecord]:
    runs = sorted(store.runs(), key=lambda r: r.run_id)
    if run_ids is None:
        return runs
    wanted = set(run_ids)
    return [r for r in runs if r.run_id in wanted]


def export_tasks_csv(
    store: EventStore, path: str | os.PathLike[str], run_ids: Iterable[int] | None = None
) -> int:
    """One row per task (every TaskRecord field, plus model/workload). Returns the row count."""
    rows = []
    for r in _selected_runs(store, run_ids):
        spec = r.spec if isinstance(r.spec, RunSpec) else None
        for t in store.tasks(r.run_id):
            err = t.error or {}
            rows.append([
                t.run_id, t.task_id, t.index, spec.model if spec else "",
                spec.workload if spec else "", t.state.value, t.queued_ns, t.start_ns, t.end_ns,
                t.duration_ns, t.cancel_requested_ns, t.pid, t.tid, t.thread, t.task_name,
                t.core, t.progress, t.reason, err.get("type", ""), err.get("message", ""),
                json.dumps(jsonable(t.error), ensure_ascii=False) if t.error is not None else "",
            ])
    write_bytes_atomic(path, _csv_bytes(TASK_CSV_COLUMNS, rows))
    return len(rows)


def export_samples_csv(
    store: EventStore, path: str | os.PathLike[str], run_ids: Iterable[int] | None = None
) -> int:
    """One row per sample, one column per core (busy, user, system). Returns the row count.

    With ``run_ids``, only samples whose interval overlaps one of those runs.
    """
    samples = samples_for(store, None if run_ids is None else _selected_runs(store, run_ids))
    n_cores = max((len(s.cores) for s in samples), default=0)
    loops = sorted({k for s in samples for k in s.lag_ms})
    header = ["t_ns", "interval_s", "total", "self_cpu", "self_rss"]
    header += [f"core{i}" for i in range(n_cores)]
    header += [f"core{i}_user" for i in range(n_cores)]
    header += [f"core{i}_system" for i in range(n_cores)]
    header += [f"lag_{k}_ms" for k in loops]
    header += ["gil", "gil_disabled", "workers", "workers_cpu", "workers_rss", "threads"]

    def pad(xs: Sequence[float]) -> list[Any]:
        return list(xs) + [None] * (n_cores - len(xs))

    rows = []
    for s in samples:
        rows.append(
            [s.t_ns, s.interval_s, s.total, s.self_cpu, s.self_rss]
            + pad(s.cores) + pad(s.cores_user) + pad(s.cores_system)
            + [s.lag_ms.get(k) for k in loops]
            + [s.gil, s.gil_disabled, len(s.workers),
               sum(w.cpu for w in s.workers.values()), sum(w.rss for w in s.workers.values()),
               len(s.threads)]
        )
    write_bytes_atomic(path, _csv_bytes(header, rows))
    return len(rows)


def csv_paths(prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``PREFIX-tasks.csv`` and ``PREFIX-samples.csv`` (a trailing ``.csv`` on the prefix is
    dropped, so ``out.csv`` gives ``out-tasks.csv`` and ``out-samples.csv``)."""
    base = os.fspath(prefix)
    if base.lower().endswith(".csv"):
        base = base[:-4]
    return Path(f"{base}-tasks.csv"), Path(f"{base}-samples.csv")


def export_csv(
    store: EventStore, prefix: str | os.PathLike[str], run_ids: Iterable[int] | None = None
) -> tuple[Path, Path]:
    """Write ``PREFIX-tasks.csv`` and ``PREFIX-samples.csv``; return both paths."""
    tasks_p, samples_p = csv_paths(prefix)
    export_tasks_csv(store, tasks_p, run_ids)
    export_samples_csv(store, samples_p, run_ids)
    return tasks_p, samples_p
