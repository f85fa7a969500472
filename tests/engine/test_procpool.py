"""ProcPool: one running job per worker plus one prefetched; kills and crashes lose nothing."""

from __future__ import annotations

import os
import time

import pytest

from engine import Session, State, make_spec
from engine.models.procpool import ProcPool


def _wait_started(session: Session, task_id: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = session.store.task(task_id)
        if rec is not None and rec.start_ns is not None:
            return
        time.sleep(0.005)
    raise AssertionError(f"task {task_id} never started")


@pytest.fixture
def session():
    s = Session(sample_hz=None)
    yield s
    report = s.shutdown()
    assert report.clean, report


def test_crash_requeues_the_job_waiting_in_the_dead_workers_pipe(session: Session) -> None:
    # One worker: task 0 crashes it while task 1 waits in its pipe (prefetched).
    run = session.start(make_spec("processes", "crash", 4, "100ms", 1, params={"every": 2}))
    assert run.wait(30)
    tasks = session.store.tasks(run.run_id)
    states = [t.state for t in tasks]
    assert states == [State.FAILED, State.FINISHED, State.FAILED, State.FINISHED]
    assert "exited with code 70" in tasks[0].error["message"]
    # the survivors ran on replacement workers, not on the dead ones
    assert tasks[1].pid != tasks[0].pid and tasks[3].pid != tasks[2].pid
    assert session.store.duplicate_terminals == 0


def test_force_cancel_kills_only_the_running_task(session: Session) -> None:
    run = session.start(make_spec("processes", "sleep", 3, "300ms", 1))
    first = run.first_task_id
    _wait_started(session, first)
    pid = session.store.task(first).pid
    assert session.cancel_task(first, force=True)
    assert run.wait(30)
    tasks = session.store.tasks(run.run_id)
    assert tasks[0].state is State.CANCELLED and tasks[0].reason
    assert [t.state for t in tasks[1:]] == [State.FINISHED, State.FINISHED]
    assert all(t.pid != pid for t in tasks[1:])  # the killed worker was replaced
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_cancel_of_a_prefetched_task_ends_it_without_starting(session: Session) -> None:
    run = session.start(make_spec("processes", "sleep", 2, "400ms", 1))
    first = run.first_task_id
    _wait_started(session, first)
    second = session.store.task(first + 1)
    assert second.state is State.QUEUED  # sent to the worker's pipe, not started
    assert session.cancel_task(first + 1)
    assert run.wait(30)
    first_rec, second_rec = session.store.tasks(run.run_id)
    assert first_rec.state is State.FINISHED
    assert second_rec.state is State.CANCELLED
    assert second_rec.start_ns is None


def _sleepy(x: float) -> float:
    time.sleep(x)
    return x


def test_pool_is_a_plain_executor_too() -> None:
    pool = ProcPool(2, lambda batch: None, name="t")
    try:
        futs = [pool.submit(_sleepy, 0.01 * i) for i in range(6)]
        assert [f.result(timeout=20) for f in futs] == [0.01 * i for i in range(6)]
        assert len(set(pool.pids())) == 2
    finally:
        pool.shutdown()
