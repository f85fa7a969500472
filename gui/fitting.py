"""Widgets that never cut their content silently: a form's scroll area as wide as the form, a
one-line label that ends in "…" when it is cut.

Issue 16 (full names, no clipping): at 1366x768 the form lost the end of every line under its
scroll bar, and the Compare tab's status ran under its progress bar mid-word.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QScrollArea, QSizePolicy, QWidget


class FormScroll(QScrollArea):
    """Scrolls its form up and down, never sideways, and is never narrower than the form's
    minimum plus the vertical scroll bar: a splitter (or a remembered splitter state) can
    only narrow it that far. The form growing wider (a panel shown) widens it at once."""

    def __init__(self, form: QWidget) -> None:
        super().__init__()
        self.setWidget(form)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        form.installEventFilter(self)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        hint = super().minimumSizeHint()
        form = self.widget()
        if form is None:
            return hint
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(form.minimumSizeHint().width() + bar + 2 * self.frameWidth(),
                     hint.height())

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.widget() and ev.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the form's minimum may have changed: so has ours
        return False


class ElidedLabel(QLabel):
    """One line of plain text: whole where it fits, else cut at the right with "…" (never
    mid-glyph under a neighbour) and whole in the tooltip. Never a reason for its window to
    be wider."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        """Show ``text``: a repaint of this label only. QLabel.setText would also ask every
        layout up to the window to run again (its size hint may have changed), and each time
        the window repainted whole: main window, splitters, tabs, scroll bars, at every
        change of a compare's status line (issue 17). Its width hint is ignored (see the
        size policy), so only a new height (a glyph from a taller fallback font) needs a
        layout pass."""
        if text == self._full:
            return
        self._full = text
        hint = self._text_size()
        if hint.height() != getattr(self, "_hint", hint).height():
            self.updateGeometry()
        self._hint = hint
        self.update()
        self._tip()

    def text(self) -> str:
        return self._full

    def full_text(self) -> str:
        return self._full

    def _text_size(self) -> QSize:
        """What QLabel's size hint is for this text (one line, plain)."""
        fm = self.fontMetrics()
        if self._full:
            br = fm.boundingRect(0, 0, 2000, 2000, int(self.alignment()), self._full)
        else:  # QLabel's hint for no text
            br = QRect(0, 0, fm.averageCharWidth(), fm.height())
        m = self.contentsMargins()
        extra = 2 * self.margin()
        return QSize(br.width() + m.left() + m.right() + extra,
                     br.height() + m.top() + m.bottom() + extra)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return self._text_size()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return self._text_size()

    def shown_text(self) -> str:
        """What a reader sees: the text, elided to the label's width."""
        return self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight,
                                             max(0, self.contentsRect().width()))

    def elided(self) -> bool:
        return self.shown_text() != self._full

    def _tip(self) -> None:
        tip = self._full if self.elided() else ""
        if self.toolTip() != tip:
            self.setToolTip(tip)

    def resizeEvent(self, ev: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(ev)
        self._tip()

    def paintEvent(self, ev: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.setFont(self.font())
        p.drawText(self.contentsRect(), int(self.alignment()) | Qt.AlignmentFlag.AlignVCenter,
                   self.shown_text())
