"""The Interpreter selector: which Pythons the next run or comparison runs on.

The window's engine runs in a process of its own, so it can run on another interpreter than
the window's (:class:`engine.remote.Engines`). This box lists this interpreter (ticked by
default) and the ones ``taskscope pythons add`` prepared (read from their environments'
markers: nothing is run to list them). "Find" probes every other interpreter on PATH and in
pyenv and lists it with why it cannot run the engine yet; "Add…" prepares one (what ``taskscope
pythons add`` does, in a background thread, its progress shown here line by line, a failure in
one line). Ticking several makes Start a comparison: every model on every ticked interpreter.

Nothing here blocks the GUI thread: probing and preparing run in threads of their own, whose
results a timer picks up; the timer runs only while one of them does.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

import engine
from engine.pythons import Interpreter, assess, discover
from engine.pythons.discovery import current_probe, prepared

POLL_MS = 100
#: Longest progress line shown (pip's lines can be very long).
LINE_CHARS = 90


class _Stopped(BaseException):
    """The window closed while an interpreter was being prepared: stop pip there."""


class _Job:
    """A background job (find, or add one interpreter) and what it has said so far."""

    def __init__(self, what: str, work: Callable[[Callable[[str], None]], Any]) -> None:
        self.what = what
        self.lines: list[str] = []
        self.result: Any = None
        self.error = ""
        self.stop = False
        self.done = False
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True,
                                       name=f"taskscope-{what.split()[0].lower()}")

    def say(self, line: str) -> None:
        if self.stop:
            raise _Stopped()
        self.lines.append(line)

    def _run(self, work: Callable[[Callable[[str], None]], Any]) -> None:
        from engine.pythons.prepare import PrepareError

        try:
            self.result = work(self.say)
        except _Stopped:
            self.error = "stopped"
        except PrepareError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - shown in one line, never raised into Qt
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.done = True


def label(i: Interpreter) -> str:
    """An interpreter in a few characters: ``3.13.0``, ``3.14.0t`` (a free-threaded build)."""
    return f"{i.version or '?'}{'t' if i.free_threaded else ''}"


class InterpreterPicker(QGroupBox):
    """The box (see the module docstring). ``changed`` fires when the ticks or the list change."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__("Interpreter · several: compared in turn")
        lay = QVBoxLayout(self)
        lay.setSpacing(2)
        self._rows: dict[str, tuple[QCheckBox, Interpreter]] = {}
        self._list = QVBoxLayout()
        self._list.setSpacing(2)
        lay.addLayout(self._list)
        row = QHBoxLayout()
        self.find_btn = QPushButton("Find")
        self.find_btn.setToolTip("Look for every interpreter on PATH and in pyenv (each is run "
                                 "once, in the background) and list why each can or cannot "
                                 "run the engine")
        self.find_btn.clicked.connect(self.find)
        self.add_btn = QPushButton("Add…")
        self.add_btn.setToolTip("Prepare an interpreter to run the engine (taskscope pythons "
                                "add PATH): an environment in TaskScope's cache with the "
                                "engine's dependencies")
        self.add_btn.clicked.connect(self._ask_path)
        row.addWidget(self.find_btn)
        row.addWidget(self.add_btn)
        row.addStretch(1)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.status.hide()
        lay.addWidget(self.status)
        self._jobs: list[_Job] = []
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.here = assess(current_probe(), "current")  # described from inside: nothing runs
        self._put(self.here, checked=True)
        for i in prepared():
            self._put(i)

    # -- the list -------------------------------------------------------------------------------
    @staticmethod
    def _key(i: Interpreter) -> str:
        return os.path.realpath(i.path)

    def _put(self, i: Interpreter, checked: bool | None = None) -> QCheckBox:
        """Show ``i`` (or update its row: a later answer about it is the better one)."""
        key = self._key(i)
        old = self._rows.get(key)
        if old is not None and old[1].source == "current":
            return old[0]  # this interpreter, described from inside, stays as it is
        if old is not None and not i.ready and old[1].ready:
            return old[0]  # "Find" knows less about a prepared one than its marker
        cb = old[0] if old is not None else QCheckBox()
        where = "this one" if i.source == "current" else i.source
        cb.setText(f"{label(i)} · {where}" + ("" if i.ready else "  (not ready)"))
        tip = [i.path, f"build: {i.build}"]
        if i.ready:
            if i.subinterpreters:
                tip.append(f"sub-interpreters: {i.subinterpreters}")
            if i.env:
                tip.append(f"engine runs from: {i.env}")
            tip += list(i.notes)
        else:
            tip += [f"cannot run the engine: {i.reason}", i.fix]
        cb.setToolTip("\n".join(tip))
        cb.setEnabled(i.ready)
        if not i.ready:
            cb.setChecked(False)
        elif checked is not None:
            cb.setChecked(checked)
        if old is None:
            cb.toggled.connect(lambda _on: self.changed.emit())
            self._list.addWidget(cb)
        self._rows[key] = (cb, i)
        self.changed.emit()
        return cb

    def interpreters(self) -> list[Interpreter]:
        """Every interpreter listed, in list order."""
        return [i for _cb, i in self._rows.values()]

    def box(self, path: str) -> QCheckBox | None:
        hit = self._rows.get(os.path.realpath(path))
        return hit[0] if hit is not None else None

    def selected(self) -> list[Interpreter]:
        """The ticked interpreters that can run the engine, in list order."""
        return [i for cb, i in self._rows.values() if cb.isChecked() and cb.isEnabled()]

    def ticked(self) -> list[str]:
        """The ticked interpreters' paths (what the window remembers between launches)."""
        return [i.path for i in self.selected()]

    def tick(self, paths: Any) -> None:
        """Tick exactly these listed interpreters (ValueError if none of them is listed and
        ready: the default, this interpreter, stays)."""
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise TypeError("expected a list of paths")
        wanted = {os.path.realpath(p) for p in paths}
        boxes = [(cb, key in wanted) for key, (cb, _i) in self._rows.items() if cb.isEnabled()]
        if not any(on for _cb, on in boxes):
            raise ValueError("none of them is listed here")
        for cb, on in boxes:
            cb.setChecked(on)

    def engine_python(self, i: Interpreter) -> str:
        """The executable that runs the engine on ``i`` (this process's own, for this one)."""
        return sys.executable if i.source == "current" else str(i.engine_python)

    def engine_pythons(self) -> list[str]:
        return [self.engine_python(i) for i in self.selected()]

    def models(self) -> dict[str, Any]:
        """Each model, available if one ticked interpreter has it (a comparison runs it where
        it can, and says why not elsewhere); from what this window knows of each. Each engine
        says again, for good, when it runs (``ModelInfo`` per name)."""
        sel = self.selected() or [self.here]
        out: dict[str, Any] = {}
        for m in engine.all_models():
            why: list[str] = []
            for i in sel:
                ok, reason = self._has(i, m)
                if ok:
                    break
                why.append(reason if len(sel) == 1 else f"{label(i)}: {reason}")
            else:
                out[m.name] = replace(m, available=False, reason="; ".join(why),
                                      fix=self._fix(m, sel))
                continue
            out[m.name] = replace(m, available=True, reason="", fix="")
        return out

    def _fix(self, m: Any, sel: list[Interpreter]) -> str:
        """What to do in this window to have model ``m``: tick a listed interpreter that has
        it, or add one. The engine's own fix speaks to the command line (``--python``)."""
        if not m.needs:
            return m.fix  # not a matter of which Python (e.g. dask: a pip install)
        others = [label(i) for i in self.interpreters()
                  if i.ready and i not in sel and self._has(i, m)[0]]
        if others:
            return f"tick {', '.join(others)} in the Interpreter box"
        need = ("Python 3.13+ (3.13 with the interpreters-pep-734 backport, which Add… "
                "installs)" if m.needs == "subinterpreters"
                else "a free-threaded build with the GIL off (e.g. python3.14t)")
        return f"Find or Add… {need} in the Interpreter box"

    def _has(self, i: Interpreter, m: Any) -> tuple[bool, str]:
        if i.source == "current":
            return m.available, m.reason
        if m.needs == "subinterpreters":
            note = next((n for n in i.notes if "sub-interpreters" in n), "")
            return i.subinterpreters is not None, note or f"Python {label(i)} has none"
        if m.needs == "free-threading":
            return i.free_threaded_model, (f"Python {label(i)} is not a free-threaded build "
                                           "with the GIL off")
        return m.available, m.reason  # as here; that engine says for good when it runs

    # -- jobs -----------------------------------------------------------------------------------
    def busy(self) -> bool:
        """A job runs, or has ended and its outcome is not shown yet."""
        return bool(self._jobs)

    def _begin(self, job: _Job) -> None:
        self._jobs.append(job)
        self.find_btn.setEnabled(False)
        self.add_btn.setEnabled(False)
        self._show(f"{job.what}…")
        job.thread.start()
        self._timer.start()

    def _show(self, text: str, error: bool = False) -> None:
        self.status.setObjectName("fieldError" if error else "hint")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def find(self) -> None:
        """List every interpreter found (in the background)."""
        if not self.busy():
            self._begin(_Job("Finding interpreters", lambda say: discover()))

    def _ask_path(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Add an interpreter: its python executable", os.path.expanduser("~"), "",
            options=QFileDialog.Option.DontUseNativeDialog)
        if path:
            self.add(path)

    def add(self, path: str) -> None:
        """Prepare the interpreter at ``path`` (in the background); once it can run the engine
        it is listed and ticked, else the reason shows in one line."""
        if self.busy():
            return
        from engine.pythons.prepare import prepare

        def work(say: Callable[[str], None]) -> Interpreter:
            done = prepare(path, say)
            if done.env is None:
                return self.here
            real = os.path.realpath(done.interpreter)
            for i in prepared():
                if os.path.realpath(i.path) == real:
                    return i
            raise RuntimeError(f"{path}: prepared, but its environment is not listed")

        self._begin(_Job(f"Adding {path}", work))

    def _poll(self) -> None:
        for job in list(self._jobs):
            if not job.done:
                if job.lines:
                    last = job.lines[-1]
                    self._show(f"{job.what}: " + (last if len(last) <= LINE_CHARS
                                                  else last[:LINE_CHARS - 1] + "…"))
                continue
            self._jobs.remove(job)
            if job.error:
                self._show(f"{job.what.split(' ')[0]} failed: {job.error}", error=True)
            elif isinstance(job.result, Interpreter):
                self._put(job.result, checked=True)
                self._show(f"Added Python {label(job.result)}: ticked, it runs the engine now")
            else:
                found = job.result or []
                for i in found:
                    self._put(i)
                ready = sum(1 for i in found if i.ready)
                self._show(f"Found {len(found)} interpreters, {ready} ready to run the engine "
                           "(hover one for why not; Add… prepares it)")
        if not self.busy():
            self._timer.stop()
            self.find_btn.setEnabled(True)
            self.add_btn.setEnabled(True)

    def shutdown(self) -> None:
        """The window closes: a preparation stops at pip's next line (its new environment is
        removed, as after any failure); a search ends on its own."""
        for job in self._jobs:
            job.stop = True
        self._timer.stop()
