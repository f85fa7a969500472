"""The bounded event store: one ending per task, incremental readers, documented limits."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from engine import Event, EventStore, Kind, State


def _store(n: int = 3, **kw) -> EventStore:
    s = EventStore(**kw)
    s.add_run(1, SimpleNamespace(model="threads"), 1, n, 100)
    return s


def ev(task: int, kind: str, t: int, **kw) -> Event:
    return Event(1, task, kind, t, pid=kw.pop("pid", 10), tid=kw.pop("tid", 11), **kw)


def test_add_run_queues_every_task() -> None:
    s = _store(3)
    assert [t.state for t in s.tasks(1)] == [State.QUEUED] * 3
    assert [t.index for t in s.tasks(1)] == [0, 1, 2]
    assert s.run(1).counts == {"queued": 3}
    events, cursor, dropped = s.read_events(0)
    assert [e.kind for e in events] == [Kind.QUEUED] * 3 and cursor == 3 and dropped == 0


def test_lifecycle_and_counts() -> None:
    s = _store(3)
    ended = s.append([ev(1, Kind.STARTED, 200, core=1), ev(1, Kind.PROGRESS, 250, value=0.5)])
    assert ended == []
    r = s.task(1)
    assert (r.state, r.start_ns, r.progress, r.pid, r.tid, r.core) == (
        State.RUNNING, 200, 0.5, 10, 11, 1)
    assert s.run(1).counts == {"queued": 2, "running": 1}
    ended = s.append([ev(1, Kind.FINISHED, 300)])
    assert ended == [(1, 1, State.FINISHED)]
    assert s.task(1).duration_ns == 100 and s.task(1).progress == 1.0
    s.append([Event(1, 2, Kind.CANCELLED, 310, info={"reason": "user"})])  # never started
    s.append([ev(3, Kind.STARTED, 320), ev(3, Kind.FAILED, 330, info={
        "type": "ValueError", "message": "bad", "traceback": "tb"})])
    c = s.run(1).counts
    assert c == {"queued": 0, "running": 0, "finished": 1, "cancelled": 1, "failed": 1}
    assert s.task(2).start_ns is None and s.task(2).reason == "user"
    assert s.task(3).error == {"type": "ValueError", "message": "bad", "traceback": "tb"}


def test_exactly_one_ending() -> None:
    s = _store(1)
    s.append([ev(1, Kind.STARTED, 200), ev(1, Kind.CANCELLED, 300)])
    n = s.event_count
    ended = s.append([ev(1, Kind.FINISHED, 400), ev(1, Kind.PROGRESS, 410), ev(1, Kind.FAILED, 420)])
    assert ended == []
    assert s.duplicate_terminals == 2
    assert s.event_count == n  # nothing after the end is stored
    assert s.task(1).state is State.CANCELLED and s.task(1).end_ns == 300
    assert s.run(1).counts["cancelled"] == 1 and "finished" not in s.run(1).counts


def test_unknown_tasks_are_counted_not_stored() -> None:
    s = _store(1)
    s.append([Event(9, 999, Kind.STARTED, 1)])
    assert s.unknown_events == 1 and s.event_count == 1


def test_cancel_request_that_overtakes_started() -> None:
    s = _store(1)
    s.append([Event(1, 1, Kind.CANCEL_REQUESTED, 150, info={"reason": "user"})])
    s.append([ev(1, Kind.STARTED, 140)])
    r = s.task(1)
    assert r.state is State.CANCEL_REQUESTED and r.cancel_requested_ns == 150
    s.append([ev(1, Kind.CANCELLED, 160, info={"reason": "cancelled"})])
    assert s.task(1).state is State.CANCELLED


def test_the_requesters_reason_survives_the_workers_generic_one() -> None:
    """A worker process only sees a flag; the reason is the requester's ("fail-fast: ...")."""
    s = _store(1)
    s.append([ev(1, Kind.STARTED, 140)])
    s.append([Event(1, 1, Kind.CANCEL_REQUESTED, 150, info={"reason": "fail-fast: task 0 failed"})])
    assert s.task(1).state is State.CANCEL_REQUESTED
    s.append([ev(1, Kind.CANCELLED, 160, info={"reason": "cancelled"})])
    assert s.task(1).reason == "fail-fast: task 0 failed"


