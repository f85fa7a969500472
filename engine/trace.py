"""Traces out and in: Chrome Trace Event Format export, CSV export, and replay.

Export
------
:func:`export_session` / :func:`export_run` write a JSON file that Perfetto UI
(ui.perfetto.dev) and ``chrome://tracing`` open as they are. It holds:

* ``process_name`` / ``thread_name`` metadata (``"ph": "M"``) for every lane used;
* one complete event (``"ph": "X"``, ``ts``/``dur`` in microseconds) per task that started,
  with every detail of the task in ``args``;
* an instant event (``"ph": "i"``) where a cancel was requested;
* counters (``"ph": "C"``) for per-core CPU, all-core CPU, this process's CPU, loop lag and GIL
  contention, from the store's samples;
* one complete event per run on a "runs" lane, so the trace is readable at a glance.

Timestamps are our monotonic clock (:mod:`engine.clock`) in microseconds *relative to the
earliest thing exported*, so the numbers stay small and readable; the origin, in ns, is kept in
``otherData`` and in the TaskScope section.

Lanes: where a task really ran
------------------------------
A task that ran on a thread (thread pool, sequential, a worker process's thread) is drawn on
that thread's real ``pid``/``tid``: the lane *is* the worker.

Coroutines are different: many of them interleave on one loop thread, so their spans overlap on
that thread without nesting. Thread tracks in the trace format must nest strictly (Perfetto
flags or drops improperly nested slices; chrome://tracing draws them on top of each other). So
each coroutine gets its own synthetic ``tid`` under the loop thread's real ``pid``, named
``"task-17 (loop thread 1234)"``. We chose synthetic thread tracks over async events
(``"b"``/``"e"`` with ids) because Perfetto's placement of async slices into tracks is an
importer heuristic that has changed between versions (grouping by name, by id, or packing),
whereas named thread tracks render identically in Perfetto and chrome://tracing, sort next to
the real threads of the same process, and keep one coroutine per row. The real loop thread id
stays in the slice's ``args`` (``tid``), so nothing is hidden. Above
:data:`COROUTINE_TRACK_LIMIT` coroutines on one loop thread, one track per coroutine would make
the viewer unusable, so coroutines are then packed into the fewest non-overlapping synthetic
lanes (``"coroutines 3 (loop thread 1234)"``), each slice still named after its task.

"Coroutine" here means a task with an asyncio task name whose body ran in-process on a loop
(the ``asyncio`` model). Under ``asyncio-processes`` the coroutine only awaits a worker process;
the body ran on the worker's thread, so that is where its slice goes (the task name is in args).

If tasks on one real thread ever overlap (the engine should never produce that, but a trace
must stay valid whatever the data), the later ones go to synthetic overflow lanes named after
the thread, rather than producing a broken file.

Synthetic ids sit far above any real Linux pid/tid (``pid_max`` is at most 2**22) and below
2**31, so viewers that store them as 32-bit integers accept them.

Re-import
---------
The file also has a top-level ``"taskscope"`` key (the format allows extra top-level keys) with
the exact runs, task records (all fields, ns integers) and samples. :func:`load_trace` reads
only that section back, after validating the whole file, and rebuilds a fresh
:class:`~engine.store.EventStore` by replaying synthetic events through the same
``add_run``/``append``/``add_samples`` calls a live session uses, so a front end shows a replay
with the code it uses for a live session.

Files are parsed with :mod:`json` only: never unpickled, evaluated or imported. Anything
malformed, truncated, foreign, or larger than :data:`MAX_TRACE_BYTES` raises :class:`TraceError`
with a one-line message, and nothing outside the new store is touched.

CSV
---
:func:`export_tasks_csv` writes one row per task (every :class:`~engine.store.TaskRecord` field
plus the run's model and workload); :func:`export_samples_csv` one row per sample, with one
column per core. :func:`export_csv` writes both as ``PREFIX-tasks.csv`` and
``PREFIX-samples.csv``. Values are written as they are (no spreadsheet-formula escaping), since
the point of this app is to report data truthfully.
"""

from __future__ import annotations

import csv
import dataclasses
import heapq
import io
import json
import math
import operator
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import Event, Kind, State
from .samples import Sample, WorkerSample
from .spec import RunSpec
from .store import EventStore, RunRecord, TaskRecord

#: Version of the ``taskscope`` section. Bump it when the section changes incompatibly.
FORMAT_VERSION = 1
#: Largest trace :func:`load_trace` reads. JSON expands several times in memory once parsed,
#: so this also bounds the memory a replay can take (roughly 5-10x this size at worst).
MAX_TRACE_BYTES = 512 * 1024 * 1024

#: Synthetic process holding the run lanes and the system-wide counters.
SYSTEM_PID = 0x7FFF_FF00
#: Synthetic tid of run N's lane (under :data:`SYSTEM_PID`) is ``RUN_TID_BASE + N``.
RUN_TID_BASE = 0x7F00_0000
#: First synthetic tid for coroutine and overflow lanes.
SYNTH_TID_BASE = 0x7000_0000
#: Above this many coroutines on one loop thread, coroutines share packed lanes.
COROUTINE_TRACK_LIMIT = 2000

#: Category of task slices, run slices and cancel instants (``cat``), used by the re-import's
#: cross-check and handy for filtering in the viewers.
CAT_TASK = "task"
CAT_RUN = "run"
CAT_CANCEL = "cancel"

_NS_PER_US = 1000

# Colour names chrome://tracing reserves (Perfetto picks its own colours).
_CNAME = {
    State.FAILED: "terrible",
    State.TIMED_OUT: "bad",
    State.CANCELLED: "grey",
    State.CANCEL_REQUESTED: "yellow",
}


