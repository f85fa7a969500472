"""A comparison's figures say one thing each: the run's own busy cores everywhere, partial runs
never ranked, the window's lag never blamed on a model, start-up on a line of its own.

Timing assertions are loose on purpose: the machine has 2 cores and other suites may be running.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from engine.compare import (
    CORES_FMT,
    CompareRequest,
    Figures,
    ModelResult,
    compare,
    format_table,
    plan,
    reading,
    row,
)
from engine.compare.figures import finish
from engine.models.procpool import ProcPool
from engine.spec import make_spec, workload_label

BASE = Figures(model="threads", complete=True, tasks=4, tasks_ok=4, wall_s=1.0, speedup=1.0,
               is_baseline=False, cores_busy=1.0, workers=6, cores=2, cpu_share=1.0, size_s=0.3,
               overhead_per_task_s=0.01, gui_lag_p99_ms=None, shares_gil=True)


def _table_cell(res, model: str, column: str) -> str:
    """One cell of the CLI table (columns are two or more spaces apart, the star column
    stripped off the front)."""
    lines = format_table(res).splitlines()
    head = re.split(r"\s{2,}", lines[1].strip())
    for line in lines[2:]:
        cells = re.split(r"\s{2,}", line.strip().lstrip("*").strip())
        if cells[0] == model:
            return cells[head.index(column)]
    raise AssertionError(f"no row for {model}")


def test_a_readings_busy_cores_are_the_tables(session) -> None:
    """Issue 16.1: the table said 1.46 busy cores (the machine's) where the reading said 0.9
    (the run's own). Now the run's own figure is "busy cores" in the reading, the CLI table,
    the flat rows (CSV, the window's table and charts) and the JSON, printed alike."""
    res = compare(session, CompareRequest("cpu", "sequential,threads", 2, "100ms", 2),
                  settle_s=0.05)
    doc = json.loads(json.dumps(res.as_dict()))
    for i, r in enumerate(res.results):
        assert r.complete, r
        m = re.search(r"(\d+\.\d+) cores busy", r.reading)
        assert m, r.reading
        said = m.group(1)
        assert said == format(row(r)["busy_cores"], CORES_FMT) == format(r.busy_cores, CORES_FMT)
        assert doc["results"][i]["busy_cores"] == pytest.approx(float(said), abs=0.006)
        assert _table_cell(res, r.model, "busy cores") == said
        # the machine's load is a figure of its own, never under that name
        assert r.machine_cores is not None and doc["results"][i]["machine_cores"] is not None


def test_the_windows_lag_is_not_a_models_doing() -> None:
    """Issue 16.2: "sequential … the GUI lagged 50 ms (p99)" for a sleep run in the engine
    process. The figure stays (gui_lag_p99_ms); the reading mentions it only for a run on the
    window's own loop."""
    lagged = replace(BASE, gui_lag_p99_ms=80.0)
    assert "lag" not in reading(lagged)
    on_loop = reading(replace(lagged, on_gui_loop=True))
    assert "window's loop, which lagged 80 ms (p99)" in on_loop
    assert "lag" not in reading(replace(BASE, gui_lag_p99_ms=5.0, on_gui_loop=True))


def _finished(specs, results, cores: int = 2) -> list[ModelResult]:
    finish(None, specs, results, cores)  # type: ignore[arg-type] # no custom: no session needed
    return results


def test_a_cancelled_run_is_never_ranked_nor_a_basis() -> None:
    """Issue 16.3, preset 2 cancelled mid-threads: threads were charted with -126.5 ms overhead
    and processes won "1.0x … no gain over the baseline", measured against themselves."""
    specs = plan(CompareRequest("cpu", "threads,processes", 8, "500ms", 4))
    thr = ModelResult("threads", "cancelled", run_id=1, workers=4, tasks=8, wall_s=0.99,
                      counts={"finished": 1, "cancelled": 7}, busy_cores=1.0, startup_s=0.0)
    proc = ModelResult("processes", "complete", run_id=2, workers=4, tasks=8, wall_s=4.38,
                       counts={"finished": 8}, busy_cores=1.9, startup_s=0.05)
    _finished(specs, [thr, proc])
    assert thr.overhead_per_task_s is None and thr.speedup is None and not thr.winner
    assert proc.speedup is None and proc.speedup_basis is None and not proc.winner
    assert "partial run" in thr.reading and "7 cancelled" in thr.reading
    assert "no gain over the baseline" not in proc.reading
    assert "nothing completed to compare it with" in proc.reading


def test_a_partial_baseline_is_no_basis_and_two_complete_runs_still_rank() -> None:
    specs = plan(CompareRequest("sleep", "sequential,threads,asyncio", 8, "100ms", 8))
    seq = ModelResult("sequential", "incomplete", run_id=1, workers=1, tasks=8, wall_s=0.3,
                      counts={"finished": 2, "timed_out": 6}, busy_cores=0.0, startup_s=0.0)
    thr = ModelResult("threads", "complete", run_id=2, workers=8, tasks=8, wall_s=0.2,
                      counts={"finished": 8}, busy_cores=0.0, startup_s=0.0)
    aio = ModelResult("asyncio", "complete", run_id=3, workers=8, tasks=8, wall_s=0.1,
                      counts={"finished": 8}, busy_cores=0.0, startup_s=0.0)
    _finished(specs, [seq, thr, aio])
    assert seq.speedup is None and seq.overhead_per_task_s is None
    assert thr.speedup_basis == aio.speedup_basis == "slowest (threads)"
    assert aio.speedup == pytest.approx(2.0) and aio.winner and not thr.winner


def test_headless_timed_out_runs_report_no_overhead(tmp_path) -> None:
    """Issue 16.3's command: every task times out, and the overheads were -98.4 and -33.1 ms."""
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "compare", "-w", "sleep", "--models",
         "sequential,threads", "-n", "6", "-k", "3", "-s", "300ms", "-t", "200ms",
         "--settle", "0.05", "--json", "-"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["winner"] is None
    for e in doc["results"]:
        assert e["status"] == "incomplete" and e["counts"] == {"timed_out": 6}
        assert e["overhead_per_task_s"] is None and e["speedup"] is None and not e["winner"]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("compare ·")]
    table = r.stderr.splitlines()
    at = table.index(lines[0])
    head = re.split(r"\s{2,}", table[at + 1].strip())
    for line in table[at + 2: at + 4]:
        cells = re.split(r"\s{2,}", line.strip())
        assert cells[head.index("overhead/task")] == "n/a", line


def test_startup_is_reported_and_kept_out_of_the_overhead(session) -> None:
    """Issue 17.3: a processes run pays for starting its pool; that goes to ``startup_s``
    (from the run's ``workers_ready_ns``), the speed-up is given with and without it, and the
    overhead per task no longer includes it."""
    res = compare(session, CompareRequest("cpu", "sequential,processes", 2, "200ms", 2),
                  settle_s=0.05)
    seq, proc = res.results
    assert seq.complete and proc.complete, res.results
    assert seq.startup_s == 0.0  # its one worker is an engine thread
    assert proc.workers_noun == "worker processes"
    assert proc.startup_s is not None and 0.0 < proc.startup_s < proc.wall_s
    info = session.store.run(proc.run_id).info
    assert proc.startup_s == pytest.approx(
        (info["workers_ready_ns"] - proc.start_ns) / 1e9)
    assert proc.overhead_per_task_s == pytest.approx(
        (proc.wall_s - proc.startup_s - proc.ideal_s) / 2)
    assert proc.speedup_without_startup == pytest.approx(
        seq.wall_s / (proc.wall_s - proc.startup_s))
    assert proc.speedup_without_startup > proc.speedup
    doc = json.loads(json.dumps(res.as_dict()))
    assert doc["results"][1]["startup_s"] == pytest.approx(proc.startup_s)
    assert "start-up s" in format_table(res).splitlines()[1]


def test_the_reading_names_startup_on_its_own() -> None:
    f = replace(BASE, model="processes", speedup=1.45, speedup_without_startup=1.82,
                cores_busy=1.9, wall_s=1.5, startup_s=0.29, workers=2,
                workers_noun="worker processes", shares_gil=False)
    text = reading(f)
    assert "of its 1.50 s, 0.29 s went to starting 2 worker processes (1.82x without start-up)" \
        in text
    # a few milliseconds of a long run are not worth a clause
    assert "starting" not in reading(replace(f, startup_s=0.005))


def test_a_pool_says_when_its_workers_are_ready() -> None:
    got: list[int] = []
    ready = threading.Event()
    from engine.clock import now_ns

    t0 = now_ns()
    pool = ProcPool(2, lambda batch: None, name="t-ready",
                    on_ready=lambda t: (got.append(t), ready.set()))
    try:
        assert ready.wait(30), "the workers never said they were up"
        assert pool.ready_ns == got[0] and t0 < got[0] <= now_ns()
        assert pool.submit(sum, [1, 2]).result(30) == 3
    finally:
        pool.shutdown()
    assert len(got) == 1


def test_a_custom_run_is_labelled_by_its_call(tmp_path) -> None:
    """Issue 16.8: "custom · 8 × 1.0 ms" for tasks that ran over 6 s."""
    f = tmp_path / "work.py"
    f.write_text("def work(n, name='x'):\n    return n\n")
    spec = make_spec("threads", "custom", 8, "1ms", 2,
                     params={"function": f"{f}:work", "args": [30, "a"]})
    assert spec.label == 'work.py:work(30, "a") · 8 tasks'
    assert workload_label("cpu", 8, 0.5, {}) == "cpu · 8 tasks × 500 ms"
    assert workload_label("sleep", 1, 2.0, {}) == "sleep · 1 task × 2 s"
    assert workload_label("sleep", 20, 0.3, {}, compact=True) == "sleep · 20 × 300 ms"
