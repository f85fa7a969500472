"""One test body per concurrency model (and per workload), as qasync runs one body over every
executor kind: the event stream's invariants, the real worker identity, and the physics."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import psutil
import pytest

import engine
from engine.events import Kind
from tests.engine.enginekit import (
    AVAILABLE_MODELS,
    PROCESS_MODELS,
    check_invariants,
    run_events,
    run_to_end,
    states,
    wait_until,
)

CORES = os.cpu_count() or 1

#: The terminal state every task of a plain run of each workload ends in.
EXPECTED = {w: "finished" for w in engine.WORKLOADS}
EXPECTED.update({"fail": "failed", "crash": "failed"})

#: Parameters a workload cannot run without (the custom workload needs a function to call).
REQUIRED_PARAMS = {"custom": {"function": "time:sleep", "args": [0.06]}}


def _combos() -> list[tuple[str, str]]:
    out = []
    for m in AVAILABLE_MODELS:
        for w, wl in engine.WORKLOADS.items():
            if wl.process_only and m not in PROCESS_MODELS:
                continue
            out.append((m, w))
    return out


def test_every_workload_is_parametrized() -> None:
    covered = {w for _, w in _combos()}
    assert covered == set(engine.WORKLOADS)
    assert {"sequential", "asyncio", "threads", "processes", "asyncio-processes"} <= set(
        AVAILABLE_MODELS
    )


@pytest.mark.parametrize(("model", "workload"), _combos())
def test_run_invariants(session, model: str, workload: str) -> None:
    n = 4
    run = run_to_end(session, model, workload, tasks=n, size="60ms",
                     params=REQUIRED_PARAMS.get(workload))
    tasks = session.store.tasks(run.run_id)
    assert [t.state.value for t in tasks] == [EXPECTED[workload]] * n
    for t in tasks:
        assert t.start_ns is not None and t.end_ns is not None
        assert t.queued_ns <= t.start_ns <= t.end_ns
        assert 0 <= t.core < CORES, t
        assert t.pid > 0 and t.tid > 0
        if workload == "fail":
            assert t.error["type"] == "WorkloadFailure"
            assert "failed on purpose" in t.error["message"]
            assert "WorkloadFailure" in t.error["traceback"]
        elif workload == "crash":
            assert t.error["type"] == "WorkerDied"
            assert f"exited with code {engine.workloads.CRASH_EXIT_CODE}" in t.error["message"]
        else:
            assert t.error is None
            assert t.progress == 1.0
            if workload != "file":
                assert t.duration_ns >= 50_000_000  # it really did its ~60 ms of work
            # A file task's work is its rounds (progress 1.0: all of them), sized at the disk's
            # pace when its run started; the disk may run faster since, and concurrent fsyncs
            # share the journal's commits, so its time may be shorter: the disk's truth.
            # test_sizes checks that an uncontended one takes its size on a quiet machine.
    if model in PROCESS_MODELS:
        assert all(t.pid != os.getpid() for t in tasks)
    else:
        assert all(t.pid == os.getpid() for t in tasks)


@pytest.mark.parametrize("model", ["sequential", "threads", "asyncio", "processes"])
def test_file_runs_time_the_disk_at_their_start(session, monkeypatch, model: str) -> None:
    """fsync's pace drifts (0.26-0.40 ms a round on a shared VM disk, second to second), so a
    file task's fixed rounds are sized at the pace the disk has when its run starts, never at
    a cached rate: here one of 2 ms a round (500 rounds/s), which would make 60 ms tasks take
    about 9 ms. Every model's tasks get the same rounds: the run's own rate."""
    from engine.workloads import calibrate

    stale = {**calibrate.calibration(), "file_rounds_per_s": 500.0}
    monkeypatch.setattr(calibrate, "_cached", stale)
    monkeypatch.setattr(calibrate, "_provisional_at", 0.0)
    workers = None if model == "sequential" else 2
    run = run_to_end(session, model, "file", tasks=4, size="60ms", workers=workers)
    tasks = session.store.tasks(run.run_id)
    print(model, run.calib["file_rounds_per_s"], [f"{t.duration_ns / 1e6:.1f}" for t in tasks])
    assert all(t.state is engine.State.FINISHED and t.progress == 1.0 for t in tasks)
    assert run.calib["file_rounds_per_s"] != 500.0
    assert calibrate.calibration()["file_rounds_per_s"] == run.calib["file_rounds_per_s"]
    assert stale["file_rounds_per_s"] == 500.0  # a new dict: a running run's is never changed


def test_timing_the_disk_is_not_part_of_the_run(session, monkeypatch) -> None:
    """Our own timing of the disk happens before the run is queued: a model's wall (and its
    "lost per task") never includes it. Here it is made to take 0.5 s."""
    from engine.workloads import calibrate

    real = calibrate.file_round_s

    def slow(*args: object) -> float:
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(calibrate, "file_round_s", slow)
    run = run_to_end(session, "sequential", "file", tasks=2, size="20ms")
    first = min(t.start_ns for t in session.store.tasks(run.run_id))
    assert (first - run.record.start_ns) / 1e9 < 0.25


def test_file_rate_now_replaces_the_cached_one_and_loading_times_nothing(
        tmp_path, monkeypatch) -> None:
    """Loading the cache does no file I/O (a cpu run must not pay for timing the disk); the
    file pace is timed by :func:`calibrate.file_rate_now` alone, which replaces the cached
    figure, faster or slower, in a new dict."""
    from engine.workloads import calibrate

    monkeypatch.setenv("TASKSCOPE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TASKSCOPE_RECALIBRATE", raising=False)
    timings = []
    real = calibrate.file_round_s
    monkeypatch.setattr(calibrate, "file_round_s", lambda *a: timings.append(a) or real(*a))
    rates = {"cpu_iters_per_s": 2e7, "numpy_calls_per_s": 1500.0}
    for cached in (10.0, 1e7):  # slower, then faster than any disk this runs on
        calibrate._cache_path().write_text(json.dumps({**rates, "file_rounds_per_s": cached}))
        monkeypatch.setattr(calibrate, "_cached", None)
        monkeypatch.setattr(calibrate, "_provisional_at", 0.0)
        loaded = calibrate.calibration()
        assert loaded == {**rates, "file_rounds_per_s": cached}
        assert not timings  # loading timed nothing
        now = calibrate.file_rate_now()
        assert timings and 10.0 < now < 1e7
        assert calibrate.calibration() == {**rates, "file_rounds_per_s": now}
        assert loaded["file_rounds_per_s"] == cached
        timings.clear()


@pytest.mark.parametrize("model", ["sequential", "threads", "asyncio", "processes"])
def test_cpu_tasks_do_their_size_of_cpu_work_with_a_rate_cached_too_slow(
        session, monkeypatch, model: str) -> None:
    """A cached CPU rate slower than the machine is now (22M iterations/s cached, 25M done:
    "60ms" tasks did 51-56 ms) must not make tasks short: a task works until its own CPU
    clock has its size; the rate only sets how often it looks at that clock. At 1M
    iterations/s (about 20 times too slow) every task must still take at least 60 ms, and
    not run away."""
    from engine.workloads import calibrate

    stale = {**calibrate.calibration(), "cpu_iters_per_s": 1_000_000.0}
    monkeypatch.setattr(calibrate, "_cached", stale)
    monkeypatch.setattr(calibrate, "_provisional_at", 0.0)
    size = 0.06
    workers = None if model in ("sequential", "asyncio") else 2
    run = run_to_end(session, model, "cpu", tasks=4, size="60ms", workers=workers)
    tasks = session.store.tasks(run.run_id)
    durations = [t.duration_ns / 1e9 for t in tasks]
    assert all(t.state is engine.State.FINISHED and t.progress == 1.0 for t in tasks)
    assert min(durations) >= size, durations  # its own CPU clock said 60 ms
    # And not run away (the loop must end once its own clock has the size). Its wall time is
    # that CPU time plus every wait for the GIL, the loop and a core: 4 interleaved asyncio
    # tasks take about 4x alone, and at load 8-12 on 2 cores they took 0.8-1.04 s (13-17x),
    # so 8x failed on a busy machine. A runaway is bounded generously, not by the load.
    assert max(durations) < 60 * size, durations


# -- real worker identity ---------------------------------------------------------------------
def _live_descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.mark.parametrize("model", PROCESS_MODELS)
def test_process_tasks_run_in_child_processes(session, model: str) -> None:
    run = session.start(engine.make_spec(model, "sleep", tasks=2, size="400ms", workers=2))
    # While they run, every task's pid is a live descendant of this process, not this process.
    recs = wait_until(lambda: [t for t in session.store.tasks(run.run_id) if t.pid]
                      if all(t.pid for t in session.store.tasks(run.run_id)) else None)
    children = _live_descendants()
    pids = {t.pid for t in recs}
    assert os.getpid() not in pids
    assert pids <= children, (pids, children)
    assert pids <= set(session.worker_pids())
    assert len(pids) == 2  # two workers, one task each
    assert run.wait(30)
    check_invariants(session, run)
    for t in session.store.tasks(run.run_id):
        assert t.tid == t.pid  # a worker runs its task on its main thread
        assert t.thread == "MainThread"
        if model == "asyncio-processes":
            assert t.task_name == f"task-{t.task_id}"


def test_thread_tasks_report_distinct_native_ids(session) -> None:
    k = 4
    run = run_to_end(session, "threads", "sleep", tasks=3 * k, size="150ms", workers=k)
    tasks = session.store.tasks(run.run_id)
    tids = {t.tid for t in tasks}
    assert len(tids) == k, tids
    assert threading.main_thread().native_id not in tids
    assert session.loop_thread_id not in tids
    assert {t.pid for t in tasks} == {os.getpid()}
    assert all(t.thread.startswith(f"run{run.run_id}-thread") for t in tasks)
    # A native id that really is one of this process's threads (it may have exited by now).
    assert all(t.tid > 0 for t in tasks)


def test_threads_really_overlap(session) -> None:
    run = run_to_end(session, "threads", "sleep", tasks=4, size="300ms", workers=4)
    tasks = session.store.tasks(run.run_id)
    latest_start = max(t.start_ns for t in tasks)
    earliest_end = min(t.end_ns for t in tasks)
    assert latest_start < earliest_end  # all four were running at one moment


def test_coroutine_tasks_share_the_engine_loop_thread(session) -> None:
    run = run_to_end(session, "asyncio", "sleep", tasks=20, size="100ms")
    tasks = session.store.tasks(run.run_id)
    loop_tid = session.loop_thread_id
    assert loop_tid not in (0, threading.main_thread().native_id)
    assert {t.tid for t in tasks} == {loop_tid}
    assert {t.pid for t in tasks} == {os.getpid()}
    assert {t.thread for t in tasks} == {"taskscope-engine-loop"}
    # Each coroutine is a real asyncio task with its own name.
    assert len({t.task_name for t in tasks}) == 20
    assert all(t.task_name.startswith("task-") for t in tasks)
    # They ran concurrently on that one thread: 20 x 100 ms well under 2 s.
    assert run.record.wall_s < 1.5


def test_asyncio_on_a_callers_loop_runs_on_that_loops_thread(session) -> None:
    """The GUI's bounded lesson: coroutines on the caller's loop, not the engine's."""
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, name="callers-loop", daemon=True)
    th.start()
    try:
        run = session.start(engine.make_spec("asyncio", "sleep", tasks=5, size="50ms"),
                            loop=loop)
        assert run.wait(10)
        check_invariants(session, run)
        tasks = session.store.tasks(run.run_id)
        assert {t.tid for t in tasks} == {th.native_id}
        assert {t.thread for t in tasks} == {"callers-loop"}
        assert th.native_id != session.loop_thread_id
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join(5)
        loop.close()