class TraceError(Exception):
    """A trace could not be read or written. ``str()`` is one line naming what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


# ---------------------------------------------------------------------------------------------
# The TaskScope section: exact encodings of runs, tasks and samples
# ---------------------------------------------------------------------------------------------

#: Every TaskRecord field and the JSON types it may hold. A test checks this covers every
#: field of :class:`~engine.store.TaskRecord`, so a new field cannot be silently dropped.
_TASK_FIELDS: dict[str, tuple[type, ...]] = {
    "task_id": (int,),
    "run_id": (int,),
    "index": (int,),
    "state": (str,),
    "queued_ns": (int,),
    "start_ns": (int, type(None)),
    "end_ns": (int, type(None)),
    "cancel_requested_ns": (int, type(None)),
    "pid": (int,),
    "tid": (int,),
    "thread": (str,),
    "task_name": (str,),
    "core": (int,),
    "progress": (float, str),  # str: "NaN"/"Infinity" (JSON has no non-finite numbers)
    "error": (dict, type(None)),
    "reason": (str,),
}

_RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (int,),
    "spec": (dict, type(None)),
    "first_task_id": (int,),
    "n_tasks": (int,),
    "start_ns": (int,),
    "end_ns": (int, type(None)),
    "counts": (dict,),
}

_SPEC_FIELDS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "workload": (str,),
    "tasks": (int,),
    "size_s": (float,),
    "workers": (int, type(None)),
    "timeout_s": (float, type(None)),
    "policy": (str,),
    "params": (dict,),
}

_NUM = (float, str)  # a float, or "NaN"/"Infinity"/"-Infinity"

_SAMPLE_FIELDS: dict[str, tuple[type, ...]] = {
    "t_ns": (int,),
    "interval_s": _NUM,
    "cores": (list,),
    "cores_user": (list,),
    "cores_system": (list,),
    "total": _NUM,
    "self_cpu": _NUM,
    "self_rss": (int,),
    "workers": (dict,),
    "threads": (dict,),
    "lag_ms": (dict,),
    "gil": (float, str, type(None)),
    "gil_disabled": (bool,),
}

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _enc_float(x: float) -> float | str:
    """Floats as JSON numbers; non-finite ones as strings, since JSON (and Perfetto) has none."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def _is_int(v: Any) -> bool:
    return type(v) is int


def _encode_task(t: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": t.task_id,
        "run_id": t.run_id,
        "index": t.index,
        "state": t.state.value,
        "queued_ns": t.queued_ns,
        "start_ns": t.start_ns,
        "end_ns": t.end_ns,
        "cancel_requested_ns": t.cancel_requested_ns,
        "pid": t.pid,
        "tid": t.tid,
        "thread": t.thread,
        "task_name": t.task_name,
        "core": t.core,
        "progress": _enc_float(t.progress),
        "error": _jsonable(t.error) if t.error is not None else None,
        "reason": t.reason,
    }


def _encode_spec(spec: Any) -> dict[str, Any] | None:
    if not isinstance(spec, RunSpec):
        return None
    return {
        "model": spec.model,
        "workload": spec.workload,
        "tasks": spec.tasks,
        "size_s": float(spec.size_s),
        "workers": spec.workers,  # as given (None: the model's default), not the effective count
        "timeout_s": None if spec.timeout_s is None else float(spec.timeout_s),
        "policy": spec.policy,
        "params": _jsonable(dict(spec.params)),
    }


def _encode_run(r: RunRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "spec": _encode_spec(r.spec),
        "first_task_id": r.task_ids.start,
        "n_tasks": len(r.task_ids),
        "start_ns": r.start_ns,
        "end_ns": r.end_ns,
        "counts": {str(k): int(v) for k, v in r.counts.items()},
    }


def _encode_sample(s: Any) -> dict[str, Any]:
    return {
        "t_ns": int(s.t_ns),
        "interval_s": _enc_float(s.interval_s),
        "cores": [_enc_float(c) for c in s.cores],
        "cores_user": [_enc_float(c) for c in s.cores_user],
        "cores_system": [_enc_float(c) for c in s.cores_system],
        "total": _enc_float(s.total),
        "self_cpu": _enc_float(s.self_cpu),
        "self_rss": int(s.self_rss),
        "workers": {
            str(pid): {"cpu": _enc_float(w.cpu), "rss": int(w.rss), "core": int(w.core)}
            for pid, w in s.workers.items()
        },
        "threads": {str(t): _enc_float(c) for t, c in s.threads.items()},
        "lag_ms": {str(k): _enc_float(v) for k, v in s.lag_ms.items()},
        "gil": None if s.gil is None else _enc_float(s.gil),
        "gil_disabled": bool(s.gil_disabled),
    }


def _jsonable(v: Any) -> Any:
    """A JSON-safe copy of task details (errors, params): unknown objects become their repr."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return _enc_float(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return repr(v)


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote (for a status bar or the CLI)."""

    path: Path
    runs: int
    tasks: int
    samples: int
    bytes: int


def _us(t_ns: int, origin: int) -> float:
    return round((t_ns - origin) / _NS_PER_US, 3)


def _dur(start_ns: int, end_ns: int, origin: int) -> float:
    """Duration in us such that ``ts + dur`` is the end's own ``ts`` (to float precision), so
    back-to-back slices touch without overlapping."""
    return max(0.0, round(_us(end_ns, origin) - _us(start_ns, origin), 3))


def _is_coroutine(t: TaskRecord, isolated: bool | None) -> bool:
    """Did the task's body run as a coroutine interleaved on an in-process loop thread?

    ``isolated``: the run's model runs tasks in worker processes (None: model unknown here, so
    trust the task name).
    """
    return bool(t.task_name) and bool(t.pid) and not isolated


def _pack(spans: Sequence[tuple[int, int, Any]]) -> list[tuple[int, Any]]:
    """Greedy interval packing: ``(lane, item)`` so that spans on one lane never overlap.

    ``spans`` are ``(start, end, item)``; lanes are numbered from 0 in first-use order, so a
    thread whose tasks never overlap uses lane 0 only. Touching spans (one ends exactly when the
    next starts) share a lane. O(n log lanes): a heap of lanes by the time they come free.
    """
    free: list[tuple[int, int]] = []  # (end, lane)
    n_lanes = 0
    out: list[tuple[int, Any]] = []
    for start, end, item in sorted(spans, key=lambda s: (s[0], s[1])):
        if free and free[0][0] <= start:
            lane = heapq.heappop(free)[1]
        else:
            lane = n_lanes
            n_lanes += 1
        heapq.heappush(free, (end, lane))
        out.append((lane, item))
    return out


class _Lanes:
    """Allocates (pid, tid) lanes and records their names for the metadata events."""

    def __init__(self) -> None:
        self.process_names: dict[int, str] = {}
        self.process_sort: dict[int, int] = {}
        self.thread_names: dict[tuple[int, int], str] = {}
        self.thread_sort: dict[tuple[int, int], int] = {}
        self.overflow: dict[tuple[int, int, int], int] = {}
        self._next_synth = SYNTH_TID_BASE

    def synth_tid(self) -> int:
        tid = self._next_synth
        self._next_synth += 1
        return tid

    def thread(self, pid: int, tid: int, name: str, sort: int) -> None:
        self.thread_names[(pid, tid)] = name
        self.thread_sort[(pid, tid)] = sort


