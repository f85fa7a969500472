"""Compare mode: real runs, one model after another, figures and readings that follow from them.

Timing assertions are loose on purpose: the machine has 2 cores and other suites may be running.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from engine.compare import (
    CompareProgress,
    CompareRequest,
    Figures,
    compare,
    p99,
    plan,
    reading,
    start_compare,
)
from engine.compare.measure import _from_samples
from engine.samples import Sample, WorkerSample
from engine.spec import SpecError, cpu_count


def run_compare(session, workload, models, *args, on_progress=None, settle_s=0.5, **kw):
    """compare() with the request's fields given inline, as the tests read best."""
    return compare(session, CompareRequest(workload, models, *args, **kw), on_progress,
                   settle_s=settle_s)


def _bands_do_not_overlap(res) -> None:
    ran = [r for r in res.results if r.start_ns is not None]
    for a, b in zip(ran, ran[1:], strict=False):
        assert a.end_ns <= b.start_ns, f"{a.model} and {b.model} overlapped"


def _skip_unless_it_had_two_cores(res, r) -> None:
    """Skip, with the figures, when the comparison's own measurement shows that other load left
    run ``r`` no second core: the machine was saturated during its window (busy cores within
    0.3 of all of them) and the run got no more than 1.3 cores of it, the rest going to other
    processes. A model that stops running in parallel on an idle machine is not excused: it
    leaves a core idle (busy about 1.0 of 2), so the machine is not saturated and every
    assertion still runs."""
    if r.machine_cores is None or r.busy_cores is None:
        return  # no measurement: the assertions below say so
    others = r.machine_cores - r.busy_cores
    if r.machine_cores >= res.cores - 0.3 and r.busy_cores <= 1.3:
        before = "n/a" if r.baseline_cores is None else f"{r.baseline_cores:.2f}"
        pytest.skip(
            f"machine saturated by other load during {r.model}: {r.machine_cores:.2f} of "
            f"{res.cores} cores busy, {r.busy_cores:.2f} of them its own, {others:.2f} other "
            f"({before} busy just before); walls "
            + ", ".join(f"{x.model} {x.wall_s:.2f}s" for x in res.results))


@pytest.mark.skipif(cpu_count() < 2, reason="needs two cores for processes to win")
def test_cpu_compare_ranks_processes_fastest(session) -> None:
    seen: list[CompareProgress] = []
    res = run_compare(session, "cpu", "sequential,threads,processes", tasks=4, size="300ms",
                      on_progress=seen.append, settle_s=0.2)
    assert [r.model for r in res.results] == ["sequential", "threads", "processes"]
    assert all(r.complete for r in res.results), [r.status for r in res.results]
    seq, thr, proc = res.results
    # Two-core physics needs two cores: other suites may saturate these two while it runs.
    _skip_unless_it_had_two_cores(res, proc)
    assert res.winner == "processes" and proc.winner and not thr.winner and not seq.winner
    # the ranking only: other suites may share these 2 cores, so no ratio is promised
    assert proc.wall_s < seq.wall_s and proc.wall_s < thr.wall_s
    assert seq.speedup == pytest.approx(1.0) and seq.speedup_basis == "sequential"
    assert proc.speedup > 1.0
    # threads under the GIL keep about one core busy; processes use more than one
    assert thr.busy_cores is not None and thr.busy_cores < 1.4
    assert proc.busy_cores is not None and proc.busy_cores > thr.busy_cores
    # ... clearly more: the ranking alone is a coin flip for processes that run one at a time
    # (all three then take about 4 x 300 ms), and the machine had a second core to give them
    assert proc.busy_cores > 1.2, (
        f"processes kept {proc.busy_cores:.2f} cores busy while {res.cores - proc.machine_cores:.2f} "
        f"of {res.cores} sat idle: they did not run in parallel")
    # every figure is filled from a real measurement
    for r in res.results:
        assert r.machine_cores is not None and r.machine_cores > 0.3
        assert r.peak_rss_bytes and r.peak_rss_bytes > 10 * 2**20
        assert r.tasks_per_s == pytest.approx(4 / r.wall_s)
        assert r.overhead_per_task_s == pytest.approx((r.wall_s - r.startup_s - r.ideal_s) / 4)
        assert r.gui_lag_p99_ms is None  # headless: no GUI loop
        assert r.reading.startswith(f"{r.model}: ")
        assert r.run_id is not None and session.store.run(r.run_id).done
    # processes had its own worker processes, so its peak memory is larger
    assert proc.peak_rss_bytes > seq.peak_rss_bytes
    assert any("GUI-loop lag: n/a" in n for n in res.notes)
    _bands_do_not_overlap(res)
    phases = [(p.phase, p.model) for p in seen if p.phase != "running"]
    assert phases == [
        ("settling", "sequential"), ("model_done", "sequential"),
        ("settling", "threads"), ("model_done", "threads"),
        ("settling", "processes"), ("model_done", "processes"),
        ("done", None),
    ]
    assert any(p.phase == "running" and p.tasks_done == 4 for p in seen)
    doc = json.loads(json.dumps(res.as_dict()))
    assert [e["model"] for e in doc["results"]] == ["sequential", "threads", "processes"]


