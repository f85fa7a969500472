"""What the window says, said right (issue 16): refusals at the field and under Start, no
stale messages, plurals, the help, the presets' texts agreeing with what they do, the custom
form in plain words."""

from __future__ import annotations

import re
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QStatusBar

from engine import State
from gui.controls import PRESETS
from gui.status_readouts import StatusReadouts

from .helpers import fill

WAIT = 30_000


def _done(win: Any) -> bool:
    return bool(win.store.runs()) and all(r.end_ns is not None for r in win.store.runs())


def test_ctrl_r_with_a_bad_custom_function_says_why(window: Any, qtbot: Any) -> None:
    c = window.controls
    window.resize(1366, 768)
    window.default_layout()
    fill(window, ("threads",), "cpu", 8, "100ms")
    c.set_workload("custom")
    c.custom.function.setText("nosuch:fn")
    qtbot.waitUntil(lambda: c.custom.result is not None and not c.custom.checking, timeout=WAIT)
    window.tasks_view.setFocus()
    qtbot.keyClick(window.tasks_view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    QApplication.processEvents()
    assert window.store.runs() == []
    assert "no such module: nosuch" in c.custom.function_error.text()
    assert c.summary.text() == "Not started: function: no such module: nosuch"
    assert c.custom.function.hasFocus()
    # A good start afterwards replaces the refusal.
    c.set_workload("sleep")
    c.size.setText("50ms")
    c.tasks.setText("2")
    qtbot.keyClick(window.tasks_view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert c.summary.text().startswith("Started run")


def test_no_stale_messages_after_runs_end(window: Any, qtbot: Any) -> None:
    c = window.controls
    fill(window, ("threads",), "sleep", 3, "100ms", workers="3")
    c.request_start()
    assert c.summary.text() == "Started run 1."
    qtbot.waitUntil(lambda: _done(window) and "Started" not in c.summary.text(), timeout=WAIT)
    assert re.fullmatch(r"Run 1 ended after \d+\.\d\d s: 3 finished\.", c.summary.text())
    # A cancelled comparison: "Cancel requested..." goes when it has ended.
    window.compare.options = {"settle_s": 0.05}
    fill(window, ("sequential", "threads"), "sleep", 4, "2s", workers="4")
    c.request_start()
    qtbot.waitUntil(lambda: window.runs.rowCount() >= 2, timeout=WAIT)
    window.act_cancel_all.trigger()
    bar: QStatusBar = window.statusBar()
    assert bar.currentMessage().startswith("Cancel requested for the comparison")
    qtbot.waitUntil(lambda: not window.compare.active, timeout=WAIT)
    qtbot.waitUntil(lambda: bar.currentMessage() == "", timeout=3000)


def test_plurals_in_the_status_bar(qapp: Any) -> None:
    bar = QStatusBar()
    r = StatusReadouts(bar)
    r.show(None, 1, 0, None, [], active=1, running=1)
    assert r.events.text() == "1 event/s"
    assert r.tasks.text() == "1 active run · 1 running"
    r.show(None, 2, 0, None, [], active=2, running=0)
    assert r.events.text() == "2 events/s" and r.tasks.text() == "2 active runs · 0 running"


def test_help_lists_bench_and_the_windows_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from gui.entry import main

    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    for word in ("bench", "run", "compare", "models", "--preset", "--start", "--replay",
                 "--quit-after"):
        assert word in out, word


def test_the_crash_preset_names_the_tasks_that_crash(window: Any, qtbot: Any) -> None:
    c = window.controls
    preset = next(p for p in PRESETS if p.workload == "crash")
    c.preset.setCurrentIndex(PRESETS.index(preset) + 1)
    named = {int(n) for n in re.findall(r"#(\d+)", c.story.text())}
    c.size.setText("100ms")
    c.request_start()
    qtbot.waitUntil(lambda: _done(window), timeout=WAIT)
    failed = {t.index for t in window.store.tasks(window.store.runs()[0].run_id)
              if t.state is State.FAILED}
    assert failed == named == {0, 3, 6}


def test_the_threads_preset_explains_the_per_core_plot() -> None:
    story = next(p for p in PRESETS if p.models == ("threads", "processes")).story
    assert "one core at a time" not in story
    assert "between cores" in story and "per-core" in story


def test_the_custom_form_speaks_plainly_and_fits(window: Any, qtbot: Any) -> None:
    window.resize(1366, 768)
    window.default_layout()
    c = window.controls
    c.set_workload("custom")
    QApplication.processEvents()
    text = c.wl_desc.text()
    assert "params" not in text and "=" not in text and "module:function" in text
    for edit in (c.custom.function, c.custom.args):
        room = edit.contentsRect().width() - 8  # the line edit's own text margins
        assert edit.fontMetrics().horizontalAdvance(edit.placeholderText()) <= room, \
            edit.placeholderText()