def test_sequential_uses_one_thread_one_task_at_a_time(session) -> None:
    run = run_to_end(session, "sequential", "sleep", tasks=5, size="50ms")
    tasks = sorted(session.store.tasks(run.run_id), key=lambda t: t.start_ns)
    assert len({t.tid for t in tasks}) == 1
    assert tasks[0].tid != threading.main_thread().native_id
    assert tasks[0].tid != session.loop_thread_id
    for a, b in zip(tasks, tasks[1:], strict=False):
        assert a.end_ns <= b.start_ns  # never two at once
    assert [t.index for t in tasks] == list(range(5))  # in order


@pytest.mark.parametrize("model", AVAILABLE_MODELS)
def test_events_name_their_worker(session, model: str) -> None:
    run = session.start(engine.make_spec(model, "cpu", tasks=2, size="80ms"))
    assert run.wait(30)
    by_task = check_invariants(session, run)
    for evs in by_task.values():
        worker = {(e.pid, e.tid, e.thread) for e in evs if e.kind in (Kind.STARTED, Kind.PROGRESS,
                                                                      Kind.FINISHED)}
        assert len(worker) == 1, worker  # one task, one real worker, from start to end
        assert all(0 <= e.core < CORES for e in evs if e.kind != Kind.QUEUED)
        assert any(e.kind == Kind.PROGRESS for e in evs)


