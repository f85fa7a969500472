"""Watching a run costs the run little (issue 17; ``taskscope bench``: ``observer.*``).

The engine and its workers run at niceness +10 under the window, so on a busy machine the
window's CPU comes out of the run it shows. The precise figures (target: 10% of one core while
a run is live at full frame rate) are the bench's; here the window's CPU per live frame is
bounded loosely, and the moving time axes, which were the largest cost, are pinned down.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QFont, QFontMetricsF, QImage, QPainter

from gui.compare_bands import BandData, BandsView
from gui.frame_pacer import FRAME_MS
from gui.time_axis import TimeAxis
from gui.timeline import TimelineView
from gui.timeline_data import TimelineData

T0 = 1_000_000_000
#: The window's CPU while a run is live, % of one core, above which this test fails: twice
#: the bench's target (10%), well under what it cost before the moving axes, the runs table
#: and the status bar were cut (25-30% offscreen; ``taskscope bench``: observer.window_cpu_live).
LOOSE_LIVE_PCT = 20.0


def test_time_axis_ticks_are_pyqtgraphs(qapp: object) -> None:
    """The axis' own tick values (no numpy) are pyqtgraph's, level by level, for any range."""
    ours, theirs = TimeAxis(), pg.AxisItem("bottom")
    rng = random.Random(17)
    for level in (0, 1, 2):
        ours.setStyle(maxTickLevel=level)
        theirs.setStyle(maxTickLevel=level)
        for _ in range(120):
            lo = rng.uniform(-100, 5000)
            hi = lo + 10 ** rng.uniform(-3, 4)
            size = rng.uniform(40, 3000)
            a, b = ours.tickValues(lo, hi, size), theirs.tickValues(lo, hi, size)
            assert [s for s, _ in a] == pytest.approx([s for s, _ in b])
            for (_, va), (_, vb) in zip(a, b, strict=True):
                assert va == pytest.approx(vb, rel=1e-9, abs=1e-9)


def _shown_view(qtbot: Any, width: int) -> tuple[TimelineView, list[float]]:
    """A timeline on screen, ``width`` px wide, on a clock the test moves (``clock[0]``)."""
    clock = [70.0]
    view = TimelineView(TimelineData(T0), lambda: clock[0], lambda t: "")
    qtbot.addWidget(view)
    view.resize(width, 300)
    view.show()
    qtbot.waitExposed(view)
    return view, clock


def test_following_axes_draw_without_pyqtgraphs_specs(qtbot: Any) -> None:
    """While the timeline follows the clock (a new range every frame), its time axis paints
    its ticks and labels itself: pyqtgraph's spec building and QPicture never run for it."""
    view, clock = _shown_view(qtbot, 900)
    calls: list[str] = []
    axis = view.time_axis
    orig = pg.AxisItem.generateDrawSpecs

    def spy(self: pg.AxisItem, p: Any) -> Any:
        calls.append(self.orientation)
        return orig(self, p)

    pg.AxisItem.generateDrawSpecs = spy  # type: ignore[method-assign]
    try:
        view.data.running = 1  # live: the view moves on every tick
        for _ in range(10):
            clock[0] += 1 / 30
            view.tick()
            qtbot.wait(5)
        img = view.grab()
    finally:
        pg.AxisItem.generateDrawSpecs = orig  # type: ignore[method-assign]
        view.data.running = 0
    assert "bottom" not in calls
    assert axis._texts, "no tick label was drawn"
    assert all(s.endswith(" s") for s in axis._texts)
    assert not img.isNull()


def _ink_columns(axis: TimeAxis) -> list[int]:
    """The columns in which the axis, painted on its own, leaves any ink."""
    g = axis.geometry()
    img = QImage(int(g.width()) + 40, int(g.height()) + 10, QImage.Format.Format_ARGB32)
    img.fill(0)
    p = QPainter(img)
    p.translate(20, 5)  # its bounds reach a little past its geometry
    axis.paint(p, None, None)
    p.end()
    return [x - 20 for x in range(img.width())
            if any(img.pixel(x, y) >> 24 for y in range(img.height()))]