def test_readers_read_incrementally_and_independently() -> None:
    s = _store(2)
    a, ca, _ = s.read_events(0)
    s.append([ev(1, Kind.STARTED, 200)])
    b, cb, _ = s.read_events(ca)
    assert [e.kind for e in b] == [Kind.STARTED]
    again, cc, _ = s.read_events(cb)
    assert again == [] and cc == cb
    everything, _, _ = s.read_events(0)
    assert len(everything) == 3
    some, c1, _ = s.read_events(0, limit=2)
    assert len(some) == 2 and c1 == 2


def test_event_ring_drops_the_oldest_and_says_so() -> None:
    s = _store(1, max_events=10)
    s.append([ev(1, Kind.STARTED, 200)])
    s.append([ev(1, Kind.PROGRESS, 200 + i, value=i / 30) for i in range(30)])
    assert s.event_count == 32
    events, cursor, dropped = s.read_events(0)
    assert dropped == 22 and len(events) == 10 and cursor == 32
    assert events[-1].t_ns == 229
    # The task record is exact whatever the ring dropped.
    assert s.task(1).state is State.RUNNING and s.task(1).start_ns == 200


def test_sample_ring() -> None:
    s = EventStore(max_samples=5)
    s.add_samples(SimpleNamespace(t_ns=i) for i in range(8))
    s.add_sample(SimpleNamespace(t_ns=8))
    got, cursor = s.read_samples(0)
    assert [x.t_ns for x in got] == [4, 5, 6, 7, 8] and cursor == 9
    assert s.read_samples(cursor) == ([], 9)


def test_eviction_takes_finished_runs_only_oldest_first() -> None:
    s = EventStore(max_tasks=5)
    s.add_run(1, None, 1, 3, 0)
    s.append([Event(1, t, Kind.CANCELLED, 1) for t in (1, 2, 3)])
    s.end_run(1, 1)
    s.add_run(2, None, 4, 3, 2)  # 6 > 5: run 1 (done) goes
    assert s.run(1) is None and s.task(1) is None
    s.add_run(3, None, 7, 3, 3)  # run 2 is still active: kept, over the limit
    assert s.run(2) is not None and len(s.tasks(2)) == 3 and len(s.tasks(3)) == 3


def test_concurrent_producers_keep_counts_exact() -> None:
    n = 4000
    s = EventStore()
    s.add_run(1, None, 1, n, 0)

    def produce(lo: int) -> None:
        for t in range(lo, n + 1, 4):
            s.append([ev(t, Kind.STARTED, 1), ev(t, Kind.PROGRESS, 2), ev(t, Kind.FINISHED, 3)])

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(1, 5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert s.run(1).counts == {"queued": 0, "running": 0, "finished": n}
    assert s.event_count == 4 * n and s.duplicate_terminals == 0


def test_the_event_ring_is_left_out_of_garbage_collection() -> None:
    """A ring of namedtuples was up to a million objects every full collection walked again:
    3-6 µs per task of every run in the process. Plain tuples of plain fields drop out of the
    collector's lists after its first pass, and readers still get Events."""
    import gc

    s = _store(2)
    s.append([ev(1, Kind.STARTED, 200), ev(1, Kind.FINISHED, 300)])
    gc.collect()
    held = list(s._events)  # noqa: SLF001 - what the ring holds is the point here
    assert len(held) == 4 and not any(gc.is_tracked(t) for t in held)
    events, _, _ = s.read_events(0)
    assert all(type(e) is Event for e in events)
    assert events[2] == ev(1, Kind.STARTED, 200) and events[3].kind == Kind.FINISHED
