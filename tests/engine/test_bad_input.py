"""Bad input (issue 8): every CLI option with out-of-range, wrong-type and hostile values.

Each gets exactly one line on stderr that names the option or field, exit status 2, no
traceback, and nothing is started: no engine session, no forkserver, no child process, no
output file. The real console script runs in a subprocess; a ``sitecustomize`` put on its
``PYTHONPATH`` records which threads the process started and, at exit, whether it started the
forkserver or has child processes (it observes only; it changes nothing).

The same hostile values go through :func:`engine.make_spec` directly too.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine.spec import SpecError

TASKSCOPE = str(Path(sys.executable).with_name("taskscope"))

_PROBE = """
import atexit, json, os, sys, threading

_threads = []

def _thread_seen(frame, event, arg):
    # Runs once at the start of every thread the threading module starts, then steps aside.
    _threads.append(threading.current_thread().name)
    sys.setprofile(None)

def _taskscope_probe():
    info = {"threads": _threads}
    try:
        from multiprocessing import forkserver
        info["forkserver"] = forkserver._forkserver._forkserver_pid is not None
    except Exception as e:
        info["forkserver"] = repr(e)
    try:
        import psutil
        info["children"] = [p.pid for p in psutil.Process().children(recursive=True)]
    except Exception as e:
        info["children"] = repr(e)
    with open(os.environ["TASKSCOPE_PROBE_OUT"], "w") as f:
        json.dump(info, f)

# Only in the process the test started: its children (the forkserver is a fresh interpreter
# that reads this file too) inherit the marker and stay silent.
if os.environ.get("TASKSCOPE_PROBE_OUT") and not os.environ.get("TASKSCOPE_PROBE_PID"):
    os.environ["TASKSCOPE_PROBE_PID"] = str(os.getpid())
    threading.setprofile(_thread_seen)
    atexit.register(_taskscope_probe)
