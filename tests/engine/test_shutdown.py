"""Shutdown: 1,000 tasks under every model at once end within about 2 s, and nothing is left:
no worker process, no non-daemon thread, no task still running."""

from __future__ import annotations

import time

import pytest

import engine
from engine.models.procpool import ProcPool, TaskKilled
from tests.conftest import engine_children, non_daemon_threads
from tests.engine.enginekit import AVAILABLE_MODELS, IN_PROCESS_MODELS, started, wait_until

#: What each model runs in the big shutdown test: every task can be running at once where the
#: model allows it (asyncio: 1,000 coroutines; threads: 100 threads).
BIG = {
    "sequential": ("cpu", {}),
    "asyncio": ("sleep", {}),
    "threads": ("sleep", {"workers": 100}),
    "processes": ("cpu", {}),
    "asyncio-processes": ("cpu", {}),
}


def test_shutdown_with_1000_tasks_under_every_model(leak_check) -> None:
    children_before = engine_children()
    threads_before = non_daemon_threads()
    session = engine.Session()
    runs = []
    for m in AVAILABLE_MODELS:
        workload, kw = BIG.get(m, ("cpu", {}))
        runs.append(session.start(engine.make_spec(m, workload, tasks=1000, size="5s", **kw)))
    for run in runs:
        wait_until(lambda run=run: started(session, run.first_task_id), timeout=20)
    time.sleep(0.3)
    running = sum(1 for t in session.store.tasks() if t.state.value == "running")
    assert running >= len(runs)
    t0 = time.monotonic()
    report = session.shutdown()
    took = time.monotonic() - t0
    print(f"shutdown of {len(runs)} runs x 1000 tasks ({running} running): {took:.3f}s "
          f"(report {report.seconds:.3f}s)")
    assert took < 3.0, took
    assert report.clean, report.stuck_tasks[:10]
    # Every task has its ending, and the store agrees with itself.
    assert session.store.duplicate_terminals == 0
    for run in runs:
        tasks = session.store.tasks(run.run_id)
        assert len(tasks) == 1000
        assert all(t.state.terminal for t in tasks), run.spec.model
        assert {t.state.value for t in tasks} <= {"cancelled", "finished"}
        assert run.record.done
        counts = run.record.counts
        assert counts.get("running", 0) == 0 and counts.get("queued", 0) == 0, counts
    # Checked at once, not after a grace period: shutdown returned, so it is over.
    assert set(engine_children()) - set(children_before) == set()
    assert non_daemon_threads() - threads_before == set()
    # Shutting down twice is harmless; starting after shutdown is refused.
    assert session.shutdown().clean
    with pytest.raises(RuntimeError):
        session.start(engine.make_spec("threads", "cpu"))


@pytest.mark.parametrize("model", [m for m in AVAILABLE_MODELS if m in ("processes",
                                                                        "asyncio-processes")])
def test_shutdown_kills_a_process_stuck_in_a_c_call(leak_check, model: str) -> None:
    session = engine.Session()
    run = session.start(engine.make_spec(model, "http", tasks=4, size="5s", workers=2,
                                         params={"delay": "5s"}))
    wait_until(lambda: started(session, run.first_task_id) and started(
        session, run.first_task_id + 1))
    time.sleep(0.2)
    t0 = time.monotonic()
    report = session.shutdown()
    took = time.monotonic() - t0
    assert took < 3.0, took
    assert report.clean
    st = {t.index: t.state.value for t in session.store.tasks(run.run_id)}
    assert st == {0: "cancelled", 1: "cancelled", 2: "cancelled", 3: "cancelled"}


@pytest.mark.parametrize("model", [m for m in IN_PROCESS_MODELS if m != "asyncio"])
def test_shutdown_reports_a_thread_it_cannot_stop(leak_check, model: str) -> None:
    """A thread stuck in a C call cannot be killed: shutdown still returns on time, and says
    which task is still running instead of pretending it stopped."""
    session = engine.Session()
    run = session.start(engine.make_spec(model, "http", tasks=1, size="2.5s",
                                         params={"delay": "2.5s"}))
    wait_until(lambda: started(session, run.first_task_id))
    time.sleep(0.2)
    t0 = time.monotonic()
    report = session.shutdown()
    assert time.monotonic() - t0 < 3.0
    assert report.stuck_tasks == [run.first_task_id]
    assert not report.clean
    # The thread ends by itself when its request returns; then nothing is left.
    wait_until(lambda: not non_daemon_threads(), timeout=10)


def test_pool_shutdown_kills_a_worker_stuck_in_a_long_c_call(leak_check) -> None:
    """A top-level function (time.sleep, a C call that checks nothing) through the real pool:
    shutdown kills its worker after the grace period instead of waiting 60 s."""
    pool = ProcPool(1, lambda batch: None, name="stuck-test")
    fut = pool.submit(time.sleep, 60)
    wait_until(lambda: fut.running(), timeout=10)
    time.sleep(0.2)
    pid = pool.pids()[0]
    t0 = time.monotonic()
    pool.shutdown(grace_s=0.2)
    assert time.monotonic() - t0 < 3.0
    with pytest.raises(TaskKilled):
        fut.result(timeout=2)
    assert pid not in engine_children()
