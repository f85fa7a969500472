"""The headless front end, through the real console script (a subprocess, as users run it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine

TASKSCOPE = str(Path(sys.executable).with_name("taskscope"))
TASK_FIELDS = {"id", "state", "queued_ns", "start_ns", "end_ns", "pid", "thread_id", "core",
               "error"}


def taskscope(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([TASKSCOPE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def test_console_script_is_installed() -> None:
    assert Path(TASKSCOPE).exists(), TASKSCOPE


def test_run_prints_a_summary() -> None:
    p = taskscope("run", "--model", "threads", "--workload", "sleep", "--tasks", "4",
                  "--size", "50ms", "--workers", "2")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "threads" in out and "sleep" in out and "4 tasks" in out and "2 workers" in out
    assert "wall " in out and "finished 4" in out
    assert "2 distinct workers" in out
    assert "Traceback" not in p.stderr


def _check_doc(doc: dict, model: str, workload: str, n: int) -> list[dict]:
    assert doc["model"] == model and doc["workload"] == workload
    assert isinstance(doc["wall_s"], float) and doc["wall_s"] > 0
    tasks = doc["tasks"]
    assert len(tasks) == n
    assert len({t["id"] for t in tasks}) == n
    for t in tasks:
        assert set(t) >= TASK_FIELDS, set(t)
        assert t["queued_ns"] <= t["start_ns"] <= t["end_ns"]
        assert t["pid"] > 0 and t["thread_id"] > 0
        assert 0 <= t["core"] < (os.cpu_count() or 1)
    return tasks


def test_json_to_stdout() -> None:
    p = taskscope("run", "-m", "asyncio", "-w", "sleep", "-n", "5", "-s", "50ms", "--json", "-")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)  # stdout is the document and nothing else
    tasks = _check_doc(doc, "asyncio", "sleep", 5)
    assert {t["state"] for t in tasks} == {"finished"}
    assert {t["error"] for t in tasks} == {None}
    assert len({t["thread_id"] for t in tasks}) == 1  # one loop thread
    assert "asyncio" in p.stderr  # the readable summary went to stderr


def test_json_to_a_file_with_failures(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    p = taskscope("run", "-m", "processes", "-w", "fail", "-n", "4", "-s", "50ms", "-k", "2",
                  "-p", "every=2", "--json", str(path))
    assert p.returncode == 0, p.stderr
    assert "processes" in p.stdout and "failed 2" in p.stdout and "finished 2" in p.stdout
    doc = json.loads(path.read_text())
    tasks = _check_doc(doc, "processes", "fail", 4)
    by_state: dict[str, list[dict]] = {}
    for t in tasks:
        by_state.setdefault(t["state"], []).append(t)
    assert len(by_state["failed"]) == 2 and len(by_state["finished"]) == 2
    for t in by_state["failed"]:
        assert t["error"]["type"] == "WorkloadFailure"
        assert "failed on purpose" in t["error"]["message"]
        assert "Traceback" in t["error"]["traceback"]
    assert all(t["pid"] != os.getpid() for t in tasks)


def test_models_lists_every_model() -> None:
    p = taskscope("models")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for m in engine.all_models():
        line = next(ln for ln in lines if ln.split()[0] == m.name)
        assert ("yes" if m.available else "no") == line.split()[1]
        if not m.available:
            assert m.reason in line


BAD_ARGS = [
    (["run", "--model", "nope", "--workload", "cpu"], "model"),
    (["run", "--model", "interpreters", "--workload", "cpu"], "model")
    if not engine.model_info("interpreters").available else (["run", "-m", "x", "-w", "cpu"],
                                                             "model"),
    (["run", "--workload", "cpu"], "--model"),
    (["run", "-m", "threads", "-w", "nope"], "workload"),
    (["run", "-m", "threads", "-w", "crash"], "workload"),
    (["run", "-m", "threads", "-w", "cpu", "--tasks", "0"], "tasks"),
    (["run", "-m", "threads", "-w", "cpu", "--tasks", "-3"], "tasks"),
    (["run", "-m", "threads", "-w", "cpu", "--tasks", "many"], "tasks"),
    (["run", "-m", "threads", "-w", "cpu", "--tasks", "99999999999999"], "tasks"),
    (["run", "-m", "threads", "-w", "cpu", "--size", "nan"], "size"),
    (["run", "-m", "threads", "-w", "cpu", "--size", "-1s"], "size"),
    (["run", "-m", "threads", "-w", "cpu", "--size", "10000s"], "size"),
    (["run", "-m", "threads", "-w", "cpu", "--workers", "0"], "workers"),
    (["run", "-m", "threads", "-w", "cpu", "--timeout", "0"], "timeout"),
    (["run", "-m", "threads", "-w", "cpu", "--policy", "sometimes"], "policy"),
    (["run", "-m", "threads", "-w", "http", "-p", "delay=0"], "params.delay"),
    (["run", "-m", "threads", "-w", "cpu", "-p", "nokey"], "--param"),
    (["run", "-m", "threads", "-w", "cpu", "-p", "speed=3"], "params.speed"),
    (["run", "-m", "threads", "-w", "cpu", "--bogus"], "--bogus"),
    (["run", "-m", "threads", "-w", "cpu", "--json", "/nonexistent-dir/x.json"], "--json"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    if "--json" not in args:
        args = [*args, "--json", str(out)] if args[0] == "run" else args
    p = taskscope(*args, timeout=30)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert "Traceback" not in p.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("taskscope: "), err
    assert needle in err, err
    assert p.stdout == ""
    assert not out.exists()  # nothing ran: not even the output file was opened


def _interrupt(proc: subprocess.Popen, timeout: float) -> tuple[str, str, float]:
    """Ctrl+C to ``proc``; its output and how long it took to exit."""
    import signal
    import time

    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return out, err, time.monotonic() - t0


@pytest.mark.parametrize("model", ["processes", "threads"])
def test_ctrl_c_cancels_the_run_and_leaves_no_worker(model: str, tmp_path: Path) -> None:
    import time

    import psutil

    path = tmp_path / "run.json"
    proc = subprocess.Popen([TASKSCOPE, "run", "-m", model, "-w", "cpu", "-n", "6", "-s", "20s",
                             "-k", "2", "--json", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        me = psutil.Process(proc.pid)
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while time.monotonic() < deadline:  # wait until it really runs (workers busy)
            time.sleep(0.1)
            kids = [p for p in me.children(recursive=True) if p.ppid() != proc.pid]
            if model == "threads" and me.num_threads() >= 4 and me.cpu_percent(0.2) > 50:
                break
            if model == "processes" and len(kids) >= 2:
                workers = {p.pid for p in kids}
                time.sleep(0.5)
                break
        out, err, took = _interrupt(proc, timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (proc.returncode, err)
    assert took < 5, took
    assert "Traceback" not in err
    assert "cancelling" in err
    assert "cancelled" in out
    doc = json.loads(path.read_text())
    assert {t["state"] for t in doc["tasks"]} <= {"cancelled", "finished"}
    assert "cancelled" in {t["state"] for t in doc["tasks"]}
    assert not [p for p in workers if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def _mapped(pid: int, name: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return name in fh.read()
    except OSError:
        return False


@pytest.mark.parametrize("moment", ["importing", "session starting"])
def test_ctrl_c_while_it_starts_exits_130_at_once_without_a_traceback(moment: str) -> None:
    """Ctrl+C while the engine imports (psutil's library just mapped) or while the session
    starts its threads: a clean exit (it once raised inside the session's start-up, which
    left its threads running)."""
    import time

    import psutil

    proc = subprocess.Popen([TASKSCOPE, "run", "-m", "threads", "-w", "cpu", "-n", "4", "-s",
                             "20s", "-k", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if moment == "importing" and _mapped(proc.pid, "_psutil_linux"):
                break
            if moment == "session starting" and psutil.Process(proc.pid).num_threads() >= 2:
                break
            time.sleep(0.002)
        out, err, took = _interrupt(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert took < 10, took
