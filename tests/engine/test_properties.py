"""Property-based tests of the task lifecycle (issue 8).

Random sequences of start / cancel task / cancel run / force-cancel / cancel-all / wait, across
every model, with workloads that finish, fail, time out or kill their worker, never break the
invariants:

* exactly one terminal event per task (and nothing after it);
* times in order: queued <= start <= end, and a cancel request between queued and end;
* run counts that add up to the task count, and match the task records.

Each example gets a fresh Session (so a failing example shrinks on its own), shut down cleanly.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.events import TERMINAL_KINDS, Kind
from tests.conftest import engine_children
from tests.engine.enginekit import AVAILABLE_MODELS, PROCESS_MODELS, check_invariants

WORKLOADS = ["sleep", "cpu", "fail", "crash", "timeout"]


def _spec(model: str, workload: str, n: int, size: str) -> engine.RunSpec:
    workers = None if model in ("sequential", "asyncio") else 2
    if workload == "crash" and model not in PROCESS_MODELS:
        workload = "fail"  # crash needs a process model; fail is its in-process analogue
    if workload == "timeout":
        return engine.make_spec(model, "sleep", tasks=n, size="2s", workers=workers,
                                timeout=size if size != "0ms" else "10ms")
    params = {"every": 2} if workload in ("fail", "crash") else None
    return engine.make_spec(model, workload, tasks=n, size=size, workers=workers, params=params)


start_op = st.tuples(st.just("start"), st.sampled_from(AVAILABLE_MODELS),
                     st.sampled_from(WORKLOADS), st.integers(1, 5),
                     st.sampled_from(["0ms", "15ms", "60ms"]))
task_op = st.tuples(st.sampled_from(["cancel_task", "force_task"]), st.integers(0, 30))
run_op = st.tuples(st.sampled_from(["cancel_run", "force_run"]), st.integers(0, 6))
misc_op = st.one_of(st.tuples(st.just("cancel_all")),
                    st.tuples(st.just("wait"), st.sampled_from([0.0, 0.01, 0.05])))
ops_strategy = st.lists(st.one_of(start_op, task_op, run_op, misc_op), min_size=1, max_size=10)


def _check_record_times(session: engine.Session, run: engine.Run) -> None:
    for t in session.store.tasks(run.run_id):
        assert t.state.terminal, t
        assert t.end_ns is not None and t.queued_ns <= t.end_ns, t
        if t.start_ns is not None:
            assert t.queued_ns <= t.start_ns <= t.end_ns, t
        if t.cancel_requested_ns is not None:
            assert t.queued_ns <= t.cancel_requested_ns <= t.end_ns, t


def _check_counts(session: engine.Session, run: engine.Run) -> None:
    counts = run.record.counts
    states = Counter(t.state.value for t in session.store.tasks(run.run_id))
    assert sum(states.values()) == run.n
    for k in ("finished", "failed", "cancelled", "timed_out"):
        assert counts.get(k, 0) == states.get(k, 0), (k, counts, states)
    assert counts.get("queued", 0) == 0 and counts.get("running", 0) == 0, counts


def _check_event_log(session: engine.Session, run: engine.Run) -> None:
    events, _, dropped = session.store.read_events(0)
    assert dropped == 0
    terminals = Counter(e.task_id for e in events
                        if e.run_id == run.run_id and e.kind in TERMINAL_KINDS)
    assert set(terminals) == set(run.task_ids)
    assert set(terminals.values()) == {1}
    queued = [e for e in events if e.run_id == run.run_id and e.kind == Kind.QUEUED]
    assert len(queued) == run.n


@settings(max_examples=100, deadline=None,
          # Examples are real runs with real processes: slow on purpose, not by accident.
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy)
def test_random_lifecycles_keep_the_invariants(ops: list[tuple]) -> None:
    children_before = set(engine_children())
    session = engine.Session()
    runs: list[engine.Run] = []
    try:
        for op in ops:
            kind = op[0]
            if kind == "start":
                runs.append(session.start(_spec(*op[1:])))
            elif kind in ("cancel_task", "force_task"):
                ids = [tid for r in runs for tid in r.task_ids]
                if ids:
                    session.cancel_task(ids[op[1] % len(ids)], force=kind == "force_task")
            elif kind in ("cancel_run", "force_run"):
                if runs:
                    session.cancel_run(runs[op[1] % len(runs)].run_id, force=kind == "force_run")
            elif kind == "cancel_all":
                session.cancel_all()
            elif kind == "wait" and runs:
                runs[-1].wait(op[1])
        for run in runs:
            assert run.wait(30), f"run {run.run_id} ({run.spec.model}/{run.spec.workload}) " \
                                 f"never ended; ops={ops}"
        for run in runs:
            check_invariants(session, run)
            _check_record_times(session, run)
            _check_counts(session, run)
            _check_event_log(session, run)
        assert session.store.duplicate_terminals == 0
        assert session.store.unknown_events == 0
    finally:
        report = session.shutdown()
    assert report.clean, report
    left = set(engine_children()) - children_before
    assert not left, left
