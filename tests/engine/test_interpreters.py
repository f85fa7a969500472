"""The ``interpreters`` model, for real: an engine process on pyenv's 3.13 with the backport.

Every test here drives one engine process on the 3.13 environment that the real ``taskscope
pythons add`` prepared (the session's ``prepared_pythons``), through the same RemoteSession the
window and ``taskscope run --python`` use: several interpreters in one process, their lanes,
events, cancel, timeout, what crosses (an int above 2**63), and a custom function that cannot
run in a sub-interpreter. Skipped, with the reason, where pyenv has no 3.13.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import SpecError, State, make_spec
from engine.models import model_info
from engine.remote import RemoteSession

WAIT_S = 60.0


@pytest.fixture(scope="module")
def py313(prepared_pythons) -> Path:
    return prepared_pythons.get("3.13").python


@pytest.fixture(scope="module")
def rs(py313: Path) -> Iterator[RemoteSession]:
    s = RemoteSession(10.0, python=str(py313))
    try:
        yield s
    finally:
        report = s.shutdown(3.0)
        assert report.clean, report
        assert not s._proc.is_alive()


def _run(rs: RemoteSession, *args, **kw):
    spec = make_spec("interpreters", *args, models=rs.models(), **kw)
    run = rs.start(spec)
    return spec, run


def test_several_interpreters_in_one_process_with_a_lane_each(rs: RemoteSession) -> None:
    assert rs.python["version"].startswith("3.13")
    assert rs.models()["interpreters"].available
    spec, run = _run(rs, "cpu", 6, "50ms", 2)
    assert run.wait(WAIT_S)
    rec = run.record
    assert rec.counts.get("finished") == 6, rec.counts
    info = rec.info
    assert info["python"]["version"].startswith("3.13")
    lanes = info["interpreters"]
    assert len(lanes) == 2 and len({lane["id"] for lane in lanes}) == 2
    tasks = rs.store.tasks(run.run_id)
    # One lane per interpreter: its worker thread's real id, named after the interpreter,
    # all in the engine process (sub-interpreters share their process).
    seen = {(t.pid, t.tid, t.thread) for t in tasks}
    want = {(rs.engine_pid, lane["thread_id"], f"interp-{lane['id']}") for lane in lanes}
    assert seen <= want and len(seen) == 2, (seen, want)
    # The interpreters were ready before the first task started, and that start-up is the
    # run's, not a task's.
    first_start = min(t.start_ns for t in tasks)
    assert rec.start_ns < info["workers_ready_ns"] <= first_start
    assert 0 < info["startup_s"] < 30


def test_cancel_stops_running_tasks_at_their_next_check_and_queued_ones_at_once(
        rs: RemoteSession) -> None:
    _, run = _run(rs, "sleep", 5, "20s", 2)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rs.pump()
        if run.record.counts.get("running", 0) == 2:
            break
        time.sleep(0.02)
    assert run.record.counts.get("running") == 2
    t0 = time.monotonic()
    assert rs.cancel_run(run.run_id, force=True)  # force is ignored: nothing to kill
    assert run.wait(10.0)
    assert time.monotonic() - t0 < 5.0  # not the 20 s the tasks would take
    tasks = rs.store.tasks(run.run_id)
    assert all(t.state is State.CANCELLED for t in tasks), [t.state for t in tasks]
    ran = [t for t in tasks if t.start_ns]
    assert len(ran) == 2 and all(t.tid and t.thread.startswith("interp-") for t in ran)
    assert all(t.cancel_requested_ns for t in ran)  # asked, then stopped: in that order
    assert not model_info("interpreters").can_force


def test_timeout_is_cooperative_and_ends_tasks_timed_out(rs: RemoteSession) -> None:
    _, run = _run(rs, "cpu", 2, "30s", 2, "300ms")
    assert run.wait(WAIT_S)
    tasks = rs.store.tasks(run.run_id)
    assert [t.state for t in tasks] == [State.TIMED_OUT] * 2
    assert all((t.end_ns - t.start_ns) / 1e9 < 10 for t in tasks)


def test_what_crosses_comes_back_whole_or_as_an_error_never_a_hang(py313: Path) -> None:
    """The backport's own pool hung for good on these (a result outside int64, an object or
    exception that does not pickle); through the guard each comes back."""
    script = textwrap.dedent("""
        import pickle
        from engine.models.interpreters.pool import InterpreterPool

        pool = InterpreterPool(1, 1, lambda batch: None, name="t")
        pool.start()
        try:
            sq = pool.submit(sum, (i * i for i in range(4)))  # a generator does not pickle
            print("generator:", type(sq.exception(30)).__name__)
            print("2**64:", pool.submit(pow, 2, 64).result(30) == 2 ** 64)
            print("-(2**63)-1:", pool.submit(int, str(-(2 ** 63) - 1)).result(30) == -(2 ** 63) - 1)
            big = pool.submit(eval, "sum(i * i for i in range(3_100_000))").result(60)
            print("sum of squares:", big == sum(i * i for i in range(3_100_000)), big > 2 ** 63)
            e = pool.submit(eval, "lambda: 1").exception(30)
            print("lambda:", type(e).__name__, "could not be pickled" in str(e))
            e = pool.submit(eval, "(_ for _ in ()).throw(ValueError('plain'))").exception(30)
            print("raised:", type(e).__name__, str(e))
        finally:
            pool.shutdown(5)
        print("done")
    """)
    p = subprocess.run([str(py313), "-c", script], capture_output=True, text=True,
                       timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines == [
        "generator: RuntimeError",
        "2**64: True",
        "-(2**63)-1: True",
        "sum of squares: True True",
        "lambda: RuntimeError True",
        "raised: ValueError plain",
        "done",
    ], p.stdout + p.stderr


def test_a_custom_function_runs_when_it_imports_there_and_is_refused_in_one_line_when_not(
        rs: RemoteSession, tmp_path: Path) -> None:
    good = tmp_path / "big_result.py"
    good.write_text("def f(n):\n    return sum(i * i for i in range(n))  # > 2**63\n")
    _, run = _run(rs, "custom", 2, params={"function": f"{good}:f", "args": [3_100_000]})
    assert run.wait(WAIT_S)
    assert run.record.counts.get("finished") == 2, [t.error for t in rs.store.tasks(run.run_id)]

    bad = tmp_path / "uses_numpy.py"
    bad.write_text("import numpy\n\ndef f():\n    return numpy.zeros(3).sum()\n")
    spec = make_spec("interpreters", "custom", 2,
                     params={"function": f"{bad}:f"}, models=rs.models())
    n_runs = len(rs.store.runs())
    with pytest.raises(SpecError) as e:
        rs.start(spec)
    assert e.value.field == "params.function"
    msg = str(e.value)
    assert "\n" not in msg and "cannot run in a sub-interpreter" in msg
    assert "subinterpreters" in msg, msg  # NumPy's own reason, not its 25-line banner
    assert len(rs.store.runs()) == n_runs  # nothing started

    # A function from __main__ cannot be found again inside: one line, before anything starts.
    with pytest.raises(SpecError) as e:
        rs.start(make_spec("interpreters", "custom", 2, params={"function": "__main__:f"},
                           models=rs.models()))
    assert e.value.field == "params.function" and "\n" not in str(e.value)
    assert "__main__" in str(e.value) and "sub-interpreter" in str(e.value), str(e.value)
    assert len(rs.store.runs()) == n_runs


def test_workloads_it_cannot_run_are_refused_before_anything_starts(rs: RemoteSession) -> None:
    for workload, why in (("numpy", "NumPy does not import in a sub-interpreter"),
                          ("crash", "ends the process")):
        with pytest.raises(SpecError) as e:
            make_spec("interpreters", workload, 2, models=rs.models())
        assert e.value.field == "workload" and why in str(e.value)
        assert workload in str(e.value) and "\n" not in str(e.value)


def test_unavailable_here_with_the_reason_and_the_fix() -> None:
    """On this interpreter (3.11 in CI) the model is unavailable, saying why and how."""
    import sys

    if sys.version_info >= (3, 13):
        pytest.skip("this test describes an interpreter older than 3.13")
    m = model_info("interpreters")
    assert not m.available and f"{sys.version_info[0]}.{sys.version_info[1]}" in m.reason
    assert "--python" in m.fix and "taskscope pythons add" in m.fix
    with pytest.raises(SpecError) as e:
        make_spec("interpreters", "cpu", 2)
    assert e.value.field == "model" and "taskscope pythons" in str(e.value)
