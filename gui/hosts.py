"""What the window's helpers may ask of the window: one Protocol per helper.

Compare mode, the File menu and a replay's set-up each work for the window, and each is typed
against the few window methods named here, never the window class: a helper does not import
:mod:`gui.main_window` and does not reach into its widgets or private methods. The window owns
its widgets; a helper asks it. :class:`gui.main_window.MainWindow` has every method of every
host (a test checks it), and a helper needing more from the window adds a method here first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from engine import RunRecord, TaskRecord

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QMenu, QWidget

    from engine.compare import CompareResult

    from .replay_load import PreparedReplay


class RunRegistry(Protocol):
    """Runs the window shows: the frame adds a registered run's rows as it appears."""

    def register_run(self, run_id: int, model: str, *, can_force: bool | None = None,
                     gui_loop: bool = False) -> None:
        """Show this run (when the store has it) as a run of ``model``. ``can_force``: its
        tasks can be killed (None: as the model says); ``gui_loop``: it runs on the window's
        own event loop."""
        ...


class CompareHost(RunRegistry, Protocol):
    """What :class:`gui.compare_mode.CompareMode` asks of its window."""

    def describe_task(self, task_id: int) -> str:
        """The task's story as rich text (the bands' hover text)."""
        ...

    def run_tasks(self, run_id: int) -> list[TaskRecord]:
        """Every task record of the run, as the store has them now."""
        ...

    def show_compare_tab(self) -> None:
        """Bring the Compare tab up, with room for it."""
        ...

    def status_message(self, text: str, ms: int = 0) -> None:
        """A message in the status bar for ``ms`` milliseconds (0: until the next one)."""
        ...


class ReplayWindow(Protocol):
    """A replay window opened by the File menu, as the menu keeps track of it."""

    closed: SignalInstance

    def close(self) -> bool: ...


class FileHost(Protocol):
    """What :class:`gui.file_menu.FileMenu` asks of its window."""

    def window(self) -> QWidget:
        """The top-level widget the menu's dialogs and actions belong to (Qt's own)."""
        ...

    def close(self) -> bool:
        """Close the window (Qt's own)."""
        ...

    def add_menu(self, title: str) -> QMenu:
        """A new menu in the window's menu bar."""
        ...

    def add_status_widget(self, widget: QWidget) -> None:
        """A widget at the left of the status bar's permanent readouts."""
        ...

    def status_message(self, text: str, ms: int = 0) -> None:
        """A message in the status bar for ``ms`` milliseconds (0: until the next one)."""
        ...

    def selected_run_id(self) -> int | None:
        """The run the user picked in the tables, or the only run; None if neither."""
        ...

    def cpu_plots(self) -> Sequence[Any]:
        """The CPU plots as drawn (for an image export)."""
        ...

    def timeline_plot(self) -> Any:
        """The timeline plot as drawn (for an image export)."""
        ...

    def open_replay(self, prepared: PreparedReplay) -> ReplayWindow:
        """Show a loaded trace in a read-only window of its own, shown and raised."""
        ...


class ReplayHost(RunRegistry, Protocol):
    """What :func:`gui.replay.enter_replay_mode` asks of a freshly built window."""

    def set_read_only(self, title: str, banner: str, banner_tip: str) -> None:
        """Nothing can be started or cancelled here: no run form, no live actions or
        shortcuts, no Cancel/Kill columns; ``banner`` (rich text) says what is shown."""
        ...

    def show_run(self, run: RunRecord) -> None:
        """Add the run and its tasks to the tables now."""
        ...

    def show_recorded_samples(self) -> None:
        """Draw every CPU sample of the window's store at once, on the trace's time axis."""
        ...

    def show_comparison(self, result: CompareResult) -> None:
        """Show a saved comparison in the Compare tab:
        its bands, table, charts and readings, as when it finished."""
        ...

    def show_whole_trace(self) -> None:
        """Time stands still at the trace's end; show all of it, the CPU plots in step."""
        ...

    def refresh_status(self) -> None:
        """Bring the status bar's readouts up to date."""
        ...
