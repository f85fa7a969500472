"""Other interpreters: discovery, the ``python`` block, and ``taskscope pythons [add]``.

pyenv's real 3.12 and 3.13 are used (skipped with the reason where absent). No free-threaded
build can be installed on this machine, so that path is covered from a *description* of one: an
executable that answers the probe as a 3.14t would, and probes given to :func:`assess`.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.pythons import assess, discover, python_block
from engine.pythons.discovery import engine_dir, find
from engine.pythons.probe import Probe, probe
from engine.pythons.requirements import ENGINE, EXTRAS
from tests.engine.pythonskit import need_pyenv, pyenv_python, taskscope

ROOT = Path(__file__).resolve().parents[2]


def _no_pyenv_dir(tmp_path: Path) -> Path:
    return tmp_path / "no-pyenv"


# --- discovery ----------------------------------------------------------------------------


def test_discovery_finds_the_current_interpreter_and_pyenvs(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TASKSCOPE_CACHE_DIR", str(tmp_path))  # nothing prepared
    found = discover()
    cur = found[0]
    assert cur.source == "current" and cur.path == sys.executable
    assert cur.version == platform.python_version()
    assert cur.ready and cur.engine_python == sys.executable, cur
    assert cur.build == "GIL" and cur.free_threaded is False
    reals = [os.path.realpath(i.path) for i in found]
    assert len(reals) == len(set(reals)), "the same interpreter listed twice"
    for minor, gil in (("3.12", None), ("3.13", True)):
        exe = pyenv_python(minor)
        if exe is None:
            continue  # the skip below names it
        i = find(found, str(exe))
        assert i is not None, f"pyenv's {exe} not found: {[x.path for x in found]}"
        assert i.version == exe.parent.parent.name  # versions/3.13.0/bin/python3.13
        assert (i.free_threaded, i.gil_enabled, i.build) == (False, gil, "GIL")
        assert not i.ready and i.reason and i.fix.startswith("run: taskscope pythons add ")
    if pyenv_python("3.12") is None or pyenv_python("3.13") is None:
        pytest.skip(f"pyenv's 3.12/3.13 are not both here (pyenv 3.12: {pyenv_python('3.12')},"
                    f" 3.13: {pyenv_python('3.13')})")


FAKE_314T = {
    "executable": "", "version_info": [3, 14, 0], "implementation": "cpython",
    "free_threaded": True, "gil_enabled": False, "purelib": "",
    "import_errors": {"psutil": "ModuleNotFoundError: No module named 'psutil'"},
    "engine_dir": None, "gil_after_imports": False, "subinterpreters": "stdlib",
}


def _fake_python(folder: Path, name: str, answer: dict) -> Path:
    """An executable that answers the probe as the interpreter ``answer`` describes."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    line = "TASKSCOPE-PROBE " + json.dumps({**answer, "executable": str(exe)})
    exe.write_text(f"#!/bin/sh\ncat <<'EOF'\n{line}\nEOF\n")
    exe.chmod(0o755)
    return exe


