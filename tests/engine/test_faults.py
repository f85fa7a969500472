"""Faults (issue 8): a worker dies mid-task, a payload cannot cross the process boundary, a task
ignores cancellation or its timeout, the HTTP server fails mid-run.

Each time the task is reported with a clear reason, the other tasks finish (or are re-run), the
pool recovers (``ProcPool.restarts``) and the session stays usable for a next run. The
``session`` fixture then checks that shutdown is clean and leaves no worker or thread behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

import engine
from engine.events import Kind
from engine.models.procpool import ProcPool
from tests.engine import faultfuncs as ff
from tests.engine.enginekit import (
    AVAILABLE_MODELS,
    PROCESS_MODELS,
    check_invariants,
    run_events,
    run_to_end,
    started,
    states,
    wait_until,
)

FF = "tests.engine.faultfuncs"


def _custom(fn: str, *args: object) -> dict:
    return {"function": f"{FF}:{fn}", "args": list(args)}


def _usable(session: engine.Session, model: str) -> None:
    """The session still runs work normally after the fault."""
    run = run_to_end(session, model, "sleep", tasks=4, size="20ms")
    assert set(states(session, run).values()) == {"finished"}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- a worker process dies mid-task -------------------------------------------------------------
DEATHS = {
    "exit": (f"exited with code {engine.workloads.CRASH_EXIT_CODE}",
             engine.workloads.CRASH_EXIT_CODE),
    "sigkill": ("was killed by SIGKILL", -9),
    "segfault": ("was killed by SIGSEGV", -11),
}


@pytest.mark.parametrize("mode", list(DEATHS))
@pytest.mark.parametrize("model", PROCESS_MODELS)
def test_worker_death_fails_only_its_task_and_the_pool_recovers(session, model: str,
                                                                 mode: str) -> None:
    # 2 workers, 7 tasks, tasks 0, 3 and 6 kill their worker halfway: the others run (some on
    # the replacement workers, some re-queued from a dead worker's pipe) and finish.
    run = session.start(engine.make_spec(model, "crash", tasks=7, size="80ms", workers=2,
                                         params={"every": 3, "mode": mode}))
    assert run.wait(60), "a run with crashing workers must still end"
    check_invariants(session, run)
    needle, code = DEATHS[mode]
    dead_pids = set()
    for t in session.store.tasks(run.run_id):
        if t.index % 3 == 0:
            assert t.state.value == "failed", t
            assert t.error["type"] == "WorkerDied"
            assert needle in t.error["message"], t.error
            assert "while running this task" in t.error["message"]
            assert t.error["exitcode"] == code
            assert t.error["pid"] == t.pid
            dead_pids.add(t.pid)
        else:
            assert t.state.value == "finished", t
            assert t.error is None
    assert len(dead_pids) == 3
    pool = run.runner.pool
    assert pool.restarts == 3, "one replacement worker per death"
    died_at = {t.pid: t.start_ns for t in session.store.tasks(run.run_id) if t.index % 3 == 0}
    for t in session.store.tasks(run.run_id):
        if t.index % 3 and t.pid in died_at:
            assert t.end_ns <= died_at[t.pid], "no task ran on a worker after it died"
    wait_until(lambda: all(_gone(p) for p in dead_pids), timeout=5)
    _usable(session, model)


def test_a_crash_does_not_disturb_a_concurrent_run(session) -> None:
    """Runs have separate pools: a worker dying in one run leaves another run alone."""
    calm = session.start(engine.make_spec("processes", "sleep", tasks=6, size="150ms",
                                          workers=2))
    crashing = session.start(engine.make_spec("processes", "crash", tasks=4, size="60ms",
                                              workers=1, params={"mode": "sigkill"}))
    assert crashing.wait(60) and calm.wait(60)
    check_invariants(session, calm)
    check_invariants(session, crashing)
    assert set(states(session, calm).values()) == {"finished"}
    assert calm.runner.pool.restarts == 0
    assert set(states(session, crashing).values()) == {"failed"}
    assert crashing.runner.pool.restarts == 4


# -- payloads that cannot cross the process boundary ---------------------------------------------
PAYLOADS = {
    # function: (exception type the task reports, text in its message)
    "raise_lock_payload": ("LockPayloadError", "payload is a lock"),
    "raise_bad_reduce": ("BadReduceError", "no"),
    "raise_two_arg": ("TwoArgError", "left/right"),
    "raise_bad_str": ("BadStrError", "str() of the exception failed"),
}


@pytest.mark.parametrize("fn", list(PAYLOADS))
@pytest.mark.parametrize("model", AVAILABLE_MODELS)
def test_hostile_exception_payload_fails_the_task_with_its_type(session, model: str,
                                                                fn: str) -> None:
    run = session.start(engine.make_spec(model, "custom", tasks=3, params=_custom(fn)))
    assert run.wait(30), f"{fn}: the run never ended (a task got no terminal event)"
    check_invariants(session, run)
    etype, text = PAYLOADS[fn]
    for t in session.store.tasks(run.run_id):
        assert t.state.value == "failed"
        assert t.error["type"] == etype
        assert text in t.error["message"]
        assert isinstance(t.error["traceback"], str)
    if model in PROCESS_MODELS:
        assert run.runner.pool.restarts == 0  # an exception is data: no worker died
    _usable(session, model)


PLAIN = {
    ff.raise_lock_payload: "exception could not be pickled",
    ff.raise_bad_reduce: "exception could not be pickled",
    ff.return_lock: "result could not be pickled",
    ff.raise_two_arg: "exception was pickled in the worker but could not be unpickled here",
    ff.return_two_arg: "result was pickled in the worker but could not be unpickled here",
}


def test_plain_pool_submit_survives_unpicklable_results_and_exceptions(leak_check) -> None:
    pool = ProcPool(1, lambda batch: None, name="t-payload")
    try:
        pid = pool.submit(ff.pid).result(timeout=30)
        for fn, needle in PLAIN.items():
            fut = pool.submit(fn)
            with pytest.raises(RuntimeError) as ei:
                fut.result(timeout=10)  # not a hang: the reader thread survives
            assert needle in str(ei.value), (fn.__name__, ei.value)
        # An exception that pickles both ways arrives as itself.
        with pytest.raises(ff.BadStrError):
            pool.submit(ff.raise_bad_str).result(timeout=10)
        assert pool.submit(ff.add, 2, 3).result(timeout=10) == 5
        assert pool.submit(ff.pid).result(timeout=10) == pid  # the same worker, still alive
        assert pool.restarts == 0 and pool.lost_messages == 0
    finally:
        pool.shutdown()


def test_plain_pool_recovers_from_a_dying_worker(leak_check) -> None:
    pool = ProcPool(2, lambda batch: None, name="t-die")
    try:
        futs = [pool.submit(ff.nap, 0.05) for _ in range(4)]
        bad = pool.submit(ff.die, 3)
        futs += [pool.submit(ff.nap, 0.05) for _ in range(4)]
        with pytest.raises(Exception, match="exited with code 3"):
            bad.result(timeout=30)
        assert [f.result(timeout=30) for f in futs] == [0.05] * 8
        assert pool.restarts == 1
        assert len(pool.pids()) == 2
    finally:
        pool.shutdown()


# -- a task that ignores cancellation -----------------------------------------------------------
def _marked(tmp_path, seconds: float, name: str = "m") -> tuple[dict, object]:
    marker = tmp_path / name
    return _custom("ignore_cancel_marked", seconds, str(marker)), marker


@pytest.mark.parametrize("model", ["sequential", "threads"])
def test_thread_task_ignoring_cancel_stays_cancel_requested_until_it_returns(session, tmp_path,
                                                                            model: str) -> None:
    params, marker = _marked(tmp_path, 1.2)
    run = session.start(engine.make_spec(model, "custom", tasks=2, params=params))
    first = run.first_task_id
    wait_until(marker.exists)  # the function itself is running, not just its task
    t_cancel = time.monotonic_ns()
    assert session.cancel_task(first, reason="user")
    wait_until(lambda: session.store.task(first).state.value == "cancel_requested", timeout=2)
    time.sleep(0.4)
    rec = session.store.task(first)
    # Honest: a thread cannot be stopped, so it is not reported stopped.
    assert rec.state.value == "cancel_requested" and rec.end_ns is None, rec
    assert rec.reason == "user"
    assert run.wait(10)
    check_invariants(session, run)
    rec = session.store.task(first)
    # It ran to its own end: that is what it is reported as (and when).
    assert rec.state.value == "finished"
    assert rec.end_ns - t_cancel >= 0.6e9
    assert rec.start_ns <= rec.cancel_requested_ns <= rec.end_ns


def test_asyncio_offloaded_function_ignoring_cancel_ends_when_its_thread_returns(session,
                                                                                 tmp_path) -> None:
    params, marker = _marked(tmp_path, 1.0)
    run = session.start(engine.make_spec("asyncio", "custom", tasks=1, params=params))
    tid = run.first_task_id
    wait_until(marker.exists)
    assert session.cancel_task(tid)
    wait_until(lambda: session.store.task(tid).state.value == "cancel_requested", timeout=2)
    time.sleep(0.3)
    assert session.store.task(tid).state.value == "cancel_requested"
    assert run.wait(10)
    check_invariants(session, run)
    assert session.store.task(tid).state.value == "cancelled"


@pytest.mark.parametrize("model", PROCESS_MODELS)
def test_process_task_ignoring_cancel_is_force_killed(session, tmp_path, model: str) -> None:
    params, marker = _marked(tmp_path, 30)
    run = session.start(engine.make_spec(model, "custom", tasks=4, workers=1, params=params))
    first = run.first_task_id
    wait_until(marker.exists, timeout=20)
    stubborn = session.store.task(first).pid
    assert int(marker.read_text()) == stubborn
    assert session.cancel_task(first)  # cooperative: it never looks
    wait_until(lambda: session.store.task(first).state.value == "cancel_requested", timeout=2)
    time.sleep(0.3)
    assert session.store.task(first).state.value == "cancel_requested"
    t0 = time.monotonic()
    assert session.cancel_task(first, force=True, reason="stop now")
    wait_until(lambda: session.store.task(first).state.terminal, timeout=5)
    assert time.monotonic() - t0 < 3.0
    rec = session.store.task(first)
    assert rec.state.value == "cancelled" and rec.reason == "stop now"
    ends = [e for e in run_events(session, run.run_id)
            if e.task_id == first and e.kind == Kind.CANCELLED]
    assert ends[0].info["forced"] is True and ends[0].info["pid"] == stubborn
    wait_until(lambda: _gone(stubborn), timeout=5)
    # The queue carries on, on a replacement worker.
    wait_until(lambda: started(session, first + 1), timeout=20)
    assert session.store.task(first + 1).pid not in (0, stubborn)
    # The others: force-cancel the rest so the test stays short; the pool replaced each.
    for tid in run.task_ids:
        session.cancel_task(tid, force=True)
    assert run.wait(20)
    check_invariants(session, run)
    assert set(states(session, run).values()) == {"cancelled"}
    assert run.runner.pool.restarts >= 1
    _usable(session, model)


def test_shutdown_reports_a_thread_task_that_ignores_cancel(leak_check, tmp_path) -> None:
    s = engine.Session()
    params, marker = _marked(tmp_path, 1.5)
    run = s.start(engine.make_spec("threads", "custom", tasks=1, params=params))
    wait_until(marker.exists)
    report = s.shutdown(timeout=0.5)
    assert report.seconds < 1.5
    assert report.stuck_tasks == [run.first_task_id]
    assert not report.clean
    assert s.store.task(run.first_task_id).state.value == "cancel_requested"
    # It really is still running; once it returns, its thread goes (leak_check verifies).
    prefix = f"run{run.run_id}-thread"
    wait_until(lambda: not any(t.name.startswith(prefix) for t in threading.enumerate()),
               timeout=5)


# -- a workload that hangs past its timeout ---------------------------------------------------
@pytest.mark.parametrize("model", PROCESS_MODELS)
def test_process_watchdog_kills_a_task_that_ignores_its_timeout(session, model: str) -> None:
    t0 = time.monotonic()
    run = session.start(engine.make_spec(model, "custom", tasks=3, workers=2, timeout="300ms",
                                         params={"function": f"{FF}:hang"}))
    assert run.wait(30)
    elapsed = time.monotonic() - t0
    check_invariants(session, run)
    for t in session.store.tasks(run.run_id):
        assert t.state.value == "timed_out", t
        assert "timeout 0.3s" in t.reason and "worker killed" in t.reason
        assert t.end_ns - t.start_ns >= 0.3e9
    assert run.runner.pool.restarts == 3
    assert elapsed < 15, elapsed  # never its 30 s sleep
    _usable(session, model)


@pytest.mark.parametrize("model", AVAILABLE_MODELS)
def test_cooperative_timeout_ends_the_task_promptly(session, model: str) -> None:
    run = session.start(engine.make_spec(model, "sleep", tasks=2, size="20s", timeout="200ms"))
    assert run.wait(15)
    check_invariants(session, run)
    for t in session.store.tasks(run.run_id):
        assert t.state.value == "timed_out"
        assert t.reason.startswith("timeout 0.2s")
        assert 0.15e9 <= t.end_ns - t.start_ns < 3e9


@pytest.mark.parametrize("model", ["sequential", "threads"])
def test_thread_task_ignoring_its_timeout_is_not_reported_timed_out_early(session,
                                                                         model: str) -> None:
    run = session.start(engine.make_spec(model, "custom", tasks=1, timeout="150ms",
                                         params={"function": f"{FF}:hang_for", "args": [1.0]}))
    tid = run.first_task_id
    wait_until(lambda: started(session, tid))
    time.sleep(0.5)
    assert session.store.task(tid).state.value == "running"  # it is, and it is shown so
    assert run.wait(10)
    check_invariants(session, run)
    rec = session.store.task(tid)
    assert rec.state.value == "finished" and rec.end_ns - rec.start_ns >= 0.9e9


# -- the HTTP demo server fails mid-run ---------------------------------------------------------
@pytest.mark.parametrize("model", AVAILABLE_MODELS)
def test_http_server_failing_mid_run(session, model: str) -> None:
    # One worker, 4 tasks x 5 requests; the server drops everything after request 7: task 0
    # finishes, task 1 fails on its 3rd request, tasks 2 and 3 fail on their first.
    workers = None if model == "sequential" else 1
    run = session.start(engine.make_spec(model, "http", tasks=4, size="100ms", workers=workers,
                                         params={"delay": "20ms", "fail_after": 7}))
    port = run.server.port
    assert run.wait(60)
    check_invariants(session, run)
    tasks = sorted(session.store.tasks(run.run_id), key=lambda t: t.index)
    assert tasks[0].state.value == "finished"
    for t in tasks[1:]:
        assert t.state.value == "failed", t
        msg = t.error["message"].lower()
        assert "closed" in msg and "connection" in msg, t.error
        assert t.error["type"] in ("RemoteDisconnected", "ConnectionError",
                                   "ConnectionResetError"), t.error
    assert tasks[1].progress > 0  # it got some answers before the server failed
    # The failing server was closed with its run; a new run gets a healthy one.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    ok = run_to_end(session, model, "http", tasks=2, size="40ms", workers=workers)
    assert set(states(session, ok).values()) == {"finished"}


# -- security -------------------------------------------------------------------------------------
def _other_addresses() -> list[str]:
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                out.append(a.address)
    return out


def test_http_server_binds_loopback_on_an_ephemeral_port_and_closes_with_the_run(session) -> None:
    runs = [session.start(engine.make_spec("threads", "http", tasks=2, size="600ms"))
            for _ in range(2)]
    servers = [r.server for r in runs]
    ports = {s.port for s in servers}
    assert len(ports) == 2, "each run gets its own ephemeral port"
    for s in servers:
        assert s.host == "127.0.0.1"
        sockname = s._httpd.socket.getsockname()  # noqa: SLF001 - the real bound address
        assert sockname[0] == "127.0.0.1" and sockname[1] == s.port
        assert s.port >= 1024
        # Reachable on loopback while the run is going...
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        # ...and not on any other interface.
        for addr in _other_addresses():
            with pytest.raises(OSError):
                socket.create_connection((addr, s.port), timeout=1).close()
    for r in runs:
        assert r.wait(30)
        check_invariants(session, r)
    for port in ports:
        with pytest.raises(OSError):  # connection refused: closed when its run ended
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert all(r.server is None for r in runs)


def test_http_server_is_closed_when_a_run_is_cancelled(session) -> None:
    run = session.start(engine.make_spec("asyncio", "http", tasks=5, size="5s"))
    port = run.server.port
    wait_until(lambda: started(session, run.first_task_id))
    session.cancel_run(run.run_id)
    assert run.wait(10)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


_PROBE = r"""
import sys
import engine

