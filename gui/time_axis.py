"""A time axis cheap enough to redraw on every frame: the live timeline's and compare's bands.

While a run is live both views follow the clock, so their time axis gets a new range on every
frame (30 Hz). pyqtgraph's :class:`~pyqtgraph.AxisItem` then redoes the whole axis: it measures
every label through a ``QPainter.boundingRect``, builds a list of specs with a ``Point`` per tick,
records them into a ``QPicture`` and replays it. Profiled in a live window (``py-spy record``,
preset 1), that was a quarter of the window process's samples, the largest single cost of
watching a run (issue 17). :class:`TimeAxis` paints the same axis straight onto the view's
painter: the tick values come from pyqtgraph (the same levels, the same strings), one
``drawLines`` per tick level, and each label is a ``QStaticText`` laid out once and kept (the
labels of a moving axis are the same few strings, shifted).

It also keeps two cuts the timeline made before: the finest tick level is not drawn (on the
default 15 s view, 60 of 76 ticks: the 0.2 s marks), and the axis title is set as HTML again
only when its text changes, not on every range change (pyqtgraph does so to update an SI
prefix). Ticks given by hand (``setTicks``), another orientation or a grid drawn by the axis
fall back to pyqtgraph's own drawing.
"""

from __future__ import annotations

from math import ceil

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QStaticText

#: Labels kept laid out; a moving axis shows a few dozen distinct strings at most.
TEXT_CACHE = 512


class KeptBoundsAxis(pg.AxisItem):
    """An axis whose bounding rect is pyqtgraph's, kept until the axis is resized or the two
    styles it depends on change. While a view repaints on every live frame, Qt asks each of
    its axes for its bounding rect two or three times a frame, and pyqtgraph answers in
    Python, mapping the geometry again each time (about 7 us a call)."""

    _bounds: QRectF | None = None  # class defaults: pyqtgraph's __init__ already asks
    _bounds_key: tuple[object, ...] | None = None

    def resizeEvent(self, ev: object = None) -> None:  # noqa: N802 (Qt's name)
        self._bounds = None
        super().resizeEvent(ev)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        if self.grid is not False:  # then it spans the linked view too, which moves
            return super().boundingRect()
        key = (self.style["hideOverlappingLabels"], self.style["tickLength"])
        if self._bounds is None or key != self._bounds_key:
            self._bounds_key, self._bounds = key, super().boundingRect()
        return QRectF(self._bounds)


