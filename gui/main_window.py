"""The main window: controls on the left; CPU, timeline and tables on the right.

Responsive by construction: ONE frame timer (about 30 Hz) drains the engine's events and
samples in batches and updates every view in bulk. Nothing here subscribes to single events,
and nothing here does engine work: starting, cancelling and shutting down are single calls
into the session (:class:`engine.SessionAPI`), which return at once.

The window owns its widgets. Its helpers (compare mode, the File menu, a replay's set-up) ask
it through the few methods :mod:`gui.hosts` names, never its attributes.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMenu,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

import engine
from engine import RunRecord, RunSpec, SessionAPI, SpecError, TaskRecord
from engine.clock import now_ns
from engine.compare import CompareResult
from engine.remote import Engines
from engine.trace import Replay

from .compare_mode import CompareMode
from .controls import Controls
from .cpu_view import CpuView
from .file_menu import FileMenu
from .fitting import FormScroll
from .frame_pacer import FRAME_MS, FramePacer
from .interpreter_picker import label
from .panes import REPLAY_HINT, TablesPane, TimelinePane
from .replay import enter_replay_mode
from .replay_load import PreparedReplay, build_timeline, replay_end_ns
from .run_toolbar import RunToolbar
from .sampling import attach, detach
from .settings import WindowSettings
from .status_readouts import StatusReadouts
from .task_text import describe_task, describe_task_line
from .timeline_data import TimelineData
from .window_frame import FrameTick
from .window_layout import VIEWS_MIN_H, WindowLayout

#: The Compare tab's content never gets smaller than this: it scrolls instead.
COMPARE_MIN_W, COMPARE_MIN_H = 600, 400
TABLE_OFFSET_MS = FRAME_MS // 2  # see FrameTick._table_paint
CLOSE_TIMEOUT_S = 1.5


class MainWindow(FrameTick, WindowLayout):
    """TaskScope's window. Pass the session and the GUI's (qasync) event loop.

    With ``replay`` (a trace read by :func:`engine.trace.load_trace`) and no session, the same
    window shows that trace read-only: nothing to start or cancel (see :mod:`gui.replay`).
    """

    closed = Signal()

    def __init__(self, session: SessionAPI | None, loop: asyncio.AbstractEventLoop | None = None,
                 *, replay: Replay | None = None, timeline: TimelineData | None = None,
                 settings: QSettings | None = None) -> None:
        super().__init__()
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
            self.end_ns = replay_end_ns(replay)
            # A replay's bars, laid out off the GUI thread (gui.replay_load), or here if not.
            timeline = timeline or build_timeline(replay)
        self.setWindowTitle("TaskScope: Python concurrency, live")
        #: What the window remembers between launches (None: nothing; a replay never does).
        self.settings = WindowSettings(settings) if settings is not None and replay is None \
            else None

        self.run_model: dict[int, str] = {}
        self.run_force: dict[int, bool] = {}
        self.run_gui_loop: dict[int, bool] = {}
        self.sample_cursor = 0
        self.dropped = 0
        self.ev_window: deque[tuple[float, int]] = deque()
        self.frame_ms: deque[float] = deque(maxlen=90)
        self.last_sample: Any = None
        self._frames = 0
        self._closing = False
        self._closed = False
        self.shutdown_report: engine.ShutdownReport | None = None
        #: Why the engine process stopped, if it did while the window was open.
        self.engine_gone: str | None = None

        self._build(timeline or TimelineData(self.t0_ns))
        self.files = FileMenu(self, self.store, read_only=replay is not None)
        self._build_view_menu()
        #: Runs or a comparison were active on the last frame (see frame: follow stops after).
        self._was_live = False
        #: A status-bar message about runs that goes when they have all ended (see frame).
        self._run_message: str | None = None
        #: Runs started by hand, to say in the form how they ended (see _say_ended).
        self._started: set[int] = set()
        self._laid_out = False
        self._restore()
        self.sampler = attach(session, loop) if loop is not None and session is not None else None
        self.pacer = FramePacer(self, self.frame, self._probe_idle, self._frame_rate_loaded)
        self._load_message: str | None = None  # see _frame_rate_loaded
        self.frame_timer = self.pacer.timer
        self._status_at = float("-inf")  # see frame
        # The task table repaints half a frame after the frame that changed it (see
        # _table_paint), so it is never painted in the same pass as the timeline.
        self._table_changed: set[int] = set()
        self._table_tick = False
        #: Tasks whose only change is their progress: announced at the next table tick.
        self._table_progress: set[int] = set()
        self._runs_key: list[tuple[int, int | None, tuple[int, ...]]] = []  # see frame
        self._table_timer = QTimer(self)
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(TABLE_OFFSET_MS)
        self._table_timer.timeout.connect(self._table_paint)
        if replay is not None:
            enter_replay_mode(self, replay)  # draws the whole trace once; no frame timer
        else:
            self.frame_timer.start()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self, tl_data: TimelineData) -> None:
        self.controls = Controls()
        self.controls.startRequested.connect(self.start_runs)
        self.controls.interpreters.changed.connect(self._interpreters_chosen)
        scroll = FormScroll(self.controls)
        # The form scrolls; its footer (Start, Show code, what was last done) stays in view.
        # Never narrower than the form with its scroll bar (FormScroll): a narrower pane, as
        # a splitter state remembered from a smaller screen gave, cut every line at the right.
        left = QWidget()
        left.setMaximumWidth(440)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(0)
        ll.addWidget(scroll, 1)
        ll.addWidget(self.controls.footer)
        self.controls_pane = left
        self.controls.fieldShown.connect(lambda w: scroll.ensureWidgetVisible(w, 10, 30))

        self.cpu = CpuView(len(self._cores()))

        self.tl_data = tl_data
        self.tl_pane = TimelinePane(tl_data, self.now_s, self.describe_task,
                                    self.describe_task_line)
        self.timeline = self.tl_pane.timeline
        self.timeline.sigTaskClicked.connect(self.select_task)

        self.tables = TablesPane(self.clock_ns, lambda r: self.run_model.get(r, ""),
                                 self.can_force, lambda r: self.run_gui_loop.get(r, False))
        self.tables.cancelRun.connect(lambda rid, force: self.command("cancel_run", rid, force))
        self.tables.cancelTask.connect(lambda tid, force: self.command("cancel_task", tid, force))
        self.tables.taskSelected.connect(self.timeline.item.select)
        # The tables' views, as the window's own (tests and the frame read them).
        self.runs, self.runs_view = self.tables.runs, self.tables.runs_view
        self.tasks, self.proxy = self.tables.tasks, self.tables.proxy
        self.tasks_view, self.table_count = self.tables.tasks_view, self.tables.count
        self.filter_state, self.filter_text = self.tables.filter_state, self.tables.filter_text

        # Compare mode (issue 5): several models run one after another; its view is a tab.
        # The tab scrolls: on a laptop's screen the bands, charts and table keep readable
        # sizes, and the tab's content never makes the window grow (issue 16).
        self.compare = CompareMode(self, self.session, self.controls)
        # A floor, not a fixed minimum: an explicit minimum height would win over what the
        # tab's panes need (the bands grow with their models), and squeeze them into 400 px.
        self.compare.view.setMinimumWidth(COMPARE_MIN_W)
        self.compare.view.least_height = COMPARE_MIN_H
        self.compare_scroll = QScrollArea()
        self.compare_scroll.setWidget(self.compare.view)
        self.compare_scroll.setWidgetResizable(True)
        self.compare_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.views = QTabWidget()
        self.views.setDocumentMode(True)
        self.views.addTab(self.tl_pane, "Timeline")
        self.views.addTab(self.compare_scroll, "Compare")
        # The timeline's legend and tools sit in the tab bar's corner (a row of height saved).
        self.views.setCornerWidget(self.tl_pane.tools, Qt.Corner.TopRightCorner)
        self.views.currentChanged.connect(
            lambda i: self.tl_pane.tools.setVisible(self.views.widget(i) is self.tl_pane))
        self.views.currentChanged.connect(self._tab_shown)
        self.views.setMinimumHeight(VIEWS_MIN_H)
        right = self.right_split = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("rightSplit")
        right.addWidget(self.cpu)
        right.addWidget(self.views)
        right.addWidget(self.tables)
        right.setChildrenCollapsible(False)
        right.setStretchFactor(1, 1)  # a taller window goes to the timeline first

        split = self.main_split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("mainSplit")
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        self.setCentralWidget(split)
        self._build_toolbar()
        self.readouts = StatusReadouts(self.statusBar())
        r = self.readouts
        self.st_gui, self.st_engine, self.st_gil = r.gui, r.engine, r.gil
        self.st_events, self.st_frame, self.st_tasks = r.events, r.frame, r.tasks

    def _build_toolbar(self) -> None:
        tb = self.toolbar = RunToolbar(self)
        self.addToolBar(tb)
        tb.act_start.triggered.connect(self.controls.request_start)
        self.controls.cluster.checking.connect(lambda busy: tb.act_start.setEnabled(not busy))
        tb.act_cancel_all.triggered.connect(self.cancel_all)
        tb.act_kill_all.triggered.connect(lambda: self.cancel_all(force=True))
        tb.act_follow.toggled.connect(self.timeline.set_follow)
        self.timeline.sigFollowChanged.connect(tb.act_follow.setChecked)
        tb.act_clear.triggered.connect(self.clear_finished)
        tb.act_code.triggered.connect(self.show_code)
        self.controls.showCodeRequested.connect(self.show_code)
        for a in tb.app_wide:
            self.addAction(a)
        self.act_start, self.act_cancel_all, self.act_kill_all = (
            tb.act_start, tb.act_cancel_all, tb.act_kill_all)
        self.act_follow, self.act_clear, self.act_code = tb.act_follow, tb.act_clear, tb.act_code

    def _build_view_menu(self) -> None:
        menu = self.view_menu = self.menuBar().addMenu("&View")
        self.act_reset_layout = QAction("Reset layout", self)
        self.act_reset_layout.setShortcut(QKeySequence("Ctrl+Shift+L"))
        self.act_reset_layout.setToolTip("The window's default size and pane sizes "
                                         "(Ctrl+Shift+L); the form keeps its values")
        self.act_reset_layout.triggered.connect(self.reset_layout)
        menu.addAction(self.act_reset_layout)
        self.addAction(self.act_reset_layout)

    def _cores(self) -> list[float]:
        if self.replay is not None:  # the traced machine's cores, not this one's
            last = self.replay.samples[-1] if self.replay.samples else None
            return [0.0] * max(1, len(last.cores) if last is not None else 1)
        import psutil

        return psutil.cpu_percent(percpu=True) or [0.0]

    # -- what the helpers ask (gui.hosts) --------------------------------------------------------
    def clock_ns(self) -> int:
        """Now (live), or the end of the trace (replay: time stands still there)."""
        return now_ns() if self.end_ns is None else self.end_ns

    def now_s(self) -> float:
        return (self.clock_ns() - self.t0_ns) / 1e9

    def can_force(self, run_id: int) -> bool:
        return self.run_force.get(run_id, False)

    def describe_task(self, task_id: int) -> str:
        r = self.store.task(task_id)
        if r is None:
            return f"task {task_id}"
        return describe_task(r, self.run_model.get(r.run_id, ""), self.t0_ns, self.clock_ns())

    def describe_task_line(self, task_id: int) -> str:
        r = self.store.task(task_id)
        if r is None:
            return f"task {task_id}"
        return describe_task_line(r, self.run_model.get(r.run_id, ""), self.t0_ns,
                                  self.clock_ns())

    def register_run(self, run_id: int, model: str, *, can_force: bool | None = None,
                     gui_loop: bool = False) -> None:
        """Show this run (when the store has it) as a run of ``model`` (see gui.hosts)."""
        self.run_model[run_id] = model
        self.run_force[run_id] = (engine.model_info(model).can_force if can_force is None
                                  else can_force)
        self.run_gui_loop[run_id] = gui_loop

    def run_tasks(self, run_id: int) -> list[TaskRecord]:
        return self.store.tasks(run_id)

    def show_run(self, run: RunRecord) -> None:
        """Add the run and its tasks to the tables."""
        self.runs.add(run)
        self.tasks.add(self.store.tasks(run.run_id))

    def status_message(self, text: str, ms: int = 0) -> None:
        self.statusBar().showMessage(text, ms)

    def add_menu(self, title: str) -> QMenu:
        return self.menuBar().addMenu(title)

    def add_status_widget(self, widget: QWidget) -> None:
        self.statusBar().insertPermanentWidget(0, widget)

    def selected_run_id(self) -> int | None:
        """The run selected in the Runs table; else the selected task's run; else the only
        run."""
        rid = self.tables.selected_run_id()
        if rid is not None:
            return rid
        runs = self.store.runs()
        return runs[0].run_id if len(runs) == 1 else None

    def cpu_plots(self) -> Sequence[Any]:
        return [self.cpu.cores_plot, self.cpu.total_plot]

    def timeline_plot(self) -> Any:
        return self.timeline

    def open_replay(self, prepared: PreparedReplay) -> MainWindow:
        """A read-only window on a loaded trace, this window's size, shown and raised."""
        win = MainWindow(None, replay=prepared.replay, timeline=prepared.timeline)
        win.resize(self.size())
        win.show()
        win.raise_()
        win.activateWindow()
        return win

    def set_read_only(self, title: str, banner: str, banner_tip: str) -> None:
        """Nothing to start or cancel here (a replay): see gui.hosts.ReplayHost."""
        self.setWindowTitle(title)
        self.setToolTip("")
        self.controls_pane.hide()
        self.tables.hide_cancel_columns()
        self.banner = QLabel(banner)
        self.banner.setObjectName("hint")
        self.banner.setToolTip(banner_tip)
        self.toolbar.retire(self.banner)
        self.readouts.set_recorded()

    def show_recorded_samples(self) -> None:
        """Every CPU sample of the store at once, on the trace's time axis (a replay)."""
        samples, self.sample_cursor = self.store.read_samples(0)
        self.cpu.set_replay(self.t0_ns, len(samples))
        if samples:
            self.cpu.add_samples(samples)
            self.last_sample = samples[-1]
            self.cpu.redraw(self.clock_ns())

    def show_comparison(self, result: CompareResult) -> None:
        """A saved comparison in the Compare tab, brought up (a replay of a comparison opens
        where the live window ended it): see gui.hosts.ReplayHost."""
        self.compare.show_saved(result)
        self.show_compare_tab()

    def show_whole_trace(self) -> None:
        """Time stands still at the trace's end: the timeline shows all of it, and the CPU
        plots follow its time axis (the same one: seconds since the trace starts)."""
        tl = self.timeline
        tl.stand_still("end", "time since the trace starts")
        self.tl_pane.set_hint(REPLAY_HINT)
        self.cpu.cores_plot.setXLink(tl)
        tl.show_span(max(self.now_s(), 1e-3))

    def show_compare_tab(self) -> None:
        """Bring the Compare tab up. The panes keep the sizes the user gave them (the tab
        scrolls where it needs more room): the Tasks table, with its Cancel buttons, stays."""
        self.views.setCurrentWidget(self.compare_scroll)

    # -- commands -----------------------------------------------------------------------------------
    def start_runs(self, specs: list[RunSpec], on_gui_loop: bool = False) -> list[int]:
        """Start one run per spec; return their ids. Errors go to the form, never a traceback.

        Several specs are a comparison: their models run one after another (never at once, so
        they do not skew each other), through :mod:`gui.compare_mode`; their runs appear as
        they start, and this returns []."""
        if self.compare.active:
            self.status_message(
                "A comparison is running: wait for it or cancel it (Esc) first; a run started "
                "now would skew its figures", 8000)
            return []
        picked = self.controls.interpreters.selected()
        if not self._interpreters_chosen():
            return []
        self.wake()
        if len(specs) > 1 or len(picked) > 1:
            labels = [label(i) for i in picked] if len(picked) > 1 else None
            if self.compare.start(specs, on_gui_loop, labels):
                self.act_follow.setChecked(True)
                self.timeline.set_follow(True)
            return []
        if self.session is None:
            return []
        ids = []
        for spec in specs:
            loop = (self.loop if on_gui_loop and engine.model_info(spec.model).caller_loop
                    else None)
            try:
                run = self.session.start(spec, loop=loop)
            except SpecError as e:
                self.controls.show_error(e)
                break
            except RuntimeError as e:
                self.status_message(f"Could not start: {e}", 8000)
                break
            self.register_run(run.run_id, spec.model, gui_loop=loop is not None)
            ids.append(run.run_id)
        if ids:
            self._started.update(ids)
            self.controls.say(
                f"Started run{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}.")
            self.act_follow.setChecked(True)
            self.timeline.set_follow(True)
            self.frame()  # show the new rows now, not on the next tick
        return ids

    def _interpreters_chosen(self) -> bool:
        """Send the ticked interpreters to the session: their engines start now, in the
        background, ready for Start. False (and a message) if this session cannot."""
        pythons = self.controls.interpreters.engine_pythons()
        if isinstance(self.session, Engines):
            try:
                self.session.choose(pythons)
            except Exception as e:  # noqa: BLE001 - e.g. an engine process that cannot start
                self.status_message(f"Could not start the engine there: {e}", 8000)
                return False
            return True
        if pythons and pythons != [sys.executable]:
            self.status_message("This window's engine runs on its own interpreter only", 8000)
            return False
        return True

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
            self.status_message(f"Could not {name.replace('_', ' ')}: {e}", 8000)
            return None

    def cancel_all(self, force: bool = False) -> int:
        comparing = self.compare.cancel()  # a comparison must not go on to its next model
        n = self.command("cancel_all", force) or 0
        if n or comparing:
            what = "the comparison" if comparing else f"{n} run{'s' if n != 1 else ''}"
            self.run_status(f"Cancel requested for {what}"
                            + (" (process workers killed)" if force else ""))
        else:
            self.status_message("Nothing to cancel: no run is active", 3000)
        return n

    def run_status(self, text: str) -> None:
        """A status-bar message about the active runs: it goes once they have all ended
        (issue 16: "Cancel requested for 1 run" stayed after the comparison had ended)."""
        self._run_message = text
        self.status_message(text)

    def show_code(self) -> None:
        """Show code: the standalone script for the form's configuration, one tab per model."""
        specs = self.controls.build_specs("No code to show")
        if specs is None:
            return  # the form shows what is wrong
        from .code_dialog import CodeDialog  # on first use: it brings the script generator

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

    def select_task(self, task_id: int) -> None:
        self.tables.select_task(task_id)

    # -- the frame -------------------------------------------------------------------------------------
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
        if not self._closing:
            self.save_settings()
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
        self.controls.interpreters.shutdown()  # an interpreter being prepared: pip stops
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
