"""An idle window stays cheap without drawing less than it should (``taskscope bench``:
"idle cost of the open window").

An open, idle window still has moving parts: the CPU plot scrolls with every sample, the
timeline follows the clock. What they must not do is cost more than one paint per frame, run
Python for every item on every frame, or redo work nothing asked for. These tests pin that
down with counts (paints, axis redraws, Python paint methods); the one timing check is loose,
because the machine is small and busy.
"""

from __future__ import annotations

import time
import types
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QGraphicsItem

from engine import State, TaskRecord
from gui.compare_bands import BandData, BandsView
from gui.cpu_view import BAND, GAP, WINDOW_S, CpuView
from gui.timeline import LaneAxis, TimelineView
from gui.timeline_data import TimelineData

T0 = 1_000_000_000


def sample(t_s: float, cores: tuple[float, ...], total: float) -> SimpleNamespace:
    return SimpleNamespace(t_ns=int(t_s * 1e9), interval_s=0.1, cores=cores, total=total,
                           self_cpu=3.0, workers={})


def test_cpu_plot_draws_every_sample_when_they_come_in_pairs(qtbot: Any) -> None:
    """The idle window drains two samples per frame and redraws once: every sample of the
    last 60 s is still on the plot, in order, at its own time, and the plot scrolls."""
    view = CpuView(2)
    qtbot.addWidget(view)
    rng = np.random.default_rng(7)
    sent = []
    t = 100.0
    for _ in range(400):  # 80 s at 10 Hz, two samples a frame
        pair = []
        for _ in range(2):
            t += 0.1
            c = tuple(float(x) for x in rng.uniform(0, 100, 2))
            pair.append(sample(t, c, sum(c) / 2))
        view.add_samples(pair)
        view.redraw(int(t * 1e9))
        sent += pair
    now = int(t * 1e9) / 1e9
    shown = [s for s in sent if s.t_ns / 1e9 >= now - WINDOW_S - 1]  # the view's own window
    xs, ys = view.total_curve.getData()
    assert len(xs) == len(shown) > 600
    assert np.allclose(ys, [s.total for s in shown])
    assert np.allclose(xs, [s.t_ns / 1e9 - now for s in shown])  # seconds ago, newest at 0
    # One polyline per core, every sample a vertex, each core in its own band.
    path = view.core_curve.item.path()
    m = len(shown)
    assert path.elementCount() == 2 * m
    starts = [i for i in range(path.elementCount()) if path.elementAt(i).isMoveTo()]
    assert starts == [0, m]
    for core in range(2):
        base = (1 - core) * (BAND + GAP)
        got = [path.elementAt(core * m + k).y - base for k in range(m)]
        assert np.allclose(got, [s.cores[core] for s in shown])
    # The next frame, with no new sample yet: the same samples, 0.2 s further left (the
    # oldest ones leave the window).
    view.redraw(int((t + 0.2) * 1e9))
    xs2, _ = view.total_curve.getData()
    assert len(xs) - 3 <= len(xs2) <= len(xs)
    assert np.allclose(xs2, xs[len(xs) - len(xs2):] - 0.2)


def test_cpu_plot_items_run_no_python_per_frame(qtbot: Any) -> None:
    """What moves on the CPU plot is plain Qt items (no Python paint or bounds on every
    frame), and the axes, which do not move, are cached pixmaps. pyqtgraph's curve and
    region items ran Python for both, 5 times a second, in an idle window."""
    view = CpuView(4)
    qtbot.addWidget(view)
    for plot in (view.cores_plot, view.total_plot):
        pi = plot.getPlotItem()
        items = pi.getViewBox().childGroup.childItems()
        assert len(items) >= 3
        for it in items:
            for name in ("paint", "boundingRect"):
                assert not isinstance(getattr(type(it), name), types.FunctionType), (
                    f"{type(it).__name__}.{name} is Python, run on every frame")
        for axis in ("left", "bottom"):
            assert pi.getAxis(axis).cacheMode() == \
                QGraphicsItem.CacheMode.DeviceCoordinateCache


def _bars() -> list[TaskRecord]:
    out = []
    for i in range(12):
        start = T0 + int((50 + i * 0.7) * 1e9)
        out.append(TaskRecord(i + 1, 1, i, state=State.FINISHED, queued_ns=start,
                              start_ns=start, end_ns=start + int(1.5e9), pid=10,
                              tid=100 + i % 4, thread=f"run1-w{i % 4}"))
    return out


def _timeline(qtbot: Any, clock: list[float]) -> tuple[TimelineData, TimelineView]:
    """A shown timeline of :func:`_bars` (all finished) on the clock ``clock[0]``."""
    d = TimelineData(T0)
    d.update(_bars(), lambda r: "threads")
    view = TimelineView(d, lambda: clock[0], lambda t: "")
    qtbot.addWidget(view)
    view.resize(1150, 330)
    view.show()
    qtbot.waitExposed(view)
    return d, view


