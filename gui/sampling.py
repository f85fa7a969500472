"""Connect the window to the engine's sampler.

The engine's :class:`Session` samples the machine, this process, its workers, the engine loop's
lag and GIL contention into the store (``session.sampler``). The window only adds one probe:
the lag of its own (qasync) event loop, reported as ``Sample.lag_ms["gui"]``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine import Session

SAMPLE_HZ = 10.0


def make_session() -> Session:
    """A session that samples at SAMPLE_HZ."""
    return Session(sample_hz=SAMPLE_HZ)


def attach(session: Session, gui_loop: asyncio.AbstractEventLoop) -> Any:
    """Probe the GUI loop's lag; return the session's sampler (None if it has none)."""
    sampler = getattr(session, "sampler", None)
    if sampler is not None:
        sampler.add_loop_probe("gui", gui_loop)
    return sampler


def detach(sampler: Any) -> None:
    """Stop probing the GUI loop (before that loop closes)."""
    remove = getattr(sampler, "remove_loop_probe", None)
    if remove is not None:
        remove("gui")