def build_trace(
    store: EventStore, run_ids: Iterable[int] | None = None, *, now_ns: int | None = None
) -> dict[str, Any]:
    """The trace document (a JSON-able dict) for the given runs, or every run in the store.

    With ``run_ids`` given, only samples whose interval overlaps one of those runs are included;
    a session export (``run_ids=None``) includes every sample the store holds. Tasks still
    running are drawn up to ``now_ns`` (default: the latest time in the export) and marked
    ``"open": true`` in their args.
    """
    all_runs = sorted(store.runs(), key=lambda r: r.run_id)
    if run_ids is None:
        runs = all_runs
        scope = "session"
    else:
        wanted = set(run_ids)
        runs = [r for r in all_runs if r.run_id in wanted]
        missing = wanted - {r.run_id for r in runs}
        if missing:
            raise TraceError(f"no run {min(missing)} in this session")
        scope = "run" if len(runs) == 1 else "runs"
    tasks: list[TaskRecord] = []
    for r in runs:
        tasks.extend(store.tasks(r.run_id))
    samples, _ = store.read_samples(0)
    samples = [s for s in samples if isinstance(s, Sample)]
    if run_ids is not None:
        samples = [s for s in samples if _overlaps_any(s, runs)]
    samples.sort(key=lambda s: s.t_ns)

    # Time bounds: the origin is the earliest thing exported, so every ts is >= 0.
    times: list[int] = [r.start_ns for r in runs]
    times += [t.queued_ns for t in tasks]
    times += [s.t_ns for s in samples]
    origin = min(times) if times else 0
    latest = [origin]
    latest += [r.end_ns for r in runs if r.end_ns is not None]
    for t in tasks:
        latest += [x for x in (t.start_ns, t.end_ns, t.cancel_requested_ns) if x is not None]
    latest += [s.t_ns for s in samples]
    horizon = max(latest) if now_ns is None else max(now_ns, max(latest))

    models = {r.run_id: (r.spec.model if isinstance(r.spec, RunSpec) else None) for r in runs}
    isolated = {rid: (None if m is None else _isolated(m)) for rid, m in models.items()}
    specs = {r.run_id: r.spec for r in runs}
    lanes = _Lanes()
    events: list[dict[str, Any]] = []

    # -- the synthetic process: run lanes and system counters ---------------------------------
    lanes.process_names[SYSTEM_PID] = "TaskScope runs & system counters"
    lanes.process_sort[SYSTEM_PID] = -1
    for r in runs:
        rtid = RUN_TID_BASE + r.run_id
        lanes.thread(SYSTEM_PID, rtid, f"run {r.run_id}", r.run_id)
        end = r.end_ns if r.end_ns is not None else horizon
        spec = r.spec
        label = f"run {r.run_id}"
        if isinstance(spec, RunSpec):
            label += f" · {spec.model} · {spec.workload} × {spec.tasks}"
        events.append({
            "name": label, "cat": CAT_RUN, "ph": "X", "pid": SYSTEM_PID, "tid": rtid,
            "ts": _us(r.start_ns, origin), "dur": _dur(r.start_ns, end, origin),
            "args": {"run_id": r.run_id, "spec": _encode_spec(spec), "counts": dict(r.counts),
                     "start_ns": r.start_ns, "end_ns": r.end_ns, "open": r.end_ns is None},
        })

    # -- task lanes -------------------------------------------------------------------------------
    # Group started tasks by their real thread, split into coroutines and thread-bound tasks.
    by_thread: dict[tuple[int, int], list[TaskRecord]] = {}
    coros: dict[tuple[int, int], list[TaskRecord]] = {}
    for t in tasks:
        if t.start_ns is None:
            continue
        key = (t.pid, t.tid)
        group = coros if _is_coroutine(t, isolated.get(t.run_id)) else by_thread
        group.setdefault(key, []).append(t)

    lane_of: dict[int, tuple[int, int]] = {}  # task id -> (pid, tid) where it is drawn
    engine_pids = {t.pid for t in tasks if t.pid and isolated.get(t.run_id) is False}

    def end_of(t: TaskRecord) -> int:
        assert t.start_ns is not None
        return t.end_ns if t.end_ns is not None else max(horizon, t.start_ns)

    for (pid, tid), group in sorted(by_thread.items()):
        name = group[0].thread or f"thread {tid}"
        for lane, t in _pack([(t.start_ns or 0, end_of(t), t) for t in group]):
            if lane == 0:
                lanes.thread(pid, tid, name, tid)
                lane_of[t.task_id] = (pid, tid)
            else:
                stid = _overflow_tid(lanes, pid, tid, name, lane)
                lane_of[t.task_id] = (pid, stid)
    for (pid, tid), group in sorted(coros.items()):
        loop = f"loop thread {tid}"
        group.sort(key=lambda t: (t.start_ns or 0, t.task_id))
        if len(group) <= COROUTINE_TRACK_LIMIT:
            for t in group:
                stid = lanes.synth_tid()
                lanes.thread(pid, stid, f"{t.task_name} ({loop})", stid)
                lane_of[t.task_id] = (pid, stid)
        else:
            packed_tids: dict[int, int] = {}
            for lane, t in _pack([(t.start_ns or 0, end_of(t), t) for t in group]):
                if lane not in packed_tids:
                    stid = lanes.synth_tid()
                    packed_tids[lane] = stid
                    lanes.thread(pid, stid, f"coroutines {lane + 1} ({loop})", stid)
                lane_of[t.task_id] = (pid, packed_tids[lane])

    for pid in sorted({p for p, _ in lanes.thread_names if p != SYSTEM_PID}):
        if pid in engine_pids:
            lanes.process_names[pid] = "TaskScope engine"
            lanes.process_sort[pid] = 0
        else:
            rids = sorted({t.run_id for t in tasks if t.pid == pid})
            label = ", ".join(
                f"run {rid}" + (f" {models[rid]}" if models.get(rid) else "") for rid in rids[:3]
            ) + (" …" if len(rids) > 3 else "")
            lanes.process_names[pid] = f"worker process ({label})"
            lanes.process_sort[pid] = 1

    for t in tasks:
        spec = specs.get(t.run_id)
        if t.start_ns is not None:
            pid, tid = lane_of[t.task_id]
            end = end_of(t)
            name = f"task {t.index}" + (f" · {t.task_name}" if t.task_name else "")
            ev: dict[str, Any] = {
                "name": name, "cat": CAT_TASK, "ph": "X", "pid": pid, "tid": tid,
                "ts": _us(t.start_ns, origin),
                "dur": _dur(t.start_ns, end, origin),
                "args": _task_args(t, spec, open_=t.end_ns is None),
            }
            cname = _CNAME.get(t.state)
            if cname:
                ev["cname"] = cname
            events.append(ev)
        if t.cancel_requested_ns is not None:
            if t.task_id in lane_of:
                pid, tid = lane_of[t.task_id]
            else:  # never started: mark it on its run's lane
                pid, tid = SYSTEM_PID, RUN_TID_BASE + t.run_id
            events.append({
                "name": "cancel requested", "cat": CAT_CANCEL, "ph": "i", "s": "t",
                "pid": pid, "tid": tid, "ts": _us(t.cancel_requested_ns, origin),
                "args": {"task_id": t.task_id, "run_id": t.run_id, "index": t.index,
                         "reason": t.reason},
            })

    # -- counters ---------------------------------------------------------------------------------
    for s in samples:
        ts = _us(s.t_ns, origin)
        for i, c in enumerate(s.cores):
            if math.isfinite(c):
                events.append(_counter(f"core {i} CPU", ts, {"%": c}))
        if math.isfinite(s.total):
            events.append(_counter("all cores CPU", ts, {"%": s.total}))
        if math.isfinite(s.self_cpu):
            events.append(_counter("engine process CPU", ts, {"% of a core": s.self_cpu}))
        for loop_name, lag in sorted(s.lag_ms.items()):
            if math.isfinite(lag):
                events.append(_counter(f"{loop_name} loop lag", ts, {"ms": lag}))
        if s.gil is not None and math.isfinite(s.gil):
            events.append(_counter("GIL wait", ts, {"%": s.gil * 100.0}))

    # -- metadata ---------------------------------------------------------------------------------
    meta: list[dict[str, Any]] = []
    for pid, pname in sorted(lanes.process_names.items()):
        meta.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                     "args": {"name": pname}})
        meta.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                     "args": {"sort_index": lanes.process_sort.get(pid, 0)}})
    for (pid, tid), tname in sorted(lanes.thread_names.items()):
        meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                     "args": {"name": tname}})
        meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                     "args": {"sort_index": lanes.thread_sort.get((pid, tid), 0)}})

    exported_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return {
        "traceEvents": meta + events,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "TaskScope",
            "taskscope_format": FORMAT_VERSION,
            "origin_ns": origin,
            "clock": "CLOCK_MONOTONIC (time.monotonic_ns); ts = (t_ns - origin_ns) / 1000",
            "exported_at": exported_at,
        },
        "taskscope": {
            "version": FORMAT_VERSION,
            "scope": scope,
            "origin_ns": origin,
            "exported_at": exported_at,
            "python": platform.python_version(),
            "platform": sys.platform,
            "runs": [_encode_run(r) for r in runs],
            "tasks": [_encode_task(t) for t in tasks],
            "samples": [_encode_sample(s) for s in samples],
        },
    }


