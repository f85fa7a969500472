"""How in-process events reach the store: in batches a few ms apart, and a run's last at once."""

from __future__ import annotations

import statistics

from engine import make_spec
from engine.batcher import FLUSH_S

from .enginekit import check_invariants


def test_short_tasks_do_not_wake_the_flusher_for_each_event(session) -> None:
    """2 threads of 1 ms tasks put a start or an end every 0.25 ms. The flusher used to wake
    at each one (its trickle mode ended its wait on any start or end): 40 µs of CPU a task,
    taking the GIL from the workers. A turn now lasts at least FLUSH_S, whatever comes."""
    batches = 0
    append = session.store.append

    def counting(batch):  # the flusher's ingest reads session.store.append at each call
        nonlocal batches
        batches += 1
        return append(batch)

    session.store.append = counting
    run = session.start(make_spec("threads", "sleep", 300, 0.001, 2))
    assert run.wait(30)
    wall_s = (run.ended_ns - run.record.start_ns) / 1e9
    check_invariants(session, run)
    # 600 starts and ends over ~0.17 s: about 600 batches before, at most one a FLUSH_S now
    # (doubled, plus a few, for a turn a loaded machine splits).
    assert batches <= 2 * wall_s / FLUSH_S + 10, (batches, wall_s)


def test_a_run_ends_when_its_last_task_does(session) -> None:
    """The runner flushes its run's last events itself: the caller holds the last result at
    once, not at the flusher's next turn (up to FLUSH_S later, 2.5 ms on average)."""
    for model in ("threads", "asyncio"):
        lags = []
        for _ in range(7):
            run = session.start(make_spec(model, "sleep", 20, 0.001, 2))
            assert run.wait(30)
            last = max(t.end_ns for t in session.store.tasks(run.run_id))
            lags.append((run.ended_ns - last) / 1e6)
        assert statistics.median(lags) < 0.4 * FLUSH_S * 1e3, (model, lags)
