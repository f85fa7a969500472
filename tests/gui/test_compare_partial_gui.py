"""The Compare tab never contradicts itself: the reading's busy cores are the table's, a
cancelled run is drawn and labelled partial and never ranked, the runs table says how tasks
ended, and a comparison comes back whole in a replay of its exported trace."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from engine import State
from gui.compare_charts import PARTIAL_BRUSH
from gui.compare_view import IDLE_REPLAY, TABLE_COLS
from gui.table_delegates import ProgressDelegate
from gui.task_table import CELL_ROLE, RunTableModel
from gui.theme import STATE_COLORS

from .helpers import fill
from .test_export_gui import Dialogs, trigger_and_wait

WAIT = 30_000  # ms


def _compare_done(win: Any) -> bool:
    return win.compare.job is not None and win.compare.job.done and not win.compare.view.running


def _rows(view: Any) -> dict[str, dict[str, str]]:
    """The results table by model (its first word) and column title."""
    return {r[1].split(" · ")[0]: dict(zip(TABLE_COLS, r, strict=True))
            for r in view.row_texts()}


def _cancel_second_model(window: Any, qtbot: Any) -> Any:
    """asyncio completes (3 sleeps of 1.5 s at once), then Esc while threads run the same."""
    window.compare.options = {"settle_s": 0.1}
    fill(window, ("asyncio", "threads"), "sleep", 3, "1500ms", workers="3")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.store.runs()) == 2, timeout=WAIT)
    rid = window.store.runs()[1].run_id
    qtbot.waitUntil(lambda: any(t.state is State.RUNNING for t in window.store.tasks(rid)),
                    timeout=WAIT)
    qtbot.waitUntil(window.compare.view.cancel_btn.isEnabled, timeout=WAIT)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: _compare_done(window), timeout=WAIT)
    qtbot.wait(100)
    return window.compare.view


def test_a_cancelled_run_is_partial_everywhere_and_never_ranked(window: Any, qtbot: Any) -> None:
    view = _cancel_second_model(window, qtbot)
    res = view.result
    aio, thr = res.results
    assert aio.complete and thr.partial and thr.status == "cancelled" and res.cancelled
    # Neither is ranked: one complete run has nothing to be measured against.
    assert res.winner is None and aio.speedup is None and thr.speedup is None
    assert thr.overhead_per_task_s is None
    assert "no winner (only one run completed" in view.status.text()
    rows = _rows(view)
    assert rows["threads"]["model"] == "threads · partial (cancelled)"
    assert rows["threads"]["overhead"] == "n/a" and rows["threads"]["speedup"] == "n/a"
    assert not rows["threads"][""] and not rows["asyncio"][""]
    # The band is hatched and labelled.
    assert thr.run_id in view.data.partial and aio.run_id not in view.data.partial
    assert view.band_label(thr.run_id) == "threads · partial"
    # The charts: its bars hatched, its values labelled partial, no negative overhead.
    wall = view.charts.chart("wall_s")
    styles = [b.style() for b in wall.bars.opts["brushes"]]
    assert styles[1] == PARTIAL_BRUSH and styles[0] != PARTIAL_BRUSH
    assert wall.label_texts()[1].endswith("· partial")
    over = view.charts.chart("overhead_ms")
    assert over.label_texts()[1].startswith("n/a")
    assert min(over.bars.opts["height"]) >= 0 or aio.overhead_per_task_s < 0
    assert "partial" in view.legend.text()
    assert "partial run" in thr.reading and "cancelled" in thr.reading
    assert "no gain over the baseline" not in aio.reading

    # The runs table: the cancelled run's bar is grey and counts 0 finished, not a full 3/3.
    m = window.runs
    row = m.row_of[thr.run_id]
    segs, text = m.index(row, RunTableModel.C_PROG).data(CELL_ROLE)
    counts = window.store.run(thr.run_id).counts
    assert text == f"{counts.get('finished', 0)}/3"
    assert dict((c, f) for f, c in segs)[STATE_COLORS[State.CANCELLED]] == \
        counts["cancelled"] / 3
    assert "cancelled" in m.index(row, RunTableModel.C_PROG).data(Qt.ItemDataRole.ToolTipRole)
    done_segs, done_text = m.index(m.row_of[aio.run_id], RunTableModel.C_PROG).data(CELL_ROLE)
    assert done_text == "3/3" and done_segs == ((1.0, STATE_COLORS[State.FINISHED]),)


def test_the_progress_bar_paints_each_ending_in_its_colour(qapp: Any) -> None:
    """A run of 8 tasks, 2 finished and 6 cancelled: green for a quarter, then grey."""
    from PySide6.QtGui import QStandardItem, QStandardItemModel

    green, grey = STATE_COLORS[State.FINISHED], STATE_COLORS[State.CANCELLED]
    model = QStandardItemModel(1, 1)
    item = QStandardItem()
    item.setData((((0.25, green), (0.75, grey)), "2/8"), CELL_ROLE)
    model.setItem(0, 0, item)
    img = QImage(200, 24, QImage.Format.Format_ARGB32)
    img.fill(QColor("#000000"))
    p = QPainter(img)
    opt = QStyleOptionViewItem()
    opt.rect = QRect(0, 0, 200, 24)
    d = ProgressDelegate()
    d.cache_enabled = False
    d.paint(p, opt, model.index(0, 0))
    p.end()
    assert img.pixelColor(20, 12).name() == green
    assert img.pixelColor(150, 6).name() == grey


def test_the_readings_busy_cores_are_the_tables(window: Any, qtbot: Any) -> None:
    """Issue 16.1: "threads 1.46" in the table against "0.9 cores busy" in the reading."""
    window.compare.options = {"settle_s": 0.1}
    fill(window, ("sequential", "threads"), "cpu", 2, "150ms", workers="2")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _compare_done(window), timeout=WAIT)
    view = window.compare.view
    rows = _rows(view)
    for r in view.result.results:
        said = re.search(r"(\d+\.\d+) cores busy", r.reading)
        assert said, r.reading
        assert rows[r.model]["busy cores"] == said.group(1)
        assert rows[r.model]["machine"] != "n/a"  # the machine's load: a figure of its own
    # The window's lag is shown as the window's, and never in a model's reading.
    assert all("lag" not in r.reading for r in view.result.results)
    assert rows["threads"]["window lag p99"].endswith(" ms")


def test_an_exported_comparison_comes_back_in_its_replay(window: Any, qtbot: Any,
                                                         tmp_path: Path) -> None:
    assert "{" not in " ".join(window.compare.view.charts.titles())  # never the raw template
    view = _cancel_second_model(window, qtbot)
    live_rows, live_readings = view.row_texts(), view.readings.toPlainText()
    dialogs = Dialogs(window)
    dialogs.path = str(tmp_path / "compared.json")
    assert trigger_and_wait(window, qtbot, window.files.act_export_session).startswith("info")
    window.files.open_trace(tmp_path / "compared.json")
    qtbot.waitUntil(lambda: len(window.files.replays) == 1, timeout=WAIT)
    rep = window.files.replays[0]
    rv = rep.compare.view
    assert rep.views.tabText(rep.views.currentIndex()) == "Compare"
    assert rv.result is not None and rv.result.models == ["asyncio", "threads"]
    assert rv.row_texts() == live_rows
    assert rv.readings.toPlainText() == live_readings
    assert "press Start" not in rv.status.text() and rv.status.text() == view.status.text()
    assert [rv.data.run_model[rid] for rid, _, _ in rv.data.bands()] == ["asyncio", "threads"]
    assert rv.data.n == view.data.n and rv.data.partial == view.data.partial
    assert "{" not in " ".join(rv.charts.titles())
    assert rv.charts.chart("wall_s").label_texts() == view.charts.chart("wall_s").label_texts()


def test_a_replay_without_a_comparison_says_so(window: Any, qtbot: Any, tmp_path: Path) -> None:
    from .test_export_gui import run_and_wait

    run_and_wait(window, qtbot, ("threads",), "sleep", 2, "50ms", workers="2")
    dialogs = Dialogs(window)
    dialogs.path = str(tmp_path / "single.json")
    trigger_and_wait(window, qtbot, window.files.act_export_session)
    window.files.open_trace(tmp_path / "single.json")
    qtbot.waitUntil(lambda: len(window.files.replays) == 1, timeout=WAIT)
    rv = window.files.replays[0].compare.view
    assert rv.result is None and rv.status.text() == IDLE_REPLAY
    assert "Start" not in rv.status.text()
    assert "{" not in " ".join(rv.charts.titles())
