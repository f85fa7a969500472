"""The custom workload's fields: which function, with which arguments, checked as you type.

The user names a function by reference (``package.module:function`` or
``path/to/file.py:function``, with a Browse… button for files) and gives its positional
arguments as a JSON list. A live check shows, at the field, the engine's own one-line error
(no such file, no such function, cannot be used with processes, arguments that do not fit) or
what the function is: ``async def`` or plain, with or without a ``ctx`` parameter, and what that
means for cancelling it.

The check imports the user's module, which runs the user's code: it runs in a short-lived
daemon thread, never on the GUI thread, and the panel polls its result with a timer while one is
pending (no signal from the thread). Stale answers (the text changed meanwhile) are dropped.
A file that changed on disk since it was imported is imported afresh, so fixing a typo in the
file and re-checking works without restarting the app.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

import engine
from engine import SpecError
from engine import custom as ecustom

#: Wait this long after the last keystroke before checking (ms).
DEBOUNCE_MS = 300


@dataclass(frozen=True)
class CheckResult:
    """A live check's answer: an error at a field ("function" or "args"), or the kind."""

    field: str = ""
    message: str = ""
    kind: str = ""
    cancel_note: str = ""

    @property
    def ok(self) -> bool:
        return not self.field


def describe(info: ecustom.FunctionInfo) -> str:
    """One line on the function's kind and how each model runs it."""
    if info.is_async:
        kind = ("async def: coroutines under asyncio; asyncio.run per task in threads and "
                "processes")
    else:
        kind = "plain def: called in threads and processes; asyncio.to_thread under asyncio"
    ctx = "takes ctx: cancel and timeouts stop it promptly" if info.takes_ctx else "no ctx"
    return f"{info.name} · {kind} · {ctx}"


def check(ref: str, args_text: str, models: Sequence[str]) -> CheckResult:
    """Load the function and try the spec for every model (runs user code: not on the GUI
    thread). The messages are the engine's own."""
    try:
        ecustom.refresh(ref)  # an edited file is imported again
        _, info = ecustom.load(ref)
    except SpecError as e:
        return CheckResult("function", e.message)
    except Exception as e:  # noqa: BLE001 - user code: whatever it raises is a message
        return CheckResult("function", f"{type(e).__name__}: {e}")
    params = {"function": ref, "args": args_text.strip() or "[]"}
    baseline = [m.name for m in engine.all_models() if m.baseline][:1]  # none ticked yet
    order = sorted(models or baseline,
                   key=lambda m: engine.model_info(m).isolated)  # in-process models first
    for m in order:
        try:
            engine.make_spec(m, "custom", 1, "1ms", None, None, "collect", params)
        except SpecError as e:
            where = "args" if e.field in ("params.args", "params.kwargs") else "function"
            prefix = ""
            if engine.model_info(m).isolated and m != order[0]:
                prefix = f"cannot be used with {m}: "
            return CheckResult(where, prefix + e.message)
        except Exception as e:  # noqa: BLE001
            return CheckResult("function", f"{type(e).__name__}: {e}")
    return CheckResult(kind=describe(info), cancel_note=info.cancel_note)


