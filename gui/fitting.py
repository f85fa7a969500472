"""Widgets that never cut their content silently: a form's scroll area as wide as the form, a
one-line label that ends in "…" when it is cut.

Issue 16 (full names, no clipping): at 1366x768 the form lost the end of every line under its
scroll bar, and the Compare tab's status ran under its progress bar mid-word.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
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
        if text == self._full:
            return
        self._full = text
        super().setText(text)
        self._tip()

    def full_text(self) -> str:
        return self._full

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