def _isolated(model: str) -> bool | None:
    """Does the model run tasks in worker processes? None for a model unknown here."""
    from .models import model_info

    try:
        return model_info(model).isolated
    except Exception:  # noqa: BLE001 - unknown model name (a trace from a newer TaskScope)
        return None


def _overflow_tid(lanes: _Lanes, pid: int, tid: int, name: str, lane: int) -> int:
    """The synthetic lane for tasks that overlap others on one real thread (see module doc)."""
    key = (pid, tid, lane)
    if key not in lanes.overflow:
        stid = lanes.synth_tid()
        lanes.overflow[key] = stid
        lanes.thread(pid, stid, f"{name} (tid {tid}, overlapping {lane})", stid)
    return lanes.overflow[key]


def _task_args(t: TaskRecord, spec: Any, open_: bool) -> dict[str, Any]:
    args: dict[str, Any] = {
        "task_id": t.task_id,
        "run_id": t.run_id,
        "index": t.index,
        "state": t.state.value,
        "pid": t.pid,
        "tid": t.tid,
        "thread": t.thread,
        "task_name": t.task_name,
        "core": t.core,
        "progress": _enc_float(t.progress),
        "queued_ns": t.queued_ns,
        "start_ns": t.start_ns,
        "end_ns": t.end_ns,
        "cancel_requested_ns": t.cancel_requested_ns,
        "reason": t.reason,
        "error": _jsonable(t.error) if t.error is not None else None,
        "open": open_,
    }
    if isinstance(spec, RunSpec):
        args["model"] = spec.model
        args["workload"] = spec.workload
    return args


def _counter(name: str, ts: float, values: dict[str, float]) -> dict[str, Any]:
    return {"name": name, "ph": "C", "pid": SYSTEM_PID, "tid": 0, "ts": ts, "args": values}


def _overlaps_any(s: Sample, runs: Sequence[RunRecord]) -> bool:
    """Does the sample's interval ``[t - interval, t]`` overlap one of the runs?"""
    lo = s.t_ns - int(max(0.0, s.interval_s if math.isfinite(s.interval_s) else 0.0) * 1e9)
    for r in runs:
        end = r.end_ns if r.end_ns is not None else s.t_ns
        if lo <= end and s.t_ns >= r.start_ns:
            return True
    return False


def dumps_trace(doc: dict[str, Any]) -> bytes:
    """Serialise a trace document. Strict JSON: no NaN/Infinity (Perfetto rejects them)."""
    try:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TraceError(f"cannot serialise the trace: {e}") from None


