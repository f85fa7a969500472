"""The run form: models, workload, sizes, presets, and validation at the field.

Every value goes through :func:`engine.make_spec`; a :class:`engine.SpecError` names the field
and the form shows its message under that field (red border, one line), before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

import engine
from engine import RunSpec, SpecError

from .custom_panel import CustomPanel
from .interpreter_picker import InterpreterPicker
from .model_options import ClusterOptions
from .settings import restore_each

#: Bounds for "Coroutines on the GUI loop": a lesson, not a way to run big jobs on the UI.
GUI_LOOP_MAX_TASKS = 50
GUI_LOOP_MAX_SIZE_S = 1.0
#: Tasks x size: a blocking coroutine freezes the window for its whole size, one after another.
GUI_LOOP_MAX_TOTAL_S = 5.0

CUSTOM_TEXT = ("Your own function, run once per task. Name it below as module:function "
               "(importable from here) or path/to/file.py:function, and give its arguments.")

PARAM_HINTS = {
    "http": "delay=20ms  (latency per request)",
    "blocking": "mode=sleep  or  mode=cpu",
    "fail": "every=3  (tasks #0, #3, #6… fail)",
    "crash": "every=3  (tasks #0, #3, #6… crash their worker)",
}


@dataclass(frozen=True)
class Preset:
    name: str
    story: str
    models: tuple[str, ...]
    workload: str
    tasks: int
    size: str
    workers: str = ""
    timeout: str = ""
    policy: str = "collect"
    params: str = ""


#: The model ticked on a first launch (the form remembers the user's ticks after that).
DEFAULT_MODELS: tuple[str, ...] = ("threads",)

PRESETS: tuple[Preset, ...] = (
    Preset("I/O-bound: sequential vs threads vs asyncio",
           "20 requests of 300 ms simulated latency. Sequential waits for each in turn; "
           "threads and coroutines wait together.",
           ("sequential", "threads", "asyncio"), "sleep", 20, "300ms", "10"),
    Preset("CPU-bound: threads vs processes",
           "Pure-Python arithmetic holds the GIL: only one of the 4 threads runs at a time, "
           "so together they get about one core's worth of work done. The OS moves the GIL "
           "holder between cores, so the per-core plot shows every core partly busy, adding "
           "up to about one. 4 processes, each with its own GIL, keep every core busy.",
           ("threads", "processes"), "cpu", 8, "500ms", "4"),
    Preset("NumPy releasing the GIL",
           "NumPy's C loops release the GIL, so threads do run in parallel here.",
           ("sequential", "threads"), "numpy", 8, "500ms", "4"),
    Preset("Blocking the event loop",
           "time.sleep inside a coroutine: no await, so the loop runs one coroutine at a time. "
           "Tick 'Coroutines on the GUI loop' to feel it in this window.",
           ("asyncio",), "blocking", 10, "300ms", "", "", "collect", "mode=sleep"),
    Preset("A crash in a worker",
           "Tasks #0, #3 and #6 (every=3: one task in 3, counting from the first) kill their "
           "worker process mid-task. The pool replaces it; the other tasks carry on and the "
           "crashed ones are reported as failed.",
           ("processes",), "crash", 9, "600ms", "2", "", "collect", "every=3"),
)


def parse_params(text: str) -> dict[str, str]:
    """``"every=3 mode=cpu"`` (spaces or commas) -> ``{"every": "3", "mode": "cpu"}``."""
    out: dict[str, str] = {}
    for part in text.replace(",", " ").split():
        if "=" not in part:
            raise SpecError("params", f"expected key=value, got {part!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


class Field(QWidget):
    """An editor with its error line underneath."""

    def __init__(self, editor: QWidget, hint: str = "") -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        self.editor = editor
        lay.addWidget(editor)
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()
        lay.addWidget(self.error)
        if hint:
            editor.setToolTip(hint)

    def set_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self.editor.setProperty("invalid", bool(message))
        self.editor.style().unpolish(self.editor)
        self.editor.style().polish(self.editor)


class Controls(QWidget):
    """The form. ``startRequested`` carries validated specs (one per selected model)."""

    startRequested = Signal(list, bool)  # list[RunSpec], on the GUI loop
    showCodeRequested = Signal()
    #: A field now shows an error: the window scrolls the form to it.
    fieldShown = Signal(QWidget)

    def __init__(self) -> None:
        super().__init__()
        self.extra_state = {}
        self._refusal = "Not started"
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 8)

        # Presets
        pbox = QGroupBox("Preset stories")
        pl = QVBoxLayout(pbox)
        self.preset = QComboBox()
        self.preset.addItem("Choose a preset…")
        # Its list shows the whole names; closed, it may end in "…" on a narrow form rather
        # than set the form's width (the longest name took 350 px).
        self.preset.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset.setMinimumContentsLength(22)
        for p in PRESETS:
            self.preset.addItem(p.name)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        pl.addWidget(self.preset)
        self.story = QLabel("Each preset fills the form with a classic comparison.")
        self.story.setObjectName("hint")
        self.story.setWordWrap(True)
        pl.addWidget(self.story)
        outer.addWidget(pbox)

        # Models, in two columns (one took the Start button off a laptop's screen): the
        # available ones first, then those this interpreter lacks (greyed, the reason in the
        # tooltip).
        mbox = QGroupBox("Concurrency models · several: compared")
        ml = QVBoxLayout(mbox)
        ml.setSpacing(2)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        self.model_boxes: dict[str, QCheckBox] = {}
        infos = sorted(engine.all_models(), key=lambda i: not i.available)  # stable
        for k, info in enumerate(infos):
            cb = QCheckBox(info.name)
            cb.toggled.connect(self._models_changed)
            self.model_boxes[info.name] = cb
            grid.addWidget(cb, k // 2, k % 2)
        ml.addLayout(grid)
        self.models_field = Field(QLabel(""))
        self.models_field.editor.hide()
        ml.addWidget(self.models_field)
        self.gui_loop = QCheckBox("Coroutines on the GUI loop")
        self.gui_loop.setToolTip(
            "Run the asyncio model's coroutines on this window's own event loop instead of the "
            "engine's loop thread, to see what blocking a UI loop does.\n"
            f"Bounded: at most {GUI_LOOP_MAX_TASKS} tasks of at most "
            f"{GUI_LOOP_MAX_SIZE_S:.0f} s each, {GUI_LOOP_MAX_TOTAL_S:.0f} s in all. "
            "Off by default.")
        self.gui_loop.setEnabled(False)
        ml.addWidget(self.gui_loop)
        self.gui_loop_field = Field(QLabel(""))
        self.gui_loop_field.editor.hide()
        ml.addWidget(self.gui_loop_field)
        outer.addWidget(mbox)
        # A cluster model's own options (Dask's scheduler), shown while one is ticked.
        self.cluster = ClusterOptions(Field)
        self.cluster.checking.connect(lambda busy: self.start_btn.setEnabled(not busy))
        outer.addWidget(self.cluster)

        # Which interpreters run them (issue 14): the models' availability follows the ticks.
        self.interpreters = InterpreterPicker()
        outer.addWidget(self.interpreters)
        self.available: dict[str, engine.ModelInfo] = {}
        self._show_available()
        self.interpreters.changed.connect(self._interpreters_changed)
        self.persist("interpreters", self.interpreters.ticked, self.interpreters.tick)
        self.persist("scheduler", self.cluster.scheduler.text, self._restore_scheduler)

        # Workload and sizes
        wbox = QGroupBox("Workload")
        form = QFormLayout(wbox)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.workload = QComboBox()
        for name, wl in engine.WORKLOADS.items():
            # The item's data is the workload's name; "custom" reads "custom…" (it asks more).
            self.workload.addItem("custom…" if name == "custom" else name, name)
            self.workload.setItemData(self.workload.count() - 1, wl.description,
                                      Qt.ItemDataRole.ToolTipRole)
        self.workload.currentIndexChanged.connect(
            lambda _i: self._workload_changed(self.workload_name()))
        self.fields: dict[str, Field] = {}

        def line(name: str, text: str, placeholder: str, hint: str) -> QLineEdit:
            e = QLineEdit(text)
            e.setPlaceholderText(placeholder)
            e.setObjectName(f"field_{name}")
            e.textEdited.connect(lambda _t, n=name: self.fields[n].set_error(""))
            self.fields[name] = Field(e, hint)
            return e

        self.fields["workload"] = Field(self.workload)
        self.wl_desc = QLabel()
        self.wl_desc.setObjectName("hint")
        self.wl_desc.setWordWrap(True)
        self.tasks = line("tasks", "8", "e.g. 8", "How many tasks (1 to 1,000,000)")
        self.size = line("size", "500ms", "e.g. 200ms, 1.5s",
                         "How long each task works, as a duration: 200ms, 1.5s, 500us")
        self.workers = line("workers", "", "model default",
                            "Pool size (asyncio: concurrency limit). Empty = the model's default.\n"
                            "Sequential always uses one worker.")
        self.timeout = line("timeout", "", "none", "Per-task timeout, e.g. 2s. Empty = none")
        self.params = line("params", "", "", "Workload parameters as key=value")
        self.custom = CustomPanel()
        self.custom.hide()
        self.policy = QComboBox()
        self.policy.addItems(list(engine.spec.POLICIES))
        self.policy.setToolTip("collect: run every task and collect failures\n"
                               "fail-fast: cancel the run at the first failure")
        self.fields["policy"] = Field(self.policy)
        form.addRow("Workload", self.fields["workload"])
        form.addRow("", self.wl_desc)
        form.addRow("Function", self.custom)
        self.custom_label = form.labelForField(self.custom)
        form.addRow("Params", self.fields["params"])
        self.params_label = form.labelForField(self.fields["params"])
        form.addRow("Tasks", self.fields["tasks"])
        form.addRow("Size / task", self.fields["size"])
        form.addRow("Workers", self.fields["workers"])
        form.addRow("Timeout", self.fields["timeout"])
        form.addRow("On failure", self.fields["policy"])
        outer.addWidget(wbox)

        outer.addStretch(1)
        # Start, Show code and the line about what was last done: the form's footer, which
        # the window keeps in view under the scrolling form (:attr:`footer`).
        self.footer = QWidget(self)
        fl = QVBoxLayout(self.footer)
        fl.setContentsMargins(8, 4, 8, 4)
        fl.setSpacing(4)
        self.start_btn = QPushButton("Start  (Ctrl+R)")
        self.start_btn.setObjectName("start")
        self.start_btn.clicked.connect(self.request_start)
        fl.addWidget(self.start_btn)
        self.code_btn = QPushButton("Show code  (Ctrl+Shift+C)")
        self.code_btn.setToolTip("The standalone Python script for this configuration, one per "
                                 "model: runs without TaskScope")
        self.code_btn.clicked.connect(self.showCodeRequested)
        fl.addWidget(self.code_btn)
        self.summary = QLabel("")
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        fl.addWidget(self.summary)
        outer.addWidget(self.footer)

        for name in DEFAULT_MODELS:
            self.model_boxes[name].setChecked(True)
        self.set_workload("cpu")
        self._workload_changed("cpu")
        self._models_changed()

    # -- reactions ----------------------------------------------------------------------------
    def _workload_changed(self, name: str) -> None:
        wl = engine.WORKLOADS.get(name)
        # The engine's descriptions speak the CLI ("params function=mod:fn"); the form's own
        # fields say it for "custom".
        self.wl_desc.setText(CUSTOM_TEXT if name == "custom" else wl.description if wl else "")
        hint = PARAM_HINTS.get(name, "")
        self.params.setPlaceholderText(hint or "none for this workload")
        self.params.setEnabled(bool(hint))
        if not hint:
            self.params.clear()
        self.fields["params"].set_error("")
        self.fields["workload"].set_error("")
        custom = name == "custom"
        self.custom.setVisible(custom)
        if self.custom_label is not None:
            self.custom_label.setVisible(custom)
        # A custom function decides its own work: size does not apply.
        self.size.setEnabled(not custom)
        self.size.setToolTip("custom functions decide how long a task works" if custom
                             else "How long each task works, as a duration: 200ms, 1.5s, 500us")
        for w in (self.fields["params"], self.params_label):  # custom has its own fields
            if w is not None:
                w.setVisible(not custom)
        if custom:
            self.custom.set_models(self.selected_models())

    def _show_available(self) -> None:
        """Enable the models that a ticked interpreter has (see InterpreterPicker.models)."""
        self.available = self.interpreters.models()
        one = len(self.interpreters.selected()) <= 1
        for name, cb in self.model_boxes.items():
            info = self.available[name]
            tip = f"{info.description}\nCancel: {info.cancel_note}"
            cb.setEnabled(info.available)
            cb.setText(name if info.available else f"{name} (n/a)")
            if not info.available:
                where = "here" if one else "on any ticked interpreter"
                fix = f"\n{info.fix}" if info.fix else ""
                tip = f"Not available {where}: {info.reason}{fix}\n\n{tip}"
            cb.setToolTip(tip)

    def _interpreters_changed(self) -> None:
        self._show_available()
        self._models_changed()

    def _models_changed(self) -> None:
        # Offered while a model that can run on the caller's loop (asyncio) is ticked.
        loop_on = any(cb.isChecked() and self._info(name).caller_loop
                      for name, cb in self.model_boxes.items())
        self.gui_loop.setEnabled(loop_on)
        if not loop_on:
            self.gui_loop.setChecked(False)
        self.models_field.set_error("")
        models = self.selected_models()
        self.custom.set_models(models)
        self.cluster.show_for(self._info(m) for m in models)
        n_py = len(self.interpreters.selected())
        if n_py > 1:
            self.start_btn.setText(f"Compare on {n_py} interpreters  (Ctrl+R)")
            self.start_btn.setToolTip("Runs every model on every ticked interpreter, one after "
                                      "another, never at once")
        elif len(models) > 1:
            self.start_btn.setText(f"Compare {len(models)} models  (Ctrl+R)")
            self.start_btn.setToolTip("Runs the models one after another, never at once, so "
                                      "they do not skew each other's figures")
        else:
            self.start_btn.setText("Start  (Ctrl+R)")
            self.start_btn.setToolTip("")

    def _info(self, model: str) -> engine.ModelInfo:
        """The model as the ticked interpreter has it (this one's before any is known)."""
        info = getattr(self, "available", {}).get(model)
        return info if info is not None else engine.model_info(model)

    def _restore_scheduler(self, value: Any) -> None:
        if not isinstance(value, str) or len(value) > 300:
            raise TypeError
        self.cluster.scheduler.setText(value)

    def _preset_chosen(self, i: int) -> None:
        if i <= 0:
            return
        self.apply_preset(PRESETS[i - 1])

    def apply_preset(self, p: Preset) -> None:
        for name, cb in self.model_boxes.items():
            cb.setChecked(name in p.models and cb.isEnabled())
        self.set_workload(p.workload)
        self.tasks.setText(str(p.tasks))
        self.size.setText(p.size)
        self.workers.setText(p.workers)
        self.timeout.setText(p.timeout)
        self.policy.setCurrentText(p.policy)
        self.params.setText(p.params)
        self.story.setText(p.story)
        self.clear_errors()

    # -- remembered between launches (gui.settings) -----------------------------------------------
    #: More values to remember, by key: (read it, set it). A widget added to the form later
    #: (the interpreter selector) registers itself with :meth:`persist`.
    extra_state: dict[str, tuple[Callable[[], Any], Callable[[Any], object]]]

    def persist(self, key: str, get: Callable[[], Any], put: Callable[[Any], object]) -> None:
        """Remember ``get()`` under ``key`` between launches; ``put(value)`` brings it back
        (a value it refuses with TypeError, ValueError or KeyError is skipped)."""
        self.extra_state[key] = (get, put)

    def state(self) -> dict[str, Any]:
        """The form's values (JSON-ready): what the window saves on close."""
        out: dict[str, Any] = {
            "preset": self.preset.currentIndex(),
            "models": self.selected_models(),
            "workload": self.workload_name(),
            "gui_loop": self.gui_loop.isChecked(),
            "policy": self.policy.currentText(),
            "function": self.custom.function.text(),
            "args": self.custom.args.text(),
        }
        for name in ("tasks", "size", "workers", "timeout", "params"):
            out[name] = self.fields[name].editor.text()  # type: ignore[attr-defined]
        for key, (get, _put) in self.extra_state.items():
            out[key] = get()
        return out

    def restore_state(self, state: dict[str, Any]) -> None:
        """Bring back values saved by :meth:`state`. Unknown models, workloads or keys and
        values of the wrong type are skipped: a stale or damaged file never stops the form."""

        def text(value: Any) -> str:
            if not isinstance(value, str) or len(value) > 2000:
                raise TypeError
            return value

        def preset(i: Any) -> None:
            if not isinstance(i, int) or not 1 <= i <= len(PRESETS):
                raise ValueError
            self.preset.blockSignals(True)  # the saved fields follow; not the preset's own
            self.preset.setCurrentIndex(i)
            self.preset.blockSignals(False)
            self.story.setText(PRESETS[i - 1].story)

        def models(names: Any) -> None:
            if not isinstance(names, list):
                raise TypeError
            known = [n for n in names if isinstance(n, str) and n in self.model_boxes
                     and self.model_boxes[n].isEnabled()]
            if not known:
                raise ValueError
            for n, cb in self.model_boxes.items():
                cb.setChecked(n in known)

        def workload(name: Any) -> None:
            if text(name) not in engine.WORKLOADS:
                raise KeyError(name)
            self.set_workload(name)

        def policy(name: Any) -> None:
            if text(name) not in engine.spec.POLICIES:
                raise KeyError(name)
            self.policy.setCurrentText(name)

        def line(name: str) -> Callable[[Any], object]:
            return lambda v: self.fields[name].editor.setText(text(v))  # type: ignore[attr-defined]

        def gui_loop(on: Any) -> None:
            if not isinstance(on, bool):
                raise TypeError
            self.gui_loop.setChecked(on and self.gui_loop.isEnabled())

        setters: dict[str, Callable[[Any], object]] = {
            # The registered widgets first: the interpreters ticked decide which models can be.
            **{k: put for k, (_get, put) in self.extra_state.items()},
            "preset": preset, "models": models, "workload": workload, "policy": policy,
            **{n: line(n) for n in ("tasks", "size", "workers", "timeout")},
            "params": lambda v: self.params.setText(text(v)) if self.params.isEnabled() else None,
            "function": lambda v: self.custom.function.setText(text(v)),
            "args": lambda v: self.custom.args.setText(text(v)),
            "gui_loop": gui_loop,
        }
        restore_each(state, setters)
        self.clear_errors()

    # -- validation -------------------------------------------------------------------------------
    def workload_name(self) -> str:
        return str(self.workload.currentData() or self.workload.currentText())

    def set_workload(self, name: str) -> None:
        i = self.workload.findData(name)
        if i >= 0:
            self.workload.setCurrentIndex(i)

    def selected_models(self) -> list[str]:
        return [n for n, cb in self.model_boxes.items() if cb.isChecked() and cb.isEnabled()]

    def clear_errors(self) -> None:
        for f in (*self.fields.values(), self.models_field, self.gui_loop_field,
                  self.cluster.field):
            f.set_error("")
        self.custom.clear_errors()

    def say(self, text: str) -> None:
        """One line under the form about what was last done (started, comparing, done...)."""
        if self.summary.property("error"):
            self.summary.setProperty("error", False)
            self.summary.style().unpolish(self.summary)
            self.summary.style().polish(self.summary)
        self.summary.setText(text)

    def show_error(self, err: SpecError) -> None:
        """The error under its field (the field scrolled into view and focused), and a line
        under Start saying nothing started, and why: Ctrl+R on a form whose error was
        already showing changed nothing visible (issue 16)."""
        self._say_not_started(err)
        if self.workload_name() == "custom" and self.custom.show_spec_error(err):
            self.fieldShown.emit(self.custom.function if err.field not in (
                "params.args", "params.kwargs") else self.custom.args)
            return
        name = err.field.split(".", 1)[0]
        target = {"model": self.models_field, "loop": self.gui_loop_field,
                  "options": self.cluster.field}.get(name) \
            or self.fields.get(name) or self.models_field
        msg = err.message if "." not in err.field else f"{err.field.split('.', 1)[1]}: {err.message}"
        target.set_error(msg)
        if isinstance(target.editor, QLineEdit):
            target.editor.setFocus()
        self.fieldShown.emit(target)

    def _say_not_started(self, err: SpecError) -> None:
        name = (err.field.split(".", 1)[-1] if err.field.startswith(("params.", "options."))
                else err.field)
        label = {"model": "models", "loop": "Coroutines on the GUI loop", "size": "size / task",
                 "root": "function", "kwargs": "args"}.get(name, name)
        self.say(f"{self._refusal}: {label}: {err.message}")
        self.summary.setProperty("error", True)
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)

    def build_specs(self, refusal: str = "Not started") -> list[RunSpec] | None:
        """Validate the form: the specs, or None after showing every error at its field (and
        ``refusal``, with the error, under Start)."""
        self._refusal = refusal
        self.clear_errors()
        models = self.selected_models()
        if not models:
            self.show_error(SpecError("model", "choose at least one model"))
            return None
        pythons = self.interpreters.selected()
        if not pythons:
            self.show_error(SpecError("model", "tick at least one interpreter"))
            return None
        if self.gui_loop.isChecked() and [i.source for i in pythons] != ["current"]:
            self.show_error(SpecError(
                "loop", "runs on this window's own interpreter: tick it alone, or untick this"))
            return None
        specs: list[RunSpec] = []
        try:
            workload = self.workload_name()
            size = self.size.text()
            if workload == "custom":
                params: dict = self.custom.params()
                size = "1ms"  # ignored by custom functions (the field is disabled)
            else:
                params = parse_params(self.params.text()) if self.params.isEnabled() else {}
            workers = self.workers.text().strip() or None
            for m in models:
                # In a comparison the pool size is for the pooled models: a one-worker model
                # (sequential) keeps its one. Alone, a wrong value is an error at the field.
                w = None if (self._info(m).max_workers == 1 and len(models) > 1) else workers
                specs.append(engine.make_spec(
                    m, workload, self.tasks.text(), size,
                    w, self.timeout.text().strip() or None, self.policy.currentText(), params,
                    self.cluster.options_for(self._info(m)), models=self.available))
        except SpecError as e:
            self.show_error(e)
            return None
        if self.gui_loop.isChecked():
            s = next(s for s in specs if self._info(s.model).caller_loop)
            if s.tasks > GUI_LOOP_MAX_TASKS:
                self.show_error(SpecError(
                    "tasks", f"at most {GUI_LOOP_MAX_TASKS} tasks with 'Coroutines on the GUI "
                    "loop' (it is a lesson, not a way to run big jobs)"))
                return None
            if s.size_s > GUI_LOOP_MAX_SIZE_S:
                self.show_error(SpecError(
                    "size", f"at most {GUI_LOOP_MAX_SIZE_S:.0f}s per task with 'Coroutines on "
                    "the GUI loop'"))
                return None
            if s.tasks * s.size_s > GUI_LOOP_MAX_TOTAL_S:
                self.show_error(SpecError(
                    "size", f"tasks × size must stay under {GUI_LOOP_MAX_TOTAL_S:.0f}s with "
                    "'Coroutines on the GUI loop' (a blocking coroutine freezes this window "
                    "for that long)"))
                return None
        return specs

    def request_start(self) -> None:
        """Validate the form and ask for its runs; a scheduler it names is tried first, off
        the GUI thread (Start waits, disabled, meanwhile: see gui.model_options)."""
        if self.cluster.busy:
            return
        specs = self.build_specs()
        if specs is not None:
            on_loop = self.gui_loop.isChecked()
            go = lambda: self.startRequested.emit(specs, on_loop)  # noqa: E731
            if not self.cluster.check(specs, go, self.show_error):
                go()