def test_time_axis_follows_a_resize_and_a_font(qtbot: Any) -> None:
    """The axes keep what depends on their size (extent, bounds) and the time axis its font
    (the laid-out labels) from frame to frame: a resize and a new font renew them. Widened,
    the time axis draws over its whole new width; with a larger font, its labels are that
    font's."""
    view, clock = _shown_view(qtbot, 500)
    axis = view.time_axis
    view.data.running = 1

    def frame() -> None:
        clock[0] += 1 / 30
        view.tick()
        view.viewport().repaint()

    frame()
    w0 = axis.geometry().width()
    assert max(_ink_columns(axis)) < w0 + 15
    h0 = view.lane_axis.geometry().height()
    view.resize(1100, 420)
    qtbot.waitUntil(lambda: axis.geometry().width() > w0 + 400)
    frame()
    assert view.lane_axis.geometry().height() > h0 + 100
    for a in (axis, view.lane_axis):  # the time axis and the lanes' axis keep their bounds
        assert a.boundingRect() == pg.AxisItem.boundingRect(a)
    assert max(_ink_columns(axis)) > axis.geometry().width() - 60
    big = QFont(axis.font())
    big.setPixelSize(30)
    axis.setTickFont(big)
    frame()
    assert _ink_columns(axis)
    assert {h for _, _, h in axis._texts.values()} == {QFontMetricsF(big).height()}
    view.data.running = 0


def test_comparison_bands_relabel_only_when_a_band_changes(qtbot: Any) -> None:
    """The bands grow on every frame of a comparison; their labels (one per model) are laid
    out again only when a band or its label changes, and the grid is the bars' own."""
    data = BandData(T0)
    now = [1.0]
    labels = {1: "threads"}
    view = BandsView(data, lambda: now[0], lambda t: "", lambda rid: labels.get(rid, "?"))
    qtbot.addWidget(view)
    assert isinstance(view.getPlotItem().getAxis("bottom"), TimeAxis)
    assert view.item.grid_axis is view.getPlotItem().getAxis("bottom")
    # The hidden axes do not follow the range (each set its title as HTML on every frame).
    assert all(view.getPlotItem().getAxis(n).linkedView() is None for n in ("top", "right"))
    data.spans = {1: (0, 3)}
    view.tick(force=True)
    axis = view.axis
    axis.picture = object()  # stands for the labels laid out
    data.running = 1
    for _ in range(5):
        now[0] += 1 / 30
        view.tick()
    assert axis.picture is not None
    labels[1] = "★ threads"  # the winner's star
    now[0] += 1 / 30
    view.tick()
    assert axis.picture is None


def test_live_window_costs_little_cpu(window: Any, qtbot: Any) -> None:
    """A run live in the window (threads sleeping: the machine stays free) at full frame rate:
    the window process's CPU (every thread, user + system) stays under LOOSE_LIVE_PCT of one
    core. CPU time per frame barely moves with other load; if the machine is too busy to give
    the window its frames, the figure cannot be judged and the test skips with it."""
    from engine import make_spec

    window.resize(1400, 900)
    qtbot.wait(200)
    window.start_runs([make_spec("threads", "sleep", 48, 0.25, 8)])  # about 1.5 s live
    qtbot.waitUntil(lambda: any(not r.done for r in window.runs.runs), timeout=10_000)
    qtbot.wait(300)  # past the first frames of the run (rows added, lanes laid out)
    c0, t0, f0 = time.process_time(), time.monotonic(), window._frames
    qtbot.wait(900)
    c1, t1, f1 = time.process_time(), time.monotonic(), window._frames
    live = any(not r.done for r in window.runs.runs)
    qtbot.waitUntil(lambda: all(r.done for r in window.runs.runs), timeout=20_000)
    pct = 100.0 * (c1 - c0) / (t1 - t0)
    fps = (f1 - f0) / (t1 - t0)
    per_frame_ms = 1e3 * (c1 - c0) / max(1, f1 - f0)
    figure = (f"window {pct:.1f}% of one core over {t1 - t0:.2f} s live, {fps:.0f} frames/s, "
              f"{per_frame_ms:.2f} ms of CPU per frame; load {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores")
    if not live or fps < 20 or os.getloadavg()[0] > 3.5 * (os.cpu_count() or 1):
        pytest.skip(f"machine too busy to judge the window's live cost: {figure}")
    print(figure)
    # Judged per frame (LOOSE_LIVE_PCT of a core at the full frame rate): a frame rate a little
    # under 30 on a busy machine neither hides a regression nor fails a fast window. Measured
    # on the loaded 2-core machine: 4.9-5.5 ms per frame now, 7.6-8.1 ms with the window as it
    # was before issue 17 (a69bbcc), against a bound of 6.6 ms.
    assert per_frame_ms < LOOSE_LIVE_PCT / 100 * FRAME_MS, figure


