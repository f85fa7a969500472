"""The timeline's bars: one :class:`pg.GraphicsObject` draws every task of a TimelineData.

Only ``paint`` and ``boundingRect`` (as pyqtgraph's ``customGraphicsItem`` example), never one
item per task, over the bars of a :class:`~gui.timeline_data.TimelineData` (flat numpy arrays).
``paint`` selects the bars inside the visible range and issues one ``drawRects`` per state
colour from a contiguous rect buffer. Above :data:`LOD_BARS` visible bars it switches to a
coarser level of detail: per lane and per pixel column, which states occupy it. The live
timeline (:mod:`gui.timeline`) and the Compare tab's bands (:mod:`gui.compare_bands`) draw
with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QToolTip,
)

from . import theme
from .time_axis import TimeAxis
from .timeline_data import BAR_H, STATES, TimelineData

try:  # pyqtgraph's contiguous QRectF buffer (what BarGraphItem uses); a list otherwise
    from pyqtgraph.Qt.internals import PrimitiveArray
except ImportError:  # pragma: no cover
    PrimitiveArray = None  # type: ignore[assignment,misc]
try:  # a QRectF at an address: a numpy buffer of (x, y, w, h) rows drawn without a copy
    from shiboken6 import wrapInstance
except ImportError:  # pragma: no cover
    wrapInstance = None  # type: ignore[assignment]

#: Visible bars above which paint() switches to the per-pixel level of detail.
LOD_BARS = 50_000
#: Bars up to which paint() draws them in plain Python rather than through numpy arrays.
SMALL_BARS = 64
#: Grid lines of one level up to which they are drawn from a list of QLineF, not a buffer.
SMALL_LINES = 48


def _union(xs: np.ndarray, xe: np.ndarray, row: np.ndarray, st: np.ndarray, lo: float,
           hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge bars that overlap on the same row in the same state into one bar each.

    Only stacked lanes overlap (more coroutines in flight than MAX_SUBLANES: bars are dealt
    round-robin and pile up). 10,000 sleeping coroutines are ~150 running bars on each of 64
    rows, every one from its start to now: drawn one by one, the same pixels were filled
    ~150 times per frame, 2-3 ms of rasterising on every frame. The brushes are opaque, so
    the union paints exactly the same pixels. Bars that only touch (one ends where the next
    starts) stay separate and keep their one-pixel gap. ``xs``/``xe`` are clipped to
    [lo, hi]."""
    if len(xs) < 2:
        return xs, xe, row, st
    key = st.astype(np.int64) * (int(row.max()) + 1) + row
    order = np.lexsort((xs, key))
    xs, xe, key = xs[order], xe[order], key[order]
    # Each (state, row) group gets its own stretch of one number line, so one running max of
    # the ends serves every group: a group's starts all lie above every earlier group's ends.
    width = 2.0 * (hi - lo) + 1.0
    off = key * width - lo
    s, e = xs + off, xe + off
    run = np.maximum.accumulate(e)
    first = np.empty(len(s), bool)
    first[0] = True
    first[1:] = s[1:] >= run[:-1]
    heads = np.nonzero(first)[0]
    tails = np.append(heads[1:] - 1, len(s) - 1)
    gk = key[heads]
    nrow = int(row.max()) + 1
    return xs[heads], run[tails] - off[heads], gk % nrow, (gk // nrow).astype(st.dtype)


class TimelineItem(pg.GraphicsObject):
    """Paints every bar of a :class:`TimelineData`: one drawRects per state colour."""

    sigTaskClicked = Signal(int)
    #: The task under the mouse, or -1 when it leaves the bars: the pane's info line shows it
    #: (tooltips never show on an X display without a window manager).
    sigHovered = Signal(int)

    def __init__(self, data: TimelineData, now_s: Callable[[], float],
                 describe: Callable[[int], str]) -> None:
        super().__init__()
        self.data = data
        self.now_s = now_s
        self.describe = describe
        self.selected: int | None = None  # task id
        self.brushes = [QBrush(theme.qcolor(s)) for s in STATES]
        self.band_brush = QBrush(QColor(255, 255, 255, 9))
        self.sel_pen = QPen(QColor("#ffffff"))
        self.sel_pen.setCosmetic(True)
        self.sel_pen.setWidth(2)
        self._arrays = [PrimitiveArray(QRectF, 4) for _ in STATES] if PrimitiveArray else None
        #: The bars of a frame as QRectF rows (x, y, w, h), for _draw_by_state.
        self._rects = np.empty((256, 4), np.float64)
        #: The grid's lines of a paint as QLineF rows (x1, y1, x2, y2), for _paint_grid.
        self._lines = np.empty((64, 4), np.float64)
        self._bounds = QRectF(0, 0, 1, 1)
        self.last_paint_ms = 0.0
        self.paint_count = 0  # paints so far (tests: an idle frame paints the view once)
        self.last_lod = False
        self.hovered: int | None = None  # task id under the mouse
        #: The time axis whose ticks the vertical grid lines follow (set by TimelineView).
        #: The grid is drawn here, not by the axis (``showGrid``): pyqtgraph's axis grid
        #: records and replays semi-transparent lines through a QPicture with a clip rect
        #: covering the plot, about 4-5 ms per frame, which the view pays on every frame it
        #: scrolls (30 Hz in follow mode, even when idle). Two drawLines here cost ~0.1 ms.
        self.grid_axis: pg.AxisItem | None = None
        self.grid_pens = [QPen(QColor(255, 255, 255, a)) for a in (34, 14)]
        for pen in self.grid_pens:
            pen.setCosmetic(True)
            pen.setWidth(1)

    # -- geometry -------------------------------------------------------------------------
    def refresh(self) -> None:
        d = self.data
        b = QRectF(0.0, 0.0, max(1.0, max(d.t_max, self.now_s())), max(1, d.rows))
        if b != self._bounds:
            self.prepareGeometryChange()
            self._bounds = b
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(self._bounds)

    # -- painting ---------------------------------------------------------------------------
    def paint(self, p: QPainter, *args: object) -> None:
        t0 = time.perf_counter()
        self.paint_count += 1
        d = self.data
        if d.n == 0:
            return
        view = self._view_rect(p)
        if view is None:
            return
        x0, x1, y0, y1, px = view
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self._paint_grid(p, x0, x1, y0, y1, px)
        p.setPen(Qt.PenStyle.NoPen)
        # Alternate bands per worker, so lanes read as groups.
        bands = [QRectF(x0, w.base, x1 - x0, max(1, len(w.subs)))
                 for i, w in enumerate(d.workers) if i % 2 == 0
                 and w.base <= y1 and w.base + max(1, len(w.subs)) >= y0]
        if bands:
            p.setBrush(self.band_brush)
            p.drawRects(bands)

        n = d.n
        now = self.now_s()
        if n <= SMALL_BARS and not d.stacked:
            self._paint_few(p, x0, x1, y0, y1, px, now)
            self.last_lod = False
            self._paint_selected(p, px, now)
            self.last_paint_ms = (time.perf_counter() - t0) * 1e3
            return
        start = d.start[:n]
        end = d.ends(now)
        row = d.row[:n]
        vis = (end >= x0) & (start <= x1) & (row >= math.floor(y0) - 1) & (row <= y1 + 1)
        idx = np.nonzero(vis)[0]
        self.last_lod = len(idx) > LOD_BARS
        if self.last_lod:
            self._paint_lod(p, idx, start, end, row, x0, x1, px)
        else:
            xs = np.maximum(start[idx], x0 - px)
            xe = np.minimum(end[idx], x1 + px)
            st = d.state[idx]
            rw = row[idx]
            if d.stacked:
                xs, xe, rw, st = _union(xs, xe, rw, st, x0 - px, x1 + px)
            w = xe - xs
            # A one-pixel gap between back-to-back bars; never thinner than one pixel.
            w = np.where(w > 3 * px, w - px, np.maximum(w, px))
            ys = rw + (1 - BAR_H) / 2
            if wrapInstance is not None:
                self._draw_by_state(p, xs, ys, w, st)
            else:  # pragma: no cover
                for code in range(len(STATES)):
                    m = st == code
                    k = int(m.sum())
                    if k:
                        self._draw(p, code, xs[m], ys[m], w[m], np.full(k, BAR_H))
        self._paint_selected(p, px, now)
        self.last_paint_ms = (time.perf_counter() - t0) * 1e3

    def _paint_few(self, p: QPainter, x0: float, x1: float, y0: float, y1: float, px: float,
                   now: float) -> None:
        """The bars of a small timeline (up to SMALL_BARS), in plain Python: the same rects
        as the array path draws (clipped to the view, a one-pixel gap, at least a pixel
        wide), one ``drawRects`` per state. Numpy costs a few microseconds a call whatever
        the size, and the array path makes some fifty calls a paint: for the nine bars of a
        preset story that was most of the paint, on every frame (issue 17)."""
        d = self.data
        n = d.n
        by_state: list[list[QRectF]] = [[] for _ in STATES]
        lo_row, hi_row = math.floor(y0) - 1, y1 + 1
        left, right, gap, off = x0 - px, x1 + px, 3 * px, (1 - BAR_H) / 2
        for s, e, r, c in zip(d.start[:n].tolist(), d.end[:n].tolist(), d.row[:n].tolist(),
                              d.state[:n].tolist(), strict=True):
            if e != e:  # NaN: still running, to now
                e = now
            if e < x0 or s > x1 or r < lo_row or r > hi_row:
                continue
            xs = s if s > left else left
            w = (e if e < right else right) - xs
            w = w - px if w > gap else (w if w > px else px)
            by_state[c].append(QRectF(xs, r + off, w, BAR_H))
        for code, rects in enumerate(by_state):
            if rects:
                p.setBrush(self.brushes[code])
                p.drawRects(rects)

    def _paint_selected(self, p: QPainter, px: float, now: float) -> None:
        """The selected task's outline."""
        if self.selected is None:
            return
        d = self.data
        slot = d.slot_of.get(self.selected)
        if slot is not None:
            s = d.start[slot]
            e = d.end[slot] if not math.isnan(d.end[slot]) else now
            p.setPen(self.sel_pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(s, d.row[slot] + (1 - BAR_H) / 2, max(e - s, px), BAR_H))

    def _view_rect(self, p: QPainter) -> tuple[float, float, float, float, float] | None:
        """The part of the view this paint covers, in data coordinates (x0, x1, y0, y1, with
        y0 <= y1), and the width of one device pixel in seconds. From the painter's transform
        and the view box's range: pyqtgraph's ``viewRect`` and ``pixelWidth`` map through the
        item's device transform in Python, about a tenth of this paint (issue 17)."""
        vb = self.getViewBox()
        if vb is None:
            view = self.viewRect()
            if view is None:
                return None
            x0, x1, y0, y1 = view.left(), view.right(), view.top(), view.bottom()
            return x0, x1, y0, y1, self.pixelWidth() or (x1 - x0) / 1000 or 1e-3
        (x0, x1), (y0, y1) = vb.viewRange()
        if y1 < y0:
            y0, y1 = y1, y0
        sx = abs(p.transform().m11())
        return x0, x1, y0, y1, (1.0 / sx if sx > 0 else (x1 - x0) / 1000 or 1e-3)

    def _paint_grid(self, p: QPainter, x0: float, x1: float, y0: float, y1: float,
                    px: float) -> None:
        """Vertical grid lines at the time axis' major and minor ticks, within the bars'
        bounds (the area this item repaints)."""
        axis = self.grid_axis
        if axis is None or px <= 0:
            return
        b = self._bounds
        lo, hi = max(x0, b.left()), min(x1, b.right())
        top, bottom = max(y0, b.top()), min(y1, b.bottom())
        if hi <= lo or bottom <= top:
            return
        # The axis' own ticks for its range and width (the time axis keeps its last answer,
        # so the ticks are worked out once per frame for both).
        levels = (axis.ticks_shown() if isinstance(axis, TimeAxis)
                  else axis.tickValues(x0, x1, max(1.0, (x1 - x0) / px)))
        # Drawn in device pixels: a vertical line through the item's scaling cost several
        # times as much to stroke, for the same pixels (the view neither rotates nor shears).
        t = p.transform()
        sx, dx, sy, dy = t.m11(), t.dx(), t.m22(), t.dy()
        y_a, y_b = top * sy + dy, bottom * sy + dy
        drawn: set[float] = set()
        p.save()
        p.resetTransform()
        buf = self._lines
        for (_spacing, values), pen in zip(levels, self.grid_pens, strict=False):
            xs = [v * sx + dx for v in values if lo <= v <= hi and v not in drawn]
            drawn.update(values)
            k = len(xs)
            if not k:
                continue
            p.setPen(pen)
            if k <= SMALL_LINES or wrapInstance is None:  # a view's worth: a QLineF each
                p.drawLines([QLineF(x, y_a, x, y_b) for x in xs])
                continue
            if len(buf) < k:
                buf = self._lines = np.empty((2 * k, 4), np.float64)
            # One buffer of QLineF rows (x1, y1, x2, y2), drawn without a QLineF per line.
            buf[:k, 0] = xs
            buf[:k, 1] = y_a
            buf[:k, 2] = xs
            buf[:k, 3] = y_b
            p.drawLines(wrapInstance(buf.__array_interface__["data"][0], QLineF), k)
        p.restore()

    def _draw_by_state(self, p: QPainter, x: np.ndarray, y: np.ndarray, w: np.ndarray,
                       st: np.ndarray) -> None:
        """Every bar in one buffer of QRectF, sorted by state (stably: each state's bars in the
        same order as before), then one ``drawRects`` per state over its slice. A buffer, a
        fill and a ctypes wrap per state cost more than the drawing on most frames (issue 17)."""
        k = len(x)
        if not k:
            return
        order = np.argsort(st, kind="stable")
        counts = np.bincount(st, minlength=len(STATES))
        buf = self._rects
        if len(buf) < k:
            buf = self._rects = np.empty((max(k, 2 * len(buf)), 4), np.float64)
        buf[:k, 0] = x[order]
        buf[:k, 1] = y[order]
        buf[:k, 2] = w[order]
        buf[:k, 3] = BAR_H
        addr = buf.__array_interface__["data"][0]
        rect_bytes = buf.strides[0]
        first = 0
        for code, n in enumerate(counts.tolist()):
            if n:
                p.setBrush(self.brushes[code])
                p.drawRects(wrapInstance(addr + first * rect_bytes, QRectF), n)
                first += n

    def _draw(self, p: QPainter, code: int, x: np.ndarray, y: np.ndarray, w: np.ndarray,
              h: np.ndarray) -> None:
        p.setBrush(self.brushes[code])
        if self._arrays is not None:
            arr = self._arrays[code]
            arr.resize(len(x))
            mem = arr.ndarray()
            mem[:, 0] = x
            mem[:, 1] = y
            mem[:, 2] = w
            mem[:, 3] = h
            p.drawRects(*arr.drawargs())
        else:  # pragma: no cover
            p.drawRects([QRectF(*r) for r in zip(x, y, w, h, strict=True)])

    def _paint_lod(self, p: QPainter, idx: np.ndarray, start: np.ndarray, end: np.ndarray,
                   row: np.ndarray, x0: float, x1: float, px: float) -> None:
        """Coarse detail: for each (row, pixel column), mark each state present there."""
        cols = max(1, int(math.ceil((x1 - x0) / px)) + 2)
        r = row[idx].astype(np.int64)
        r_lo = int(r.min())
        nrows = int(r.max()) - r_lo + 1
        c0 = np.clip(((start[idx] - x0) / px).astype(np.int64), 0, cols - 1)
        c1 = np.clip(((end[idx] - x0) / px).astype(np.int64), 0, cols - 1)
        st = self.data.state[idx]
        size = nrows * (cols + 1)
        for code in range(len(STATES)):
            m = st == code
            if not m.any():
                continue
            # +1 where a bar starts, -1 just after it ends, per (row, column); bincount on the
            # flat index is ~10x faster than np.add.at (which made 100k bars cost 20+ ms).
            base = (r[m] - r_lo) * (cols + 1)
            diff = (np.bincount(base + c0[m], minlength=size)
                    - np.bincount(base + c1[m] + 1, minlength=size)).reshape(nrows, cols + 1)
            occ = np.cumsum(diff[:, :cols], axis=1) > 0
            # Runs of occupied columns -> one rect each.
            pad = np.zeros((nrows, 1), bool)
            edges = np.diff(np.concatenate([pad, occ, pad], axis=1).astype(np.int8), axis=1)
            rs, cs = np.nonzero(edges == 1)
            _, ce = np.nonzero(edges == -1)
            if not len(rs):
                continue
            xs = x0 + cs * px
            w = (ce - cs) * px
            ys = rs + r_lo + (1 - BAR_H) / 2
            self._draw(p, code, xs, ys.astype(np.float64), w, np.full(len(xs), BAR_H))

    # -- interaction ---------------------------------------------------------------------------
    def hoverEvent(self, ev: object) -> None:
        """pyqtgraph's hover protocol (its scene delivers these, with item coordinates)."""
        if ev.isExit():  # type: ignore[attr-defined]
            self._hover(None)
            QToolTip.hideText()
            return
        pos = ev.pos()  # type: ignore[attr-defined]
        slot = self.data.find(pos.x(), pos.y(), self.now_s())
        if slot is None:
            if self.hovered is not None:
                QToolTip.hideText()
            self._hover(None)
            return
        tid = int(self.data.task_id[slot])
        self._hover(tid)
        QToolTip.showText(ev.screenPos().toPoint(), self.describe(tid))  # type: ignore[attr-defined]

    def _hover(self, tid: int | None) -> None:
        if tid != self.hovered:
            self.hovered = tid
            self.sigHovered.emit(-1 if tid is None else tid)

    def mouseClickEvent(self, ev: object) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            return
        pos = ev.pos()  # type: ignore[attr-defined]
        slot = self.data.find(pos.x(), pos.y(), self.now_s())
        if slot is None:
            return
        ev.accept()  # type: ignore[attr-defined]
        tid = int(self.data.task_id[slot])
        self.select(tid)
        self.sigTaskClicked.emit(tid)

    def select(self, task_id: int | None) -> None:
        self.selected = task_id
        self.update()

    def bar_center(self, task_id: int) -> QPointF | None:
        """The centre of a task's bar in data coordinates (for tests and 'reveal')."""
        slot = self.data.slot_of.get(task_id)
        if slot is None:
            return None
        d = self.data
        e = d.end[slot] if not math.isnan(d.end[slot]) else self.now_s()
        return QPointF((d.start[slot] + e) / 2, d.row[slot] + 0.5)
