"""Invalid input is refused at its field with a one-line message; nothing starts."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from gui.controls import GUI_LOOP_MAX_TASKS, PRESETS, parse_params

from .helpers import fill


@pytest.mark.parametrize(
    ("models", "workload", "tasks", "size", "workers", "timeout", "params", "field", "words"),
    [
        (("threads",), "cpu", "abc", "200ms", "", "", "", "tasks", "whole number"),
        (("threads",), "cpu", "0", "200ms", "", "", "", "tasks", "at least 1"),
        (("threads",), "cpu", "10000000000", "200ms", "", "", "", "tasks", "at most"),
        (("threads",), "cpu", "4", "fast", "", "", "", "size", "duration"),
        (("threads",), "cpu", "4", "-1s", "", "", "", "size", "duration"),
        (("threads",), "cpu", "4", "200ms", "0", "", "", "workers", "at least 1"),
        (("sequential",), "cpu", "4", "200ms", "3", "", "", "workers", "exactly one"),
        (("threads",), "cpu", "4", "200ms", "", "0", "", "timeout", "greater than 0"),
        (("threads",), "crash", "4", "200ms", "", "", "", "workload", "process model"),
        (("processes",), "crash", "4", "200ms", "", "", "every=0", "params", "at least 1"),
        (("threads",), "blocking", "4", "200ms", "", "", "mode=nap", "params", "one of"),
        (("threads",), "fail", "4", "200ms", "", "", "oops", "params", "key=value"),
        ((), "cpu", "4", "200ms", "", "", "", "models", "at least one model"),
    ],
)
def test_bad_input_is_refused_at_the_field(window: Any, qtbot: Any, models: tuple[str, ...],
                                           workload: str, tasks: str, size: str, workers: str,
                                           timeout: str, params: str, field: str,
                                           words: str) -> None:
    fill(window, models, workload, tasks, size, workers, timeout, params)
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    c = window.controls
    target = c.models_field if field == "models" else c.fields[field]
    assert target.error.isVisibleTo(window), f"no error shown at {field}"
    assert words in target.error.text()
    assert "\n" not in target.error.text() and "Traceback" not in target.error.text()
    # Only that field complains, and nothing started.
    others = [f for n, f in c.fields.items() if n != field]
    assert not any(f.error.isVisibleTo(window) for f in others)
    assert window.store.runs() == []
    # Typing in the field clears its message.
    if field in ("tasks", "size", "workers", "timeout", "params"):
        qtbot.keyClicks(target.editor, "1")
        assert not target.error.isVisibleTo(window)


def test_gui_loop_option_is_bounded(window: Any, qtbot: Any) -> None:
    c = window.controls
    fill(window, ("threads",), "sleep", GUI_LOOP_MAX_TASKS + 1, "100ms")
    assert not c.gui_loop.isEnabled()  # only with the asyncio model
    fill(window, ("asyncio",), "sleep", GUI_LOOP_MAX_TASKS + 1, "100ms")
    assert c.gui_loop.isEnabled() and not c.gui_loop.isChecked()  # off by default
    c.gui_loop.setChecked(True)
    qtbot.mouseClick(c.start_btn, Qt.MouseButton.LeftButton)
    assert c.fields["tasks"].error.isVisibleTo(window)
    assert "GUI loop" in c.fields["tasks"].error.text()
    c.tasks.setText("20")
    c.size.setText("500ms")  # 10 s of possible freeze in all: refused too
    qtbot.mouseClick(c.start_btn, Qt.MouseButton.LeftButton)
    assert "freezes this window" in c.fields["size"].error.text()
    assert window.store.runs() == []


def test_unavailable_models_are_disabled_with_the_reason(window: Any) -> None:
    import engine

    for info in engine.all_models():
        cb = window.controls.model_boxes[info.name]
        assert cb.isEnabled() == info.available
        if not info.available:
            assert info.reason in cb.toolTip()


def test_presets_fill_valid_forms(window: Any) -> None:
    c = window.controls
    for i, p in enumerate(PRESETS, start=1):
        c.preset.setCurrentIndex(i)
        assert set(c.selected_models()) == set(p.models)
        specs = c.build_specs()
        assert specs is not None and [s.model for s in specs] == c.selected_models()
    assert parse_params("every=3, mode=cpu") == {"every": "3", "mode": "cpu"}
