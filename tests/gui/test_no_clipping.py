"""Nothing is cut where a user reads it (issue 16, "full names, no clipping"), on a laptop's
screen: the Compare tab's band labels, its status line, the timeline's info line.

Built from synthetic task records on bare views (no engine, no window): each test takes well
under a second.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QApplication, QScrollArea

from engine import State, TaskRecord
from gui.compare_view import CompareView

T0 = 1_000_000_000


def _settle(qtbot: Any) -> None:
    for _ in range(4):
        QApplication.processEvents()
        qtbot.wait(5)


def _rec(tid: int, run: int, k: int, start_s: float, end_s: float, pid: int, thread_id: int,
         thread: str) -> TaskRecord:
    s, e = T0 + int(start_s * 1e9), T0 + int(end_s * 1e9)
    return TaskRecord(tid, run, k, state=State.FINISHED, queued_ns=T0, start_ns=s, end_ns=e,
                      pid=pid, tid=thread_id, thread=thread, core=1, progress=1.0)


def preset_1_bands() -> list[TaskRecord]:
    """Preset 1 as it ran: sequential (one lane), asyncio (20 coroutines at once: 8 slots),
    threads (10 lanes)."""
    recs, n = [], 0
    for k in range(20):
        n += 1
        recs.append(_rec(n, 1, k, k * 0.3, k * 0.3 + 0.3, 10, 11, "run1-sequential_0"))
    for k in range(20):
        n += 1
        recs.append(_rec(n, 2, k, 0.0, 0.3, 10, 12, "asyncio-loop"))
    for k in range(20):
        n += 1
        recs.append(_rec(n, 3, k, k // 10 * 0.3, k // 10 * 0.3 + 0.3, 10, 140_100 + k % 10,
                         f"run3-thread_{k % 10}"))
    return recs


def line_px(view: CompareView) -> float:
    """A line of the band labels' text."""
    return QFontMetricsF(view.bands.axis.font()).height()


def band_px(view: CompareView) -> float:
    """The thinnest band's height on screen (the labels sit at the bands' middles, so they
    are at least that far apart too)."""
    vb = view.bands.getPlotItem().getViewBox()
    lo, hi = sorted(vb.viewRange()[1])
    return min(rows for _, _, rows in view.data.bands()) * vb.height() / (hi - lo)


def test_band_labels_never_overlap_in_a_short_compare_tab(qtbot: Any) -> None:
    """Three bands in the room the Compare tab has at 1366x768 (about 200 px): the thinnest
    band (sequential's one lane beside ten threads) held 6 px, and the labels "sequential"
    and "★ asyncio" ran into each other. The tab scrolls instead."""
    view = CompareView(lambda t: f"task {t}")
    view.begin(["sequential", "asyncio", "threads"], "sleep · 20 tasks × 300 ms")
    for rid, model in ((1, "sequential"), (2, "asyncio"), (3, "threads")):
        view.adopt_run(rid, model, T0)
    view.update_tasks(preset_1_bands())
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(view)
    qtbot.addWidget(scroll)
    scroll.resize(1000, 200)
    scroll.show()
    view.tick()
    _settle(qtbot)
    view.bands.fit()
    _settle(qtbot)
    assert len(view.data.bands()) == 3
    assert band_px(view) >= line_px(view)
    assert scroll.verticalScrollBar().maximum() > 0  # the tab scrolls instead


def test_the_compare_status_is_whole_at_1366_and_never_cut_mid_word(qtbot: Any) -> None:
    """At 1366x768 the tab is about 990 px wide: the status read "model 2/2: proces", cut
    under the progress bar. Whole there; narrower, it ends in "…" with the whole in its
    tooltip."""
    from engine.compare import CompareProgress

    view = CompareView(lambda t: f"task {t}")
    qtbot.addWidget(view)
    view.resize(988, 420)
    view.show()
    view.begin(["threads", "processes"], "cpu · 8 tasks × 500 ms")
    view.set_progress(CompareProgress("running", "processes", 1, 2, 4, 8, 2, 3.4))
    _settle(qtbot)
    st = view.status
    text = st.text()
    assert text.endswith("model 2/2: processes running · 4/8 tasks · 3.4 s"), text
    assert st.fontMetrics().horizontalAdvance(text) <= st.contentsRect().width()
    assert st.geometry().right() < view.bar.geometry().left()
    view.resize(700, 420)
    _settle(qtbot)
    assert st.shown_text().endswith("…") and st.toolTip() == text


