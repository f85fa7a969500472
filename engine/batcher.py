"""The batcher: events from workers in this process reach the store in batches, not one by one.

In-process workers (threads, coroutines, the engine's own bookkeeping) put events into a
lock-free :class:`~engine.context.EventBuffer`; one flusher thread moves them into the store
with one call per batch. Worker processes and clusters send batches of their own and call the
session's ``ingest`` directly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .context import EventBuffer
from .events import Event

FLUSH_S = 0.005
IDLE_FLUSHES = 20  # 100 ms without events, then the flusher sleeps until the next one
#: The flusher's turn while events only trickle in (a batch smaller than FLOOD_EVENTS): the
#: progress of CPU-bound tasks, 100 events a second each. See Batcher._main.
TRICKLE_FLUSH_S = 0.05
FLOOD_EVENTS = 64


class Batcher:
    """One flusher thread moving buffered events into ``ingest`` (see the module docstring)."""

    def __init__(self, ingest: Callable[[list[Event]], None]) -> None:
        self._ingest = ingest
        self._wake = threading.Event()
        self._buffer = EventBuffer(self._wake)
        #: Put an event (any thread; no lock: ``deque.append`` is atomic).
        self.put = self._buffer.put
        self._stop = threading.Event()
        #: Held while a batch is taken and ingested: :meth:`flush` may run on another thread
        #: (a run's last worker, the session's shutdown) while the flusher runs, and two
        #: batches must reach the store in the order their events were put.
        self._flush_lock = threading.Lock()
        self.thread = threading.Thread(target=self._main, name="taskscope-flusher", daemon=True)
        self.thread.start()

    @property
    def native_id(self) -> int | None:
        return self.thread.native_id

    def flush(self) -> None:
        """Move what is buffered into the store now (on the calling thread; any thread)."""
        if len(self._buffer):
            with self._flush_lock:
                if len(self._buffer):
                    self._ingest(self._buffer.take())

    def _main(self) -> None:
        """Move buffered events into the store every ``FLUSH_S`` while they flow; after
        ``IDLE_FLUSHES`` empty turns, sleep until a producer puts one (an idle window would
        otherwise wake this thread 200 times a second for nothing: ~0.5% of a core).

        While events only trickle in (the progress of CPU-bound tasks), a turn lasts
        ``TRICKLE_FLUSH_S`` instead, and any event but progress (a start, an end, a cancel
        request) ends it at once. Every turn takes the GIL, and a CPU-bound thread that holds
        it hands it over only after a whole switch interval; on a 2-core VM each hand-over
        cost that thread 0.1-0.6 ms of wall time, so turns every 5 ms lengthened every
        in-process model's CPU-bound tasks by a few percent: our machinery's time, shown as
        theirs.

        A batch that held a start or an end (short tasks) is followed by an ordinary turn of
        ``FLUSH_S``, one wake; a long turn woken early by one waits out the rest of
        ``FLUSH_S`` before it flushes. Flushing at each start and end (the flusher's old way)
        woke it for nearly every event of short tasks: 4,000 times a second for 2 threads
        running 1 ms tasks, 40 µs of CPU per task, each wake taking the GIL from the workers
        handing their results back. A run's last task is not kept waiting for a turn: its
        runner flushes it at once (``RunSink.flush``)."""
        buf = self._buffer
        wake = self._wake
        stop = self._stop
        idle = 0
        trickle = False
        while not stop.is_set():
            n = len(buf)
            if n:
                trickle = n < FLOOD_EVENTS and not buf.urgent()
                self.flush()
                idle = 0
            else:
                idle += TRICKLE_FLUSH_S / FLUSH_S if trickle else 1
                if idle >= IDLE_FLUSHES:
                    trickle = False
                    buf.sleeping = True
                    woke = True
                    if not len(buf):  # checked after announcing: a put now wakes us
                        woke = wake.wait(1.0)
                    wake.clear()
                    buf.sleeping = False
                    if woke or len(buf):
                        idle = 0
                    # else: the wait only timed out (its safety net): straight back to sleep,
                    # not IDLE_FLUSHES more turns at FLUSH_S (~19 wakes a second when idle).
                    continue
            if trickle:
                turn = time.monotonic() + FLUSH_S
                buf.dozing = True
                if not buf.urgent():  # checked after announcing: an urgent put now wakes us
                    wake.wait(TRICKLE_FLUSH_S)
                wake.clear()
                buf.dozing = False
                left = turn - time.monotonic()
                if left > 0:  # woken early: flush no more often than every FLUSH_S
                    stop.wait(left)
            else:
                stop.wait(FLUSH_S)
        self.flush()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the flusher thread, then move whatever is still buffered."""
        self._stop.set()
        self._wake.set()
        self.thread.join(timeout)
        self.flush()
