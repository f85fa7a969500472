"""Helpers the engine tests share (plain functions; fixtures live in tests/conftest.py)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

import engine
from engine.events import TERMINAL_KINDS, Kind

#: The models that run on this machine alone and that this interpreter really has (the
#: others are reported unavailable, never faked). ``dask`` is tested in test_dask.py, on one
#: cluster shared by its tests: the generic tests would start one per test (1 to 10 s each).
CLUSTER_MODELS = ("dask",)
AVAILABLE_MODELS = [m.name for m in engine.all_models()
                    if m.available and m.name not in CLUSTER_MODELS]
PROCESS_MODELS = [m for m in AVAILABLE_MODELS if engine.model_info(m).isolated]
IN_PROCESS_MODELS = [m for m in AVAILABLE_MODELS if m not in PROCESS_MODELS]
TERMINAL_STATES = ("finished", "failed", "cancelled", "timed_out")


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, every: float = 0.005) -> Any:
    """Poll ``pred`` until it returns something truthy; fail the test on timeout."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {timeout}s: {pred}")
        time.sleep(every)


def run_events(session: engine.Session, run_id: int) -> list[engine.Event]:
    events, _, dropped = session.store.read_events(0)
    assert dropped == 0
    return [e for e in events if e.run_id == run_id]


def check_invariants(session: engine.Session, run: engine.Run) -> dict[int, list[engine.Event]]:
    """The terminal-state invariants every finished run must satisfy. Returns events by task."""
    store = session.store
    assert store.duplicate_terminals == 0
    assert store.unknown_events == 0
    by_task: dict[int, list[engine.Event]] = defaultdict(list)
    for ev in run_events(session, run.run_id):
        by_task[ev.task_id].append(ev)
    assert sorted(by_task) == list(run.task_ids)
    for tid, evs in by_task.items():
        kinds = [e.kind for e in evs]
        assert kinds[0] == Kind.QUEUED, (tid, kinds)
        assert kinds.count(Kind.QUEUED) == 1, (tid, kinds)
        assert kinds.count(Kind.STARTED) <= 1, (tid, kinds)
        terminals = [e for e in evs if e.kind in TERMINAL_KINDS]
        assert len(terminals) == 1, (tid, kinds)
        term = terminals[0]
        assert evs[-1] is term, f"task {tid}: events after its end: {kinds}"
        queued_ns = evs[0].t_ns
        assert term.t_ns >= queued_ns
        started = [e for e in evs if e.kind == Kind.STARTED]
        if started:
            s = started[0]
            assert kinds.index(Kind.STARTED) < kinds.index(term.kind)
            assert queued_ns <= s.t_ns <= term.t_ns, (tid, queued_ns, s.t_ns, term.t_ns)
            assert s.pid > 0 and s.tid > 0, s
            # Progress comes from the worker that runs the task, between start and end.
            last = 0.0
            for e in evs:
                if e.kind == Kind.PROGRESS:
                    assert s.t_ns <= e.t_ns <= term.t_ns
                    assert (e.pid, e.tid) == (s.pid, s.tid)
                    assert last <= e.value <= 1.0, (tid, last, e.value)  # never goes back
                    last = e.value
        else:
            # Only a task cancelled before it started may end without a started event.
            assert term.kind == Kind.CANCELLED, (tid, kinds)
        rec = store.task(tid)
        assert rec is not None and rec.state.value == term.kind
        assert rec.end_ns == term.t_ns
        assert rec.queued_ns == queued_ns
        assert rec.start_ns == (started[0].t_ns if started else None)
        if term.kind == Kind.FAILED:
            assert rec.error and rec.error["type"] and rec.error["message"]
            assert "traceback" in rec.error
    rr = run.record
    assert rr.done and rr.end_ns is not None and rr.wall_s is not None and rr.wall_s >= 0
    counts = rr.counts
    assert counts.get("queued", 0) == 0, counts
    assert counts.get("running", 0) == 0, counts
    states = [store.task(t).state.value for t in run.task_ids]  # type: ignore[union-attr]
    for k in ("finished", "failed", "cancelled", "timed_out"):
        assert counts.get(k, 0) == states.count(k), (k, counts)
    assert sum(counts.get(k, 0) for k in ("finished", "failed", "cancelled", "timed_out")) == run.n
    return by_task


def run_to_end(session: engine.Session, model: str, workload: str, wait_s: float = 60.0,
               **kw: Any) -> engine.Run:
    """Start a run, wait until it ended, check the terminal-state invariants, return it."""
    run = session.start(engine.make_spec(model, workload, **kw))
    assert run.wait(wait_s), f"{model}/{workload} did not end within {wait_s}s"
    check_invariants(session, run)
    return run


def states(session: engine.Session, run: engine.Run) -> dict[int, str]:
    """index -> state of every task of the run."""
    return {t.index: t.state.value for t in session.store.tasks(run.run_id)}


def started(session: engine.Session, task_id: int) -> bool:
    rec = session.store.task(task_id)
    return rec is not None and rec.start_ns is not None