def test_the_info_line_tells_a_hovered_bar_whole_at_1366(qtbot: Any) -> None:
    """The timeline at 1366x768 is about 990 px wide; beside the state legend the hovered
    bar's line kept 450 px and lost its worker, times and progress."""
    from gui.panes import TimelinePane
    from gui.task_text import describe_task_line
    from gui.timeline_data import TimelineData

    recs = preset_1_bands()[40:]
    rec = recs[11]
    data = TimelineData(T0)
    data.update(recs, lambda r: "threads")
    line = describe_task_line(rec, "threads", T0, T0)
    pane = TimelinePane(data, lambda: 5.0, lambda t: f"task {t}", lambda t: line)
    qtbot.addWidget(pane)
    pane.resize(988, 220)
    pane.show()
    _settle(qtbot)
    assert pane.legend.isVisible()
    pane.show_hovered(rec.task_id)
    _settle(qtbot)
    info = pane.info
    assert info.text() == line and "progress 100%" in line
    assert info.fontMetrics().horizontalAdvance(line) <= info.contentsRect().width()
    pane.show_hovered(-1)  # off the bars: the hint, and the legend back
    _settle(qtbot)
    assert pane.legend.isVisible() and "wheel: zoom time" in info.text()


def test_every_lane_label_fits_its_axis(qtbot: Any) -> None:
    """pyqtgraph drops a label wider than the lane axis: a thread named by a library at
    length (cut at 30 characters, still 210 px) showed no label at all."""
    from gui.panes import TimelinePane
    from gui.timeline_data import TimelineData

    long = "run1-ThreadPoolExecutor-worker-thread-of-a-library_0"
    recs = [_rec(1, 1, 0, 0.0, 0.3, 10, 140_001, long),
            _rec(2, 1, 1, 0.0, 0.3, 10, 140_002, "run1-thread_1")]
    data = TimelineData(T0)
    data.update(recs, lambda r: "threads")
    pane = TimelinePane(data, lambda: 5.0, lambda t: f"task {t}", lambda t: f"task {t}")
    qtbot.addWidget(pane)
    pane.resize(988, 220)
    pane.show()
    _settle(qtbot)
    axis = pane.timeline.lane_axis
    fm = QFontMetricsF(axis.style.get("tickFont") or axis.font())
    lo, hi = pane.timeline.getPlotItem().getViewBox().viewRange()[1]
    rows = axis.tickValues(lo, hi, 200)[0][1]
    labels = axis.tickStrings(rows, 1, 1)
    assert len(labels) == 2 and labels[0].startswith("run1-ThreadPool") and labels[0].endswith("…")
    assert labels[1] == "run1-thread_1 (140002)"
    assert all(fm.horizontalAdvance(lab) <= axis.width() - 8 for lab in labels), labels


def test_a_partial_models_name_is_whole_in_the_compare_table(qtbot: Any) -> None:
    """The model column was 190 px: "asyncio-processes · partial (cancelled)" lost its end."""
    from engine.compare import ModelResult

    view = CompareView(lambda t: f"task {t}")
    qtbot.addWidget(view)
    view.resize(1200, 500)
    view.show()
    view.begin(["threads", "asyncio-processes"], "cpu · 8 tasks × 500 ms")
    view.model_done(ModelResult("threads", "complete", run_id=1, tasks=8, wall_s=1.0))
    view.model_done(ModelResult("asyncio-processes", "cancelled", run_id=2, tasks=8,
                                wall_s=0.4, counts={"finished": 2, "cancelled": 6}))
    _settle(qtbot)
    t = view.table
    item = t.item(1, 1)
    assert item.text() == "asyncio-processes · partial (cancelled)"
    assert QFontMetricsF(item.font()).horizontalAdvance(item.text()) + 8 <= t.columnWidth(1)


def test_a_replayed_timeline_names_every_worker_and_its_end(qtbot: Any) -> None:
    """Preset 1 replayed at 1366x768: the asyncio loop, just under the sequential lane, lost
    its name (only "coroutine slot 3", "coroutine slot 6" were left), and the "end" label
    at the right edge read "enc"."""
    from gui.panes import TimelinePane
    from gui.timeline_data import TimelineData

    recs = preset_1_bands()
    models = {1: "sequential", 2: "asyncio", 3: "threads"}
    data = TimelineData(T0)
    data.update(recs, lambda r: models[r])
    pane = TimelinePane(data, lambda: 6.0, lambda t: f"task {t}", lambda t: f"task {t}")
    qtbot.addWidget(pane)
    pane.resize(1366, 200)
    pane.show()
    _settle(qtbot)
    view = pane.timeline
    view.fit()
    _settle(qtbot)
    axis = view.lane_axis
    vb = view.getPlotItem().getViewBox()
    lo, hi = vb.viewRange()[1]
    assert vb.height() / (hi - lo) < axis.line_px()  # fewer labels than lanes: a choice
    names = axis.tickStrings(axis.tickValues(lo, hi, vb.height())[0][1], 1, 1)
    for w in data.workers:
        if w.kind == "loop":
            assert w.label in names, names
    assert names[0].startswith("run1-sequential_0")
    # The end line at the view's right edge: its label inside the view.
    x0, x1 = vb.viewRange()[0]
    view.now_line.set_text("end")
    view.now_line.setValue(x1 - (x1 - x0) * 0.001)
    _settle(qtbot)
    label = view.now_line.label.sceneBoundingRect()
    assert label.right() <= vb.sceneBoundingRect().right() and label.width() > 0
