"""The task timeline's view: one lane per real worker, one bar per task, coloured by state.

Drawn by a single custom :class:`pg.GraphicsObject` (only ``paint`` and ``boundingRect``), never
one item per task, over the bars of a :class:`~gui.timeline_data.TimelineData` (flat numpy
arrays). ``paint`` selects the bars inside the visible range and issues one ``drawRects`` per
state colour from a contiguous rect buffer. Above :data:`LOD_BARS` visible bars it switches to a
coarser level of detail: per lane and per pixel column, which states occupy it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainter, QPen, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
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
        import time

        t0 = time.perf_counter()
        self.paint_count += 1
        d = self.data
        view = self.viewRect()
        if view is None or d.n == 0:
            return
        x0, x1 = view.left(), view.right()
        y0, y1 = view.top(), view.bottom()
        px = self.pixelWidth() or (x1 - x0) / 1000 or 1e-3
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
        if self.selected is not None:
            slot = d.slot_of.get(self.selected)
            if slot is not None:
                s = d.start[slot]
                e = d.end[slot] if not math.isnan(d.end[slot]) else now
                p.setPen(self.sel_pen)
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(QRectF(s, d.row[slot] + (1 - BAR_H) / 2, max(e - s, px), BAR_H))
        self.last_paint_ms = (time.perf_counter() - t0) * 1e3

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
        for (_spacing, values), pen in zip(levels, self.grid_pens, strict=False):
            lines = [QLineF(x, y_a, x, y_b) for x in
                     (v * sx + dx for v in values if lo <= v <= hi and v not in drawn)]
            drawn.update(values)
            if lines:
                p.setPen(pen)
                p.drawLines(lines)
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


class LaneAxis(pg.AxisItem):
    """Left axis naming the lanes; labels only as many rows as fit."""

    def __init__(self, data: TimelineData) -> None:
        super().__init__("left")
        self.data = data
        self.setWidth(190)
        self.setStyle(tickLength=0, autoExpandTextSpace=False)
        # Its labels change only when lanes come or the rows scroll, but the view around it
        # repaints on every frame while it follows the clock: kept as a pixmap, not replayed
        # from a QPicture (laying every label out again) each time (issue 17).
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        #: Rows labelled with their worker's name though not its first (see tickValues).
        self._moved: dict[int, str] = {}

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        """The rows to label: never two closer than a line of text. Workers' names first
        (in lane order), each on its first row or, when that is too close to the name
        above, on the first of its own rows that has room (a replayed asyncio loop just
        under a sequential lane lost its name and showed only "coroutine slot 3, 6");
        then coroutine slots in the gaps left between them."""
        labels = self.data.row_labels()
        self._moved = {}
        if not labels:
            return []
        lo, hi = sorted((minVal, maxVal))  # an inverted view hands them over reversed
        px_per_row = size / max(1e-9, hi - lo)
        line = self.line_px()
        rows = sorted(r for r in labels if lo - 1 <= r <= hi)
        if px_per_row >= line:
            return [(1.0, [r + 0.5 for r in rows])]
        min_rows = line / max(px_per_row, 1e-9)  # rows between two labels, at least
        taken: list[int] = []

        def take(r: int) -> bool:
            i = bisect.bisect_left(taken, r)
            if (i == 0 or r - taken[i - 1] >= min_rows) and (
                    i == len(taken) or taken[i] - r >= min_rows):
                taken.insert(i, r)
                return True
            return False

        for w in sorted(self.data.workers, key=lambda w: w.base):
            for r in range(w.base, w.base + max(1, len(w.subs))):
                if lo - 1 <= r <= hi and take(r):
                    if r != w.base:
                        self._moved[r] = w.label
                    break
        for r in rows:
            if not labels[r][1] and r not in self._moved:
                take(r)
        return [(1.0, [r + 0.5 for r in taken])]

    def line_px(self) -> float:
        """The height of one label, in pixels, with a little air."""
        font = self.style.get("tickFont") or self.font()
        return QFontMetricsF(font).height() + 2

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """Each lane's label, ending in "…" where it is wider than the axis: pyqtgraph drops
        a label wider than its axis altogether (a Dask worker's "run1 127.0.0.1:41199
        (12109)" showed as no label at all), and characters are no measure of pixels."""
        labels = self.data.row_labels()
        font = self.style.get("tickFont") or self.font()
        fm = QFontMetricsF(font)
        room = max(20.0, self.width() - self.style["tickTextOffset"][0] - 6)
        out = []
        for v in values:
            row = int(v - 0.5)
            lab = self._moved.get(row) or labels.get(row, ("", False))[0]
            if fm.horizontalAdvance(lab) > room:
                lab = fm.elidedText(lab, Qt.TextElideMode.ElideRight, room)
            out.append(lab)
        return out


class NowLine:
    """The vertical "now" line and its label: two plain Qt items in the view's data
    coordinates, moved by :meth:`setValue` and kept spanning the visible rows.

    It moves on every frame while the view follows the clock. pyqtgraph's InfiniteLine did
    that through Python signals, bounds and a Python paint (with a TextItem for its label):
    about 0.5 ms of GUI thread per move, several times the cost of everything else here."""

    def __init__(self, vb: pg.ViewBox, colour: str, text: str) -> None:
        self.vb = vb
        pen = QPen(QColor(colour))
        pen.setCosmetic(True)
        pen.setWidth(0)
        self.line = QGraphicsLineItem()
        self.line.setPen(pen)
        self.line.setZValue(10)
        vb.addItem(self.line, ignoreBounds=True)
        self.label = QGraphicsSimpleTextItem(text)
        self.label.setBrush(QColor(colour))
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.label.setZValue(10)
        vb.addItem(self.label, ignoreBounds=True)
        self._x = 0.0
        self._left = False  # the label on the line's left (at the view's right edge)
        self._place_label()
        vb.sigYRangeChanged.connect(self._span)
        vb.sigXRangeChanged.connect(self._side)
        self._span()

    def value(self) -> float:
        return self._x

    def setValue(self, x: float) -> None:
        self._x = float(x)
        self._span()

    def set_text(self, text: str) -> None:
        self.label.setText(text)
        self._place_label()

    def _place_label(self) -> None:
        # Just right of the line (left of it at the view's right edge), its baseline a little
        # above the bottom of the view (device pixels: the label ignores the view's scaling).
        r = self.label.boundingRect()
        dx = -r.width() - 3.0 if self._left else 3.0
        self.label.setTransform(QTransform.fromTranslate(dx, -r.height() - 1.0))

    def _side(self, *args: object) -> None:
        """The label goes left of the line when right of it would run off the view: a
        replay's "end" at the right edge read "enc", cut by the window."""
        x0, x1 = self.vb.viewRange()[0]
        width = self.vb.width()
        room = (x1 - self._x) * width / (x1 - x0) if x1 > x0 and width > 0 else 1e9
        left = room < self.label.boundingRect().width() + 6
        if left != self._left:
            self._left = left
            self._place_label()

    def _span(self, *args: object) -> None:
        y0, y1 = self.vb.viewRange()[1]
        x = self._x
        self.line.setLine(x, y0, x, y1)
        self.label.setPos(x, max(y0, y1) if self.vb.yInverted() else min(y0, y1))
        self._side()


def no_scene_index(view: pg.GraphicsView) -> None:
    """No spatial index for this plot's scene: a few dozen items, several of which move on
    every live frame (the now line, the bars' item, the axes), so the BSP tree was re-indexed
    on every frame, and finding the few items at a point among a few dozen needs none. In a
    live window, CPU per frame went 4.23 -> 3.85 ms (median of 5 alternating runs, preset 5,
    in-app process_time, offscreen) with it off for the timeline, the bands and the CPU plots."""
    view.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)


