"""Running the engine on another interpreter: ``--python``, compare across interpreters, and the
``python`` block every run, trace and compare row carries (said by the engine that ran it).

Real interpreters: pyenv's 3.12 and 3.13, prepared once per test session by the real
``taskscope pythons add`` (skipped, with the reason, where pyenv lacks them).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from engine import Session, State, make_spec
from engine.build import python_block
from engine.compare import CompareRequest, compare
from engine.remote import RemoteSession
from engine.trace import export_run, load_trace
from tests.engine.pythonskit import need_pyenv, taskscope

WAIT_S = 60.0


def _one_line_error(p, code: int, *needles: str) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("taskscope: error: "), err
    for n in needles:
        assert n in err, err
    return err


# --- in this process: the block, a trace, a comparison -------------------------------------------
def test_a_run_records_its_python_and_a_trace_keeps_it(tmp_path: Path) -> None:
    with Session(sample_hz=None) as s:
        run = s.start(make_spec("threads", "cpu", 2, "5ms", 2))
        assert run.wait(WAIT_S)
        assert run.record.info["python"] == python_block()
        export_run(s.store, run.run_id, tmp_path / "t.json")
    replay = load_trace(tmp_path / "t.json")
    assert replay.runs[0].info["python"] == python_block()
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["taskscope"]["runs"][0]["python"]["version"] == platform.python_version()


def test_compare_rows_carry_their_python() -> None:
    with Session(sample_hz=None) as s:
        res = compare(s, CompareRequest("cpu", "sequential,threads", 2, "5ms"), settle_s=0)
    assert [r.python for r in res.results] == [python_block()] * 2
    d = res.as_dict()["results"][0]
    assert d["python"]["executable"] == python_block()["executable"]


# --- --python: bad input, one line, before anything starts ------------------------------------
def test_bad_python_paths_are_one_line_naming_python(tmp_path: Path) -> None:
    env = {**os.environ, "TASKSCOPE_CACHE_DIR": str(tmp_path)}  # an empty cache
    p = taskscope("run", "--python", str(tmp_path / "nope"), "-m", "threads", "-w", "cpu", env=env)
    _one_line_error(p, 2, "--python", "not a Python", "no such file")
    p = taskscope("compare", "--python", f"{sys.executable},{tmp_path}", "-M", "threads",
                  "-w", "cpu", env=env)
    _one_line_error(p, 2, "--python", "not a Python")
    p = taskscope("compare", "--python", f"{sys.executable},{sys.executable}", "-M", "threads",
                  "-w", "cpu", env=env)
    _one_line_error(p, 2, "--python", "listed twice")
    other = need_pyenv("3.13")
    p = taskscope("run", "--python", str(other), "-m", "threads", "-w", "cpu", env=env)
    _one_line_error(p, 2, "--python", "no TaskScope environment yet",
                    f"run: taskscope pythons add {other}")
    # A name is looked up on PATH, as a shell would (it was "not a Python: no such file").
    on_path = {**env, "PATH": f"{other.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    p = taskscope("run", "--python", other.name, "-m", "threads", "-w", "cpu", env=on_path)
    _one_line_error(p, 2, "--python", "no TaskScope environment yet")


# --- on pyenv's 3.13 and 3.12 ---------------------------------------------------------------------
def test_run_on_313_says_so_in_its_json_and_its_trace(prepared_pythons, tmp_path: Path) -> None:
    added = prepared_pythons.get("3.13")
    trace = tmp_path / "run.json"
    p = taskscope("run", "--python", str(added.interpreter), "-m", "interpreters", "-w", "cpu",
                  "-n", "4", "-s", "20ms", "-k", "2", "--json", "-", "-q", "--trace", str(trace),
                  env=prepared_pythons.environ(), timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    want = {"executable": str(added.interpreter), "version": added.interpreter.parent.parent.name,
            "free_threaded": False, "gil_enabled": True}
    assert doc["python"] == want  # the engine on 3.13 said so, not this 3.11 CLI
    assert doc["counts"] == {"finished": 4}
    assert doc["info"]["startup_s"] > 0 and len(doc["info"]["interpreters"]) == 2
    assert {t["thread_name"] for t in doc["tasks"]} == {
        f"interp-{i['id']}" for i in doc["info"]["interpreters"]}
    assert load_trace(trace).runs[0].info["python"] == want


def test_compare_across_this_interpreter_and_313(prepared_pythons) -> None:
    """Every model on every interpreter: a row each, saying which; a model one interpreter
    lacks gets its reason there and runs on the other."""
    added = prepared_pythons.get("3.13")
    p = taskscope("compare", "--python", f"{sys.executable},{added.interpreter}",
                  "-M", "sequential,interpreters", "-w", "cpu", "-n", "2", "-s", "20ms",
                  "-k", "2", "--settle", "0ms", "--json", "-", env=prepared_pythons.environ(),
                  timeout=180)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    rows = [(r["model"], r["python"]["version"], r["status"]) for r in res["results"]]
    here = platform.python_version()
    there = added.interpreter.parent.parent.name
    here_has = sys.version_info >= (3, 13)
    assert rows == [("sequential", here, "complete"),
                    ("interpreters", here, "complete" if here_has else "error"),
                    ("sequential", there, "complete"), ("interpreters", there, "complete")]
    if not here_has:
        assert "not available on Python" in res["results"][1]["error"]
    assert res["results"][3]["speedup_basis"] == f"sequential on {there}"  # per interpreter
    assert res["results"][3]["startup_s"] > 0
    assert sum(r["winner"] for r in res["results"]) == 1
    assert any("per interpreter" in n for n in res["notes"])
    # The table (on stderr, with --json -) names each row's interpreter, as do the progress
    # lines and the winner's.
    head = next(ln for ln in p.stderr.splitlines() if ln.split()[:2] == ["model", "python"])
    assert head
    assert f"interpreters on {there}:" in p.stderr and "* winner: " in p.stderr


def test_sequential_and_threads_on_312(prepared_pythons) -> None:
    added = prepared_pythons.get("3.12")
    rs = RemoteSession(10.0, python=str(added.python))
    try:
        assert rs.python["version"].startswith("3.12")
        models = rs.models()
        sub = models["interpreters"]
        assert not sub.available and "_interpreters" in sub.reason
        for model, workers in (("sequential", 1), ("threads", 2)):
            run = rs.start(make_spec(model, "cpu", 4, "20ms", None if workers == 1 else workers,
                                     models=models))
            assert run.wait(WAIT_S)
            tasks = rs.store.tasks(run.run_id)
            assert [t.state for t in tasks] == [State.FINISHED] * 4
            assert len({t.tid for t in tasks}) == workers
            assert run.record.info["python"]["version"].startswith("3.12")
    finally:
        assert rs.shutdown(3.0).clean


def test_engines_on_two_interpreters_share_one_store_and_route_by_id(
        prepared_pythons, leak_check) -> None:
    """The window's session: one engine per interpreter, their runs numbered apart in one
    store, a cancel routed to the engine that runs the task, every engine ended at shutdown."""
    import time

    from engine.remote import Engines

    added = prepared_pythons.get("3.13")
    e = Engines(10.0)
    try:
        e.choose([str(added.python)])
        models = e.engine(str(added.python)).models()
        far = e.start(make_spec("threads", "sleep", 2, "20s", 2, models=models))
        e.choose([])
        near = e.start(make_spec("threads", "sleep", 1, "10ms"))
        assert far.run_id >= 1_000_000 > near.run_id  # apart, in one store
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            e.pump()
            rec = e.store.run(far.run_id)
            if rec is not None and rec.counts.get("running") == 2:
                break
            time.sleep(0.02)
        tid = far.first_task_id
        assert e.cancel_task(tid)  # routed to the 3.13 engine by the task's id
        while time.monotonic() < deadline and e.store.task(tid).state is not State.CANCELLED:
            e.pump()
            time.sleep(0.02)
        assert e.store.task(tid).state is State.CANCELLED
        assert e.store.run(far.run_id).info["python"]["version"].startswith("3.13")
        assert e.store.run(near.run_id).info["python"]["version"] == platform.python_version()
        assert e.cancel_all() >= 1
    finally:
        assert e.shutdown(3.0).clean
