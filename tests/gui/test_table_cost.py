"""A task-table repaint stays cheap and looks exactly as before (gui/task_table.py and the
filter, delegates and task texts beside it).

Under load the window repaints the task table up to 30 times a second, on the GUI thread. It
used to cost 9-10 ms for 16 visible rows: a style drawControl for every button and progress
bar of every row, and about 50 Python calls into the model per row (one ``data`` per role per
cell, each with a ``rowCount`` and a ``columnCount`` for the proxy's index check). Now the
delegates draw cached pixmaps and the proxy answers all of a cell's roles in one call.

These tests pin down both halves: the cached drawing is the style's own drawing (pixel for
pixel; progress bars within one level of 255 on antialiased corners, from compositing a
transparent pixmap), a change of text, state, size, theme, font or pixel ratio never shows a
stale pixmap, and a repaint neither calls the style per row nor the model per role.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import (
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QPoint,
    QRect,
    Qt,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QPainter,
    QPalette,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QProxyStyle,
    QStyleOptionViewItem,
    QTableView,
)

from engine import State, TaskRecord
from gui import theme
from gui.table_delegates import ButtonDelegate, ProgressDelegate, style_table
from gui.task_filter import TaskFilter
from gui.task_table import (
    CELL_ROLE,
    ENABLED_ROLE,
    FILTER_ROLE,
    ID_ROLE,
    PROGRESS_ROLE,
    SORT_ROLE,
    RunTableModel,
    TaskTableModel,
)

C = TaskTableModel
#: The task table's code: its model, filter and delegates, and how a task's worker reads.
TABLE_FILES = ("task_table.py", "task_filter.py", "table_delegates.py", "task_text.py",
               "worker_kind.py")
NOW_NS = 9_000_000_000


def _rows() -> list[TaskRecord]:
    """Every look a row can have: progress 0 / 37% / 100%, running or ended (buttons enabled
    or not), a process run (with Kill) and a coroutine run (no Kill)."""
    looks = [(1, State.RUNNING, 0.0), (1, State.RUNNING, 0.37), (1, State.RUNNING, 1.0),
             (1, State.FINISHED, 1.0), (1, State.QUEUED, 0.0), (1, State.CANCELLED, 0.37),
             (1, State.RUNNING, 0.37), (2, State.RUNNING, 0.0), (2, State.FAILED, 0.37),
             (2, State.RUNNING, 0.37), (2, State.CANCEL_REQUESTED, 0.5), (1, State.RUNNING, 0.0)]
    recs = []
    for i, (run, state, progress) in enumerate(looks):
        r = TaskRecord(task_id=i + 1, run_id=run, index=i, state=state, progress=progress)
        if state is not State.QUEUED:
            r.start_ns, r.pid, r.tid, r.core = 1_000_000_000 + i * 7_000_000, 4242, 4243, i % 2
            r.task_name = f"Task-{i + 1}"
        if state.terminal:
            r.end_ns = r.start_ns + 3_000_000
        recs.append(r)
    return recs


@pytest.fixture
def table(qapp: QApplication, qtbot: Any) -> Iterator[SimpleNamespace]:
    """The task table as the window builds it (gui/main_window.py), every row visible."""
    theme.apply(qapp)
    models = {1: "processes", 2: "asyncio"}
    tasks = TaskTableModel(lambda: NOW_NS, lambda r: models.get(r, ""), lambda r: r == 1)
    proxy = TaskFilter()
    proxy.setSourceModel(tasks)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    view.setSortingEnabled(True)
    progress, cancel, kill = ProgressDelegate(view), ButtonDelegate(view), ButtonDelegate(view)
    view.setItemDelegateForColumn(C.C_PROG, progress)
    view.setItemDelegateForColumn(C.C_CANCEL, cancel)
    view.setItemDelegateForColumn(C.C_FORCE, kill)
    style_table(view)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    for col, w in enumerate((60, 70, 120, 250, 45, 85, 110, 70, 60)):
        view.setColumnWidth(col, w)
    view.horizontalHeader().setSectionResizeMode(C.C_WORKER, QHeaderView.ResizeMode.Stretch)
    recs = _rows()
    tasks.add(recs)
    view.resize(1100, 24 * len(recs) + 40)
    view.show()
    qtbot.waitExposed(view)
    view.selectRow(5)
    cancel._pressed = (2, C.C_CANCEL)  # the mouse is down on row 2's Cancel
    ns = SimpleNamespace(view=view, tasks=tasks, proxy=proxy, recs=recs, progress=progress,
                         cancel=cancel, kill=kill, delegates=(progress, cancel, kill))
    yield ns
    view.setStyle(None)  # before any test-made style goes away


def _cached(t: SimpleNamespace, on: bool) -> None:
    for d in t.delegates:
        d.cache_enabled = on


def _grab(t: SimpleNamespace) -> QImage:
    t.view.viewport().repaint()
    return t.view.viewport().grab().toImage()


def _pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_ARGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return a[:, : img.width() * 4].reshape(img.height(), img.width(), 4).astype(int)


def _column_diffs(t: SimpleNamespace, a: QImage, b: QImage) -> dict[int, int]:
    """Largest channel difference per column (in device pixels of the images)."""
    pa, pb = _pixels(a), _pixels(b)
    assert pa.shape == pb.shape
    scale = a.width() / t.view.viewport().width()
    out = {}
    for col in range(len(C.COLS)):
        x0 = round(t.view.columnViewportPosition(col) * scale)
        x1 = round(x0 + t.view.columnWidth(col) * scale)
        out[col] = int(np.abs(pa[:, x0:x1] - pb[:, x0:x1]).max())
    return out


def _assert_same_look(t: SimpleNamespace, cached: QImage, drawn: QImage) -> None:
    """Identical, except up to 1/255 on a progress bar's antialiased edge pixels (a
    transparent pixmap composited over the row rounds them differently by one)."""
    diffs = _column_diffs(t, cached, drawn)
    assert diffs[C.C_PROG] <= 1, diffs
    assert all(d == 0 for c, d in diffs.items() if c != C.C_PROG), diffs


def _cell(t: SimpleNamespace, img: QImage, row: int, col: int) -> np.ndarray:
    r = t.view.visualRect(t.proxy.index(row, col))
    return _pixels(img)[r.top():r.bottom() + 1, r.left():r.right() + 1]


def test_cached_buttons_and_bars_look_as_the_style_draws_them(table: SimpleNamespace) -> None:
    t = table
    _cached(t, False)
    drawn = _grab(t)
    _cached(t, True)
    first = _grab(t)  # renders each look once
    renders = [d.cache.renders for d in t.delegates]
    again = _grab(t)  # every cell from the cache
    assert [d.cache.renders for d in t.delegates] == renders
    _assert_same_look(t, first, drawn)
    assert first == again
    # One render per look, not per row: Cancel enabled / pressed / disabled, Kill enabled /
    # disabled, progress by (value, text).
    assert t.cancel.cache.renders <= 3
    assert t.kill.cache.renders <= 2
    assert t.progress.cache.renders <= len({(r.progress, r.state.terminal) for r in t.recs})
    # The looks really differ (rows of equal parity share a background).
    def same(a: int, b: int, col: int) -> bool:
        return bool((_cell(t, first, a, col) == _cell(t, first, b, col)).all())

    assert not same(0, 2, C.C_CANCEL)  # pressed
    assert same(0, 4, C.C_CANCEL) and same(0, 6, C.C_CANCEL)  # queued, running: enabled
    assert not same(0, 8, C.C_CANCEL)  # failed: disabled
    assert not same(0, 8, C.C_FORCE)  # a coroutine has no Kill button
    assert not same(4, 6, C.C_PROG)  # queued 0% vs running 37%
    assert not same(0, 2, C.C_PROG)  # 0% vs 100%


class _Counting(QProxyStyle):
    """Counts the style's drawControl calls by element name."""

    def __init__(self) -> None:
        super().__init__(QApplication.style().name())
        self.counts: dict[str, int] = {}

    def drawControl(self, el: Any, opt: Any, p: Any, w: Any = None) -> None:  # noqa: N802
        self.counts[el.name] = self.counts.get(el.name, 0) + 1
        super().drawControl(el, opt, p, w)

    def controls(self) -> int:
        """Button and progress bar draws (the parts the delegates ask for)."""
        return sum(n for k, n in self.counts.items()
                   if k.startswith(("CE_PushButton", "CE_ProgressBar")))


