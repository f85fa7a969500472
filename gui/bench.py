"""``taskscope bench``: every figure of issue 7, measured against its target, in one run.

The Qt-free figures (engine overhead against raw Python, event pipeline, cancel latency,
memory) come from :mod:`engine.bench`; this module adds the ones that need the window:

* GUI-loop lag with a real :class:`~gui.main_window.MainWindow` open (offscreen unless
  ``QT_QPA_PLATFORM`` says otherwise) on a qasync loop started the way :mod:`gui.app` starts
  it, while (a) worker processes saturate every core and 10,000 coroutines run on the engine
  loop, (b) 4 CPU-bound threads run in the engine process (beside the GIL contention they cause),
  (c) worker processes flood the event pipeline and the frame tick drains it;
* timeline paint time: the real timeline GraphicsObject in a real 1200x400 view;
* idle cost of the open window (the window's process, the engine process and their helpers),
  and the sampler thread's own cost;
* start-up, in fresh processes: window shown, first process result, no Qt in workers.

Order matters: everything that starts processes from this process without the engine's
forkserver (the raw ``ProcessPoolExecutor`` baseline forks) runs *before* Qt is imported.
Nothing forks after Qt starts.

Importing this module is Qt-free (the start-up child imports :func:`startup_probe` lazily).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.bench.cancel import cancel_latency_figures
from engine.bench.figures import Figure, format_table
from engine.bench.memory import memory_figure
from engine.bench.overhead import overhead_figures
from engine.bench.pipeline import pipeline_figure, pipeline_rate
from engine.bench.sampler_cost import sampler_cost_figure
from engine.clock import now_ns

#: One frame at 60 Hz: the budget for GUI-loop lag and for painting the timeline.
FRAME_BUDGET_MS = 16.0
#: Child-process output lines of ``--bench-startup`` start with this.
STARTUP_TAG = "TASKSCOPE_BENCH"

Say = Callable[[str], None]


# -- small helpers ----------------------------------------------------------------------------
def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and PySide6 versions (PySide6 read from its metadata, so
    this does not import Qt)."""
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        pyside = version("PySide6-Essentials")
    except Exception:
        try:
            from importlib.metadata import version

            pyside = version("PySide6")
        except Exception:
            pyside = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "pyside6": pyside,
        "qt_platform": os.environ.get("QT_QPA_PLATFORM", ""),
    }


def _pct_of_core(cpu_s: float, wall_s: float) -> float:
    return 100.0 * cpu_s / wall_s if wall_s > 0 else 0.0


def _lag_figure(key: str, label: str, stats: dict[str, float] | None, n: int,
                target: float | None, note: str, timer: str = "a 20 ms timer") -> Figure:
    if not stats:
        return Figure(key, label, None, "ms", target, note="no lag probe on the GUI loop")
    return Figure(key, label, round(stats["p99"], 1), "ms", target,
                  note=f"p50 {stats['p50']:.1f} ms, max {stats['max']:.1f} ms over {n} "
                       f"firings of {timer}; {note}",
                  extra={"p50_ms": round(stats["p50"], 2), "p99_ms": round(stats["p99"], 2),
                         "max_ms": round(stats["max"], 2), "firings": n})


# -- 7. start-up, in fresh processes ----------------------------------------------------------
def _startup_once(timeout: float = 60.0) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    t0 = now_ns()
    p = subprocess.run([sys.executable, "-m", "gui", "--bench-startup"], env=env,
                       capture_output=True, text=True, timeout=timeout)
    vals: dict[str, Any] = {}
    for line in p.stdout.splitlines():
        if line.startswith(STARTUP_TAG):
            for item in line.split()[1:]:
                k, _, v = item.partition("=")
                vals[k] = v
    if p.returncode != 0 or "shown_ns" not in vals:
        raise RuntimeError(f"start-up child exited {p.returncode}: {p.stderr.strip()[-400:]}")
    out: dict[str, Any] = {"shown_ms": (int(vals["shown_ns"]) - t0) / 1e6,
                           "qt_workers": int(vals.get("qt_workers", -1)),
                           "workers": int(vals.get("workers", 0)),
                           "qt_error": vals.get("qt_error", "")}
    if "result_ns" in vals:
        out["result_ms"] = (int(vals["result_ns"]) - int(vals["request_ns"])) / 1e6
        out["result_from_launch_ms"] = (int(vals["result_ns"]) - t0) / 1e6
    return out