class TimeAxis(KeptBoundsAxis):
    """A bottom axis for seconds that follows the clock. ``unit``: appended to each tick's
    label (the timeline's axis has no title; each tick says "s")."""

    _label_html: str | None = None  # a class default: AxisItem.__init__ already calls the hook

    def __init__(self, unit: str = "") -> None:
        super().__init__("bottom")
        self.unit = unit
        self.setStyle(maxTickLevel=1)
        self._texts: dict[str, tuple[QStaticText, float, float]] = {}
        self._ticks_key: tuple[float, ...] | None = None
        self._ticks: list[tuple[float, list[float]]] = []
        self._pens_key: tuple[object, ...] | None = None
        self._pens: list[QPen] = []
        #: Each tick's label, by (spacing, scale) and value: a moving axis labels the same
        #: values frame after frame (pyqtgraph formats them all again on every paint).
        self._strings: dict[tuple[float, float], dict[float, str]] = {}
        self._text_h: int | None = None  # the label height last handed to pyqtgraph
        self._font: QFont | None = None  # the font the laid-out labels belong to

    #: (left, right, top, width) of the axis in its own coordinates: it follows the axis'
    #: size only, but was mapped again (through pyqtgraph's Python) twice a frame, for the
    #: paint and for the grid. Forgotten on every resize.
    _geo: tuple[float, float, float, float] | None = None

    def resizeEvent(self, ev: object = None) -> None:  # noqa: N802 (Qt's name)
        self._geo = None
        super().resizeEvent(ev)

    def _extent(self) -> tuple[float, float, float, float]:
        geo = self._geo
        if geo is None:
            rect = self.mapRectFromParent(self.geometry())
            geo = self._geo = (rect.left(), rect.right(), rect.top(), rect.width())
        return geo

    def _updateLabel(self) -> None:  # pyqtgraph's hook, called on every setRange
        if self.label is not None and not self.label.isVisible():
            # No title shown (the timeline's): nothing to set again on every frame.
            # pyqtgraph shows a title through showLabel/setLabel, which come back here.
            self.picture = None
            self.update()
            return
        html = self.labelString()
        if html != self._label_html:
            self._label_html = html
            super()._updateLabel()
        else:  # what _updateLabel does besides the label: redraw the ticks
            self.picture = None
            self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        """pyqtgraph's tick levels, the same values, without numpy: its version compares every
        tick with every tick of the levels above through ``np.isclose``, several times the
        cost of the rest of the axis. The last answer is kept (the bars' grid asks again for
        the same range in the same frame)."""
        if self.logMode:
            return super().tickValues(minVal, maxVal, size)
        key = (minVal, maxVal, size, self.scale, self.style["maxTickLevel"])
        if key == self._ticks_key:
            return self._ticks
        scale = self.scale
        lo, hi = sorted((minVal * scale, maxVal * scale))
        levels = self.tickSpacing(lo, hi, size)
        ticks: list[tuple[float, list[float]]] = []
        above: list[int] = []  # the levels above, as multiples of this level's spacing
        prev = None
        for spacing, offset in levels:
            # pyqtgraph's levels start at 0 and each divides the one above: tick k of a level
            # is k * spacing, and it belongs to a level above when k is a multiple of that
            # level's spacing in these units. Anything else: pyqtgraph's own comparison.
            ratio = prev / spacing if prev else 1.0
            if offset != 0 or abs(ratio - round(ratio)) > 1e-6:
                return super().tickValues(minVal, maxVal, size)
            above = [a * round(ratio) for a in above] + ([round(ratio)] if prev else [])
            prev = spacing
            k0 = ceil(lo / spacing)
            k1 = k0 + int((hi - k0 * spacing) / spacing)
            # The multiples of the levels above, found by stepping, not by testing every k.
            skip = {j for m in above for j in range(-(-k0 // m) * m, k1 + 1, m)}
            values = [k * spacing / scale for k in range(k0, k1 + 1) if k not in skip]
            ticks.append((spacing / scale, values))
        self._ticks_key, self._ticks = key, ticks
        return ticks

    def ticks_shown(self) -> list[tuple[float, list[float]]]:
        """The tick levels this axis draws for its current range and width (what
        :meth:`paint` asks for, so a grid that follows the ticks reuses the same answer)."""
        lo, hi = self.range
        w = self._extent()[3]
        return self.tickValues(lo, hi, w) if w > 0 and hi != lo else []

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """pyqtgraph's labels (plus the unit), each value formatted once per spacing and
        scale: the string depends on nothing else."""
        if self.logMode:
            strings = super().tickStrings(values, scale, spacing)
            return [f"{t} {self.unit}" for t in strings] if self.unit else strings
        known = self._strings.get((spacing, scale))
        if known is None:
            if len(self._strings) > 16:
                self._strings.clear()
            known = self._strings[(spacing, scale)] = {}
        elif len(known) > TEXT_CACHE:
            known.clear()
        new = [v for v in values if v not in known]
        if new:
            strings = super().tickStrings(new, scale, spacing)
            for v, t in zip(new, strings, strict=True):
                known[v] = f"{t} {self.unit}" if self.unit else t
        return [known[v] for v in values]

    # -- painting ---------------------------------------------------------------------------------
    def _text(self, s: str) -> tuple[QStaticText, float, float]:
        """The label ``s`` laid out once: (text, width, height as pyqtgraph measures it)."""
        hit = self._texts.get(s)
        if hit is None:
            if len(self._texts) >= TEXT_CACHE:
                self._texts.clear()
            fm = QFontMetricsF(self._font)
            st = QStaticText(s)
            st.setTextFormat(Qt.TextFormat.PlainText)
            st.setPerformanceHint(QStaticText.PerformanceHint.AggressiveCaching)
            hit = self._texts[s] = (st, fm.horizontalAdvance(s), fm.height())
        return hit

    def _axis_pens(self) -> tuple[QPen, QPen, QPen]:
        """pyqtgraph's axis, tick and text pens, made again only when one is set (pyqtgraph
        makes each anew on every call, three calls a paint)."""
        k = self._axis_pens_key
        fg = pg.getConfigOption("foreground")
        if (k is None or k[0] is not self._pen or k[1] is not self._tickPen
                or k[2] is not self._textPen or k[3] is not fg):
            self._axis_pens_key = (self._pen, self._tickPen, self._textPen, fg)
            self._axis_pens_made = (self.pen(), self.tickPen(), self.textPen())
        return self._axis_pens_made

    _axis_pens_key: tuple[object, ...] | None = None
    _axis_pens_made: tuple[QPen, QPen, QPen]

    def _level_pens(self, axis_pen: QPen, base: QPen, levels: int) -> list[QPen]:
        """Each tick level's pen, as pyqtgraph makes it (fainter by level), made once per
        tick pen and style rather than on every frame."""
        alpha = self.style["tickAlpha"]
        key = (axis_pen, base, alpha, levels)
        if key != self._pens_key:
            pens = []
            for i in range(levels):
                pen = QPen(base)
                if pen.brush().style() == Qt.BrushStyle.SolidPattern:
                    c = QColor(pen.color())
                    c.setAlpha(int(255 / (i + 1) if alpha is None else
                                   (alpha * 255 if isinstance(alpha, float) else alpha)))
                    pen.setColor(c)
                pens.append(pen)
            self._pens_key, self._pens = key, pens
            self._axis_pen_is_tick_pen = bool(pens) and pens[0] == axis_pen
        return self._pens

    #: The first tick level's pen is the axis line's (pyqtgraph's default: the tick pen is
    #: the axis pen, level 0 fully opaque): the line is drawn with that level's ticks.
    _axis_pen_is_tick_pen = False

    def paint(self, p: QPainter, *args: object) -> None:
        if self._tickLevels is not None or self.grid is not False or self.orientation != "bottom":
            super().paint(p, *args)
            return
        left, right, top, w = self._extent()
        lo, hi = self.range
        if w <= 0 or hi == lo:
            return
        font = self.style["tickFont"] or self.font()
        if font != self._font:  # laid-out labels belong to one font
            self._font = font
            self._texts.clear()
        p.setFont(font)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        axis_pen, base, text_pen = self._axis_pens()
        levels = self.tickValues(lo, hi, w)
        pens = self._level_pens(axis_pen, base, len(levels))
        # The axis line, as pyqtgraph draws it (a pixel past each end, a pixel down).
        axis_line = QLineF(left - 1, top + 1, right + 1, top + 1)
        if not (levels and self._axis_pen_is_tick_pen):
            p.setPen(axis_pen)
            p.drawLine(axis_line)
            axis_line = None
        scale = w / (hi - lo)
        tick_len = self.style["tickLength"]
        xs_of: list[list[float]] = []
        for i, (_spacing, values) in enumerate(levels):
            xs = [x if left <= x <= right else None
                  for x in [(v - lo) * scale + left for v in values]]
            xs_of.append(xs)  # type: ignore[arg-type]
            bottom = top + tick_len / (i * 0.5 + 1.0)
            lines = [QLineF(x, top, x, bottom) for x in xs if x is not None]
            if axis_line is not None:  # i == 0: the axis line in the same pen, drawn first
                lines.insert(0, axis_line)
                axis_line = None
            if lines:
                p.setPen(pens[i])
                p.drawLines(lines)
        if not self.style["showValues"]:
            return
        # Labels: the levels pyqtgraph labels, as densely as its textFillLimits allow, none
        # that would stick out of the axis' bounds.
        p.setPen(text_pen)
        bounds = self.boundingRect()
        b_left, b_right = bounds.left(), bounds.right()
        y = top + max(0, tick_len) + self.style["tickTextOffset"][1]
        text = self._text
        drawn = 0
        used = 0.0
        text_h = 0.0
        for i in range(min(len(levels), self.style["maxTextLevel"] + 1)):
            spacing, values = levels[i]
            strings = self.tickStrings(values, self.autoSIPrefixScale * self.scale, spacing)
            items = [(x, text(s)) for x, s in zip(xs_of[i], strings, strict=False)
                     if x is not None]
            if not items:
                continue
            used += sum(t[1] for _, t in items)
            if i > 0 and any(drawn >= n and used / w >= limit
                             for n, limit in self.style["textFillLimits"]):
                break
            for x, (st, tw, th) in items:
                x0 = x - tw / 2
                if x0 < b_left or x0 + tw > b_right:
                    continue
                p.drawStaticText(QPointF(x0, y), st)
                drawn += 1
                text_h = max(text_h, th * 0.8)
        if int(text_h) != self._text_h:  # pyqtgraph's check, in Python, on every paint
            self._text_h = int(text_h)
            self._updateMaxTextSize(int(text_h))
