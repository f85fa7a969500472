"""Live per-core CPU over the last 60 s, plus total CPU and this app's own share.

Every core is one band of ONE path (one polyline per core), so 64 cores cost one path per
frame. Width-1 cosmetic pens, no antialiasing: on a live plot both matter more than looks (see
the design's facts table). Samples are shown as measured: no smoothing, no interpolation between
samples.

Cheap to keep open: an idle window redraws this view 2.5 times a second, for ever. So everything
that moves is a plain Qt item with no Python in its paint path (``QGraphicsPathItem`` curves,
``QGraphicsRectItem`` core bands), and the axes, which only change on a resize (or a replay's
pan), are cached as pixmaps instead of replaying their grid through a QPicture on every frame.
That took one redraw (two samples added, both plots painted) from about 2.0 to 0.8 ms of GUI
thread: pyqtgraph's PlotCurveItem and LinearRegionItem ran Python for their bounds and paint
on every frame although nothing here auto-ranges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .timeline import lean_view

WINDOW_S = 60.0
LABEL_S = 0.5  # how often the readout and legend numbers are refreshed
BAND = 100.0  # one band per core, 0..100 %
GAP = 18.0  # space between bands
TOTAL_C = "#d7dce2"
APP_C = "#ff7b72"
WORKERS_C = "#e3b341"
#: The time axis' ticks, live: seconds before now (the plots' title says "last 60 s").
SECONDS_AGO = [[(-v, f"{v} s ago" if v == 60 else str(v)) for v in (60, 50, 40, 30, 20, 10, 0)]]


class Trace:
    """One plotted line: a plain ``QGraphicsPathItem`` in a plot's data coordinates.

    Its pen is cosmetic with width 0 (one pixel at any zoom): with a wider pen Qt computes the
    item's bounding rect by stroking the whole path, on every frame. ``setData`` takes the
    samples as arrays (``breaks``: how many equal-length polylines they hold, e.g. one per
    core); ``getData`` returns the last ones, like pyqtgraph's curves do.
    """

    def __init__(self, plot: pg.PlotItem, colour: str) -> None:
        pen = QPen(QColor(colour))
        pen.setCosmetic(True)
        pen.setWidth(0)
        self.item = QGraphicsPathItem()
        self.item.setPen(pen)
        plot.getViewBox().addItem(self.item, ignoreBounds=True)
        self.x = np.zeros(0)
        self.y = np.zeros(0)

    def setData(self, x: np.ndarray, y: np.ndarray, breaks: int = 1) -> None:
        """Plot y against x; with ``breaks`` > 1 the arrays hold that many equal-length
        polylines one after another, drawn unconnected."""
        self.x, self.y = x, y
        path = QPainterPath()
        m = len(x) // max(1, breaks)
        if m >= 1:
            for k in range(breaks):
                sl = slice(k * m, (k + 1) * m)
                path.addPolygon(pg.functions.arrayToQPolygonF(x[sl], y[sl]))
        self.item.setPath(path)

    def getData(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.y


class Bands:
    """Faint horizontal bands (one per core, ``(lo, hi)`` in y) across the whole view.

    Plain ``QGraphicsRectItem`` s whose x extent follows the view's range (3 widths wide), so a
    replay's pan never runs off their ends; they cost no Python while painted.
    """

    def __init__(self, plot: pg.PlotItem, spans: list[tuple[float, float]]) -> None:
        self.vb = plot.getViewBox()
        self.spans = spans
        self.items: list[QGraphicsRectItem] = []
        brush = pg.mkBrush(255, 255, 255, 8)
        for _ in spans:
            r = QGraphicsRectItem()
            r.setPen(QPen(Qt.PenStyle.NoPen))
            r.setBrush(brush)
            r.setZValue(-10)
            self.vb.addItem(r, ignoreBounds=True)
            self.items.append(r)
        self.vb.sigXRangeChanged.connect(self.follow)
        self.follow()

    def follow(self, *args: object) -> None:
        x0, x1 = self.vb.viewRange()[0]
        w = max(x1 - x0, 1e-9)
        for r, (lo, hi) in zip(self.items, self.spans, strict=True):
            r.setRect(QRectF(x0 - w, lo, 3 * w, hi - lo))


class CoreScale(pg.AxisItem):
    """Each core band's scale, at the right: "100%" at its top and "50%" at its middle, and
    "0%" at the foot of the lowest band (a band's foot sits just above the next band's top,
    so labelling both would overlap). Only what the band's height on screen has room for:
    down to "100%" alone, then nothing (many cores on a short pane; the totals plot beside
    keeps its own scale)."""

    def __init__(self, ncores: int) -> None:
        super().__init__("right")
        self.ncores = ncores
        self.setStyle(tickLength=3, hideOverlappingLabels=False)
        # Room for "100%" after the tick and its offset: a label that does not fit whole is
        # not drawn at all.
        self.setWidth(int(QFontMetricsF(self.font()).horizontalAdvance("100%")) + 16)

    def line_px(self) -> float:
        return QFontMetricsF(self.style.get("tickFont") or self.font()).height() + 2

    def labels(self, band_px: float) -> dict[float, str]:
        """Where each label goes (y in the plot) for bands ``band_px`` pixels tall."""
        line = self.line_px()
        out: dict[float, str] = {}
        if band_px < line:
            return out
        for c in range(self.ncores):
            base = (self.ncores - 1 - c) * (BAND + GAP)
            out[base + BAND] = "100%"
            if band_px >= 2 * line:
                out[base + BAND / 2] = "50%"
        if band_px >= 2 * line:
            out[0.0] = "0%"
        return out

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        band_px = size * BAND / max(1e-9, abs(maxVal - minVal))
        self._labels = self.labels(band_px)
        return [(1.0, sorted(self._labels))]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        labels = getattr(self, "_labels", {})
        return [labels.get(v, "") for v in values]


def cache_axes(plot: pg.PlotWidget) -> None:
    """Keep the plot's axes (labels and grid) as pixmaps, redrawn only when they change."""
    for name in ("left", "bottom", "right"):
        plot.getPlotItem().getAxis(name).setCacheMode(
            QGraphicsItem.CacheMode.DeviceCoordinateCache)


