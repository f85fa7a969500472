"""The engine's one user-facing error: a bad value, named by its field, in one line.

The ground floor: every other module of the engine may import this, and it imports nothing
of the engine.
"""

from __future__ import annotations


class SpecError(ValueError):
    """A spec value is invalid. ``field`` names it; ``str()`` is one line for the user."""

    #: Longest message kept: a 5,000-digit ``--tasks`` must not become a 5,000-character line.
    MAX_MESSAGE = 240

    def __init__(self, field: str, message: str) -> None:
        message = " ".join(message.splitlines())
        if len(message) > self.MAX_MESSAGE:
            message = message[: self.MAX_MESSAGE - 3] + "..."
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
