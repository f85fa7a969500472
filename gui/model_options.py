"""The form's box for a cluster model's own options: which scheduler, how cancel works there,
and the cluster's dashboard once a run has one.

Shown while a ticked model takes the ``scheduler`` option (:attr:`engine.ModelInfo.options`:
Dask today), so the form needs no model names. The address is validated by the engine
(:func:`engine.make_spec`, then a connection before the run is admitted); a refusal is one line
under the field, as for the other fields. That connection waits up to the engine's connect
timeout (2 s) on a host that does not answer, so the box makes it first, in a thread of its own
(:meth:`ClusterOptions.check`): the window's start call would otherwise wait for it on the
GUI thread, in the engine process's answer.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QLineEdit, QVBoxLayout

import engine
from engine import RunSpec, SpecError

#: Why there may be no dashboard link: Dask serves its dashboard only with bokeh installed.
NO_DASHBOARD = "no dashboard: its scheduler serves none (Dask serves one when bokeh is installed)"


def _esc(value: Any) -> str:
    """Text for a rich-text label: markup escaped, quotes kept (a label shows "&#x27;" as is
    when Qt takes its text for plain)."""
    return html.escape(str(value), quote=False)


class ClusterOptions(QGroupBox):
    """Scheduler (empty: a LocalCluster started here), the cancel note of the models that take
    it, and the cluster's address and dashboard once a run has reported them."""

    OPTION = "scheduler"
    #: A scheduler check began (True) or ended (False): Start waits meanwhile.
    checking = Signal(bool)
    #: The end of a check, from its thread: the SpecError, or None when every scheduler
    #: answered (queued to the GUI thread, where :meth:`_checked` takes it).
    _done = Signal(object)

    def __init__(self, field_factory: Any) -> None:
        super().__init__("Cluster")
        lay = QVBoxLayout(self)
        lay.setSpacing(3)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setContentsMargins(0, 0, 0, 0)
        self.scheduler = QLineEdit()
        self.scheduler.setObjectName("field_scheduler")
        self.scheduler.setPlaceholderText("empty: a LocalCluster here")
        #: The editor with its error line (the form's own Field class).
        self.field = field_factory(
            self.scheduler, "An existing Dask scheduler: tcp://HOST:PORT. Empty: TaskScope "
            "starts a LocalCluster of single-threaded worker processes (Workers of them) and "
            "closes it with the session.")
        self.scheduler.textEdited.connect(lambda _t: self.field.set_error(""))
        form.addRow("Scheduler", self.field)
        lay.addLayout(form)
        #: "checking scheduler…" while its port is tried, off the GUI thread.
        self.check_note = QLabel("checking scheduler…")
        self.check_note.setObjectName("hint")
        self.check_note.hide()
        lay.addWidget(self.check_note)
        self._then: tuple[Callable[[], None], Callable[[SpecError], None]] | None = None
        self._done.connect(self._checked)
        #: How cancel works on these models, said where it is chosen (a tooltip never shows
        #: on an X display without a window manager).
        self.cancel = QLabel()
        self.cancel.setObjectName("hint")
        self.cancel.setWordWrap(True)
        self.cancel.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.cancel)
        #: The cluster the last run used: its address, and its dashboard when it has one.
        self.cluster = QLabel()
        self.cluster.setObjectName("hint")
        self.cluster.setWordWrap(True)
        self.cluster.setTextFormat(Qt.TextFormat.RichText)
        self.cluster.setOpenExternalLinks(True)
        self.cluster.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.cluster.hide()
        lay.addWidget(self.cluster)
        self._shown: Mapping[str, Any] | None = None
        self.hide()

    def takes(self, info: engine.ModelInfo) -> bool:
        return self.OPTION in info.options

    def show_for(self, infos: Iterable[engine.ModelInfo]) -> None:
        """Shown while a ticked model takes a scheduler; the cancel note of each that does."""
        mine = [i for i in infos if self.takes(i)]
        self.setVisible(bool(mine))
        if not mine:
            self.field.set_error("")
            return
        self.setTitle(f"Cluster ({', '.join(i.name for i in mine)})")
        self.cancel.setText("<br>".join(f"Cancel on {i.name}: {_esc(i.cancel_note)}"
                                        for i in mine))

    def options_for(self, info: engine.ModelInfo) -> dict[str, Any]:
        """The options a run of this model gets from the box (none when it takes none, or the
        field is empty: the model's default, a LocalCluster)."""
        text = self.scheduler.text().strip()
        return {self.OPTION: text} if text and self.takes(info) else {}

    @property
    def busy(self) -> bool:
        """A check is under way (Start waits for it)."""
        return self._then is not None

    def check(self, specs: list[RunSpec], go: Callable[[], None],
              refuse: Callable[[SpecError], None]) -> bool:
        """If a spec names a scheduler: try each one named in a thread (the engine's
        :func:`engine.preflight`), "checking scheduler…" at the field meanwhile, then call
        ``go()`` or ``refuse(error)`` on the GUI thread, and return True. False (nothing to
        check, nothing called) otherwise."""
        named = {s.options[self.OPTION]: s for s in specs if s.options.get(self.OPTION)}
        if not named or self._then is not None:
            return bool(named)
        self._then = (go, refuse)
        self.check_note.show()
        self.checking.emit(True)
        threading.Thread(target=self._check, args=(list(named.values()),), daemon=True,
                         name="taskscope-scheduler-check").start()
        return True

    def _check(self, specs: list[RunSpec]) -> None:
        error: SpecError | None = None
        try:
            for s in specs:
                engine.preflight(s)
        except SpecError as e:
            error = e
        except Exception as e:  # noqa: BLE001 - one line at the field, never a traceback
            error = SpecError(f"options.{self.OPTION}", f"{type(e).__name__}: {e}")
        try:
            self._done.emit(error)
        except RuntimeError:  # the window closed meanwhile: nobody waits for the answer
            pass

    def _checked(self, error: SpecError | None) -> None:
        if self._then is None:
            return
        go, refuse = self._then
        self._then = None
        self.check_note.hide()
        self.checking.emit(False)
        if error is None:
            go()
        else:
            refuse(error)

    def show_cluster(self, cluster: Mapping[str, Any] | None) -> None:
        """What a run reported of its cluster (``RunRecord.info["cluster"]``): its scheduler,
        who started it, and its dashboard as a link, or why there is none."""
        if cluster is None or cluster is self._shown:
            return
        self._shown = cluster
        who = "started by TaskScope" if cluster.get("started_by") == "engine" else "existing"
        n = len(cluster.get("workers") or ())
        text = (f"Cluster {_esc(cluster.get('scheduler', '?'))} ({who}, {n} "
                f"worker{'s' if n != 1 else ''}) · ")
        url = cluster.get("dashboard")
        if url:
            text += f'dashboard: <a href="{html.escape(str(url))}">{_esc(url)}</a>'
        else:
            text += NO_DASHBOARD
        self.cluster.setText(text)
        self.cluster.show()
