"""The window on a laptop's screen, and what it remembers between launches (issue 16, 14).

* At 1366x768 the default layout shows at least 8 task rows, per-core CPU bands tall enough
  for their 0-100% scale, the timeline, and the Compare tab whole (it scrolls); at 1100x700
  no pane collapses into a sliver. The window never grows by itself: not when a comparison
  shows its results (it grew from 1366x740 to 1457x853), not for a long message.
* Form, geometry and pane sizes come back at the next launch (QSettings in a temporary file,
  never the user's); View > Reset layout brings the default back; corrupt or stale settings
  are ignored, never a failed start-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QSettings, QSize
from PySide6.QtWidgets import QApplication, QGroupBox

from gui.main_window import COMPARE_MIN_H, VIEWS_MIN_H, MainWindow

from .helpers import fill
from .test_no_clipping import T0, band_px, line_px, preset_1_bands

WAIT = 30_000


def settle(qtbot: Any) -> None:
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(10)


def at_size(win: Any, qtbot: Any, w: int, h: int) -> None:
    """The window at w x h with its default layout for that size (as on a first launch)."""
    win.resize(w, h)
    settle(qtbot)
    win.default_layout()
    settle(qtbot)


def task_rows(win: Any) -> float:
    v = win.tasks_view
    return v.viewport().height() / v.verticalHeader().defaultSectionSize()


def test_default_layout_at_1366x768_shows_what_a_user_needs(window: Any, qtbot: Any) -> None:
    at_size(window, qtbot, 1366, 768)
    assert window.size() == QSize(1366, 768)
    assert task_rows(window) >= 8
    # Per-core CPU: each band tall enough for its scale (100% and 50% beside every band, 0%
    # at the foot), labels that do not overlap.
    cpu = window.cpu
    band = cpu.band_px()
    assert band >= 2 * cpu.scale_axis.line_px(), band
    labels = cpu.scale_axis.labels(band)
    assert list(labels.values()).count("100%") == cpu.ncores and "0%" in labels.values()
    # The totals plot's scale is whole too (its 0% and 100% sat outside the plot).
    ys = sorted(v for v, _ in cpu.total_plot.getPlotItem().getAxis("left")._tickLevels[0])
    lo, hi = cpu.total_plot.getPlotItem().getViewBox().viewRange()[1]
    assert ys == [0, 50, 100] and lo < 0 and hi > 100
    # The right-edge labels keep a margin from the window's edge.
    total = cpu.total_plot
    assert total.mapTo(window, QPoint(total.width(), 0)).x() <= window.width() - 6
    # The timeline has room for its lanes.
    assert window.timeline.getPlotItem().getViewBox().height() >= 100
    # Every box of the form shows its whole title (8 px from the left, 4 px padding each side).
    for box in window.controls.findChildren(QGroupBox):
        if box.isVisible():
            need = box.fontMetrics().horizontalAdvance(box.title()) + 16
            assert need <= box.width(), (box.title(), need, box.width())
    # The Compare tab: whole, at its readable size, scrolling inside the tab.
    window.show_compare_tab()
    settle(qtbot)
    view = window.compare.view
    assert view.height() >= COMPARE_MIN_H
    bar = window.compare_scroll.verticalScrollBar()
    assert bar.maximum() >= view.height() - window.compare_scroll.viewport().height() - 1
    # Bringing the Compare tab up took nothing from the tables.
    assert task_rows(window) >= 8
    assert window.size() == QSize(1366, 768)
    # Preset 1's three bands (one lane, 8 coroutine slots, 10 threads): each holds its
    # label, and the tab grows (and scrolls) for them; a fixed 400 px minimum squeezed
    # them under the charts.
    view.begin(["sequential", "asyncio", "threads"], "sleep · 20 tasks × 300 ms")
    for rid, model in ((1, "sequential"), (2, "asyncio"), (3, "threads")):
        view.adopt_run(rid, model, T0)
    view.update_tasks(preset_1_bands())
    view.bands.fit()
    settle(qtbot)
    assert band_px(view) >= line_px(view)
    assert view.bands.geometry().bottom() < view.charts.parentWidget().geometry().top()
    assert window.size() == QSize(1366, 768)
    # An export's message is read whole: the least needed readouts step aside for it.
    msg = ("Saved session trace: /home/someone/taskscope-20261205-070112.json (287.9 KB; "
           "3 runs, 60 tasks, 229 samples)")
    window.status_message(msg)
    settle(qtbot)
    bar = window.statusBar()
    taken = sum(w.width() for w in (window.st_gui, window.st_engine, window.st_gil,
                                    window.st_events, window.st_frame, window.st_tasks)
                if w.isVisible())
    assert bar.fontMetrics().horizontalAdvance(msg) + 16 <= bar.width() - taken


def test_at_1100x700_nothing_collapses(window: Any, qtbot: Any) -> None:
    at_size(window, qtbot, 1100, 700)
    assert window.size() == QSize(1100, 700)
    assert window.minimumSizeHint().width() <= 1100
    assert window.minimumSizeHint().height() <= 700
    assert task_rows(window) >= 4
    assert window.runs_view.viewport().height() >= 2 * 22
    assert window.views.height() >= VIEWS_MIN_H
    assert window.timeline.getPlotItem().getViewBox().height() >= 80
    assert window.cpu.band_px() >= window.cpu.scale_axis.line_px()
    assert window.controls_pane.width() >= 330
    # The form is never cut at the right, however narrow its pane is asked to be (a splitter
    # state remembered from an 800 px screen gave it 330 px, and every line lost its end
    # under the scroll bar).
    window.main_split.setSizes([200, 900])
    settle(qtbot)
    c = window.controls
    assert c.width() >= c.minimumSizeHint().width()
    assert c.mapTo(window, c.rect().topRight()).x() < window.main_split.handle(1).x()


def test_the_window_never_resizes_itself(window: Any, qtbot: Any) -> None:
    """A whole comparison, its results, readings and a long message: the size stays."""
    window.resize(1366, 740)
    settle(qtbot)
    size = window.size()
    window.compare.options = {"settle_s": 0.05}
    fill(window, ("sequential", "threads"), "sleep", 4, "50ms", workers="4")
    window.controls.request_start()
    qtbot.waitUntil(lambda: window.compare.job is not None and window.compare.job.done
                    and not window.compare.view.running, timeout=WAIT)
    settle(qtbot)
    assert window.compare.view.result is not None
    window.status_message("Saved session trace: " + "/very/long/path" * 20 + ".json")
    window.controls.say("A long line " * 40)
    settle(qtbot)
    assert window.size() == size


# -- settings ---------------------------------------------------------------------------------
@pytest.fixture
def make_window(qapp: Any, qloop: asyncio.AbstractEventLoop, qtbot: Any,
                leak_check: None) -> Iterator[Callable[..., Any]]:
    """Windows on fresh sessions, with the given settings; closed on teardown."""
    from gui import theme
    from gui.sampling import make_session

    theme.apply(qapp)
    made: list[tuple[Any, Any]] = []

    def make(settings: QSettings) -> Any:
        session = make_session()
        win = MainWindow(session, qloop, settings=settings)
        made.append((win, session))
        win.show()
        settle(qtbot)
        return win

    yield make
    for win, session in made:
        if not win._closed:
            win.close()
            qtbot.waitUntil(lambda w=win: w._closed, timeout=6000)
        win.shutdown_report or session.shutdown()


def close(win: Any, qtbot: Any) -> None:
    win.close()
    qtbot.waitUntil(lambda: win._closed, timeout=6000)


def test_the_window_remembers_its_form_size_and_panes(make_window: Any, qtbot: Any,
                                                      tmp_path: Path) -> None:
    path = str(tmp_path / "taskscope.ini")
    a = make_window(QSettings(path, QSettings.Format.IniFormat))
    c = a.controls
    c.preset.setCurrentIndex(3)  # NumPy releasing the GIL
    c.workers.setText("3")
    c.timeout.setText("2s")
    c.policy.setCurrentText("fail-fast")
    a.resize(790, 720)  # within the offscreen screen (800x800): a restore fits the screen
    settle(qtbot)
    a.default_layout()
    sizes = a.right_split.sizes()
    a.right_split.setSizes([sizes[0] + 30, sizes[1] - 30, sizes[2]])
    settle(qtbot)
    want_form = c.state()
    want_split = a.right_split.sizes()
    close(a, qtbot)

    b = make_window(QSettings(path, QSettings.Format.IniFormat))
    assert b.controls.state() == want_form
    assert b.controls.preset.currentIndex() == 3
    assert "NumPy" in b.controls.story.text()
    assert b.size() == QSize(790, 720)
    assert b.right_split.sizes() == want_split
    # Reset layout: the default pane sizes again (the form keeps its values).
    assert b.act_reset_layout.shortcut().toString() == "Ctrl+Shift+L"
    assert b.act_reset_layout in b.view_menu.actions()
    b.act_reset_layout.trigger()
    settle(qtbot)
    assert b.right_split.sizes() != want_split
    assert b.controls.state() == want_form


def test_corrupt_or_stale_settings_never_break_start_up(make_window: Any, qtbot: Any,
                                                        tmp_path: Path) -> None:
    path = str(tmp_path / "bad.ini")
    s = QSettings(path, QSettings.Format.IniFormat)
    s.setValue("form/state", '{"models": ["nosuch", 3], "workload": "nosuch", "tasks": 12, '
                             '"size": "250ms", "preset": 99, "policy": "never", "gui_loop": "yes"}')
    s.setValue("layout/version", 2)
    s.setValue("layout/geometry", b"garbage")
    s.setValue("layout/rightSplit", b"\x00\xff garbage")
    s.setValue("layout/mainSplit", "not bytes")
    s.sync()
    win = make_window(QSettings(path, QSettings.Format.IniFormat))
    c = win.controls
    assert c.selected_models() == ["threads"]  # the defaults, where the values were bad
    assert c.workload_name() == "cpu" and c.tasks.text() == "8" and c.preset.currentIndex() == 0
    assert c.size.text() == "250ms"  # a sound value among bad ones is kept
    assert c.policy.currentText() == "collect" and not c.gui_loop.isChecked()
    screen = win.screen().availableGeometry().size()
    assert win.width() <= screen.width() and win.height() <= screen.height()
    assert all(x > 0 for x in win.right_split.sizes())
    close(win, qtbot)

    # Not even JSON, and a layout of another version: both ignored.
    s = QSettings(path, QSettings.Format.IniFormat)
    s.setValue("form/state", "{not json")
    s.setValue("layout/version", "x")
    s.sync()
    win = make_window(QSettings(path, QSettings.Format.IniFormat))
    assert win.controls.selected_models() == ["threads"]
    assert all(x > 0 for x in win.right_split.sizes())
