"""The ``dask`` model: per-task overhead against raw Dask on the same cluster, and start-up.

Both sides run on one LocalCluster started here the way the engine starts its own (2
single-threaded workers): raw ``client.map`` + ``client.gather`` of a no-op, and an engine run
of no-op tasks on that cluster (``scheduler=`` its address), alternating over several rounds,
each timed from submission to holding the last result (for the engine: every task's terminal
event in the store, as the engine stamps it; the caller blocks meanwhile on both sides).
Before timing, both sides ran once, so the workers have imported what each needs and the
engine's session holds its connection.
"""

from __future__ import annotations

import statistics
import time

from ..clock import now_ns
from ..models.dask.cluster import KILL_S, local_cluster
from ..session import Session
from ..spec import make_spec
from .figures import Figure

#: TaskScope's addition must stay under this share of raw Dask's own cost per task (issue 15).
SHARE = 0.10


def _noop(x: int) -> int:
    return x


def _raw(client: object, n: int) -> float:
    t = time.perf_counter()
    futs = client.map(_noop, range(n), pure=False)  # type: ignore[attr-defined]
    client.gather(futs)  # type: ignore[attr-defined]
    return time.perf_counter() - t


def _engine(session: Session, address: str, n: int) -> float:
    """Seconds from submission until the last task's terminal event reached the store
    (``Run.ended_ns``, stamped by the engine on its clock). The caller blocks meanwhile, as
    ``client.gather`` does: polling ``run.ended`` every 0.5 ms took the GIL 2000 times a
    second from the scheduler, which runs in this process, and cost the engine's side alone
    about 55 µs of CPU a task (measured per thread over 1000 no-op tasks)."""
    spec = make_spec("dask", "sleep", n, 0.0, 2, options={"scheduler": address})
    t = now_ns()
    run = session.start(spec)
    if not run.wait(60) or run.ended_ns is None:
        raise RuntimeError(f"a {n}-task dask run did not end within 60 s")
    return (run.ended_ns - t) / 1e9


def _started_latency(session: Session, address: str, reps: int) -> list[float]:
    """Milliseconds from a task's start on its worker (its own stamp: same machine, same
    clock) until the engine's store shows it running: the batch's trip (the engine's own socket,
    these workers being local) plus ours,
    what the window waits to draw a new bar."""
    out = []
    for _ in range(reps):
        run = session.start(make_spec("dask", "sleep", 1, "100ms", 1,
                                      options={"scheduler": address}))
        tid = run.first_task_id
        while True:
            rec = session.store.task(tid)
            if rec is not None and rec.start_ns is not None:
                out.append((time.monotonic_ns() - rec.start_ns) / 1e6)
                break
            time.sleep(0.0002)
        run.wait(30)
    return out


def _cancel_latency(session: Session, address: str, reps: int, force: bool) -> list[float]:
    """Milliseconds from ``cancel_task`` on a running cpu task to its terminal event."""
    out = []
    for _ in range(reps):
        run = session.start(make_spec("dask", "cpu", 1, "30s", 1, options={"scheduler": address}))
        tid = run.first_task_id
        while (rec := session.store.task(tid)) is None or rec.start_ns is None:
            time.sleep(0.001)
        t = time.monotonic_ns()
        session.cancel_task(tid, force=force)
        while not session.store.task(tid).state.terminal:
            time.sleep(0.0005)
        out.append((session.store.task(tid).end_ns - t) / 1e6)
        run.wait(30)
    return out


def _p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))]


def dask_figures(quick: bool) -> list[Figure]:
    """``overhead.dask.noop`` (µs per task, against 10% of raw Dask's own per-task cost
    measured in the same rounds), ``pipeline.dask.started_latency`` (a start on a worker to
    the store, ms), ``cancel.dask.p99`` and ``cancel.dask.force.p99`` (ms), and
    ``startup.dask.cluster`` (seconds, reported)."""
    from distributed import Client

    n = 300 if quick else 1000
    # Eight rounds, not four: on 2 cores a 1000-task round of either side swings by 10-20%
    # (rounds from -104 to +350 µs a task on a quiet machine), as large as the target itself.
    rounds = 2 if quick else 8
    t0 = time.perf_counter()
    lc = local_cluster(2)
    client = Client(lc, set_as_default=False)
    client.wait_for_workers(2)
    startup = time.perf_counter() - t0
    try:
        with Session() as s:
            _raw(client, 50)
            _engine(s, lc.scheduler_address, 50)
            pers: list[float] = []
            raws: list[float] = []
            engs: list[float] = []
            for k in range(rounds):
                if k % 2:
                    eng = _engine(s, lc.scheduler_address, n)
                    raw = _raw(client, n)
                else:
                    raw = _raw(client, n)
                    eng = _engine(s, lc.scheduler_address, n)
                pers.append((eng - raw) / n * 1e6)
                raws.append(raw / n * 1e6)
                engs.append(eng / n * 1e6)
            reps = 8 if quick else 20
            started = _started_latency(s, lc.scheduler_address, reps)
            coop = _cancel_latency(s, lc.scheduler_address, reps, False)
            forced = _cancel_latency(s, lc.scheduler_address, max(3, reps // 4), True)
    finally:
        client.close()
        t1 = time.perf_counter()
        lc.close(timeout=10)
        close = time.perf_counter() - t1
    per = statistics.median(pers)
    raw_us = statistics.median(raws)
    return [
        Figure("overhead.dask.noop",
               f"overhead per task, dask, no-op ({n} tasks vs client.map + client.gather)",
               round(per, 1), "µs", round(SHARE * raw_us, 1),
               note=(f"median of {rounds} alternating rounds (each {min(pers):.1f} to "
                     f"{max(pers):.1f}); engine {statistics.median(engs):.1f} µs/task, raw "
                     f"{raw_us:.1f} µs/task; target: {SHARE:.0%} of raw Dask's own cost"),
               extra={"rounds_us": [round(x, 2) for x in pers],
                      "raw_us": [round(x, 2) for x in raws],
                      "engine_us": [round(x, 2) for x in engs]}),
        Figure("pipeline.dask.started_latency",
               "a task's start on a Dask worker to the engine's store (median)",
               round(statistics.median(started), 1), "ms",
               note=f"max {max(started):.1f} ms over {len(started)} tasks; over the engine's "
                    f"own socket (local workers)",
               extra={"ms": [round(x, 2) for x in started]}),
        Figure("cancel.dask.p99", "cancel latency p99, dask (cooperative, the task's flag)",
               round(_p(coop, 0.99), 1), "ms", 1000.0,
               note=f"p50 {statistics.median(coop):.1f} ms over {len(coop)} cancels: the flag "
                    f"goes to every worker by Client.run; the ending comes back with the task's events"),
        Figure("cancel.dask.force.p99", "cancel latency p99, dask (force: its worker restarted)",
               round(_p(forced, 0.99), 1), "ms",
               note=f"p50 {statistics.median(forced):.1f} ms over {len(forced)} kills through "
                    f"the nanny (it waits {0.8 * KILL_S * 1e3:.0f} ms, then SIGKILL)"),
        Figure("startup.dask.cluster", "start-up: LocalCluster of 2 workers + client",
               round(startup, 2), "s",
               note=f"2 single-threaded worker processes (spawn) until both joined; closing "
                    f"it took {close:.2f} s",
               extra={"close_s": round(close, 2)}),
    ]