def test_sleep_compare_concurrent_models_far_faster(session) -> None:
    res = run_compare(session, "sleep", ["sequential", "threads", "asyncio"], tasks=8,
                      size="100ms", workers=8, settle_s=0.1)
    seq, thr, aio = res.results
    assert all(r.complete for r in res.results)
    assert seq.wall_s > 0.75
    assert thr.speedup > 3 and aio.speedup > 3
    assert res.winner in ("threads", "asyncio")
    # waiting needs no CPU: the concurrent models' readings say so
    for r in (thr, aio):
        assert r.busy_cores < 0.5
        assert "overlapped their waiting" in r.reading
    _bands_do_not_overlap(res)


def test_no_sequential_means_speedup_against_the_slowest(session) -> None:
    res = run_compare(session, "sleep", "threads,asyncio", tasks=4, size="50ms", workers=1,
                      settle_s=0)
    slowest = max(res.results, key=lambda r: r.wall_s)
    assert slowest.speedup == pytest.approx(1.0)
    assert all(r.speedup_basis == f"slowest ({slowest.model})" for r in res.results)
    assert any("slowest complete run" in n for n in res.notes)


def test_cancel_stops_the_running_model_and_skips_the_rest(session) -> None:
    started = threading.Event()

    def on_progress(p: CompareProgress) -> None:
        if p.phase == "running":
            started.set()

    job = start_compare(session, CompareRequest("sleep", "sequential,threads", tasks=50,
                                                size="200ms"), on_progress, settle_s=0)
    assert started.wait(10)
    assert job.progress is not None and job.progress.model == "sequential"
    t = time.monotonic()
    job.cancel()
    assert job.wait(5), "a cancelled compare must end promptly"
    assert time.monotonic() - t < 3
    assert job.error is None and job.result is not None
    res = job.result
    assert res.cancelled and res.winner is None
    assert [r.status for r in res.results] == ["cancelled", "skipped"]
    assert res.results[0].counts.get("cancelled", 0) > 0
    assert job.progress.phase == "cancelled"


def test_everything_is_validated_before_anything_runs(session) -> None:
    with pytest.raises(SpecError) as e:
        plan(CompareRequest("cpu", "sequential,nosuchmodel"))
    assert e.value.field == "models"
    with pytest.raises(SpecError) as e:
        plan(CompareRequest("cpu", "threads,threads"))
    assert e.value.field == "models"
    with pytest.raises(SpecError) as e:
        plan(CompareRequest("crash", "processes,threads"))  # crash needs processes
    assert e.value.field == "workload"
    with pytest.raises(SpecError) as e:
        start_compare(session, CompareRequest("cpu", "sequential", tasks=0))
    assert e.value.field == "tasks"
    assert session.store.runs() == []  # nothing started
    # workers apply to every model but sequential (which always has one)
    specs = plan(CompareRequest("sleep", "sequential,threads", workers=3))
    assert [s.effective_workers() for s in specs] == [1, 3]


