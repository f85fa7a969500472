"""Compare mode's bands: one timeline band per model, on one aligned time scale.

The bands reuse the live timeline's :class:`~gui.timeline_item.TimelineItem` (one ``drawRects`` per
state colour, never an item per task) over a :class:`BandData`, a
:class:`~gui.timeline_data.TimelineData` whose clock can start each run at 0 ("align starts",
the default: the bars of every model line up, so their lengths compare directly) or use one
clock for the whole comparison. Workers keep their own lanes inside their model's band.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

from engine import TaskRecord

from .compare_charts import PARTIAL_BRUSH
from .theme import model_color
from .time_axis import KeptBoundsAxis, TimeAxis
from .timeline import lean_view, quiet_follow
from .timeline_data import TimelineData
from .timeline_item import TimelineItem

#: Rows a band takes at least (a one-worker model would be a sliver next to a pool of ten).
MIN_BAND_ROWS = 3
#: A band is at least 1/MIN_BAND_SHARE of the widest one (one worker beside a pool of 32):
#: the thinnest band sets the height the bands need for its label.
MIN_BAND_SHARE = 2
#: Coroutine sub-lanes per worker in a band; more overlapping coroutines stack (they start and
#: end together, so the band still reads "all at once").
BAND_SUBLANES = 8


#: The bands' least height with nothing (or one band) to show, and what the plot's axes and
#: margins take around the bands (measured: 52 px at the theme's font).
BANDS_MIN_PX = 90
BANDS_AROUND_PX = 52


class BandData(TimelineData):
    """Timeline bars whose x is seconds since the *run* started (aligned) or since the compare
    started. Runs are laid out in run-id order, so each model's workers form one band."""

    def __init__(self, t0_ns: int) -> None:
        super().__init__(t0_ns)
        self.run_t0: dict[int, int] = {}
        self.run_model: dict[int, str] = {}
        self.aligned = True
        self.spans: dict[int, tuple[int, int]] = {}  # run -> (first row, rows)
        #: Runs that did not complete (cancelled, tasks timed out): their bands are hatched.
        self.partial: set[int] = set()

    def _place(self, w: Any, slot: int) -> int:
        if len(w.subs) >= BAND_SUBLANES:
            i = w.rr % BAND_SUBLANES
            w.rr += 1
            w.subs[i] = slot
            return i
        return super()._place(w, slot)

    def _layout(self) -> None:
        """Runs in run order, each band at least MIN_BAND_ROWS tall, its lanes centred."""
        by_run: dict[int, list[int]] = {}
        for i, w in enumerate(self.workers):
            by_run.setdefault(w.run_id, []).append(i)
        row = 0
        base = np.zeros(len(self.workers), np.int32)
        self.spans = {}
        needs = {rid: sum(max(1, len(self.workers[i].subs)) for i in ids)
                 for rid, ids in by_run.items()}
        # No band thinner than half the widest: its label needs a line of text, and the
        # height the bands need for that grows with the widest band over the thinnest.
        least = max(MIN_BAND_ROWS, -(-max(needs.values(), default=0) // MIN_BAND_SHARE))
        for rid in sorted(by_run):
            need = needs[rid]
            band = max(need, least)
            r = row + (band - need) // 2
            for i in by_run[rid]:
                self.workers[i].base = r
                base[i] = r
                r += max(1, len(self.workers[i].subs))
            self.spans[rid] = (row, band)
            row += band
        self.rows = row
        n = self.n
        self.row[:n] = base[self.worker[:n]] + self.sub[:n]

    def clear(self) -> None:
        keep = (self.run_t0, self.run_model, self.aligned, self.partial)
        super().clear()
        self.run_t0, self.run_model, self.aligned, self.partial = keep

    def origin(self, run_id: int) -> int:
        return self.run_t0.get(run_id, self.t0_ns) if self.aligned else self.t0_ns

    def _set(self, slot: int, rec: TaskRecord) -> None:
        # TimelineData._set measures from self.t0_ns: shift it to this run's origin meanwhile.
        t0 = self.t0_ns
        self.t0_ns = self.origin(rec.run_id)
        try:
            super()._set(slot, rec)
        finally:
            self.t0_ns = t0

    def bands(self) -> list[tuple[int, int, int]]:
        """``(run_id, first row, rows)`` per run that has bars, top to bottom."""
        return [(rid, lo, n) for rid, (lo, n) in sorted(self.spans.items(),
                                                          key=lambda kv: kv[1][0])]


class BandBackground(pg.GraphicsObject):
    """Tints each model's band in its colour and rules a line between bands (a few rects); a
    partial run's band is hatched as well, as its bars in the charts are."""

    def __init__(self, data: BandData) -> None:
        super().__init__()
        self.data = data
        self._bounds = QRectF(0, 0, 1, 1)
        self.setZValue(-10)

    def refresh(self, width: float) -> None:
        b = QRectF(-1e6, 0.0, 2e6, max(1, self.data.rows))
        if b != self._bounds:
            self.prepareGeometryChange()
            self._bounds = b
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(self._bounds)

    def paint(self, p: QPainter, *args: object) -> None:
        view = self.viewRect()
        if view is None:
            return
        x0, x1 = view.left(), view.right()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for rid, lo, n in self.data.bands():
            c = QColor(model_color(self.data.run_model.get(rid, "")))
            c.setAlpha(34)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QBrush(c))
            p.drawRect(QRectF(x0, lo, x1 - x0, n))
            if rid in self.data.partial:
                hatch = QColor(model_color(self.data.run_model.get(rid, "")))
                hatch.setAlpha(70)
                p.setBrush(QBrush(hatch, PARTIAL_BRUSH))
                # The pattern is in device pixels: draw it through an identity transform.
                p.save()
                rect = p.transform().mapRect(QRectF(x0, lo, x1 - x0, n))
                p.resetTransform()
                p.drawRect(rect)
                p.restore()
            line = QColor(model_color(self.data.run_model.get(rid, "")))
            pen = QPen(line)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.drawLine(pg.Point(x0, lo), pg.Point(x1, lo))


class BandAxis(KeptBoundsAxis):
    """Left axis: one label per band, the model's name (and a star for the winner)."""

    def __init__(self, data: BandData, label: Callable[[int], str]) -> None:
        super().__init__("left")
        self.data = data
        self.label_of = label
        self.setWidth(160)  # pyqtgraph drops a label wider than its axis
        self.setStyle(tickLength=0, autoExpandTextSpace=False)
        # A pixmap between label changes (see LaneAxis): the bands repaint on every frame.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        return [(1.0, [lo + n / 2 for _, lo, n in self.data.bands()])]

    def line_px(self) -> float:
        """The height of one label, in pixels, with a little air."""
        font = self.style.get("tickFont") or self.font()
        return QFontMetricsF(font).height() + 2

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        by_mid = {lo + n / 2: rid for rid, lo, n in self.data.bands()}
        return [self.label_of(by_mid[v]) if v in by_mid else "" for v in values]


class BandsView(pg.PlotWidget):
    """The bands plot: x in seconds (aligned starts or the compare's clock), y = lanes."""

    def __init__(self, data: BandData, now_s: Callable[[], float],
                 describe: Callable[[int], str], label: Callable[[int], str]) -> None:
        self.data = data
        self.axis = BandAxis(data, label)
        super().__init__(axisItems={"left": self.axis, "bottom": TimeAxis()})
        self.setAntialiasing(False)
        lean_view(self)
        self.item = TimelineItem(data, now_s, describe)
        self.bg = BandBackground(data)
        pi = self.getPlotItem()
        pi.addItem(self.bg)
        pi.addItem(self.item)
        # The vertical grid is drawn by the bars' item, not by the axis (see
        # TimelineItem.grid_axis): the axis' grid is replayed through a QPicture on every frame.
        self.item.grid_axis = pi.getAxis("bottom")
        for name in ("top", "right"):
            # Hidden, but linked to the view: on every frame of a comparison (the range grows
            # with the clock) each set its empty title as HTML again (issue 17).
            pi.getAxis(name).unlinkFromView()
        pi.setMenuEnabled(False)
        pi.hideButtons()
        quiet_follow(self)  # its range grows on every frame of a comparison
        vb = pi.getViewBox()
        vb.invertY(True)
        vb.setLimits(yMin=-1, xMin=-1)
        self.auto = True
        self._drawn: tuple[int, float] | None = None  # (data version, now) of the last tick
        self._sized: tuple[int, int] | None = None  # (rows, thinnest band) of the last fit
        self.setMinimumHeight(BANDS_MIN_PX)
        self._labels: list[tuple[int, int, int, str]] = []  # the band labels last laid out
        vb.sigRangeChangedManually.connect(self._manual)
        self.now_s = now_s
        self.set_aligned(True)

    def _manual(self, *args: object) -> None:
        self.auto = False

    def set_aligned(self, on: bool) -> None:
        self.getPlotItem().setLabel(
            "bottom", "seconds since each model's run started" if on
            else "seconds since the compare started", units="s")

    def fit(self) -> None:
        self.auto = True
        self.tick(force=True)

    def _fit_height(self) -> None:
        """At least the height at which the thinnest band holds its label (a line of text):
        the Compare tab scrolls rather than squeeze three bands into 45 px, where the labels
        ran into each other (issue 16, at 1366x768 and at 1600x1000 alike)."""
        bands = self.data.bands()
        key = (self.data.rows, min((n for _, _, n in bands), default=0))
        if key == self._sized:
            return
        self._sized = key
        rows, thinnest = key
        if not thinnest:
            self.setMinimumHeight(BANDS_MIN_PX)
            return
        plot = self.axis.line_px() * rows / thinnest
        # Below and around the plot: the time axis with its title, and the plot's margins.
        vb = self.getPlotItem().getViewBox()
        around = self.height() - vb.height() if vb.height() > 0 else 0
        around = max(BANDS_AROUND_PX, int(around))
        self.setMinimumHeight(max(BANDS_MIN_PX, int(math.ceil(plot)) + around))

    def tick(self, force: bool = False) -> None:
        """Per frame while a comparison is shown: follow the bars and the clock. Once nothing
        moves (the comparison ended: no bar runs, no new events, the clock stands at the
        last bar's end) this returns at once; before, an ended comparison kept re-laying out
        its band labels and repainting this plot on every frame of an idle window."""
        key = (self.data.version, self.now_s())
        if not force and key == self._drawn and self.data.running == 0:
            return
        self._drawn = key
        self._fit_height()
        self.item.refresh()
        self.bg.refresh(0)
        if self.auto:
            right = max(self.data.t_max, self.now_s(), 0.5)
            vb = self.getPlotItem().getViewBox()
            vb.setRange(xRange=(0, right * 1.04), yRange=(0, max(1, self.data.rows)),
                        padding=0, update=False)
            # Apply the range now, not from inside the paint (a second paint of the view
            # right after the first: see TimelineView.tick).
            vb.updateMatrix()
        # The band labels are laid out again only when a band or its label changes (a new
        # model, a winner's star), not on every frame the bars grow.
        labels = [(rid, lo, n, self.axis.label_of(rid)) for rid, lo, n in self.data.bands()]
        if force or labels != self._labels:
            self._labels = labels
            self.axis.picture = None
            self.axis.update()
