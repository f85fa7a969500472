"""A task of size S takes S: the built-in workloads under sequential, on a quiet machine.

People read walls, speed-ups and "lost per task" off these tasks, so an uncontended task must
take its size, whatever the machine's speed of the moment and whatever rate was cached. The
precise target (median within 5%) is the bench's (``size.cpu.sequential``); here the band is
loose, and a miss counts only when controls taken just before and after the run show the
machine was quiet enough to give a task its size: a plain loop bounded by its own CPU time
ran in about that time, the disk kept its pace, a short sleep woke on time. When no attempt
had a quiet machine the test is skipped with the figures, as the physics tests are.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest

from engine import make_spec
from engine.workloads import calibrate
from tests.engine.enginekit import run_to_end

SIZE_S = 0.2
TASKS = 4
#: Median task duration / size must fall within this band (the bench's target is 0.95-1.05).
BAND = (0.85, 1.15)
#: A control run this much slower than its own clock says (wall / CPU, wall / sleep) means
#: other work took the core, and a task of size S could not take S.
QUIET = 1.08


def _cpu_control(seconds: float = 0.05) -> float:
    """Wall / CPU time of a plain loop, on a fresh thread, bounded by its own CPU time."""
    out: list[float] = []

    def loop() -> None:
        c0, w0 = time.thread_time(), time.perf_counter()
        while time.thread_time() - c0 < seconds:
            calibrate.cpu_chunk(2_000)
        out.append((time.perf_counter() - w0) / (time.thread_time() - c0))

    t = threading.Thread(target=loop)
    t.start()
    t.join()
    return out[0]


def _sleep_control() -> float:
    t = time.perf_counter()
    time.sleep(0.02)
    return (time.perf_counter() - t) / 0.02


def _controls(workload: str) -> dict[str, float]:
    got = {"cpu": _cpu_control()}
    if workload == "sleep":
        got["sleep"] = _sleep_control()
    if workload == "file":
        got["disk_ms"] = calibrate.file_round_s(calibrate.FILE_PROBE_TRIALS) * 1e3
    return got


def _quiet(before: dict[str, float], after: dict[str, float]) -> bool:
    if max(before["cpu"], after["cpu"], before.get("sleep", 1), after.get("sleep", 1)) > QUIET:
        return False
    if "disk_ms" in before:  # the disk kept its pace (it drifts by a third second to second)
        a, b = before["disk_ms"], after["disk_ms"]
        return max(a, b) / min(a, b) < 1.15
    return True


@pytest.mark.parametrize("workload", ["cpu", "numpy", "sleep", "file"])
def test_a_task_of_size_s_takes_s_under_sequential(session, monkeypatch, workload: str) -> None:
    """4 tasks of 200 ms, sequential: the median task takes 170-230 ms on a quiet machine.

    The cached rates are first set to twice the machine's (as a rate cached at the machine's
    fastest moment was, against a slower moment now): a size must not depend on them. Before
    the fix, cpu, numpy and file tasks ran "at least the calibrated work at the fastest rate
    seen" and took 1.1-1.5 times their size, here twice it."""
    fast = {k: 2 * v for k, v in calibrate.calibration().items()}
    monkeypatch.setattr(calibrate, "_cached", fast)
    monkeypatch.setattr(calibrate, "_provisional_at", 0.0)
    tried = []
    for _ in range(3):
        before = _controls(workload)
        run = run_to_end(session, "sequential", workload, tasks=TASKS, size=f"{SIZE_S}s")
        after = _controls(workload)
        tasks = session.store.tasks(run.run_id)
        assert all(t.state.value == "finished" and t.progress == 1.0 for t in tasks)
        ratio = statistics.median(t.duration_ns for t in tasks) / 1e9 / SIZE_S
        paced = (f" ({run.calib['file_rounds_per_s']:.0f} rounds/s timed at the run's start)"
                 if workload == "file" else "")
        fig = (f"{workload}: median {ratio:.3f} x size, tasks "
               f"{', '.join(f'{t.duration_ns / 1e6:.0f}' for t in tasks)} ms{paced}, wall "
               f"{run.record.wall_s:.3f} s; controls before {before}, after {after}")
        print(fig)
        if BAND[0] <= ratio <= BAND[1]:
            return
        tried.append((_quiet(before, after), fig))
    fair = [f for q, f in tried if q]
    if len(fair) < 2:  # one quiet-looking miss on a busy machine proves nothing
        pytest.skip("machine too busy to give a task its size: " + "; ".join(f for _, f in tried))
    pytest.fail(f"median task not within {BAND} of its size on a quiet machine: "
                + "; ".join(fair))


def _voluntary_switches() -> dict[str, int]:
    """Voluntary context switches of each thread of this process, by thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, int] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as f:
                line = next(x for x in f if x.startswith("voluntary_ctxt_switches"))
        except (OSError, StopIteration):
            continue  # it ended
        out[names.get(int(tid), tid)] = int(line.split()[1])
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_our_threads_rarely_take_the_gil_from_a_cpu_bound_task(session) -> None:
    """While a CPU-bound task runs under sequential, the engine's own threads wake rarely.

    Each wake takes the GIL from the task, which CPython hands over only after the task kept
    it a whole switch interval; on a 2-core VM each hand-over cost the task 0.1-0.6 ms of wall
    time, our machinery's time shown as the model's. Measured here before the fix, per
    second (voluntary switches, which also count waits for the GIL): flusher 284-356 (a turn
    every 5 ms), engine loop 115-129 (its lag probe every 20 ms though nothing ran on it),
    GIL probe 386-567 (polling all the time); after: 53-62, 13, 117-136."""
    run = session.start(make_spec("sequential", "cpu", tasks=1, size="1.6s"))
    time.sleep(0.4)  # into its stride: started, its events trickling
    a, t0 = _voluntary_switches(), time.monotonic()
    time.sleep(1.0)
    b, dt = _voluntary_switches(), time.monotonic() - t0
    assert run.wait(30)
    rate = {name: (b[name] - a[name]) / dt for name in b if name in a}
    print({k: round(v) for k, v in rate.items()})
    assert rate["taskscope-flusher"] < 120, rate
    assert rate["taskscope-engine-loop"] < 40, rate
    assert rate["taskscope-gil-probe"] < 200, rate