def _task(i: int, state: Any, progress: float = 0.0) -> Any:
    from engine import State, TaskRecord

    r = TaskRecord(task_id=i + 1, run_id=1, index=i, state=state, progress=progress)
    if state is not State.QUEUED:
        r.start_ns, r.pid, r.tid, r.core = 1_000_000_000 + i * 1000, 4242, 4243 + i, 0
    if state.terminal:
        r.end_ns = r.start_ns + 3_000_000
    return r


def test_changed_rows_announce_only_their_changed_cells(qapp: object) -> None:
    """A task whose progress moved repaints its progress cell, not its row; a state change
    its state, duration and buttons; a row that did not change, nothing; rows seen for the
    first time, whole; a flood, one range (issue 17: the table's cells are the dearest part
    of a frame to paint)."""
    from engine import State
    from gui.task_table import TaskTableModel

    C = TaskTableModel
    tasks = TaskTableModel(lambda: 2_000_000_000, lambda r: "processes", lambda r: True)
    recs = [_task(i, State.RUNNING, 0.1) for i in range(6)]
    tasks.add(recs)
    seen: list[tuple[int, int, int, int]] = []
    tasks.dataChanged.connect(
        lambda a, b, *_: seen.append((a.row(), a.column(), b.row(), b.column())))
    tasks.changed([recs[1].task_id, recs[4].task_id])
    assert seen == [(1, 0, 1, 8), (4, 0, 4, 8)]  # first seen: every column
    seen.clear()
    recs[1].progress = 0.5
    tasks.changed([recs[1].task_id, recs[4].task_id])
    assert seen == [(1, C.C_PROG, 1, C.C_PROG)]  # row 4 did not change
    seen.clear()
    recs[4].state, recs[4].end_ns = State.FINISHED, recs[4].start_ns + 5  # type: ignore[operator]
    tasks.changed([recs[4].task_id])
    assert seen == [(4, C.C_STATE, 4, C.C_FORCE)]
    seen.clear()
    tasks.changed([r.task_id for r in recs])
    assert all(a == b for a, _, b, _ in seen)  # one row per signal
    seen.clear()
    many = [_task(i, State.RUNNING) for i in range(6, 6 + C.TIGHT_ROWS + 1)]
    tasks.add(many)
    tasks.changed([r.task_id for r in many])
    assert seen == [(6, 0, 6 + C.TIGHT_ROWS, 8)]


