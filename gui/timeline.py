"""The task timeline's view: lanes, the time axis, the now line, following, zoom and fit.

One lane per real worker (:class:`LaneAxis` names them), the bars drawn by one
:class:`~gui.timeline_item.TimelineItem`; the view follows the clock while runs are live, zooms
time with the wheel (lane height with Ctrl+wheel), fits the runs on request, and shows an
empty-state hint before the first run.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QPen, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
    QGraphicsView,
)

from . import theme
from .time_axis import KeptBoundsAxis, TimeAxis
from .timeline_data import TimelineData
from .timeline_item import TimelineItem


class LaneAxis(KeptBoundsAxis):
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
        self._label_w = 0.0  # the label's width, as laid out (set_text lays it out again)
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
        self._label_w = r.width()
        dx = -r.width() - 3.0 if self._left else 3.0
        self.label.setTransform(QTransform.fromTranslate(dx, -r.height() - 1.0))

    def _side(self, *args: object) -> None:
        """The label goes left of the line when right of it would run off the view: a
        replay's "end" at the right edge read "enc", cut by the window."""
        # Called twice per frame while the view follows the clock (the line moved, the range
        # moved): the range as pyqtgraph keeps it (viewRange() copies it), the label's width
        # as last laid out.
        x0, x1 = self.vb.state["viewRange"][0]
        width = self.vb.size().width()
        room = (x1 - self._x) * width / (x1 - x0) if x1 > x0 and width > 0 else 1e9
        left = room < self._label_w + 6
        if left != self._left:
            self._left = left
            self._place_label()

    def _span(self, *args: object) -> None:
        y0, y1 = self.vb.viewRange()[1]
        x = self._x
        self.line.setLine(x, y0, x, y1)
        self.label.setPos(x, max(y0, y1) if self.vb.yInverted() else min(y0, y1))
        self._side()


def lean_view(view: pg.GraphicsView) -> None:
    """A live plot's view without two of pyqtgraph's caches that cost more than they save here.

    - No spatial index for its scene: a few dozen items, several of which move on every live
      frame (the now line, the bars' item, the axes), so the BSP tree was re-indexed on every
      frame, and finding the few items at a point among a few dozen needs none. In a live
      window, CPU per frame went 4.23 -> 3.85 ms (median of 5 alternating runs, preset 5,
      in-app process_time, offscreen) with it off for the timeline, the bands and the CPU
      plots.
    - No cached background: pyqtgraph keeps the view's background as a pixmap and copies it
      under every repaint, but the background is one plain colour, which Qt fills faster than
      it copies. A following timeline of 1400x400 px with 10 bars, tick and repaint, on Xvfb,
      five alternating runs of 300 frames: 0.90-1.42 ms a frame with the cache, 0.81-1.26 ms
      without (each pair lower without).
    """
    view.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
    view.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)


def quiet_follow(widget: pg.PlotWidget) -> None:
    """Stop pyqtgraph's Python work on each range step that does nothing for a plot whose
    view moves on every live frame (the timeline, the comparison's bands):

    - the view's child group sends no geometry notices: the view sets its transform on every
      step, and each time Qt called pyqtgraph's Python ``itemChange`` twice, to tell the view
      that its own child group moved (pyqtgraph means to exempt it, but sets a misspelt
      attribute);
    - the plot's (hidden) auto-range button is not updated on each view state change;
    - the plot and the widget do not relay the view's range signals, each another emit
      through Python on every step: listen to the view box's own (everything here does).

    Call once the buttons are hidden."""
    pi = widget.getPlotItem()
    vb = pi.getViewBox()
    vb.childGroup.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges, False)
    vb.sigStateChanged.disconnect(pi.viewStateChanged)
    vb.sigRangeChanged.disconnect(pi.sigRangeChanged)
    vb.sigXRangeChanged.disconnect(pi.sigXRangeChanged)
    vb.sigYRangeChanged.disconnect(pi.sigYRangeChanged)


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
        lean_view(self)
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
        quiet_follow(self)
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
        show = self.data.n == 0 and bool(self.empty.toPlainText())  # the cheap test first
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
            # Auto-range is off once the view has a range of its own; saying so again on
            # every step (disableAutoRange) emitted pyqtgraph's state signal twice more,
            # each updating the plot's (hidden) buttons.
            auto = vb.state["autoRange"]
            vb.setRange(xRange=(now - self.span_s * 0.92, now + self.span_s * 0.08),
                        yRange=self._rows_range(), padding=0, update=False,
                        disableAutoRange=auto[0] is not False or auto[1] is not False)
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
