"""Moving around the timeline (issue 16).

* "Follow now" stops once every run has ended: the bars stay in view instead of sliding off
  the left edge with the clock.
* Fit zooms to the runs: every bar and every lane.
* The wheel zooms time only; Ctrl+wheel (or the lane buttons) zooms the lanes.
* The bar under the mouse is described in the pane's info line, which works where tooltips do
  not (an X display without a window manager); the empty timeline says what to do first.
* Lane labels never overlap, however many lanes (a replay of 30 thread lanes overlapped), and
  coroutine slots keep labels where there is room between the workers' names.
"""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from engine import State, TaskRecord
from gui.panes import TimelinePane
from gui.timeline_data import TimelineData

from .helpers import fill

WAIT = 30_000
T0 = 1_000_000_000


def _recs(runs: int = 1, threads: int = 4, per: int = 2) -> list[TaskRecord]:
    out, tid = [], 0
    for r in range(1, runs + 1):
        for k in range(threads * per):
            tid += 1
            start = T0 + int((1 + k // threads * 0.6) * 1e9)
            out.append(TaskRecord(tid, r, k, state=State.FINISHED, queued_ns=start,
                                  start_ns=start, end_ns=start + int(0.5e9), pid=10 + r,
                                  tid=100 * r + k % threads, thread=f"run{r}-thread_{k % threads}"))
    return out


def _pane(qtbot: Any, recs: list[TaskRecord], model: str = "threads",
          size: tuple[int, int] = (900, 300)) -> TimelinePane:
    d = TimelineData(T0)
    d.update(recs, lambda r: model)
    by_id = {r.task_id: r for r in recs}
    pane = TimelinePane(d, lambda: 5.0, lambda t: f"task {t}",
                        lambda t: f"task {t} · run {by_id[t].run_id} · finished")
    qtbot.addWidget(pane)
    pane.resize(*size)
    pane.show()
    qtbot.waitExposed(pane)
    pane.timeline.fit()
    QApplication.processEvents()
    return pane


def _wheel(view: Any, ctrl: bool = False, delta: int = 120) -> None:
    vp = view.viewport()
    pos = QPointF(vp.width() / 2, vp.height() / 3)
    mods = Qt.KeyboardModifier.ControlModifier if ctrl else Qt.KeyboardModifier.NoModifier
    ev = QWheelEvent(pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                     QPoint(0, delta), Qt.MouseButton.NoButton, mods,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)
    QApplication.processEvents()


def test_wheel_zooms_time_only_and_ctrl_wheel_the_lanes(qtbot: Any) -> None:
    pane = _pane(qtbot, _recs(threads=12))
    vb = pane.timeline.getPlotItem().getViewBox()
    x0, y0 = list(vb.viewRange()[0]), list(vb.viewRange()[1])
    _wheel(pane.timeline)
    x1, y1 = list(vb.viewRange()[0]), list(vb.viewRange()[1])
    assert x1[1] - x1[0] < x0[1] - x0[0]  # zoomed in on time
    assert y1 == pytest.approx(y0)  # the lanes as they were
    _wheel(pane.timeline, ctrl=True)
    x2, y2 = list(vb.viewRange()[0]), list(vb.viewRange()[1])
    assert x2 == pytest.approx(x1)
    assert y2[1] - y2[0] < y1[1] - y1[0]  # fewer, taller lanes
    # The lane buttons do the same, back to every lane.
    for _ in range(6):
        pane.lanes_more.click()
    y3 = vb.viewRange()[1]
    assert y3[1] - y3[0] >= pane.timeline.data.rows


def test_fit_shows_every_bar_and_lane(qtbot: Any) -> None:
    recs = _recs(runs=2, threads=4)
    pane = _pane(qtbot, recs)
    view = pane.timeline
    vb = view.getPlotItem().getViewBox()
    vb.setRange(xRange=(40, 50), yRange=(2, 3), padding=0)
    pane.fit_btn.click()
    (x0, x1), (y0, y1) = vb.viewRange()
    d = view.data
    assert x0 <= d.start[: d.n].min() and x1 >= d.t_max
    assert y0 <= 0 and y1 >= d.rows
    assert not view.follow


def test_the_info_line_tells_the_bar_under_the_mouse(qtbot: Any) -> None:
    recs = _recs(threads=2, per=1)
    pane = _pane(qtbot, recs)
    assert "wheel: zoom time" in pane.info.text()
    view = pane.timeline
    c = view.item.bar_center(recs[0].task_id)
    scene = view.getPlotItem().getViewBox().mapViewToScene(c)
    pos = view.mapFromScene(scene)
    qtbot.mouseMove(view.viewport(), pos)
    qtbot.waitUntil(lambda: pane.info.text().startswith(f"task {recs[0].task_id}"),
                    timeout=3000)
    # Off the bars (an empty lane below them, inside the plot): the hint again.
    (x0, x1), (y0, y1) = view.getPlotItem().getViewBox().viewRange()
    assert max(y0, y1) > view.data.rows + 1
    empty = view.mapFromScene(view.getPlotItem().getViewBox().mapViewToScene(
        QPointF((x0 + x1) / 2, max(y0, y1) - 0.5)))
    for dx in (0, 3):
        qtbot.wait(50)  # moves in one event-loop pass are merged into one
        qtbot.mouseMove(view.viewport(), empty + QPoint(dx, 0))
    qtbot.waitUntil(lambda: "wheel: zoom time" in pane.info.text(), timeout=3000)


def test_lane_labels_never_overlap_and_slots_keep_labels(qtbot: Any) -> None:
    """30 thread lanes on a short timeline (as a replay of 3 runs of 10 threads showed
    them): labels at least a line apart. A loop with many coroutine slots: its name, and
    slot labels in the room between."""
    pane = _pane(qtbot, _recs(runs=3, threads=10, per=1), size=(900, 260))
    axis = pane.timeline.lane_axis
    vb = pane.timeline.getPlotItem().getViewBox()
    lo, hi = vb.viewRange()[1]
    size = vb.height()
    rows = axis.tickValues(lo, hi, size)[0][1]
    px = [(r - lo) * size / (hi - lo) for r in rows]
    assert len(rows) >= 5
    assert min(b - a for a, b in zip(px, px[1:], strict=False)) >= axis.line_px() - 0.5

    recs = []
    for k in range(24):  # 24 coroutines at once on one loop: 24 slots
        start = T0 + int(1e9)
        recs.append(TaskRecord(k + 1, 1, k, state=State.FINISHED, queued_ns=start,
                               start_ns=start, end_ns=start + int(1e9), pid=5, tid=7,
                               thread="asyncio-loop"))
    loop = _pane(qtbot, recs, model="asyncio", size=(900, 400))
    ax = loop.timeline.lane_axis
    vb = loop.timeline.getPlotItem().getViewBox()
    lo, hi = vb.viewRange()[1]
    rows = ax.tickValues(lo, hi, vb.height())[0][1]
    names = ax.tickStrings(rows, 1, 1)
    assert any("asyncio loop" in n for n in names)
    assert sum("coroutine slot" in n for n in names) >= 3


def test_follow_stops_once_the_runs_have_ended(window: Any, qtbot: Any) -> None:
    view = window.timeline
    assert "Start (Ctrl+R)" in view.empty_text()  # the first step, on an empty timeline
    fill(window, ("threads",), "sleep", 3, "100ms", workers="3")
    window.controls.request_start()
    assert window.act_follow.isChecked()
    qtbot.waitUntil(lambda: window.store.runs() and window.store.runs()[0].end_ns is not None,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: not window.act_follow.isChecked(), timeout=3000)
    assert view.empty_text() == ""
    vb = view.getPlotItem().getViewBox()
    before = list(vb.viewRange()[0])
    qtbot.wait(1200)
    after = list(vb.viewRange()[0])
    assert after == pytest.approx(before)  # the bars stay put
    d = view.data
    assert after[0] <= d.start[: d.n].min() and after[1] >= d.t_max
