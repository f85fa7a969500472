"""Chrome Trace Event Format: the export Perfetto and chrome://tracing open, and its checker.

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

The same file carries the exact records in its ``"taskscope"`` section (:mod:`.records`), which
is what :mod:`.replay` reads back; :func:`validate_trace_events` checks the part the viewers
read, for the replay and for tests.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import State
from ..spec import RunSpec
from ..store import EventStore, RunRecord, TaskRecord
from .errors import TraceError
from .files import write_bytes_atomic
from .records import (
    FORMAT_VERSION,
    encode_section,
    encode_spec,
    encode_task,
    is_int,
    samples_for,
    type_name,
)

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
    samples = samples_for(store, None if run_ids is None else runs)

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
            "args": {"run_id": r.run_id, "spec": encode_spec(spec), "counts": dict(r.counts),
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
        "taskscope": encode_section(scope, origin, exported_at, runs, tasks, samples,
                                    _comparisons_of(store, runs)),
    }


def _comparisons_of(store: EventStore, runs: list[RunRecord]) -> list[Any]:
    """The store's comparisons that measured one of these runs (a replay shows them again;
    a run that is not in the file keeps its figures, without its band)."""
    ids = {r.run_id for r in runs}
    return [c for c in store.comparisons()
            if any(m.run_id in ids for m in c.results if m.run_id is not None)]


def _isolated(model: str) -> bool | None:
    """Does the model run tasks in worker processes? None for a model unknown here."""
    from ..models import model_info

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
    """A task slice's details: the record as the TaskScope section encodes it, plus whether it
    was still running when exported and its run's model and workload."""
    args = encode_task(t)
    args["open"] = open_
    if isinstance(spec, RunSpec):
        args["model"] = spec.model
        args["workload"] = spec.workload
    return args


def _counter(name: str, ts: float, values: dict[str, float]) -> dict[str, Any]:
    return {"name": name, "ph": "C", "pid": SYSTEM_PID, "tid": 0, "ts": ts, "args": values}


def dumps_trace(doc: dict[str, Any]) -> bytes:
    """Serialise a trace document. Strict JSON: no NaN/Infinity (Perfetto rejects them)."""
    try:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TraceError(f"cannot serialise the trace: {e}") from None


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
        raise ValueError(f"traceEvents: expected an array, got {type_name(events)}")
    counts: dict[str, int] = {}
    named_threads: set[tuple[int, int]] = set()
    named_procs: set[int] = set()
    used_threads: set[tuple[int, int]] = set()
    open_b: dict[tuple[int, int], list[str]] = {}
    slices: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
    for i, ev in enumerate(events):
        where = f"traceEvents[{i}]"
        if not isinstance(ev, dict):
            raise ValueError(f"{where}: expected an object, got {type_name(ev)}")
        ph = ev.get("ph")
        if not isinstance(ph, str) or len(ph) != 1:
            raise ValueError(f"{where}.ph: expected a one-letter phase, got {ph!r}")
        if not isinstance(ev.get("name"), str):
            raise ValueError(f"{where}.name: expected a string, got {type_name(ev.get('name'))}")
        for k in ("pid", "tid"):
            if not is_int(ev.get(k)) or ev[k] < 0:
                raise ValueError(f"{where}.{k}: expected a non-negative integer, got {ev.get(k)!r}")
        if "args" in ev and not isinstance(ev["args"], dict):
            raise ValueError(f"{where}.args: expected an object, got {type_name(ev['args'])}")
        if "cat" in ev and not isinstance(ev["cat"], str):
            raise ValueError(f"{where}.cat: expected a string, got {type_name(ev['cat'])}")
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