def main():
    with engine.Session() as s:
        for model in ("sequential", "asyncio", "threads", "processes", "asyncio-processes"):
            for wl in ("sleep", "cpu", "fail", "http"):
                r = s.start(engine.make_spec(model, wl, tasks=2, size="10ms"))
                assert r.wait(60), (model, wl)
    user = sorted(m for m in sys.modules
                  if m.startswith(("taskscope_user_", "tests")) or m == "faultfuncs")
    print("USER-MODULES:", user)
    print("CUSTOM-LOADED:", "engine.custom" in sys.modules)

if __name__ == "__main__":
    main()
"""


def test_custom_code_is_loaded_only_when_named(tmp_path) -> None:
    # A module that would announce itself if anything imported it.
    marker = tmp_path / "imported.txt"
    (tmp_path / "sneaky.py").write_text(
        f"with open({str(marker)!r}, 'w') as f:\n    f.write('imported')\n"
        "def fn():\n    return 1\n"
    )
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), str(tmp_path)]))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "USER-MODULES: []" in out.stdout, out.stdout
    assert "CUSTOM-LOADED: False" in out.stdout, out.stdout
    assert not marker.exists(), "a user module was imported though nothing named it"
    # Naming it is what loads it (validation imports it, in this process).
    engine.make_spec("threads", "custom", params={"function": f"{tmp_path / 'sneaky.py'}:fn"})
    assert marker.exists()


@pytest.mark.parametrize("model", ["threads", "asyncio", "processes"])
def test_clients_vanishing_mid_request_do_not_spam_the_terminal(session, model: str,
                                                                capfd) -> None:
    # Requests of 200 ms each, cancelled while the server is still answering them.
    run = session.start(engine.make_spec(model, "http", tasks=4, size="400ms", workers=4,
                                         params={"delay": "200ms"}))
    wait_until(lambda: run.server.requests >= 4, timeout=20)
    session.cancel_run(run.run_id, force=True)
    assert run.wait(20)
    check_invariants(session, run)
    time.sleep(0.3)  # the server's handler threads finish their writes to the closed sockets
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


class _Boobytrap:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def test_trace_files_are_parsed_as_json_only(tmp_path) -> None:
    import pickle

    from engine.trace import TraceError, load_trace

    marker = tmp_path / "pwned"
    hostile = {
        "pickle.json": pickle.dumps(_Boobytrap(str(marker))),
        "python.json": b"{'traceEvents': [__import__('os').system('true')]}",
        "yaml.json": b"traceEvents: !!python/object/apply:os.system ['true']\n",
        "nan.json": b'{"traceEvents": [], "x": NaN}',
        "dir.json": None,
    }
    for name, data in hostile.items():
        p = tmp_path / name
        if data is None:
            p.mkdir()
        else:
            p.write_bytes(data)
        with pytest.raises(TraceError) as ei:
            load_trace(p)
        msg = str(ei.value)
        assert "\n" not in msg and name in msg, msg
    assert not marker.exists()
