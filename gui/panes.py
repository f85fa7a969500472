"""The window's two working panes: the timeline with its tools, and the run and task tables.

Each pane builds its views and says what happens in it through signals (a Cancel or Kill
clicked, a task selected); the window decides what that means. The window reads the views
through the panes' attributes (``runs``, ``tasks``, ``proxy``, ``timeline`` ...), which it
also shows as its own.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import engine

from . import theme
from .fitting import ElidedLabel
from .table_delegates import ButtonDelegate, ProgressDelegate, style_table
from .task_filter import TaskFilter
from .task_table import ID_ROLE, RunTableModel, TaskTableModel
from .timeline import TimelineView
from .timeline_data import TimelineData

LIVE_HINT = "wheel: zoom time · Ctrl+wheel: lanes · drag: pan · click: select · F: follow now"
REPLAY_HINT = "wheel: zoom time · Ctrl+wheel: lanes · drag: pan · click: select"
EMPTY_TEXT = ("Nothing has run yet.\nPick a preset on the left, then Start (Ctrl+R):\n"
              "each task appears here as a bar, on the lane of the worker that runs it.")


class TimelinePane(QWidget):
    """The timeline over an info line and the state legend, with its tools (:attr:`tools`:
    Fit, lane height) for the tab bar's corner.

    The info line tells what the bar under the mouse is, or else how to move around: a
    tooltip does that too, but tooltips never show on an X display without a window manager.
    """

    def __init__(self, data: TimelineData, now_s: Callable[[], float],
                 describe: Callable[[int], str], describe_line: Callable[[int], str]) -> None:
        super().__init__()
        self.timeline = TimelineView(data, now_s, describe)
        self.timeline.set_empty_text(EMPTY_TEXT)
        self.describe_line = describe_line
        self.hint_text = LIVE_HINT
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.timeline, 1)
        foot = QHBoxLayout()
        foot.setContentsMargins(6, 1, 8, 1)
        # Never wider than the pane: a line too long ends in "…", never widens the window.
        self.info = ElidedLabel()
        self.info.setObjectName("hint")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        foot.addWidget(self.info, 1)
        self.legend = QLabel("&nbsp;&nbsp;".join(
            f"<span style='color:{theme.STATE_COLORS[st]}'>■</span>&nbsp;"
            f"{theme.STATE_LABELS[st].replace(' ', '&nbsp;')}"
            for st in theme.STATE_ORDER if st is not engine.State.QUEUED))
        # Its whole width where there is room; never a reason for the window to be wider.
        self.legend.setMinimumWidth(120)
        foot.addWidget(self.legend)
        lay.addLayout(foot)
        self.timeline.item.sigHovered.connect(self.show_hovered)
        self.show_hovered(-1)

        self.tools = QWidget()
        tl = QHBoxLayout(self.tools)
        tl.setContentsMargins(0, 0, 6, 0)
        tl.setSpacing(4)
        self.fit_btn = QPushButton("Fit")
        self.fit_btn.setToolTip("Zoom to the runs: every bar and every lane (stops following)")
        self.fit_btn.clicked.connect(self.timeline.fit)
        tl.addWidget(self.fit_btn)
        tl.addSpacing(8)
        tl.addWidget(QLabel("lanes"))
        self.lanes_less = QToolButton()
        self.lanes_less.setText("−")
        self.lanes_less.setToolTip("Fewer, taller lanes (or Ctrl+wheel over the timeline)")
        self.lanes_less.clicked.connect(lambda: self.timeline.zoom_lanes(1 / 1.5))
        self.lanes_more = QToolButton()
        self.lanes_more.setText("+")
        self.lanes_more.setToolTip("More, thinner lanes, up to all of them (or Ctrl+wheel)")
        self.lanes_more.clicked.connect(lambda: self.timeline.zoom_lanes(1.5))
        tl.addWidget(self.lanes_less)
        tl.addWidget(self.lanes_more)

    def set_hint(self, text: str) -> None:
        """How to move around, on the info line while no bar is under the mouse."""
        self.hint_text = text
        self.show_hovered(-1)

    def show_hovered(self, task_id: int) -> None:
        """The bar under the mouse in one line, the whole row to itself (the legend steps
        aside: beside it, at 1366 px, the line lost its worker, times and progress); else the
        hint and the legend."""
        if task_id < 0:
            self.info.setText(f"{self.timeline.axis_title} · {self.hint_text}")
        else:
            self.info.setText(self.describe_line(task_id))
        if self.legend.isHidden() != (task_id >= 0):
            self.legend.setHidden(task_id >= 0)


class TablesPane(QWidget):
    """The Runs table above the Tasks table, with the tasks' filter and count.

    ``cancelRun`` and ``cancelTask`` carry (id, force): a row's Cancel (False) or Kill (True)
    button. ``taskSelected`` carries the task id of the row that became current.
    """

    cancelRun = Signal(int, bool)
    cancelTask = Signal(int, bool)
    taskSelected = Signal(int)

    def __init__(self, now_ns: Callable[[], int], model_of: Callable[[int], str],
                 can_force: Callable[[int], bool], on_gui_loop: Callable[[int], bool]) -> None:
        super().__init__()
        # Runs table
        self.runs = RunTableModel(now_ns, can_force, on_gui_loop)
        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs)
        self.runs_view.setItemDelegateForColumn(RunTableModel.C_PROG, ProgressDelegate(self))
        self.run_cancel = ButtonDelegate(self)
        self.run_cancel.clicked.connect(lambda rid: self.cancelRun.emit(rid, False))
        self.runs_view.setItemDelegateForColumn(RunTableModel.C_CANCEL, self.run_cancel)
        self.run_kill = ButtonDelegate(self)
        self.run_kill.clicked.connect(lambda rid: self.cancelRun.emit(rid, True))
        self.runs_view.setItemDelegateForColumn(RunTableModel.C_FORCE, self.run_kill)
        style_table(self.runs_view)
        rh = self.runs_view.horizontalHeader()
        rh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Narrow enough for a 1100 px window with no horizontal scroll bar (it took a row).
        for col, w in enumerate((50, 110, 170, 100, 200, 76, 80, 64)):
            self.runs_view.setColumnWidth(col, w)
        rh.setStretchLastSection(False)
        rh.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        # One run can be selected (click its row): File > Export selected run trace uses it.
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Two runs at least, above the tasks (a splitter between them moves it).
        self.runs_view.setMinimumHeight(self.rows_height(self.runs_view, 2))

        # Tasks table
        self.tasks = TaskTableModel(now_ns, model_of, can_force)
        self.proxy = TaskFilter()
        self.proxy.setSourceModel(self.tasks)
        self.tasks_view = QTableView()
        self.tasks_view.setModel(self.proxy)
        # Unsorted = task-id order (the source order) until the user clicks a header.
        self.tasks_view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.tasks_view.setSortingEnabled(True)
        self.tasks_view.setItemDelegateForColumn(TaskTableModel.C_PROG, ProgressDelegate(self))
        self.task_cancel = ButtonDelegate(self)
        self.task_cancel.clicked.connect(lambda tid: self.cancelTask.emit(tid, False))
        self.tasks_view.setItemDelegateForColumn(TaskTableModel.C_CANCEL, self.task_cancel)
        self.task_kill = ButtonDelegate(self)
        self.task_kill.clicked.connect(lambda tid: self.cancelTask.emit(tid, True))
        self.tasks_view.setItemDelegateForColumn(TaskTableModel.C_FORCE, self.task_kill)
        style_table(self.tasks_view)
        self.tasks_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        th = self.tasks_view.horizontalHeader()
        for col, w in enumerate((56, 62, 92, 250, 45, 80, 100, 66, 56)):
            self.tasks_view.setColumnWidth(col, w)
        th.setSectionResizeMode(TaskTableModel.C_WORKER, QHeaderView.ResizeMode.Stretch)
        self.tasks_view.selectionModel().currentRowChanged.connect(self._current)

        self.filter_state = QComboBox()
        self.filter_state.addItems(list(TaskFilter.GROUPS))
        self.filter_state.currentTextChanged.connect(self.proxy.set_group)
        self.filter_text = QLineEdit()
        self.filter_text.setPlaceholderText("filter: task id, run3, worker, pid…")
        self.filter_text.setClearButtonEnabled(True)
        self.filter_text.textChanged.connect(self.proxy.set_text)
        self.count = QLabel("")
        self.count.setObjectName("hint")

        self.tasks_view.setMinimumHeight(self.rows_height(self.tasks_view, 3))
        tasks_box = QWidget()
        tlay = QVBoxLayout(tasks_box)
        tlay.setContentsMargins(0, 2, 0, 0)
        tlay.setSpacing(2)
        frow = QHBoxLayout()
        frow.setContentsMargins(0, 0, 6, 0)  # a margin for the count at the right edge
        t2 = QLabel("Tasks")
        t2.setObjectName("paneTitle")
        frow.addWidget(t2)
        frow.addWidget(self.filter_state)
        frow.addWidget(self.filter_text, 1)
        frow.addWidget(self.count)
        tlay.addLayout(frow)
        tlay.addWidget(self.tasks_view, 1)
        self.filter_row_h = frow.sizeHint().height() + 4

        # The Runs table over the Tasks table, a splitter between them.
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.setObjectName("tablesSplit")
        self.split.addWidget(self.runs_view)
        self.split.addWidget(tasks_box)
        self.split.setChildrenCollapsible(False)
        self.split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.split)

    @staticmethod
    def rows_height(view: QTableView, rows: int) -> int:
        """The height a table view needs to show its header and ``rows`` rows whole."""
        return (view.horizontalHeader().sizeHint().height()
                + rows * view.verticalHeader().defaultSectionSize() + 2 * view.frameWidth())

    def height_for(self, runs: int, tasks: int) -> int:
        """This pane's height with ``runs`` rows of runs and ``tasks`` rows of tasks shown."""
        return (self.rows_height(self.runs_view, runs) + self.split.handleWidth()
                + self.filter_row_h + self.rows_height(self.tasks_view, tasks))

    def set_rows(self, runs: int) -> None:
        """Give the Runs table ``runs`` rows; the Tasks table gets the rest."""
        total = sum(self.split.sizes())
        top = self.rows_height(self.runs_view, runs)
        if total > top:
            self.split.setSizes([top, total - top])

    def hide_cancel_columns(self) -> None:
        """A read-only window: no Cancel or Kill buttons in either table."""
        for view, cols in ((self.tasks_view, (TaskTableModel.C_CANCEL, TaskTableModel.C_FORCE)),
                           (self.runs_view, (RunTableModel.C_CANCEL, RunTableModel.C_FORCE))):
            for c in cols:
                view.setColumnHidden(c, True)

    def select_task(self, task_id: int) -> None:
        """Make the task's row current and scroll to it (clearing a filter that hides it)."""
        row = self.tasks.row_of.get(task_id)
        if row is None:
            return
        idx = self.proxy.mapFromSource(self.tasks.index(row, 0))
        if not idx.isValid():
            self.filter_state.setCurrentIndex(0)
            self.filter_text.clear()
            idx = self.proxy.mapFromSource(self.tasks.index(row, 0))
        sel = self.tasks_view.selectionModel()
        sel.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect
                            | QItemSelectionModel.SelectionFlag.Rows)
        self.tasks_view.scrollTo(idx)

    def _current(self, cur: QModelIndex | QPersistentModelIndex, _prev: object) -> None:
        if not cur.isValid():
            return
        src = self.proxy.mapToSource(cur)
        if src.isValid():
            self.taskSelected.emit(self.tasks.recs[src.row()].task_id)

    def selected_run_id(self) -> int | None:
        """The run selected in the Runs table, else the current task's run, else None."""
        rows = self.runs_view.selectionModel().selectedRows()
        if rows:
            rid = rows[0].data(ID_ROLE)
            if rid is not None:
                return int(rid)
        cur = self.tasks_view.currentIndex()
        if cur.isValid():
            src = self.proxy.mapToSource(cur)
            if src.isValid():
                return self.tasks.recs[src.row()].run_id
        return None

    def repaint_running_durations(self) -> None:
        """Repaint the Duration cell of each running task in view: the only cells that move
        with the clock. The whole column strip, finished and queued rows too, was repainted
        five times a second before (issue 17: each cell is Qt's text layout and a Python
        call)."""
        view, proxy, recs = self.tasks_view, self.proxy, self.tasks.recs
        vp = view.viewport()
        if not vp.isVisible() or view.isColumnHidden(TaskTableModel.C_DUR):
            return
        first = view.rowAt(0)
        if first < 0:
            return
        last = view.rowAt(vp.height() - 1)
        if last < 0:
            last = proxy.rowCount() - 1
        x = view.columnViewportPosition(TaskTableModel.C_DUR)
        w = view.columnWidth(TaskTableModel.C_DUR)
        if x + w <= 0 or x >= vp.width():
            return
        index, to_source = proxy.index, proxy.mapToSource
        for row in range(first, last + 1):
            rec = recs[to_source(index(row, 0)).row()]
            if rec.start_ns is not None and rec.end_ns is None:
                vp.update(x, view.rowViewportPosition(row), w, view.rowHeight(row))

    def repaint_running_walls(self) -> None:
        """Repaint the Wall cell of each run still going: between its events only its wall
        moves with the clock."""
        view, runs = self.runs_view, self.runs.runs
        vp = view.viewport()
        if not vp.isVisible() or view.isColumnHidden(RunTableModel.C_WALL):
            return
        x = view.columnViewportPosition(RunTableModel.C_WALL)
        w = view.columnWidth(RunTableModel.C_WALL)
        for row, run in enumerate(runs):
            if not run.done:
                y = view.rowViewportPosition(row)
                if -view.rowHeight(row) < y < vp.height():
                    vp.update(x, y, w, view.rowHeight(row))

    def show_count(self) -> None:
        """How many tasks the filter shows, of how many."""
        shown = self.proxy.rowCount()
        total = self.tasks.rowCount()
        self.count.setText(f"{shown:,} of {total:,} tasks" if shown != total
                           else f"{total:,} tasks")
