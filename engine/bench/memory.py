"""Memory: what the store holds per retained event (tracemalloc, realistic progress events)."""

from __future__ import annotations

import gc
import tracemalloc

from ..clock import now_ns
from ..events import Event, Kind
from ..store import EventStore
from .figures import Figure


def memory_figure() -> Figure:
    """Bytes held per 100k retained events in the store (tracemalloc, realistic events)."""
    store = EventStore(max_events=200_000)
    store.add_run(1, None, 1, 100, now_ns())
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t = now_ns()
    batch: list[Event] = []
    for i in range(100_000):
        batch.append(Event(1, 1 + i % 100, Kind.PROGRESS, t + i, 4242, 4243, "run1-thread_0",
                           "", i % 2, i / 100_000))
        if len(batch) == 1000:
            store.append(batch)
            batch = []
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return Figure("memory.per_100k_events", "memory per 100k retained events",
                  round(used / 2**20, 1), "MiB", 32,
                  note=f"{used / 100_000:.0f} bytes per event; the store keeps at most "
                       f"{EventStore().max_events:,} events")
