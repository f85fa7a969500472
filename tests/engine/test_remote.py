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
from contextlib import contextmanager
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


# -- what an idle engine costs ------------------------------------------------------------------------
@contextmanager
def _engine_side(store: Any, sample_hz: float | None) -> Iterator[tuple[Any, Any, Any]]:
    """The engine process's side in this process: a session on ``store`` and its publisher
    (wired as the engine process wires them), talking to the returned front end's end of a
    socket pair. Yields ``(session, publisher, front end connection)``; stops them all."""
    import socket
    from multiprocessing.connection import Connection

    from engine import Session
    from engine.remote.publisher import start_publisher

    a, b = socket.socketpair()
    engine_end, front_end = Connection(a.detach()), Connection(b.detach())
    session = Session(store, warm=False, sample_hz=sample_hz)
    pub = start_publisher(session, engine_end)
    try:
        yield session, pub, front_end
    finally:
        pub.close()
        pub.thread.join(2.0)
        session.shutdown()
        engine_end.close()
        front_end.close()


def _wakes(tid: int) -> int:
    """How many times thread ``tid`` of this process went to sleep and was woken again."""
    with open(f"/proc/self/task/{tid}/status") as f:
        return next(int(line.split()[1]) for line in f
                    if line.startswith("voluntary_ctxt_switches"))


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc (Linux)")
def test_an_idle_engine_sends_each_sample_as_it_is_taken_and_its_publisher_sleeps(
        leak_check: None) -> None:
    """The engine process's side, in this process: a session sampling at 10 Hz, nothing
    running, a front end that pumps at 5 Hz as an idle window does. Every sample reaches it
    once, at 10 Hz, without the publisher thread waking to poll (it used to, 20 times a
    second); and the front end's loop lag it acknowledged reaches the samples."""
    from engine.clock import now_ns
    from engine.remote.publisher import EngineStore
    from engine.remote.wire import Ack

    got: list[tuple[int, Any]] = []  # (arrived ns, sample)

    def pump(until: float, every: float) -> None:
        while time.monotonic() < until:
            while front_end.poll(0):
                upd = front_end.recv()
                t = now_ns()
                got.extend((t, s) for s in upd.samples)
                front_end.send(Ack(7.0))
            time.sleep(every)

    with _engine_side(EngineStore(), 10.0) as (_session, pub, front_end):
        pump(time.monotonic() + 0.5, 0.2)
        assert pub.thread.native_id is not None
        wakes0 = _wakes(pub.thread.native_id)
        n0, t0 = len(got), time.monotonic()
        pump(t0 + 3.0, 0.2)  # the idle window's pump
        wakes = _wakes(pub.thread.native_id) - wakes0
        idle = got[n0:]
        n1 = len(got)
        pump(time.monotonic() + 1.0, 0.002)  # a front end that reads at once
        prompt = [(arrived - s.t_ns) / 1e6 for arrived, s in got[n1 + 1:]]
    times = [s.t_ns for _, s in got]
    assert times == sorted(set(times)), "a sample came twice or out of order"
    assert 25 <= len(idle) <= 35, len(idle)  # 10 Hz, every one of them
    # Woken only by its safety net (once a second), never to poll for samples: polling was 20
    # a second, 60 here. The count is the thread's voluntary context switches, which also
    # counts each time a wake-up had to wait for the GIL, so 3 wakes read 3-7 (7 in one CI
    # run on a quiet machine); the bound sits between that and polling.
    assert wakes <= 15, wakes
    assert any(s.lag_ms.get("gui") == 7.0 for _, s in idle)
    # Each sample leaves as it is taken: a front end that reads at once has it within a few
    # ms (the publisher used to poll every 50 ms).
    assert len(prompt) >= 7, prompt
    assert sorted(prompt)[len(prompt) // 2] < 15.0, prompt


def _engine_cpu_ns(pid: int) -> int:
    """CPU time (ns) every thread of process ``pid`` has run, from schedstat (exact)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat"),
                    reason="reads schedstat (Linux)")
def test_idle_engine_process_costs_under_twice_its_budget(rs: RemoteSession) -> None:
    # Target: the whole engine process (sampler at 10 Hz, publisher, the session's idle
    # threads) under 0.6% of a core while the window is idle (0.5-0.65% measured, 0.8-1.1%
    # before the publisher slept between samples); 2x for a loaded machine.
    pump_until(rs, lambda: rs.store.sample_count >= 10)
    pid = rs.engine_pid
    assert pid is not None
    cpu0, t0 = _engine_cpu_ns(pid), time.monotonic()
    n0 = rs.store.sample_count
    while time.monotonic() - t0 < 4.0:
        rs.pump()
        time.sleep(0.2)  # the idle window's pump
    pct = 100.0 * (_engine_cpu_ns(pid) - cpu0) / 1e9 / (time.monotonic() - t0)
    rs.pump()
    assert rs.store.sample_count - n0 >= 35  # still sampling at 10 Hz, all delivered
    assert pct < 1.2, pct


def _five_hundred_tasks_ended(store: Any) -> None:
    """Run 1 in ``store``: 500 tasks, each started and finished (1000 events at once)."""
    from engine.clock import now_ns
    from engine.events import Event, Kind

    t = now_ns()
    store.add_run(1, make_spec("threads", "sleep", 500, "1ms", 2), 1, 500, t)
    store.append([Event(1, i, kind, t + 1) for i in range(1, 501)
                  for kind in (Kind.STARTED, Kind.FINISHED)])


def test_a_backlog_larger_than_one_update_goes_out_at_once(
        leak_check: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """More changed records than one update carries: the rest follow update after update
    (one per BUSY_GAP_S), not only when something else changes. No sampler here, so nothing
    else would wake the publisher for a second."""
    import engine.remote.publisher as publisher
    from engine.remote import MirrorStore
    from engine.remote.wire import Ack

    monkeypatch.setattr(publisher, "MAX_RECORDS", 50)
    store = publisher.EngineStore()
    mirror = MirrorStore()
    with _engine_side(store, None) as (_session, _pub, front_end):
        _five_hundred_tasks_ended(store)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5.0:
            while front_end.poll(0):
                mirror.apply(front_end.recv())
                front_end.send(Ack(None))
            if all(r.state is State.FINISHED for r in mirror.tasks(1)) and mirror.tasks(1):
                break
            time.sleep(0.005)
        took = time.monotonic() - t0
    assert len(mirror.tasks(1)) == 500
    assert all(r.state is State.FINISHED for r in mirror.tasks(1))
    assert took < 1.0, took  # 10 updates of 50, about 12 ms apart


def test_one_ack_for_every_update_a_pump_read_keeps_flow_control(
        leak_check: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A front end acknowledges once per pump, for all the updates it read (``Ack.n``): the
    publisher frees that many of its IN_FLIGHT slots, so a backlog of many updates still
    drains at its pace, and nothing stays counted in flight once all are read."""
    import engine.remote.publisher as publisher
    from engine.remote import MirrorStore
    from engine.remote.wire import Ack

    monkeypatch.setattr(publisher, "MAX_RECORDS", 50)
    store = publisher.EngineStore()
    mirror = MirrorStore()
    acks: list[int] = []
    with _engine_side(store, None) as (_session, pub, front_end):
        _five_hundred_tasks_ended(store)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5.0:
            time.sleep(0.03)  # a frame: the publisher has sent what it may meanwhile
            read = 0
            while front_end.poll(0):
                mirror.apply(front_end.recv())
                read += 1
            if read:
                front_end.send(Ack(None, read))
                acks.append(read)
            if all(r.state is State.FINISHED for r in mirror.tasks(1)) and mirror.tasks(1):
                break
        took = time.monotonic() - t0
        time.sleep(0.05)
        pub.read_acks()
        in_flight = list(pub.inflight)
    assert len(mirror.tasks(1)) == 500
    assert all(r.state is State.FINISHED for r in mirror.tasks(1))
    assert max(acks) == publisher.IN_FLIGHT  # a pump read as many as may be in flight
    assert in_flight == [], in_flight
    assert took < 2.0, took  # 10 updates of 50, two per 30 ms frame


def test_the_engine_answers_a_start_before_registering_tasks_and_starting_workers() -> None:
    """Session.start calls ``admitted`` once the run is accepted, before its tasks exist in
    the store and before any worker starts: the engine process answers its front end from
    there, so the window does not wait for 10,000 records or for CPU-bound threads that grab
    the GIL. The time it gives is the run's recorded start."""
    from engine import Session

    seen: list[tuple[Any, ...]] = []
    with Session(sample_hz=None) as s:

        def admitted(run: Any, t_ns: int) -> None:
            seen.append((run.run_id, run.first_task_id, t_ns, s.store.run(run.run_id),
                         run.runner))

        run = s.start(make_spec("threads", "cpu", 4, "20ms", 2), admitted=admitted)
        assert run.wait(WAIT_S)
        (rid, first, t_ns, rec_then, runner_then), = seen
        assert (rid, first) == (run.run_id, run.first_task_id)
        assert rec_then is None and runner_then is None  # answered before either existed
        assert s.store.run(rid).start_ns == t_ns
        assert all(t.state is State.FINISHED for t in s.store.tasks(rid))


def test_a_run_whose_workers_cannot_start_fails_its_tasks_instead_of_hanging(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """If the workers cannot start after the run was accepted, every task fails with that
    error and the run ends: never a run left queued for ever. A caller without ``admitted``
    also gets the exception."""
    from engine import Session

    def broken(run: Any, loop: Any) -> Any:
        raise OSError("no more threads (test)")

    with Session(sample_hz=None) as s:
        monkeypatch.setattr(s, "_make_runner", broken)
        run = s.start(make_spec("threads", "sleep", 3, "10ms", 2), admitted=lambda r, t: None)
        assert s.store.run(run.run_id).done
        tasks = s.store.tasks(run.run_id)
        assert [t.state for t in tasks] == [State.FAILED] * 3
        assert all("no more threads" in str(t.error) for t in tasks)
        with pytest.raises(OSError, match="no more threads"):
            s.start(make_spec("threads", "sleep", 2, "10ms", 2))
        last = s.store.runs()[-1]
        assert last.done and all(t.state is State.FAILED for t in s.store.tasks(last.run_id))


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc (Linux)")
def test_an_idle_flusher_sleeps_and_still_moves_the_next_event_at_once() -> None:
    """With nothing running, the session's event flusher sleeps until an event comes: it
    used to wake ~19 times a second after each 1 s safety-net timeout. A run started after a
    long idle still has its events in the store promptly."""
    from engine import Session

    with Session(sample_hz=None) as s:
        time.sleep(0.5)  # past its busy turns
        tid = s._batcher.native_id
        w0 = _wakes(tid)
        time.sleep(3.0)
        wakes = _wakes(tid) - w0
        # Its 1 s safety net, not 20 a second (60 here before). Voluntary context switches
        # also count waits for the GIL, hence the margin (see the publisher test above).
        assert wakes <= 15, wakes
        run = s.start(make_spec("threads", "sleep", 3, "10ms", 3))
        assert run.wait(WAIT_S)
        assert all(t.state is State.FINISHED for t in s.store.tasks(run.run_id))
