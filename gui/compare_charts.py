"""Compare mode's charts: a row of small bar charts, one per figure, one bar per model.

Each figure is read from :func:`engine.compare.row` by its key, the same row the results table
and the CLI read.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor

from . import theme
from .theme import model_color

#: (key in engine.compare.row(), chart title, format, which way is better)
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("wall_s", "wall time (s)", ".2f", "low"),
    ("speedup", "speedup over {basis}", ".2f", "high"),
    ("busy_cores", "average busy cores", ".2f", ""),
    ("peak_mb", "peak memory (MB)", ".0f", "low"),
    ("gui_lag_p99_ms", "GUI-loop lag p99 (ms)", ".1f", "low"),
    ("tasks_per_s", "tasks per second", ".1f", "high"),
    ("overhead_ms", "overhead per task (ms)", ".1f", "low"),
)


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
        plot.setTitle(title, size="9pt", color=theme.DIM)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brushes=[])
        plot.addItem(self.bars)
        self.texts: list[pg.TextItem] = []

    def set_rows(self, rows: list[dict[str, Any]], basis: str | None) -> None:
        title = self.title.format(basis=basis or "sequential")
        self.plot.setTitle(title, size="9pt", color=theme.DIM)
        for t in self.texts:
            self.plot.removeItem(t)
        self.texts = []
        if not rows:
            self.bars.hide()
            return
        self.bars.show()
        xs = np.arange(len(rows), dtype=float)
        vals = [r.get(self.key) for r in rows]
        heights = np.array([0.0 if v is None else float(v) for v in vals])
        brushes = []
        pens = []
        for r in rows:
            c = QColor(model_color(r["model"]))
            if not r.get("winner"):
                c.setAlpha(170)
            brushes.append(QBrush(c))
            pens.append(pg.mkPen("#ffffff", width=1) if r.get("winner") else pg.mkPen(None))
        self.bars.setOpts(x=xs, height=heights, width=0.62, brushes=brushes, pens=pens)
        finite = [h for h in heights if math.isfinite(h)]
        top = max([0.0, *finite]) or 1.0
        lo = min([0.0, *finite])
        for i, v in enumerate(vals):
            t = pg.TextItem("n/a" if v is None else format(v, self.fmt), color=theme.TEXT,
                            anchor=(0.5, 1.0))
            t.setPos(float(i), max(0.0, 0.0 if v is None else float(v)))
            self.plot.addItem(t)
            self.texts.append(t)
        self.plot.setXRange(-0.6, len(rows) - 0.4, padding=0)
        # Headroom for the value labels above the bars: about 20 px of the plot's height.
        h = max(50.0, self.plot.getViewBox().height())
        self.plot.setYRange(lo * 1.1, top / max(0.5, 1.0 - 22.0 / h), padding=0)


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
