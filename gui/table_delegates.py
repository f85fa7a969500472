"""The tables' painted cells: a Cancel/Kill button and a progress bar in every row.

Buttons are painted by a delegate in a column of their own, one per row: every task and every
run can be cancelled with a single click, with no selection step first. Process tasks get a
second button, "Kill", that force-cancels (kills the worker; the pool replaces it). Each look
is rendered once into a cached pixmap (:class:`_PixmapCache`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QRect, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from .task_table import CELL_ROLE, ENABLED_ROLE, ID_ROLE, PROGRESS_ROLE, Index


def _pixel_ratio(p: QPainter) -> float:
    """The pixel ratio ``p`` really draws at: that of its engine's device, which is the target
    pixmap when a widget is rendered into one (``p.device()`` is still the widget then)."""
    engine = p.paintEngine()
    dev = engine.paintDevice() if engine is not None else None
    return (dev or p.device()).devicePixelRatioF()


class _PixmapCache:
    """A delegate's rendered cells: a pixmap per look, drawn with one ``drawPixmap``.

    A style's ``drawControl`` for a push button or a progress bar costs 30-50 us; a task table
    repaint drew three per row (cancel, kill, progress), a third of the repaint. Most rows
    look the same from frame to frame (and many rows look alike), so each look is rendered
    once into a transparent pixmap, keyed by everything that goes into the drawing. The
    pixmap covers the whole cell, not just the control: Fusion draws a progress bar's frame
    one pixel outside the bar's rectangle.

    The theme is checked on every cell (about 3 us): the style, the application palette and
    style sheet, the view's style sheet, the painter's font and the device pixel ratio. Any
    change drops every pixmap, so a new theme, font or screen never shows a stale one; the
    size of the cell is part of each key. The cache is bounded: when full, the oldest half goes.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pixmaps: dict[tuple[Any, ...], QPixmap] = {}
        self.theme: tuple[Any, ...] = ()
        self.renders = 0  # how many pixmaps were drawn (tests and benchmarks count them)

    def get(self, p: QPainter, style: QStyle, widget: QWidget | None,
            key: tuple[Any, ...]) -> QPixmap | None:
        app = QApplication.instance()
        theme_now = (_pixel_ratio(p), style, QApplication.palette().cacheKey(),
                     p.font(), app.styleSheet() if isinstance(app, QApplication) else "",
                     widget.styleSheet() if widget is not None else "")
        if theme_now != self.theme:
            self.pixmaps.clear()
            self.theme = theme_now
            return None
        return self.pixmaps.get(key)

    def render(self, p: QPainter, key: tuple[Any, ...], w: int, h: int,
               draw: Callable[[QPainter, QRect], None]) -> QPixmap:
        """Draw ``draw(painter, QRect(0, 0, w, h))`` into a new pixmap (at the painter's pixel
        ratio and with its font and hints, as it would draw in place), keep it, return it."""
        dpr = self.theme[0] if self.theme else _pixel_ratio(p)
        pm = QPixmap(max(1, round(w * dpr)), max(1, round(h * dpr)))
        pm.setDevicePixelRatio(dpr)
        pm.fill(Qt.GlobalColor.transparent)
        q = QPainter(pm)
        q.setFont(p.font())
        q.setRenderHints(p.renderHints())
        draw(q, QRect(0, 0, w, h))
        q.end()
        if len(self.pixmaps) >= self.limit:
            for k in list(self.pixmaps)[:self.limit // 2]:
                del self.pixmaps[k]
        self.pixmaps[key] = pm
        self.renders += 1
        return pm


#: A table row's height: a line of text and a cell's button (8 task rows fit a laptop's screen).
ROW_H = 22


def style_table(v: QTableView) -> None:
    """The look the window's task and run tables share."""
    v.verticalHeader().hide()
    v.verticalHeader().setDefaultSectionSize(ROW_H)
    v.setAlternatingRowColors(True)
    v.setShowGrid(False)
    v.setWordWrap(False)
    v.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    v.setMouseTracking(True)


class ProgressDelegate(QStyledItemDelegate):
    """A progress bar in a cell (painted, not a widget; cached as pixmaps, see _PixmapCache).

    CELL_ROLE gives ``(fraction, text)``, or ``(segments, text)`` with ``segments`` a tuple of
    ``(fraction, colour)``: a bar of several parts side by side (a run's tasks that finished,
    failed, timed out, were cancelled), each in its colour.

    Pixmaps are keyed by the bar's exact value (per mille, what the bar is drawn from) and
    text, so the cache never changes a bar's look. Finished, queued and stalled rows hit the
    cache. A running bar that moved shows a value never seen before, and most of them are seen
    once: a look is drawn in place the first time (about 110 us) and kept from the second
    (a render into a pixmap and its blit cost about 185 us, a kept one 11 us; Xvfb, 500
    paints each). 500 pixmaps of a 110x24 cell: ~5 MB.
    """

    #: False: draw with the style on every paint (what the cache must look identical to).
    cache_enabled = True
    #: Looks seen once, at most: past this the record of them starts again.
    SEEN_LIMIT = 2000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = _PixmapCache(500)
        self._seen: set[tuple[Any, ...]] = set()

    def paint(self, p: QPainter, opt: QStyleOptionViewItem, index: Index) -> None:
        frac, text = index.data(CELL_ROLE) or (index.data(PROGRESS_ROLE), index.data())
        if isinstance(frac, tuple):
            segs = tuple((int(f * 1000), c) for f, c in frac)
            permille = sum(f for f, _ in segs)
            text = text or f"{permille / 10:.0f}%"
        else:
            frac = frac or 0.0
            text = text or f"{frac * 100:.0f}%"
            permille = int(frac * 1000)
            segs = ()
        cell = opt.rect
        widget = opt.widget
        style = widget.style() if widget else QApplication.style()
        if not self.cache_enabled:
            self._draw(p, cell, style, widget, permille, text, segs)
            return
        w, h = cell.width(), cell.height()
        key = (permille, text, w, h, segs)
        pm = self.cache.get(p, style, widget, key)
        if pm is None:
            if key not in self._seen:  # the first time: drawn in place, not kept
                if len(self._seen) >= self.SEEN_LIMIT:
                    self._seen.clear()
                self._seen.add(key)
                self._draw(p, cell, style, widget, permille, text, segs)
                return
            pm = self.cache.render(p, key, w, h, lambda q, r: self._draw(
                q, r, style, widget, permille, text, segs))
        p.drawPixmap(cell.topLeft(), pm)

    @staticmethod
    def _draw(p: QPainter, cell: QRect, style: QStyle, widget: QWidget | None, permille: int,
              text: str, segs: tuple[tuple[int, str], ...] = ()) -> None:
        bar = QStyleOptionProgressBar()
        bar.rect = cell.adjusted(3, 3, -3, -3)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = 0 if segs else permille
        bar.text = text
        bar.textVisible = True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        if not segs:
            style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, p, widget)
            return
        # The empty groove, each part in its colour, then the text over them.
        bar.textVisible = False
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, p, widget)
        inner = bar.rect.adjusted(1, 1, -1, -1)
        x, acc = inner.left(), 0
        for f, colour in segs:
            acc += f
            right = inner.left() + round(inner.width() * min(acc, 1000) / 1000)
            if right > x:
                p.fillRect(QRect(x, inner.top(), right - x, inner.height()), QColor(colour))
            x = right
        p.setPen(widget.palette().color(QPalette.ColorRole.Text) if widget is not None
                 else QApplication.palette().color(QPalette.ColorRole.Text))
        p.drawText(bar.rect, int(Qt.AlignmentFlag.AlignCenter), text)


