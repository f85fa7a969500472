"""The File menu: export traces, CSV and images; open a trace as a read-only replay.

Traces and CSV are built from the store (Qt-free, :mod:`engine.trace`) on a worker thread, so a
big export never stalls the window or the live runs: the store hands out snapshots under its
lock, and the engine keeps appending while the file is written. While a job runs the status bar
shows a busy bar and what is being written; when it ends, the path and size (or one line saying
what went wrong, in a message box). Images go through pyqtgraph's exporters, which must run on
the GUI thread; they take a few tens of milliseconds.

The dialogs are behind overridable methods (:meth:`FileMenu.ask_save_path`,
:meth:`FileMenu.ask_open_path`, :meth:`FileMenu.show_error`), so tests drive every action
without a modal dialog. Every message shown is also kept in :attr:`FileMenu.messages`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QWidget,
)

from engine.store import EventStore
from engine.trace import ExportSummary, TraceError

from . import export
from .hosts import FileHost, ReplayWindow
from .replay_load import PreparedReplay, prepare

TRACE_FILTER = "Chrome/Perfetto trace (*.json);;All files (*)"
CSV_FILTER = "CSV files (*.csv);;All files (*)"
IMAGE_FILTER = "PNG image (*.png);;SVG image (*.svg)"
RESULT_MS = 15_000


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024**2:.1f} MB"


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


@dataclass
class Job:
    """One file operation running on a worker thread."""

    id: int
    label: str
    done: Callable[[Any], None]
    error_title: str
    t0: float


class FileMenu(QObject):
    """Builds the window's File menu and runs its actions, on the ``store`` the window shows
    (``read_only``: a replay window, whose last item closes it)."""

    #: (job id, result, error message or None), emitted by worker threads (queued to the GUI).
    _finished = Signal(object)
    #: Emitted on the GUI thread after every job, with the message shown.
    jobDone = Signal(str)

    def __init__(self, host: FileHost, store: EventStore, *, read_only: bool = False) -> None:
        super().__init__(host.window())
        self.host = host
        self.store = store
        self.read_only = read_only
        self.last_dir = Path.cwd()
        self.jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._closed = False
        #: Every message shown: ("info" | "error", text). Tests read it.
        self.messages: list[tuple[str, str]] = []
        #: Replay windows opened from here (closed with this window).
        self.replays: list[ReplayWindow] = []
        self._finished.connect(self._on_finished)
        self._build_menu()
        self._build_busy()

    # -- menu ----------------------------------------------------------------------------
    def _build_menu(self) -> None:
        win = self.host.window()
        menu = self.menu = self.host.add_menu("&File")

        def act(text: str, slot: Callable[[], object], shortcut: str | None = None,
                tip: str = "") -> QAction:
            a = QAction(text, win)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip)
            a.setToolTip(tip)
            a.triggered.connect(lambda _checked=False: slot())
            menu.addAction(a)
            return a

        self.act_export_session = act(
            "Export session trace…", self.export_session, "Ctrl+E",
            "Every run and CPU sample as a Chrome/Perfetto trace (opens in ui.perfetto.dev)")
        self.act_export_run = act(
            "Export selected run trace…", self.export_run, None,
            "The run selected in the Runs table, with the samples taken while it ran")
        self.act_export_csv = act(
            "Export CSV…", self.export_csv, None,
            "Tasks and samples as two CSV files: NAME-tasks.csv and NAME-samples.csv")
        menu.addSeparator()
        self.act_export_cpu = act(
            "Export CPU plot as PNG/SVG…", self.export_cpu_image, None,
            "The per-core and total CPU plots as drawn, through pyqtgraph's exporters")
        self.act_export_timeline = act(
            "Export timeline as PNG/SVG…", self.export_timeline_image, None,
            "The timeline's visible range as drawn, through pyqtgraph's exporters")
        menu.addSeparator()
        self.act_open = act("Open trace…", self.open_trace_dialog, "Ctrl+O",
                            "Open a saved TaskScope trace as a read-only replay window")
        menu.addSeparator()
        if self.read_only:
            self.act_quit = act("Close replay", self.host.close, "Ctrl+W",
                                "Close this replay window")
        else:
            self.act_quit = act("Quit", self.host.close, "Ctrl+Q",
                                "Cancel every run, shut the engine down and quit")

    def _build_busy(self) -> None:
        box = self.busy = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        self.busy_label = QLabel("")
        bar = QProgressBar()
        bar.setRange(0, 0)  # indeterminate: a busy indicator
        bar.setMaximumWidth(90)
        bar.setMaximumHeight(14)
        bar.setTextVisible(False)
        lay.addWidget(self.busy_label)
        lay.addWidget(bar)
        box.hide()
        self.host.add_status_widget(box)

    # -- dialogs (overridable: tests replace these) ---------------------------------------
    def ask_save_path(self, title: str, default_name: str, filters: str) -> str | None:
        """Ask where to save; None if cancelled. Adds the chosen filter's suffix if missing."""
        path, chosen = QFileDialog.getSaveFileName(
            self.host.window(), title, str(self.last_dir / default_name), filters)
        if not path:
            return None
        if not Path(path).suffix and "*." in chosen:
            path += "." + chosen.split("*.", 1)[1].split(")", 1)[0].split()[0]
        return path

    def ask_open_path(self, title: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.host.window(), title, str(self.last_dir),
                                              filters)
        return path or None

    def show_error(self, title: str, message: str) -> None:
        """One line in a (non-blocking) message box."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                          QMessageBox.StandardButton.Ok, self.host.window())
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()  # window-modal but non-blocking: the live views keep updating behind it

    # -- reporting --------------------------------------------------------------------------
    def report(self, message: str) -> None:
        self.messages.append(("info", message))
        self.host.status_message(message, RESULT_MS)

    def report_error(self, title: str, message: str) -> None:
        line = " ".join(str(message).split())  # one line, whatever came in
        self.messages.append(("error", line))
        self.host.status_message(f"{title}: {line}", RESULT_MS)
        self.show_error(title, line)

    # -- jobs --------------------------------------------------------------------------------
    @property
    def busy_jobs(self) -> int:
        return len(self.jobs)

    def run_job(self, label: str, work: Callable[[], Any], done: Callable[[Any], None],
                error_title: str, *, keep_alive: bool = True) -> int:
        """Run ``work`` on a worker thread; ``done(result)`` on the GUI thread after.

        ``keep_alive``: a non-daemon thread, so quitting waits for a file being written to be
        complete (loads use daemon threads: nothing is lost by dropping them).
        """
        job = Job(next(self._ids), label, done, error_title, time.monotonic())
        self.jobs[job.id] = job
        self._show_busy()

        def target() -> None:
            result: Any = None
            err: str | None = None
            try:
                result = work()
            except TraceError as e:
                err = str(e)
            except MemoryError:
                err = "not enough memory"
            except Exception as e:  # noqa: BLE001 - a bug still gets one line, not a traceback
                err = f"{type(e).__name__}: {e}"
            try:
                self._finished.emit((job.id, result, err))
            except RuntimeError:  # the window is gone; nobody to tell
                pass

        threading.Thread(target=target, name=f"taskscope-file-{job.id}",
                         daemon=not keep_alive).start()
        return job.id

    def _show_busy(self) -> None:
        if not self.jobs:
            self.busy.hide()
            return
        labels = [j.label for j in self.jobs.values()]
        more = f" (+{len(labels) - 1} more)" if len(labels) > 1 else ""
        self.busy_label.setText(labels[0] + more)
        self.busy.show()

    def _on_finished(self, payload: tuple[int, Any, str | None]) -> None:
        job_id, result, err = payload
        job = self.jobs.pop(job_id, None)
        self._show_busy()
        if job is None or self._closed:
            return
        if err is not None:
            self.report_error(job.error_title, err)
            self.jobDone.emit(err)
            return
        try:
            job.done(result)
        except TraceError as e:
            self.report_error(job.error_title, str(e))
        self.jobDone.emit(self.messages[-1][1] if self.messages else "")

    def shutdown(self) -> None:
        """The window is closing: close the replays opened from it; ignore late results."""
        self._closed = True
        for w in list(self.replays):
            w.close()
        self.replays.clear()

    # -- exports -------------------------------------------------------------------------------
    def _remember(self, path: str) -> Path:
        p = Path(path).expanduser()
        if p.parent.is_dir():
            self.last_dir = p.parent
        return p

    def _nothing_yet(self, title: str) -> bool:
        if self.store.runs():
            return False
        self.report_error(title, "nothing to export yet: start a run first")
        return True

    def _trace_done(self, what: str) -> Callable[[ExportSummary], None]:
        def done(s: ExportSummary) -> None:
            self.report(
                f"Saved {what}: {s.path} ({human_size(s.bytes)}; {s.runs} run"
                f"{'s' if s.runs != 1 else ''}, {s.tasks:,} tasks, {s.samples:,} samples)")
        return done

    def export_session(self) -> None:
        title = "Export session trace"
        if self._nothing_yet(title):
            return
        path = self.ask_save_path(title, f"taskscope-{stamp()}.json", TRACE_FILTER)
        if not path:
            return
        p = self._remember(path)
        store = self.store
        self.run_job(f"Writing {p.name}…", lambda: export.export_session_trace(store, p),
                     self._trace_done("session trace"), title)

    def selected_run_id(self) -> int | None:
        """The run selected in the Runs table; else the selected task's run; else the only
        run (the window answers)."""
        return self.host.selected_run_id()

    def export_run(self) -> None:
        title = "Export selected run trace"
        if self._nothing_yet(title):
            return
        rid = self.selected_run_id()
        if rid is None:
            self.report_error(title, "select a run first: click its row in the Runs table")
            return
        path = self.ask_save_path(f"{title} (run {rid})", f"taskscope-run{rid}-{stamp()}.json",
                                  TRACE_FILTER)
        if not path:
            return
        p = self._remember(path)
        store = self.store
        self.run_job(f"Writing {p.name}…", lambda: export.export_run_trace(store, rid, p),
                     self._trace_done(f"run {rid} trace"), title)

    def export_csv(self) -> None:
        title = "Export CSV"
        if self._nothing_yet(title):
            return
        path = self.ask_save_path(f"{title} (writes NAME-tasks.csv and NAME-samples.csv)",
                                  f"taskscope-{stamp()}.csv", CSV_FILTER)
        if not path:
            return
        p = self._remember(path)
        store = self.store

        def done(paths: tuple[Path, Path]) -> None:
            t, s = paths
            self.report(f"Saved CSV: {t} ({human_size(_size(t))}) and {s.name} "
                        f"({human_size(_size(s))})")

        self.run_job(f"Writing {p.stem}-*.csv…", lambda: export.export_csv_files(store, p),
                     done, title)

    def _export_image(self, title: str, default: str, targets: list[Any]) -> Path | None:
        path = self.ask_save_path(title, default, IMAGE_FILTER)
        if not path:
            return None
        p = self._remember(path)
        if not p.suffix:
            p = p.with_suffix(".png")
        self.host.status_message(f"Rendering {p.name}…")
        try:
            out = export.export_plots(targets, p)  # pyqtgraph: on the GUI thread, ~tens of ms
        except TraceError as e:
            self.report_error(title, str(e))
            return None
        self.report(f"Saved {title.split(' as ')[0].removeprefix('Export ')}: {out} "
                    f"({human_size(_size(out))})")
        return out

    def export_cpu_image(self) -> Path | None:
        return self._export_image("Export CPU plot as PNG/SVG", f"taskscope-cpu-{stamp()}.png",
                                  list(self.host.cpu_plots()))

    def export_timeline_image(self) -> Path | None:
        return self._export_image("Export timeline as PNG/SVG",
                                  f"taskscope-timeline-{stamp()}.png", [self.host.timeline_plot()])

    # -- replay ----------------------------------------------------------------------------------
    def open_trace_dialog(self) -> None:
        path = self.ask_open_path("Open trace (read-only replay)",
                                  "TaskScope traces (*.json);;All files (*)")
        if path:
            self.open_trace(path)

    def open_trace(self, path: str | Path) -> int:
        """Load ``path`` off the GUI thread, then show it in a replay window."""
        p = self._remember(str(path))
        return self.run_job(f"Loading {p.name}…", lambda: prepare(p), self._show_replay,
                            "Open trace", keep_alive=False)

    def _show_replay(self, prepared: PreparedReplay) -> None:
        win = self.host.open_replay(prepared)
        self.replays.append(win)
        win.closed.connect(lambda: win in self.replays and self.replays.remove(win))
        r = prepared.replay
        self.report(f"Opened {r.path.name} as a replay: {len(r.runs)} run"
                    f"{'s' if len(r.runs) != 1 else ''}, {len(r.tasks):,} tasks, "
                    f"{len(r.samples):,} samples")