def _max_overlap(tasks) -> int:
    edges = sorted([(t.start_ns, 1) for t in tasks] + [(t.end_ns, -1) for t in tasks])
    cur = best = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


@pytest.mark.parametrize("model", [m for m in AVAILABLE_MODELS if m != "sequential"])
def test_workers_limit_how_many_run_at_once(session, model: str) -> None:
    run = run_to_end(session, model, "sleep", tasks=9, size="120ms", workers=3)
    tasks = session.store.tasks(run.run_id)
    assert _max_overlap(tasks) == 3
    assert run.record.wall_s >= 3 * 0.12 * 0.9  # three rounds of three, not one round of nine



@pytest.mark.parametrize("model", ["threads", "processes"])
def test_ended_ns_is_the_callers_clock_once_the_last_result_is_in_the_store(session,
                                                                          model: str) -> None:
    # The bench times the engine to this moment, as it times a raw executor to its last
    # result: the last task's own end stamp (a worker's clock) leaves the hand-back out.
    t0 = time.monotonic_ns()
    run = session.start(engine.make_spec(model, "sleep", 4, 0.0, 2))
    assert run.wait(30)
    t1 = time.monotonic_ns()
    last_end = max(t.end_ns or 0 for t in session.store.tasks(run.run_id))
    assert run.ended_ns is not None
    assert t0 < last_end <= run.ended_ns <= t1

