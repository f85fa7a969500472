"""Connect the window to the engine, which runs in a process of its own (:mod:`engine.remote`).

One engine process per interpreter the window runs models on (its own first; the Interpreter
box picks others), behind one session: :class:`engine.remote.Engines`.

The engine's session samples the machine, TaskScope's processes, its workers, the engine loop's
lag and GIL contention (in the engine process, where the threads model runs). The window adds
one probe: the lag of its own (qasync) event loop, measured here and sent to the engine with
each acknowledgement, so samples carry it as ``Sample.lag_ms["gui"]`` (compare mode's figure).
"""

from __future__ import annotations

import asyncio

from engine import SessionAPI
from engine.remote import Engines

SAMPLE_HZ = 10.0
#: The engine process's niceness (its workers inherit it). See RemoteSession: on a machine
#: whose cores our runs saturate, the window must still get the CPU for its frames. All models
#: run under it alike; headless runs (the CLI) keep niceness 0.
ENGINE_NICE = 10


def make_session() -> Engines:
    """The engine in its own process, sampling at SAMPLE_HZ (it starts in the background);
    engines on other interpreters start when the Interpreter box ticks them."""
    return Engines(sample_hz=SAMPLE_HZ, nice=ENGINE_NICE)


def attach(session: SessionAPI, gui_loop: asyncio.AbstractEventLoop) -> SessionAPI:
    """Probe the GUI loop's lag (call on the GUI thread: the probe's timer is a Qt timer, see
    :mod:`gui.loop_timer`); return what :func:`detach` needs."""
    # Imported here, not at the top: the bench's probes import this module before Qt may
    # start (the raw process pool forks first), so importing it must not load Qt.
    from .loop_timer import QtProbeTimer

    session.attach_loop(gui_loop, timer=QtProbeTimer())
    return session


def detach(handle: SessionAPI | None) -> None:
    """Stop probing the GUI loop (before that loop closes)."""
    if handle is not None:
        handle.detach_loop()