"""

HUGE = "9" * 40
JUNK = "\u202e\u0000x\U0001f4a5\ufeff"  # right-to-left override, NUL, emoji, BOM

# (extra args after "run -m threads -w sleep" unless they start with a subcommand, needle)
RUN = ["run", "-m", "threads", "-w", "sleep", "-n", "2", "-s", "5ms"]
CASES: list[tuple[list[str], str]] = [
    # --tasks
    ([*RUN, "-n", HUGE], "tasks"),
    ([*RUN, "-n", "1e309"], "tasks"),
    ([*RUN, "-n", "-5"], "tasks"),
    ([*RUN, "-n", "0"], "tasks"),
    ([*RUN, "-n", "nan"], "tasks"),
    ([*RUN, "-n", "inf"], "tasks"),
    ([*RUN, "-n", "2.5"], "tasks"),
    ([*RUN, "-n", ""], "tasks"),
    ([*RUN, "-n", "\u0661\u0662"], "tasks"),  # Arabic-Indic digits: int() would take them
    ([*RUN, "-n", JUNK], "tasks"),
    ([*RUN, "-n", "1000001"], "tasks"),
    # --size
    ([*RUN, "-s", "nan"], "size"),
    ([*RUN, "-s", "inf"], "size"),
    ([*RUN, "-s", "1e309"], "size"),
    ([*RUN, "-s=-1s"], "size"),
    ([*RUN, "-s", "-1s"], "--size"),  # argparse reads it as an option: still one clear line
    ([*RUN, "-s", ""], "size"),
    ([*RUN, "-s", "3601s"], "size"),
    ([*RUN, "-s", "10 parsecs"], "size"),
    ([*RUN, "-s", JUNK], "size"),
    # --workers
    ([*RUN, "-k", "0"], "workers"),
    ([*RUN, "-k", "-2"], "workers"),
    ([*RUN, "-k", HUGE], "workers"),
    ([*RUN, "-k", "nan"], "workers"),
    ([*RUN, "-k", "1e309"], "workers"),
    ([*RUN, "-k", JUNK], "workers"),
    (["run", "-m", "processes", "-w", "sleep", "-k", "257"], "workers"),
    (["run", "-m", "sequential", "-w", "sleep", "-k", "2"], "workers"),
    # --timeout
    ([*RUN, "-t", "0"], "timeout"),
    ([*RUN, "-t", "nan"], "timeout"),
    ([*RUN, "-t", "inf"], "timeout"),
    ([*RUN, "-t", "1e309"], "timeout"),
    ([*RUN, "-t=-1"], "timeout"),
    ([*RUN, "-t", "1e-400"], "timeout"),  # rounds to 0
    ([*RUN, "-t", "86401s"], "timeout"),
    ([*RUN, "-t", JUNK], "timeout"),
    # --policy, --model, --workload
    ([*RUN, "--policy", ""], "policy"),
    ([*RUN, "--policy", JUNK], "policy"),
    (["run", "-m", "", "-w", "sleep"], "model"),
    (["run", "-m", JUNK, "-w", "sleep"], "model"),
    (["run", "-m", "threads", "-w", ""], "--workload"),
    (["run", "-m", "threads", "-w", JUNK], "workload"),
    (["run", "-m", "threads", "-w", "crash"], "workload"),
    # --param
    ([*RUN, "-p", "nokey"], "--param"),
    ([*RUN, "-p", "=1"], "--param"),
    ([*RUN, "-p", f"{JUNK}=1"], "params."),
    (["run", "-m", "threads", "-w", "http", "-p", "delay=nan"], "params.delay"),
    (["run", "-m", "threads", "-w", "http", "-p", "delay=1e309"], "params.delay"),
    (["run", "-m", "threads", "-w", "http", "-p", "delay=61s"], "params.delay"),
    (["run", "-m", "threads", "-w", "http", "-p", "fail_after=-1"], "params.fail_after"),
    (["run", "-m", "threads", "-w", "fail", "-p", "every=0"], "params.every"),
    (["run", "-m", "threads", "-w", "fail", "-p", f"every={HUGE}"], "params.every"),
    (["run", "-m", "threads", "-w", "blocking", "-p", f"mode={JUNK}"], "params.mode"),
    (["run", "-m", "processes", "-w", "crash", "-p", "mode=melt"], "params.mode"),
    # --json, --trace, --csv: paths that are not files
    ([*RUN, "--json", "{tmp}"], "--json"),
    ([*RUN, "--json", ""], "--json"),
    ([*RUN, "--json", "{tmp}/no/such/dir/out.json"], "--json"),
    ([*RUN, "--trace", "{tmp}"], "--trace"),
    ([*RUN, "--trace", ""], "--trace"),
    ([*RUN, "--csv", ""], "--csv"),
    ([*RUN, "--csv", "{tmp}/"], "--csv"),
    ([*RUN, "--csv", "{tmp}"], "--csv"),
    ([*RUN, "--csv", "{tmp}/no/such/dir/x"], "--csv"),
    # custom functions that are not files or cannot be imported
    (["run", "-m", "threads", "-f", "{tmp}:fn"], "params.function"),
    (["run", "-m", "threads", "-f", "{tmp}/missing.py:fn"], "params.function"),
    (["run", "-m", "threads", "-f", "{tmp}/notpy.txt:fn"], "params.function"),
    (["run", "-m", "threads", "-f", "{tmp}/broken.py:fn"], "params.function"),
    (["run", "-m", "threads", "-f", "{tmp}/exits.py:fn"], "params.function"),
    (["run", "-m", "threads", "-f", "{tmp}/ok.py:missing"], "params.function"),
    (["run", "-m", "threads", "-f", "{tmp}/ok.py:not_callable"], "params.function"),
    (["run", "-m", "threads", "-f", "no_such_module_zz:fn"], "params.function"),
    (["run", "-m", "threads", "-f", "os:no_such_fn"], "params.function"),
    (["run", "-m", "threads", "-f", ""], "params.function"),
    (["run", "-m", "threads", "-f", ":"], "params.function"),
    (["run", "-m", "threads", "-f", JUNK], "params.function"),
    (["run", "-m", "threads", "-f", "time:sleep", "--args", "[1,"], "params.args"),
    (["run", "-m", "threads", "-f", "time:sleep", "--args", '{"a": 1}'], "params.args"),
    (["run", "-m", "threads", "-f", "json:dumps", "-a", "1", "-a", "2", "-a", "3"],
     "params.args"),
    (["run", "-m", "threads", "-w", "sleep", "-a", "1"], "--arg"),
    # compare
    (["compare", "-M", "", "-w", "sleep"], "models"),
    (["compare", "-M", f"threads,{JUNK}", "-w", "sleep"], "model"),
    (["compare", "-M", "threads", "-w", "sleep", "-n", HUGE], "tasks"),
    (["compare", "-M", "threads", "-w", "sleep", "--settle", "nan"], "settle"),
    (["compare", "-M", "threads", "-w", "sleep", "--settle", "1e309"], "settle"),
    (["compare", "-M", "threads", "-w", "sleep", "--json", "{tmp}"], "--json"),
    (["compare", "-M", "threads", "-w", "sleep", "--json", "{tmp}/out.json",
      "--csv", "{tmp}/no/such/dir/x.csv"], "--csv"),
    # unknown things
    (["run", "-m", "threads", "-w", "sleep", "--bogus"], "--bogus"),
    ([JUNK], "invalid choice"),
]


def _materialize(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A directory with the files the custom-function cases name, and the probe."""
    (tmp_path / "notpy.txt").write_text("def fn():\n    pass\n")
    (tmp_path / "broken.py").write_text("def fn(:\n")
    (tmp_path / "exits.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "ok.py").write_text("not_callable = 3\ndef fn():\n    return 1\n")
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(_PROBE)
    return tmp_path


def _run_cli(args: list[str], scratch: Path) -> tuple[subprocess.CompletedProcess, dict]:
    report = scratch / "probe" / "report.json"
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(scratch / "probe"), os.getcwd()])
    env["TASKSCOPE_PROBE_OUT"] = str(report)
    # \0 cannot cross exec(); the kernel would refuse the whole command line.
    argv = [a.replace("\u0000", "") for a in args]
    p = subprocess.run([TASKSCOPE, *argv], capture_output=True, text=True, timeout=60,
                       env=env, cwd=scratch, check=False, errors="replace")
    info = json.loads(report.read_text()) if report.exists() else {}
    return p, info


