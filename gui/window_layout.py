"""What the window remembers and how it lays out its panes: size, pane sizes, Reset layout.

:class:`WindowLayout` is a part of :class:`~gui.main_window.MainWindow` (a mixin): the default
size for the screen, pane sizes that show what a user needs at the window's size (at 1366x768:
8 task rows, the CPU plots with their scale, the timeline), the remembered form, geometry and
splitter states (QSettings, through :class:`~gui.settings.WindowSettings`), and View > Reset
layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSize
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QMainWindow, QSplitter

if TYPE_CHECKING:
    from .controls import Controls
    from .panes import TablesPane
    from .settings import WindowSettings

#: The Timeline/Compare tabs never get shorter than this (the default layout and the splitter
#: keep the timeline readable at 1100x700).
VIEWS_MIN_H = 180
#: The CPU plots never get shorter than this (two cores' bands keep their scale readable).
CPU_MIN_H = 130


class WindowLayout(QMainWindow):
    """Size, pane sizes and what is remembered of them (see the module docstring)."""

    # Built by the window (gui.main_window.MainWindow._build).
    settings: WindowSettings | None
    controls: Controls
    controls_pane: Any
    main_split: QSplitter
    right_split: QSplitter
    tables: TablesPane
    runs_view: Any
    _laid_out: bool

    def status_message(self, text: str, ms: int = 0) -> None:  # the window's status bar
        raise NotImplementedError

    # -- size and layout --------------------------------------------------------------------------
    def default_size(self) -> QSize:
        """1600x1000, or the screen's available area if that is smaller."""
        size = QSize(1600, 1000)
        screen = self.screen()
        if screen is not None:
            size = size.boundedTo(screen.availableGeometry().size())
        return size

    def _restore(self) -> None:
        """The remembered form, size and pane sizes, where they are sound (else defaults)."""
        saved = self.settings.layout() if self.settings is not None else {}
        if self.settings is not None:
            self.controls.restore_state(self.settings.form())
        geometry = saved.get("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(self.default_size())
        else:  # never larger than the screen it opens on
            self.resize(self.size().boundedTo(self._screen_size()))
        restored = all(name in saved and split.restoreState(saved[name])
                       for name, split in self._splits().items())
        # Splitter states that do not fit these panes (sizes summing to another window) are
        # redone for this window's size on show.
        self._laid_out = restored

    def _screen_size(self) -> QSize:
        screen = self.screen()
        return screen.availableGeometry().size() if screen is not None else QSize(1600, 1000)

    def _splits(self) -> dict[str, QSplitter]:
        return {"mainSplit": self.main_split, "rightSplit": self.right_split,
                "tablesSplit": self.tables.split}

    def layout_state(self) -> dict[str, QByteArray]:
        """The window's geometry and splitter states, to remember."""
        out = {name: split.saveState() for name, split in self._splits().items()}
        out["geometry"] = self.saveGeometry()
        return out

    def save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.save_form(self.controls.state())
        self.settings.save_layout(self.layout_state())
        self.settings.sync()

    def default_layout(self) -> None:
        """Pane sizes for this window's size: the form at its width; on the right, the CPU
        plots readable (about 40 px a core, with their scale), the Tasks table with 8 rows
        and the Runs table with 3 when they fit, the timeline the rest (at least
        VIEWS_MIN_H). At 1366x768 that is all of them; below, the tables give rows first."""
        self.centralWidget().layout() and self.centralWidget().layout().activate()
        width = max(1, self.main_split.width())
        narrowest = self.controls_pane.minimumSizeHint().width()
        form_w = min(400, max(narrowest, self.controls.sizeHint().width() + 24))
        if width < 1250:  # a small window: the form at its narrowest, the room to the right
            form_w = narrowest
        self.main_split.setSizes([form_w, max(1, width - form_w)])
        total = sum(self.right_split.sizes()) or self.right_split.height()
        handles = 2 * self.right_split.handleWidth()
        avail = max(1, total - handles)
        cpu = int(min(260, max(CPU_MIN_H, avail * 0.2)))
        for runs, tasks in ((3, 8), (2, 8), (2, 6), (2, 5), (2, 4), (2, 3)):
            tables = self.tables.height_for(runs, tasks)
            if avail - cpu - tables >= VIEWS_MIN_H:
                break
        extra = avail - cpu - tables - VIEWS_MIN_H
        if extra > 0 and tables < 0.36 * avail:  # a tall window: the tables grow a little too
            tables += int(min(extra / 3, 0.36 * avail - tables))
        views = max(VIEWS_MIN_H, avail - cpu - tables)
        self.right_split.setSizes([cpu, views, tables])
        self.tables.split.setSizes([self.tables.rows_height(self.runs_view, runs),
                                    max(1, tables - self.tables.rows_height(self.runs_view, runs)
                                        - self.tables.split.handleWidth())])
        self._laid_out = True

    def reset_layout(self) -> None:
        """View > Reset layout: the default size (to fit the screen) and pane sizes."""
        if self.isMaximized() or self.isFullScreen():
            self.showNormal()
        self.resize(self.default_size())
        if self.settings is not None:
            self.settings.forget_layout()
        self.default_layout()
        self.status_message("Layout reset to the default", 3000)

    def showEvent(self, ev: QShowEvent) -> None:
        super().showEvent(ev)
        if not self._laid_out:
            self.default_layout()

