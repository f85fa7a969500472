"""Timeline frame time: the real timeline item in a real 1200x400 view, 10k to 1M bars.

The bars are synthetic (four runs' lanes, back-to-back bars with gaps, a few failed or
cancelled, the last on each lane still running), loaded with
:meth:`~gui.timeline_data.TimelineData.load`. A frame is: set the range, render the whole plot
to a pixmap; the item's own paint time is reported beside it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from engine import State
from engine.bench.figures import Figure

from ..timeline_data import STATE_CODE, TimelineData, Worker
from ..worker_kind import worker_kind
from .common import FRAME_BUDGET_MS

#: (run id, model, workers, sub-lanes per worker): the lanes of the synthetic timeline.
_LANES: tuple[tuple[int, str, int, int], ...] = (
    (1, "processes", 2, 1),
    (2, "threads", 4, 1),
    (3, "asyncio", 1, 16),
    (4, "sequential", 1, 1),
)


def synthetic_timeline(n: int, span_s: float = 60.0, seed: int = 7) -> TimelineData:
    """A :class:`~gui.timeline_data.TimelineData` of ``n`` bars over ``span_s`` seconds, on the
    lanes of four runs (2 processes, 4 threads, an asyncio loop with 16 coroutine slots,
    sequential). Bars are back to back on each lane with gaps, 3% failed or cancelled, the last
    one on each lane still running. Made with numpy and handed over with
    :meth:`~gui.timeline_data.TimelineData.load` (building 1M TaskRecords would take longer
    than the paint figures; the paint only reads the bars' arrays)."""
    rng = np.random.default_rng(seed)
    workers: list[Worker] = []
    lanes: list[tuple[int, int]] = []  # (worker index, sub-lane)
    for run_id, model, nw, subs in _LANES:
        for k in range(nw):
            kind = worker_kind(model)
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

    from ..timeline import TimelineView
    from ..timeline_item import LOD_BARS

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
