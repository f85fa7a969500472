"""A readout that changes repaints itself, not the window around it (issue 17).

While a run is live, text changes several times a second (the status bar's readouts, a
comparison's status line). A QLabel whose size may change asks every layout up to the window to
run again at each setText; a status bar answers that by repainting itself whole, and a
transparent label has its parents painted behind it. These pin down that a text change paints
the label and nothing else (the pixels are the same: see the commit that made them so).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow, QPushButton, QVBoxLayout, QWidget

from gui import theme
from gui.fitting import ElidedLabel
from gui.status_readouts import StatusReadouts


class _Events(QObject):
    """Counts events of some types per object, application-wide."""

    def __init__(self, *types: QEvent.Type) -> None:
        super().__init__()
        self.types = types
        self.seen: Counter[tuple[QObject, QEvent.Type]] = Counter()

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt API
        if ev.type() in self.types:
            self.seen[(obj, ev.type())] += 1
        return False

    def objects(self, kind: QEvent.Type) -> set[QObject]:
        return {o for (o, t) in self.seen if t == kind}


def _settle(qtbot: Any) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(20)


def _readouts(qapp: Any, qtbot: Any) -> tuple[QMainWindow, StatusReadouts]:
    """A shown window (kept by the caller) and the status readouts in its status bar, under
    the window's theme."""
    theme.apply(qapp)
    win = QMainWindow()
    qtbot.addWidget(win)
    readouts = StatusReadouts(win.statusBar())
    win.resize(1300, 200)
    win.show()
    qtbot.waitExposed(win)
    return win, readouts


def test_status_readouts_repaint_only_themselves(qapp: Any, qtbot: Any) -> None:
    """Under the window's theme, a readout's new text repaints that readout: not the status
    bar, its size grip or the main window behind it."""
    _win, readouts = _readouts(qapp, qtbot)
    _settle(qtbot)
    spy = _Events(QEvent.Type.Paint)
    qapp.installEventFilter(spy)
    try:
        for i in range(3):
            readouts.engine.set_reading(f"engine lag {i + 12} ms", "#ff0000")
            readouts.tasks.setText(f"1 active run · {i} running")
            _settle(qtbot)
    finally:
        qapp.removeEventFilter(spy)
    painted = spy.objects(QEvent.Type.Paint)
    assert readouts.engine in painted and readouts.tasks in painted
    assert painted <= {readouts.engine, readouts.tasks}, sorted(
        type(o).__name__ for o in painted)
    assert "14 ms" in readouts.engine.text()


def _colour_pixels(widget: QWidget, colour: str) -> int:
    """Pixels of ``widget`` within a few levels of ``colour`` (its text's, antialiased aside)."""
    from PySide6.QtGui import QColor, QImage

    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    c = QColor(colour)
    want = (c.blue(), c.green(), c.red())
    raw = bytes(img.constBits())
    n = 0
    for y in range(img.height()):
        row = raw[y * img.bytesPerLine(): y * img.bytesPerLine() + img.width() * 4]
        for x in range(0, len(row), 4):
            if all(abs(row[x + i] - want[i]) <= 8 for i in range(3)):
                n += 1
    return n


def test_a_warning_readout_is_drawn_in_its_colour_and_keeps_it_when_polished(
        qapp: Any, qtbot: Any) -> None:
    """Readouts are plain text: a warning colours the whole readout, through a polish (a new
    style sheet) too, and goes when the figure is normal again."""
    _win, readouts = _readouts(qapp, qtbot)
    gui = readouts.gui
    gui.set_reading("GUI lag 45 ms", theme.WARN)
    _settle(qtbot)
    assert gui.text() == "GUI lag 45 ms" and _colour_pixels(gui, theme.WARN) > 10
    sheet = qapp.styleSheet()
    try:
        qapp.setStyleSheet(sheet + "\n/* again */")
        _settle(qtbot)
        assert _colour_pixels(gui, theme.WARN) > 10
    finally:
        qapp.setStyleSheet(sheet)
    gui.set_reading("GUI lag 4 ms")
    _settle(qtbot)
    assert gui.colour() is None and _colour_pixels(gui, theme.WARN) == 0


def test_elided_label_changes_repaint_no_layout(qtbot: Any) -> None:
    """A new text in an ElidedLabel lays nothing out again and paints nothing beside it; it
    still shows the text, elided where it does not fit, whole in its tooltip."""
    top = QWidget()
    qtbot.addWidget(top)
    lay = QVBoxLayout(top)
    label = ElidedLabel("starting")
    button = QPushButton("beside")
    lay.addWidget(label)
    lay.addWidget(button)
    top.resize(160, 80)
    top.show()
    qtbot.waitExposed(top)
    _settle(qtbot)
    height = label.height()
    spy = _Events(QEvent.Type.Paint, QEvent.Type.LayoutRequest)
    QApplication.instance().installEventFilter(spy)  # type: ignore[union-attr]
    try:
        for i in range(3):
            label.setText(f"model {i + 1}/3: threads running · {i * 40}/120 tasks · {i}.5 s")
            _settle(qtbot)
    finally:
        QApplication.instance().removeEventFilter(spy)  # type: ignore[union-attr]
    assert not spy.objects(QEvent.Type.LayoutRequest)
    assert label in spy.objects(QEvent.Type.Paint)
    assert button not in spy.objects(QEvent.Type.Paint)
    assert label.text() == "model 3/3: threads running · 80/120 tasks · 2.5 s"
    assert label.shown_text().endswith("…") and label.toolTip() == label.text()
    assert label.height() == height