def check_output_path(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Check that ``path`` can be written, without leaving anything behind.

    Callers use this *before* starting a run, so a typo in an output path fails at once
    instead of after minutes of work. Raises :class:`TraceError` (one line).
    """
    p = Path(os.fspath(path)).expanduser()
    if str(path) == "" or str(path) == "-":
        raise TraceError(f"{what}: expected a file path, got {str(path)!r}")
    if p.is_dir():
        raise TraceError(f"{what}: {p} is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise TraceError(f"{what}: cannot write {p}: directory {parent} does not exist")
    if not parent.is_dir():
        raise TraceError(f"{what}: cannot write {p}: {parent} is not a directory")
    if p.exists() and not os.access(p, os.W_OK):
        raise TraceError(f"{what}: cannot write {p}: permission denied")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".check", dir=parent)
    except OSError as e:
        raise TraceError(f"{what}: cannot write {p}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)
    return p


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    A failed or interrupted export never leaves a half-written file where a good one was.
    """
    p = check_output_path(path)
    tmp = p.parent / f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        # os.open with 0o666 (not mkstemp's 0o600), so the file gets the user's usual umask.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise TraceError(f"cannot write {p}: {e.strerror or e}") from None
    return p


def _write_doc(doc: dict[str, Any], path: str | os.PathLike[str]) -> ExportSummary:
    data = dumps_trace(doc)
    p = write_bytes_atomic(path, data)
    sec = doc["taskscope"]
    return ExportSummary(p, len(sec["runs"]), len(sec["tasks"]), len(sec["samples"]), len(data))


def export_session(store: EventStore, path: str | os.PathLike[str]) -> ExportSummary:
    """Write every run and every sample in ``store`` as one trace file."""
    return _write_doc(build_trace(store), path)


def export_run(store: EventStore, run_id: int, path: str | os.PathLike[str]) -> ExportSummary:
    """Write one run, and the samples taken while it ran, as a trace file."""
    return _write_doc(build_trace(store, [run_id]), path)


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------

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
                json.dumps(_jsonable(t.error), ensure_ascii=False) if t.error is not None else "",
            ])
    write_bytes_atomic(path, _csv_bytes(TASK_CSV_COLUMNS, rows))
    return len(rows)


def export_samples_csv(
    store: EventStore, path: str | os.PathLike[str], run_ids: Iterable[int] | None = None
) -> int:
    """One row per sample, one column per core (busy, user, system). Returns the row count.

    With ``run_ids``, only samples whose interval overlaps one of those runs.
    """
    samples = [s for s in store.read_samples(0)[0] if isinstance(s, Sample)]
    if run_ids is not None:
        runs = _selected_runs(store, run_ids)
        samples = [s for s in samples if _overlaps_any(s, runs)]
    samples.sort(key=lambda s: s.t_ns)
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


# ---------------------------------------------------------------------------------------------
# Import (replay)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """A trace read back: a fresh, filled store plus the records, for read-only display.

    ``store`` is a new :class:`~engine.store.EventStore` built from synthetic events in time
    order, so a front end can read it (events by cursor, task records, samples) exactly as it
    reads a live session's store. No session, loop or worker exists behind it: nothing can be
    started or cancelled.
    """

    path: Path
    store: EventStore
    runs: list[RunRecord]
    tasks: list[TaskRecord]
    samples: list[Sample]
    origin_ns: int
    scope: str
    meta: dict[str, Any] = field(default_factory=dict)
    #: Task records the synthetic events did not reproduce exactly and that were set from the
    #: file directly (0 for any trace this version wrote).
    patched: int = 0


def load_trace(path: str | os.PathLike[str]) -> Replay:
    """Read one of our trace files back. Raises :class:`TraceError` (one line) on any problem.

    The file is parsed with :mod:`json` only, validated strictly (structure of every trace
    event, types of every field in the TaskScope section, cross-references between them), and
    only then turned into a :class:`Replay`. Nothing outside the returned object is changed.
    """
    p = Path(os.fspath(path))
    data = _read_capped(p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraceError(f"{p.name}: not a trace file: not UTF-8 text (byte {e.start})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        # Truncated: the parser ran out of text (inside a string, or at the very end).
        cut = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")
        what = "truncated" if cut else "malformed"
        raise TraceError(
            f"{p.name}: {what} JSON ({e.msg}, line {e.lineno} column {e.colno})"
        ) from None
    except RecursionError:
        raise TraceError(f"{p.name}: malformed JSON: nested too deeply") from None
    except ValueError as e:
        raise TraceError(f"{p.name}: malformed JSON: {e}") from None
    try:
        return _build_replay(p, doc)
    except _Bad as e:
        raise TraceError(f"{p.name}: {e}") from None


class _Bad(Exception):
    """Internal: what is wrong, without the file name (added by load_trace)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _read_capped(p: Path) -> bytes:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise TraceError(f"{p}: no such file") from None
    except OSError as e:
        raise TraceError(f"{p}: cannot read: {e.strerror or e}") from None
    import stat as stat_mod

    if stat_mod.S_ISDIR(st.st_mode):
        raise TraceError(f"{p}: is a directory, not a trace file")
    if not stat_mod.S_ISREG(st.st_mode):
        raise TraceError(f"{p}: not a regular file")
    if st.st_size > MAX_TRACE_BYTES:
        raise TraceError(
            f"{p.name}: too large to replay ({st.st_size / 2**20:.0f} MB; the limit is "
            f"{MAX_TRACE_BYTES // 2**20} MB)"
        )
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_TRACE_BYTES + 1)
    except OSError as e:
        raise TraceError(f"{p}: cannot read: {e.strerror or e}") from None
    if len(data) > MAX_TRACE_BYTES:  # it grew while we looked
        raise TraceError(f"{p.name}: too large to replay (the limit is {MAX_TRACE_BYTES // 2**20} MB)")
    if not data.strip():
        raise TraceError(f"{p.name}: empty file")
    return data


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


_EXACT: dict[int, dict[str, frozenset[type]]] = {}


def _exact_types(spec: dict[str, tuple[type, ...]]) -> dict[str, frozenset[type]]:
    """The exact Python types json.loads gives for each field's allowed JSON types.

    json only ever produces exact dict/list/str/int/float/bool/None, so one set lookup per
    field replaces isinstance chains (bool is not an integer here, an int is a valid float).
    """
    got = _EXACT.get(id(spec))
    if got is None:
        got = {}
        for key, types in spec.items():
            exact: set[type] = set()
            for t in types:
                exact.update((int, float) if t is float else (t,))
            got[key] = frozenset(exact)
        _EXACT[id(spec)] = got
    return got


