"""File > Open trace: a saved trace opens read-only in a replay window that shows what the live
window showed; bad files get one clear line and change nothing."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import State
from gui.main_window import MainWindow
from gui.replay import TITLE_PREFIX
from gui.task_table import RunTableModel, TaskTableModel

from .test_export_gui import WAIT, Dialogs, run_and_wait, trigger_and_wait


def bars(win: Any) -> list[tuple[int, str, float, float, int]]:
    """(task id, lane label, start, duration, state code) per bar, start relative to the first
    bar: the same for a live window and its replay whatever each one's time origin."""
    d = win.tl_data
    n = d.n
    t0 = float(d.start[:n].min())
    out = []
    for slot in range(n):
        w = d.workers[d.worker[slot]]
        out.append((int(d.task_id[slot]), w.label, float(d.start[slot]) - t0,
                    float(d.end[slot] - d.start[slot]), int(d.state[slot])))
    return sorted(out)


def same_bars(a: list, b: list, tol_s: float = 1e-6) -> bool:
    """Equal bars, times within a microsecond. (Rounding each side to 6 decimals flaked: the
    live and replayed times come from different origins and can straddle a rounding edge.)"""
    return len(a) == len(b) and all(
        x[0] == y[0] and x[1] == y[1] and x[4] == y[4]
        and abs(x[2] - y[2]) <= tol_s and abs(x[3] - y[3]) <= tol_s
        for x, y in zip(a, b, strict=True))


def table(win: Any) -> dict[int, tuple[str, str]]:
    m = win.tasks
    return {int(m.index(r, 0).data()): (m.index(r, TaskTableModel.C_STATE).data(),
                                         m.index(r, TaskTableModel.C_WORKER).data())
            for r in range(m.rowCount())}


def open_and_wait(win: Any, qtbot: Any, path: Path) -> str:
    n = len(win.files.messages)
    win.files.open_trace(path)
    qtbot.waitUntil(lambda: not win.files.jobs and len(win.files.messages) > n, timeout=WAIT)
    return win.files.messages[-1][1]


def test_replay_shows_the_run_as_it_was(window: Any, qtbot: Any, tmp_path: Path) -> None:
    dialogs = Dialogs(window)
    run_and_wait(window, qtbot, ("threads",), "fail", 6, "100ms", workers="3",
                 params="every=3")
    run_and_wait(window, qtbot, ("asyncio",), "sleep", 5, "150ms", workers="3")
    live_runs = len(window.store.runs())
    dialogs.path = str(tmp_path / "saved.json")
    trigger_and_wait(window, qtbot, window.files.act_export_session)

    # Open it through the menu action (the dialog stands in), off the GUI thread.
    window.files.act_open.trigger()
    qtbot.waitUntil(lambda: len(window.files.replays) == 1, timeout=WAIT)
    rep: MainWindow = window.files.replays[0]
    assert rep.isVisible()
    assert rep.windowTitle() == f"{TITLE_PREFIX}saved.json"
    assert rep.session is None and rep is not window
    assert window.files.messages[-1][1].startswith("Opened saved.json as a replay: 2 runs, 11")

    # The table: every task, same states, same workers.
    live_table = table(window)
    assert len(live_table) == 11
    assert table(rep) == live_table
    states = {s for s, _ in live_table.values()}
    assert {"finished", "failed"} <= states
    # The timeline: the same bars on the same lanes, same times (to the microsecond).
    assert rep.tl_data.n == window.tl_data.n == 11
    assert rep.tl_data.rows == window.tl_data.rows
    assert same_bars(bars(rep), bars(window))
    # The runs table and the CPU plot, as recorded.
    assert rep.runs.rowCount() == 2
    assert [rep.runs.index(r, RunTableModel.C_PROG).data() for r in range(2)] == \
        [window.runs.index(r, RunTableModel.C_PROG).data() for r in range(2)]
    assert rep.cpu.n >= 2
    xs, _ = rep.cpu.total_curve.getData()
    assert xs is not None and np.all(np.diff(xs) > 0) and xs[-1] < rep.now_s() + 1

    # Read-only: nothing to start or cancel; shortcuts left to the live window.
    assert not rep.controls_pane.isVisible()
    for act in (rep.act_start, rep.act_cancel_all, rep.act_kill_all, rep.act_clear):
        assert not act.isEnabled() and not act.isVisible() and act.shortcut().isEmpty()
    assert rep.act_follow.shortcut().isEmpty()
    for view, cols in ((rep.tasks_view, (TaskTableModel.C_CANCEL, TaskTableModel.C_FORCE)),
                       (rep.runs_view, (RunTableModel.C_CANCEL, RunTableModel.C_FORCE))):
        assert all(view.isColumnHidden(c) for c in cols)
    assert not rep.frame_timer.isActive()  # nothing to drain: the trace is static
    assert rep.files.act_quit.text() == "Close replay"
    # Durations stand still at the trace's end (time does not run on in a replay).
    d1 = rep.tasks.index(0, TaskTableModel.C_DUR).data()
    qtbot.wait(60)
    assert rep.tasks.index(0, TaskTableModel.C_DUR).data() == d1

    # The live window is untouched and still live.
    assert window.frame_timer.isActive() and len(window.store.runs()) == live_runs
    assert window.act_start.isEnabled() and not window.act_start.shortcut().isEmpty()
    assert not dialogs.errors

    # A replay can be exported again (its own store) and closes on its own.
    rep.files.ask_save_path = lambda *a: str(tmp_path / "again.json")
    trigger_and_wait(rep, qtbot, rep.files.act_export_session)
    from engine.trace import load_trace

    again = load_trace(tmp_path / "again.json")
    assert {t.task_id: t.state for t in again.tasks} == \
        {t.task_id: t.state for t in window.store.tasks()}
    rep.close()
    assert rep._closed and window.files.replays == []
    assert window.isVisible() and window.frame_timer.isActive()