def _outputs(scratch: Path) -> set[str]:
    return {str(p.relative_to(scratch)) for p in scratch.rglob("*")
            if not str(p.relative_to(scratch)).startswith("probe")}


@pytest.mark.parametrize(("args", "needle"), CASES,
                         ids=[" ".join(a).encode("unicode_escape").decode()[:90] for a, _ in CASES])
def test_bad_cli_input_exits_2_with_one_line_and_starts_nothing(args: list[str], needle: str,
                                                               scratch: Path) -> None:
    before = _outputs(scratch)
    p, info = _run_cli(_materialize(args, scratch), scratch)
    err = p.stderr.strip()
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], err[-2000:])
    assert "Traceback" not in p.stderr, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("taskscope: error: "), err
    assert needle in err, err
    assert p.stdout == ""
    # Nothing started: no thread (a session starts several), no forkserver, no child
    # process; no file written.
    assert info, "the probe did not report"
    assert info["threads"] == [], info
    assert info["forkserver"] is False, info
    assert info["children"] == [], info
    assert _outputs(scratch) == before, _outputs(scratch) - before


def test_the_probe_sees_a_real_run(scratch: Path) -> None:
    """The probe is not blind: a good run does start a session and writes its file."""
    out = scratch / "good.json"
    p, info = _run_cli(["run", "-m", "processes", "-w", "sleep", "-n", "2", "-s", "5ms",
                        "--json", str(out)], scratch)
    assert p.returncode == 0, p.stderr
    assert "taskscope-flusher" in info["threads"] and info["forkserver"] is True, info
    assert out.exists()


