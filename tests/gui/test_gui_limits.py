"""The window's own buffers are bounded (issue 8, soak): what the README's Limits section says.

* CPU view: a fixed ring of samples (halved when full), whatever the run length.
* Tables and timeline: at most ``MAX_SHOWN_TASKS`` tasks; past it the oldest finished runs leave
  the view (active runs never do), and the status bar says so. "Clear finished" stays cleared.
* Events the engine store's ring overwrote before they were read for the window are counted in
  the status bar.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import Qt

from gui import window_frame
from gui.cpu_view import CpuView

from .helpers import fill

WAIT = 15_000


def _start(win: Any, qtbot: Any, tasks: int, size: str = "5ms") -> int:
    n = len(win.store.runs())
    fill(win, ("threads",), "sleep", tasks, size, workers="4")
    qtbot.mouseClick(win.controls.start_btn, Qt.MouseButton.LeftButton)
    assert len(win.store.runs()) == n + 1, "the run did not start"
    return win.store.runs()[-1].run_id


def test_cpu_view_keeps_a_fixed_number_of_samples(qtbot: Any) -> None:
    view = CpuView(2, capacity=64)
    qtbot.addWidget(view)
    arrays = (view.t, view.cores, view.total, view.app, view.workers)
    for i in range(1000):  # 100 s at 10 Hz
        s = SimpleNamespace(t_ns=i * 100_000_000, cores=[10.0, 20.0], total=15.0,
                            self_cpu=5.0, workers={})
        view.add_samples([s])
        assert view.n <= 64
    assert all(a.shape[0] == 64 for a in arrays)
    assert view.t[view.n - 1] == pytest.approx(99.9)  # the newest sample is kept


def test_clear_finished_stays_cleared(window: Any, qtbot: Any) -> None:
    rid = _start(window, qtbot, 3)
    qtbot.waitUntil(lambda: window.store.run(rid).done, timeout=WAIT)
    qtbot.waitUntil(lambda: window.tasks.rowCount() == 3, timeout=WAIT)
    window.act_clear.trigger()
    assert window.tasks.rowCount() == 0 and window.runs.rowCount() == 0
    qtbot.wait(250)  # several frames: the store still holds the run; the view must not re-add it
    assert window.tasks.rowCount() == 0 and window.runs.rowCount() == 0
    assert window.tl_data.n == 0
    rid2 = _start(window, qtbot, 2)  # new runs still appear
    qtbot.waitUntil(lambda: window.tasks.rowCount() == 2, timeout=WAIT)
    assert {t.run_id for t in window.tasks.recs} == {rid2}


def test_tables_and_timeline_are_bounded_oldest_finished_runs_first(
        window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(window_frame, "MAX_SHOWN_TASKS", 10)
    ids = []
    for _ in range(4):  # 4 finished runs of 3 tasks: 12 > 10
        rid = _start(window, qtbot, 3)
        ids.append(rid)
        qtbot.waitUntil(lambda r=rid: window.store.run(r).done, timeout=WAIT)
        qtbot.wait(80)
    qtbot.waitUntil(lambda: window.tasks.rowCount() <= 10, timeout=WAIT)
    shown = [r.run_id for r in window.runs.runs]
    assert shown == ids[-len(shown):] and ids[-1] in shown  # the oldest went, the newest stay
    assert window.tasks.rowCount() == 3 * len(shown) <= 10
    assert {t.run_id for t in window.tasks.recs} == set(shown)
    assert window.tl_data.n == window.tasks.rowCount()  # the timeline follows the table
    assert "left the view" in window.statusBar().currentMessage()
    # An active run is never dropped, even when it alone passes the limit.
    big = _start(window, qtbot, 12, "3s")
    qtbot.waitUntil(lambda: big in window.runs.row_of, timeout=WAIT)
    qtbot.wait(100)
    assert [r.run_id for r in window.runs.runs] == [big]
    assert window.tasks.rowCount() == 12
    window.cancel_all()
    qtbot.waitUntil(lambda: window.store.run(big).done, timeout=WAIT)


def test_events_the_ring_dropped_are_shown_in_the_status_bar(
        qapp: Any, qloop: Any, qtbot: Any, leak_check: None) -> None:
    """The engine store's ring (in the engine process) overwrites events before the engine
    reads them for the window: the count reaches the status bar, and every record is still
    right (the engine resends an active run's records when it fell behind)."""
    import time

    from engine import State
    from engine.remote import RemoteSession
    from gui.main_window import MainWindow

    session = RemoteSession(10.0, max_events=8)  # a tiny ring in the engine process
    win = MainWindow(session, qloop)
    win.show()
    try:
        win.frame_timer.stop()  # frames only when this test asks
        rid = _start(win, qtbot, 50, "1ms")

        def ended() -> bool:
            time.sleep(0.02)
            win.frame()
            return win.store.run(rid).done

        qtbot.waitUntil(ended, timeout=WAIT)
        for _ in range(5):  # the last records may come one update after the run's end
            ended()
        assert win.dropped > 0
        # The status bar's figures refresh twice a second while idle (issue 17 §2): the
        # count reaches it at the next refresh.
        qtbot.waitUntil(lambda: ended() and f"{win.dropped:,} dropped" in win.st_events.text(),
                        timeout=3000)
        assert [t.state for t in win.store.tasks(rid)] == [State.FINISHED] * 50
    finally:
        win.close()
        qtbot.waitUntil(lambda: win._closed, timeout=6000)
        win.shutdown_report or session.shutdown()