def startup_figures(quick: bool) -> list[Figure]:
    """Window shown (from launching ``python -m gui``), first process result (from the
    request, on the cold pool of a fresh window), and whether any worker imported Qt."""
    reps = 1 if quick else 3
    runs = [_startup_once() for _ in range(reps)]
    shown = statistics.median(r["shown_ms"] for r in runs)
    res = [r["result_ms"] for r in runs if "result_ms" in r]
    launch = [r["result_from_launch_ms"] for r in runs if "result_from_launch_ms" in r]
    qt = max(r["qt_workers"] for r in runs)
    workers = sum(r["workers"] for r in runs)
    errs = {r["qt_error"] for r in runs if r["qt_error"]}
    of = f"median of {reps} fresh process{'es' if reps > 1 else ''}"
    return [
        Figure("startup.window_shown", "start-up: launch to window shown (first paint)",
               round(shown), "ms", None,
               note=f"{of}; `python -m gui`, interpreter start included",
               extra={"runs_ms": [round(r["shown_ms"], 1) for r in runs]}),
        Figure("startup.first_process_result",
               "start-up: first process task result (cold pool, fresh window)",
               round(statistics.median(res)) if res else None, "ms", None,
               note=f"{of}; from the request right after the window showed; "
                    f"{statistics.median(launch):.0f} ms from launch" if launch
                    else "no result came back",
               extra={"runs_ms": [round(x, 1) for x in res]}),
        Figure("startup.workers_import_qt", "start-up: worker processes that imported Qt",
               None if qt < 0 else qt, "workers", 0,
               note=f"checked {workers} workers (PySide6/shiboken6/pyqtgraph/qasync in "
                    f"sys.modules)" + (f"; {'; '.join(sorted(errs))}" if errs else "")),
    ]