class CpuView(QWidget):
    """Per-core bands on the left; beside them the whole machine's total, TaskScope's own
    processes (window and engine) and the worker processes, each as a share of the machine."""

    def __init__(self, ncores: int, capacity: int = 4096) -> None:
        super().__init__()
        self.ncores = max(1, ncores)
        self.cap = capacity
        self.n = 0
        self.t = np.zeros(capacity)
        self.cores = np.zeros((capacity, self.ncores))
        self.total = np.zeros(capacity)
        self.app = np.zeros(capacity)
        self.workers = np.zeros(capacity)
        self.last: Any = None
        #: Replay: samples are drawn against seconds since this instant (the timeline's axis),
        #: all of them; live (None): the last WINDOW_S seconds against "seconds ago".
        self.origin_ns: int | None = None
        self._labels_at = -math.inf  # when the readout and legend texts were last set

        # Per core on the left, the machine's totals on the right, side by side: stacked,
        # the two plots and their axes took a third of a laptop screen's height (issue 16).
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 6, 0)  # a margin for the right-edge labels
        lay.setSpacing(8)
        left_col = QVBoxLayout()
        left_col.setSpacing(0)
        head = QHBoxLayout()
        title = self.title = QLabel("CPU per core · last 60 s")
        title.setObjectName("paneTitle")
        head.addWidget(title)
        self.readout = QLabel("waiting for the first sample…")
        self.readout.setObjectName("hint")
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        # Its text changes twice a second: a fixed place in the header (right-aligned, taking
        # the free width) means only the label repaints, the header is never laid out again.
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        head.addWidget(self.readout, 1)
        # Opaque (it changes twice a second): a transparent label has the widgets under it,
        # up to the window's splitters, repainted with it.
        self.readout.setAutoFillBackground(True)
        left_col.addLayout(head)

        self.cores_plot = pg.PlotWidget()
        self.cores_plot.setAntialiasing(False)
        lean_view(self.cores_plot)
        pi = self.cores_plot.getPlotItem()
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setMouseEnabled(x=False, y=False)
        pi.showGrid(x=True, y=False, alpha=0.12)
        span = self.ncores * (BAND + GAP) - GAP
        pi.setYRange(-4, span + 4, padding=0)
        pi.setXRange(-WINDOW_S, 0, padding=0)
        pi.getAxis("bottom").setTicks(SECONDS_AGO)
        left = pi.getAxis("left")
        left.setWidth(52)
        # Core 0 at the top, like `top` and `htop` list them; each band's scale on the right.
        ticks = []
        for c in range(self.ncores):
            base = (self.ncores - 1 - c) * (BAND + GAP)
            ticks.append((base + BAND / 2, f"cpu{c}"))
        step = max(1, self.ncores // 16)
        left.setTicks([ticks[::step]])
        self.scale_axis = CoreScale(self.ncores)
        pi.setAxisItems({"right": self.scale_axis})
        pi.showAxis("right")
        self.bands = Bands(pi, [((self.ncores - 1 - c) * (BAND + GAP),
                                 (self.ncores - 1 - c) * (BAND + GAP) + BAND)
                                for c in range(self.ncores)])
        self.core_curve = Trace(pi, theme.ACCENT)
        cache_axes(self.cores_plot)
        self.cores_plot.setMinimumHeight(90)
        left_col.addWidget(self.cores_plot, 1)
        lay.addLayout(left_col, 3)

        right_col = QVBoxLayout()
        right_col.setSpacing(0)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.legend.setAutoFillBackground(True)  # see the readout
        self.legend.setToolTip("Shares of the whole machine's CPU: the total; TaskScope's own "
                               "processes (this window and the engine); the worker processes")
        right_col.addWidget(self.legend)
        self.total_plot = pg.PlotWidget()
        self.total_plot.setAntialiasing(False)
        lean_view(self.total_plot)
        tp = self.total_plot.getPlotItem()
        tp.setMenuEnabled(False)
        tp.hideButtons()
        tp.setMouseEnabled(x=False, y=False)
        tp.showGrid(x=True, y=True, alpha=0.12)
        tp.setYRange(-9, 109, padding=0)  # room for the 0% and 100% labels
        tp.setXRange(-WINDOW_S, 0, padding=0)
        tl = tp.getAxis("left")
        tl.setWidth(52)
        tl.setTicks([[(0, "0%"), (50, "50%"), (100, "100%")]])
        tl.setStyle(hideOverlappingLabels=False)  # 0% and 100% sit at the plot's edges
        tp.getAxis("bottom").setTicks(SECONDS_AGO)
        self.total_plot.setXLink(self.cores_plot)
        self.total_curve = Trace(tp, TOTAL_C)
        self.workers_curve = Trace(tp, WORKERS_C)
        self.app_curve = Trace(tp, APP_C)
        cache_axes(self.total_plot)
        self.total_plot.setMinimumHeight(90)
        right_col.addWidget(self.total_plot, 1)
        lay.addLayout(right_col, 2)
        self._legend(None)
        # Live, the plots change only in redraw (their range is fixed; nothing to drag), so
        # they are repainted from there, not by their scenes: each scene's update otherwise
        # painted the window in a pass of its own, right after the timeline's, three passes
        # on every frame that brought a sample (issue 17). Qt still repaints them when shown
        # or resized. A replay (set_replay) pans them with the timeline: scenes update again.
        self._frame_driven(True)

    def _frame_driven(self, on: bool) -> None:
        mode = (QGraphicsView.ViewportUpdateMode.NoViewportUpdate if on
                else QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        for plot in (self.cores_plot, self.total_plot):
            plot.setViewportUpdateMode(mode)
            plot.viewport().update()

    def band_px(self) -> float:
        """A core's band height on screen, in pixels (readable: 0% and 100% both labelled)."""
        vb = self.cores_plot.getPlotItem().getViewBox()
        y0, y1 = vb.viewRange()[1]
        return vb.height() * BAND / max(1e-9, y1 - y0)

    def set_replay(self, origin_ns: int, n_samples: int) -> None:
        """Show a recorded trace: every sample, on seconds since ``origin_ns`` (the replay
        timeline's axis), instead of a scrolling last-60-s window. Call before add_samples."""
        self.origin_ns = origin_ns
        if n_samples >= self.cap:  # keep every sample: no halving in a replay
            self.cap = n_samples + 1
            self.n = 0
            self.t = np.zeros(self.cap)
            self.cores = np.zeros((self.cap, self.ncores))
            self.total = np.zeros(self.cap)
            self.app = np.zeros(self.cap)
            self.workers = np.zeros(self.cap)
        self.title.setText("CPU per core · as recorded")
        self._frame_driven(False)
        for plot in (self.cores_plot, self.total_plot):
            pi = plot.getPlotItem()
            pi.setMouseEnabled(x=True, y=False)
        for plot in (self.cores_plot, self.total_plot):
            plot.getPlotItem().getAxis("bottom").setTicks(None)  # seconds since the start
        self.readout.setText("no CPU samples in this trace" if n_samples == 0 else "")

    # -- data ---------------------------------------------------------------------------
    def add_samples(self, samples: Sequence[Any]) -> None:
        for s in samples:
            if self.n == self.cap:
                keep = self.cap // 2
                for a in (self.t, self.total, self.app, self.workers):
                    a[:keep] = a[self.cap - keep:]
                self.cores[:keep] = self.cores[self.cap - keep:]
                self.n = keep
            i = self.n
            self.t[i] = s.t_ns / 1e9
            cores = s.cores[: self.ncores]
            self.cores[i, : len(cores)] = cores
            self.total[i] = s.total
            # Shares of the whole machine, so they compare with "total".
            self.app[i] = s.self_cpu / self.ncores
            self.workers[i] = sum(w.cpu for w in s.workers.values()) / self.ncores
            self.n += 1
            self.last = s

    def redraw(self, now_ns: int) -> None:
        if self.n == 0:
            return
        now = now_ns / 1e9
        if self.origin_ns is not None:  # replay: all of it, against the trace's own start
            lo = 0
            t = self.t[: self.n] - self.origin_ns / 1e9
        else:
            lo = int(np.searchsorted(self.t[: self.n], now - WINDOW_S - 1))
            t = self.t[lo: self.n] - now
        m = len(t)
        if m == 0:
            return
        nc = self.ncores
        # One path: core bands one after another, one polyline each.
        xs = np.tile(t, nc)
        offs = ((nc - 1 - np.arange(nc)) * (BAND + GAP))[:, None]
        ys = (np.clip(self.cores[lo: self.n].T, 0, 100) + offs).ravel()
        self.core_curve.setData(xs, ys, breaks=nc)
        self.total_curve.setData(t, self.total[lo: self.n])
        self.app_curve.setData(t, self.app[lo: self.n])
        self.workers_curve.setData(t, self.workers[lo: self.n])
        for plot in (self.cores_plot, self.total_plot):
            plot.viewport().update()  # see _frame_driven
        s = self.last
        # The numbers under the plot change at LABEL_S, the plot at every sample: re-laying
        # out the rich-text legend 10 times a second was about 2% of a core on its own in an
        # idle window (`taskscope bench`). They still show the latest measured sample.
        if s is not None and (self.origin_ns is not None
                              or now - self._labels_at >= LABEL_S):
            self._labels_at = now
            per = "  ".join(f"cpu{i} {c:.0f}%" for i, c in enumerate(s.cores[:8]))
            more = " …" if len(s.cores) > 8 else ""
            when = "at the end" if self.origin_ns is not None else "now"
            self.readout.setText(f"{when}: {per}{more}")
            self.readout.setToolTip(f"Sampled every {s.interval_s * 1e3:.0f} ms, unsmoothed")
            self._legend(s)

    def _legend(self, s: Any) -> None:
        def item(colour: str, name: str, value: str) -> str:
            return (f"<span style='color:{colour}'>━━</span> {name}"
                    f"<span style='color:{theme.TEXT}'><b>{value}</b></span>")

        total = f" {s.total:.0f}%" if s else ""
        app = f" {s.self_cpu / self.ncores:.0f}%" if s else ""
        wk = f" {sum(w.cpu for w in s.workers.values()) / self.ncores:.0f}%" if s else ""
        self.legend.setText(
            f"<span style='color:{theme.DIM}'>"
            + "&nbsp;&nbsp;".join([
                item(TOTAL_C, "total", total),
                item(APP_C, "TaskScope", app),
                item(WORKERS_C, "workers", wk)]) + "</span>")
