"""Compare mode's view: the Compare tab, with its bands, charts, results table and readings.

The models of a comparison run one after another (``engine.compare``); this view only shows
what the engine measured. It is fed by the window's frame tick, in bulk:

* :meth:`CompareView.adopt_run` when a model's run appears in the store,
* :meth:`CompareView.update_tasks` with the task records that changed this frame,
* :meth:`CompareView.set_progress` with the job's latest :class:`~engine.compare.CompareProgress`,
* :meth:`CompareView.model_done` / :meth:`CompareView.set_result` with the engine's figures.

The bands (one per model, :mod:`gui.compare_bands`) and the charts (one per figure,
:mod:`gui.compare_charts`) are views of their own; this one lays them out and fills the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine import TaskRecord
from engine.clock import now_ns
from engine.compare import (
    CORES_FMT,
    SPEEDUP_FMT,
    CompareProgress,
    CompareResult,
    ModelResult,
    no_winner_why,
)
from engine.compare import row as figures
from engine.compare import rows as result_rows

from . import theme
from .compare_bands import BandData, BandsView
from .compare_charts import CompareCharts
from .fitting import ElidedLabel
from .theme import model_color

TABLE_COLS = ("", "model", "wall", "start-up", "speedup", "w/o start-up", "busy cores",
              "machine", "peak MB", "window lag p99", "tasks/s", "overhead")
#: The table's figure columns (after the star and the model): (key in engine.compare.row(),
#: format, unit, what a missing figure reads). Busy cores and speed-ups are printed as the
#: readings print them, so the two never disagree.
TABLE_FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("wall_s", ".3f", " s", "-"),
    ("startup_s", ".3f", " s", "n/a"),
    ("speedup", SPEEDUP_FMT, "×", "n/a"),
    ("speedup_without_startup", SPEEDUP_FMT, "×", "n/a"),
    ("busy_cores", CORES_FMT, "", "n/a"),
    ("machine_cores", CORES_FMT, "", "n/a"),
    ("peak_mb", ".0f", "", "n/a"),
    ("gui_lag_p99_ms", ".1f", " ms", "n/a"),
    ("tasks_per_s", ".1f", "", "-"),
    ("overhead_ms", ".1f", " ms", "n/a"),
)
TABLE_WIDTHS = (18, 190, 76, 70, 64, 84, 76, 66, 62, 100, 62, 80)
TABLE_TIPS = (
    "★ marks the winner: the lowest wall time among complete runs (at least two must complete)",
    "the model (and its status when it did not complete: a partial run is not ranked)",
    "first task queued to last task ended, start-up included",
    "from the run's start until its workers were ready (worker processes, a Dask cluster, "
    "interpreters); 0 where the workers are threads of the engine",
    "baseline wall time / this wall time (baseline: sequential, else the slowest complete run); "
    "none for a partial run",
    "the speed-up with each run's start-up taken off its wall time",
    "the cores this run kept busy: the engine process's and its workers' CPU time over the "
    "run (the figure the reading quotes)",
    "every program's busy cores while it ran, this run's included (other load shows here)",
    "peak resident memory of the engine process plus the worker processes (not the "
    "window: it is the same for every model)",
    "this window's own event-loop lag (p99) while the model ran. The model runs in the engine "
    "process, not on this loop: this is the window's figure, not the model's",
    "tasks that ended on their own, per second of wall time",
    "(wall time - start-up - ideal time) / tasks: what the model lost per task (scheduling, "
    "pickling, lost parallelism); n/a for a partial run",
)
#: What the Compare tab says before any comparison, live and in a replay.
IDLE_LIVE = ("Tick two or more models and press Start to compare them: they run one after "
             "another, never at once.")
IDLE_REPLAY = "No comparison in this trace: its runs were started one at a time."


def _fmt(v: Any, fmt: str, unit: str = "", na: str = "n/a") -> str:
    return na if v is None else f"{format(v, fmt)}{unit}"


class CompareView(QWidget):
    """The Compare tab. ``cancelRequested`` asks the window to cancel the whole comparison."""

    cancelRequested = Signal()

    #: The tab's least height whatever it shows (the window sets it); its panes may need more
    #: (the bands grow with their models), and a scroll area around it then scrolls.
    least_height = 0

    def __init__(self, describe: Callable[[int], str], idle_text: str = IDLE_LIVE) -> None:
        super().__init__()
        self.describe = describe
        self.t0_ns = now_ns()
        self.models: list[str] = []
        self.run_of: dict[str, int] = {}
        self.results: dict[str, ModelResult] = {}
        self.result: CompareResult | None = None
        self.progress: CompareProgress | None = None
        self.live_run: int | None = None
        self.running = False
        self.what = ""

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        head = QHBoxLayout()
        head.setContentsMargins(4, 0, 0, 0)
        # The status has the row to itself, less the controls: at 1366 px a title beside it
        # left it 140 px, and it ran under the progress bar mid-word ("model 2/2: proces").
        # The tab's name says what this is; where the status still does not fit it ends in
        # "…" (whole in its tooltip; the form's line under Start says the same).
        self.status = ElidedLabel(idle_text)
        self.status.setObjectName("compareStatus")
        head.addWidget(self.status, 1)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(120)
        self.bar.setTextVisible(True)
        self.bar.hide()
        head.addWidget(self.bar)
        self.align = QCheckBox("align starts")
        self.align.setChecked(True)
        self.align.setToolTip("On: every model's band starts at 0, so bar lengths compare "
                              "directly.\nOff: one clock from the start of the comparison.")
        self.align.toggled.connect(self._align_toggled)
        head.addWidget(self.align)
        self.fit_btn = QPushButton("Fit")
        self.fit_btn.setToolTip("Show every band whole again")
        head.addWidget(self.fit_btn)
        self.cancel_btn = QPushButton("■ Cancel compare")
        self.cancel_btn.setToolTip("Stop the running model and skip the rest")
        self.cancel_btn.clicked.connect(self.cancelRequested)
        self.cancel_btn.setEnabled(False)
        head.addWidget(self.cancel_btn)
        lay.addLayout(head)

        self.data = BandData(self.t0_ns)
        self.bands = BandsView(self.data, self.now_s, describe, self.band_label)
        self.fit_btn.clicked.connect(self.bands.fit)

        self.charts = CompareCharts()
        self.legend = QLabel("")
        self.legend.setObjectName("hint")
        charts_box = QWidget()
        cl = QVBoxLayout(charts_box)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.legend)
        cl.addWidget(self.charts, 1)

        self.table = QTableWidget(0, len(TABLE_COLS))
        self.table.setHorizontalHeaderLabels(list(TABLE_COLS))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        # Fixed widths: measuring every cell on each update costs a frame.
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        fm = self.table.horizontalHeader().fontMetrics()
        for col, w in enumerate(TABLE_WIDTHS):
            self.table.setColumnWidth(col, max(w, fm.horizontalAdvance(TABLE_COLS[col]) + 18))
        for col, tip in enumerate(TABLE_TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        hh.setStretchLastSection(True)
        self.readings = QTextBrowser()  # scrolls when the sentences outgrow the pane
        self.readings.setOpenLinks(False)
        self.readings.setFrameShape(QTextBrowser.Shape.NoFrame)
        self.readings.setStyleSheet("QTextBrowser { background: transparent; }")
        self.notes = QLabel("")
        self.notes.setObjectName("hint")
        self.notes.setWordWrap(True)

        # The table and the readings each get the tab's whole width (a row of twelve figures
        # beside the sentences needed a horizontal scroll bar even at 1600 px).
        words = QWidget()
        wl = QVBoxLayout(words)
        wl.setContentsMargins(0, 0, 0, 0)
        wl.setSpacing(2)
        wl.addWidget(self.readings, 1)
        wl.addWidget(self.notes)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.bands)
        split.addWidget(charts_box)
        split.addWidget(self.table)
        split.addWidget(words)
        split.setSizes([250, 120, 96, 110])
        split.setChildrenCollapsible(False)
        # Short of room, the bands give way last: they are what the tab is about.
        for i, stretch in enumerate((4, 2, 1, 1)):
            split.setStretchFactor(i, stretch)
        self._fit_table_height()
        # Three sentences' worth, however short of room the tab is (more scroll).
        self.readings.setMinimumHeight(3 * self.readings.fontMetrics().lineSpacing() + 8)
        lay.addWidget(split, 1)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return super().minimumSizeHint().expandedTo(QSize(0, self.least_height))

    # -- clocks and labels -----------------------------------------------------------------------
    def now_s(self) -> float:
        """'Now' on the bands' clock (where a running bar ends)."""
        rid = self.live_run
        if self.data.aligned:
            if rid is None or rid not in self.data.run_t0:
                return self.data.t_max
            return (now_ns() - self.data.run_t0[rid]) / 1e9
        return (now_ns() - self.t0_ns) / 1e9 if self.running else self.data.t_max

    def band_label(self, run_id: int) -> str:
        model = self.data.run_model.get(run_id, "?")
        r = self.results.get(model)
        star = "★ " if r is not None and r.winner else ""
        partial = " · partial" if r is not None and r.partial else ""
        return f"{star}{model}{partial}"

    # -- feeding ---------------------------------------------------------------------------------
    def begin(self, models: Iterable[str], what: str) -> None:
        """A new comparison: forget the last one, show the models waiting."""
        self.t0_ns = now_ns()
        self.models = list(models)
        self.run_of.clear()
        self.results.clear()
        self.result = None
        self.progress = None
        self.live_run = None
        self.running = True
        self.data.t0_ns = self.t0_ns
        self.data.run_t0.clear()
        self.data.run_model.clear()
        self.data.partial.clear()
        self.data.clear()
        self.bands.auto = True
        self.what = what
        self.status.setText(f"{what} · starting…")
        self.bar.setRange(0, max(1, len(self.models)))
        self.bar.setValue(0)
        self.bar.show()
        self.cancel_btn.setEnabled(True)
        self.readings.setHtml("")
        self.legend.setText("")
        self.notes.setText("")
        self._fill_table()
        self.charts.set_rows([])

    def adopt_run(self, run_id: int, model: str, start_ns: int) -> None:
        self.run_of[model] = run_id
        self.data.run_t0[run_id] = start_ns
        self.data.run_model[run_id] = model
        self.live_run = run_id
        self._fill_table()

    def update_tasks(self, recs: Iterable[TaskRecord]) -> None:
        recs = [r for r in recs if r.run_id in self.data.run_t0]
        if recs:
            self.data.update(recs, lambda rid: self.data.run_model.get(rid, ""))

    def set_progress(self, p: CompareProgress | None) -> None:
        if p is None or p is self.progress:
            return
        self.progress = p
        n = p.n_models
        if p.phase in ("done", "cancelled"):
            return  # set_result says the last word
        model = p.model or ""
        if p.phase == "settling":
            text = f"model {p.index + 1}/{n}: {model} · letting the machine settle…"
        elif p.phase == "running":
            text = f"model {p.index + 1}/{n}: {model} running · {p.tasks_done}/{p.tasks_total} tasks"
        else:
            text = f"model {p.index + 1}/{n}: {model} done"
        self.status.setText(f"{self.what} · {text} · {p.elapsed_s:.1f} s")
        frac = p.index + (p.tasks_done / p.tasks_total if p.tasks_total else 0.0)
        # Only what changed: each Qt call may wait for the GIL behind a CPU-bound thread.
        if self.bar.maximum() != 100 * max(1, n):
            self.bar.setRange(0, 100 * max(1, n))
        if self.bar.value() != int(100 * frac):
            # QProgressBar.setValue repaints at once, a paint pass in the middle of the frame
            # tick (ten times a second, with the status line beside it); with updates off it
            # only marks the bar, painted with the frame's own pass (issue 17).
            self.bar.setUpdatesEnabled(False)
            self.bar.setValue(int(100 * frac))
            self.bar.setUpdatesEnabled(True)
        fmt = f"{p.index + (1 if p.phase == 'model_done' else 0)}/{n} models"
        if self.bar.format() != fmt:
            self.bar.setFormat(fmt)
        if p.phase != getattr(self, "_phase", None) or p.model != getattr(self, "_pmodel", None):
            self._phase, self._pmodel = p.phase, p.model
            self._fill_table()  # the running model's status cell

    def show_cancelling(self) -> None:
        """The comparison was asked to stop; its last word comes with :meth:`set_result`."""
        self.status.setText(f"{self.what} · cancelling…")

    def model_done(self, r: ModelResult) -> None:
        """One model's raw figures (speedups and readings come with the final result)."""
        self.results[r.model] = r
        self._mark_partial(r)
        self._fill_table()
        # The charts fill in as models finish (speedup and overhead come with the end).
        self.charts.set_rows([figures(self.results[m]) for m in self.models
                              if m in self.results and self.results[m].status != "skipped"])

    def set_result(self, res: CompareResult | None, error: str = "") -> None:
        """The end: final figures, winner, readings, charts."""
        self.running = False
        self.live_run = None
        self.cancel_btn.setEnabled(False)
        self.bar.hide()
        if res is None:
            self.status.setText(f"{self.what} · failed: {error}")
            self.status.setStyleSheet(f"color: {theme.ERROR}")
            return
        self.status.setStyleSheet("")
        self.result = res
        self.results = {r.model: r for r in res.results}
        for r in res.results:  # the engine's own window for each run, for the aligned clock
            if r.run_id is not None and r.start_ns is not None:
                self.data.run_t0.setdefault(r.run_id, r.start_ns)
            self._mark_partial(r)
        cancelled = " · CANCELLED" if res.cancelled else ""
        win = f"winner: ★ {res.winner}" if res.winner else f"no winner ({no_winner_why(res)})"
        self.status.setText(f"{self.what}{cancelled} · {win}")
        self._fill_table()
        rows = [r for r in result_rows(res) if r["status"] not in ("skipped",)]
        # Across interpreters each row's speed-up is against sequential on its own interpreter
        # ("sequential on 3.13.0"): the charts' heading must not name the first one's only.
        bases = sorted({r.speedup_basis for r in res.results if r.speedup_basis})
        basis = bases[0] if len(bases) == 1 else (
            f"{bases[0].split(' on ')[0]} on each row's own interpreter" if bases else None)
        self.charts.set_rows(rows, basis)
        lines = []
        for r in res.results:
            colour = model_color(r.model)
            text = _html(r.reading)
            if r.winner:
                lines.append(f"<b><span style='color:{colour}'>★</span> {text}</b>")
            else:
                lines.append(f"<span style='color:{colour}'>●</span> {text}")
        self.readings.setHtml("<br>".join(lines))
        partial = any(r["partial"] for r in rows)
        self.legend.setText("bars, left to right: " + "  ".join(
            f"<span style='color:{model_color(r['model'])}'>{'▨' if r['partial'] else '■'}"
            f"</span> {r['model']}" + (" ★" if r["winner"] else "")
            + (" (partial)" if r["partial"] else "") for r in rows)
            + "  · the winner's bars are outlined"
            + ("; hatched: a partial run, not ranked" if partial else ""))
        notes = list(res.notes)
        if basis and not any(n.startswith("speedup") for n in notes):
            notes.insert(0, f"speedup relative to {basis}")
        self.notes.setText(" · ".join(notes))
        self.bands.fit()

    def tick(self) -> None:
        if self.bands.isVisible():  # in a hidden tab: caught up when the tab shows
            self.bands.tick()

    def _mark_partial(self, r: ModelResult) -> None:
        if r.run_id is not None and r.partial:
            self.data.partial.add(r.run_id)
            self.bands.fit()

    def show_saved(self, res: CompareResult, recs: Iterable[TaskRecord]) -> None:
        """A comparison that ended earlier (a replay): its bands from the runs' task records,
        then its table, charts and readings, as they were when it finished."""
        self.begin(res.models, res.label or f"{res.workload} · {res.tasks} tasks")
        self.t0_ns = self.data.t0_ns = res.t0_ns
        for r in res.results:
            if r.run_id is not None and r.start_ns is not None:
                self.adopt_run(r.run_id, r.model, r.start_ns)
        self.live_run = None
        self.update_tasks(recs)
        self.set_result(res)

    # -- table ---------------------------------------------------------------------------------------
    def _fill_table(self) -> None:
        t = self.table
        t.setUpdatesEnabled(False)
        try:
            self._fill_rows(t)
        finally:
            t.setUpdatesEnabled(True)

    def _fit_table_height(self) -> None:
        """Room for every row (a comparison has a few; past 8 it scrolls): the splitter must
        never squeeze a model's row off the table."""
        t = self.table
        rows = min(8, max(2, t.rowCount()))
        t.setMinimumHeight(t.horizontalHeader().sizeHint().height() + 2 * t.frameWidth() + 2
                           + t.verticalHeader().defaultSectionSize() * rows)

    def _fill_rows(self, t: QTableWidget) -> None:
        if t.rowCount() != len(self.models):
            t.setRowCount(len(self.models))
            self._fit_table_height()
        live = self.progress.model if (self.progress and self.running) else None
        for i, m in enumerate(self.models):
            r = self.results.get(m)
            star = "★" if r is not None and r.winner else ""
            if r is not None:
                status = r.status
            elif m == live:
                status = "running" if self.progress and self.progress.phase == "running" \
                    else "settling"
            else:
                status = "waiting" if self.running else "-"
            partial = r is not None and r.partial
            cells = [star, m if status == "complete" else
                     f"{m} · partial ({status})" if partial else f"{m} · {status}"]
            if r is None:
                cells += [""] * (len(TABLE_COLS) - 2)
            else:
                f = figures(r)
                cells += [_fmt(f[key], fmt, unit, na) for key, fmt, unit, na in TABLE_FIGURES]
            for c, text in enumerate(cells):
                item = t.item(i, c)
                if item is None:
                    item = QTableWidgetItem()
                    t.setItem(i, c, item)
                if item.text() == text and item.toolTip() == (r.reading if r else ""):
                    continue
                item.setText(text)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if c in (0, 1):
                    item.setForeground(QColor(model_color(m)))
                elif partial:  # its figures describe part of a run: dimmed, as in the charts
                    item.setForeground(QColor(theme.DIM))
                else:
                    item.setData(Qt.ItemDataRole.ForegroundRole, None)
                font = item.font()
                font.setBold(bool(star))
                font.setItalic(partial)
                item.setFont(font)
            tip = r.reading if r is not None else ""
            for c in range(len(TABLE_COLS)):
                it = t.item(i, c)
                if it is not None:
                    it.setToolTip(tip)
        self._fit_model_column(t)

    def _fit_model_column(self, t: QTableWidget) -> None:
        """The model column as wide as its longest name, status included: a fixed 190 px cut
        "processes · partial (cancelled)" to "processes · partial (cancel…". It only
        grows (a column the user widened stays)."""
        need = 0
        for i in range(t.rowCount()):
            it = t.item(i, 1)
            if it is not None and it.text():
                font = it.font()
                font.setBold(True)  # the winner's row is bold: room for it either way
                need = max(need, QFontMetrics(font).horizontalAdvance(it.text()))
        need += 20  # the cell's padding, with air
        if need > t.columnWidth(1):
            t.setColumnWidth(1, need)

    def row_texts(self) -> list[list[str]]:
        """The table as text (for tests and for copying)."""
        out = []
        for i in range(self.table.rowCount()):
            out.append([(self.table.item(i, c).text() if self.table.item(i, c) else "")
                        for c in range(self.table.columnCount())])
        return out

    def _align_toggled(self, on: bool) -> None:
        self.data.aligned = on
        self.bands.set_aligned(on)
        recs = self._all_recs()
        self.data.clear()
        self.data.update(recs, lambda rid: self.data.run_model.get(rid, ""))
        self.bands.fit()

    #: Set by the window: run id -> that run's task records (to redraw after a clock change).
    records_of: Callable[[int], list[TaskRecord]] | None = None

    def _all_recs(self) -> list[TaskRecord]:
        if self.records_of is None:
            return []
        out: list[TaskRecord] = []
        for rid in self.data.run_t0:
            out.extend(self.records_of(rid))
        return out


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