def test_a_running_task_replays_as_running(window: Any, qtbot: Any, tmp_path: Path) -> None:
    """Exported mid-run: the replay shows the tasks still running at the trace's end."""
    from PySide6.QtCore import Qt

    from .helpers import fill

    dialogs = Dialogs(window)
    fill(window, ("threads",), "sleep", 2, "20s", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = window.store.runs()[-1].run_id
    qtbot.waitUntil(lambda: all(t.state is State.RUNNING for t in window.store.tasks(run_id)),
                    timeout=WAIT)
    dialogs.path = str(tmp_path / "mid.json")
    trigger_and_wait(window, qtbot, window.files.act_export_session)
    window.cancel_all()
    open_and_wait(window, qtbot, tmp_path / "mid.json")
    rep = window.files.replays[-1]
    assert {s for s, _ in table(rep).values()} == {"running"}
    assert rep.tl_data.n == 2


def _bad_files(tmp_path: Path, good: bytes) -> dict[str, Path]:
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    files = {
        "malformed": b'{"traceEvents": [ {"ph": "X", } ]}',
        # Cut after a comma: a cut inside a literal (e.g. "tr" of true) reads as malformed.
        "truncated": good[: good.rindex(b",", 0, len(good) // 2) + 1],
        "foreign": b'{"traceEvents": [{"name": "x", "ph": "X", "ts": 1, "dur": 2, '
                   b'"pid": 1, "tid": 1}]}',
        "not-json": b"\x00\x01\x02 binary junk \xff",
        "pickle": pickle.dumps(Evil()),
        "empty": b"",
        "array": b"[1, 2, 3]",
    }
    out = {}
    for name, data in files.items():
        p = tmp_path / f"{name}.json"
        p.write_bytes(data)
        out[name] = p
    out["missing"] = tmp_path / "missing.json"
    return out


def test_bad_files_get_one_line_and_change_nothing(window: Any, qtbot: Any,
                                                   tmp_path: Path) -> None:
    dialogs = Dialogs(window)
    run_and_wait(window, qtbot, ("threads",), "sleep", 3, "50ms", workers="3")
    dialogs.path = str(tmp_path / "good.json")
    trigger_and_wait(window, qtbot, window.files.act_export_session)
    good = (tmp_path / "good.json").read_bytes()
    title = window.windowTitle()
    runs = len(window.store.runs())
    rows = window.tasks.rowCount()
    expect = {
        "malformed": "malformed JSON", "truncated": "truncated JSON",
        "foreign": "not a TaskScope trace", "not-json": "not UTF-8",
        "pickle": "not UTF-8", "empty": "empty file", "array": "not a trace file",
        "missing": "no such file",
    }
    for name, path in _bad_files(tmp_path, good).items():
        n = len(dialogs.errors)
        msg = open_and_wait(window, qtbot, path)
        assert len(dialogs.errors) == n + 1, name  # shown (in a box), once
        err = dialogs.errors[-1]
        assert err == msg
        assert expect[name] in err, (name, err)
        assert path.name in err
        assert "\n" not in err and "Traceback" not in err and len(err) < 300
        assert window.files.replays == []
    assert not (tmp_path / "PWNED").exists()  # parsed as data, never unpickled
    # Nothing changed in the live window.
    assert window.windowTitle() == title
    assert len(window.store.runs()) == runs and window.tasks.rowCount() == rows
    assert window.frame_timer.isActive() and window.controls_pane.isVisible()


def test_replay_window_built_directly_and_cli_option(qapp: Any, qtbot: Any,
                                                     tmp_path: Path) -> None:
    """A window on a loaded trace without the prepared timeline (it lays the bars out itself),
    and the --replay option."""
    from engine.events import Event, Kind
    from engine.store import EventStore
    from engine.trace import export_session, load_trace
    from gui.app import parse_args

    store = EventStore()
    store.add_run(1, None, 1, 2, 1_000_000)
    store.append([
        Event(1, 1, Kind.STARTED, 2_000_000, pid=10, tid=11, thread="t", core=0),
        Event(1, 1, Kind.FINISHED, 5_000_000, pid=10, tid=11, thread="t", core=0),
        Event(1, 2, Kind.CANCELLED, 3_000_000, info={"reason": "cancelled"}),
    ])
    store.end_run(1, 5_000_000)
    export_session(store, tmp_path / "t.json")
    win = MainWindow(None, replay=load_trace(tmp_path / "t.json"))
    qtbot.addWidget(win)
    assert win.tl_data.n == 1 and win.tasks.rowCount() == 2
    assert win.cpu.readout.text() == "no CPU samples in this trace"
    assert abs(win.now_s() - 0.004) < 1e-9  # stands at the trace's end
    win.close()
    assert win._closed
    with pytest.raises(ValueError):
        MainWindow(None)
    assert parse_args(["--replay", "x.json"]).replay == "x.json"
