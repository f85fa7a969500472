"""Show code: every generated script runs standalone, exits 0 and prints its wall time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine import make_spec
from engine.models import all_models
from engine.scriptgen import ScriptError, generate
from engine.workloads.calibrate import calibration
from tests.engine.enginekit import CLUSTER_MODELS

#: dask's scripts run in test_dask.py, on its shared cluster (a LocalCluster per script here
#: would cost 2 to 10 s each); one of them starts its own LocalCluster there.
MODELS = [m.name for m in all_models() if m.available and m.name not in CLUSTER_MODELS]
WALL = re.compile(r"^wall (\d+\.\d+) s$", re.M)

USER = '''
import asyncio

def plain(x):
    return x * 2

async def coro(x, ctx):
    await ctx.asleep(0.01)
    ctx.progress(1.0)
    return x
'''

WORKLOADS = [
    ("cpu", {}, "collect"),
    ("sleep", {}, "collect"),
    ("fail", {"every": 2}, "collect"),
    ("fail", {"every": 2}, "fail-fast"),
    ("custom-sync", {}, "collect"),
    ("custom-async", {}, "collect"),
]


def _run_script(src: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    path = tmp_path / f"{name}.py"
    path.write_text(src)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("model", MODELS)
def test_generated_scripts_run(model, tmp_path) -> None:
    run_generated_scripts(model, tmp_path)


def run_generated_scripts(model: str, tmp_path: Path, options: dict | None = None) -> None:
    """Generate and run the script of every WORKLOADS case under ``model``; check each."""
    user = tmp_path / "user_mod.py"
    user.write_text(USER)
    for workload, params, policy in WORKLOADS:
        if workload.startswith("custom"):
            fn = "plain" if workload == "custom-sync" else "coro"
            params = {"function": f"{user}:{fn}", "args": [3]}
            wl = "custom"
        else:
            wl = workload
        spec = make_spec(model, wl, 4, "30ms", None, "5s", policy, params, options)
        src = generate(spec)
        assert "import engine" not in src and "from engine" not in src  # no TaskScope needed
        r = _run_script(src, tmp_path, f"{model}-{workload}-{policy}".replace("-", "_"))
        label = (model, workload, policy)
        assert r.returncode == 0, (label, r.stderr[-800:])
        m = WALL.search(r.stdout)
        assert m and 0 <= float(m.group(1)) < 30, (label, r.stdout)
        if workload == "fail":
            # every=2 fails tasks 0 and 2. Under fail-fast the first to fail stops the rest,
            # and with workers running at once that can be either (a pool's worker that
            # starts late lets task 2 fail first: seen under load).
            first = "task [02]" if policy == "fail-fast" else "task 0"
            assert re.search(f"{first} failed: WorkloadFailure", r.stdout), (label, r.stdout)
            if policy == "fail-fast":
                assert "fail-fast" in r.stdout, (label, r.stdout)
            else:
                assert "finished 2 · failed 2" in r.stdout, (label, r.stdout)
        else:
            assert "finished 4" in r.stdout, (label, r.stdout)


def test_patterns_per_model() -> None:
    calib = {"cpu_iters_per_s": 1e7, "numpy_calls_per_s": 1e4, "file_rounds_per_s": 1e3}
    src = {m: generate(make_spec(m, "cpu", 4, "200ms", policy="collect"), calib) for m in MODELS}
    assert "ThreadPoolExecutor(max_workers=WORKERS)" in src["threads"]
    assert "ProcessPoolExecutor(max_workers=WORKERS)" in src["processes"]
    assert 'if __name__ == "__main__"' in src["processes"]
    assert "asyncio.gather" in src["asyncio"]
    assert "run_in_executor(pool, task, i)" in src["asyncio-processes"]
    assert "for i in range(TASKS):" in src["sequential"]
    if engine.model_info("dask").available:
        d = generate(make_spec("dask", "cpu", 4, "200ms"), calib)
        assert "LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True)" in d
        assert "client.map(task, range(TASKS)" in d and "client.gather(" in d
        assert '"distributed.scheduler.allowed-failures": 0' in d  # no hidden retries
    # the cpu work is sized from the calibration: 200 ms at 1e7 iterations per second
    assert "ITERATIONS = 2000000" in src["threads"]
    ff = generate(make_spec("asyncio", "fail", 4, "10ms", timeout="1s", policy="fail-fast"), calib)
    assert "asyncio.TaskGroup()" in ff and "asyncio.timeout(TIMEOUT)" in ff
    limited = generate(make_spec("asyncio", "sleep", 8, "10ms", workers=2), calib)
    assert "asyncio.Semaphore(WORKERS)" in limited and "WORKERS = 2" in limited
    real = generate(make_spec("threads", "cpu", 1, "1s"))
    assert f"ITERATIONS = {int(calibration()['cpu_iters_per_s'])}" in real


def test_the_cpu_script_does_about_the_engines_work(tmp_path) -> None:
    r = _run_script(generate(make_spec("sequential", "cpu", 2, "150ms")), tmp_path, "cpu")
    assert r.returncode == 0, r.stderr
    wall = float(WALL.search(r.stdout).group(1))
    assert 0.1 < wall < 3.0  # 2 x 150 ms of calibrated work, give or take machine load


def test_no_standalone_equivalent_is_refused() -> None:
    with pytest.raises(ScriptError):
        generate(make_spec("threads", "events", 2, "10ms"))


def test_cli_show_code(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "engine.cli", "run", "-m", "threads", "-w", "sleep",
                        "-n", "3", "-s", "10ms", "--show-code"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("#!/usr/bin/env python3") and "ThreadPoolExecutor" in r.stdout
    run = _run_script(r.stdout, tmp_path, "shown")
    assert run.returncode == 0 and WALL.search(run.stdout)


def _unused(src: str) -> list[str]:
    """What a reader would call dead code in a script: top-level functions, classes and
    imports no other line names, and ``if`` blocks on a constant (``if False:``)."""
    import ast

    tree = ast.parse(src)

    def named_elsewhere(name: str, node: ast.stmt) -> bool:
        lo, hi = node.lineno, node.end_lineno or node.lineno
        return any(
            (isinstance(n, ast.Name) and n.id == name
             or isinstance(n, ast.Attribute) and n.attr == name)
            and not lo <= n.lineno <= hi for n in ast.walk(tree))

    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not named_elsewhere(node.name, node):
                out.append(f"def {node.name}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            for a in node.names:
                name = (a.asname or a.name).split(".")[0]
                if not named_elsewhere(name, node):
                    out.append(f"import {name}")
    for n in ast.walk(tree):
        if isinstance(n, ast.If | ast.While) and (
                isinstance(n.test, ast.Constant)
                or isinstance(n.test, ast.BoolOp) and any(isinstance(v, ast.Constant)
                                                          for v in n.test.values)):
            out.append(f"if {ast.unparse(n.test)} (line {n.lineno})")
    return out


@pytest.mark.parametrize("policy", ["collect", "fail-fast"])
@pytest.mark.parametrize("model", [m.name for m in all_models()
                                   if m.name not in ("free-threaded", "interpreters")])
def test_scripts_carry_no_unused_code(model: str, policy: str, tmp_path: Path) -> None:
    """Show code is read by people: no unused async defs, helpers or imports, no
    ``if False:`` blocks (issue 16), whatever the model, workload and policy."""
    calib = {"cpu_iters_per_s": 1e7, "numpy_calls_per_s": 1e4, "file_rounds_per_s": 1e3}
    user = tmp_path / "userfn.py"
    user.write_text(USER)
    for workload, params in (("cpu", {}), ("sleep", {}), ("numpy", {}), ("file", {}),
                             ("mixed", {}), ("blocking", {}), ("fail", {"every": 2}),
                             ("http", {}), ("custom", {"function": f"{user}:plain",
                                                       "args": "[2]"}),
                             ("custom", {"function": f"{user}:coro", "args": "[2]"})):
        try:
            spec = make_spec(model, workload, 4, "10ms", timeout="1s", policy=policy,
                             params=params)
        except engine.SpecError:
            continue  # not a pair this model runs (crash: processes only, ...)
        src = generate(spec, calib)
        assert _unused(src) == [], (model, workload, policy)