def test_a_repaint_draws_no_control_per_row_once_cached(table: SimpleNamespace) -> None:
    t = table
    style = _Counting()
    t.view.setStyle(style)
    try:
        _cached(t, False)
        t.view.viewport().repaint()
        assert style.controls() >= 2 * len(t.recs)  # the counting sees the delegates' draws
        _cached(t, True)
        t.view.viewport().repaint()
        style.counts.clear()
        for _ in range(3):
            t.view.viewport().repaint()
        assert style.controls() == 0, style.counts
        assert style.counts.get("CE_ItemViewItem", 0) > 0  # the text cells were painted
        # One bar moves: that bar, and only it, is drawn by the style again.
        t.recs[1].progress = 0.38
        t.tasks.changed([t.recs[1].task_id])
        t.view.viewport().repaint()
        assert 1 <= style.controls() <= 4, style.counts  # one bar (groove, contents, label)
    finally:
        t.view.setStyle(None)


def test_a_bar_value_seen_once_is_drawn_in_place_and_kept_from_its_second_paint(
        table: SimpleNamespace) -> None:
    """A running bar shows a new value on every table tick: it is drawn straight the first
    time and rendered into a pixmap only when the same look shows again."""
    t = table
    vp = t.view.viewport()
    vp.repaint()
    vp.repaint()  # every look on screen seen twice: kept
    renders = t.progress.cache.renders
    t.recs[1].progress = 0.41  # a value no bar has shown
    t.tasks.changed([t.recs[1].task_id])
    vp.repaint()
    assert t.progress.cache.renders == renders  # drawn in place
    vp.repaint()
    assert t.progress.cache.renders == renders + 1  # seen again: kept
    vp.repaint()
    assert t.progress.cache.renders == renders + 1  # and blitted from then on


