"""Custom workloads and Show code in the window.

* The function field checks as you type (off the GUI thread) and shows the engine's one-line
  error at the field, or the function's kind and what cancelling it means; a good function runs
  under each ticked model like any workload.
* Show code opens one read-only, monospace tab per ticked model holding exactly what
  ``engine.scriptgen.generate`` returns; Copy and Save… hand that text over; a ScriptError is
  shown as a message in its tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QLabel, QPlainTextEdit

from engine import State
from engine.scriptgen import generate

from .helpers import fill

WAIT = 30_000

USER_CODE = '''
import asyncio


def crunch(n, ctx):
    total = 0
    for i in range(n):
        total += i * i
        if i % 10_000 == 0:
            ctx.check()
    return total


def plain(n):
    return n * 2


async def waiter(seconds):
    await asyncio.sleep(seconds)


VALUE = 3
'''


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    p = tmp_path / "userwork.py"
    p.write_text(USER_CODE)
    return p


def _check(window: Any, qtbot: Any, ref: str, args: str = "") -> Any:
    panel = window.controls.custom
    panel.args.setText(args)
    panel.function.setText(ref)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.checking, timeout=WAIT)
    return panel


def test_custom_function_field_checks_good_and_bad_input(window: Any, qtbot: Any,
                                                         user_file: Path, tmp_path: Path) -> None:
    c = window.controls
    fill(window, ("threads", "processes"), "cpu", 2, "100ms")
    c.set_workload("custom")
    assert c.workload.currentText() == "custom…"
    assert c.custom.isVisibleTo(window) and not c.size.isEnabled()

    good = [
        (f"{user_file}:crunch", ["plain def", "takes ctx"], ""),
        (f"{user_file}:plain", ["plain def", "no ctx"], "cannot be interrupted"),
        (f"{user_file}:waiter", ["async def"], "cannot be interrupted"),
    ]
    for ref, words, note in good:
        args = "[3]" if "waiter" not in ref else "[0.01]"
        panel = _check(window, qtbot, ref, args)
        assert panel.result.ok, panel.result
        text = panel.info.text()
        assert all(w in text for w in words), text
        assert (note in text) if note else "Cancel:" not in text
        assert not panel.function_error.isVisibleTo(window)

    bad = [
        (str(tmp_path / "nope.py") + ":f", "", "function", "no such file"),
        (f"{user_file}:missing", "", "function", "no function 'missing'"),
        (f"{user_file}:VALUE", "", "function", "not callable"),
        ("no_such_module_xyz:f", "", "function", "no such module"),
        ("just_a_name", "", "function", "expected module:function"),
        (f"{user_file}:plain", "[1, 2, 3]", "args", "do not fit"),
        (f"{user_file}:plain", "not json", "args", "JSON"),
    ]
    for ref, args, where, words in bad:
        panel = _check(window, qtbot, ref, args)
        label = panel.args_error if where == "args" else panel.function_error
        assert label.isVisibleTo(window), (ref, args)
        assert words in label.text(), label.text()
        assert "\n" not in label.text() and "Traceback" not in label.text()
    # Start with a bad function is refused at the field; nothing starts.
    c.custom.function.setText(f"{user_file}:missing")
    c.custom.args.setText("")
    qtbot.mouseClick(c.start_btn, Qt.MouseButton.LeftButton)
    assert "no function" in c.custom.function_error.text()
    assert window.store.runs() == []


def test_a_custom_function_runs_under_each_ticked_model(window: Any, qtbot: Any,
                                                         user_file: Path) -> None:
    window.compare.options = {"settle_s": 0.1}
    fill(window, ("threads", "processes"), "cpu", 2, "100ms", workers="2")
    window.controls.set_workload("custom")
    panel = _check(window, qtbot, f"{user_file}:crunch", "[200000]")
    assert panel.result.ok, panel.result
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.compare.job is not None and window.compare.job.done
                    and not window.compare.view.running, timeout=60_000)
    res = window.compare.view.result
    assert res is not None and [r.status for r in res.results] == ["complete", "complete"]
    runs = window.store.runs()
    assert [r.spec.model for r in runs] == ["threads", "processes"]
    for r in runs:
        assert all(t.state is State.FINISHED for t in window.store.tasks(r.run_id))
    assert res.winner in ("threads", "processes")
    assert all(r.reading for r in res.results)
    # Labelled by what it runs, not "custom · 2 × 100.0 ms" (the size means nothing to it).
    what = f"{user_file.name}:crunch(200000) · 2 tasks"
    assert [window.runs.index(i, 2).data() for i in range(2)] == [what, what]
    assert window.compare.view.status.text().startswith(what)


def test_show_code_dialog_has_one_tab_per_model_with_the_generated_script(
        window: Any, qtbot: Any, tmp_path: Path) -> None:
    fill(window, ("sequential", "threads", "processes"), "cpu", 4, "200ms", workers="2")
    specs = window.controls.build_specs()
    qtbot.mouseClick(window.controls.code_btn, Qt.MouseButton.LeftButton)
    dlg = window.code_dialog
    qtbot.waitExposed(dlg)
    assert [dlg.tabs.tabText(i) for i in range(dlg.tabs.count())] == \
        ["sequential", "threads", "processes"]
    for i, spec in enumerate(specs):
        page = dlg.tabs.widget(i)
        assert isinstance(page, QPlainTextEdit) and page.isReadOnly()
        font = page.font()  # offscreen Qt may have no font database: check what was asked
        assert font.fixedPitch() and font.styleHint() == QFont.StyleHint.TypeWriter
        assert page.toPlainText() == generate(spec) == dlg.scripts[spec.model]
    assert "ProcessPoolExecutor" in dlg.scripts["processes"]
    assert "ThreadPoolExecutor" in dlg.scripts["threads"]
    # Copy and Save… hand over this tab's text.
    dlg.tabs.setCurrentIndex(1)
    qtbot.mouseClick(dlg.copy_btn, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == dlg.scripts["threads"]
    out = dlg.save(tmp_path / "threads.py")
    assert out is not None and out.read_text() == dlg.scripts["threads"]
    assert dlg.default_name() == "taskscope_cpu_threads.py"
    dlg.close()

    # The shortcut opens it too; a workload with no standalone equivalent says so in its tab.
    fill(window, ("threads",), "events", 4, "10ms")
    window.act_code.trigger()
    dlg2 = window.code_dialog
    assert dlg2 is not dlg and dlg2.tabs.count() == 1
    page = dlg2.tabs.widget(0)
    assert isinstance(page, QLabel) and "No standalone script" in page.text()
    assert dlg2.scripts["threads"] is None and not dlg2.copy_btn.isEnabled()
    assert window.act_code.shortcut().toString() == "Ctrl+Shift+C"
    dlg2.close()

    # Invalid form: no dialog, the error at the field.
    fill(window, ("threads",), "cpu", "zero", "10ms")
    window.act_code.trigger()
    assert window.code_dialog is dlg2
    assert window.controls.fields["tasks"].error.isVisibleTo(window)
