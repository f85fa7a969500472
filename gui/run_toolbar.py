"""The window's toolbar: Start, Cancel all, Force cancel all, Follow now, Clear finished and
Show code, with their shortcuts.

It only makes the actions; the window connects them. The shortcuts of Start, Cancel all,
Follow now and Show code are application-wide (:attr:`RunToolbar.app_wide`): they work
whichever pane, or floating tooltip, has focus.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QToolBar, QWidget


class RunToolbar(QToolBar):
    """The actions are parented to ``window``, which adds the application-wide ones to itself."""

    def __init__(self, window: QWidget) -> None:
        super().__init__("Run")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.act_start = QAction("▶ Start", window)
        self.act_start.setShortcut(QKeySequence("Ctrl+R"))
        self.act_start.setToolTip("Start a run (one model ticked) or a comparison: several "
                                  "models run one after another, never at once (Ctrl+R)")
        self.act_cancel_all = QAction("■ Cancel all", window)
        self.act_cancel_all.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.act_cancel_all.setToolTip(
            "Cancel every active run (Esc). Cooperative: threads and sub-interpreters stop at "
            "their next check")
        self.act_kill_all = QAction("✖ Force cancel all", window)
        self.act_kill_all.setToolTip(
            "Cancel everything and kill busy worker processes (threads and sub-interpreters "
            "cannot be killed)")
        self.act_follow = QAction("⇥ Follow now", window)
        self.act_follow.setCheckable(True)
        self.act_follow.setChecked(True)
        self.act_follow.setShortcut(QKeySequence("F"))
        self.act_follow.setToolTip("Keep the timeline scrolling with the 'now' line (F)")
        self.act_clear = QAction("Clear finished", window)
        self.act_clear.setToolTip("Remove ended runs from the tables and the timeline")
        for a in (self.act_start, self.act_cancel_all, self.act_kill_all):
            self.addAction(a)
        self.addSeparator()
        for a in (self.act_follow, self.act_clear):
            self.addAction(a)
        self.act_code = QAction("</> Show code", window)
        self.act_code.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.act_code.setToolTip("The standalone Python script for this configuration, one tab "
                                 "per model (Ctrl+Shift+C)")
        self.addSeparator()
        self.addAction(self.act_code)
        self.app_wide = (self.act_start, self.act_cancel_all, self.act_follow, self.act_code)
        for a in self.app_wide:
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)

    def retire(self, banner: QLabel) -> None:
        """A read-only window: every action goes (all are about a live session), shortcuts
        cleared too: the live window's application-wide Ctrl+R / Esc / F would otherwise
        become ambiguous, and Qt would fire neither. ``banner`` takes their place."""
        for act in self.actions():
            if act.isSeparator():
                act.setVisible(False)
                continue
            act.setShortcut(QKeySequence())
            act.setEnabled(False)
            act.setVisible(False)
        self.addWidget(banner)
