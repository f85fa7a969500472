"""Bad input in the window (issue 8, GUI half): every field of the form, hostile values.

For each field, out-of-range, wrong-type and hostile values are typed in and Start is pressed
(by click and by Ctrl+R). Each time:

* a clear one-line message appears AT THAT FIELD (its own error label, and the editor's
  ``invalid`` property), and at no other field;
* nothing starts: ``store.runs()`` is unchanged and no new child process appears;
* nothing is lost: the run and tasks already in the tables stay exactly as they were.

One window per field (values looped inside) keeps this fast. The engine/CLI half of the same
values is tests/engine/test_bad_input.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from engine import State
from tests.conftest import engine_children

from .helpers import fill

WAIT = 15_000
HUGE = "9" * 40
JUNK = "\u202e\u0000x\U0001f4a5\ufeff"  # right-to-left override, NUL, emoji, BOM

#: field -> hostile values typed into that field (the other fields stay valid).
BAD: dict[str, list[str]] = {
    "tasks": [str(10**12), HUGE, "1e309", "-5", "0", "nan", "NaN", "inf", "-inf", "2.5", "",
              "   ", "\u0661\u0662", "\uff11\uff12", JUNK, "0x10", "1000001",
              "12 tasks"],
    "size": ["nan", "inf", "-inf", "1e309", "-1s", "-0.5", "", "  ", "3601s", "10 parsecs",
             "\u0661\u0662ms", JUNK, "1e309ms", "ms"],
    "workers": ["0", "-2", HUGE, str(10**12), "nan", "inf", "1e309", "2.5", JUNK,
                "\u0661\u0662", "four"],
    "timeout": ["0", "nan", "inf", "1e309", "-1", "-1s", "1e-400", "86401s", JUNK, "soon"],
}

#: workload -> hostile params, each refused at the Params field.
BAD_PARAMS: list[tuple[str, str]] = [
    ("http", "delay=nan"), ("http", "delay=1e309"), ("http", "delay=inf"), ("http", "delay=61s"),
    ("http", "delay=-1s"), ("http", "fail_after=-1"), ("http", "delay="), ("http", "=1"),
    ("http", "nokey"), ("http", f"{JUNK}=1"), ("http", "bogus=1"),
    ("fail", "every=0"), ("fail", f"every={HUGE}"), ("fail", "every=nan"),
    ("fail", "every=\u0661\u0662"), ("fail", "every=-3"),
    ("blocking", f"mode={JUNK}"), ("blocking", "mode="), ("blocking", "mode=nap"),
]


def _error_of(win: Any, field: str) -> tuple[QLabel, QWidget]:
    """The error label and the editor of a form field (custom fields included)."""
    c = win.controls
    if field == "function":
        return c.custom.function_error, c.custom.function
    if field == "args":
        return c.custom.args_error, c.custom.args
    f = c.models_field if field == "models" else c.fields[field]
    return f.error, f.editor


def _all_errors(win: Any) -> dict[str, QLabel]:
    c = win.controls
    out = {n: f.error for n, f in c.fields.items()}
    out["models"] = c.models_field.error
    out["loop"] = c.gui_loop_field.error
    out["function"] = c.custom.function_error
    out["args"] = c.custom.args_error
    return out


def _snapshot(win: Any) -> tuple[Any, ...]:
    """What must not change: the store's runs and tasks, and both tables' rows."""
    runs = [(r.run_id, r.done, dict(r.counts)) for r in win.store.runs()]
    tasks = [(t.task_id, t.run_id, t.state) for t in win.store.tasks()]
    rows = [(r.run_id, r.done) for r in win.runs.runs]
    trows = [(t.task_id, t.state) for t in win.tasks.recs]
    return runs, tasks, rows, trows, win.tl_data.n


@pytest.fixture
def primed(window: Any, qtbot: Any) -> Any:
    """The window with one finished run in its tables (so 'nothing is lost' means something)."""
    fill(window, ("threads",), "sleep", 3, "5ms", workers="3")
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.store.runs()) == 1 and window.store.runs()[0].done,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: window.tasks.rowCount() == 3 and window.tl_data.n == 3,
                    timeout=WAIT)
    qtbot.wait(80)  # one more frame
    assert [t.state for t in window.store.tasks()] == [State.FINISHED] * 3
    _settle(qtbot)
    return window


def _settle(qtbot: Any, timeout_s: float = 20.0) -> None:
    """Wait until the engine's own background start-up (its forkserver, started after the
    window shows; late on a loaded machine) has no child process still appearing, so a
    process seen after a refused Start is one that Start began."""
    deadline = time.monotonic() + timeout_s
    seen = set(engine_children())
    while time.monotonic() < deadline:
        qtbot.wait(300)
        now = set(engine_children())
        if now == seen:
            return
        seen = now


def _press_start(win: Any, qtbot: Any, how: str) -> None:
    win.controls.clear_errors()  # so a message seen afterwards came from THIS press
    if how == "click":
        qtbot.mouseClick(win.controls.start_btn, Qt.MouseButton.LeftButton)
    else:  # the application-wide shortcut, from wherever the focus is
        win.activateWindow()
        qtbot.keyClick(win.controls.tasks, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)


def _refused_at(win: Any, field: str, value: str, before: tuple[Any, ...],
                children: dict[int, str]) -> None:
    label, editor = _error_of(win, field)
    shown = label.text()
    assert label.isVisibleTo(win), f"{field}={value!r}: no message at the field"
    assert shown.strip(), f"{field}={value!r}: empty message"
    assert "\n" not in shown and "Traceback" not in shown, (field, value, shown)
    assert editor.property("invalid") is True, (field, value)
    others = {n for n, lab in _all_errors(win).items() if n != field and lab.isVisibleTo(win)}
    assert not others, f"{field}={value!r}: errors also at {others}"
    # Nothing started, nothing lost.
    assert _snapshot(win) == before, f"{field}={value!r} changed the runs or tables"
    new = {p: c for p, c in engine_children().items() if p not in children}
    assert not new, f"{field}={value!r} started processes: {new}"


@pytest.mark.parametrize("field", list(BAD))
def test_hostile_values_in_each_field_are_refused_there(primed: Any, qtbot: Any,
                                                       field: str) -> None:
    win = primed
    before, children = _snapshot(win), engine_children()
    for i, value in enumerate(BAD[field]):
        how = "click" if i % 2 == 0 else "ctrl+r"
        fill(win, ("threads",), "sleep", 3, "5ms", workers="2")
        win.controls.clear_errors()
        editor = getattr(win.controls, field)
        editor.setText(value)
        _press_start(win, qtbot, how)
        _refused_at(win, field, value, before, children)
    qtbot.wait(100)  # a frame or three later, still nothing
    assert _snapshot(win) == before


def test_sequential_and_process_worker_bounds(primed: Any, qtbot: Any) -> None:
    win = primed
    before, children = _snapshot(win), engine_children()
    for model, workers in (("sequential", "2"), ("processes", "257"), ("processes", HUGE),
                           ("asyncio-processes", "0")):
        if not win.controls.model_boxes[model].isEnabled():
            continue
        fill(win, (model,), "sleep", 3, "5ms", workers=workers)
        _press_start(win, qtbot, "click")
        _refused_at(win, "workers", f"{model}:{workers}", before, children)


def test_hostile_params_are_refused_at_params(primed: Any, qtbot: Any) -> None:
    win = primed
    before, children = _snapshot(win), engine_children()
    for i, (workload, params) in enumerate(BAD_PARAMS):
        fill(win, ("threads",), workload, 3, "5ms", workers="2", params=params)
        assert win.controls.workload_name() == workload
        _press_start(win, qtbot, "click" if i % 2 else "ctrl+r")
        _refused_at(win, "params", f"{workload}:{params}", before, children)


def test_crash_workload_needs_a_process_model(primed: Any, qtbot: Any) -> None:
    win = primed
    before, children = _snapshot(win), engine_children()
    for model in ("threads", "asyncio", "sequential"):
        fill(win, (model,), "crash", 3, "5ms", params="every=2")
        _press_start(win, qtbot, "click")
        _refused_at(win, "workload", f"crash:{model}", before, children)


def test_no_model_is_refused_at_models(primed: Any, qtbot: Any) -> None:
    win = primed
    before, children = _snapshot(win), engine_children()
    fill(win, (), "sleep", 3, "5ms")
    _press_start(win, qtbot, "ctrl+r")
    _refused_at(win, "models", "()", before, children)


def test_failure_policy_offers_only_valid_choices_and_refuses_others(primed: Any,
                                                                    qtbot: Any) -> None:
    import engine

    win = primed
    c = win.controls
    assert not c.policy.isEditable()  # nothing can be typed there
    assert [c.policy.itemText(i) for i in range(c.policy.count())] == list(engine.spec.POLICIES)
    # Even a value smuggled into the combo (a future preset, a bad settings file) is refused
    # at the field rather than started.
    before, children = _snapshot(win), engine_children()
    for bad in ("", JUNK, "ignore"):
        c.policy.addItem(bad)
        fill(win, ("threads",), "sleep", 3, "5ms")
        c.policy.setCurrentIndex(c.policy.count() - 1)
        _press_start(win, qtbot, "click")
        _refused_at(win, "policy", bad, before, children)
        c.policy.removeItem(c.policy.count() - 1)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "notpy.txt").write_text("def fn():\n    pass\n")
    (tmp_path / "broken.py").write_text("def fn(:\n")
    (tmp_path / "exits.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "ok.py").write_text("not_callable = 3\ndef fn(a):\n    return a\n")
    (tmp_path / "pkgdir.py").mkdir()  # a directory named like a module
    return tmp_path


CUSTOM_FUNCTIONS = ["{tmp}:fn", "{tmp}/pkgdir.py:fn", "{tmp}/missing.py:fn", "{tmp}/notpy.txt:fn",
                    "{tmp}/broken.py:fn", "{tmp}/exits.py:fn", "{tmp}/raises.py:fn",
                    "{tmp}/ok.py:missing", "{tmp}/ok.py:not_callable", "{tmp}/ok.py:",
                    "no_such_module_zz:fn", "os:no_such_fn", "", "   ", ":", JUNK, "/:fn",
                    "{tmp}/ok.py"]
CUSTOM_ARGS = ["[1,", '{"a": 1}', "nan", "[1, 2, 3]", "[]", JUNK, "1e309"]


def _custom(win: Any, qtbot: Any, models: tuple[str, ...]) -> None:
    fill(win, models, "sleep", 3, "5ms")
    win.controls.set_workload("custom")
    assert win.controls.custom.isVisibleTo(win)


def test_custom_function_that_cannot_be_used_is_refused_at_function(
        primed: Any, qtbot: Any, scratch: Path) -> None:
    win = primed
    before, children = _snapshot(win), engine_children()
    _custom(win, qtbot, ("threads",))
    panel = win.controls.custom
    for i, ref in enumerate(CUSTOM_FUNCTIONS):
        ref = ref.replace("{tmp}", str(scratch))
        panel.function.setText(ref)
        panel.args.setText("[1]")
        _press_start(win, qtbot, "click" if i % 2 == 0 else "ctrl+r")
        _refused_at(win, "function", ref, before, children)
        if not ref.strip():
            continue  # nothing for the live check to look at
        # The live check (off the GUI thread) agrees, and says so at the same field.
        panel.check_now()
        qtbot.waitUntil(lambda: not panel.checking, timeout=WAIT)
        assert panel.result is not None and panel.result.field == "function", (ref, panel.result)
        assert panel.function_error.isVisibleTo(win)
    assert _snapshot(win) == before


def test_custom_args_that_do_not_fit_are_refused_at_args(primed: Any, qtbot: Any,
                                                        scratch: Path) -> None:
    win = primed
    before, children = _snapshot(win), engine_children()
    _custom(win, qtbot, ("threads",))
    panel = win.controls.custom
    panel.function.setText(f"{scratch}/ok.py:fn")  # takes exactly one argument
    for i, args in enumerate(CUSTOM_ARGS):
        panel.args.setText(args)
        _press_start(win, qtbot, "click" if i % 2 == 0 else "ctrl+r")
        _refused_at(win, "args", args, before, children)
    assert _snapshot(win) == before


def test_a_good_form_after_all_that_still_starts(primed: Any, qtbot: Any) -> None:
    """The refusals left no state behind: the next valid Start runs."""
    win = primed
    fill(win, ("threads",), "sleep", 3, "nan")
    _press_start(win, qtbot, "click")
    assert len(win.store.runs()) == 1
    win.controls.size.setText("5ms")
    _press_start(win, qtbot, "ctrl+r")
    qtbot.waitUntil(lambda: len(win.store.runs()) == 2 and win.store.runs()[1].done,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: win.tasks.rowCount() == 6, timeout=WAIT)
    assert not any(lab.isVisibleTo(win) for lab in _all_errors(win).values())
