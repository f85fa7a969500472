"""The engine in a process of its own (engine.remote): what the window relies on.

Real processes throughout: a real engine process, real workers, real kills.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from engine import SpecError, State, make_spec
from engine.remote import EngineGone, RemoteSession
from tests.conftest import alive_pids

WAIT_S = 30.0


def pump_until(rs: RemoteSession, cond: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rs.pump()
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("timed out waiting for the engine's updates")


def gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive_pids(pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def rs(leak_check: None) -> Iterator[RemoteSession]:
    s = RemoteSession(10.0)
    try:
        yield s
    finally:
        report = s.shutdown(2.0)
        assert report.clean, report
        assert not s._proc.is_alive()


@pytest.mark.parametrize("model", ["sequential", "threads", "asyncio", "processes",
                                   "asyncio-processes"])
def test_every_model_runs_in_the_engine_process_and_the_mirror_gets_every_record(
        rs: RemoteSession, model: str) -> None:
    run = rs.start(make_spec(model, "cpu", 4, "20ms", 2 if model != "sequential" else None))
    # Registered in the mirror the moment start returns (queued), like a local Session.
    assert [t.state for t in rs.store.tasks(run.run_id)] == [State.QUEUED] * 4
    pump_until(rs, lambda: rs.store.run(run.run_id).done)
    pump_until(rs, lambda: all(t.state.terminal for t in rs.store.tasks(run.run_id)))
    recs = rs.store.tasks(run.run_id)
    assert [t.state for t in recs] == [State.FINISHED] * 4
    assert all(t.start_ns and t.end_ns and t.end_ns >= t.start_ns for t in recs)
    assert all(t.progress == 1.0 for t in recs)
    pids = {t.pid for t in recs}
    assert os.getpid() not in pids  # nothing ran in the front end's process
    if model in ("processes", "asyncio-processes"):
        assert rs.engine_pid not in pids and len(pids) == 2
    else:
        assert pids == {rs.engine_pid}
    assert rs.store.run(run.run_id).counts["finished"] == 4
    assert rs.store.duplicate_terminals == 0


def test_samples_arrive_and_the_front_ends_loop_lag_reaches_them(rs: RemoteSession) -> None:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        rs.attach_loop(loop)

        async def busy_frames() -> None:
            t = time.monotonic()
            while time.monotonic() - t < 1.5:
                rs.pump()
                time.sleep(0.03)  # a slow "frame": the probe sees lateness
                await asyncio.sleep(0.005)

        loop.run_until_complete(busy_frames())
    finally:
        rs.detach_loop()
        loop.close()
    pump_until(rs, lambda: rs.store.sample_count >= 5)
    samples, _ = rs.store.read_samples(0)
    assert all(len(s.cores) == psutil.cpu_count() for s in samples)
    if hasattr(rs, "gui_lag"):
        with_gui = [s.lag_ms["gui"] for s in samples if "gui" in s.lag_ms]
        assert with_gui and max(with_gui) >= 10.0, with_gui  # 30 ms frames, measured


def test_bad_spec_is_refused_in_one_line_and_nothing_starts(rs: RemoteSession) -> None:
    from engine.models import model_info

    spec = make_spec("processes", "cpu", 1, "10ms", 1)
    bad = spec.__class__(**{**spec.__dict__, "model": "interpreters"})
    if model_info("interpreters").available:
        pytest.skip("this interpreter has sub-interpreters")
    with pytest.raises(SpecError) as e:
        rs.start(bad)
    assert e.value.field == "model" and "\n" not in str(e.value)
    assert rs.store.runs() == []


def test_cancel_run_and_task_reach_the_engine(rs: RemoteSession) -> None:
    run = rs.start(make_spec("threads", "cpu", 3, "30s", 3))
    pump_until(rs, lambda: all(t.state is State.RUNNING for t in rs.store.tasks(run.run_id)))
    first = run.first_task_id
    assert rs.cancel_task(first)
    pump_until(rs, lambda: rs.store.task(first).state is State.CANCELLED)
    assert rs.store.task(first + 1).state is State.RUNNING
    assert rs.cancel_run(run.run_id)
    pump_until(rs, lambda: rs.store.run(run.run_id).done)
    assert all(t.state is State.CANCELLED for t in rs.store.tasks(run.run_id))


def test_a_killed_engine_takes_its_workers_with_it_and_commands_say_so(
        leak_check: None) -> None:
    rs = RemoteSession(None)
    try:
        run = rs.start(make_spec("processes", "cpu", 2, "30s", 2))
        pump_until(rs, lambda: all(t.state is State.RUNNING
                                   for t in rs.store.tasks(run.run_id)))
        workers = rs.worker_pids()
        assert len(workers) == 2
        os.kill(rs.engine_pid, signal.SIGKILL)
        pump_until(rs, lambda: rs.gone_reason is not None, timeout=10)
        assert rs.gone_reason == "killed by SIGKILL"
        assert gone(workers), "the killed engine's workers were left running"
        with pytest.raises(EngineGone):
            rs.cancel_all()
        with pytest.raises(RuntimeError):  # EngineGone is a RuntimeError: one line for the UI
            rs.start(make_spec("threads", "cpu", 1, "10ms", 1))
    finally:
        rs.shutdown(1.0)


def test_when_the_front_end_dies_the_engine_and_its_workers_exit(tmp_path: Any) -> None:
    script = tmp_path / "front.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from engine import State, make_spec
        from engine.remote import RemoteSession
        rs = RemoteSession(None)
        run = rs.start(make_spec("processes", "cpu", 2, "30s", 2))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rs.pump()
            if all(t.state is State.RUNNING for t in rs.store.tasks(run.run_id)):
                break
            time.sleep(0.02)
        print(rs.engine_pid, *rs.worker_pids(), flush=True)
        os._exit(3)  # no shutdown, no atexit: a crash
    """))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, cwd=root,
                       env={**os.environ, "PYTHONPATH": root})
    assert p.returncode == 3, p.stderr
    pids = [int(x) for x in p.stdout.split()]
    assert len(pids) == 3, p.stdout
    assert gone(pids, 10.0), "the engine or its workers outlived the front end"


def test_shutdown_is_quick_and_leaves_no_process(leak_check: None) -> None:
    rs = RemoteSession(10.0)
    run = rs.start(make_spec("processes", "cpu", 2, "30s", 2))
    pump_until(rs, lambda: all(t.state is State.RUNNING for t in rs.store.tasks(run.run_id)))
    pids = [rs.engine_pid, *rs.worker_pids()]
    t = time.monotonic()
    report = rs.shutdown(2.0)
    assert time.monotonic() - t < 4.0
    assert report.clean
    # The final states came with the engine's last update, before it exited.
    assert all(t.state.terminal for t in rs.store.tasks(run.run_id))
    assert gone(pids)
    assert rs.worker_pids() == []
    assert rs.shutdown().seconds == 0.0  # idempotent