def _check_fields(obj: Any, spec: dict[str, tuple[type, ...]], where: str,
                  optional: Sequence[str] = ()) -> dict[str, Any]:
    if type(obj) is not dict:
        raise _Bad(f"{where}: expected an object, got {_type_name(obj)}")
    exact = _exact_types(spec)
    if len(obj) != len(spec) or not obj.keys() <= exact.keys():
        for key in obj:
            if key not in spec:
                raise _Bad(f"{where}: unknown field {key!r}")
    for key, allowed in exact.items():
        if key not in obj:
            if key in optional:
                continue
            raise _Bad(f"{where}: missing field {key!r}")
        v = obj[key]
        if type(v) not in allowed:
            types = spec[key]
            want = " or ".join(_type_name(t()) if t is not type(None) else "null" for t in types)
            raise _Bad(f"{where}.{key}: expected {want}, got {_type_name(v)}")
    return obj


def _dec_float(v: Any, where: str) -> float:
    if type(v) in (int, float):
        return float(v)
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    raise _Bad(f"{where}: expected a number, got {_type_name(v)}")


def _dec_int_key(k: str, where: str) -> int:
    try:
        n = int(k)
    except ValueError:
        raise _Bad(f"{where}: key {k!r} is not an integer") from None
    if str(n) != k:
        raise _Bad(f"{where}: key {k!r} is not an integer")
    return n


_PHASES_WITH_TS = {"X", "B", "E", "i", "I", "C", "b", "e", "n", "s", "t", "f", "O", "N", "D"}


def validate_trace_events(events: Any) -> dict[str, int]:
    """Check the Trace Event Format structure of ``traceEvents``. Raises ``ValueError``.

    Checks what Perfetto and chrome://tracing rely on: every event an object with a string
    ``ph`` and ``name`` and integer ``pid``/``tid``; a numeric ``ts`` >= 0 for timed phases;
    ``dur`` >= 0 on ``X``; ``X`` slices on one thread nested strictly (contained or disjoint:
    thread tracks are stacks); ``B``/``E`` balanced per thread; numeric counter values; ``args``
    an object; and every (pid, tid) with a slice or instant named by ``thread_name`` metadata
    under the same pid. Returns counts per phase. Used by :func:`load_trace` and by tests.
    """
    if not isinstance(events, list):
        raise ValueError(f"traceEvents: expected an array, got {_type_name(events)}")
    counts: dict[str, int] = {}
    named_threads: set[tuple[int, int]] = set()
    named_procs: set[int] = set()
    used_threads: set[tuple[int, int]] = set()
    open_b: dict[tuple[int, int], list[str]] = {}
    slices: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
    for i, ev in enumerate(events):
        where = f"traceEvents[{i}]"
        if not isinstance(ev, dict):
            raise ValueError(f"{where}: expected an object, got {_type_name(ev)}")
        ph = ev.get("ph")
        if not isinstance(ph, str) or len(ph) != 1:
            raise ValueError(f"{where}.ph: expected a one-letter phase, got {ph!r}")
        if not isinstance(ev.get("name"), str):
            raise ValueError(f"{where}.name: expected a string, got {_type_name(ev.get('name'))}")
        for k in ("pid", "tid"):
            if not _is_int(ev.get(k)) or ev[k] < 0:
                raise ValueError(f"{where}.{k}: expected a non-negative integer, got {ev.get(k)!r}")
        if "args" in ev and not isinstance(ev["args"], dict):
            raise ValueError(f"{where}.args: expected an object, got {_type_name(ev['args'])}")
        if "cat" in ev and not isinstance(ev["cat"], str):
            raise ValueError(f"{where}.cat: expected a string, got {_type_name(ev['cat'])}")
        key = (ev["pid"], ev["tid"])
        counts[ph] = counts.get(ph, 0) + 1
        if ph == "M":
            args = ev.get("args")
            if ev["name"] in ("thread_name", "process_name"):
                if not isinstance(args, dict) or not isinstance(args.get("name"), str):
                    raise ValueError(f"{where}: {ev['name']} needs args.name, a string")
                if ev["name"] == "thread_name":
                    named_threads.add(key)
                else:
                    named_procs.add(ev["pid"])
            continue
        if ph not in _PHASES_WITH_TS:
            raise ValueError(f"{where}.ph: unknown phase {ph!r}")
        ts = ev.get("ts")
        if type(ts) not in (int, float) or not math.isfinite(ts) or ts < 0:
            raise ValueError(f"{where}.ts: expected a non-negative number, got {ts!r}")
        if ph == "X":
            dur = ev.get("dur")
            if type(dur) not in (int, float) or not math.isfinite(dur) or dur < 0:
                raise ValueError(f"{where}.dur: expected a non-negative number, got {dur!r}")
            used_threads.add(key)
            slices.setdefault(key, []).append((float(ts), float(ts) + float(dur), i))
        elif ph == "B":
            open_b.setdefault(key, []).append(ev["name"])
            used_threads.add(key)
        elif ph == "E":
            stack = open_b.get(key)
            if not stack:
                raise ValueError(f"{where}: 'E' without a matching 'B' on pid {key[0]} tid {key[1]}")
            stack.pop()
        elif ph in ("i", "I"):
            s = ev.get("s", "t")
            if s not in ("t", "p", "g"):
                raise ValueError(f"{where}.s: expected 't', 'p' or 'g', got {s!r}")
            if s == "t":
                used_threads.add(key)
        elif ph == "C":
            args = ev.get("args")
            if not isinstance(args, dict) or not args:
                raise ValueError(f"{where}: a counter needs args with at least one value")
            for k, v in args.items():
                if type(v) not in (int, float) or not math.isfinite(v):
                    raise ValueError(f"{where}.args.{k}: counter values must be finite numbers")
    for key, spans in slices.items():
        _check_nesting(key, spans)
    for key, stack in open_b.items():
        if stack:
            raise ValueError(f"'B' event {stack[-1]!r} on pid {key[0]} tid {key[1]} never ends")
    for key in sorted(used_threads - named_threads):
        raise ValueError(f"pid {key[0]} tid {key[1]} has events but no thread_name metadata")
    for pid in sorted({p for p, _ in used_threads} - named_procs):
        raise ValueError(f"pid {pid} has events but no process_name metadata")
    return counts


def _check_nesting(key: tuple[int, int], spans: list[tuple[float, float, int]]) -> None:
    """Slices on one thread must form a stack: each contained in or disjoint from the others.

    ``ts``/``dur`` are rounded to 1 ns, so ends are compared with a 1 ns tolerance.
    """
    eps = 1e-3
    stack: list[tuple[float, int]] = []
    for start, end, i in sorted(spans, key=lambda s: (s[0], -s[1])):
        while stack and stack[-1][0] <= start + eps:
            stack.pop()
        if stack and end > stack[-1][0] + eps:
            raise ValueError(f"traceEvents[{i}]: overlaps traceEvents[{stack[-1][1]}] on pid "
                             f"{key[0]} tid {key[1]} without nesting inside it")
        stack.append((end, i))


