"""Show code's shapes: how each model runs the tasks in a script (a loop, an executor, asyncio,
Dask), one template per :attr:`engine.models.ModelEntry.script` shape.
"""

from __future__ import annotations

import textwrap

REPORT = '''
def report(outcomes: list[str], wall: float) -> None:
    """Count what happened to each task; print the counts and the wall time."""
    counts = {k: outcomes.count(k) for k in ("finished", "failed", "timed out", "cancelled")}
    print(" · ".join(f"{k} {v}" for k, v in counts.items() if v))
    print(f"wall {wall:.3f} s")


def outcome(exc: BaseException | None, i: int) -> str:
    if exc is None:
        return "finished"
    if isinstance(exc, TimeoutError):
        print(f"task {i} timed out")
        return "timed out"
    print(f"task {i} failed: {type(exc).__name__}: {exc}")
    return "failed"
'''


def _task_fn() -> str:
    return '''

def task(i: int):
    """One task on its worker: the deadline starts when the task does."""
    deadline = None if TIMEOUT is None else time.monotonic() + TIMEOUT
    return work(i, deadline)
'''


def loop_shape(ff: bool) -> str:
    # fail-fast only where it applies: a script read by people carries no ``if False:``.
    stop = '''
            if outcomes[-1] == "failed":  # fail-fast
                print(f"fail-fast: task {i} failed; the other {TASKS - i - 1} were not started")
                outcomes += ["cancelled"] * (TASKS - i - 1)
                break''' if ff else ""
    return _task_fn() + '''

def main() -> None:
    outcomes: list[str] = []
    t0 = time.perf_counter()
    for i in range(TASKS):
        try:
            task(i)
            outcomes.append("finished")
        except Exception as e:
            outcomes.append(outcome(e, i))''' + stop + '''
    report(outcomes, time.perf_counter() - t0)
'''


def executor_shape(kind: str, ff: bool) -> str:
    stop = '''
        # fail-fast: stop waiting at the first exception and cancel the queued tasks.
        # Running ones cannot be stopped from outside: they finish (their results are
        # still counted), and the pool waits for them on exit.
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            n = sum(f.cancel() for f in pending)
            print(f"fail-fast: a task failed; cancelled {n} queued tasks")''' if ff else ""
    return _task_fn() + f'''

def main() -> None:
    t0 = time.perf_counter()
    with {kind}(max_workers=WORKERS) as pool:
        futures = [pool.submit(task, i) for i in range(TASKS)]''' + stop + '''
        wait(futures)
    outcomes = []
    for i, f in enumerate(futures):
        outcomes.append("cancelled" if f.cancelled() else outcome(f.exception(), i))
    report(outcomes, time.perf_counter() - t0)
'''


def asyncio_shape(ff: bool, limited: bool, executor: bool) -> str:
    if executor:
        call = "await loop.run_in_executor(pool, task, i)"
        note = ("    # run_in_executor: the coroutine waits while a worker process computes.\n"
                "    # The process task checks its own deadline (it cannot be interrupted).\n")
    else:
        call = "await awork(i)"
        note = ""
    timed = (f"    if TIMEOUT is None:\n        return {call}\n"
             f"    async with asyncio.timeout(TIMEOUT):\n        return {call}\n")
    if executor:
        timed = f"    return {call}\n"
    if limited:
        one = ("async def one(i: int, sem: asyncio.Semaphore, loop=None, pool=None):\n"
               "    async with sem:  # at most WORKERS tasks at once\n"
               + note + "        " + timed.replace("\n    ", "\n        ").lstrip())
    else:
        one = "async def one(i: int, sem=None, loop=None, pool=None):\n" + note + timed
    if ff:
        gather = '''
    tasks: list[asyncio.Task] = []
    try:
        async with asyncio.TaskGroup() as tg:  # fail-fast: the first error cancels the rest
            tasks = [tg.create_task(one(i, sem, loop, pool)) for i in range(TASKS)]
    except* Exception as group:
        first = group.exceptions[0]
        print(f"fail-fast: {type(first).__name__}: {first}; the other tasks were cancelled")
    outcomes = []
    for i, t in enumerate(tasks):
        outcomes.append("cancelled" if t.cancelled() else outcome(t.exception(), i))
'''
    else:
        gather = '''
    results = await asyncio.gather(*(one(i, sem, loop, pool) for i in range(TASKS)),
                                   return_exceptions=True)
    outcomes = [outcome(r if isinstance(r, BaseException) else None, i)
                for i, r in enumerate(results)]
'''
    sem = "asyncio.Semaphore(WORKERS)" if limited else "None"
    if executor:
        body = (f"    loop = asyncio.get_running_loop()\n    sem = {sem}\n"
                "    with ProcessPoolExecutor(max_workers=WORKERS) as pool:\n"
                + textwrap.indent(gather.strip("\n"), "    ") + "\n")
    else:
        body = f"    loop = pool = None\n    sem = {sem}\n" + gather.strip("\n") + "\n"
    return ("\n\n" + (_task_fn().strip("\n") + "\n\n\n" if executor else "") + one + f'''

async def amain() -> list[str]:
{body}    return outcomes


def main() -> None:
    t0 = time.perf_counter()
    outcomes = asyncio.run(amain())
    report(outcomes, time.perf_counter() - t0)
''')


def dask_shape(ff: bool, scheduler: str | None) -> str:
    """The Dask pattern: a LocalCluster of single-threaded worker processes (or an existing
    cluster), ``client.map`` and ``client.gather``."""
    if scheduler is None:
        connect = (
            "    # Dask runs a task whose worker died up to 3 more times by default: no retries.\n"
            '    dask.config.set({"distributed.scheduler.allowed-failures": 0})\n'
            "    t0 = time.perf_counter()\n"
            "    cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True)\n"
            "    client = Client(cluster)\n"
            "    client.wait_for_workers(WORKERS)\n"
            '    print(f"cluster start-up {time.perf_counter() - t0:.3f} s")\n')
        close = "        client.close()\n        cluster.close()\n"
    else:
        connect = "    client = Client(SCHEDULER)  # an existing cluster: its own retry settings\n"
        close = "        client.close()\n"
    stop = '''        # fail-fast: at the first failure, cancel the rest. Dask cannot stop a task that
        # is already running: cancelling it only forgets its result.
        for f in as_completed(futures):
            if f.status == "error":
                pending = [g for g in futures if not g.done()]
                client.cancel(pending)
                print(f"fail-fast: a task failed; cancelled {len(pending)} others")
                break
''' if ff else ""
    return _task_fn() + f'''

def main() -> None:
{connect}    try:
        t0 = time.perf_counter()
        futures = client.map(task, range(TASKS), pure=False, retries=0)
{stop}        wait([f for f in futures if not f.cancelled()])
        client.gather([f for f in futures if f.status == "finished"])  # the results, here
        outcomes = []
        for i, f in enumerate(futures):
            if f.status == "cancelled":
                outcomes.append("cancelled")
            else:
                outcomes.append(outcome(f.exception() if f.status == "error" else None, i))
        report(outcomes, time.perf_counter() - t0)
    finally:
{close}'''
