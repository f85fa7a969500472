"""The engine in a process of its own, for a front end that must stay responsive.

Why: a window that hosts the engine shares one GIL with it. With the engine in the window's
process, ``taskscope bench`` measured GUI-loop lag p99 of 178 ms while 10,000 coroutines ran on
the engine loop, and 237 ms while worker processes flooded the event pipeline, although each
frame took ~3 ms: the engine's Python threads (the loop, the pool readers unpickling batches,
the store's ingest) held the GIL 35-57% of the time, and the GUI thread queued for it on every
timer. Here the engine runs in a spawned process (Qt-free, like the engine itself), so nothing
the engine does can hold the window's GIL; and threads runs in that process behave exactly as
headless ones, with no GUI thread competing with them.

Shape::

    front end process                         engine process (spawned)
    RemoteSession ── commands, one pipe ──▶   command loop (main thread) → Session
    MirrorStore  ◀── updates, another ────    publisher thread
                 ── acks (+ front-end loop lag) ──▶

One module a job:

* :mod:`~engine.remote.client`: the front end's side, :class:`RemoteSession` (which satisfies
  :class:`engine.api.SessionAPI`) and :class:`MirrorStore`, the store it keeps up to date;
* :mod:`~engine.remote.process`: starting the engine process, watching for its death, ending
  it and every process under it;
* :mod:`~engine.remote.publisher`: the engine's side of the updates (state, not events; nothing
  polls);
* :mod:`~engine.remote.server`: the engine's command loop, commands dispatched by a table;
* :mod:`~engine.remote.wire`: every message both ends exchange, and the :class:`~.wire.Op` enum;
* :mod:`~engine.remote.multi`: :class:`Engines`, engine processes on several interpreters
  behind one session and one store (the window's Interpreter selector).

Clean exits: the engine process shuts its session down (workers and all) on the shutdown
command, when the front end's pipe closes (the front end died) or on SIGTERM; on Linux it also
asks the kernel for SIGTERM when its parent dies. If it is killed outright, the front end kills
its process group.
"""

from __future__ import annotations

from ..api import Pumped
from .client import EngineGone, MirrorStore, RemoteCompareJob, RemoteRun, RemoteSession
from .multi import Engines
from .wire import RemoteError

__all__ = ["EngineGone", "Engines", "MirrorStore", "Pumped", "RemoteCompareJob", "RemoteError",
           "RemoteRun", "RemoteSession"]
