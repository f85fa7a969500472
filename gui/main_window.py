"""The main window: controls on the left; CPU, timeline and tables on the right.

Responsive by construction: ONE frame timer (about 30 Hz) drains the engine's events and
samples in batches and updates every view in bulk. Nothing here subscribes to single events,
and nothing here does engine work: starting, cancelling and shutting down are single calls
into :class:`engine.Session`, which return at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Literal

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

import engine
from engine import Pumped, RunSpec, SessionAPI, SpecError, TaskRecord
from engine.clock import now_ns
from engine.trace import Replay

from . import theme
from .controls import Controls
from .cpu_view import CpuView
from .sampling import attach, detach
from .table_delegates import ButtonDelegate, ProgressDelegate, style_table
from .task_filter import TaskFilter
from .task_table import RunTableModel, TaskTableModel, fmt_s, worker_text
from .timeline import TimelineView
from .timeline_data import TimelineData

FRAME_MS = 33
IDLE_FRAME_MS = 400  # see MainWindow._pace
IDLE_STATUS_S = 0.5  # see MainWindow.frame: the status bar's figures while idle
TABLE_TICK_FRAMES = 6  # see MainWindow.frame: durations in the task table move at 5 Hz
TABLE_OFFSET_MS = FRAME_MS // 2  # see MainWindow._table_paint
CLOSE_TIMEOUT_S = 1.5
#: Tasks the tables and the timeline keep. Past it, the oldest *finished* runs leave the view
#: (down to 3/4 of it, so this is not redone every frame); active runs always stay.
MAX_SHOWN_TASKS = 1_000_000


class MainWindow(QMainWindow):
    """TaskScope's window. Pass the session and the GUI's (qasync) event loop.

    With ``replay`` (a trace read by :func:`engine.trace.load_trace`) and no session, the same
    window shows that trace read-only: nothing to start or cancel (see :mod:`gui.replay`).
    """

    closed = Signal()

    def __init__(self, session: SessionAPI | None, loop: asyncio.AbstractEventLoop | None = None,
                 *, replay: Replay | None = None, timeline: TimelineData | None = None) -> None:
        super().__init__()
        self._timeline_ready = timeline  # a replay's bars, laid out off the GUI thread
        if (session is None) == (replay is None):
            raise ValueError("MainWindow needs a session (live) or a replay, not both")
        self.session = session
        self.replay = replay
        self.store = replay.store if replay is not None else session.store  # type: ignore[union-attr]
        self.loop = loop
        self.t0_ns = replay.origin_ns if replay is not None else now_ns()
        #: Replay: the trace's last instant; "now" stands still there. Live: None.
        self.end_ns: int | None = None
        if replay is not None:
            from .replay import replay_end_ns

            self.end_ns = replay_end_ns(replay)
        self.setWindowTitle("TaskScope: Python concurrency, live")
        self.resize(1500, 940)

        self.run_model: dict[int, str] = {}
        self.run_force: dict[int, bool] = {}
        self.run_gui_loop: dict[int, bool] = {}
        self.ev_cursor = 0
        self.sample_cursor = 0
        self.dropped = 0
        self.ev_window: deque[tuple[float, int]] = deque()
        self.frame_ms: deque[float] = deque(maxlen=90)
        self.last_sample: Any = None
        self._frames = 0
        self._closing = False
        self._closed = False
        self._close_future: asyncio.Future[None] | None = None
        self.shutdown_report: engine.ShutdownReport | None = None
        #: Why the engine process stopped, if it did while the window was open.
        self.engine_gone: str | None = None

        self._build()
        from .file_menu import FileMenu

        self.files = FileMenu(self)
        self.sampler = attach(session, loop) if loop is not None and session is not None else None
        self.frame_timer = QTimer(self)
        self.frame_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.frame_timer.setInterval(FRAME_MS)
        self.frame_timer.timeout.connect(self.frame)
        self._busy_at = time.monotonic()  # see _pace
        self._status_at = float("-inf")  # see frame
        # The task table repaints half a frame after the frame that changed it (see
        # _table_paint), so it is never painted in the same pass as the timeline.
        self._table_changed: set[int] = set()
        self._table_tick = False
        self._table_timer = QTimer(self)
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(TABLE_OFFSET_MS)
        self._table_timer.timeout.connect(self._table_paint)
        if replay is not None:
            from .replay import enter_replay_mode

            enter_replay_mode(self, replay)  # draws the whole trace once; no frame timer
        else:
            self.frame_timer.start()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.controls = Controls()
        self.controls.startRequested.connect(self.start_runs)
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(330)
        scroll.setMaximumWidth(420)
        self.controls_pane = scroll

        self.cpu = CpuView(len(self._cores()))

        self.tl_data = self._timeline_ready or TimelineData(self.t0_ns)
        self.timeline = TimelineView(self.tl_data, self.now_s, self.describe_task)
        self.timeline.sigTaskClicked.connect(self.select_task)
        tl_box = QWidget()
        tl_lay = QVBoxLayout(tl_box)
        tl_lay.setContentsMargins(0, 0, 0, 0)
        tl_lay.setSpacing(2)
        head = QHBoxLayout()
        title = QLabel("Timeline · one lane per real worker")
        title.setObjectName("paneTitle")
        head.addWidget(title)
        head.addSpacing(12)
        for st in theme.STATE_ORDER:
            if st is engine.State.QUEUED:
                continue
            sw = QLabel(f"<span style='color:{theme.STATE_COLORS[st]}'>■</span> "
                        f"{theme.STATE_LABELS[st]}")
            head.addWidget(sw)
        head.addStretch(1)
        self.tl_hint = QLabel("wheel: zoom · drag: pan · click: select · F: follow now")
        self.tl_hint.setObjectName("hint")
        head.addWidget(self.tl_hint)
        tl_lay.addLayout(head)
        tl_lay.addWidget(self.timeline, 1)

        # Runs table
        self.runs = RunTableModel(self.clock_ns, self.can_force, lambda r: self.run_gui_loop.get(r, False))
        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs)
        self.runs_view.setItemDelegateForColumn(RunTableModel.C_PROG, ProgressDelegate(self))
        self.run_cancel = ButtonDelegate(self)
        self.run_cancel.clicked.connect(lambda rid: self.command("cancel_run", rid))
        self.runs_view.setItemDelegateForColumn(RunTableModel.C_CANCEL, self.run_cancel)
        self.run_kill = ButtonDelegate(self)
        self.run_kill.clicked.connect(lambda rid: self.command("cancel_run", rid, True))
        self.runs_view.setItemDelegateForColumn(RunTableModel.C_FORCE, self.run_kill)
        style_table(self.runs_view)
        rh = self.runs_view.horizontalHeader()
        rh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, w in enumerate((60, 150, 170, 150, 260, 80, 90, 80)):
            self.runs_view.setColumnWidth(col, w)
        rh.setStretchLastSection(False)
        rh.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        # One run can be selected (click its row): File > Export selected run trace uses it.
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_view.setMinimumHeight(24 * 4 + 26)

        # Tasks table
        self.tasks = TaskTableModel(self.clock_ns, lambda r: self.run_model.get(r, ""), self.can_force)
        self.proxy = TaskFilter()
        self.proxy.setSourceModel(self.tasks)
        self.tasks_view = QTableView()
        self.tasks_view.setModel(self.proxy)
        # Unsorted = task-id order (the source order) until the user clicks a header.
        self.tasks_view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.tasks_view.setSortingEnabled(True)
        self.tasks_view.setItemDelegateForColumn(TaskTableModel.C_PROG, ProgressDelegate(self))
        self.task_cancel = ButtonDelegate(self)
        self.task_cancel.clicked.connect(lambda tid: self.command("cancel_task", tid))
        self.tasks_view.setItemDelegateForColumn(TaskTableModel.C_CANCEL, self.task_cancel)
        self.task_kill = ButtonDelegate(self)
        self.task_kill.clicked.connect(lambda tid: self.command("cancel_task", tid, True))
        self.tasks_view.setItemDelegateForColumn(TaskTableModel.C_FORCE, self.task_kill)
        style_table(self.tasks_view)
        self.tasks_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        th = self.tasks_view.horizontalHeader()
        for col, w in enumerate((60, 70, 120, 250, 45, 85, 110, 70, 60)):
            self.tasks_view.setColumnWidth(col, w)
        th.setSectionResizeMode(TaskTableModel.C_WORKER, QHeaderView.ResizeMode.Stretch)
        self.tasks_view.selectionModel().currentRowChanged.connect(self._table_current)

        self.filter_state = QComboBox()
        self.filter_state.addItems(list(TaskFilter.GROUPS))
        self.filter_state.currentTextChanged.connect(self.proxy.set_group)
        self.filter_text = QLineEdit()
        self.filter_text.setPlaceholderText("filter: task id, run3, worker, pid…")
        self.filter_text.setClearButtonEnabled(True)
        self.filter_text.textChanged.connect(self.proxy.set_text)
        self.table_count = QLabel("")
        self.table_count.setObjectName("hint")

        tables = QWidget()
        tlay = QVBoxLayout(tables)
        tlay.setContentsMargins(0, 0, 0, 0)
        tlay.setSpacing(3)
        t1 = QLabel("Runs")
        t1.setObjectName("paneTitle")
        tlay.addWidget(t1)
        tlay.addWidget(self.runs_view, 2)
        frow = QHBoxLayout()
        t2 = QLabel("Tasks")
        t2.setObjectName("paneTitle")
        frow.addWidget(t2)
        frow.addWidget(self.filter_state)
        frow.addWidget(self.filter_text, 1)
        frow.addWidget(self.table_count)
        tlay.addLayout(frow)
        tlay.addWidget(self.tasks_view, 5)

        # Compare mode (issue 5): several models run one after another; its view is a tab.
        from PySide6.QtWidgets import QTabWidget

        from .compare_mode import CompareMode

        self.compare = CompareMode(self)
        self.views = QTabWidget()
        self.views.setDocumentMode(True)
        self.views.addTab(tl_box, "Timeline")
        self.views.addTab(self.compare.view, "Compare")
        right = self.right_split = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.cpu)
        right.addWidget(self.views)
        right.addWidget(tables)
        right.setSizes([250, 330, 360])
        right.setChildrenCollapsible(False)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setSizes([350, 1150])
        split.setStretchFactor(1, 1)
        self.setCentralWidget(split)

        # Toolbar and shortcuts
        tb = self.toolbar = QToolBar("Run")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(tb)
        self.act_start = QAction("▶ Start", self)
        self.act_start.setShortcut(QKeySequence("Ctrl+R"))
        self.act_start.setToolTip("Start a run (one model ticked) or a comparison: several "
                                  "models run one after another, never at once (Ctrl+R)")
        self.act_start.triggered.connect(self.controls.request_start)
        self.act_cancel_all = QAction("■ Cancel all", self)
        self.act_cancel_all.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.act_cancel_all.setToolTip(
            "Cancel every active run (Esc). Cooperative: threads stop at their next check")
        self.act_cancel_all.triggered.connect(self.cancel_all)
        self.act_kill_all = QAction("✖ Force cancel all", self)
        self.act_kill_all.setToolTip(
            "Cancel everything and kill busy worker processes (threads cannot be killed)")
        self.act_kill_all.triggered.connect(lambda: self.cancel_all(force=True))
        self.act_follow = QAction("⇥ Follow now", self)
        self.act_follow.setCheckable(True)
        self.act_follow.setChecked(True)
        self.act_follow.setShortcut(QKeySequence("F"))
        self.act_follow.setToolTip("Keep the timeline scrolling with the 'now' line (F)")
        self.act_follow.toggled.connect(self.timeline.set_follow)
        self.act_clear = QAction("Clear finished", self)
        self.act_clear.setToolTip("Remove ended runs from the tables and the timeline")
        self.act_clear.triggered.connect(self.clear_finished)
        for a in (self.act_start, self.act_cancel_all, self.act_kill_all):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_follow, self.act_clear):
            tb.addAction(a)
        self.act_code = QAction("</> Show code", self)
        self.act_code.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.act_code.setToolTip("The standalone Python script for this configuration, one tab "
                                 "per model (Ctrl+Shift+C)")
        self.act_code.triggered.connect(self.show_code)
        self.controls.showCodeRequested.connect(self.show_code)
        tb.addSeparator()
        tb.addAction(self.act_code)
        for a in (self.act_start, self.act_cancel_all, self.act_follow, self.act_code):
            # Application-wide: the shortcuts work whichever pane (or floating tooltip) has focus.
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            self.addAction(a)

        # Status bar
        sb = self.statusBar()
        self.st_gui = QLabel("GUI loop lag –")
        self.st_engine = QLabel("engine loop lag –")
        self.st_gil = QLabel("GIL wait –")
        self.st_events = QLabel("0 events/s")
        self.st_frame = QLabel("frame –")
        self.st_tasks = QLabel("")
        tips = {
            self.st_gui: "Worst lateness of a timer on this window's event loop over the last "
                         "second (every 20 ms while anything runs, every 250 ms while idle). "
                         "Over ~50 ms the window feels sluggish.",
            self.st_engine: "Worst lateness of a timer on the engine's own asyncio loop "
                            "(where coroutine workloads run), in the engine process.",
            self.st_gil: "Share of time a probe thread in the engine process waited for the "
                         "GIL: how much that process's CPU-bound Python threads (the threads "
                         "model) contend. The window has a process, and a GIL, of its own. "
                         "Measured only while a run is active: between runs the probe rests.",
            self.st_events: "Task events the engine recorded per second (queued, started, "
                            "progress, ended, …).",
            self.st_frame: "Time this window spent on its last frames (draining + drawing).",
        }
        for w in (self.st_gui, self.st_engine, self.st_gil, self.st_events, self.st_frame,
                  self.st_tasks):
            w.setToolTip(tips.get(w, ""))
            w.setMinimumWidth(110)
            # Opaque, like the CPU pane's readouts: nothing under a label is repainted with it.
            w.setAutoFillBackground(True)
            sb.addPermanentWidget(w)
        self.st_gui.setMinimumWidth(180)
        self.st_engine.setMinimumWidth(195)
        self.st_frame.setMinimumWidth(190)
        self.st_events.setMinimumWidth(120)
        self.st_tasks.setMinimumWidth(190)

    def _cores(self) -> list[float]:
        if self.replay is not None:  # the traced machine's cores, not this one's
            last = self.replay.samples[-1] if self.replay.samples else None
            return [0.0] * max(1, len(last.cores) if last is not None else 1)
        import psutil

        return psutil.cpu_percent(percpu=True) or [0.0]

    # -- helpers -------------------------------------------------------------------------------------
    def clock_ns(self) -> int:
        """Now (live), or the end of the trace (replay: time stands still there)."""
        return now_ns() if self.end_ns is None else self.end_ns

    def now_s(self) -> float:
        return (self.clock_ns() - self.t0_ns) / 1e9

    def can_force(self, run_id: int) -> bool:
        return self.run_force.get(run_id, False)

    def rel(self, t_ns: int | None) -> str:
        return "" if t_ns is None else f"{(t_ns - self.t0_ns) / 1e9:.3f} s"

    def describe_task(self, task_id: int) -> str:
        r = self.store.task(task_id)
        if r is None:
            return f"task {task_id}"
        model = self.run_model.get(r.run_id, "")
        lines = [
            f"<b>task {r.task_id}</b> · run {r.run_id} #{r.index} · "
            f"<span style='color:{theme.STATE_COLORS[r.state]}'>{theme.STATE_LABELS[r.state]}"
            "</span>",
            f"worker: {worker_text(r, model)} · pid {r.pid} · tid {r.tid}",
        ]
        if r.task_name:
            lines.append(f"asyncio task: {r.task_name}")
        lines.append(f"core: {r.core if r.core >= 0 else 'unknown'} (when last reported)")
        lines.append(f"queued {self.rel(r.queued_ns)} · started {self.rel(r.start_ns)}"
                     + (f" · ended {self.rel(r.end_ns)}" if r.end_ns else ""))
        if r.start_ns is not None:
            dur = ((r.end_ns or self.clock_ns()) - r.start_ns) / 1e9
            lines.append(f"waited {fmt_s((r.start_ns - r.queued_ns) / 1e9)} · "
                         f"ran {fmt_s(dur)} · progress {r.progress * 100:.0f}%")
        if r.cancel_requested_ns:
            lines.append(f"cancel requested at {self.rel(r.cancel_requested_ns)}")
        if r.reason:
            lines.append(f"reason: {r.reason}")
        if r.error:
            msg = str(r.error.get("message", ""))[:200]
            lines.append(f"<span style='color:{theme.ERROR}'>{r.error.get('type', 'error')}: "
                         f"{msg}</span>")
        return "<br>".join(lines)

    # -- commands -----------------------------------------------------------------------------------
    def start_runs(self, specs: list[RunSpec], on_gui_loop: bool = False) -> list[int]:
        """Start one run per spec; return their ids. Errors go to the form, never a traceback.

        Several specs are a comparison: their models run one after another (never at once, so
        they do not skew each other), through :mod:`gui.compare_mode`; their runs appear as
        they start, and this returns []."""
        if self.compare.active:
            self.statusBar().showMessage(
                "A comparison is running: wait for it or cancel it (Esc) first; a run started "
                "now would skew its figures", 8000)
            return []
        self.wake()
        if len(specs) > 1:
            if self.compare.start(specs, on_gui_loop):
                self.act_follow.setChecked(True)
                self.timeline.set_follow(True)
            return []
        ids = []
        for spec in specs:
            loop = self.loop if (on_gui_loop and spec.model == "asyncio") else None
            try:
                run = self.session.start(spec, loop=loop)
            except SpecError as e:
                self.controls.show_error(e)
                break
            except RuntimeError as e:
                self.statusBar().showMessage(f"Could not start: {e}", 8000)
                break
            info = engine.model_info(spec.model)
            self.run_model[run.run_id] = spec.model
            self.run_force[run.run_id] = info.can_force
            self.run_gui_loop[run.run_id] = loop is not None
            ids.append(run.run_id)
        if ids:
            self.controls.summary.setText(
                f"Started run{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}.")
            self.act_follow.setChecked(True)
            self.timeline.set_follow(True)
            self.frame()  # show the new rows now, not on the next tick
        return ids

    def command(self, name: Literal["cancel_task", "cancel_run", "cancel_all"],
                *args: Any) -> Any:
        """Call the session's ``cancel_task``, ``cancel_run`` or ``cancel_all``; if the engine
        process is gone, say so in the status bar instead of raising into Qt."""
        s = self.session
        if s is None:  # a replay: nothing to cancel
            return None
        call = {"cancel_task": s.cancel_task, "cancel_run": s.cancel_run,
                "cancel_all": s.cancel_all}[name]
        try:
            return call(*args)
        except RuntimeError as e:
            self.statusBar().showMessage(f"Could not {name.replace('_', ' ')}: {e}", 8000)
            return None

    def cancel_all(self, force: bool = False) -> int:
        self.compare.cancel()  # a comparison must not go on to its next model
        n = self.command("cancel_all", force) or 0
        self.statusBar().showMessage(
            f"Cancel requested for {n} run{'s' if n != 1 else ''}"
            + (" (process workers killed)" if force else ""), 4000)
        return n

    def show_compare_tab(self) -> None:
        """Bring the Compare tab up, with room for its bands, charts and table."""
        self.views.setCurrentWidget(self.compare.view)
        sizes = self.right_split.sizes()
        total = sum(sizes)
        if total > 0 and sizes[1] < 0.55 * total:
            self.right_split.setSizes([int(total * 0.16), int(total * 0.64), int(total * 0.2)])

    def show_code(self) -> None:
        """Show code: the standalone script for the form's configuration, one tab per model."""
        specs = self.controls.build_specs()
        if specs is None:
            return  # the form shows what is wrong
        from .code_dialog import CodeDialog

        self.code_dialog = CodeDialog(specs, self)
        self.code_dialog.show()

    def clear_finished(self) -> None:
        self.drop_runs({r.run_id for r in self.runs.runs if r.done})

    def drop_runs(self, done: set[int]) -> None:
        """Remove these (ended) runs from the tables and the timeline, for good: forgetting
        their model keeps the next frame from adding them back from the store."""
        if not done:
            return
        for rid in done:
            self.run_model.pop(rid, None)
            self.run_force.pop(rid, None)
            self.run_gui_loop.pop(rid, None)
        keep_runs = [r for r in self.runs.runs if r.run_id not in done]
        keep_tasks = [t for t in self.tasks.recs if t.run_id not in done]
        self.runs.clear()
        for r in keep_runs:
            self.runs.add(r)
        self.tasks.clear()
        self.tasks.add(keep_tasks)
        self.tl_data.clear()
        self.tl_data.update(keep_tasks, lambda r: self.run_model.get(r, ""))
        self.timeline.item.select(None)

    def _bound_shown(self) -> None:
        """Keep the views' memory bounded (see MAX_SHOWN_TASKS), oldest finished runs first."""
        total, goal = self.tasks.rowCount(), MAX_SHOWN_TASKS * 3 // 4
        drop: set[int] = set()
        for r in self.runs.runs:  # oldest first
            if total <= goal:
                break
            if r.done:
                drop.add(r.run_id)
                total -= len(r.task_ids)
        if drop:
            self.drop_runs(drop)
            self.statusBar().showMessage(
                f"{len(drop)} finished run{'s' if len(drop) != 1 else ''} left the view: it "
                f"keeps at most {MAX_SHOWN_TASKS:,} tasks", 8000)

    def select_task(self, task_id: int) -> None:
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

    def _table_current(self, cur: Any, _prev: Any) -> None:
        if not cur.isValid():
            return
        src = self.proxy.mapToSource(cur)
        if src.isValid():
            self.timeline.item.select(self.tasks.recs[src.row()].task_id)

    # -- the frame -------------------------------------------------------------------------------------
    def frame(self) -> None:
        """Drain events and samples once, update every view in bulk."""
        if self._closed:
            return
        t0 = time.perf_counter()
        # The engine runs in its own process (engine.remote): one pump folds what it sent
        # since the last frame into the mirror store, within a time budget.
        pumped = self.session.pump() if self.session is not None else Pumped()
        changed = pumped.changed
        n_events = pumped.events
        self.dropped += pumped.dropped
        if self.session is not None and self.engine_gone is None and self.session.gone_reason:
            self.engine_gone = self.session.gone_reason
            self.statusBar().showMessage(
                f"The engine process stopped ({self.engine_gone}): runs cannot go on; close "
                "and reopen TaskScope", 0)
        now = time.monotonic()
        self.ev_window.append((now, n_events))
        while self.ev_window and now - self.ev_window[0][0] > 1.0:
            self.ev_window.popleft()

        known = self.runs.row_of
        live = False
        for rec in self.store.runs():
            if rec.end_ns is None:
                live = True
            if rec.run_id not in known and (rec.run_id in self.run_model
                                            or self.compare.adopt(rec)):
                self.runs.add(rec)
                self.tasks.add(self.store.tasks(rec.run_id))
                if self.tasks.rowCount() > MAX_SHOWN_TASKS:
                    self._bound_shown()
        if changed:
            recs: list[TaskRecord] = []
            row_of = self.tasks.row_of
            all_recs = self.tasks.recs
            for tid in changed:
                row = row_of.get(tid)
                if row is not None:
                    recs.append(all_recs[row])
            self.tl_data.update(recs, lambda r: self.run_model.get(r, ""))
            self.compare.tasks_changed(recs)
            self._table_changed |= changed
        if live or changed:
            self.runs.refresh()
        if live and self._frames % TABLE_TICK_FRAMES == 0:
            # Running durations grow between events: redraw the visible rows for them 5 times
            # a second, not on every frame (rows whose record changed are redrawn at once by
            # the model's dataChanged). At 30 Hz this repaint was the window's largest cost
            # under load, which on saturated cores is what makes it late.
            self._table_tick = True
        if (self._table_changed or self._table_tick) and not self._table_timer.isActive():
            self._table_timer.start()
        self._pace(live or bool(changed) or bool(pumped.backlog))
        self._frames += 1
        if self._frames % 10 == 0 and self.proxy.active:
            self.proxy.refresh()  # an active filter or sort follows state changes at 3 Hz

        samples, self.sample_cursor = self.store.read_samples(self.sample_cursor)
        if samples:  # the plot moves when a sample arrives (10 Hz), not on every frame
            self.cpu.add_samples(samples)
            self.last_sample = samples[-1]
            self.cpu.redraw(self.clock_ns())
        self.timeline.tick()
        self.compare.tick()
        # The status bar's figures (lags, frame time) change on nearly every frame, and each
        # changed rich-text label is laid out and repainted with the bar under it: while idle
        # they are refreshed twice a second, at full rate while anything runs.
        if self.frame_timer.interval() == FRAME_MS or now - self._status_at >= IDLE_STATUS_S:
            self._status_at = now
            self._status()
        self.frame_ms.append((time.perf_counter() - t0) * 1e3)

    def _table_paint(self) -> None:
        """Mark the task table's changed rows (and, at 5 Hz, its running durations) for a
        repaint, half a frame after :meth:`frame`. Qt paints every dirty part of a window in
        one pass: the timeline and the table together were 8-10 ms of GUI thread at a time
        on saturated cores, and a timer due then ran that late (``taskscope bench``, GUI lag
        p99). Apart, each pass is about half that. The model's data is current at once; only
        the repaint moves, by ~16 ms."""
        if self._closed:
            return
        changed, self._table_changed = self._table_changed, set()
        if changed:
            self.tasks.changed(changed)
        if self._table_tick:
            self._table_tick = False
            self.tasks_view.viewport().update()

    def _pace(self, busy: bool) -> None:
        """30 frames a second while anything runs or changes; 2.5 once idle for a second.

        An idle window still has moving parts (the CPU plot scrolls, the now line moves), but
        they do not need 30 repaints a second: at 30 Hz the idle window cost 9.5% of a core
        (taskscope bench; target 3% for the window and the engine together), at 5 Hz 2.5-2.7%
        for the window alone, at 2.5 Hz 1.3-1.5% (a minute after start, when the CPU plot is
        full). 2.5 Hz is faster than top or a system monitor refresh. Sampling stays at its
        own rate: every sample is drawn, four at a time while idle. Anything that starts work
        calls :meth:`wake`, so a click is never answered at the idle rate; events from
        elsewhere are drawn within 400 ms.
        """
        if busy:
            self.wake()
        elif (time.monotonic() - self._busy_at > 1.0
              and self.frame_timer.interval() == FRAME_MS):
            self.frame_timer.setInterval(IDLE_FRAME_MS)
            self._probe_idle(True)

    def wake(self) -> None:
        """Back to the full frame rate at once (called when work starts)."""
        self._busy_at = time.monotonic()
        if self.frame_timer.interval() != FRAME_MS:
            self.frame_timer.setInterval(FRAME_MS)
            self._probe_idle(False)

    def _probe_idle(self, idle: bool) -> None:
        """The GUI-loop lag probe fires every 250 ms while the window idles, every 20 ms
        otherwise: 50 qasync timers a second were about 1% of a core in an idle window."""
        if self.session is not None:
            self.session.set_loop_idle(idle)

    def _status(self) -> None:
        s = self.last_sample
        evs = sum(n for _, n in self.ev_window)
        self.st_events.setText(f"{evs:,} events/s" + (f" · {self.dropped:,} dropped"
                                                        if self.dropped else ""))
        gui_lag = self.session.gui_lag() if self.session is not None else None
        if gui_lag is not None:  # measured in this process, over the last second
            self.st_gui.setText(self._lag("GUI loop lag", gui_lag["max"]))
        elif s is not None:
            self.st_gui.setText(self._lag("GUI loop lag", s.lag_ms.get("gui")))
        if s is not None:
            self.st_engine.setText(self._lag("engine loop lag", s.lag_ms.get("engine")))
            if s.gil_disabled:
                self.st_gil.setText("GIL: disabled")
            elif s.gil is None:
                self.st_gil.setText("GIL wait – (idle)")  # the probe rests between runs
            else:
                colour = theme.ERROR if s.gil > 0.5 else theme.WARN if s.gil > 0.1 else theme.TEXT
                self.st_gil.setText(f"GIL wait <span style='color:{colour}'>{s.gil * 100:.0f}%"
                                    "</span>")
        if self.frame_ms:
            fm = sorted(self.frame_ms)
            self.st_frame.setText(f"frame {fm[len(fm) // 2]:.1f} ms (max {fm[-1]:.0f})")
        running = sum(r.counts.get("running", 0) for r in self.runs.runs if not r.done)
        active = sum(1 for r in self.runs.runs if not r.done)
        self.st_tasks.setText(f"{active} active run{'s' if active != 1 else ''} · "
                              f"{running} task{'s' if running != 1 else ''} running")
        shown = self.proxy.rowCount()
        total = self.tasks.rowCount()
        self.table_count.setText(f"{shown:,} of {total:,} tasks" if shown != total
                                 else f"{total:,} tasks")

    @staticmethod
    def _lag(name: str, ms: float | None) -> str:
        if ms is None:
            return f"{name} –"
        colour = theme.ERROR if ms > 100 else theme.WARN if ms > 30 else theme.TEXT
        return f"{name} <span style='color:{colour}'>{ms:.0f} ms</span>"

    # -- closing ---------------------------------------------------------------------------------------
    async def wait_closed(self) -> None:
        """Return once the window has closed and the session has shut down."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self.closed.connect(lambda: fut.done() or fut.set_result(None))
        await fut

    def closeEvent(self, ev: QCloseEvent) -> None:
        if self._closed:
            ev.accept()
            return
        if self.session is None:  # a replay: nothing runs behind it
            self.files.shutdown()
            self.frame_timer.stop()
            self._closed = True
            ev.accept()
            self.closed.emit()
            return
        ev.ignore()
        if self._closing:
            return
        self._closing = True
        self.files.shutdown()  # closes the replay windows it opened
        self.hide()
        detach(self.sampler)
        self.compare.shutdown()  # no next model after this
        self.command("cancel_all", True, "window closed")
        # Shut down off the GUI thread: coroutines on the GUI loop must keep running to end.
        import threading

        def work() -> None:
            self.shutdown_report = self.session.shutdown(timeout=CLOSE_TIMEOUT_S)

        self._shutdown_thread = threading.Thread(target=work, name="taskscope-close",
                                                 daemon=True)
        self._shutdown_thread.start()
        self._close_poll = QTimer(self)
        self._close_poll.setInterval(20)
        self._close_poll.timeout.connect(self._finish_close)
        self._close_poll.start()

    def _finish_close(self) -> None:
        if self._shutdown_thread.is_alive():
            return
        self._close_poll.stop()
        self.frame_timer.stop()
        self._closed = True
        self.close()
        self.closed.emit()
