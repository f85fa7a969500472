"""Event pipeline throughput: events per second from worker processes into the store.

The ``events`` workload floods the pipeline; the rate counts from the first task start, so pool
start-up is not pipeline time. :func:`pipeline_rate` is shared with :mod:`gui.bench`, which
measures the same run with the window open and draining.
"""

from __future__ import annotations

from ..session import Session
from ..spec import make_spec
from ..store import EventStore
from .figures import Figure

#: The target: events per second into the store, with or without the window.
TARGET_EVENTS_PER_S = 200_000


def pipeline_rate(store: EventStore, run_id: int, events: int) -> tuple[float, float]:
    """``(events/s, span s)`` of a finished ``events`` run that added ``events`` to ``store``
    (a session's, or the window's mirror of the engine's), counted from its first task start
    (pool start-up is not pipeline time)."""
    rec = store.run(run_id)
    if rec is None:
        raise KeyError(f"no run {run_id} in the store")
    starts = [t.start_ns for t in store.tasks(run_id) if t.start_ns]
    span = ((rec.end_ns or 0) - min(starts)) / 1e9 if starts else (rec.wall_s or 0.0)
    return (events / span if span > 0 else 0.0), span


def pipeline_figure(quick: bool, seconds: float | None = None,
                    session: Session | None = None) -> Figure:
    """Events per second from worker processes into the store (the ``events`` workload)."""
    secs = seconds or (0.5 if quick else 2.0)
    own = session is None
    s = session or Session(sample_hz=None)
    try:
        before = s.store.event_count
        run = s.start(make_spec("processes", "events", 2, secs, 2))
        run.wait(60)
        n = s.store.event_count - before
        rate, span = pipeline_rate(s.store, run.run_id, n)
    finally:
        if own:
            s.shutdown()
    return Figure("pipeline.events_per_s", "events/s from 2 worker processes into the store",
                  round(rate), "ev/s", TARGET_EVENTS_PER_S, sense="min",
                  note=f"{n:,} events in {span:.2f} s")
