"""What the window remembers between launches: its form, geometry and pane sizes (QSettings).

Stored under the application's organisation and name (``TaskScope``), so on Linux in
``~/.config/TaskScope/TaskScope.conf``. Settings are a convenience, never a way to break
start-up: every value read back is checked (its type, a known model or workload, a layout of
this version), and whatever is missing, stale or corrupt is ignored for the default. Tests point
QSettings at a temporary folder, never at the user's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

#: Bump when the panes change: a layout saved for other panes is ignored, not misapplied.
LAYOUT_VERSION = 2
ORGANIZATION = "TaskScope"
APPLICATION = "TaskScope"


class WindowSettings:
    """Read and write the window's remembered state in one QSettings store."""

    def __init__(self, store: QSettings) -> None:
        self.store = store

    # -- the form -----------------------------------------------------------------------------
    def form(self) -> dict[str, Any]:
        """The saved form as a dict ({} if none, or unreadable)."""
        raw = self.store.value("form/state")
        if not isinstance(raw, str):
            return {}
        try:
            state = json.loads(raw)
        except ValueError:
            return {}
        return state if isinstance(state, dict) else {}

    def save_form(self, state: dict[str, Any]) -> None:
        self.store.setValue("form/state", json.dumps(state))

    # -- geometry and panes -----------------------------------------------------------------
    def layout(self) -> dict[str, QByteArray]:
        """Saved window geometry and splitter states by name; {} if none or of another
        version of the layout."""
        try:
            version = int(self.store.value("layout/version", 0))
        except (TypeError, ValueError):
            return {}
        if version != LAYOUT_VERSION:
            return {}
        out: dict[str, QByteArray] = {}
        self.store.beginGroup("layout")
        try:
            for key in self.store.childKeys():
                value = self.store.value(key)
                if isinstance(value, QByteArray) and not value.isEmpty():
                    out[key] = value
        finally:
            self.store.endGroup()
        return out

    def save_layout(self, states: dict[str, QByteArray]) -> None:
        self.store.remove("layout")
        self.store.setValue("layout/version", LAYOUT_VERSION)
        for key, value in states.items():
            self.store.setValue(f"layout/{key}", value)

    def forget_layout(self) -> None:
        self.store.remove("layout")

    def sync(self) -> None:
        self.store.sync()


def restore_each(values: dict[str, Any], setters: dict[str, Callable[[Any], object]]) -> None:
    """Call each setter with its saved value; a value that does not fit is skipped alone."""
    for key, setter in setters.items():
        if key in values:
            try:
                setter(values[key])
            except (TypeError, ValueError, KeyError, AttributeError):
                continue
