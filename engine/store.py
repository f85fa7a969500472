"""The bounded store every front end reads from.

Producers append *batches* of events (never one call per event across a process boundary) and
samples. Readers keep their own cursor and read only what is new since their last read, so the
CLI, the GUI and a trace exporter can all read one store without disturbing each other.

Limits (documented, enforced):

* ``max_events`` (default 1,000,000): the event log is a ring. Once full, the oldest events are
  dropped and a reader that fell behind is told how many it missed. Task records are not part of
  the ring: the latest state of every task is kept exactly, whatever the ring dropped.
* ``max_samples`` (default 36,000: one hour at 10 Hz): likewise a ring.
* ``max_tasks`` (default 2,000,000): task records of *finished runs* are evicted oldest run first
  once the total passes this limit. Records of active runs are never evicted.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from itertools import islice
from typing import Any, get_type_hints

from .events import TERMINAL_KINDS, Event, Kind, State


@dataclass(slots=True)
class TaskRecord:
    """The latest known state of one task, folded from its events."""

    task_id: int
    run_id: int
    index: int
    state: State = State.QUEUED
    queued_ns: int = 0
    start_ns: int | None = None
    end_ns: int | None = None
    cancel_requested_ns: int | None = None
    pid: int = 0
    tid: int = 0
    thread: str = ""
    task_name: str = ""
    core: int = -1
    progress: float = 0.0
    error: dict[str, Any] | None = None
    reason: str = ""

    @property
    def duration_ns(self) -> int | None:
        """Start to end, or None until the task has both."""
        if self.start_ns is None or self.end_ns is None:
            return None
        return self.end_ns - self.start_ns

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.task_id,
            "run_id": self.run_id,
            "index": self.index,
            "state": self.state.value,
            "queued_ns": self.queued_ns,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "cancel_requested_ns": self.cancel_requested_ns,
            "pid": self.pid,
            "thread_id": self.tid,
            "thread_name": self.thread,
            "task_name": self.task_name,
            "core": self.core,
            "progress": self.progress,
            "error": self.error,
            "reason": self.reason,
        }


#: The task record's fields, in order: the one list that the pipe to the window
#: (:mod:`engine.remote.wire`) and the trace formats derive theirs from, so a field added to
#: TaskRecord cannot be left out of them by accident.
TASK_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TaskRecord))
#: Each field's type, resolved from TaskRecord's annotations (``int | None``, ``State``, ...),
#: for encoders that must know what a field may hold (the trace's JSON types).
_hints = get_type_hints(TaskRecord)
TASK_FIELD_TYPES: dict[str, Any] = {name: _hints[name] for name in TASK_FIELDS}
del _hints


@dataclass(slots=True)
class RunRecord:
    """A run as the store knows it: its spec, its tasks and its clock."""

    run_id: int
    spec: Any
    task_ids: range
    start_ns: int
    end_ns: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    #: Facts about the run as a whole (JSON-able): ``python``, the interpreter that ran it
    #: (its ``python`` block, :mod:`engine.build`, from the engine that ran it), and what its
    #: model reported, e.g. ``workers_ready_ns``/``startup_s`` (when its workers were ready,
    #: and how long that took from the run's start) and a cluster's address and dashboard.
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.end_ns is not None

    @property
    def wall_s(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9


_STATE_OF_KIND = {
    Kind.STARTED: State.RUNNING,
    Kind.CANCEL_REQUESTED: State.CANCEL_REQUESTED,
    Kind.FINISHED: State.FINISHED,
    Kind.FAILED: State.FAILED,
    Kind.CANCELLED: State.CANCELLED,
    Kind.TIMED_OUT: State.TIMED_OUT,
}
#: A terminal kind and its state share one string (``finished``...): a run's counts key.
_STATE_OF_TERMINAL = {k: _STATE_OF_KIND[k] for k in TERMINAL_KINDS}
_TERMINAL_STATES = frozenset(_STATE_OF_TERMINAL.values())
_QUEUED, _RUNNING, _CANCEL_REQUESTED = State.QUEUED, State.RUNNING, State.CANCEL_REQUESTED
_PROGRESS, _STARTED, _CANCEL_REQUESTED_KIND = Kind.PROGRESS, Kind.STARTED, Kind.CANCEL_REQUESTED
_FINISHED, _FAILED, _CANCELLED = Kind.FINISHED, Kind.FAILED, Kind.CANCELLED
_QUEUED_KIND = Kind.QUEUED
#: The fields of an Event after its first four, at their defaults (a queued event's).
_EVENT_DEFAULTS = tuple(Event._field_defaults[f] for f in Event._fields[4:])
#: An Event as the plain tuple the ring holds (see EventStore._events), and back.
_plain = tuple
_new_event = tuple.__new__


#: Comparisons a store keeps (the oldest go first): a few kB each.
MAX_COMPARISONS = 100


class EventStore:
    """Thread-safe, bounded store of events, task records, runs and samples."""

    def __init__(
        self,
        max_events: int = 1_000_000,
        max_samples: int = 36_000,
        max_tasks: int = 2_000_000,
    ) -> None:
        self.max_events = max_events
        self.max_samples = max_samples
        self.max_tasks = max_tasks
        self._lock = threading.Lock()
        #: The event ring holds each event as a plain tuple of its fields, and
        #: :meth:`read_events` gives them back as :class:`Event`. The cyclic garbage collector
        #: stops tracking a plain tuple of ints and strings after its first pass, but never a
        #: namedtuple: a ring of Events was up to a million objects that every full collection
        #: walked again (110 ms a collection at 400,000 objects, 3-6 µs per task of every
        #: in-process run, and of any Python code in the same process, measured on a 2-core VM).
        self._events: deque[tuple] = deque(maxlen=max_events)
        self._event_seq = 0  # events ever appended; the cursor space
        self._samples: deque[Any] = deque(maxlen=max_samples)
        self._sample_seq = 0
        self._tasks: dict[int, TaskRecord] = {}
        self._runs: dict[int, RunRecord] = {}
        #: Terminal events that arrived for a task that already had one. Always 0 unless a
        #: runner is broken; tests assert it stays 0.
        self.duplicate_terminals = 0
        #: Events for tasks the store never registered.
        self.unknown_events = 0
        self._comparisons: deque[Any] = deque(maxlen=MAX_COMPARISONS)

    # -- producers ---------------------------------------------------------------------
    def add_run(self, run_id: int, spec: Any, first_task_id: int, n_tasks: int, t_ns: int,
                info: dict[str, Any] | None = None) -> None:
        """Register a run and its tasks (all queued at ``t_ns``) and log their queued events.
        ``info``: the run's first facts (see :attr:`RunRecord.info`)."""
        ids = range(first_task_id, first_task_id + n_tasks)
        with self._lock:
            self._runs[run_id] = RunRecord(
                run_id, spec, ids, t_ns, counts={"queued": n_tasks}, info=dict(info or {})
            )
            tasks = self._tasks
            for i, tid in enumerate(ids):
                tasks[tid] = TaskRecord(tid, run_id, i, queued_ns=t_ns)
            self._events.extend((run_id, tid, _QUEUED_KIND, t_ns) + _EVENT_DEFAULTS
                                for tid in ids)
            self._event_seq += n_tasks
            self._evict_locked()

    def append(self, batch: Iterable[Event]) -> list[tuple[int, int, State]]:
        """Add a batch of events; return ``(run_id, task_id, state)`` for each new terminal state.

        A second terminal event for one task is not stored (and is counted in
        ``duplicate_terminals``): a task has exactly one ending.
        """
        ended: list[tuple[int, int, State]] = []
        with self._lock:
            tasks = self._tasks
            events = self._events
            runs = self._runs
            n = 0
            # Module constants, not State.X / Kind.X / state.value: an Enum member's lookup
            # and its value are Python-level (0.15-0.3 µs each), and this loop runs for every
            # event of every run (about 2 µs an event before, measured on 10,000-task runs).
            for ev in batch:
                # One unpacking, not an attribute read per field (0.03-0.04 µs each).
                _, task_id, kind, t_ns, pid, tid, thread, task_name, core, value, info = ev
                rec = tasks.get(task_id)
                if rec is None:
                    self.unknown_events += 1
                    continue
                if rec.state in _TERMINAL_STATES:
                    if kind in TERMINAL_KINDS:
                        self.duplicate_terminals += 1
                    continue  # nothing happens to a task after its end
                events.append(_plain(ev))
                n += 1
                if pid:
                    rec.pid = pid
                    rec.tid = tid
                    rec.thread = thread
                    if task_name:
                        rec.task_name = task_name
                    if core >= 0:
                        rec.core = core
                if kind == _PROGRESS:
                    rec.progress = value
                    continue
                if kind == _STARTED:
                    rec.start_ns = t_ns
                    if rec.state is _QUEUED:
                        # A cancel request can arrive before the worker's 'started' (they travel
                        # different paths); the task is then running *with* a cancel pending.
                        rec.state = (_CANCEL_REQUESTED if rec.cancel_requested_ns is not None
                                     else _RUNNING)
                    run = runs.get(rec.run_id)
                    if run is not None:
                        c = run.counts
                        c["running"] = c.get("running", 0) + 1
                        c["queued"] = c.get("queued", 0) - 1
                    continue
                if kind == _CANCEL_REQUESTED_KIND:
                    if rec.cancel_requested_ns is None:
                        rec.cancel_requested_ns = t_ns
                    if rec.state is _RUNNING:
                        rec.state = _CANCEL_REQUESTED
                    if info:
                        rec.reason = info.get("reason", rec.reason)
                    continue
                new = _STATE_OF_TERMINAL.get(kind)
                if new is not None:
                    was_running = rec.start_ns is not None
                    rec.state = new
                    rec.end_ns = t_ns
                    if rec.cancel_requested_ns is not None and rec.cancel_requested_ns > t_ns:
                        # The request was made after the task had already ended (its ending was
                        # still on its way from the worker): it never reached the task.
                        rec.cancel_requested_ns = None
                        rec.reason = ""
                    if kind == _FINISHED:
                        rec.progress = 1.0
                    if info:
                        if kind == _FAILED or "type" in info:
                            rec.error = info
                        # Why a task was cancelled is the requester's to say ("fail-fast:
                        # task 3 failed"); a worker process only saw its flag, so its own
                        # 'cancelled' does not overwrite a requested reason.
                        requested = (kind == _CANCELLED and rec.cancel_requested_ns is not None
                                     and rec.reason)
                        if "reason" in info and not requested:
                            rec.reason = info["reason"]
                    run = runs.get(rec.run_id)
                    if run is not None:
                        c = run.counts
                        c[kind] = c.get(kind, 0) + 1  # a terminal kind is its state's value
                        if was_running:
                            c["running"] = c.get("running", 0) - 1
                        else:
                            c["queued"] = c.get("queued", 0) - 1
                    ended.append((rec.run_id, rec.task_id, new))
            self._event_seq += n
        return ended

    def run_info(self, run_id: int, info: Any) -> None:
        """Merge facts about a run into its record's ``info`` (a new dict: readers that hold
        the old one keep a consistent copy)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                run.info = {**run.info, **info}

    def add_comparison(self, result: Any) -> None:
        """Keep a finished comparison (an ``engine.compare.CompareResult``) beside its runs,
        so that a session trace carries it and a replay shows it again."""
        with self._lock:
            self._comparisons.append(result)

    def comparisons(self) -> list[Any]:
        """Every comparison kept, oldest first."""
        with self._lock:
            return list(self._comparisons)

    def end_run(self, run_id: int, t_ns: int) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.end_ns is None:
                run.end_ns = t_ns

    def add_samples(self, samples: Iterable[Any]) -> None:
        """Add samples (objects with a ``t_ns`` attribute, on the same clock as events)."""
        samples = list(samples)
        with self._lock:
            self._samples.extend(samples)
            self._sample_seq += len(samples)

    def add_sample(self, sample: Any) -> None:
        with self._lock:
            self._samples.append(sample)
            self._sample_seq += 1

    # -- readers -----------------------------------------------------------------------
    def read_events(self, cursor: int = 0, limit: int | None = None) -> tuple[list[Event], int, int]:
        """Events appended since ``cursor``: ``(events, new_cursor, dropped)``.

        ``dropped`` counts events the reader missed because the ring overwrote them.
        """
        with self._lock:
            seq = self._event_seq
            held = len(self._events)
            first_held = seq - held
            dropped = max(0, first_held - cursor)
            start = max(cursor, first_held) - first_held
            stop = held if limit is None else min(held, start + limit)
            if start >= stop:
                return [], max(cursor, first_held + stop), dropped
            if start == 0 and stop == held:
                out = [_new_event(Event, t) for t in self._events]
            elif stop == held and held - start < start:
                # The tail of a long ring: walk it from the right end (islice from the left
                # would step over the `start` older events first, ~5 ms for a full ring).
                out = [_new_event(Event, t) for t in islice(reversed(self._events), held - start)]
                out.reverse()
            else:
                out = [_new_event(Event, t) for t in islice(self._events, start, stop)]
            return out, first_held + stop, dropped

    def read_samples(self, cursor: int = 0) -> tuple[list[Any], int]:
        with self._lock:
            seq = self._sample_seq
            held = len(self._samples)
            first_held = seq - held
            start = max(cursor, first_held) - first_held
            if start >= held:
                return [], seq
            return list(islice(self._samples, start, held)), seq

    def task(self, task_id: int) -> TaskRecord | None:
        with self._lock:
            return self._tasks.get(task_id)

    def records(self, task_ids: Iterable[int]) -> list[TaskRecord]:
        """The records of these tasks that the store holds, under one lock (consistent)."""
        with self._lock:
            t = self._tasks
            return [r for i in task_ids if (r := t.get(i)) is not None]

    def tasks(self, run_id: int | None = None) -> list[TaskRecord]:
        """Snapshot of task records (the live objects: read, do not mutate)."""
        with self._lock:
            if run_id is None:
                return list(self._tasks.values())
            run = self._runs.get(run_id)
            if run is None:
                return []
            t = self._tasks
            return [t[i] for i in run.task_ids if i in t]

    def run(self, run_id: int) -> RunRecord | None:
        with self._lock:
            return self._runs.get(run_id)

    def runs(self) -> list[RunRecord]:
        with self._lock:
            return list(self._runs.values())

    @property
    def event_count(self) -> int:
        return self._event_seq

    @property
    def sample_count(self) -> int:
        return self._sample_seq

    # -- limits --------------------------------------------------------------------------
    def _evict_locked(self) -> None:
        excess = len(self._tasks) - self.max_tasks
        if excess <= 0:
            return
        for run in sorted(self._runs.values(), key=lambda r: r.run_id):
            if excess <= 0:
                break
            if not run.done:
                continue
            for tid in run.task_ids:
                if self._tasks.pop(tid, None) is not None:
                    excess -= 1
            del self._runs[run.run_id]
