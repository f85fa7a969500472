"""Reading a trace back: load a file, validate all of it, and rebuild a store to replay.

The file also has a top-level ``"taskscope"`` key (the format allows extra top-level keys) with
the exact runs, task records (all fields, ns integers) and samples. :func:`load_trace` reads
only that section back, after validating the whole file, and rebuilds a fresh
:class:`~engine.store.EventStore` by replaying synthetic events through the same
``add_run``/``append``/``add_samples`` calls a live session uses, so a front end shows a replay
with the code it uses for a live session.

Files are parsed with :mod:`json` only: never unpickled, evaluated or imported. Anything
malformed, truncated, foreign, or larger than :data:`MAX_TRACE_BYTES` raises :class:`TraceError`
with a one-line message, and nothing outside the new store is touched.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compare import CompareResult
from ..events import Event, Kind, State
from ..samples import Sample
from ..store import TASK_FIELDS, EventStore, RunRecord, TaskRecord
from .chrome import CAT_TASK, validate_trace_events
from .errors import BadTrace, TraceError
from .records import (
    FORMAT_VERSION,
    SECTION_SCHEMA,
    decode_comparison,
    decode_run,
    decode_sample,
    decode_task,
    is_int,
    type_name,
)

#: Largest trace :func:`load_trace` reads. JSON expands several times in memory once parsed,
#: so this also bounds the memory a replay can take (roughly 5-10x this size at worst).
MAX_TRACE_BYTES = 512 * 1024 * 1024


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
    #: The comparisons the runs were part of (also kept in ``store``), oldest first.
    comparisons: list[CompareResult] = field(default_factory=list)


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
        if e.reason != "unexpected end of data":
            raise TraceError(f"{p.name}: not a trace file: not UTF-8 text (byte {e.start})"
                             ) from None
        # Cut inside a character ("·" is two bytes): what precedes it is judged as any cut
        # file is (bytes before the first bad one decode).
        text = data[:e.start].decode("utf-8")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        # Truncated: the parser ran out of text (inside a string, at the very end, or inside
        # a literal, number or escape the cut split: "tru", "-", "1.", "1e", "\\u00").
        tail = text[e.pos :].rstrip()
        cut = e.msg.startswith("Unterminated string") or bool(_CUT_TOKEN.fullmatch(tail))
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
    except BadTrace as e:
        raise TraceError(f"{p.name}: {e}") from None


#: What is left after the parser's error position when a file was cut inside a token.
_CUT_TOKEN = re.compile(r"|-|t(?:ru?)?|f(?:a(?:ls?)?)?|n(?:ul?)?|\.|[eE][+-]?|u[0-9a-fA-F]{0,4}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _read_capped(p: Path) -> bytes:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise TraceError(f"{p}: no such file") from None
    except OSError as e:
        raise TraceError(f"{p}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise TraceError(f"{p}: is a directory, not a trace file")
    if not stat.S_ISREG(st.st_mode):
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


def _build_replay(p: Path, doc: Any) -> Replay:
    if not isinstance(doc, dict):
        raise BadTrace(f"not a trace file: the top level is a JSON {type_name(doc)}, not an object")
    if "traceEvents" not in doc:
        raise BadTrace("not a trace file: no 'traceEvents'")
    sec = doc.get("taskscope")
    if sec is None:
        raise BadTrace("not a TaskScope trace (no 'taskscope' section: a trace from another tool?)")
    if not isinstance(sec, dict):
        raise BadTrace(f"taskscope: expected an object, got {type_name(sec)}")
    version = sec.get("version")
    if not is_int(version):
        raise BadTrace(f"taskscope.version: expected an integer, got {type_name(version)}")
    if version > FORMAT_VERSION:
        raise BadTrace(f"written by a newer TaskScope (format {version}; this one reads {FORMAT_VERSION})")
    if version < 1:
        raise BadTrace(f"taskscope.version: unknown format {version}")
    try:
        counts = validate_trace_events(doc["traceEvents"])
    except ValueError as e:
        raise BadTrace(str(e)) from None

    SECTION_SCHEMA.check(sec, "taskscope")
    runs = [decode_run(r, f"taskscope.runs[{i}]") for i, r in enumerate(sec["runs"])]
    tasks_raw = sec["tasks"]
    samples_raw = sec["samples"]
    run_ids = [r.run_id for r in runs]
    if len(set(run_ids)) != len(run_ids):
        raise BadTrace("taskscope.runs: a run id appears twice")
    by_run = {r.run_id: r for r in runs}
    # Task ranges must not overlap (a task id belongs to one run).
    spans = sorted((r.task_ids.start, r.task_ids.stop) for r in runs)
    for (_a0, a1), (b0, _b1) in zip(spans, spans[1:], strict=False):
        if b0 < a1:
            raise BadTrace("taskscope.runs: two runs claim the same task ids")

    seen: set[int] = set()
    tasks: list[TaskRecord] = []
    for i, raw in enumerate(tasks_raw):
        where = f"taskscope.tasks[{i}]"
        t = decode_task(raw, where)
        run = by_run.get(t.run_id)
        if run is None:
            raise BadTrace(f"{where}: run {t.run_id} is not in the file")
        tid = t.task_id
        if tid not in run.task_ids:
            raise BadTrace(f"{where}: task {tid} is outside run {t.run_id}'s task ids")
        if t.index != tid - run.task_ids.start:
            raise BadTrace(f"{where}.index: {t.index} does not match task id {tid}")
        if tid in seen:
            raise BadTrace(f"{where}: task {tid} appears twice")
        seen.add(tid)
        if t.start_ns is not None and t.end_ns is not None and t.end_ns < t.start_ns:
            raise BadTrace(f"{where}: ends before it starts")
        tasks.append(t)
    for r in runs:
        have = sum(1 for t in tasks if t.run_id == r.run_id)
        if have != len(r.task_ids):
            raise BadTrace(f"run {r.run_id}: {have} of its {len(r.task_ids)} tasks are in the file")
    started = sum(1 for t in tasks if t.start_ns is not None)
    task_slices = sum(1 for ev in doc["traceEvents"] if ev.get("cat") == CAT_TASK
                      and ev.get("ph") == "X")
    if task_slices != started:
        raise BadTrace(f"traceEvents has {task_slices} task slices but the TaskScope section has "
                   f"{started} started tasks (edited or mixed files?)")

    samples = [decode_sample(s, f"taskscope.samples[{i}]") for i, s in enumerate(samples_raw)]
    comparisons = [decode_comparison(c, f"taskscope.comparisons[{i}]")
                   for i, c in enumerate(sec.get("comparisons", []))]
    for i, c in enumerate(comparisons):
        for m in c.results:
            if m.run_id is not None and m.run_id not in by_run and sec["scope"] == "session":
                raise BadTrace(f"taskscope.comparisons[{i}]: run {m.run_id} is not in the file")

    # -- build a fresh store through the producer API, in time order --------------------------
    n_events = len(tasks) * 5 + 16
    store = EventStore(max_events=max(1_000_000, n_events),
                       max_samples=max(36_000, len(samples) + 1),
                       max_tasks=max(2_000_000, len(tasks) + 1))
    for r in sorted(runs, key=lambda r: r.run_id):
        store.add_run(r.run_id, r.spec, r.task_ids.start, len(r.task_ids), r.start_ns)
    synth: list[tuple[int, int, int, Event]] = []
    for t in tasks:
        synth.extend(_synthetic_events(t))
    synth.sort(key=lambda x: (x[0], x[1], x[2]))
    store.append([e for *_, e in synth])
    for r in runs:
        if r.end_ns is not None:
            store.end_run(r.run_id, r.end_ns)
    store.add_samples(samples)
    for c in comparisons:
        store.add_comparison(c)

    # -- reconcile: the store now holds exactly the file's records --------------------------
    patched = 0
    for want in tasks:
        rec = store.task(want.task_id)
        assert rec is not None
        if not _same_task(rec, want):
            patched += 1
            for name in TASK_FIELDS:
                setattr(rec, name, getattr(want, name))
    for r in runs:  # counts, and any field the run's events do not set, as the file has them
        rr = store.run(r.run_id)
        assert rr is not None
        for name in _RUN_FIELDS:
            setattr(rr, name, getattr(r, name))  # the decoded values: nobody else holds them

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
        comparisons=comparisons,
    )


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))
_task_values = operator.attrgetter(*TASK_FIELDS)


def _same_task(a: TaskRecord, b: TaskRecord) -> bool:
    """Field-for-field equality, with NaN equal to NaN (a NaN progress is a value here)."""
    va, vb = _task_values(a), _task_values(b)
    return va == vb or _nan_marked(va) == _nan_marked(vb)


def _nan_marked(v: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple("NaN" if isinstance(x, float) and math.isnan(x) else x for x in v)


def _synthetic_events(t: TaskRecord) -> list[tuple[int, int, int, Event]]:
    """Events that fold (in :meth:`EventStore.append`) into the task's recorded state.

    Each is ``(t_ns, task_id, rank, event)``; rank keeps one task's events in lifecycle order
    when they share a timestamp. The worker identity rides on every event, as live events do.
    """
    rid, tid = t.run_id, t.task_id
    ident = {"pid": t.pid, "tid": t.tid, "thread": t.thread, "task_name": t.task_name,
             "core": t.core}
    if not t.pid:
        ident = {}
    out: list[tuple[int, int, int, Event]] = []
    state = t.state
    last = t.queued_ns
    if t.start_ns is not None:
        out.append((t.start_ns, tid, 0, Event(rid, tid, Kind.STARTED, t.start_ns, **ident)))
        last = max(last, t.start_ns)
    if t.cancel_requested_ns is not None:
        info = {"reason": t.reason} if t.reason else None
        out.append((t.cancel_requested_ns, tid, 1,
                    Event(rid, tid, Kind.CANCEL_REQUESTED, t.cancel_requested_ns, **ident,
                          info=info)))
        last = max(last, t.cancel_requested_ns)
    if state is not State.FINISHED and t.progress != 0.0:
        when = t.end_ns if t.end_ns is not None else last
        out.append((when, tid, 2, Event(rid, tid, Kind.PROGRESS, when, **ident, value=t.progress)))
    if state.terminal:
        end = t.end_ns if t.end_ns is not None else last
        if t.error is not None:
            info: dict[str, Any] | None = dict(t.error)
        elif t.reason and state is not State.FAILED:
            info = {"reason": t.reason}
        else:
            info = None
        out.append((end, tid, 3, Event(rid, tid, state.value, end, **ident, info=info)))
    return out