# -- make_spec directly --------------------------------------------------------------------------
SPEC_CASES: list[tuple[dict, str]] = [
    ({"tasks": HUGE}, "tasks"),
    ({"tasks": 10**30}, "tasks"),
    ({"tasks": -1}, "tasks"),
    ({"tasks": float("nan")}, "tasks"),
    ({"tasks": float("inf")}, "tasks"),
    ({"tasks": 2.5}, "tasks"),
    ({"tasks": True}, "tasks"),
    ({"tasks": None}, "tasks"),
    ({"tasks": [3]}, "tasks"),
    ({"tasks": "1e309"}, "tasks"),
    ({"tasks": "\u0661\u0662"}, "tasks"),
    ({"tasks": b"3"}, "tasks"),
    ({"size": float("nan")}, "size"),
    ({"size": float("inf")}, "size"),
    ({"size": -0.5}, "size"),
    ({"size": 1e309}, "size"),
    ({"size": "1e309"}, "size"),
    ({"size": ""}, "size"),
    ({"size": None}, "size"),
    ({"size": {"s": 1}}, "size"),
    ({"size": True}, "size"),
    ({"size": JUNK}, "size"),
    ({"workers": 0}, "workers"),
    ({"workers": -3}, "workers"),
    ({"workers": float("nan")}, "workers"),
    ({"workers": 10**30}, "workers"),
    ({"workers": "many"}, "workers"),
    ({"workers": 1.5}, "workers"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": float("nan")}, "timeout"),
    ({"timeout": float("inf")}, "timeout"),
    ({"timeout": 1e-400}, "timeout"),
    ({"timeout": 1e9}, "timeout"),
    ({"timeout": [1]}, "timeout"),
    ({"policy": None}, "policy"),
    ({"policy": ""}, "policy"),
    ({"policy": ["collect"]}, "policy"),
    ({"model": None}, "model"),
    ({"model": ""}, "model"),
    ({"model": 3}, "model"),
    ({"model": JUNK}, "model"),
    ({"workload": None}, "workload"),
    ({"workload": ""}, "workload"),
    ({"workload": JUNK}, "workload"),
    ({"workload": "http", "params": {"delay": float("nan")}}, "params.delay"),
    ({"workload": "http", "params": {"delay": -1}}, "params.delay"),
    ({"workload": "http", "params": {"fail_after": float("inf")}}, "params.fail_after"),
    ({"workload": "fail", "params": {"every": 0}}, "params.every"),
    ({"params": {JUNK: 1}}, "params."),
    ({"workload": "custom", "params": {"function": None}}, "params.function"),
    ({"workload": "custom", "params": {"function": 42}}, "params.function"),
    ({"workload": "custom", "params": {"function": "/"}}, "params.function"),
    ({"workload": "custom", "params": {"function": "/etc:fn"}}, "params.function"),
    ({"workload": "custom", "params": {"function": "/nonexistent/x.py:fn"}}, "params.function"),
    ({"workload": "custom", "params": {"function": "no_such_module_zz:fn"}}, "params.function"),
    ({"workload": "custom", "params": {"function": "time:sleep", "args": "nope"}}, "params.args"),
    ({"workload": "custom", "params": {"function": "json:dumps", "args": [1, 2, 3]}},
     "params.args"),
    ({"workload": "custom", "params": {"function": "time:sleep", "kwargs": [1]}},
     "params.kwargs"),
    ({"model": "processes", "workload": "custom",
      "params": {"function": "time:sleep", "args": [lambda: 1]}}, "params.args"),
]


@pytest.mark.parametrize(("kw", "field"), SPEC_CASES,
                         ids=[repr(k).encode("unicode_escape").decode()[:80] for k, _ in SPEC_CASES])
def test_make_spec_refuses_hostile_values_naming_the_field(kw: dict, field: str) -> None:
    args = {"model": "threads", "workload": "sleep", **kw}
    with pytest.raises(SpecError) as ei:
        engine.make_spec(**args)
    e = ei.value
    assert e.field.startswith(field), (e.field, str(e))
    msg = str(e)
    assert "\n" not in msg and msg.startswith(f"{e.field}: ")
    assert len(msg) < 400, msg


def test_make_spec_accepts_the_edges() -> None:
    s = engine.make_spec("threads", "sleep", tasks="1_000", size="0", workers=" 4 ",
                         timeout="1e-3")
    assert (s.tasks, s.size_s, s.workers, s.timeout_s) == (1000, 0.0, 4, 0.001)
    s = engine.make_spec("asyncio", "sleep", tasks=1_000_000, size=3600, timeout="86400s")
    assert s.tasks == 1_000_000 and math.isclose(s.size_s, 3600)
