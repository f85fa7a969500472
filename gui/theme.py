"""Colours, fonts and the dark palette shared by every view.

State colours are chosen to stay distinguishable for the common forms of colour blindness
(blue / green / vermilion / amber / grey / purple) and are used identically by the timeline
bars, the task table and the legend.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

import engine
from engine import State

BG = "#15181d"
PANEL = "#1d2127"
BASE = "#111418"
GRID = "#2a2f37"
TEXT = "#d7dce2"
DIM = "#8b949e"
ACCENT = "#4c9be8"
ERROR = "#ff6b61"
WARN = "#e3b341"
OK = "#56c271"

STATE_COLORS: dict[State, str] = {
    State.QUEUED: "#3a4049",
    State.RUNNING: "#4c9be8",
    State.CANCEL_REQUESTED: "#e3b341",
    State.FINISHED: "#3fa55b",
    State.FAILED: "#e5534b",
    State.CANCELLED: "#8b949e",
    State.TIMED_OUT: "#b07ce8",
}

STATE_LABELS: dict[State, str] = {
    State.QUEUED: "queued",
    State.RUNNING: "running",
    State.CANCEL_REQUESTED: "cancel requested",
    State.FINISHED: "finished",
    State.FAILED: "failed",
    State.CANCELLED: "cancelled",
    State.TIMED_OUT: "timed out",
}

#: Order of states in legends and filters.
STATE_ORDER: tuple[State, ...] = (
    State.RUNNING,
    State.CANCEL_REQUESTED,
    State.FINISHED,
    State.FAILED,
    State.CANCELLED,
    State.TIMED_OUT,
    State.QUEUED,
)

#: One colour per model, in the engine's model order (Okabe-Ito hues: distinguishable with the
#: common colour-vision deficiencies), the same in the compare bands, table and charts. Models
#: past the end of the list are drawn in ACCENT.
MODEL_PALETTE: tuple[str, ...] = (
    "#9aa4b1", "#56b4e9", "#e69f00", "#009e73", "#cc79a7", "#f0e442", "#d55e00")


def model_color(model: str) -> str:
    """The model's colour: its place in :func:`engine.model_names` picks it from the palette.
    A comparison row across interpreters (``"threads · 3.13.0"``) has its model's colour."""
    model = model.split(" · ", 1)[0]
    names = engine.model_names()
    i = names.index(model) if model in names else len(MODEL_PALETTE)
    return MODEL_PALETTE[i] if i < len(MODEL_PALETTE) else ACCENT


def qcolor(state: State) -> QColor:
    return QColor(STATE_COLORS[state])


def apply(app: QApplication) -> None:
    """Fusion style with a dark palette that matches the pyqtgraph views.

    Each part is set only when it differs: setting a style, palette, font or style sheet again
    re-polishes every widget the application holds, hidden ones too."""
    import pyqtgraph as pg

    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BG,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: "#242a31",
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#2f5f8f",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: "#6b737d",
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5d656f"))
    if app.palette() != pal:
        app.setPalette(pal)
    font = QFont(app.font())
    if font.pointSizeF() < 9.5:
        font.setPointSizeF(9.5)
        app.setFont(font)
    if app.styleSheet() != STYLESHEET:
        app.setStyleSheet(STYLESHEET)
    pg.setConfigOptions(antialias=False, background=BASE, foreground=DIM)


STYLESHEET = f"""
QToolTip {{ color: {TEXT}; background: #242a31; border: 1px solid #3a4049; padding: 4px; }}
QGroupBox {{ border: 1px solid {GRID}; border-radius: 4px; margin-top: 14px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {DIM}; }}
QLineEdit[invalid="true"] {{ border: 1px solid {ERROR}; }}
QLabel#fieldError {{ color: {ERROR}; }}
QLabel#hint {{ color: {DIM}; }}
QLabel#hint[error="true"] {{ color: {ERROR}; }}
QLabel#paneTitle {{ color: {DIM}; font-weight: bold; padding: 2px 4px; }}
QPushButton#start {{ background: #2f6fb0; color: white; font-weight: bold; padding: 6px; }}
QPushButton#start:hover {{ background: #3a82cc; }}
QStatusBar QLabel {{ padding: 0 8px; }}
QHeaderView::section {{ background: {PANEL}; color: {DIM}; border: 0; border-right: 1px solid {GRID};
                        padding: 3px 6px; }}
QTableView {{ gridline-color: {GRID}; }}
"""
