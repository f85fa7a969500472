"""File > Export from the window, end to end: a real run, the menu's actions, files checked as
files. Dialogs are driven without a modal: the FileMenu's ask/show methods are replaced."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from engine import State
from engine.trace import load_trace

from .helpers import fill

WAIT = 15_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Dialogs:
    """Stands in for QFileDialog / QMessageBox: hands out paths, records errors."""

    def __init__(self, win: Any) -> None:
        self.path: str | None = None
        self.asked: list[tuple[str, str]] = []
        self.errors: list[str] = []
        files = win.files
        files.ask_save_path = self.ask
        files.ask_open_path = lambda title, filters: self.ask(title, "", filters)
        files.show_error = lambda title, message: self.errors.append(message)

    def ask(self, title: str, default: str, filters: str) -> str | None:
        self.asked.append((title, default))
        return self.path


def run_and_wait(win: Any, qtbot: Any, models: tuple[str, ...], workload: str, n: int,
                 size: str, **kw: str) -> list[int]:
    """One run per model, started by clicking Start, one after the other; wait for each."""
    ids = []
    for model in models:
        before = {r.run_id for r in win.store.runs()}
        fill(win, (model,), workload, n, size, **kw)
        qtbot.mouseClick(win.controls.start_btn, Qt.MouseButton.LeftButton)
        new = [r.run_id for r in win.store.runs() if r.run_id not in before]
        assert len(new) == 1, win.controls.summary.text()
        qtbot.waitUntil(lambda rid=new[0]: win.store.run(rid).done, timeout=WAIT)
        ids += new
    qtbot.waitUntil(lambda: win.cpu.n >= 2, timeout=WAIT)  # some CPU samples to export
    qtbot.wait(80)  # a frame or two, so the views show the final states
    return ids


def trigger_and_wait(win: Any, qtbot: Any, action: Any) -> str:
    n = len(win.files.messages)
    action.trigger()
    qtbot.waitUntil(lambda: not win.files.jobs and len(win.files.messages) > n, timeout=WAIT)
    kind, text = win.files.messages[-1]
    return f"{kind}: {text}"


@pytest.fixture
def dialogs(window: Any) -> Dialogs:
    return Dialogs(window)


def test_menu_has_every_action_with_shortcuts(window: Any) -> None:
    f = window.files
    texts = [a.text() for a in f.menu.actions() if not a.isSeparator()]
    assert texts == ["Export session trace…", "Export selected run trace…", "Export CSV…",
                     "Export CPU plot as PNG/SVG…", "Export timeline as PNG/SVG…",
                     "Open trace…", "Quit"]
    assert f.act_export_session.shortcut().toString() == "Ctrl+E"
    assert f.act_open.shortcut().toString() == "Ctrl+O"
    assert f.act_quit.shortcut().toString() == "Ctrl+Q"


def test_export_session_trace_csv_and_run(window: Any, qtbot: Any, dialogs: Dialogs,
                                          tmp_path: Path) -> None:
    ids = run_and_wait(window, qtbot, ("threads", "asyncio"), "sleep", 5, "100ms", workers="3")
    store = window.store

    # Session trace through the menu action: default name, then the file on disk.
    dialogs.path = str(tmp_path / "session.json")
    msg = trigger_and_wait(window, qtbot, window.files.act_export_session)
    assert msg.startswith("info: Saved session trace: ") and "session.json" in msg
    assert " KB" in msg or " B" in msg  # the size is in the message
    title, default = dialogs.asked[-1]
    assert default.startswith("taskscope-") and default.endswith(".json")
    rep = load_trace(tmp_path / "session.json")
    assert {t.task_id for t in rep.tasks} == {t.task_id for t in store.tasks()}
    assert len(rep.tasks) == 10
    live = {t.task_id: t.state for t in store.tasks()}
    assert {t.task_id: t.state for t in rep.tasks} == live
    assert len(rep.samples) >= 2
    assert not dialogs.errors

    # CSV: NAME-tasks.csv and NAME-samples.csv.
    dialogs.path = str(tmp_path / "out.csv")
    msg = trigger_and_wait(window, qtbot, window.files.act_export_csv)
    assert msg.startswith("info: Saved CSV: ")
    tasks_csv = (tmp_path / "out-tasks.csv").read_text().splitlines()
    assert len(tasks_csv) == 11 and tasks_csv[0].startswith("run_id,task_id")
    assert len((tmp_path / "out-samples.csv").read_text().splitlines()) >= 3

    # Selected run: select the second run's row, export just that run.
    window.runs_view.selectionModel().select(
        window.runs.index(1, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
        | QItemSelectionModel.SelectionFlag.Rows)
    dialogs.path = str(tmp_path / "run.json")
    msg = trigger_and_wait(window, qtbot, window.files.act_export_run)
    assert f"run {ids[1]} trace" in msg
    assert f"taskscope-run{ids[1]}-" in dialogs.asked[-1][1]
    rep = load_trace(tmp_path / "run.json")
    assert rep.scope == "run" and [r.run_id for r in rep.runs] == [ids[1]]
    assert len(rep.tasks) == 5
    assert not dialogs.errors


def test_export_images_png_and_svg(window: Any, qtbot: Any, dialogs: Dialogs,
                                   tmp_path: Path) -> None:
    from PySide6 import QtGui, QtSvg

    run_and_wait(window, qtbot, ("threads",), "sleep", 3, "100ms", workers="3")
    f = window.files
    for action, name in ((f.act_export_cpu, "cpu"), (f.act_export_timeline, "timeline")):
        dialogs.path = str(tmp_path / f"{name}.png")
        msg = trigger_and_wait(window, qtbot, action)
        assert msg.startswith("info: Saved ") and f"{name}.png" in msg, msg
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 2000
        img = QtGui.QImage(str(tmp_path / f"{name}.png"))
        assert img.width() > 200 and img.height() > 100
        dialogs.path = str(tmp_path / f"{name}.svg")
        trigger_and_wait(window, qtbot, action)
        root = ET.parse(tmp_path / f"{name}.svg").getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert QtSvg.QSvgRenderer(str(tmp_path / f"{name}.svg")).isValid()
    # The CPU image holds both CPU plots (per core above, totals below): taller than the
    # per-core plot alone.
    cpu = QtGui.QImage(str(tmp_path / "cpu.png"))
    assert cpu.height() > window.cpu.cores_plot.height() + 20
    # The timeline SVG has the bars (drawRects become rect or path elements).
    text = (tmp_path / "timeline.svg").read_text()
    assert text.count("<rect") + text.count("<path") > 5
    assert "taskscope-cpu-" in dialogs.asked[0][1] and dialogs.asked[0][1].endswith(".png")
    assert not dialogs.errors


def test_export_errors_are_one_line_and_nothing_yet(window: Any, qtbot: Any, dialogs: Dialogs,
                                                    tmp_path: Path) -> None:
    f = window.files
    # No run yet: say so, without asking for a path.
    f.act_export_session.trigger()
    assert dialogs.errors == ["nothing to export yet: start a run first"]
    assert dialogs.asked == []
    run_and_wait(window, qtbot, ("threads",), "sleep", 2, "50ms", workers="2")
    # A directory that does not exist: one line, no traceback, no file.
    dialogs.path = str(tmp_path / "missing" / "t.json")
    msg = trigger_and_wait(window, qtbot, f.act_export_session)
    assert msg.startswith("error: ") and "does not exist" in msg
    assert "\n" not in dialogs.errors[-1] and "Traceback" not in dialogs.errors[-1]
    dialogs.path = str(tmp_path / "plot.jpg")
    f.act_export_cpu.trigger()
    assert "choose a .png or .svg" in dialogs.errors[-1]
    # Cancelling the dialog does nothing.
    dialogs.path = None
    n = len(f.messages)
    f.act_export_csv.trigger()
    f.act_export_timeline.trigger()
    assert len(f.messages) == n and not f.jobs
    assert list(tmp_path.iterdir()) == []


def test_export_during_a_live_run_loses_nothing(window: Any, qtbot: Any, dialogs: Dialogs,
                                                tmp_path: Path) -> None:
    fill(window, ("threads",), "sleep", 6, "1500ms", workers="3")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = window.store.runs()[-1].run_id
    qtbot.waitUntil(lambda: any(t.state is State.RUNNING for t in window.store.tasks(run_id)),
                    timeout=WAIT)
    dialogs.path = str(tmp_path / "mid.json")
    frames = window._frames
    msg = trigger_and_wait(window, qtbot, window.files.act_export_session)
    assert msg.startswith("info: Saved session trace")
    qtbot.waitUntil(lambda: window._frames > frames + 3, timeout=WAIT)  # still drawing
    rep = load_trace(tmp_path / "mid.json")
    assert len(rep.tasks) == 6  # running and queued tasks are in the file too
    # The run itself is undisturbed: it ends with every task finished.
    qtbot.waitUntil(lambda: window.store.run(run_id).done, timeout=WAIT)
    assert [t.state for t in window.store.tasks(run_id)] == [State.FINISHED] * 6
    assert not dialogs.errors