def test_idle_timeline_paints_once_per_tick_and_keeps_its_lane_labels(
        qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Following the clock with nothing running: each tick moves the view and the now line
    and paints the timeline once (pyqtgraph applied the new range inside the paint, which
    painted it a second time); the lane labels are not laid out again, and the hidden axes
    do not follow the scroll."""
    clock = [70.0]
    d, view = _timeline(qtbot, clock)
    view.tick()
    qtbot.wait(50)
    lane_redraws = []
    orig = LaneAxis.generateDrawSpecs
    monkeypatch.setattr(LaneAxis, "generateDrawSpecs",
                        lambda self, p: lane_redraws.append(1) or orig(self, p))
    top = view.getPlotItem().getAxis("top")
    top_range = list(top.range)
    paints0 = view.item.paint_count
    ticks = 10
    for _ in range(ticks):
        clock[0] += 0.2
        view.tick()
        qtbot.wait(20)
    qtbot.wait(50)
    assert view.item.paint_count - paints0 == ticks
    assert lane_redraws == []
    assert top.range == top_range
    assert view.now_line.value() == pytest.approx(clock[0])
    x0, x1 = view.getPlotItem().getViewBox().viewRange()[0]
    assert x0 < clock[0] < x1 and x1 - x0 == pytest.approx(view.span_s, rel=0.01)
    # New lanes do relabel the axis.
    d.update([TaskRecord(99, 2, 0, state=State.FINISHED, queued_ns=T0, start_ns=T0 + int(60e9),
                         end_ns=T0 + int(61e9), pid=11, tid=999, thread="run2-w0")],
             lambda r: "threads")
    clock[0] += 0.2
    view.tick()
    qtbot.wait(50)
    assert lane_redraws


def test_zoomed_out_idle_timeline_redraws_only_when_the_clock_moves_a_pixel(
        qtbot: Any) -> None:
    """10 minutes across the view: the clock moves under 2 pixels a second, so an idle
    timeline redraws about once a second, never more than IDLE_STEP_PX behind the clock."""
    clock = [700.0]
    _, view = _timeline(qtbot, clock)
    vb = view.getPlotItem().getViewBox()
    vb.setRange(xRange=(100.0, 700.0), padding=0)
    view.set_follow(True)
    assert view.span_s == pytest.approx(600.0)
    view.tick()
    qtbot.wait(50)
    px_per_s = view._px_per_s()
    assert 1.0 < px_per_s < 3.0
    paints0 = view.item.paint_count
    for _ in range(15):  # 3 s of idle frames at 5 Hz
        clock[0] += 0.2
        view.tick()
        qtbot.wait(10)
        behind_px = (clock[0] - view.now_line.value()) * px_per_s
        assert 0 <= behind_px < view.IDLE_STEP_PX + 0.5
    qtbot.wait(50)
    assert 1 <= view.item.paint_count - paints0 <= 5  # not 15


def test_time_axis_sets_its_title_only_when_it_changes(qtbot: Any) -> None:
    clock = [70.0]
    view = TimelineView(TimelineData(T0), lambda: clock[0], lambda t: "")
    qtbot.addWidget(view)
    axis = view.getPlotItem().getAxis("bottom")
    assert axis is view.time_axis
    html = []
    orig = axis.label.setHtml
    axis.label.setHtml = lambda h: html.append(h) or orig(h)  # type: ignore[method-assign]
    for _ in range(5):
        clock[0] += 0.2
        view.tick()
    assert html == []
    view.getPlotItem().setLabel("bottom", "time since the trace starts", units="s")
    assert len(html) == 1 and "time since the trace starts" in html[0]


def test_timeline_data_version_never_goes_back() -> None:
    d = TimelineData(T0)
    d.update(_bars(), lambda r: "threads")
    v = d.version
    d.clear()
    assert d.version > v
    d.update(_bars(), lambda r: "threads")
    assert d.version > v + 1


def test_an_ended_comparison_does_nothing_per_frame(qtbot: Any) -> None:
    data = BandData(T0)
    data.run_t0[1] = T0
    data.run_model[1] = "threads"
    data.update(_bars(), lambda r: "threads")
    view = BandsView(data, lambda: data.t_max, lambda t: "", lambda rid: "threads")
    qtbot.addWidget(view)
    refreshes = []
    orig = view.item.refresh
    view.item.refresh = lambda: refreshes.append(1) or orig()  # type: ignore[method-assign]
    view.tick()
    assert len(refreshes) == 1
    for _ in range(5):
        view.tick()
    assert len(refreshes) == 1  # nothing moved: nothing redone
    view.fit()  # the user asks: always redone
    assert len(refreshes) == 2
    data.update([TaskRecord(50, 1, 50, state=State.RUNNING, queued_ns=T0, start_ns=T0,
                            pid=10, tid=100, thread="run1-w0")], lambda r: "threads")
    view.tick()
    view.tick()  # a bar runs: the bands follow the clock on every frame
    assert len(refreshes) == 4


def test_idle_window_draws_each_view_at_most_once_a_frame(window: Any, qtbot: Any) -> None:
    """The real window, idle at its idle frame rate: every sample still reaches the CPU
    plot, the now line keeps moving, the timeline paints at most once per frame, and the GUI
    thread stays far below a busy one (loose: 2 loaded cores; idle measures ~2-4%)."""
    from gui.frame_pacer import IDLE_FRAME_MS

    qtbot.waitUntil(lambda: window.frame_timer.interval() == IDLE_FRAME_MS
                    and window.cpu.n >= 2, timeout=15_000)
    frames0, paints0 = window._frames, window.timeline.item.paint_count
    now0 = window.timeline.now_line.value()
    c0, w0 = time.thread_time(), time.perf_counter()
    qtbot.wait(3000)
    cpu_pct = (time.thread_time() - c0) / (time.perf_counter() - w0) * 100
    frames = window._frames - frames0
    assert 4 <= frames <= 13, frames  # ~2.5 a second (IDLE_FRAME_MS)
    assert window.timeline.item.paint_count - paints0 <= frames + 1
    assert window.timeline.now_line.value() - now0 == pytest.approx(3.0, abs=1.0)
    xs, ys = window.cpu.total_curve.getData()
    assert ys[-1] == pytest.approx(window.last_sample.total)
    assert xs[-1] > -1.0  # the newest sample is at the right edge, not late
    assert cpu_pct < 25, f"idle GUI thread {cpu_pct:.1f}% of a core"


def test_idle_window_slows_its_lag_probe_and_restores_it_when_work_starts(
        window: Any, qtbot: Any) -> None:
    """While the window idles, its loop-lag probe fires every 250 ms instead of every 20 ms
    (50 timers a second on qasync's call_later were about 1% of a core); a run puts it straight back, so
    the lag shown while work runs is measured at the full rate. The status bar still shows
    a lag figure while idle."""
    from engine import make_spec
    from gui.frame_pacer import IDLE_FRAME_MS
    from gui.loop_timer import QtProbeTimer

    probe = window.session._lag_probe
    assert isinstance(probe._timer, QtProbeTimer)  # not qasync's call_later: see gui.loop_timer
    qtbot.waitUntil(lambda: window.frame_timer.interval() == IDLE_FRAME_MS, timeout=15_000)
    assert probe.interval_s == pytest.approx(0.25)
    fired0 = probe.fired
    qtbot.wait(1500)
    assert 2 <= probe.fired - fired0 <= 10  # ~6 at 4 Hz; at 50 Hz it would be ~75
    assert "ms" in window.st_gui.text()  # a figure, not "–"
    window.start_runs([make_spec("asyncio", "sleep", 4, 1.0)])
    assert probe.interval_s == pytest.approx(0.02)  # at once, not at the next idle firing
    fired1 = probe.fired
    qtbot.wait(500)
    assert probe.fired - fired1 >= 10  # ~25 at 50 Hz, loose for a loaded machine


def test_task_table_repaints_apart_from_the_frame_that_changed_it(
        window: Any, qtbot: Any) -> None:
    """The table's changed rows are announced (dataChanged) half a frame after the frame that
    folded the change in, never inside it: so Qt paints the table in a pass of its own, not in
    the timeline's. The rows still reach their final state, and the model's data is current
    at once (before the repaint)."""
    from engine import make_spec

    in_frame = [False]
    inside: list[float] = []
    outside: list[float] = []
    orig = window.frame

    def frame() -> None:
        in_frame[0] = True
        try:
            orig()
        finally:
            in_frame[0] = False

    window.frame_timer.timeout.disconnect()
    window.frame_timer.timeout.connect(frame)
    window.tasks.dataChanged.connect(
        lambda *a: (inside if in_frame[0] else outside).append(time.monotonic()))
    window.start_runs([make_spec("threads", "sleep", 6, 0.05, 3)])
    qtbot.waitUntil(lambda: window.store.runs()[-1].done, timeout=20_000)
    qtbot.waitUntil(lambda: all(r.state is State.FINISHED for r in window.tasks.recs),
                    timeout=5_000)
    qtbot.wait(100)
    assert outside, "the table was never told its rows changed"
    assert not inside, f"{len(inside)} dataChanged emitted inside a frame"
    m = window.tasks
    assert [m.index(r, m.C_STATE).data() for r in range(m.rowCount())] == ["finished"] * 6


def test_cpu_readouts_repaint_only_themselves(qtbot: Any) -> None:
    """The readout and the legend change twice a second in an idle window. They are opaque,
    so a new figure repaints the label alone; a transparent label had Qt repaint the whole
    CPU pane (and the splitters above it) under it each time."""
    from PySide6.QtCore import QEvent, QObject

    view = CpuView(2)
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)

    class Count(QObject):
        n = 0

        def eventFilter(self, obj: Any, ev: Any) -> bool:
            if ev.type() == QEvent.Type.Paint:
                self.n += 1
            return False

    pane, label = Count(), Count()
    view.installEventFilter(pane)
    view.legend.installEventFilter(label)
    for k in range(3):
        view._legend(sample(1.0 + k, (10.0 + k, 20.0), 15.0 + k))
        view.readout.setText(f"now: cpu0 {k}%")
        qtbot.wait(30)
    assert label.n >= 1  # the new figures were drawn
    assert pane.n == 0
