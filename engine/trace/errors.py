"""The trace package's errors: one a caller catches, one the reader raises inside itself.

Every module of the package may import this; it imports nothing of the engine.
"""

from __future__ import annotations


class TraceError(Exception):
    """A trace could not be read or written. ``str()`` is one line naming what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class BadTrace(Exception):
    """What is wrong with a trace being read, without the file name.

    Raised by the decoders and validators deep inside a read; :func:`engine.trace.load_trace`
    catches it and raises :class:`TraceError` with the file's name in front.
    """