class ButtonDelegate(QStyledItemDelegate):
    """A push button painted in every row of a column; a click emits the row's id.

    The button is enabled while ENABLED_ROLE is true (the task or run has not ended). Empty
    display text means "no button here" (e.g. Kill on a thread task). Each look (text,
    enabled, pressed, size) is rendered once and cached as a pixmap (see _PixmapCache).
    """

    clicked = Signal(int)
    #: False: draw with the style on every paint (what the cache must look identical to).
    cache_enabled = True

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pressed: tuple[int, int] | None = None
        self.cache = _PixmapCache(64)

    def paint(self, p: QPainter, opt: QStyleOptionViewItem, index: Index) -> None:
        text, enabled = index.data(CELL_ROLE) or (index.data(), index.data(ENABLED_ROLE))
        if not text:
            return
        enabled = bool(enabled)
        sunken = self._pressed == (index.row(), index.column())
        cell = opt.rect
        widget = opt.widget
        style = widget.style() if widget else QApplication.style()
        if not self.cache_enabled:
            self._draw(p, cell, style, widget, text, enabled, sunken)
            return
        w, h = cell.width(), cell.height()
        key = (text, enabled, sunken, w, h)
        pm = self.cache.get(p, style, widget, key)
        if pm is None:
            pm = self.cache.render(p, key, w, h, lambda q, r: self._draw(
                q, r, style, widget, text, enabled, sunken))
        p.drawPixmap(cell.topLeft(), pm)

    @staticmethod
    def _draw(p: QPainter, cell: QRect, style: QStyle, widget: QWidget | None, text: str,
              enabled: bool, sunken: bool) -> None:
        btn = QStyleOptionButton()
        btn.rect = cell.adjusted(2, 1, -2, -1)
        btn.text = text
        btn.state = QStyle.StateFlag.State_Raised
        if enabled:
            btn.state |= QStyle.StateFlag.State_Enabled
        if sunken:
            btn.state |= QStyle.StateFlag.State_Sunken
        if not enabled:
            btn.palette = QApplication.palette()
            btn.palette.setCurrentColorGroup(btn.palette.ColorGroup.Disabled)
        style.drawControl(QStyle.ControlElement.CE_PushButton, btn, p, widget)

    def editorEvent(self, event: QEvent, model: Any, opt: QStyleOptionViewItem,
                    index: Index) -> bool:
        t = event.type()
        if t not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease,
                     QEvent.Type.MouseButtonDblClick):
            return False
        assert isinstance(event, QMouseEvent)
        if event.button() != Qt.MouseButton.LeftButton or not index.data():
            return False
        inside = QRect(opt.rect).contains(event.position().toPoint())
        if t == QEvent.Type.MouseButtonPress:
            self._pressed = (index.row(), index.column()) if inside else None
            return True
        if t == QEvent.Type.MouseButtonRelease:
            was = self._pressed == (index.row(), index.column())
            self._pressed = None
            if was and inside and index.data(ENABLED_ROLE):
                self.clicked.emit(int(index.data(ID_ROLE)))
            return True
        return True