def _build_replay(p: Path, doc: Any) -> Replay:
    if not isinstance(doc, dict):
        raise _Bad(f"not a trace file: the top level is a JSON {_type_name(doc)}, not an object")
    if "traceEvents" not in doc:
        raise _Bad("not a trace file: no 'traceEvents'")
    sec = doc.get("taskscope")
    if sec is None:
        raise _Bad("not a TaskScope trace (no 'taskscope' section: a trace from another tool?)")
    if not isinstance(sec, dict):
        raise _Bad(f"taskscope: expected an object, got {_type_name(sec)}")
    version = sec.get("version")
    if not _is_int(version):
        raise _Bad(f"taskscope.version: expected an integer, got {_type_name(version)}")
    if version > FORMAT_VERSION:
        raise _Bad(f"written by a newer TaskScope (format {version}; this one reads {FORMAT_VERSION})")
    if version < 1:
        raise _Bad(f"taskscope.version: unknown format {version}")
    try:
        counts = validate_trace_events(doc["traceEvents"])
    except ValueError as e:
        raise _Bad(str(e)) from None

    _check_fields(sec, {
        "version": (int,), "scope": (str,), "origin_ns": (int,), "exported_at": (str,),
        "python": (str,), "platform": (str,), "runs": (list,), "tasks": (list,),
        "samples": (list,),
    }, "taskscope")

    runs_raw = sec["runs"]
    tasks_raw = sec["tasks"]
    samples_raw = sec["samples"]
    for i, r in enumerate(runs_raw):
        _check_fields(r, _RUN_FIELDS, f"taskscope.runs[{i}]")
        if r["spec"] is not None:
            _check_fields(r["spec"], _SPEC_FIELDS, f"taskscope.runs[{i}].spec")
        for k, v in r["counts"].items():
            if not _is_int(v):
                raise _Bad(f"taskscope.runs[{i}].counts.{k}: expected an integer")
        if r["n_tasks"] < 0 or r["first_task_id"] < 0:
            raise _Bad(f"taskscope.runs[{i}]: negative task range")
    run_ids = [r["run_id"] for r in runs_raw]
    if len(set(run_ids)) != len(run_ids):
        raise _Bad("taskscope.runs: a run id appears twice")
    by_run = {r["run_id"]: r for r in runs_raw}
    # Task ranges must not overlap (a task id belongs to one run).
    spans = sorted((r["first_task_id"], r["first_task_id"] + r["n_tasks"]) for r in runs_raw)
    for (_a0, a1), (b0, _b1) in zip(spans, spans[1:], strict=False):
        if b0 < a1:
            raise _Bad("taskscope.runs: two runs claim the same task ids")

    seen: set[int] = set()
    for i, t in enumerate(tasks_raw):
        where = f"taskscope.tasks[{i}]"
        _check_fields(t, _TASK_FIELDS, where)
        try:
            State(t["state"])
        except ValueError:
            raise _Bad(f"{where}.state: unknown state {t['state']!r}") from None
        if isinstance(t["progress"], str):
            _dec_float(t["progress"], f"{where}.progress")
        run = by_run.get(t["run_id"])
        if run is None:
            raise _Bad(f"{where}: run {t['run_id']} is not in the file")
        tid = t["task_id"]
        if not run["first_task_id"] <= tid < run["first_task_id"] + run["n_tasks"]:
            raise _Bad(f"{where}: task {tid} is outside run {t['run_id']}'s task ids")
        if t["index"] != tid - run["first_task_id"]:
            raise _Bad(f"{where}.index: {t['index']} does not match task id {tid}")
        if tid in seen:
            raise _Bad(f"{where}: task {tid} appears twice")
        seen.add(tid)
        if t["start_ns"] is not None and t["end_ns"] is not None and t["end_ns"] < t["start_ns"]:
            raise _Bad(f"{where}: ends before it starts")
    for r in runs_raw:
        have = sum(1 for t in tasks_raw if t["run_id"] == r["run_id"])
        if have != r["n_tasks"]:
            raise _Bad(f"run {r['run_id']}: {have} of its {r['n_tasks']} tasks are in the file")
    started = sum(1 for t in tasks_raw if t["start_ns"] is not None)
    task_slices = sum(1 for ev in doc["traceEvents"] if ev.get("cat") == CAT_TASK
                      and ev.get("ph") == "X")
    if task_slices != started:
        raise _Bad(f"traceEvents has {task_slices} task slices but the TaskScope section has "
                   f"{started} started tasks (edited or mixed files?)")

    samples = [_decode_sample(s, f"taskscope.samples[{i}]") for i, s in enumerate(samples_raw)]

    # -- build a fresh store through the producer API, in time order --------------------------
    n_events = len(tasks_raw) * 5 + 16
    store = EventStore(max_events=max(1_000_000, n_events),
                       max_samples=max(36_000, len(samples) + 1),
                       max_tasks=max(2_000_000, len(tasks_raw) + 1))
    tasks_by_run: dict[int, list[dict[str, Any]]] = {}
    for t in tasks_raw:
        tasks_by_run.setdefault(t["run_id"], []).append(t)
    for r in sorted(runs_raw, key=lambda r: r["run_id"]):
        store.add_run(r["run_id"], _decode_spec(r["spec"]), r["first_task_id"], r["n_tasks"],
                      r["start_ns"])
    synth: list[tuple[int, int, int, Event]] = []
    for t in tasks_raw:
        synth.extend(_synthetic_events(t))
    synth.sort(key=lambda x: (x[0], x[1], x[2]))
    store.append([e for *_, e in synth])
    for r in runs_raw:
        if r["end_ns"] is not None:
            store.end_run(r["run_id"], r["end_ns"])
    store.add_samples(samples)

    # -- reconcile: the store now holds exactly the file's records --------------------------
    patched = 0
    for t in tasks_raw:
        rec = store.task(t["task_id"])
        assert rec is not None
        want = _decode_task(t)
        if _task_tuple(rec) != _task_tuple(want):
            patched += 1
            for name in _TASK_RECORD_FIELDS:
                setattr(rec, name, getattr(want, name))
    for r in runs_raw:
        rr = store.run(r["run_id"])
        assert rr is not None
        rr.counts = dict(r["counts"])  # the store's own copy: ours, nobody else holds it yet

    meta = {k: sec[k] for k in ("version", "exported_at", "python", "platform")}
    meta["trace_events"] = counts
    return Replay(
        path=p,
        store=store,
        runs=sorted(store.runs(), key=lambda r: r.run_id),
        tasks=sorted(store.tasks(), key=lambda t: t.task_id),
        samples=samples,
        origin_ns=sec["origin_ns"],
        scope=sec["scope"],
        meta=meta,
        patched=patched,
    )


