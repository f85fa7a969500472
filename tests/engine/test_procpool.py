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


def test_an_idle_worker_takes_the_task_prefetched_behind_a_busy_one(session: Session) -> None:
    """Two workers, three 1.5 s tasks: the third waits in the first worker's pipe behind the
    first. When the second task ends early (cancelled), its worker sits idle with nothing
    queued: it takes the third at once, instead of the third waiting for the first to end."""
    run = session.start(make_spec("processes", "sleep", 3, "1500ms", 2))
    first, second, third = run.first_task_id, run.first_task_id + 1, run.first_task_id + 2
    _wait_started(session, first)
    _wait_started(session, second)
    assert session.store.task(third).start_ns is None  # prefetched behind one of them
    assert session.cancel_task(second)
    assert run.wait(30)
    a, b, c = session.store.tasks(run.run_id)
    assert (a.state, b.state, c.state) == (State.FINISHED, State.CANCELLED, State.FINISHED)
    assert c.pid == b.pid != a.pid  # on the worker that went idle
    # It started well before the first task ended (it used to start as the first ended).
    assert c.start_ns < a.end_ns - 0.5e9, ((a.end_ns - c.start_ns) / 1e9)
    assert session.store.duplicate_terminals == 0


def test_a_taken_task_runs_once_when_the_worker_it_was_taken_from_dies(
        session: Session) -> None:
    """The worker a prefetched task was taken from keeps a placeholder for it; when that worker
    then crashes, the placeholder is not queued again: the task runs once, where it went."""
    run = session.start(make_spec("processes", "crash", 3, "2000ms", 2,
                                  params={"every": 3}))  # the first task crashes at 1 s
    first, second, third = run.first_task_id, run.first_task_id + 1, run.first_task_id + 2
    _wait_started(session, first)
    _wait_started(session, second)
    assert session.cancel_task(second)
    _wait_started(session, third)
    assert run.wait(30)
    a, b, c = session.store.tasks(run.run_id)
    assert (a.state, b.state, c.state) == (State.FAILED, State.CANCELLED, State.FINISHED)
    assert c.pid == b.pid != a.pid
    assert session.store.duplicate_terminals == 0
    events, _, _ = session.store.read_events(0)
    assert [e.kind for e in events if e.task_id == third].count("started") == 1


def test_a_task_taken_from_a_worker_runs_there_if_it_comes_back() -> None:
    """The worker a task was taken from skips it by its task id; once it has, the id must
    not stay flagged: the same task sent to it again (its new worker died before starting it,
    and it was queued again) runs there."""
    from engine.models._procworker import run_task
    from engine.models.execute import TaskOrder

    events: list = []
    pool = ProcPool(2, events.extend, name="t")

    def order(tid: int, size_s: float) -> TaskOrder:
        return TaskOrder(1, tid, tid, "sleep", size_s, {}, {}, None)

    def started(tid: int) -> bool:
        return any(e.task_id == tid and e.kind == "started" for e in list(events))

    try:
        deadline = time.monotonic() + 20
        while pool.ready_ns is None and time.monotonic() < deadline:
            time.sleep(0.01)
        first = pool.submit(run_task, order(1, 1.0))
        pool.submit(run_task, order(2, 1.0))
        third = pool.submit(run_task, order(3, 0.05))  # waits behind one of them
        while not (started(1) and started(2)) and time.monotonic() < deadline:
            time.sleep(0.005)
        busy_pid = next(e for e in events if e.task_id == 1 and e.kind == "started")
        assert pool.cancel_task(2)
        assert third.result(timeout=20) == "finished"
        assert first.result(timeout=20) == "finished"
        time.sleep(0.2)  # the first task's worker passes the placeholder
        again = pool.submit(run_task, order(3, 0.05))  # the first idle worker: task 1's
        assert again.result(timeout=20) == "finished"
        ends = [e for e in events if e.task_id == 3 and e.kind == "finished"]
        assert len(ends) == 2, ends
        assert ends[1].pid == busy_pid.pid  # it ran where it had been skipped
    finally:
        pool.shutdown()