def test_progress_moves_at_the_table_tick_and_nothing_else_waits(qapp: object) -> None:
    """Between table ticks a row whose only change is its progress is held (its id comes
    back) and announces nothing; at the tick it announces its progress cell with the latest
    value. A state change is announced at once, and a held row that finished meanwhile shows
    its final state (issue 17: the table's progress cells were a paint pass on every frame)."""
    from engine import State
    from gui.task_table import PROGRESS_ROLE, TaskTableModel

    C = TaskTableModel
    tasks = TaskTableModel(lambda: 2_000_000_000, lambda r: "processes", lambda r: True)
    recs = [_task(i, State.RUNNING, 0.1) for i in range(3)]
    tasks.add(recs)
    tasks.changed([r.task_id for r in recs])  # first seen: announced whole
    seen: list[tuple[int, int, int, int]] = []
    tasks.dataChanged.connect(
        lambda a, b, *_: seen.append((a.row(), a.column(), b.row(), b.column())))
    recs[0].progress = 0.3
    recs[1].progress = 0.4
    held = tasks.changed([recs[0].task_id, recs[1].task_id], progress=False)
    assert held == {recs[0].task_id, recs[1].task_id} and seen == []
    recs[0].progress = 0.5  # moved again before the tick
    recs[1].state, recs[1].end_ns = State.FINISHED, recs[1].start_ns + 9  # type: ignore[operator]
    recs[2].state, recs[2].end_ns = State.FAILED, recs[2].start_ns + 9  # type: ignore[operator]
    held = tasks.changed([recs[1].task_id, recs[2].task_id], progress=False)
    assert held == set()
    assert (1, C.C_STATE, 1, C.C_FORCE) in seen and (2, C.C_STATE, 2, C.C_FORCE) in seen
    seen.clear()
    assert tasks.changed({recs[0].task_id}, progress=True) == set()
    assert seen == [(0, C.C_PROG, 0, C.C_PROG)]
    assert tasks.index(0, C.C_PROG).data(PROGRESS_ROLE) == pytest.approx(0.5)


def test_the_window_holds_progress_until_its_table_tick(window: Any) -> None:
    """The window's table pass: a progress-only change waits for the table tick (5 Hz),
    then goes with the running durations; a state change goes half a frame after it came."""
    from engine import State

    rec, other = _task(10_000, State.RUNNING, 0.1), _task(10_001, State.RUNNING, 0.1)
    window.tasks.add([rec, other])
    window.tasks.changed([rec.task_id, other.task_id])
    seen: list[tuple[int, int]] = []
    window.tasks.dataChanged.connect(lambda a, b, *_: seen.append((a.row(), a.column())))
    row, row2 = window.tasks.row_of[rec.task_id], window.tasks.row_of[other.task_id]
    rec.progress = other.progress = 0.6
    window._table_changed, window._table_tick = {rec.task_id, other.task_id}, False
    window._table_paint()
    assert seen == [] and window._table_progress == {rec.task_id, other.task_id}
    other.state, other.end_ns = State.FINISHED, other.start_ns + 9  # type: ignore[operator]
    window._table_changed = {other.task_id}
    window._table_paint()  # it ended: announced at once, and no longer held
    assert seen == [(row2, window.tasks.C_STATE)]
    assert window._table_progress == {rec.task_id}
    seen.clear()
    window._table_tick = True
    window._table_paint()
    assert seen == [(row, window.tasks.C_PROG)] and not window._table_progress


def _first_paint(qtbot: Any, vp: Any, repaint: Any) -> Any:
    """The region of the first paint of viewport ``vp`` after ``repaint()``."""
    from PySide6.QtCore import QEvent, QObject

    regions: list[Any] = []

    class Spy(QObject):
        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
            if ev.type() == QEvent.Type.Paint:
                regions.append(ev.region())  # type: ignore[attr-defined]
            return False

    spy = Spy()
    vp.installEventFilter(spy)
    qtbot.wait(50)
    regions.clear()
    repaint()
    qtbot.waitUntil(lambda: bool(regions), timeout=2000)
    vp.removeEventFilter(spy)
    return regions[0]