class CustomPanel(QWidget):
    """Function reference + Browse…, arguments, and the live check's line."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(4)
        self.function = QLineEdit()
        self.function.setObjectName("field_function")
        self.function.setPlaceholderText("e.g. work.py:crunch")
        self.function.setToolTip(
            "The function to run once per task, by reference:\n"
            "  package.module:function   (importable from here)\n"
            "  path/to/file.py:function  (imported from that file)\n"
            "An async def runs as coroutines; a plain def runs in threads and processes and is\n"
            "offloaded with asyncio.to_thread under asyncio. A parameter named ctx receives the\n"
            "task context (ctx.check(), ctx.progress(f), ctx.sleep(s)) so cancel can stop it.")
        row.addWidget(self.function, 1)
        self.browse = QPushButton("Browse…")
        self.browse.setToolTip("Pick a .py file, then name the function after the colon")
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.browse)
        lay.addLayout(row)
        self.function_error = QLabel()
        self.function_error.setObjectName("fieldError")
        self.function_error.setWordWrap(True)
        self.function_error.hide()
        lay.addWidget(self.function_error)
        self.args = QLineEdit()
        self.args.setObjectName("field_args")
        self.args.setPlaceholderText("arguments, a JSON list: [100000]")
        self.args.setToolTip("Positional arguments for every task, as a JSON list")
        lay.addWidget(self.args)
        self.args_error = QLabel()
        self.args_error.setObjectName("fieldError")
        self.args_error.setWordWrap(True)
        self.args_error.hide()
        lay.addWidget(self.args_error)
        self.info = QLabel("")
        self.info.setObjectName("hint")
        self.info.setWordWrap(True)
        self.info.hide()
        lay.addWidget(self.info)

        self.models: list[str] = []
        self.result: CheckResult | None = None
        self._gen = 0
        self._pending: tuple[int, list[CheckResult]] | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.check_now)
        self._poll = QTimer(self)
        self._poll.setInterval(30)
        self._poll.timeout.connect(self._collect)
        self.function.textChanged.connect(self._edited)
        self.args.textChanged.connect(self._edited)

    # -- values --------------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"function": self.function.text().strip(),
                "args": self.args.text().strip() or "[]"}

    def set_models(self, models: Sequence[str]) -> None:
        models = list(models)
        if models != self.models:
            self.models = models
            if self.function.text().strip():
                self._edited()

    @property
    def checking(self) -> bool:
        return self._pending is not None or self._debounce.isActive()

    # -- errors at the fields --------------------------------------------------------------------
    def set_error(self, where: str, message: str) -> None:
        edit, label = ((self.args, self.args_error) if where == "args"
                       else (self.function, self.function_error))
        label.setText(message)
        label.setVisible(bool(message))
        edit.setProperty("invalid", bool(message))
        edit.style().unpolish(edit)
        edit.style().polish(edit)
        if message:
            self._info("")

    def clear_errors(self) -> None:
        self.set_error("function", "")
        self.set_error("args", "")

    def show_spec_error(self, err: SpecError) -> bool:
        """Show a SpecError on params.function/args/kwargs here; False if it is not ours."""
        if err.field in ("params.args", "params.kwargs"):
            self.set_error("args", err.message)
            self.args.setFocus()
            return True
        if err.field in ("params.function", "params.root") or err.field.startswith("params."):
            self.set_error("function", err.message)
            self.function.setFocus()
            return True
        return False

    # -- the live check ----------------------------------------------------------------------------
    def _edited(self, *_: object) -> None:
        self._gen += 1  # any answer in flight is stale now
        self.result = None
        self.clear_errors()
        if self.function.text().strip():
            self._info("checking…")
            self._debounce.start()
        else:
            self._debounce.stop()
            self._info("")
        self.changed.emit()

    def check_now(self) -> None:
        """Start a check of the current text in a thread; the result shows when it is back."""
        self._debounce.stop()
        ref = self.function.text().strip()
        if not ref:
            return
        gen = self._gen
        box: list[CheckResult] = []
        args, models = self.args.text(), list(self.models)

        def work() -> None:
            box.append(check(ref, args, models))

        self._pending = (gen, box)
        threading.Thread(target=work, name="taskscope-custom-check", daemon=True).start()
        self._poll.start()

    def _collect(self) -> None:
        if self._pending is None:
            self._poll.stop()
            return
        gen, box = self._pending
        if not box:
            return
        self._pending = None
        self._poll.stop()
        if gen != self._gen:
            return  # the text changed meanwhile; its own check is on the way
        self.show_result(box[0])

    def show_result(self, r: CheckResult) -> None:
        self.result = r
        if not r.ok:
            self.set_error(r.field, r.message)
            return
        self.clear_errors()
        text = f"✓ {r.kind}"
        if r.cancel_note:
            text += f"<br><span style='color:#e3b341'>Cancel: {r.cancel_note}</span>"
        self._info(text)

    def _info(self, text: str) -> None:
        self.info.setText(text)
        self.info.setVisible(bool(text))

    def _browse(self) -> None:
        start = self.function.text().rpartition(":")[0] or os.getcwd()
        path, _ = QFileDialog.getOpenFileName(self, "Choose a Python file",
                                              os.path.dirname(os.path.abspath(start)),
                                              "Python files (*.py)")
        if path:
            self.pick_file(path)

    def pick_file(self, path: str) -> None:
        """Fill the field with ``path:`` and put the cursor after the colon for the name."""
        name = self.function.text().rpartition(":")[2] if ":" in self.function.text() else ""
        self.function.setText(f"{path}:{name}")
        self.function.setFocus()
        self.function.setCursorPosition(len(path) + 1 + len(name))