# -- readings: derived from the figures ------------------------------------------------------------
BASE = Figures(model="threads", complete=True, tasks=4, tasks_ok=4, wall_s=1.0, speedup=1.0,
               is_baseline=False, cores_busy=1.0, workers=6, cores=2, cpu_share=1.0, size_s=0.3,
               overhead_per_task_s=0.01, gui_lag_p99_ms=None, shares_gil=True)


def test_reading_gil_only_when_figures_show_one_core_and_no_speedup() -> None:
    assert reading(BASE) == ("threads: 1.00x, 1.00 cores busy: the GIL lets one thread run Python "
                             "at a time")
    # the same model with parallel figures (e.g. NumPy releasing the GIL) reads differently
    fast = reading(replace(BASE, speedup=1.9, cores_busy=1.9))
    assert "GIL" not in fast and "in parallel on 1.90 cores" in fast and "2-core limit" in fast
    # ~1x but two cores busy: not the GIL
    busy = reading(replace(BASE, cores_busy=1.9))
    assert "GIL" not in busy and "no faster" in busy
    # waiting work that overlapped: no CPU needed
    waits = reading(replace(BASE, speedup=4.0, cores_busy=0.05, cpu_share=0.0))
    assert "overlapped their waiting" in waits
    # cpu work faster on about one core cannot be parallelism: the sentence says the baseline was slow
    odd = reading(replace(BASE, speedup=1.6, cores_busy=0.8))
    assert "baseline ran slow" in odd and "parallel" not in odd


def test_reading_depends_on_numbers_not_model_names() -> None:
    a = reading(replace(BASE, model="x", shares_gil=False, one_thread=False))
    b = reading(replace(BASE, model="y", shares_gil=False, one_thread=False))
    assert a.split(": ", 1)[1] == b.split(": ", 1)[1]
    slow = reading(replace(BASE, speedup=0.5, overhead_per_task_s=0.2))
    assert "slower than the baseline" in slow and "200.0 ms lost per task" in slow
    loop = reading(replace(BASE, shares_gil=False, one_thread=True))
    assert "one thread runs every task" in loop
    blocked = reading(replace(BASE, cpu_share=0.0, cores_busy=0.0, shares_gil=False,
                              one_thread=True))
    assert "did not overlap" in blocked
    part = reading(replace(BASE, complete=False, tasks_ok=2))
    assert "did not complete (2 of 4" in part
    base = reading(replace(BASE, model="sequential", is_baseline=True, workers=1))
    assert "baseline; one core computed" in base
    idle = reading(replace(BASE, model="sequential", is_baseline=True, workers=1,
                           cores_busy=0.0, cpu_share=0.0))
    assert "CPU sat idle" in idle
    noisy = reading(replace(BASE, baseline_cores=1.2))
    assert "other load kept 1.20 cores busy" in noisy


def test_figures_from_sampler_samples() -> None:
    def s(t: int, cores: tuple[float, ...], rss: int, lag: dict[str, float]) -> Sample:
        return Sample(t_ns=t, interval_s=0.1, cores=cores, cores_user=cores,
                      cores_system=(0.0,) * len(cores), total=sum(cores) / len(cores),
                      self_cpu=0.0, self_rss=rss,
                      workers={7: WorkerSample(7, 50.0, 5 * 2**20, 0)}, lag_ms=lag)

    got = _from_samples([s(1, (100.0, 0.0), 10 * 2**20, {"gui": 3.0}),
                         s(2, (100.0, 100.0), 30 * 2**20, {"gui": 40.0, "engine": 1.0})])
    assert got["machine_cores"] == pytest.approx(1.5)
    assert got["peak_rss"] == 35 * 2**20
    assert got["gui_lag"] == 40.0 and got["engine_lag"] == 1.0
    assert "gui_lag" not in _from_samples([s(1, (0.0,), 1, {})])
    # self_rss that is not this process alone (the sampler adds own_pids): no peak from it
    assert "peak_rss" not in _from_samples([s(1, (100.0,), 30 * 2**20, {})], rss=False)
    assert p99([]) is None and p99(list(range(1, 101))) == 99