def test_the_clock_repaints_only_running_durations(qtbot: Any) -> None:
    """Five times a second the task table repaints the Duration cells of the running tasks in
    view, and nothing else: finished and queued rows do not move with the clock."""
    from PySide6.QtCore import QRect

    from engine import State
    from gui.panes import TablesPane
    from gui.task_table import TaskTableModel

    pane = TablesPane(lambda: 2_000_000_000, lambda r: "threads", lambda r: False,
                      lambda r: False)
    qtbot.addWidget(pane)
    states = [State.FINISHED, State.RUNNING, State.QUEUED, State.RUNNING, State.FAILED]
    pane.tasks.add([_task(i, s) for i, s in enumerate(states)])
    pane.resize(1000, 400)
    pane.show()
    qtbot.waitExposed(pane)
    view, vp = pane.tasks_view, pane.tasks_view.viewport()
    painted = _first_paint(qtbot, vp, pane.repaint_running_durations)
    for row, state in enumerate(states):
        cell = view.visualRect(pane.proxy.index(row, TaskTableModel.C_DUR))
        assert painted.contains(cell.center()) == (state is State.RUNNING), (row, state)
    others = QRect(0, 0, view.columnViewportPosition(TaskTableModel.C_DUR), vp.height())
    assert not painted.intersects(others)


def test_lane_labels_are_laid_out_again_only_when_lanes_change(qtbot: Any) -> None:
    """Events that move bars but add no lane leave the lane axis' labels as they were laid
    out (they were laid out again on every event: each frame of a live run), and the axis is
    kept as a pixmap between changes."""
    from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView

    from engine import State

    data = TimelineData(T0)
    clock = [1.0]
    view = TimelineView(data, lambda: clock[0], lambda t: "")
    qtbot.addWidget(view)
    view.resize(700, 250)
    view.show()
    qtbot.waitExposed(view)
    axis = view.lane_axis
    assert axis.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache
    # Items that move on every frame, in a scene without a spatial index to re-index.
    assert view.scene().itemIndexMethod() == QGraphicsScene.ItemIndexMethod.NoIndex
    # Its plain background filled, not copied from a cached pixmap under every repaint.
    assert view.cacheMode() == QGraphicsView.CacheModeFlag.CacheNone
    rec = _task(0, State.RUNNING)
    rec.start_ns = T0 + 100_000_000
    data.update([rec], lambda r: "threads")
    view.tick()
    axis.picture = object()  # stands for the labels laid out
    for i in range(1, 6):
        rec.progress = i / 10
        data.update([rec], lambda r: "threads")
        clock[0] += 1 / 30
        view.tick()
    assert axis.picture is not None
    other = _task(1, State.RUNNING)
    other.start_ns, other.tid = T0 + 200_000_000, 99  # another thread: a new lane
    data.update([other], lambda r: "threads")
    view.tick()
    assert axis.picture is None


def test_a_hidden_tab_does_not_move_its_view(window: Any, qtbot: Any) -> None:
    """While the Compare tab shows, the frame does not move the timeline with the clock (a
    new range, a scene and an axis update on every frame, for nothing on screen); when the
    Timeline tab shows again its view has caught up with the clock before it is painted."""
    vb = window.timeline.getPlotItem().getViewBox()
    window.timeline.follow = True
    window.timeline.span_s = 1.0  # a range that moves from the start (xMin -1 holds a wider one)
    window.views.setCurrentWidget(window.compare_scroll)
    qtbot.wait(100)
    window.timeline.data.running = 1  # as if a bar ran: the view would move on every frame
    try:
        x_hidden = vb.viewRange()[0][1]
        qtbot.wait(300)
        assert vb.viewRange()[0][1] == x_hidden
        window.views.setCurrentWidget(window.tl_pane)
        # Caught up at once, not on the next frame: "now" near the right edge, as following.
        right = window.now_s() + window.timeline.span_s * 0.08
        assert vb.viewRange()[0][1] == pytest.approx(right, abs=0.1)
        assert vb.viewRange()[0][1] != x_hidden
    finally:
        window.timeline.data.running = 0


