"""The window end to end, against a real engine session: start by clicking, watch tasks appear
in the table and the timeline, cancel with the buttons, cancel all, close while running."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from PySide6.QtCore import QPointF, Qt

from engine import State
from gui.task_table import RunTableModel, TaskTableModel
from tests.conftest import alive_pids, engine_children

from .helpers import all_running, click_cell, fill, source_row, states

WAIT = 15_000  # ms; loose: the machine is small and busy with other suites


def started_run(win: Any) -> int:
    runs = win.store.runs()
    assert runs, "no run started"
    return runs[-1].run_id


def test_start_by_click_shows_tasks_in_table_and_timeline(window: Any, qtbot: Any) -> None:
    fill(window, ("threads",), "sleep", 4, "300ms", workers="4")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = started_run(window)
    qtbot.waitUntil(lambda: window.tasks.rowCount() == 4, timeout=WAIT)
    assert window.runs.rowCount() == 1
    # Every task gets a bar, on a lane of its own real worker thread.
    qtbot.waitUntil(lambda: window.tl_data.n == 4, timeout=WAIT)
    tids = {t.tid for t in window.store.tasks(run_id)}
    assert len(window.tl_data.workers) == len(tids) == 4
    assert window.tl_data.rows == 4
    qtbot.waitUntil(lambda: window.store.run(run_id).done, timeout=WAIT)
    qtbot.wait(100)  # one more frame
    model = window.tasks
    col = TaskTableModel.C_STATE
    shown = {model.index(r, col).data() for r in range(model.rowCount())}
    assert shown == {"finished"}
    # Bars carry the final state and the real durations (about 300 ms each).
    d = window.tl_data
    assert set(d.state[: d.n]) == {3}  # STATE_CODE[FINISHED]
    durations = d.end[: d.n] - d.start[: d.n]
    assert all(0.25 < x < 3.0 for x in durations), durations
    # The run row says so.
    assert window.runs.index(0, RunTableModel.C_PROG).data() == "4/4"
    # The window painted a frame with the bars in it.
    assert not window.grab().isNull()


def test_cancel_one_task_with_its_button_then_the_run(window: Any, qtbot: Any) -> None:
    fill(window, ("threads",), "sleep", 3, "20s", workers="3")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = started_run(window)
    qtbot.waitUntil(lambda: all_running(window, run_id), timeout=WAIT)
    first = window.store.tasks(run_id)[0].task_id
    click_cell(qtbot, window.tasks_view, source_row(window, first), TaskTableModel.C_CANCEL)
    qtbot.waitUntil(lambda: window.store.task(first).state is State.CANCELLED, timeout=WAIT)
    # Only that task: the others keep running.
    assert states(window, run_id)[1:] == [State.RUNNING, State.RUNNING]
    # Threads cannot be killed: no Kill button on thread tasks.
    assert window.tasks.index(0, TaskTableModel.C_FORCE).data() == ""

    click_cell(qtbot, window.runs_view, 0, RunTableModel.C_CANCEL)
    qtbot.waitUntil(lambda: window.store.run(run_id).done, timeout=WAIT)
    assert states(window, run_id) == [State.CANCELLED] * 3


def test_force_cancel_a_process_task(window: Any, qtbot: Any) -> None:
    fill(window, ("processes",), "sleep", 2, "30s", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = started_run(window)
    qtbot.waitUntil(lambda: all_running(window, run_id), timeout=30_000)
    recs = window.store.tasks(run_id)
    victim, other = recs[0].task_id, recs[1].task_id
    qtbot.wait(100)
    assert window.tasks.index(window.tasks.row_of[victim], TaskTableModel.C_FORCE).data() == "Kill"
    click_cell(qtbot, window.tasks_view, source_row(window, victim), TaskTableModel.C_FORCE)
    qtbot.waitUntil(lambda: window.store.task(victim).state.terminal, timeout=WAIT)
    assert window.store.task(victim).state is State.CANCELLED
    assert window.store.task(other).state is State.RUNNING  # the kill hit one worker only


def test_cancel_all_with_esc_and_with_the_toolbar(window: Any, qtbot: Any) -> None:
    # Two models ticked: a comparison, so they run one after another, never at once. Esc
    # cancels the running model AND the comparison: the second model never starts.
    window.compare.options = {"settle_s": 0.1}
    fill(window, ("threads", "asyncio"), "sleep", 3, "20s")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.store.runs()) == 1, timeout=WAIT)
    ids = [r.run_id for r in window.store.runs()]
    qtbot.waitUntil(lambda: all(all_running(window, r) for r in ids), timeout=WAIT)
    assert len(window.store.runs()) == 1  # the other model waits its turn
    window.activateWindow()
    window.tasks_view.setFocus()
    qtbot.keyClick(window.tasks_view, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: all(window.store.run(r).done for r in ids), timeout=WAIT)
    assert all(s is State.CANCELLED for r in ids for s in states(window, r))
    qtbot.waitUntil(lambda: window.compare.job.done, timeout=WAIT)
    assert len(window.store.runs()) == 1 and window.compare.job.result.cancelled

    # And the toolbar button.
    fill(window, ("threads",), "sleep", 2, "20s", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    rid = started_run(window)
    qtbot.waitUntil(lambda: all_running(window, rid), timeout=WAIT)
    btn = window.toolbar.widgetForAction(window.act_cancel_all)
    qtbot.mouseClick(btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.store.run(rid).done, timeout=WAIT)
    assert states(window, rid) == [State.CANCELLED] * 2


def test_timeline_click_selects_the_task_and_hover_describes_it(window: Any, qtbot: Any) -> None:
    fill(window, ("threads",), "sleep", 2, "1s", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = started_run(window)
    qtbot.waitUntil(lambda: window.store.run(run_id).done, timeout=WAIT)
    qtbot.wait(100)
    window.act_follow.setChecked(False)
    window.timeline.set_follow(False)
    vb = window.timeline.getPlotItem().getViewBox()
    vb.setRange(xRange=(0, window.now_s() + 0.5), yRange=(0, 2), padding=0)
    qtbot.wait(50)
    target = window.store.tasks(run_id)[1].task_id
    centre = window.timeline.item.bar_center(target)
    assert centre is not None
    scene_pt = vb.mapViewToScene(centre)
    pos = window.timeline.mapFromScene(scene_pt)
    qtbot.mouseClick(window.timeline.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: window.timeline.item.selected == target, timeout=WAIT)
    cur = window.proxy.mapToSource(window.tasks_view.currentIndex())
    assert window.tasks.recs[cur.row()].task_id == target
    text = window.describe_task(target)
    assert f"task {target}" in text and "finished" in text and "tid" in text
    # Nothing is hit between lanes or before the first bar.
    assert window.tl_data.find(-0.5, 0.5, window.now_s()) is None
    assert window.timeline.item.bar_center(10_000) is None
    assert isinstance(centre, QPointF)


def test_coroutines_on_the_gui_loop_are_bounded_and_run_there(window: Any, qtbot: Any) -> None:
    fill(window, ("asyncio",), "sleep", 5, "200ms")
    window.controls.gui_loop.setChecked(True)
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = started_run(window)
    qtbot.waitUntil(lambda: window.store.run(run_id).done, timeout=WAIT)
    recs = window.store.tasks(run_id)
    assert [r.state for r in recs] == [State.FINISHED] * 5
    assert {r.tid for r in recs} == {threading.main_thread().native_id}
    assert window.runs.index(0, 1).data() == "asyncio (GUI loop)"



@pytest.mark.timeout(90)
def test_closing_while_tasks_run_cancels_and_leaves_no_workers(window: Any, qtbot: Any) -> None:
    # Two single-model runs started one by one (ticking both would compare them in turn).
    fill(window, ("processes",), "cpu", 4, "30s", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    fill(window, ("threads",), "cpu", 4, "30s", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    ids = [r.run_id for r in window.store.runs()]
    assert len(ids) == 2
    qtbot.waitUntil(lambda: all(all_running(window, r, 2) for r in ids), timeout=30_000)
    pids = window.session.worker_pids()
    assert len(pids) == 2 and os.getpid() not in pids
    t0 = time.monotonic()
    window.close()
    qtbot.waitUntil(lambda: window._closed, timeout=10_000)
    took = time.monotonic() - t0
    assert took < 4.0, took  # the promise is 2 s; loose for a loaded 2-core machine
    assert window.shutdown_report is not None
    assert not alive_pids(pids)
    assert not engine_children()
    # Thread tasks check their flag every millisecond: all of them stopped.
    thread_run = ids[1]
    assert all(s.terminal for s in states(window, thread_run)), states(window, thread_run)


def test_hovering_a_bar_shows_the_task_details(window: Any, qtbot: Any) -> None:
    fill(window, ("threads",), "sleep", 1, "1s", workers="1")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    run_id = started_run(window)
    qtbot.waitUntil(lambda: window.store.run(run_id).done, timeout=WAIT)
    window.act_follow.setChecked(False)
    vb = window.timeline.getPlotItem().getViewBox()
    vb.setRange(xRange=(0, window.now_s() + 0.5), yRange=(0, 2), padding=0)
    qtbot.wait(50)
    task = window.store.tasks(run_id)[0].task_id
    pos = window.timeline.mapFromScene(vb.mapViewToScene(window.timeline.item.bar_center(task)))
    qtbot.mouseMove(window.timeline.viewport(), pos)
    qtbot.waitUntil(lambda: window.timeline.item.hovered == task, timeout=5000)
    from PySide6.QtWidgets import QToolTip

    qtbot.waitUntil(QToolTip.isVisible, timeout=5000)
    assert f"task {task}" in QToolTip.text() and "finished" in QToolTip.text()
