"""Compare mode's charts: a row of small bar charts, one per figure, one bar per model.

Each figure is read from :func:`engine.compare.row` by its key, the same row the results table
and the CLI read. A partial run (cancelled, or with tasks that timed out) is drawn hatched and
labelled "partial": its figures describe only the part that ran, so it is never drawn as if it
had finished. The wall-time chart shows each run's start-up (its workers starting) as the
darker foot of its bar.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor

from engine.compare import CORES_FMT, SPEEDUP_FMT

from . import theme
from .theme import model_color

#: (key in engine.compare.row(), chart title, format, which way is better)
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("wall_s", "wall time (s) · dark: start-up", ".2f", "low"),
    ("speedup", "speedup", SPEEDUP_FMT, "high"),
    ("busy_cores", "busy cores (its own)", CORES_FMT, ""),
    ("peak_mb", "peak memory (MB)", ".0f", "low"),
    ("gui_lag_p99_ms", "window lag p99 (ms)", ".1f", "low"),
    ("tasks_per_s", "tasks per second", ".1f", "high"),
    ("overhead_ms", "overhead per task (ms)", ".1f", "low"),
)
#: How a partial run's bars are filled (and its legend swatch), against a solid complete one.
PARTIAL_BRUSH = Qt.BrushStyle.BDiagPattern


def chart_title(title: str, basis: str | None) -> str:
    """A chart's title for the comparison's speed-up basis (the speedup chart names it)."""
    return f"{title} over {basis}" if title == "speedup" and basis else title


def bar_brush(model: str, partial: bool, winner: bool) -> QBrush:
    """A model's bar: its colour, solid (dimmed unless it won), hatched when partial."""
    c = QColor(model_color(model))
    if partial:
        return QBrush(c, PARTIAL_BRUSH)
    if not winner:
        c.setAlpha(170)
    return QBrush(c)


class MetricChart:
    """One small bar chart: one bar per model (a BarGraphItem and a text label per bar)."""

    def __init__(self, plot: pg.PlotItem, key: str, title: str, fmt: str, better: str) -> None:
        self.plot = plot
        self.key, self.title, self.fmt, self.better = key, title, fmt, better
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.showGrid(x=False, y=True, alpha=0.12)
        plot.hideAxis("left")
        plot.hideAxis("bottom")  # the legend above the charts names the colours
        plot.setTitle(chart_title(title, None), size="9pt", color=theme.DIM)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brushes=[])
        plot.addItem(self.bars)
        #: The wall chart's start-up feet (darker, under each wall bar).
        self.feet: pg.BarGraphItem | None = None
        if key == "wall_s":
            self.feet = pg.BarGraphItem(x=[], height=[], width=0.62, brushes=[])
            plot.addItem(self.feet)
        self.texts: list[pg.TextItem] = []
        self._span = (0.0, 1.0)  # the lowest and highest bar, for fit_y
        plot.getViewBox().sigResized.connect(self.fit_y)

    def set_rows(self, rows: list[dict[str, Any]], basis: str | None) -> None:
        self.plot.setTitle(chart_title(self.title, basis), size="9pt", color=theme.DIM)
        for t in self.texts:
            self.plot.removeItem(t)
        self.texts = []
        if not rows:
            self.bars.hide()
            if self.feet is not None:
                self.feet.hide()
            return
        self.bars.show()
        xs = np.arange(len(rows), dtype=float)
        vals = [r.get(self.key) for r in rows]
        heights = np.array([0.0 if v is None else float(v) for v in vals])
        brushes = []
        pens = []
        for r in rows:
            partial = bool(r.get("partial"))
            brushes.append(bar_brush(r["model"], partial, bool(r.get("winner"))))
            if r.get("winner"):
                pens.append(pg.mkPen("#ffffff", width=1))
            elif partial:  # the hatch's outline, so a partial bar still reads as one bar
                pens.append(pg.mkPen(model_color(r["model"]), width=1))
            else:
                pens.append(pg.mkPen(None))
        self.bars.setOpts(x=xs, height=heights, width=0.62, brushes=brushes, pens=pens)
        if self.feet is not None:
            feet = np.array([min(float(r.get("startup_s") or 0.0), h)
                             for r, h in zip(rows, heights, strict=True)])
            self.feet.setOpts(x=xs, height=feet, width=0.62, pens=[pg.mkPen(None)] * len(rows),
                              brushes=[QBrush(QColor(model_color(r["model"])).darker(220))
                                       for r in rows])
            self.feet.show()
        finite = [h for h in heights if math.isfinite(h)]
        top = max([0.0, *finite]) or 1.0
        lo = min([0.0, *finite])
        for i, (v, r) in enumerate(zip(vals, rows, strict=True)):
            text = "n/a" if v is None else format(v, self.fmt)
            if r.get("partial"):
                text += " · partial"
            t = pg.TextItem(text, color=theme.DIM if r.get("partial") else theme.TEXT,
                            anchor=(0.5, 1.0))
            t.setPos(float(i), max(0.0, 0.0 if v is None else float(v)))
            self.plot.addItem(t)
            self.texts.append(t)
        self.plot.setXRange(-0.6, len(rows) - 0.4, padding=0)
        self._span = (lo, top)
        self.fit_y()

    def fit_y(self) -> None:
        """The bars and, above the tallest, about 22 px for its value label: again whenever
        the plot's height changes (a chart filled before it was laid out, as in a replay,
        would otherwise cut its labels off)."""
        lo, top = self._span
        h = max(50.0, self.plot.getViewBox().height())
        self.plot.setYRange(lo * 1.1, top / max(0.5, 1.0 - 22.0 / h), padding=0)

    def label_texts(self) -> list[str]:
        """The value labels as drawn (for tests)."""
        return [t.textItem.toPlainText() for t in self.texts]


class CompareCharts(pg.GraphicsLayoutWidget):
    """A row of small bar charts, one per figure."""

    def __init__(self) -> None:
        super().__init__()
        self.setAntialiasing(False)
        self.charts: list[MetricChart] = []
        for key, title, fmt, better in METRICS:
            plot = self.addPlot()
            self.charts.append(MetricChart(plot, key, title, fmt, better))
        self.setMinimumHeight(100)

    def set_rows(self, rows: list[dict[str, Any]], basis: str | None = None) -> None:
        for c in self.charts:
            c.set_rows(rows, basis)

    def chart(self, key: str) -> MetricChart:
        return next(c for c in self.charts if c.key == key)

    def titles(self) -> list[str]:
        """Each chart's title as shown (for tests)."""
        return [c.plot.titleLabel.text for c in self.charts]