class LaneViewBox(pg.ViewBox):
    """The timeline's view box: the wheel zooms time only; Ctrl+wheel zooms the lanes.

    pyqtgraph's own wheel zooms both axes at once, so zooming in on a moment left three giant
    lanes and zooming out left half the plot empty (issue 16). Dragging still pans both ways."""

    sigLanesZoomed = Signal()

    def wheelEvent(self, ev: object, axis: int | None = None) -> None:
        lanes = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)  # type: ignore[attr-defined]
        super().wheelEvent(ev, axis=1 if lanes else 0)
        if lanes:
            self.sigLanesZoomed.emit()


class TimelineView(pg.PlotWidget):
    """The plot that hosts the timeline: time axis in seconds, live 'now' line, follow mode."""

    sigTaskClicked = Signal(int)
    #: Following stopped or started (the view was moved by hand, or fitted): the toolbar's
    #: "Follow now" shows it.
    sigFollowChanged = Signal(bool)

    #: The tallest a lane gets when all of them are shown: a few lanes do not stretch into
    #: giant bars over the whole height (the rest of the view stays empty below them).
    MAX_LANE_PX = 26

    def __init__(self, data: TimelineData, now_s: Callable[[], float],
                 describe: Callable[[int], str]) -> None:
        self.data = data
        self.lane_axis = LaneAxis(data)
        # No title (its height went to the lanes on a laptop's screen): each tick says "s",
        # and the pane's info line says what the time counts from.
        self.time_axis = TimeAxis("s")
        vb = LaneViewBox()
        super().__init__(viewBox=vb,
                         axisItems={"left": self.lane_axis, "bottom": self.time_axis})
        self.setAntialiasing(False)
        no_scene_index(self)
        self.now_s = now_s
        #: What the time axis counts (the pane's info line says it).
        self.axis_title = "time since TaskScope started"
        self.item = TimelineItem(data, now_s, describe)
        self.item.sigTaskClicked.connect(self.sigTaskClicked)
        pi = self.getPlotItem()
        pi.addItem(self.item)
        self.item.grid_axis = pi.getAxis("bottom")  # the grid: see TimelineItem.grid_axis
        for name in ("top", "right"):
            # Hidden, but linked to the view: the top axis followed every scroll, re-setting
            # its (empty) title as HTML each time. Nothing here ever shows them.
            pi.getAxis(name).unlinkFromView()
        pi.setMenuEnabled(False)
        pi.hideButtons()
        vb.invertY(True)
        vb.setMouseEnabled(x=True, y=True)
        vb.setLimits(yMin=-1, xMin=-1)
        self.now_line = NowLine(vb, "#ff9f43", "now")
        self.follow = True
        self.span_s = 15.0
        #: Lanes the view shows at once, as set with Ctrl+wheel or the lane buttons; None:
        #: every lane (see all_rows).
        self.rows_shown: float | None = None
        self._tick_version = -1
        self._lanes_version = -1
        self._tick_at = -math.inf
        vb.sigRangeChangedManually.connect(self._manual)
        vb.sigLanesZoomed.connect(self._lanes_zoomed)
        vb.sigResized.connect(self._resized)
        vb.setRange(xRange=(-self.span_s * 0.9, self.span_s * 0.1), yRange=(0, 8), padding=0)
        # What to do first, over an empty timeline (issue 16: a first launch showed only the
        # "now" line). A plain Qt text item in the view, centred on each range change while
        # shown; hidden once a bar is drawn.
        self.empty = QGraphicsTextItem()
        self.empty.setDefaultTextColor(QColor(theme.DIM))
        self.empty.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.empty.setZValue(20)
        self.empty.hide()
        vb.addItem(self.empty, ignoreBounds=True)
        vb.sigRangeChanged.connect(self._place_empty)

    def set_empty_text(self, text: str) -> None:
        """What the empty timeline says (nothing: say nothing)."""
        self.empty.setPlainText(text)
        doc = self.empty.document()
        opt = doc.defaultTextOption()
        opt.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        doc.setDefaultTextOption(opt)
        doc.setTextWidth(doc.idealWidth())  # centred lines need a width to centre in
        self._place_empty()

    def empty_text(self) -> str:
        """What the timeline says now that it is empty ("" once it has bars)."""
        return self.empty.toPlainText() if self.empty.isVisible() else ""

    def _place_empty(self, *args: object) -> None:
        show = bool(self.empty.toPlainText()) and self.data.n == 0
        if show:
            vb = self.getPlotItem().getViewBox()
            (x0, x1), (y0, y1) = vb.viewRange()
            br = self.empty.boundingRect()
            # Centred: the item ignores the view's scale, so its size is in pixels; its
            # position is in data coordinates (top-left, the y axis pointing down).
            px = (x1 - x0) / max(1.0, vb.width())
            py = (y1 - y0) / max(1.0, vb.height())
            self.empty.setPos((x0 + x1) / 2 - br.width() / 2 * px,
                              (y0 + y1) / 2 - br.height() / 2 * py)
        if show != self.empty.isVisible():
            self.empty.setVisible(show)

    def _resized(self, *args: object) -> None:
        """Showing every lane (not following, no lane zoom): still every lane at the new
        height (a replay laid out before its window had its size squeezed them into the top
        half)."""
        if not self.follow and self.rows_shown is None:
            vb = self.getPlotItem().getViewBox()
            y0, _y1 = sorted(vb.viewRange()[1])
            if y0 <= 0:
                vb.setYRange(0, self.all_rows(), padding=0)

    def _manual(self, *args: object) -> None:
        if self.follow:
            self.follow = False
            self.sigFollowChanged.emit(False)

    def _lanes_zoomed(self) -> None:
        y0, y1 = self.getPlotItem().getViewBox().viewRange()[1]
        self.rows_shown = max(1.0, abs(y1 - y0))

    def _px_per_s(self) -> float:
        """Screen pixels per second of the time axis, as the view stands."""
        vb = self.getPlotItem().getViewBox()
        x0, x1 = vb.viewRange()[0]
        return vb.width() / max(x1 - x0, 1e-9)

    def set_follow(self, on: bool) -> None:
        self.follow = on
        if on:
            xr = self.getPlotItem().getViewBox().viewRange()[0]
            self.span_s = max(1.0, min(600.0, xr[1] - xr[0]))

    def all_rows(self) -> float:
        """Rows that show every lane, each at most MAX_LANE_PX tall."""
        h = self.getPlotItem().getViewBox().height()
        fill = h / self.MAX_LANE_PX if h > 0 else 8.0
        return max(float(self.data.rows), fill, 1.0)

    def _rows_range(self) -> tuple[float, float]:
        """The lanes to show: all of them, or rows_shown lanes from the current top."""
        rows = self.all_rows()
        if self.rows_shown is None or self.rows_shown >= rows:
            return 0.0, float(rows)
        top = min(self.getPlotItem().getViewBox().viewRange()[1])
        top = min(max(0.0, top), rows - self.rows_shown)
        return top, top + self.rows_shown

    def zoom_lanes(self, factor: float) -> None:
        """Show ``factor`` times as many lanes (below 1: taller lanes), from the same top."""
        vb = self.getPlotItem().getViewBox()
        y0, y1 = sorted(vb.viewRange()[1])
        rows = self.all_rows()
        n = min(rows, max(1.0, (y1 - y0) * factor))
        self.rows_shown = None if n >= rows else n
        top = min(max(0.0, y0), rows - n)
        vb.setYRange(top, top + n, padding=0)

    def fit(self) -> None:
        """Zoom to the runs: every bar from the first start to the last end (or now, while
        one runs), every lane; stops following."""
        d = self.data
        if d.n:
            lo = float(d.start[: d.n].min())
            hi = max(d.t_max, self.now_s() if d.running else d.t_max)
        else:
            hi = self.now_s()
            lo = hi - self.span_s
        pad = max((hi - lo) * 0.03, 0.05)
        self.rows_shown = None
        if self.follow:
            self.follow = False
            self.sigFollowChanged.emit(False)
        self.getPlotItem().getViewBox().setRange(
            xRange=(lo - pad, hi + pad), yRange=(0, self.all_rows()), padding=0)
        self.tick()

    def stand_still(self, label: str, axis_title: str) -> None:
        """Time stands still (a replay, at its trace's end): nothing to follow, the now line
        reads ``label`` and the time axis ``axis_title``."""
        self.set_follow(False)
        self.item.refresh()
        self.now_line.set_text(label)
        self.axis_title = axis_title
        self.sigFollowChanged.emit(False)

    def show_span(self, end_s: float) -> None:
        """Show from 0 to ``end_s`` seconds (2% more each side) and every lane, not following."""
        pad = end_s * 0.02
        self.getPlotItem().getViewBox().setRange(
            xRange=(-pad, end_s + pad), yRange=(0, self.all_rows()), padding=0)
        self.tick()
        self.set_follow(False)

    #: With no bar running and no new events the view only creeps with the clock, so it moves
    #: at this interval (the sampler's 10 Hz) instead of every frame: an idle window repainted
    #: its timeline 30 times a second, several % of a core for nothing (``taskscope bench``).
    IDLE_TICK_S = 0.1
    #: ...and only once that moves the now line (and, following, the view) by this many
    #: pixels: zoomed out (10 minutes across the view) the clock moves a pixel or two a second,
    #: and redrawing for less than that changes nothing on screen.
    IDLE_STEP_PX = 2.0

    def tick(self) -> None:
        """Per frame: move the now line, follow it, repaint (when idle: at IDLE_TICK_S, and
        once the clock has moved IDLE_STEP_PX on screen)."""
        now = self.now_s()
        d = self.data
        if d.version == self._tick_version and d.running == 0:
            dt = now - self._tick_at
            px = self._px_per_s()  # 0 before the view has a size: then the clock alone
            if dt >= 0 and (dt < self.IDLE_TICK_S or 0 < dt * px < self.IDLE_STEP_PX):
                return
        labels_changed = d.lanes_version != self._lanes_version
        self._lanes_version = d.lanes_version
        self._tick_version = d.version
        self._tick_at = now
        self.now_line.setValue(now)
        self.item.refresh()
        if self.follow:
            vb = self.getPlotItem().getViewBox()
            vb.setRange(xRange=(now - self.span_s * 0.92, now + self.span_s * 0.08),
                        yRange=self._rows_range(), padding=0, update=False)
            # Apply the new range now, not in the paint: pyqtgraph would move the items from
            # inside the paint (prepareForPaint), which schedules a second full paint of the
            # view right after the first; the timeline was painted twice per frame.
            vb.updateMatrix()
            if self.empty.isVisible():
                self._place_empty()
        if labels_changed:  # lanes came or went; otherwise the axis redraws itself on a range
            # change (and the range moves only when rows do). Not on every event: each new
            # picture lays its labels out again, a few hundred us per frame with events on
            # every frame (issue 17).
            self.lane_axis.picture = None
            self.lane_axis.update()
            self._place_empty()
