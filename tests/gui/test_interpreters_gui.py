"""The Interpreter box in the window: this interpreter ticked by default, prepared ones listed,
"Add…" preparing one for real (with its progress shown) or failing in one line, runs and
comparisons on other interpreters in engine processes of their own, each saying which
interpreter ran it, and no engine process left when the window closes (the window fixture's
leak check). pyenv's 3.13, prepared once per test session; skipped where pyenv lacks it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from engine import State
from engine.samples import Sample

from .helpers import fill

WAIT = 60_000  # ms


@pytest.fixture
def cache313(prepared_pythons: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """pyenv's 3.13, prepared in the session's cache, which the window's box reads."""
    added = prepared_pythons.get("3.13")
    monkeypatch.setenv("TASKSCOPE_CACHE_DIR", str(prepared_pythons.cache))
    return added


def test_this_interpreter_is_ticked_by_default_and_a_failed_add_says_why_in_one_line(
        window: Any, qtbot: Any, tmp_path: Path) -> None:
    box = window.controls.interpreters
    here = box.box(sys.executable)
    assert here is not None and here.isChecked() and "this one" in here.text()
    assert box.engine_pythons() == [sys.executable]
    n = len(box.interpreters())
    box.add(str(tmp_path / "no-python-here"))
    assert not box.add_btn.isEnabled()  # busy: one job at a time
    qtbot.waitUntil(lambda: not box.busy() and box.add_btn.isEnabled(), timeout=WAIT)
    text = box.status.text()
    assert text.startswith("Adding failed: ") and "not a Python" in text, text
    assert "\n" not in text and box.status.objectName() == "fieldError"
    assert len(box.interpreters()) == n  # nothing listed


def test_add_prepares_313_and_a_comparison_runs_every_model_on_both_interpreters(
        cache313: Any, window: Any, qtbot: Any) -> None:
    box = window.controls.interpreters
    exe = str(cache313.interpreter)
    # Listed from its environment's marker at once (nothing run to list it) ...
    listed = box.box(exe)
    assert listed is not None and listed.isEnabled() and not listed.isChecked()
    c = window.controls
    assert not c.model_boxes["interpreters"].isEnabled()  # this 3.11 has none
    # The window says how to have it here: tick the interpreter listed that has it.
    assert "tick 3.13.0 in the Interpreter box" in c.model_boxes["interpreters"].toolTip()
    assert "Add…" in c.model_boxes["free-threaded"].toolTip()  # none listed has that one
    # ... and Add prepares it again for real (a re-check), progress shown, then ticks it.
    box.add(exe)
    seen: list[str] = []
    qtbot.waitUntil(lambda: seen.append(box.status.text()) or not box.busy(), timeout=300_000)
    assert box.status.objectName() == "hint", box.status.text()
    assert any("Adding" in s and ":" in s for s in seen)  # pip's and prepare's lines
    assert listed.isChecked() and len(box.selected()) == 2
    assert c.model_boxes["interpreters"].isEnabled()  # 3.13 has sub-interpreters
    assert "2 interpreters" in c.start_btn.text()

    window.compare.options = {"settle_s": 0.1}
    fill(window, ("sequential", "interpreters"), "cpu", 2, "20ms", workers="2")
    qtbot.mouseClick(c.start_btn, Qt.MouseButton.LeftButton)
    assert window.compare.active
    qtbot.waitUntil(lambda: window.compare.job.done and not window.compare.view.running,
                    timeout=WAIT * 2)
    res = window.compare.view.result
    assert res is not None and not res.cancelled
    here = f"{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}"
    assert [r.model for r in res.results] == [
        f"sequential · {here}", f"interpreters · {here}",
        "sequential · 3.13.0", "interpreters · 3.13.0"]
    assert [r.status for r in res.results][2:] == ["complete", "complete"]
    assert "not available" in res.results[1].error  # no sub-interpreters here
    # The runs on 3.13 ran in an engine process of their own and say so in the Runs table.
    runs = window.store.runs()
    far = [r for r in runs if r.info.get("python", {}).get("version") == "3.13.0"]
    assert len(far) == 2 and all(r.run_id >= 1_000_000 for r in far)
    interp = next(r for r in far if r.spec.model == "interpreters")
    assert all(t.state is State.FINISHED and t.thread.startswith("interp-")
               for t in window.store.tasks(interp.run_id))
    row = window.runs.row_of[interp.run_id]
    cell = window.runs.index(row, 1)
    assert window.runs.data(cell) == "interpreters · 3.13.0"
    assert "3.13.0" in window.runs.data(cell, Qt.ItemDataRole.ToolTipRole)
    # No Kill for sub-interpreters, and the window says why: their cancel is cooperative.
    kill = window.runs.index(row, window.runs.C_FORCE)
    assert window.runs.data(kill) == ""
    tip = window.runs.data(kill, Qt.ItemDataRole.ToolTipRole)
    assert "cooperative" in tip and "an interpreter, like a thread, cannot be killed" in tip, tip
    # Each row's speed-up is against sequential on its own interpreter, and the chart says so
    # (it named the first interpreter's sequential for every row).
    assert any("sequential on each row's own interpreter" in t
               for t in window.compare.view.charts.titles()), window.compare.view.charts.titles()
    table = window.compare.view.row_texts()
    assert any("interpreters · 3.13.0" in " ".join(r) for r in table)


def test_no_gil_is_said_as_such_in_the_status_bar(window: Any) -> None:
    s = Sample(t_ns=1, interval_s=0.1, cores=(0.0,), cores_user=(0.0,), cores_system=(0.0,),
               total=0.0, self_cpu=0.0, self_rss=0, gil=None, gil_disabled=True)
    window.readouts.show(s, 0, 0, None, [1.0], 0, 0)
    assert window.st_gil.text() == "no GIL (free-threaded)"


def test_the_window_remembers_which_interpreters_were_ticked(
        cache313: Any, qapp: Any, qloop: Any, qtbot: Any, leak_check: None,
        tmp_path: Path) -> None:
    """Saved: 3.13 alone (and an interpreter since removed). The next launch ticks 3.13 alone,
    so the model only it has can be ticked again, and saves that choice on close."""
    import json

    from PySide6.QtCore import QSettings

    from gui import theme
    from gui.main_window import MainWindow
    from gui.sampling import make_session

    exe = str(cache313.interpreter)
    path = str(tmp_path / "taskscope.ini")
    s = QSettings(path, QSettings.Format.IniFormat)
    s.setValue("form/state", json.dumps({"interpreters": [exe, str(tmp_path / "gone/python3")],
                                         "models": ["interpreters"]}))
    s.sync()
    theme.apply(qapp)
    session = make_session()
    win = MainWindow(session, qloop, settings=QSettings(path, QSettings.Format.IniFormat))
    win.show()
    try:
        box = win.controls.interpreters
        assert [i.path for i in box.selected()] == [exe]
        assert not box.box(sys.executable).isChecked()
        assert win.controls.selected_models() == ["interpreters"]  # 3.13 has it; 3.11 not
    finally:
        win.close()
        qtbot.waitUntil(lambda: win._closed, timeout=10_000)
        win.shutdown_report or session.shutdown()
    saved = json.loads(QSettings(path, QSettings.Format.IniFormat).value("form/state"))
    assert saved["interpreters"] == [exe] and saved["models"] == ["interpreters"]