def test_the_clock_repaints_only_running_walls(qtbot: Any) -> None:
    """Five times a second the runs table repaints the Wall cell of each run still going,
    not the whole table (it is redrawn whole only when a run's counts or end change)."""

    from engine import RunRecord, make_spec
    from gui.panes import TablesPane
    from gui.task_table import RunTableModel

    pane = TablesPane(lambda: 5_000_000_000, lambda r: "threads", lambda r: False,
                      lambda r: False)
    qtbot.addWidget(pane)
    spec = make_spec("threads", "sleep", 2, 0.1, 2)
    done = RunRecord(1, spec, range(1, 3), 1_000_000_000, 2_000_000_000, {"finished": 2}, {})
    going = RunRecord(2, spec, range(3, 5), 3_000_000_000, None, {"running": 2}, {})
    pane.runs.add(done)
    pane.runs.add(going)
    pane.set_rows(2)
    pane.resize(1000, 400)
    pane.show()
    qtbot.waitExposed(pane)
    view, vp = pane.runs_view, pane.runs_view.viewport()
    painted = _first_paint(qtbot, vp, pane.repaint_running_walls)
    wall = [view.visualRect(pane.runs.index(r, RunTableModel.C_WALL)) for r in (0, 1)]
    assert painted.contains(wall[1].center()) and not painted.contains(wall[0].center())
    first = view.visualRect(pane.runs.index(1, 0))
    assert not painted.contains(first.center())


def test_cpu_plots_repaint_with_each_redraw_and_follow_a_replays_pans(qtbot: Any) -> None:
    """The CPU plots are repainted by their redraw (a sample came), not by their scenes (each
    scene's update painted the window in a pass of its own): every redraw still reaches the
    screen, both plots. In a replay they pan with the timeline, so their scenes drive their
    repaints again (a pan there must not leave them as they were)."""
    from types import SimpleNamespace

    from PySide6.QtWidgets import QGraphicsView

    from gui.cpu_view import CpuView

    view = CpuView(2)
    qtbot.addWidget(view)
    view.resize(900, 200)
    view.show()
    qtbot.waitExposed(view)
    t = [100.0]

    def redraw() -> None:
        t[0] += 0.1
        view.add_samples([SimpleNamespace(t_ns=int(t[0] * 1e9), interval_s=0.1,
                                          cores=(40.0, 60.0), total=50.0, self_cpu=3.0,
                                          workers={})])
        view.redraw(int(t[0] * 1e9))

    for plot in (view.cores_plot, view.total_plot):
        assert not _first_paint(qtbot, plot.viewport(), redraw).isEmpty()
    view.set_replay(T0, 10)
    for plot in (view.cores_plot, view.total_plot):
        assert plot.viewportUpdateMode() != QGraphicsView.ViewportUpdateMode.NoViewportUpdate


def test_compare_progress_is_painted_with_the_frame_not_at_once(qtbot: Any) -> None:
    """QProgressBar.setValue repaints at once: the comparison's progress bar was a paint pass
    of its own in the middle of each frame tick. It is painted with the next pass instead,
    at its new value."""
    from PySide6.QtCore import QEvent, QObject

    from engine.compare.results import CompareProgress
    from gui.compare_view import CompareView

    view = CompareView(lambda t: "")
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    qtbot.waitExposed(view)
    view.begin(["threads", "processes"], "cpu · 8 tasks")
    qtbot.wait(50)
    paints: list[int] = []

    class Spy(QObject):
        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
            if ev.type() == QEvent.Type.Paint:
                paints.append(view.bar.value())
            return False

    spy = Spy()
    view.bar.installEventFilter(spy)
    view.set_progress(CompareProgress("running", "threads", 0, 2, 4, 8, 1, 1.5))
    assert paints == []  # nothing painted inside the frame tick
    assert view.bar.value() == 50
    qtbot.waitUntil(lambda: bool(paints), timeout=2000)
    assert paints[-1] == 50
    view.bar.removeEventFilter(spy)