@pytest.mark.skipif(sys.platform == "win32", reason="the fake interpreter is a shell script")
def test_a_free_threaded_build_on_path_is_found_and_described(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TASKSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    exe = _fake_python(tmp_path / "bin", "python3.14t", FAKE_314T)
    found = discover(path_env=str(exe.parent), pyenv=_no_pyenv_dir(tmp_path))
    i = find(found, str(exe))
    assert i is not None and i.source == "PATH"
    assert (i.version, i.free_threaded, i.gil_enabled) == ("3.14.0", True, False)
    assert i.build == "free-threaded"
    assert not i.ready and i.fix == f"run: taskscope pythons add {exe}"
    assert i.python_block() == {"executable": str(exe), "version": "3.14.0",
                                "free_threaded": True, "gil_enabled": False}


def _fake_probe(path: str, **over: object) -> Probe:
    return Probe.from_answer(path, {**FAKE_314T, "executable": path, **over})


def test_assess_free_threaded_ready_and_gil_back_on() -> None:
    base = _fake_probe("/opt/py/bin/python3.14t")
    env = Path("/cache/pythons/cpython-3.14.0t-x")
    good = _fake_probe(str(env / "bin/python"), import_errors={}, engine_dir=engine_dir())
    i = assess(base, "PATH", env, good)
    assert i.ready and i.engine_python == str(env / "bin/python")
    assert i.free_threaded_model and i.subinterpreters == "stdlib" and not i.notes
    # An extension without free-threading support switches the GIL back on when imported.
    back_on = _fake_probe(str(env / "bin/python"), import_errors={}, engine_dir=engine_dir(),
                          gil_after_imports=True)
    j = assess(base, "PATH", env, back_on)
    assert j.ready and not j.free_threaded_model
    assert any("GIL comes back on" in n for n in j.notes)
    # The build is free-threaded but started with PYTHON_GIL=1.
    gil_on = assess(_fake_probe("/p", gil_enabled=True), "PATH", env, back_on)
    assert gil_on.build == "free-threaded (GIL on)" and not gil_on.free_threaded_model
    # A broken environment, and one that runs another TaskScope's engine: not ready, and why.
    broken = _fake_probe(str(env / "bin/python"), engine_dir=engine_dir())
    k = assess(base, "PATH", env, broken)
    assert not k.ready and "broken" in k.reason and "psutil" in k.reason
    assert k.fix.endswith("(repairs it)")
    other = _fake_probe(str(env / "bin/python"), import_errors={}, engine_dir="/elsewhere")
    assert "/elsewhere" in assess(base, "PATH", env, other).reason


@pytest.mark.skipif(sys.platform == "win32", reason="the fake interpreter is a shell script")
def test_probe_answers_are_cached_until_the_executable_changes(tmp_path) -> None:
    exe = _fake_python(tmp_path, "python3.14t", FAKE_314T)
    first = probe(str(exe))
    assert first.ok and first.version == "3.14.0"
    assert probe(str(exe)) is first  # not run again
    _fake_python(tmp_path, "python3.14t", {**FAKE_314T, "version_info": [3, 14, 1]})
    st = exe.stat()
    os.utime(exe, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert probe(str(exe)).version == "3.14.1"


# --- the python block ---------------------------------------------------------------------


def test_python_block_of_this_interpreter() -> None:
    b = python_block()
    assert b == {"executable": sys.executable, "version": platform.python_version(),
                 "free_threaded": False, "gil_enabled": b["gil_enabled"]}
    assert b["gil_enabled"] is (True if sys.version_info >= (3, 13) else None)


def test_run_json_carries_the_python_block() -> None:
    p = taskscope("run", "-m", "sequential", "-w", "sleep", "-n", "1", "-s", "10ms", "--json",
                  "-", "-q")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["python"]["version"] == platform.python_version()


# --- requirements -------------------------------------------------------------------------


def test_requirements_agree_with_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(ENGINE) <= set(project["dependencies"])
    extras = project["optional-dependencies"]
    assert list(EXTRAS["interpreters"]) == extras["interpreters"]
    for name, reqs in EXTRAS.items():
        if name in extras:
            assert list(reqs) == extras[name], name


# --- taskscope pythons [add]: bad input, one line each ------------------------------------


def _one_line_error(p: subprocess.CompletedProcess, code: int, *words: str) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("taskscope: error: "), p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_add_refuses_what_is_not_a_python(tmp_path) -> None:
    env = {**os.environ, "TASKSCOPE_CACHE_DIR": str(tmp_path / "cache")}
    text = tmp_path / "notes.txt"
    text.write_text("not a program\n")
    runs_but_not_python = tmp_path / "python3"
    runs_but_not_python.write_text("#!/bin/sh\necho hello\n")
    runs_but_not_python.chmod(0o755)
    garbage = tmp_path / "python3.13"
    garbage.write_bytes(b"\x00\x01not an executable format")
    garbage.chmod(0o755)
    for path in (text, runs_but_not_python, garbage, tmp_path / "missing", tmp_path):
        _one_line_error(taskscope("pythons", "add", str(path), env=env), 2, str(path),
                        "not a Python")
    assert not (tmp_path / "cache" / "pythons").exists()  # nothing was made


@pytest.mark.parametrize("minor", ["2.7", "3.10"])
def test_add_refuses_a_python_older_than_311(minor, tmp_path) -> None:
    exe = need_pyenv(minor)
    env = {**os.environ, "TASKSCOPE_CACHE_DIR": str(tmp_path)}
    line = _one_line_error(taskscope("pythons", "add", str(exe), env=env), 2, "older than 3.11")
    assert exe.parent.parent.name in line  # the version it found
    assert not (tmp_path / "pythons").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_add_says_when_no_registry_is_reachable(tmp_path) -> None:
    exe = need_pyenv("3.12")
    env = {**os.environ, "TASKSCOPE_CACHE_DIR": str(tmp_path),
           # only an index nobody listens on: no config files, no local wheels
           "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": f"http://127.0.0.1:{_closed_port()}/",
           "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "", "PIP_NO_CACHE_DIR": "1"}
    p = taskscope("pythons", "add", "-q", str(exe), env=env, timeout=120)
    _one_line_error(p, 1, "no package registry reachable", "127.0.0.1")
    left = [d for d in (tmp_path / "pythons").iterdir() if not d.name.startswith(".")]
    assert not left, f"half-made environment left behind: {left}"


# --- taskscope pythons add, for real --------------------------------------------------------


@pytest.mark.timeout(600)
def test_add_prepares_313_and_the_engine_runs_there(prepared_pythons) -> None:
    added = prepared_pythons.get("3.13")
    assert added.python.exists() and "ready in" in added.output
    assert "interpreters-pep-734" in added.output  # the backport, on 3.13
    env = prepared_pythons.environ()
    env.pop("PYTHONPATH", None)  # the engine must import through the environment's own link
    check = subprocess.run(
        [str(added.python), "-c", "import engine, psutil, numpy, sys; print(engine.__file__);"
         "print('PySide6' in sys.modules)"], capture_output=True, text=True, env=env,
        timeout=60, check=False)
    assert check.returncode == 0, check.stderr
    engine_file, qt = check.stdout.split()
    assert os.path.realpath(engine_file).startswith(engine_dir()) and qt == "False"
    run = subprocess.run(
        [str(added.python), "-m", "engine.cli", "run", "-m", "sequential", "-w", "cpu", "-n", "2",
         "-s", "20ms", "--json", "-", "-q"], capture_output=True, text=True, env=env,
        timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["counts"] == {"finished": 2}
    assert doc["python"] == {"executable": str(added.interpreter),
                             "version": added.interpreter.parent.parent.name,
                             "free_threaded": False, "gil_enabled": True}
    # Listed as ready, on its environment, with sub-interpreters from the backport.
    listed = json.loads(taskscope("pythons", "--json", env=prepared_pythons.environ()).stdout)
    entry = next(d for d in listed if d["path"] == str(added.interpreter))
    assert entry["ready"] and entry["engine_python"] == str(added.python)
    assert entry["subinterpreters"] == "backport"


@pytest.mark.timeout(600)
def test_add_again_repairs_and_a_dependency_without_a_build_is_named(prepared_pythons) -> None:
    added = prepared_pythons.get("3.13")
    env = prepared_pythons.environ()
    # Break it: the engine's link goes; adding again puts it back.
    pth = next(added.python.parent.parent.glob("lib/python3*/site-packages/taskscope-engine.pth"))
    pth.unlink()
    again = taskscope("pythons", "add", str(added.interpreter), env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "(there already)" in again.stdout and pth.exists()
    # A dependency with no wheel for 3.13 (NumPy before 2.1): one line naming it, and the
    # prepared environment is left as it was.
    p = taskscope("pythons", "add", "-q", str(added.interpreter), "--with", "numpy<2.1", env=env,
                  timeout=300)
    _one_line_error(p, 1, "numpy has no build for Python 3.13")
    env.pop("PYTHONPATH", None)
    ok = subprocess.run([str(added.python), "-c", "import engine, numpy"], env=env, timeout=60,
                        check=False, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.timeout(600)
def test_add_prepares_312_which_has_no_subinterpreters(prepared_pythons) -> None:
    """On 3.12 the backport lacks its _interpreters C module (a separate source-only package):
    the environment is still made, and the listing says why there are no sub-interpreters."""
    added = prepared_pythons.get("3.12")
    listed = json.loads(taskscope("pythons", "--json", env=prepared_pythons.environ()).stdout)
    entry = next(d for d in listed if d["path"] == str(added.interpreter))
    assert entry["ready"] and entry["engine_python"] == str(added.python)
    assert entry["subinterpreters"] is None
    assert any("no sub-interpreters" in n and "_interpreters" in n for n in entry["notes"])


def test_pythons_table_marks_the_current_interpreter_ready() -> None:
    p = taskscope("pythons")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["PATH", "VERSION", "BUILD"]
    current = [ln for ln in lines if " * " in ln]
    assert len(current) == 1 and platform.python_version() in current[0], p.stdout
    assert " ready" in current[0]