def _repaint_calls(t: SimpleNamespace) -> dict[str, int]:
    """Python calls into the task table's modules (its model, filter and delegates) during one
    viewport repaint, by function name."""
    calls: dict[str, int] = {}

    def prof(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.endswith(TABLE_FILES):
            name = frame.f_code.co_name
            calls[name] = calls.get(name, 0) + 1

    sys.setprofile(prof)
    try:
        t.view.viewport().repaint()
    finally:
        sys.setprofile(None)
    return calls


def test_a_repaint_asks_the_model_once_per_cell_not_once_per_role(
        table: SimpleNamespace) -> None:
    t = table
    t.view.viewport().repaint()  # caches warm
    calls = _repaint_calls(t)
    rows = len(t.recs)
    text_cells = rows * (len(C.COLS) - 3)
    assert calls.get("multiData", 0) == text_cells
    # Before: a data() per role per cell, ~48 per row. Now only the delegates' one each.
    assert calls.get("data", 0) <= 3 * rows, calls
    assert sum(calls.values()) <= 120 * rows, calls  # was ~165 per row
    t0 = time.perf_counter()
    for _ in range(20):
        t.view.viewport().repaint()
    assert time.perf_counter() - t0 < 2.0  # ~5 ms each here; only a gross regression fails


def test_multidata_answers_what_data_answers(table: SimpleNamespace) -> None:
    """TaskFilter.multiData (one call for all roles) agrees with data() role by role, on
    every column, through the proxy, sorted and filtered too."""
    t = table
    roles = [int(r) for r in Qt.ItemDataRole if int(r) < 32] + [
        int(r) for r in (PROGRESS_ROLE, ENABLED_ROLE, SORT_ROLE, ID_ROLE, FILTER_ROLE, CELL_ROLE)]

    def check() -> None:
        assert t.proxy.rowCount() > 0
        for row in range(t.proxy.rowCount()):
            for col in range(len(C.COLS)):
                ix = t.proxy.index(row, col)
                for role in roles:
                    rd = QModelRoleData(role)
                    rd.setData("stale")  # multiData must overwrite (or clear) every role
                    t.proxy.multiData(ix, QModelRoleDataSpan(rd))
                    assert rd.data() == t.proxy.data(ix, role), (row, col, role)

    check()
    t.proxy.sort(C.C_PROG, Qt.SortOrder.DescendingOrder)
    check()
    t.proxy.set_group("running")
    check()
    # The whole view, drawn from multiData or from Qt's one data() per role: the same.
    t.proxy.set_group("all states")
    drawn = _grab(t)
    fill, t.proxy._fill = t.proxy._fill, None
    try:
        assert _grab(t) == drawn
    finally:
        t.proxy._fill = fill


def test_models_keep_qt_model_contract(qapp: QApplication, qtlog: Any) -> None:
    """Qt's model tester finds nothing wrong with the fast paths (rowCount, columnCount,
    data) while rows are added, changed, sorted, filtered and cleared."""
    from PySide6.QtTest import QAbstractItemModelTester

    tasks = TaskTableModel(lambda: NOW_NS, lambda r: "processes", lambda r: True)
    proxy = TaskFilter()
    proxy.setSourceModel(tasks)
    mode = QAbstractItemModelTester.FailureReportingMode.Warning
    testers = [QAbstractItemModelTester(m, mode) for m in (tasks, proxy)]
    recs = _rows()
    tasks.add(recs[:5])
    tasks.add(recs[5:])
    recs[0].progress = 0.5
    tasks.changed([r.task_id for r in recs])
    proxy.sort(C.C_DUR, Qt.SortOrder.DescendingOrder)
    proxy.set_text("run2")
    proxy.set_text("")
    tasks.clear()
    tasks.add(recs)
    runs = RunTableModel(lambda: NOW_NS, lambda r: True, lambda r: False)
    testers.append(QAbstractItemModelTester(runs, mode))
    assert tasks.rowCount() == len(recs) and tasks.columnCount() == len(C.COLS)
    valid = tasks.index(0, 0)
    assert tasks.rowCount(valid) == 0 and tasks.columnCount(valid) == 0
    assert tasks.data(QModelIndex()) is None
    assert tasks.data(valid, Qt.ItemDataRole.DecorationRole) is None
    assert not tasks.index(len(recs), 0).isValid() and not tasks.index(0, len(C.COLS)).isValid()
    failures = [r.message for r in qtlog.records if "FAIL" in r.message]
    assert not failures, failures
    del testers


# -- one delegate, rendered straight into an image ------------------------------------------

def _paint_cell(delegate: Any, data: tuple[Any, Any], size: tuple[int, int], cached: bool,
                dpr: float = 1.0, font: QFont | None = None) -> QImage:
    """Paint one cell holding ``data`` (CELL_ROLE) with ``delegate`` into a new image."""
    model = QStandardItemModel(1, 1)
    item = QStandardItem()
    item.setData(data, CELL_ROLE)
    model.setItem(0, 0, item)
    w, h = size
    img = QImage(round(w * dpr), round(h * dpr), QImage.Format.Format_ARGB32_Premultiplied)
    img.setDevicePixelRatio(dpr)
    img.fill(QColor(theme.PANEL))
    p = QPainter(img)
    if font is not None:
        p.setFont(font)
    opt = QStyleOptionViewItem()
    opt.rect = QRect(0, 0, w, h)
    delegate.cache_enabled = cached
    delegate.paint(p, opt, model.index(0, 0))
    p.end()
    return img


def _max_diff(a: QImage, b: QImage) -> int:
    return int(np.abs(_pixels(a) - _pixels(b)).max())


BUTTONS = [(("Cancel", True), False), (("Cancel", False), False), (("Cancel", True), True),
           (("Kill", True), False), (("Kill", False), False), (("Stop", True), False)]
BARS = [(0.0, "0%"), (0.37, "37%"), (1.0, "100%"), (0.37, "3/8"), (0.75, "3/8")]


def _button(d: ButtonDelegate, data: tuple[str, bool], pressed: bool, size: tuple[int, int],
            cached: bool, **kw: Any) -> QImage:
    d._pressed = (0, 0) if pressed else None  # the mouse is down on it, or not
    return _paint_cell(d, data, size, cached, **kw)


@pytest.mark.parametrize("dpr", [1.0, 2.0])
def test_each_look_is_its_own_pixmap_and_matches_the_style(qapp: QApplication,
                                                            dpr: float) -> None:
    """Button states and bar values: the cached image is the style's image, and painting one
    look after another with the same delegate never shows the previous one (text, state or
    value change)."""
    theme.apply(qapp)
    d = ButtonDelegate()
    size = (70, 24)
    seen = []
    for data, pressed in BUTTONS:
        drawn = _button(d, data, pressed, size, cached=False, dpr=dpr)
        cached = _button(d, data, pressed, size, cached=True, dpr=dpr)
        again = _button(d, data, pressed, size, cached=True, dpr=dpr)
        assert cached == drawn and again == drawn, (data, pressed)
        assert all(drawn != s for s in seen), (data, pressed)
        seen.append(drawn)
    bars = ProgressDelegate()
    seen = []
    for frac, text in BARS:
        drawn = _paint_cell(bars, (frac, text), (110, 24), cached=False, dpr=dpr)
        _paint_cell(bars, (frac, text), (110, 24), cached=True, dpr=dpr)  # seen: drawn
        cached = _paint_cell(bars, (frac, text), (110, 24), cached=True, dpr=dpr)  # kept
        assert _max_diff(cached, drawn) <= 1, (frac, text)
        assert all(_max_diff(drawn, s) > 1 for s in seen), (frac, text)
        seen.append(drawn)


def test_size_font_pixel_ratio_and_palette_changes_redraw(qapp: QApplication) -> None:
    theme.apply(qapp)
    d = ButtonDelegate()
    bars = ProgressDelegate()
    data, bar = ("Cancel", True), (0.37, "37%")

    def both(**kw: Any) -> list[tuple[QImage, QImage]]:
        """(cached, drawn) for a button and a bar, painted with ``kw``."""
        return [(_button(d, data, False, (70, 24), cached=True, **kw),
                 _button(d, data, False, (70, 24), cached=False, **kw)),
                (_paint_cell(bars, bar, (110, 24), cached=True, **kw),
                 _paint_cell(bars, bar, (110, 24), cached=False, **kw))]

    def check(pairs: list[tuple[QImage, QImage]]) -> list[QImage]:
        (bc, bd), (pc, pd) = pairs
        assert bc == bd
        assert _max_diff(pc, pd) <= 1
        return [bc, pc]

    both()  # each look seen once (a bar's first paint is drawn in place, not kept)
    base = check(both())
    # A wider button: a new pixmap at the new size, not the old one stretched or clipped.
    wide_c = _button(d, data, False, (90, 24), cached=True)
    assert wide_c == _button(d, data, False, (90, 24), cached=False)
    assert wide_c.size() != base[0].size()
    # A bigger font, a 2x screen, a new palette: each redraws.
    big = QFont(qapp.font())
    big.setPointSizeF(big.pointSizeF() * 1.6)
    both(font=big)
    changed = check(both(font=big))
    assert changed[0] != base[0] and _max_diff(changed[1], base[1]) > 1
    both(dpr=2.0)
    hi = check(both(dpr=2.0))
    assert hi[0].size() == base[0].size() * 2
    old = QApplication.palette()
    try:
        pal = QPalette(old)
        pal.setColor(QPalette.ColorRole.Button, QColor("#7a3030"))
        pal.setColor(QPalette.ColorRole.ButtonText, QColor("#ffff00"))
        pal.setColor(QPalette.ColorRole.Highlight, QColor("#30a030"))
        QApplication.setPalette(pal)
        themed = check(both())
        assert themed[0] != base[0] and _max_diff(themed[1], base[1]) > 1
    finally:
        QApplication.setPalette(old)
    assert check(both()) == base  # back to the first theme: its look again, not the red one


def test_view_changes_never_show_a_stale_pixmap(table: SimpleNamespace, qapp: QApplication
                                                ) -> None:
    """In the real view: a new value, a resized column, a new view font, a new palette and a
    rendering at twice the pixel ratio each look exactly as the style draws them."""
    t = table

    def compare(grab: Callable[[], QImage]) -> QImage:
        _cached(t, True)
        grab()  # warm the cache for whatever is now on screen
        cached = grab()
        _cached(t, False)
        drawn = grab()
        _cached(t, True)
        _assert_same_look(t, cached, drawn)
        return cached

    def viewport_2x() -> QImage:
        vp = t.view.viewport()
        pm = QPixmap(vp.size() * 2)
        pm.setDevicePixelRatio(2.0)
        vp.render(pm, QPoint())
        return pm.toImage()

    base = compare(lambda: _grab(t))
    t.recs[1].progress = 0.38
    t.tasks.changed([t.recs[1].task_id])
    assert compare(lambda: _grab(t)) != base
    t.view.setColumnWidth(C.C_CANCEL, 90)
    t.view.setColumnWidth(C.C_PROG, 130)
    compare(lambda: _grab(t))
    font = QFont(t.view.font())
    font.setPointSizeF(font.pointSizeF() * 1.3)
    t.view.setFont(font)
    compare(lambda: _grab(t))
    # Rendered into a 2x pixmap, the delegates draw 2x pixmaps (not the 1x ones, scaled).
    # Not compared with the uncached drawing here: QWidget.render() leaves the painter's
    # device() at the 1x widget, so Fusion draws its own cached button panel at 1x and scales
    # it (blurred edges), while the delegate's 2x pixmap gets a sharp one. On a real 2x screen
    # both are sharp and equal: test_each_look_is_its_own_pixmap_and_matches_the_style[2.0].
    _cached(t, True)
    hi = viewport_2x()
    assert hi.width() == 2 * t.view.viewport().width()
    for d in t.delegates:
        assert d.cache.pixmaps
        assert all(pm.devicePixelRatio() == 2.0 for pm in d.cache.pixmaps.values())
    compare(lambda: _grab(t))  # back at 1x: 1x pixmaps again
    assert all(pm.devicePixelRatio() == 1.0 for pm in t.cancel.cache.pixmaps.values())
    old = QApplication.palette()
    try:
        pal = QPalette(old)
        pal.setColor(QPalette.ColorRole.Button, QColor("#7a3030"))
        QApplication.setPalette(pal)
        compare(lambda: _grab(t))
    finally:
        QApplication.setPalette(old)
    compare(lambda: _grab(t))