def startup_probe(win: Any) -> None:
    """In the ``--bench-startup`` child (see :mod:`gui.app`): print when the window is first
    painted, then start one process run on the window's cold pool, print when its first result
    is back and whether its workers imported Qt, and close the window."""
    from PySide6.QtCore import QEvent, QObject

    from engine import State, make_spec

    session = win.session
    loop = win.loop

    def say(**kv: Any) -> None:
        print(STARTUP_TAG, " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)

    def after_paint() -> None:
        ncpu = os.cpu_count() or 1
        spec = make_spec("processes", "custom", ncpu, 0, ncpu,
                         params={"function": "engine.bench.qt_check:worker_qt_check"})
        req = now_ns()
        ids = win.start_runs([spec])
        if not ids:
            loop.call_soon(win.close)
            return
        run = session.run(ids[0])
        rid = ids[0]

        def watch() -> None:
            store = session.store  # the window's mirror, filled by its frame tick
            tids = list(run.task_ids)
            first = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if first is None and any(
                        (r := store.task(t)) is not None and r.end_ns is not None
                        for t in tids):
                    first = now_ns()
                rec = store.run(rid)
                if rec is not None and rec.done:
                    break
                time.sleep(0.0005)
            recs = [store.task(t) for t in tids]
            qt = [r for r in recs if r is not None and r.state is State.FAILED and r.error
                  and "Qt imported" in str(r.error.get("message", ""))]
            bad = [r for r in recs if r is None or r.state is not State.FINISHED]
            kv: dict[str, Any] = {"request_ns": req, "workers": len(recs),
                                  "qt_workers": len(qt) if len(bad) == len(qt) else -1}
            if first is not None:
                kv["result_ns"] = first
            if qt:
                kv["qt_error"] = str(qt[0].error.get("message", "")).replace(" ", "_")
            say(**kv)
            loop.call_soon_threadsafe(win.close)

        threading.Thread(target=watch, name="bench-startup-watch", daemon=True).start()

    class FirstPaint(QObject):
        done = False

        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt API
            if not self.done and ev.type() == QEvent.Type.Paint:
                self.done = True
                say(shown_ns=now_ns())
                loop.call_soon(after_paint)
            return False

    filt = FirstPaint(win)
    win._bench_first_paint = filt  # keep it alive
    win.installEventFilter(filt)


# -- 2, 3, 6a: the open window ----------------------------------------------------------------
async def _wait_runs(win: Any, ids: list[int], timeout: float,
                     frames: list[float] | None = None) -> bool:
    """Wait (on the GUI loop) until the runs end; collect the window's frame times meanwhile."""
    deadline = time.monotonic() + timeout
    store = win.store
    seen = win._frames
    while time.monotonic() < deadline:
        if frames is not None:
            new = win._frames - seen
            seen = win._frames
            if new:
                frames.extend(list(win.frame_ms)[-min(new, len(win.frame_ms)):])
        if all((r := store.run(i)) is None or r.done for i in ids):
            return True
        await asyncio.sleep(0.05)
    return False


def _diag(win: Any, t0_ns: int, t1_ns: int, frames: list[float]) -> tuple[str, dict[str, Any]]:
    """Where lag came from: the window's own frame times, GIL contention in the engine process, the
    engine loop's lag (from the sampler's samples over the same span)."""
    samples, _ = win.store.read_samples(0)
    span = [s for s in samples if t0_ns < s.t_ns <= t1_ns]
    gil = [s.gil for s in span if s.gil is not None]
    eng = [s.lag_ms.get("engine") for s in span if s.lag_ms.get("engine") is not None]
    fr = sorted(frames)
    d: dict[str, Any] = {
        "frame_ms_max": round(fr[-1], 1) if fr else None,
        "frame_ms_p50": round(fr[len(fr) // 2], 1) if fr else None,
        "frames": len(fr),
        "gil_wait_mean_pct": round(100 * statistics.fmean(gil), 1) if gil else None,
        "gil_wait_max_pct": round(100 * max(gil), 1) if gil else None,
        "engine_loop_lag_max_ms": round(max(eng), 1) if eng else None,
    }
    text = (f"frames {d['frame_ms_p50']} ms median, {d['frame_ms_max']} ms max; GIL wait "
            f"{d['gil_wait_mean_pct']}% mean, {d['gil_wait_max_pct']}% worst sample; engine "
            f"loop lag max {d['engine_loop_lag_max_ms']} ms")
    return text, d


def _core_busy(win: Any, t0_ns: int, t1_ns: int) -> list[float]:
    from engine.samples import core_averages

    samples, _ = win.store.read_samples(0)
    return core_averages(samples, t0_ns, t1_ns)


def _gil_mean(win: Any, t0_ns: int, t1_ns: int) -> float | None:
    samples, _ = win.store.read_samples(0)
    vals = [s.gil for s in samples if t0_ns < s.t_ns <= t1_ns and s.gil is not None]
    return statistics.fmean(vals) if vals else None


def _probe_stats(win: Any, t0_ns: int, t1_ns: int) -> tuple[dict[str, float] | None, int]:
    """GUI-loop lag stats of the firings inside [t0_ns, t1_ns] (the window's "gui" probe)."""
    from engine.probes import lag_stats

    probe = getattr(win.session, "_lag_probe", None)  # measured in the window's process
    if probe is None:
        return None, 0
    vals = [ms for t, ms in list(probe.history) if t0_ns <= t <= t1_ns]
    return lag_stats(vals), len(vals)


def _app_procs() -> dict[int, Any]:
    """This (the window's) process and every process under it: the engine process, its
    forkserver and resource tracker, workers if any. The idle figure is all of TaskScope."""
    import psutil

    me = psutil.Process()
    procs = {me.pid: me}
    for c in me.children(recursive=True):
        procs[c.pid] = c
    return procs


def _cpu_s(p: Any) -> float | None:
    import psutil

    try:
        t = p.cpu_times()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return t.user + t.system


def _idle_timer(win: Any) -> str:
    """The GUI lag probe's timer while the window idles (it fires less often then)."""
    probe = getattr(win.session, "_lag_probe", None)
    ms = getattr(probe, "interval_s", 0.02) * 1e3
    return f"a {ms:.0f} ms timer (the probe's interval while the window idles)"


async def _idle(win: Any, secs: float) -> list[Figure]:
    import psutil

    proc = psutil.Process()
    engine_pid = getattr(win.session, "engine_pid", None)
    names = {t.native_id: t.name for t in threading.enumerate()}
    th0 = {t.id: t.user_time + t.system_time for t in proc.threads()}
    procs = _app_procs()
    c0 = {pid: _cpu_s(p) for pid, p in procs.items()}
    t0 = time.monotonic()
    frames0 = win._frames
    t0_ns = now_ns()
    await asyncio.sleep(secs)
    lag, nlag = _probe_stats(win, t0_ns, now_ns())
    wall = time.monotonic() - t0
    c1 = {pid: _cpu_s(p) for pid, p in procs.items()}
    th1 = {t.id: t.user_time + t.system_time for t in proc.threads()}
    frames = win._frames - frames0
    per_proc = {pid: _pct_of_core(c1[pid] - c0[pid], wall) for pid in procs
                if c0[pid] is not None and c1[pid] is not None}
    pct = sum(per_proc.values())
    gui_pct = per_proc.get(proc.pid, 0.0)
    engine_pct = per_proc.get(engine_pid, 0.0) if engine_pid else 0.0
    others = pct - gui_pct - engine_pct
    per: dict[str, float] = {}
    for tid, cpu in th1.items():
        name = names.get(tid, "other")
        if tid == threading.main_thread().native_id:
            name = "GUI thread"
        per[name] = per.get(name, 0.0) + _pct_of_core(cpu - th0.get(tid, 0.0), wall)
    top = sorted(per.items(), key=lambda kv: -kv[1])[:3]
    fm = sorted(win.frame_ms)
    base = _lag_figure(
        "gui.lag.idle", "GUI loop lag p99: window open, idle (the machine's own noise)", lag,
        nlag, None, "no target: the baseline the loaded figures below stand on (other "
                    "processes keeping the cores busy show up here first)",
        timer=_idle_timer(win))
    return [base, Figure(
        "idle.window", "idle window sampling at 10 Hz: all TaskScope processes (% of one core)",
        round(pct, 2), "%", 3.0,
        note=f"{wall:.1f} s idle, {frames} frames ({frames / wall:.0f}/s, median "
             f"{fm[len(fm) // 2] if fm else 0:.1f} ms); window process {gui_pct:.2f}% ("
             + ", ".join(f"{n} {v:.2f}%" for n, v in top)
             + f"), engine process {engine_pct:.2f}%, its helpers {others:.2f}%",
        extra={"seconds": round(wall, 2), "window_process_pct": round(gui_pct, 3),
               "engine_process_pct": round(engine_pct, 3), "helpers_pct": round(others, 3),
               "threads_pct": {k: round(v, 2) for k, v in per.items()}, "frames": frames})]


async def _saturated(win: Any, secs: float) -> list[Figure]:
    from engine import make_spec

    ncpu = os.cpu_count() or 1
    t0 = now_ns()
    ids = win.start_runs([make_spec("processes", "cpu", ncpu, secs, ncpu)])
    await asyncio.sleep(0.3)  # the workers are up and busy before the coroutines arrive
    ids += win.start_runs([make_spec("asyncio", "sleep", 10_000, max(0.5, secs - 1.0))])
    frames: list[float] = []
    ok = await _wait_runs(win, ids, secs + 30, frames)
    await asyncio.sleep(0.1)  # the frame that shows the last ends
    t1 = now_ns()
    stats, n = _probe_stats(win, t0, t1)
    dtext, dd = _diag(win, t0, t1, frames)
    busy = _core_busy(win, t0 + int(0.3e9), t1 - int(1.1e9))
    note = (f"{ncpu} CPU-bound worker processes + 10,000 sleeping coroutines on the engine "
            f"loop, all shown live; cores busy "
            f"{', '.join(f'{b:.0f}%' for b in busy) or 'n/a'}"
            + f"; {dtext}" + ("" if ok else "; the runs did not end in time"))
    fig = _lag_figure("gui.lag.saturated", "GUI loop lag p99: cores saturated + 10k coroutines",
                      stats, n, FRAME_BUDGET_MS, note)
    fig.extra.update(dd)
    return [fig]


async def _gil_threads(win: Any, secs: float) -> list[Figure]:
    from engine import make_spec

    t0 = now_ns()
    # 4 threads share one GIL: each task is a quarter of the phase, so all 4 run throughout.
    ids = win.start_runs([make_spec("threads", "cpu", 4, secs / 4, 4)])
    frames: list[float] = []
    ok = await _wait_runs(win, ids, secs * 3 + 30, frames)
    t1 = now_ns()
    stats, n = _probe_stats(win, t0, t1)
    gil = _gil_mean(win, t0, t1)
    dtext, dd = _diag(win, t0, t1, frames)
    figs = [_lag_figure(
        "gui.lag.gil_threads", "GUI loop lag p99: 4 CPU-bound threads (engine process)", stats, n,
        None, f"the GIL's physics, shown not hidden (no target); {(t1 - t0) / 1e9:.1f} s; "
              f"{dtext}" + ("" if ok else "; the run did not end in time"))]
    figs[0].extra.update(dd)
    figs.append(Figure(
        "gui.gil_contention", "GIL contention meanwhile (share of time the probe waited)",
        None if gil is None else round(gil * 100, 1), "%", None,
        note="mean of the sampler's GIL probe over the same run"))
    return figs


async def _pipeline(win: Any, secs: float) -> list[Figure]:
    from engine import make_spec

    store = win.store
    before = store.event_count
    dropped0 = win.dropped
    t0 = now_ns()
    ids = win.start_runs([make_spec("processes", "events", 2, secs, 2)])
    frames: list[float] = []
    ok = await _wait_runs(win, ids, secs + 30, frames)
    await asyncio.sleep(0.1)
    t1 = now_ns()
    dtext, dd = _diag(win, t0, t1, frames)
    if not ids:
        return [Figure("pipeline.window.events_per_s", "events/s into the store, window open",
                       None, "ev/s", 200_000, sense="min", note="the run did not start")]
    n = store.event_count - before
    rate, span = pipeline_rate(win.store, ids[0], n)
    stats, nf = _probe_stats(win, t0, t1)
    dropped = win.dropped - dropped0
    return [
        Figure("pipeline.window.events_per_s",
               "events/s from 2 worker processes into the store, window open",
               round(rate), "ev/s", 200_000, sense="min",
               note=f"{n:,} events in {span:.2f} s, drained by the 30 Hz frame tick"
                    + (f"; {dropped:,} dropped before the window read them" if dropped else "")
                    + ("" if ok else "; the run did not end in time")),
        _lag_figure("pipeline.window.gui_lag", "GUI loop lag p99 while the pipeline floods",
                    stats, nf, FRAME_BUDGET_MS, f"same run; {dtext}"),
    ]


async def _window_bench(win: Any, quick: bool, say: Say) -> list[Figure]:
    await asyncio.sleep(0.5 if quick else 2.0)  # settle: first frames and samples
    figs: list[Figure] = []
    say("idle window")
    figs += await _idle(win, 1.5 if quick else 5.0)
    say("GUI lag: cores saturated + 10k coroutines")
    figs += await _saturated(win, 2.0 if quick else 6.0)
    await asyncio.sleep(0.5)
    say("GUI lag: 4 CPU-bound threads")
    figs += await _gil_threads(win, 2.0 if quick else 5.0)
    await asyncio.sleep(0.5)
    say("event pipeline, window open")
    figs += await _pipeline(win, 1.0 if quick else 2.0)
    return figs


def window_figures(quick: bool, say: Say) -> list[Figure]:
    """Open the real window (session first, then Qt, then the qasync loop, as gui.app does),
    measure, close it; then time timeline paints."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .sampling import make_session

    session = make_session()  # the engine process starts (spawned, Qt-free) while Qt loads

    import qasync
    from PySide6.QtWidgets import QApplication

    from . import theme
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(["taskscope-bench"])
    assert isinstance(app, QApplication)
    app.setApplicationName("TaskScope")
    app.setQuitOnLastWindowClosed(False)
    theme.apply(app)
    figs: list[Figure] = []
    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        loop = runner.get_loop()
        win = MainWindow(session, loop)
        win.show()
        try:
            figs += runner.run(_window_bench(win, quick, say))
        finally:
            win.close()
            runner.run(win.wait_closed())
    report = win.shutdown_report or session.shutdown(timeout=2.0)
    if not report.clean:
        say(f"{len(report.stuck_tasks)} thread task(s) still running at shutdown")
    say("timeline paint")
    figs += paint_figures(quick)
    return figs


# -- 4. timeline paint --------------------------------------------------------------------------
#: (run id, model, workers, sub-lanes per worker): the lanes of the synthetic timeline.
_LANES: tuple[tuple[int, str, int, int], ...] = (
    (1, "processes", 2, 1),
    (2, "threads", 4, 1),
    (3, "asyncio", 1, 16),
    (4, "sequential", 1, 1),
)


def synthetic_timeline(n: int, span_s: float = 60.0, seed: int = 7) -> Any:
    """A :class:`~gui.timeline_data.TimelineData` of ``n`` bars over ``span_s`` seconds, on the
    lanes of four runs (2 processes, 4 threads, an asyncio loop with 16 coroutine slots,
    sequential). Bars are back to back on each lane with gaps, 3% failed or cancelled, the last
    one on each lane still running. Made with numpy and handed over with
    :meth:`~gui.timeline_data.TimelineData.load` (building 1M TaskRecords would take longer than the
    paint figures; the paint only reads the bars' arrays)."""
    import numpy as np

    from engine import State

    from .timeline_data import STATE_CODE, TimelineData, Worker

    rng = np.random.default_rng(seed)
    workers: list[Worker] = []
    lanes: list[tuple[int, int]] = []  # (worker index, sub-lane)
    for run_id, model, nw, subs in _LANES:
        for k in range(nw):
            kind = {"processes": "process", "asyncio": "loop"}.get(model, "thread")
            label = (f"run{run_id} process {4000 + k}" if kind == "process" else
                     f"run{run_id} asyncio loop (3{k:03d})" if kind == "loop" else
                     f"run{run_id}-{model}_{k} (2{run_id}{k:02d})")
            workers.append(Worker((run_id, 4000 + k, 2000 + run_id * 100 + k), run_id, label,
                                  kind))
            for s in range(subs):
                lanes.append((len(workers) - 1, s))
    nl = len(lanes)
    per = np.full(nl, n // nl)
    per[: n % nl] += 1
    worker = np.zeros(n, np.int32)
    sub = np.zeros(n, np.int32)
    start = np.zeros(n, np.float64)
    end = np.full(n, np.nan)
    state = np.zeros(n, np.int8)
    fin, fail, canc, run = (STATE_CODE[s] for s in (State.FINISHED, State.FAILED,
                                                     State.CANCELLED, State.RUNNING))
    i = 0
    for (w, s), m in zip(lanes, per, strict=True):
        m = int(m)
        if not m:
            continue
        slot = span_s / m
        st = np.arange(m) * slot + rng.uniform(0, 0.05, m) * slot
        du = slot * rng.uniform(0.3, 0.9, m)
        sl = slice(i, i + m)
        worker[sl] = w
        sub[sl] = s
        start[sl] = st
        end[sl] = st + du
        code = np.full(m, fin, np.int8)
        r = rng.random(m)
        code[r < 0.02] = fail
        code[(r >= 0.02) & (r < 0.03)] = canc
        code[-1] = run
        end[i + m - 1] = np.nan
        state[sl] = code
        i += m
    d = TimelineData(0)
    d.load(workers, worker, sub, start, end, state)
    return d


def _time_frames(view: Any, app: Any, ranges: list[tuple[float, float]],
                 rows: int) -> tuple[float, float, bool]:
    """Median ms of a full frame (set the range, render the whole plot to a pixmap) over
    ``ranges``, the median of the item's own paint, and whether level of detail was on."""
    vb = view.getPlotItem().getViewBox()
    frame: list[float] = []
    item: list[float] = []
    lod = False
    for x0, x1 in ranges:
        t = time.perf_counter()
        vb.setRange(xRange=(x0, x1), yRange=(0, rows), padding=0)
        view.item.refresh()
        view.item.last_paint_ms = -1.0
        pix = view.grab()
        frame.append((time.perf_counter() - t) * 1e3)
        if view.item.last_paint_ms < 0 or pix.isNull():
            raise RuntimeError("the timeline item was not painted by grab()")
        item.append(view.item.last_paint_ms)
        lod = lod or view.item.last_lod
        app.processEvents()
    return statistics.median(frame), statistics.median(item), lod


def paint_figures(quick: bool) -> list[Figure]:
    """Timeline frame time at 10k, 100k and 1M bars, all visible and panned (1200x400)."""
    from PySide6.QtWidgets import QApplication

    from .timeline import LOD_BARS, TimelineView

    app = QApplication.instance()
    assert app is not None
    span = 60.0
    frames = 5 if quick else 9
    figs: list[Figure] = []
    for n, tag in ((10_000, "10k"), (100_000, "100k"), (1_000_000, "1M")):
        d = synthetic_timeline(n, span)
        view = TimelineView(d, lambda: span, lambda _tid: "")
        view.follow = False
        view.resize(1200, 400)
        view.show()
        app.processEvents()
        try:
            _time_frames(view, app, [(0.0, span)], d.rows)  # warm-up frame
            # All visible: the whole run, nudged each frame (as 'follow now' moves it).
            allv = [(-0.01 * k, span + 0.01 * k) for k in range(frames)]
            fa, ia, la = _time_frames(view, app, allv, d.rows)
            # Panned: a tenth of the run, dragged 1% of the run per frame.
            pan = [(span * (0.3 + 0.01 * k), span * (0.4 + 0.01 * k)) for k in range(frames)]
            fp, ip, lp = _time_frames(view, app, pan, d.rows)
        finally:
            view.close()
            view.deleteLater()
            app.processEvents()
        target = FRAME_BUDGET_MS if n <= 100_000 else None
        for key, label, f, i, lod, vis in (
                ("all", "all visible", fa, ia, la, n),
                ("panned", "panned to 10% of the run", fp, ip, lp, n // 10)):
            figs.append(Figure(
                f"paint.{tag}.{key}", f"timeline frame, {tag} bars, {label} (1200x400)",
                round(f, 1), "ms", target,
                note=f"median of {frames} frames; the item's paint {i:.1f} ms; about "
                     f"{vis:,} bars in view, {d.rows} lanes; "
                     + (f"level of detail (> {LOD_BARS:,} visible bars)" if lod
                        else "every bar drawn")
                     + ("" if target else "; no target at 1M (issue 7 sets it at 100k)"),
                extra={"frame_ms": round(f, 2), "item_paint_ms": round(i, 2), "lod": lod}))
    return figs


# -- the command ----------------------------------------------------------------------------------
SECTIONS = ("overhead.", "gui.", "pipeline.", "paint.", "cancel.", "idle.", "startup.",
            "memory.")


def _ordered(figs: list[Figure]) -> list[Figure]:
    def rank(f: Figure) -> int:
        return next((i for i, p in enumerate(SECTIONS) if f.key.startswith(p)), len(SECTIONS))

    return sorted(figs, key=rank)  # stable: each section keeps its own order


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="taskscope bench",
        description="Measure engine overhead against raw Python, GUI responsiveness with the "
                    "window open (offscreen unless QT_QPA_PLATFORM says otherwise), event "
                    "pipeline, timeline paint, cancel latency, idle cost, start-up and memory; "
                    "print each figure against its target. Exits 0 even when a target is "
                    "missed (the table says NO); non-zero only on errors.")
    ap.add_argument("--quick", action="store_true", help="smaller runs (under 30 s)")
    ap.add_argument("--json", metavar="PATH|-", help="write every figure as JSON ('-': stdout)")
    return ap.parse_args(list(argv))


def run_bench(quick: bool, say: Say) -> tuple[list[Figure], list[str]]:
    """Every figure, in an order that never forks after Qt starts. Returns (figures, errors)."""
    figs: list[Figure] = []
    errors: list[str] = []
    steps: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("engine overhead per task", lambda: overhead_figures(quick)),
        ("event pipeline (headless)", lambda: [pipeline_figure(quick)]),
        ("cancel latency", lambda: cancel_latency_figures(quick)),
        ("memory", lambda: [memory_figure()]),
        ("start-up (fresh processes)", lambda: startup_figures(quick)),
        ("sampler cost", lambda: [sampler_cost_figure(quick)]),
        ("window", lambda: window_figures(quick, say)),  # imports Qt: last
    ]
    for name, step in steps:
        say(name)
        try:
            figs += step()
        except Exception as e:  # report it, keep measuring the rest
            errors.append(f"{name}: {type(e).__name__}: {e}")
    return _ordered(figs), errors


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out: Any = None
    if args.json and args.json != "-":
        try:
            out = open(args.json, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as e:
            print(f"taskscope: error: --json: cannot write {args.json}: {e.strerror}",
                  file=sys.stderr)
            return 2
    table_to = sys.stderr if args.json == "-" else sys.stdout
    t0 = time.monotonic()
    started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    load0 = _loadavg()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:5.1f} s] {msg}", file=sys.stderr, flush=True)

    figs, errors = run_bench(args.quick, say)
    elapsed = time.monotonic() - t0
    load1 = _loadavg()
    info = machine_info()
    head = (f"taskscope bench{' --quick' if args.quick else ''}: {info['cpu']}, "
            f"{info['cores']} cores, {info['ram_gib']} GiB, Python {info['python']}, "
            f"PySide6 {info['pyside6']}, Qt platform {info['qt_platform'] or 'default'}; "
            f"{started}; {elapsed:.0f} s; load average {load0} before, {load1} after")
    print(head, file=table_to)
    print(format_table(figs), file=table_to)
    missed = [f.key for f in figs if f.ok is False]
    print(f"{len(figs)} figures, {sum(f.ok is True for f in figs)} targets met, "
          f"{len(missed)} missed" + (f": {', '.join(missed)}" if missed else ""), file=table_to)
    for e in errors:
        print(f"taskscope bench: error: {e}", file=sys.stderr)
    if args.json:
        doc = {"command": "taskscope bench" + (" --quick" if args.quick else ""),
               "quick": args.quick, "started": started, "elapsed_s": round(elapsed, 1),
               "machine": info, "loadavg_before": load0, "loadavg_after": load1,
               "figures": [f.as_dict() for f in figs], "errors": errors}
        text = json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default)
        if out is None:
            print(text)
        else:
            with out:
                out.write(text + "\n")
    return 1 if errors else 0


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