_TASK_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(TaskRecord))
_task_values = operator.attrgetter(*_TASK_RECORD_FIELDS)


def _task_tuple(t: TaskRecord) -> tuple[Any, ...]:
    v = _task_values(t)
    if math.isnan(t.progress):  # NaN != NaN; compare it as a marker
        v = tuple("NaN" if isinstance(x, float) and math.isnan(x) else x for x in v)
    return v


def _decode_task(t: dict[str, Any]) -> TaskRecord:
    return TaskRecord(
        task_id=t["task_id"], run_id=t["run_id"], index=t["index"], state=State(t["state"]),
        queued_ns=t["queued_ns"], start_ns=t["start_ns"], end_ns=t["end_ns"],
        cancel_requested_ns=t["cancel_requested_ns"], pid=t["pid"], tid=t["tid"],
        thread=t["thread"], task_name=t["task_name"], core=t["core"],
        progress=_dec_float(t["progress"], "progress"), error=t["error"], reason=t["reason"],
    )


def _decode_spec(s: dict[str, Any] | None) -> RunSpec | None:
    """The run's spec as recorded. Built directly, not through make_spec: a replay must open
    even where the model is not available (a trace from a free-threaded build, say)."""
    if s is None:
        return None
    return RunSpec(s["model"], s["workload"], s["tasks"], float(s["size_s"]), s["workers"],
                   None if s["timeout_s"] is None else float(s["timeout_s"]), s["policy"],
                   dict(s["params"]))


def _synthetic_events(t: dict[str, Any]) -> list[tuple[int, int, int, Event]]:
    """Events that fold (in :meth:`EventStore.append`) into the task's recorded state.

    Each is ``(t_ns, task_id, rank, event)``; rank keeps one task's events in lifecycle order
    when they share a timestamp. The worker identity rides on every event, as live events do.
    """
    rid, tid = t["run_id"], t["task_id"]
    ident = {"pid": t["pid"], "tid": t["tid"], "thread": t["thread"],
             "task_name": t["task_name"], "core": t["core"]}
    if not t["pid"]:
        ident = {}
    out: list[tuple[int, int, int, Event]] = []
    state = State(t["state"])
    last = t["queued_ns"]
    if t["start_ns"] is not None:
        out.append((t["start_ns"], tid, 0, Event(rid, tid, Kind.STARTED, t["start_ns"], **ident)))
        last = max(last, t["start_ns"])
    if t["cancel_requested_ns"] is not None:
        info = {"reason": t["reason"]} if t["reason"] else None
        out.append((t["cancel_requested_ns"], tid, 1,
                    Event(rid, tid, Kind.CANCEL_REQUESTED, t["cancel_requested_ns"], **ident,
                          info=info)))
        last = max(last, t["cancel_requested_ns"])
    progress = _dec_float(t["progress"], "progress")
    if state is not State.FINISHED and progress != 0.0:
        when = t["end_ns"] if t["end_ns"] is not None else last
        out.append((when, tid, 2, Event(rid, tid, Kind.PROGRESS, when, **ident, value=progress)))
    if state.terminal:
        end = t["end_ns"] if t["end_ns"] is not None else last
        error = t["error"]
        if error is not None:
            info: dict[str, Any] | None = dict(error)
        elif t["reason"] and state is not State.FAILED:
            info = {"reason": t["reason"]}
        else:
            info = None
        out.append((end, tid, 3, Event(rid, tid, state.value, end, **ident, info=info)))
    return out


def _decode_sample(s: Any, where: str) -> Sample:
    _check_fields(s, _SAMPLE_FIELDS, where)

    def floats(key: str) -> tuple[float, ...]:
        return tuple(_dec_float(x, f"{where}.{key}[{i}]") for i, x in enumerate(s[key]))

    workers: dict[int, WorkerSample] = {}
    for k, w in s["workers"].items():
        pid = _dec_int_key(k, f"{where}.workers")
        _check_fields(w, {"cpu": _NUM, "rss": (int,), "core": (int,)}, f"{where}.workers.{k}")
        workers[pid] = WorkerSample(pid, _dec_float(w["cpu"], f"{where}.workers.{k}.cpu"),
                                    w["rss"], w["core"])
    threads = {
        _dec_int_key(k, f"{where}.threads"): _dec_float(v, f"{where}.threads.{k}")
        for k, v in s["threads"].items()
    }
    lag = {str(k): _dec_float(v, f"{where}.lag_ms.{k}") for k, v in s["lag_ms"].items()}
    return Sample(
        t_ns=s["t_ns"],
        interval_s=_dec_float(s["interval_s"], f"{where}.interval_s"),
        cores=floats("cores"),
        cores_user=floats("cores_user"),
        cores_system=floats("cores_system"),
        total=_dec_float(s["total"], f"{where}.total"),
        self_cpu=_dec_float(s["self_cpu"], f"{where}.self_cpu"),
        self_rss=s["self_rss"],
        workers=workers,
        threads=threads,
        lag_ms=lag,
        gil=None if s["gil"] is None else _dec_float(s["gil"], f"{where}.gil"),
        gil_disabled=s["gil_disabled"],
    )


#: For tests and tools: the names of every field the section encodes per task and per sample.
TASK_FIELDS = tuple(_TASK_FIELDS)
SAMPLE_FIELDS = tuple(_SAMPLE_FIELDS)

__all__ = [
    "COROUTINE_TRACK_LIMIT",
    "FORMAT_VERSION",
    "MAX_TRACE_BYTES",
    "ExportSummary",
    "Replay",
    "TraceError",
    "build_trace",
    "check_output_path",
    "csv_paths",
    "dumps_trace",
    "export_csv",
    "export_run",
    "export_samples_csv",
    "export_session",
    "export_tasks_csv",
    "load_trace",
    "validate_trace_events",
]
