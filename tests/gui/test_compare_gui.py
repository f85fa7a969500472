"""Compare mode in the window: several ticked models run ONE AFTER ANOTHER (never at once), each
gets a band on one aligned time scale, and the results table, charts, winner and readings come
from the engine's figures, with a real GUI-loop lag p99. Timing assertions are loose: the
machine has 2 cores and other suites run alongside."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from engine import State
from gui.compare_view import TABLE_COLS

from .helpers import fill

WAIT = 30_000  # ms


def _compare_done(win: Any) -> bool:
    return win.compare.job is not None and win.compare.job.done and not win.compare.view.running


def test_two_models_run_one_after_another_with_bands_results_and_readings(
        window: Any, qtbot: Any) -> None:
    window.compare.options = {"settle_s": 0.2}
    fill(window, ("sequential", "threads"), "sleep", 4, "250ms", workers="4")
    assert "Compare 2 models" in window.controls.start_btn.text()
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    assert window.compare.active
    assert window.views.currentWidget() is window.compare_scroll
    # A second Start meanwhile is refused: it would skew the comparison.
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    # Live: the first model's run shows in the runs table and the timeline as usual.
    qtbot.waitUntil(lambda: window.runs.rowCount() >= 1 and window.tl_data.n >= 1, timeout=WAIT)
    assert "sequential" in window.compare.view.status.text()
    qtbot.waitUntil(lambda: _compare_done(window), timeout=WAIT)

    runs = window.store.runs()
    assert [r.spec.model for r in runs] == ["sequential", "threads"]  # nothing else started
    first, second = (window.store.tasks(r.run_id) for r in runs)
    assert all(t.state is State.FINISHED for t in first + second)
    last_end_first = max(t.end_ns for t in first)
    first_start_second = min(t.start_ns for t in second)
    assert first_start_second > last_end_first, "the models overlapped"
    # The window adopted both runs: rows, tasks, lanes.
    qtbot.wait(100)
    assert window.runs.rowCount() == 2 and window.tasks.rowCount() == 8

    view = window.compare.view
    res = view.result
    assert res is not None and not res.cancelled
    # One band per model, stacked in run order, on one aligned clock (each starts near 0).
    bands = view.data.bands()
    assert [view.data.run_model[rid] for rid, _, _ in bands] == ["sequential", "threads"]
    assert view.data.n == 8
    seq_slots = [view.data.slot_of[t.task_id] for t in first]
    thr_slots = [view.data.slot_of[t.task_id] for t in second]
    assert min(view.data.start[thr_slots]) < 0.5 and min(view.data.start[seq_slots]) < 0.5
    assert max(view.data.end[seq_slots]) > 0.9  # 4 x 250 ms, one after another
    assert max(view.data.end[thr_slots]) < max(view.data.end[seq_slots])

    # The winner (threads wait together) is marked in the table, the band label and the charts.
    assert res.winner == "threads"
    rows = {r[1]: r for r in view.row_texts()}
    assert rows["threads"][0] == "★" and rows["sequential"][0] == ""
    assert view.band_label(runs[1].run_id).startswith("★")
    assert "winner" in view.status.text() and "threads" in view.status.text()
    # Real GUI-loop lag p99 from the window's own probe, shown in the table.
    for r in res.results:
        assert r.gui_lag_p99_ms is not None, r
        assert r.wall_s is not None and r.tasks_per_s is not None
    lag = TABLE_COLS.index("window lag p99")
    assert rows["threads"][lag].endswith(" ms") and rows["threads"][lag] != "n/a"
    assert rows["sequential"][TABLE_COLS.index("speedup")] == "1.00×"
    # The readings are the engine's sentences.
    text = view.readings.toPlainText()
    for r in res.results:
        assert r.reading and r.reading in text
    # Charts: one bar per model in each chart, the wall-time bars are the measured walls.
    wall = view.charts.charts[0]
    assert list(wall.bars.opts["height"]) == [r.wall_s for r in res.results]
    assert len(view.charts.charts) == 7
    assert view.charts.titles()[1] == "speedup over sequential"
    # Toggling to the compare clock redraws the same bars on one clock.
    view.align.setChecked(False)
    assert view.data.n == 8
    assert min(view.data.start[[view.data.slot_of[t.task_id] for t in second]]) > 0.9
    view.align.setChecked(True)


def test_cancel_the_compare_mid_way(window: Any, qtbot: Any) -> None:
    window.compare.options = {"settle_s": 0.1}
    fill(window, ("threads", "asyncio"), "sleep", 3, "20s", workers="3")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.store.runs()) == 1, timeout=WAIT)
    rid = window.store.runs()[0].run_id
    qtbot.waitUntil(lambda: all(t.state is State.RUNNING for t in window.store.tasks(rid)),
                    timeout=WAIT)
    view = window.compare.view
    qtbot.waitUntil(view.cancel_btn.isEnabled, timeout=WAIT)
    qtbot.mouseClick(view.cancel_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _compare_done(window), timeout=WAIT)
    res = view.result
    assert res is not None and res.cancelled
    assert [r.status for r in res.results] == ["cancelled", "skipped"]
    first, second = (r.model for r in res.results)  # the form's order: asyncio, threads
    assert [r.spec.model for r in window.store.runs()] == [first]  # the second never started
    assert all(t.state is State.CANCELLED for t in window.store.tasks(rid))
    assert "CANCELLED" in view.status.text()
    assert not view.cancel_btn.isEnabled()
    rows = {r[1].split(" · ")[0]: r for r in view.row_texts()}
    assert "skipped" in rows[second][1] and "cancelled" in rows[first][1]
    # A single model afterwards starts one plain run, as before.
    fill(window, ("threads",), "sleep", 1, "100ms", workers="1")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.store.runs()) == 2, timeout=WAIT)
    assert window.compare.job.done  # no new comparison


def test_gui_loop_option_is_refused_in_a_compare(window: Any, qtbot: Any) -> None:
    fill(window, ("asyncio", "threads"), "sleep", 2, "100ms")
    window.controls.gui_loop.setChecked(True)
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    assert window.controls.gui_loop_field.error.isVisibleTo(window)
    assert "one model" in window.controls.gui_loop_field.error.text()
    assert window.store.runs() == [] and window.compare.job is None


def test_closing_mid_compare_stops_it_and_leaves_no_workers(window: Any, qtbot: Any) -> None:
    import time

    from tests.conftest import engine_children

    window.compare.options = {"settle_s": 0.1}
    fill(window, ("threads", "processes"), "sleep", 2, "20s", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.store.runs()) == 1, timeout=WAIT)
    rid = window.store.runs()[0].run_id
    qtbot.waitUntil(lambda: all(t.state is State.RUNNING for t in window.store.tasks(rid)),
                    timeout=WAIT)
    job = window.compare.job
    t0 = time.monotonic()
    window.close()
    qtbot.waitUntil(lambda: window._closed, timeout=10_000)
    assert time.monotonic() - t0 < 4.0
    assert job.wait(5.0) and job.result is not None and job.result.cancelled
    assert [r.spec.model for r in window.store.runs()] == ["threads"]  # processes never ran
    assert not engine_children()
