"""Small helpers shared by the GUI tests: fill the form, click cells, wait for states."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView

from engine import State


def fill(win: Any, models: tuple[str, ...], workload: str, tasks: int | str, size: str,
         workers: str = "", timeout: str = "", params: str = "") -> None:
    c = win.controls
    for name, cb in c.model_boxes.items():
        cb.setChecked(name in models)
    c.workload.setCurrentText(workload)
    c.tasks.setText(str(tasks))
    c.size.setText(size)
    c.workers.setText(workers)
    c.timeout.setText(timeout)
    c.params.setText(params)


def click_cell(qtbot: Any, view: QTableView, row: int, col: int) -> None:
    """Click the middle of a cell (a delegate's button) in a table view, as a user would."""
    idx = view.model().index(row, col)
    view.scrollTo(idx)
    rect = view.visualRect(idx)
    assert rect.isValid() and not rect.isEmpty(), "cell not visible"
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def source_row(win: Any, task_id: int) -> int:
    """The task table's view row that shows ``task_id``."""
    src = win.tasks.index(win.tasks.row_of[task_id], 0)
    return win.proxy.mapFromSource(src).row()


def states(win: Any, run_id: int) -> list[State]:
    return [t.state for t in win.store.tasks(run_id)]


def all_running(win: Any, run_id: int, n: int | None = None) -> bool:
    st = states(win, run_id)
    running = sum(s is State.RUNNING for s in st)
    return running >= (n if n is not None else len(st))