@pytest.mark.parametrize("model", AVAILABLE_MODELS)
def test_many_tiny_tasks_keep_every_invariant(session, model: str) -> None:
    n = 3000
    run = run_to_end(session, model, "cpu", tasks=n, size=0, wait_s=90)
    assert set(states(session, run).values()) == {"finished"}
    assert run.record.counts["finished"] == n


def test_progress_is_reported_every_few_milliseconds(session) -> None:
    run = run_to_end(session, "threads", "cpu", tasks=1, size="200ms")
    evs = [e for e in run_events(session, run.run_id) if e.kind == Kind.PROGRESS]
    assert len(evs) >= 5
    gaps = [(b.t_ns - a.t_ns) / 1e6 for a, b in zip(evs, evs[1:], strict=False)]
    assert sorted(gaps)[len(gaps) // 2] < 100  # median gap, ms (events are capped at ~10 ms)


# -- policy --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", AVAILABLE_MODELS)
def test_collect_runs_every_task(session, model: str) -> None:
    run = run_to_end(session, model, "fail", tasks=6, size="30ms", workers=1, params={"every": 2})
    states = {t.index: t.state.value for t in session.store.tasks(run.run_id)}
    assert states == {i: ("failed" if i % 2 == 0 else "finished") for i in range(6)}


@pytest.mark.parametrize("model", AVAILABLE_MODELS)
def test_fail_fast_cancels_the_rest(session, model: str) -> None:
    run = run_to_end(session, model, "fail", tasks=6, size="400ms", workers=1,
                     policy="fail-fast", params={"every": 2})
    tasks = session.store.tasks(run.run_id)
    by_index = {t.index: t for t in tasks}
    assert by_index[0].state.value == "failed"
    # Task 1 may have been handed to the worker before the failure was seen; it is then
    # stopped by its flag. Nothing after it may run to completion or fail.
    assert by_index[1].state.value in ("cancelled", "finished")
    for i in range(2, 6):
        t = by_index[i]
        assert t.state.value == "cancelled", t
        assert t.reason == "fail-fast: task 0 failed", t
    # The run ends soon after the failure, not 5 x 400 ms later as collect would.
    assert (run.record.end_ns - by_index[0].end_ns) / 1e9 < 1.0


# -- physics (loose: precise figures belong to the benchmark) ---------------------------------------
def _wall(session, model: str, workload: str, **kw) -> float:
    run = session.start(engine.make_spec(model, workload, **kw))
    assert run.wait(60)
    check_invariants(session, run)
    assert {t.state.value for t in session.store.tasks(run.run_id)} == {"finished"}
    return run.record.wall_s


def _control_ratio(seconds: float = 0.15) -> float:
    """A raw control, no engine: two threads of GIL-free NumPy against the same work done
    serially, right now. About 0.5 when this process can have two cores, 1.0 when the machine
    is too busy (other suites share these 2 cores) to give it more than one."""
    import numpy as np

    a = np.linspace(0.0, 100.0, 65_536)

    def work(n: int) -> None:
        out = np.empty_like(a)
        for _ in range(n):
            np.sin(a, out=out)

    t = time.perf_counter()
    work(20)
    n = max(1, int(20 * seconds / (time.perf_counter() - t)))
    t = time.perf_counter()
    work(n)
    work(n)
    serial = time.perf_counter() - t
    t = time.perf_counter()
    th = [threading.Thread(target=work, args=(n,)) for _ in range(2)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    return (time.perf_counter() - t) / serial


def _physics(session, fast: tuple, slow: tuple, bound: float, attempts: int = 4) -> str:
    """Assert ``wall(fast) / wall(slow) < bound``, loosely and honestly on a shared machine.

    Passes at the first attempt within ``bound``. An attempt that misses counts against the
    engine only if raw controls just before and after it show this process could have two
    cores; if no attempt could (the machine was saturated throughout), the test is skipped
    with the figures, since two-core physics cannot be seen without two cores.
    """
    tried = []
    for _ in range(attempts):
        before = _control_ratio()
        a = _wall(session, *fast[:2], **fast[2])
        b = _wall(session, *slow[:2], **slow[2])
        after = _control_ratio()
        fig = (f"{fast[0]} {a:.3f}s, {slow[0]} {b:.3f}s, ratio {a / b:.2f} "
               f"(controls {before:.2f}/{after:.2f})")
        print(fig)
        if a / b < bound:
            return fig
        tried.append((a / b, max(before, after), fig))
    fair = [t for t in tried if t[1] <= 0.75]
    if len(fair) < 2:  # one fair-looking miss on a saturated machine proves nothing
        pytest.skip("machine too busy for two-core physics: " + "; ".join(t[2] for t in tried))
    pytest.fail(f"ratio not below {bound} with two cores free: " + "; ".join(t[2] for t in fair))


@pytest.mark.skipif(CORES < 2, reason="needs 2 cores")
def test_physics_processes_beat_sequential_on_cpu(session) -> None:
    """2 cpu tasks of 1 s: about 1 s under processes, about 2 s under sequential."""
    _physics(session, ("processes", "cpu", {"tasks": 2, "size": "1s", "workers": 2}),
             ("sequential", "cpu", {"tasks": 2, "size": "1s"}), 0.75)


def test_physics_asyncio_sleeps_overlap(session) -> None:
    t0 = time.monotonic()
    wall = _wall(session, "asyncio", "sleep", tasks=100, size="1s")
    print(f"asyncio 100 x sleep 1s: wall {wall:.3f}s")
    assert 1.0 <= wall < 3.0
    assert time.monotonic() - t0 < 4.0


@pytest.mark.skipif(CORES < 2, reason="needs 2 cores")
def test_physics_numpy_scales_under_threads(session) -> None:
    """NumPy releases the GIL: 2 threads do 2 tasks in clearly less time than one thread."""
    _physics(session, ("threads", "numpy", {"tasks": 2, "size": "600ms", "workers": 2}),
             ("sequential", "numpy", {"tasks": 2, "size": "600ms"}), 0.85)
