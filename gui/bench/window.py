"""GUI-loop lag with the real window open, while the engine runs heavy work behind it.

A real :class:`~gui.main_window.MainWindow` (offscreen unless ``QT_QPA_PLATFORM`` says
otherwise) on a qasync loop started the way :mod:`gui.app` starts it, while (a) worker processes
saturate every core and 10,000 coroutines run on the engine loop, (b) 4 CPU-bound threads run
in the engine process (beside the GIL contention they cause), (c) worker processes flood the
event pipeline and the frame tick drains it. Before those, the idle window's cost
(:mod:`~gui.bench.idle`); after the window closes, the timeline paints
(:mod:`~gui.bench.paint`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from engine import make_spec
from engine.bench.figures import Figure
from engine.bench.pipeline import TARGET_EVENTS_PER_S, pipeline_rate
from engine.clock import now_ns
from engine.samples import core_averages

from ..app import paint_on_gui_thread
from ..sampling import make_session
from .common import FRAME_BUDGET_MS, Say, lag_figure, probe_stats
from .idle import idle_figures
from .paint import paint_figures


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
    samples, _ = win.store.read_samples(0)
    return core_averages(samples, t0_ns, t1_ns)


def _gil_mean(win: Any, t0_ns: int, t1_ns: int) -> float | None:
    samples, _ = win.store.read_samples(0)
    vals = [s.gil for s in samples if t0_ns < s.t_ns <= t1_ns and s.gil is not None]
    return statistics.fmean(vals) if vals else None


async def _saturated(win: Any, secs: float) -> list[Figure]:
    ncpu = os.cpu_count() or 1
    t0 = now_ns()
    ids = win.start_runs([make_spec("processes", "cpu", ncpu, secs, ncpu)])
    await asyncio.sleep(0.3)  # the workers are up and busy before the coroutines arrive
    ids += win.start_runs([make_spec("asyncio", "sleep", 10_000, max(0.5, secs - 1.0))])
    frames: list[float] = []
    ok = await _wait_runs(win, ids, secs + 30, frames)
    await asyncio.sleep(0.1)  # the frame that shows the last ends
    t1 = now_ns()
    stats, n = probe_stats(win, t0, t1)
    dtext, dd = _diag(win, t0, t1, frames)
    busy = _core_busy(win, t0 + int(0.3e9), t1 - int(1.1e9))
    note = (f"{ncpu} CPU-bound worker processes + 10,000 sleeping coroutines on the engine "
            f"loop, all shown live; cores busy "
            f"{', '.join(f'{b:.0f}%' for b in busy) or 'n/a'}"
            + f"; {dtext}" + ("" if ok else "; the runs did not end in time"))
    fig = lag_figure("gui.lag.saturated", "GUI loop lag p99: cores saturated + 10k coroutines",
                      stats, n, FRAME_BUDGET_MS, note)
    fig.extra.update(dd)
    return [fig]


async def _gil_threads(win: Any, secs: float) -> list[Figure]:
    t0 = now_ns()
    # 4 threads share one GIL: each task is a quarter of the phase, so all 4 run throughout.
    ids = win.start_runs([make_spec("threads", "cpu", 4, secs / 4, 4)])
    frames: list[float] = []
    ok = await _wait_runs(win, ids, secs * 3 + 30, frames)
    t1 = now_ns()
    stats, n = probe_stats(win, t0, t1)
    gil = _gil_mean(win, t0, t1)
    dtext, dd = _diag(win, t0, t1, frames)
    figs = [lag_figure(
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
                       None, "ev/s", TARGET_EVENTS_PER_S, sense="min",
                       note="the run did not start")]
    n = store.event_count - before
    rate, span = pipeline_rate(win.store, ids[0], n)
    stats, nf = probe_stats(win, t0, t1)
    dropped = win.dropped - dropped0
    return [
        Figure("pipeline.window.events_per_s",
               "events/s from 2 worker processes into the store, window open",
               round(rate), "ev/s", TARGET_EVENTS_PER_S, sense="min",
               note=f"{n:,} events in {span:.2f} s, drained by the 30 Hz frame tick"
                    + (f"; {dropped:,} dropped before the window read them" if dropped else "")
                    + ("" if ok else "; the run did not end in time")),
        lag_figure("pipeline.window.gui_lag", "GUI loop lag p99 while the pipeline floods",
                    stats, nf, FRAME_BUDGET_MS, f"same run; {dtext}"),
    ]


async def _window_bench(win: Any, quick: bool, say: Say) -> list[Figure]:
    await asyncio.sleep(0.5 if quick else 2.0)  # settle: first frames and samples
    figs: list[Figure] = []
    say("idle window")
    figs += await idle_figures(win, 1.5 if quick else 5.0)
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
    session = make_session()  # the engine process starts (spawned, Qt-free) while Qt loads
    paint_on_gui_thread()  # as the app paints

    import qasync
    from PySide6.QtWidgets import QApplication

    from .. import theme
    from ..main_window import MainWindow

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