def test_cli_compare_json_and_bad_input(tmp_path) -> None:
    out = tmp_path / "c.csv"
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "compare", "-w", "sleep", "--models",
         "sequential,asyncio", "-n", "4", "-s", "50ms", "--settle", "0.05", "--json", "-",
         "--csv", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [e["model"] for e in doc["results"]] == ["sequential", "asyncio"]
    for e in doc["results"]:
        for key in ("wall_s", "startup_s", "speedup", "speedup_without_startup", "busy_cores",
                    "machine_cores", "peak_rss_bytes", "gui_lag_p99_ms", "tasks_per_s",
                    "overhead_per_task_s", "winner", "reading"):
            assert key in e
    assert doc["winner"] == "asyncio"
    assert "winner: asyncio" in r.stderr  # the table goes to stderr when JSON takes stdout
    header = out.read_text().splitlines()[0].split(",")
    assert header[:2] == ["model", "status"]
    for key in ("wall_s", "startup_s", "speedup", "speedup_without_startup", "busy_cores",
                "machine_cores", "overhead_ms"):
        assert key in header
    for bad, needle in [
        (["--models", "sequential,nope", "-w", "cpu"], "models:"),
        (["--models", "sequential", "-w", "cpu", "-n", "x"], "tasks:"),
        (["--models", "sequential", "-w", "cpu", "--json", str(tmp_path / "no/x.json")], "--json"),
        (["--models", "sequential"], "--workload"),
        (["--models", "threads", "--function", str(tmp_path / "none.py:f")], "no such file"),
    ]:
        r = subprocess.run([sys.executable, "-m", "engine.cli", "compare", *bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (bad, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_each_model_is_complete_when_it_finishes(session) -> None:
    """A view gets each model's sampler figures at its 'model_done', not only at the end."""
    done = []  # what the callback saw at that moment (results are mutable: copy the fields)

    def seen(p) -> None:
        if p.phase == "model_done":
            r = p.result
            done.append((r.model, r.machine_source, r.engine_lag_p99_ms, r.peak_rss_bytes))

    run_compare(session, "sleep", ["sequential", "threads"], 3, "100ms", settle_s=0.1,
                on_progress=seen)
    assert [d[0] for d in done] == ["sequential", "threads"]
    for _model, source, engine_lag, rss in done:
        assert source == "sampler" and engine_lag is not None and rss, done


def test_peak_memory_is_this_process_and_its_workers_not_the_window(leak_check) -> None:
    """The engine process's sampler counts the window's process into ``self_rss`` (own_pids:
    TaskScope's own memory, for the legend). A model's peak memory is this process plus that
    model's workers: the window's memory, the same for every model, must not be in it."""
    import psutil

    from engine import Session

    fat = subprocess.Popen(  # stands in for the window: a process with 300 MB resident
        [sys.executable, "-c", "import sys, time\nb = b'x' * (300 * 2**20)\n"
         "print('ok', flush=True)\ntime.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert fat.stdout is not None and fat.stdout.readline() == "ok\n"
        fat_rss = psutil.Process(fat.pid).memory_info().rss
        session = Session(warm=False, sample_hz=10.0, own_pids=lambda: (fat.pid,))
        try:
            res = run_compare(session, "sleep", ["sequential", "threads"], 3, "150ms",
                              settle_s=0.1)
            samples, _ = session.store.read_samples(0)
        finally:
            session.shutdown()
    finally:
        fat.kill()
        fat.wait(5)
        if fat.stdout is not None:
            fat.stdout.close()
    # The premise: the samples do count the stand-in (as the CPU/RSS legend should).
    assert fat_rss > 250 * 2**20 and max(x.self_rss for x in samples) > fat_rss
    mine = psutil.Process().memory_info().rss
    for r in res.results:
        assert r.complete and r.peak_rss_bytes, r
        # No worker processes here: the peak is about this process's own memory.
        assert r.peak_rss_bytes < mine + fat_rss // 2, (r.model, r.peak_rss_bytes, mine, fat_rss)
