"""Soak and the store's documented limits (issue 8).

* The limits (fast, in the default run): the event log is a ring of ``max_events`` and a reader
  that fell behind is told exactly how many events it missed; task records of *finished* runs
  are evicted oldest run first past ``max_tasks``, records of active runs never are.
* The soak (slow; run it with ``pytest -m slow tests/engine/test_soak.py``): five minutes of a
  mixed run (every model, most workloads, cancels and force kills, crashing workers, a live
  reader and a lagging one) keeps memory bounded and the account exact. ``TASKSCOPE_SOAK_S``
  shortens or lengthens it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import random
import sys
import threading
import time

import psutil
import pytest

import engine
from engine.store import EventStore
from tests.conftest import engine_children
from tests.engine.enginekit import AVAILABLE_MODELS, PROCESS_MODELS, check_invariants


def _rss_mb() -> float:
    gc.collect()
    if sys.platform.startswith("linux"):
        try:  # return freed heap to the OS, so RSS shows what is held, not what malloc caches
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
    return psutil.Process().memory_info().rss / 2**20


# -- the limits -----------------------------------------------------------------------------------
def test_event_ring_drops_the_oldest_and_tells_readers_how_many_they_missed(leak_check) -> None:
    store = EventStore(max_events=1_000)
    seen = dropped_total = 0
    cursor = 0
    with engine.Session(store=store) as s:
        run = s.start(engine.make_spec("threads", "sleep", tasks=3_000, size="0ms", workers=4))
        while not run.wait(0.002):
            evs, cursor, dropped = store.read_events(cursor, limit=97)
            seen += len(evs)
            dropped_total += dropped
            assert len(store._events) <= store.max_events  # noqa: SLF001
        while True:
            evs, cursor, dropped = store.read_events(cursor)
            seen += len(evs)
            dropped_total += dropped
            if not evs:
                break
        # Nothing lost silently: every event was either read or reported missed.
        assert seen + dropped_total == store.event_count
        assert dropped_total > 0  # the ring did overflow
        # A reader that never read gets the newest max_events and the exact count it missed.
        evs, new_cursor, dropped = store.read_events(0)
        assert len(evs) == store.max_events
        assert dropped == store.event_count - store.max_events
        assert new_cursor == store.event_count
        # Task records are not part of the ring: every task's state is still exact.
        tasks = store.tasks(run.run_id)
        assert len(tasks) == 3_000
        assert {t.state.value for t in tasks} == {"finished"}
        assert run.record.counts["finished"] == 3_000
        assert store.duplicate_terminals == 0


def test_samples_ring_is_bounded() -> None:
    store = EventStore(max_samples=50)

    class S:
        def __init__(self, t: int) -> None:
            self.t_ns = t

    store.add_samples(S(i) for i in range(120))
    got, cursor = store.read_samples(0)
    assert [x.t_ns for x in got] == list(range(70, 120))
    assert cursor == 120 == store.sample_count


def test_task_records_of_finished_runs_are_evicted_past_max_tasks(leak_check) -> None:
    store = EventStore(max_tasks=100)
    with engine.Session(store=store) as s:
        a = s.start(engine.make_spec("threads", "sleep", tasks=60, size="0ms"))
        assert a.wait(10)
        b = s.start(engine.make_spec("threads", "sleep", tasks=60, size="5s", workers=4))
        # 120 > 100: the finished run a goes, oldest first; the active run b stays whole.
        assert store.run(a.run_id) is None
        assert store.tasks(a.run_id) == []
        assert store.task(a.first_task_id) is None
        assert len(store.tasks(b.run_id)) == 60
        # Active runs are never evicted, even past the limit.
        c = s.start(engine.make_spec("asyncio", "sleep", tasks=80, size="5s"))
        assert len(store.tasks(b.run_id)) == 60 and len(store.tasks(c.run_id)) == 80
        assert not s.cancel_task(a.first_task_id)  # an evicted task is simply unknown
        s.cancel_all()
        assert b.wait(10) and c.wait(10)
        check_invariants(s, b)
        check_invariants(s, c)
        # Once they are finished, the next run evicts them too.
        d = s.start(engine.make_spec("threads", "sleep", tasks=90, size="0ms"))
        assert d.wait(10)
        assert store.run(b.run_id) is None and store.run(c.run_id) is None
        assert len(store.tasks(d.run_id)) == 90
        assert len(store.tasks()) <= store.max_tasks


# -- the soak ---------------------------------------------------------------------------------------
SOAK_S = float(os.environ.get("TASKSCOPE_SOAK_S", "300"))
WARMUP_S = min(60.0, SOAK_S / 5)
#: Loose: RSS on a busy 2-core machine moves with the allocator; a leak of a run's records
#: (thousands of runs here) would blow far past this.
GROWTH_MB = 60


def _soak_spec(rng: random.Random) -> engine.RunSpec:
    model = rng.choice(AVAILABLE_MODELS)
    workloads = ["sleep", "cpu", "fail", "http", "mixed", "events", "numpy", "file"]
    if model in PROCESS_MODELS:
        workloads.append("crash")
    wl = rng.choice(workloads)
    n = rng.choice([1, 5, 20, 100, 400])
    size = rng.choice(["0ms", "2ms", "10ms", "40ms"])
    if wl in ("events", "cpu", "numpy", "file", "mixed"):
        n = min(n, 20)
    workers = None if model in ("sequential", "asyncio") else rng.choice([1, 2, 4])
    params = None
    if wl in ("fail", "crash"):
        params = {"every": rng.choice([1, 3, 10])}
    if wl == "http":
        params = {"delay": "5ms", "fail_after": rng.choice([0, 0, 50])}
    timeout = rng.choice([None, None, None, "30ms"])
    return engine.make_spec(model, wl, tasks=n, size=size, workers=workers, timeout=timeout,
                            params=params)


@pytest.mark.slow
@pytest.mark.timeout(SOAK_S + 180)
def test_soak_mixed_run_keeps_memory_bounded(leak_check) -> None:
    rng = random.Random(20261121)
    # Limits small enough that every ring and the record store are full well before the
    # warm-up ends: growth after it would be a leak, not a buffer filling up.
    store = EventStore(max_events=100_000, max_tasks=10_000, max_samples=300)
    stop = threading.Event()
    read = {"events": 0, "dropped": 0}

    def live_reader() -> None:  # like the GUI's frame tick: drain every ~33 ms
        cursor = 0
        while not stop.is_set():
            evs, cursor, dropped = store.read_events(cursor)
            read["events"] += len(evs)
            read["dropped"] += dropped
            time.sleep(0.033)

    s = engine.Session(store=store)
    reader = threading.Thread(target=live_reader, name="soak-reader", daemon=True)
    reader.start()
    rss: list[tuple[float, float]] = []
    n_runs = n_tasks = 0
    lag_cursor = 0
    lag_dropped = 0
    t0 = time.monotonic()
    next_sample = t0
    active: list[engine.Run] = []
    try:
        while time.monotonic() - t0 < SOAK_S:
            active = [r for r in active if not r.wait(0)]
            while len(active) < 3:
                run = s.start(_soak_spec(rng))
                active.append(run)
                n_runs += 1
                n_tasks += run.n
                roll = rng.random()
                if roll < 0.15:
                    s.cancel_run(run.run_id)
                elif roll < 0.2:
                    s.cancel_run(run.run_id, force=True)
                elif roll < 0.25:
                    s.cancel_task(run.first_task_id, force=True)
            if rng.random() < 0.01:
                s.cancel_all()
            now = time.monotonic()
            if now >= next_sample:
                rss.append((now - t0, _rss_mb()))
                next_sample = now + 5
                # The lagging reader: one read every ~5 s, told what it missed.
                evs, lag_cursor, dropped = store.read_events(lag_cursor)
                lag_dropped += dropped
                assert len(store._events) <= store.max_events  # noqa: SLF001
                active_tasks = sum(r.n for r in active)
                assert len(store.tasks()) <= store.max_tasks + active_tasks
            time.sleep(0.01)
        s.cancel_all()
        for r in active:
            assert r.wait(30), f"run {r.run_id} ({r.spec}) did not end"
    finally:
        stop.set()
        reader.join(5)
        report = s.shutdown()
    assert report.clean, report
    # The account stayed exact through it all.
    assert store.duplicate_terminals == 0 and store.unknown_events == 0
    for rec in store.runs():
        assert rec.done
        tasks = store.tasks(rec.run_id)
        assert all(t.state.terminal for t in tasks)
        assert sum(v for k, v in rec.counts.items()
                   if k in ("finished", "failed", "cancelled", "timed_out")) == len(tasks)
    evs, cursor, dropped = store.read_events(read["events"] + read["dropped"])
    read["events"] += len(evs)
    read["dropped"] += dropped
    assert read["events"] + read["dropped"] == store.event_count
    assert not engine_children()
    # Memory: after the warm-up, RSS stays within a loose band (no per-run leak).
    settled = [m for t, m in rss if t >= WARMUP_S]
    base = settled[0] if settled else rss[0][1]
    peak = max(m for _, m in rss)
    print(f"soak {SOAK_S:.0f}s: {n_runs} runs, {n_tasks} tasks, {store.event_count} events "
          f"({lag_dropped} missed by the lagging reader); RSS {rss[0][1]:.0f} MB at start, "
          f"{base:.0f} MB after warm-up, peak {peak:.0f} MB, end {rss[-1][1]:.0f} MB")
    assert max(settled, default=base) - base < GROWTH_MB, [f"{t:.0f}s {m:.0f}MB" for t, m in rss]
    # The session forgets runs the store evicted (it kept every run it ever started before).
    assert len(s.runs()) <= len(store.runs()) + 3
