"""Show code: the standalone Python script equivalent to a run spec, without TaskScope.

:func:`generate` turns a :class:`~engine.spec.RunSpec` into a script a user can copy and run
with a plain ``python`` (3.11+: it uses ``asyncio.timeout`` and ``asyncio.TaskGroup``). The
pattern per model:

=====================  =============================================================
sequential             a plain ``for`` loop
asyncio                ``asyncio.gather`` (collect) or ``asyncio.TaskGroup`` (fail-fast),
                       ``asyncio.timeout`` per task, a ``Semaphore`` for a worker limit
threads                ``ThreadPoolExecutor`` + ``wait(..., FIRST_EXCEPTION)`` for fail-fast
processes              ``ProcessPoolExecutor`` under ``if __name__ == "__main__":``
asyncio-processes      ``loop.run_in_executor`` with a ``ProcessPoolExecutor``
dask                   ``LocalCluster`` (or ``Client(SCHEDULER)``) + ``client.map`` +
                       ``client.gather``; ``as_completed`` for fail-fast
=====================  =============================================================

Built-in workloads are inlined as small equivalent functions (the cpu workload is a sum of
squares whose iteration count comes from this machine's calibration, so the script does the
same amount of work as the engine's task). Custom functions are imported by their reference.

Timeouts: coroutines get ``asyncio.timeout``. A thread or a process task cannot be interrupted
from outside, so there the inlined work checks a deadline between chunks of work (the same
cooperative check the engine uses); an imported custom function is only subject to it if it
takes a ``ctx`` (the script passes a small stand-in with ``check``/``progress``/``sleep``).

Failures: every script *reports* failures and exits 0, as the engine does (a failed task is a
result, not a crash of the run). ``collect`` waits for every task and lists each failure;
``fail-fast`` stops at the first failure the way the pattern does (``TaskGroup`` cancels its
other tasks; an executor cancels the queued futures while running ones finish) and reports
``fail-fast: ...`` with the counts. The last line is always ``wall <seconds> s``.

The ``events`` workload exercises TaskScope's own event pipeline and has no standalone
equivalent; :func:`generate` refuses it with :class:`ScriptError`.
"""

from __future__ import annotations

import json
import textwrap

from .models import registry
from .spec import RunSpec


class ScriptError(ValueError):
    """The spec has no standalone equivalent (one line for the user)."""


CHUNK_S = 0.001

_COMMON = '''
def check(deadline: float | None) -> None:
    """Cooperative timeout: a thread or process task cannot be stopped from outside."""
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError("task timed out")


def wait_for(seconds: float, deadline: float | None) -> None:
    """time.sleep that gives up at the deadline."""
    if deadline is not None:
        left = deadline - time.monotonic()
        if left < seconds:
            time.sleep(max(0.0, left))
            raise TimeoutError("task timed out")
    time.sleep(seconds)
'''

_CTX = '''
class Ctx:
    """A stand-in for TaskScope's TaskContext, for functions that take ``ctx``."""

    def __init__(self, index: int, deadline: float | None) -> None:
        self.index = index
        self.deadline = deadline

    def cancelled(self) -> bool:
        return False

    def check(self) -> None:
        check(self.deadline)

    def progress(self, fraction: float) -> None:
        check(self.deadline)

    def sleep(self, seconds: float) -> None:
        wait_for(seconds, self.deadline)

    async def asleep(self, seconds: float) -> None:
        self.check()
        await asyncio.sleep(seconds)
'''


def _cpu_fns(iters_expr: str, name: str = "work_cpu") -> str:
    return f'''
def {name}(deadline: float | None, iterations: int = {iters_expr}) -> int:
    """Pure-Python arithmetic (holds the GIL): a sum of squares, checked every CHUNK."""
    s = done = 0
    while done < iterations:
        n = min(CHUNK, iterations - done)
        for k in range(n):
            s += k * k
        done += n
        check(deadline)
    return s


async def a{name}(iterations: int = {iters_expr}) -> int:
    """The same in a coroutine: it yields between chunks, so coroutines take turns."""
    s = done = 0
    while done < iterations:
        n = min(CHUNK, iterations - done)
        for k in range(n):
            s += k * k
        done += n
        await asyncio.sleep(0)
    return s
'''


def _workload_code(spec: RunSpec, calib: dict[str, float]) -> tuple[str, list[str], str]:
    """(constants + functions, extra imports, a one-line description) for the workload.

    Always defines ``work(i, deadline)`` (blocking) and ``async def awork(i)``.
    """
    w = spec.workload
    size = spec.size_s
    p = dict(spec.params)
    cpu_rate = calib["cpu_iters_per_s"]
    chunk = max(1, int(cpu_rate * CHUNK_S))
    consts = [f"SIZE = {size!r}  # seconds of work per task"]
    imports: list[str] = []
    if w in ("cpu", "mixed") or (w == "blocking" and p.get("mode") == "cpu") or w == "crash":
        share = 0.5 if w in ("mixed", "crash") else 1.0
        consts.append(f"ITERATIONS = {int(size * share * cpu_rate)}  # ~{size * share * 1e3:g} ms "
                      f"of sum-of-squares on the machine that generated this script")
        consts.append(f"CHUNK = {chunk}  # iterations between two timeout checks (~1 ms)")
    if w == "cpu":
        return "\n".join(consts) + "\n" + _cpu_fns("ITERATIONS") + '''

def work(i: int, deadline: float | None) -> int:
    return work_cpu(deadline)


async def awork(i: int) -> int:
    return await awork_cpu()
''', imports, "pure-Python arithmetic (holds the GIL)"
    if w == "numpy":
        imports.append("import numpy as np")
        calls = int(size * calib["numpy_calls_per_s"])
        consts.append(f"CALLS = {calls}  # np.sin over 65,536 floats, ~{size * 1e3:g} ms here")
        return "\n".join(consts) + '''


def work(i: int, deadline: float | None) -> float:
    """NumPy releases the GIL inside np.sin, so threads can overlap."""
    a = np.linspace(0.0, 100.0, 65_536)
    out = np.empty_like(a)
    for _ in range(CALLS):
        np.sin(a, out=out)
        check(deadline)
    return float(out[-1])


async def awork(i: int) -> float:
    a = np.linspace(0.0, 100.0, 65_536)
    out = np.empty_like(a)
    for _ in range(CALLS):
        np.sin(a, out=out)
        await asyncio.sleep(0)
    return float(out[-1])
''', imports, "NumPy sin over float arrays (releases the GIL)"
    if w == "sleep":
        return "\n".join(consts) + '''


def work(i: int, deadline: float | None) -> float:
    wait_for(SIZE, deadline)
    return SIZE


async def awork(i: int) -> float:
    await asyncio.sleep(SIZE)
    return SIZE
''', imports, "simulated latency: time.sleep / asyncio.sleep"
    if w == "file":
        rounds = max(1, int(size * calib["file_rounds_per_s"])) if size > 0 else 0
        imports += ["import os", "import tempfile"]
        consts.append(f"ROUNDS = {rounds}  # write+fsync+read of 64 KiB, ~{size * 1e3:g} ms here")
        return "\n".join(consts) + '''


def file_round(path: str, payload: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, payload)
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        os.read(fd, len(payload))
    finally:
        os.close(fd)


def work(i: int, deadline: float | None) -> int:
    payload = os.urandom(64 * 1024)
    fd, path = tempfile.mkstemp(prefix="script-")
    os.close(fd)
    try:
        for _ in range(ROUNDS):
            file_round(path, payload)
            check(deadline)
    finally:
        os.unlink(path)
    return ROUNDS


async def awork(i: int) -> int:
    """asyncio has no async files: each round goes to a thread, as aiofiles does."""
    payload = os.urandom(64 * 1024)
    fd, path = tempfile.mkstemp(prefix="script-")
    os.close(fd)
    try:
        for _ in range(ROUNDS):
            await asyncio.to_thread(file_round, path, payload)
    finally:
        os.unlink(path)
    return ROUNDS
''', imports, "write, fsync and read back temp files"
    if w == "mixed":
        return "\n".join(consts) + "\n" + _cpu_fns("ITERATIONS") + '''

def work(i: int, deadline: float | None) -> int:
    wait_for(SIZE / 2, deadline)  # half waiting on I/O (simulated)
    return work_cpu(deadline)  # then half computing


async def awork(i: int) -> int:
    await asyncio.sleep(SIZE / 2)
    return await awork_cpu()
''', imports, "half I/O wait, then half CPU"
    if w == "blocking":
        if p.get("mode") == "cpu":
            body = _cpu_fns("ITERATIONS") + '''

def work(i: int, deadline: float | None) -> int:
    return work_cpu(deadline)


async def awork(i: int) -> int:
    # THE PITFALL: CPU work inside a coroutine with no await. The event loop is stuck
    # until it returns; every other coroutine waits.
    return work_cpu(None)
'''
        else:
            body = '''

def work(i: int, deadline: float | None) -> float:
    wait_for(SIZE, deadline)
    return SIZE


async def awork(i: int) -> float:
    # THE PITFALL: time.sleep inside a coroutine. The event loop is stuck for SIZE seconds;
    # every other coroutine waits. (await asyncio.sleep(SIZE) is the fix.)
    time.sleep(SIZE)
    return SIZE
'''
        return "\n".join(consts) + "\n" + body, imports, \
            "time.sleep or CPU inside a coroutine (pitfall)"
    if w == "fail":
        consts.append(f"EVERY = {int(p.get('every', 1))}  # every EVERY-th task fails")
        return "\n".join(consts) + '''


class WorkloadFailure(Exception):
    pass


def work(i: int, deadline: float | None) -> None:
    wait_for(SIZE, deadline)
    if i % EVERY == 0:
        raise WorkloadFailure(f"task {i} failed on purpose")


async def awork(i: int) -> None:
    await asyncio.sleep(SIZE)
    if i % EVERY == 0:
        raise WorkloadFailure(f"task {i} failed on purpose")
''', imports, "waits, then raises (every Nth task)"
    if w == "crash":
        imports.append("import os")
        consts.append(f"EVERY = {int(p.get('every', 1))}  # every EVERY-th task kills its worker")
        return "\n".join(consts) + "\n" + _cpu_fns("ITERATIONS") + '''

def work(i: int, deadline: float | None) -> None:
    work_cpu(deadline)
    if i % EVERY == 0:
        os._exit(70)  # the worker process dies: ProcessPoolExecutor breaks (BrokenProcessPool)
    work_cpu(deadline)


async def awork(i: int) -> None:
    raise RuntimeError("crash needs worker processes")
''', imports, "its worker process dies mid-task"
    if w == "http":
        return _http_code(spec, consts, imports)
    if w == "custom":
        return _custom_code(spec, imports)
    raise ScriptError(f"{w} exercises TaskScope itself and has no standalone equivalent")


def _http_code(spec: RunSpec, consts: list[str], imports: list[str]) -> tuple[str, list[str], str]:
    delay = float(spec.params.get("delay", 0.02))
    n = max(1, round(spec.size_s / delay)) if delay > 0 else 1
    consts.append(f"REQUESTS = {n}  # requests per task")
    consts.append(f"DELAY = {spec.size_s / n!r}  # the server waits this long per request")
    imports += ["import http.client", "import os", "import threading",
                "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer"]
    return "\n".join(consts) + '''


class Handler(BaseHTTPRequestHandler):
    """GET /delay?s=0.05 answers after sleeping that long (a slow upstream)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        delay = float(self.path.partition("s=")[2] or 0)
        time.sleep(delay)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def start_server() -> str:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    os.environ["SCRIPT_HTTP_PORT"] = str(port)  # worker processes inherit it
    return str(port)


def work(i: int, deadline: float | None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["SCRIPT_HTTP_PORT"]))
    try:
        for _ in range(REQUESTS):
            check(deadline)
            conn.request("GET", f"/delay?s={DELAY}")
            conn.getresponse().read()
    finally:
        conn.close()
    return REQUESTS


async def awork(i: int) -> int:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", int(os.environ["SCRIPT_HTTP_PORT"]))
    try:
        for _ in range(REQUESTS):
            writer.write(f"GET /delay?s={DELAY} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode())
            await writer.drain()
            length = 0
            while (line := await reader.readline()) not in (b"\\r\\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
    finally:
        writer.close()
    return REQUESTS
''', imports, "real requests to a loopback HTTP server"


def _custom_code(spec: RunSpec, imports: list[str]) -> tuple[str, list[str], str]:
    p = spec.params
    ref: str = p["function"]
    target, _, name = ref.rpartition(":")
    args = json.dumps(list(p.get("args") or []))
    kwargs = json.dumps(dict(p.get("kwargs") or {}))
    is_async = bool(p.get("is_async"))
    takes_ctx = bool(p.get("takes_ctx"))
    lines = []
    if target.endswith(".py"):
        imports += ["import importlib.util", "import sys"]
        lines.append(f'''
def _load(path: str, name: str):
    """Import a .py file by path, under a fixed module name (so worker processes agree)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fn = _load({target!r}, "user_module")
for _part in {name!r}.split("."):
    fn = getattr(fn, _part)''')
        if registry.entry(spec.model).script == "dask":
            # Dask workers of a cluster that did not run this script cannot import the file:
            # send its functions by value (as Dask's docs advise), not by module name.
            imports.append("import cloudpickle")
            lines.append('cloudpickle.register_pickle_by_value(sys.modules["user_module"])')
    else:
        root = p.get("root")
        if root:
            imports += ["import sys"]
            lines.append(f"sys.path.insert(0, {root!r})")
        head, _, rest = name.partition(".")
        lines.append(f"from {target} import {head} as fn")
        if rest:
            lines.append(f"fn = fn.{rest}")
    ctx_kw = ", ctx=Ctx(i, deadline)" if takes_ctx else ""
    actx_kw = ", ctx=Ctx(i, None)" if takes_ctx else ""
    consts = f"ARGS = json.loads({args!r})\nKWARGS = json.loads({kwargs!r})"
    imports.append("import json")
    if is_async:
        body = f'''

def work(i: int, deadline: float | None):
    """The async function, run to completion on a fresh event loop in this worker."""
    return asyncio.run(fn(*ARGS, **KWARGS{ctx_kw}))


async def awork(i: int):
    return await fn(*ARGS, **KWARGS{actx_kw})
'''
    else:
        body = f'''

def work(i: int, deadline: float | None):
    return fn(*ARGS, **KWARGS{ctx_kw})


async def awork(i: int):
    """A plain function, offloaded so it does not block the event loop."""
    return await asyncio.to_thread(fn, *ARGS, **KWARGS{actx_kw})
'''
    note = "" if takes_ctx else " (no ctx: a running task cannot be interrupted)"
    return ("\n".join(lines) + "\n\n" + consts + body + (_CTX if takes_ctx else ""), imports,
            f"your function {ref}{note}")


# -- runners ------------------------------------------------------------------------------------
_REPORT = '''
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


def _sequential(ff: bool) -> str:
    return _task_fn() + f'''

def main() -> None:
    outcomes: list[str] = []
    t0 = time.perf_counter()
    for i in range(TASKS):
        try:
            task(i)
            outcomes.append("finished")
        except Exception as e:
            outcomes.append(outcome(e, i))
            if {ff} and outcomes[-1] == "failed":
                print(f"fail-fast: task {{i}} failed; the other {{TASKS - i - 1}} were not started")
                outcomes += ["cancelled"] * (TASKS - i - 1)
                break
    report(outcomes, time.perf_counter() - t0)
'''


def _executor(kind: str, ff: bool) -> str:
    return _task_fn() + f'''

def main() -> None:
    t0 = time.perf_counter()
    with {kind}(max_workers=WORKERS) as pool:
        futures = [pool.submit(task, i) for i in range(TASKS)]
        if {ff}:
            # fail-fast: stop waiting at the first exception and cancel the queued tasks.
            # Running ones cannot be stopped from outside: they finish (their results are
            # still counted), and the pool waits for them on exit.
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                n = sum(f.cancel() for f in pending)
                print(f"fail-fast: a task failed; cancelled {{n}} queued tasks")
        wait(futures)
    outcomes = []
    for i, f in enumerate(futures):
        outcomes.append("cancelled" if f.cancelled() else outcome(f.exception(), i))
    report(outcomes, time.perf_counter() - t0)
'''


def _asyncio(ff: bool, limited: bool, executor: bool) -> str:
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


def _dask(ff: bool, scheduler: str | None) -> str:
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
    return _task_fn() + f'''

def main() -> None:
{connect}    try:
        t0 = time.perf_counter()
        futures = client.map(task, range(TASKS), pure=False, retries=0)
        if {ff}:
            # fail-fast: at the first failure, cancel the rest. Dask cannot stop a task that
            # is already running: cancelling it only forgets its result.
            for f in as_completed(futures):
                if f.status == "error":
                    pending = [g for g in futures if not g.done()]
                    client.cancel(pending)
                    print(f"fail-fast: a task failed; cancelled {{len(pending)}} others")
                    break
        wait([f for f in futures if not f.cancelled()])
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


def generate(spec: RunSpec, calib: dict[str, float] | None = None) -> str:
    """The standalone script for ``spec`` (see the module docstring). ``calib``: the rates that
    size the inlined work; by default this machine's calibration."""
    if calib is None:
        from .workloads.calibrate import calibration

        calib = calibration()
    code, extra_imports, desc = _workload_code(spec, calib)
    ff = spec.policy == "fail-fast"
    m = spec.model
    workers = spec.effective_workers()
    imports = {"import asyncio", "import time"}
    shape = registry.entry(m).script
    if shape == "thread-pool":
        imports.add("from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait")
        runner, pattern = _executor("ThreadPoolExecutor", ff), "ThreadPoolExecutor"
    elif shape == "process-pool":
        imports.add("from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait")
        runner, pattern = _executor("ProcessPoolExecutor", ff), "ProcessPoolExecutor"
    elif shape == "coroutines":
        limited = spec.workers is not None and spec.workers < spec.tasks
        runner = _asyncio(ff, limited, executor=False)
        pattern = "asyncio.TaskGroup" if ff else "asyncio.gather"
    elif shape == "coroutines+process-pool":
        imports.add("from concurrent.futures import ProcessPoolExecutor")
        runner = _asyncio(ff, False, executor=True)
        pattern = "loop.run_in_executor + ProcessPoolExecutor"
    elif shape == "loop":
        runner, pattern = _sequential(ff), "a plain loop"
    elif shape == "dask":
        scheduler = spec.options.get("scheduler")
        imports.add("from dask.distributed import Client, LocalCluster, as_completed, wait")
        if scheduler is None:
            imports.add("import dask")
            pattern = "Dask: LocalCluster, Client, client.map, client.gather"
        else:
            pattern = f"Dask on an existing cluster ({scheduler}): client.map, client.gather"
        runner = _dask(ff, scheduler)
    else:
        raise ScriptError(f"{m} has no standalone script yet")
    imports.update(extra_imports)
    std = sorted(i for i in imports if i.startswith("import "))
    frm = sorted(i for i in imports if i.startswith("from "))
    timeout = "None" if spec.timeout_s is None else repr(spec.timeout_s)
    server = spec.workload == "http"
    # A custom function decides its own work: the spec's size means nothing for it.
    size = "" if spec.workload == "custom" else f" × {spec.size_s * 1e3:g} ms"
    header = f'''#!/usr/bin/env python3
"""{m} · {spec.workload} · {spec.tasks} tasks{size} · {workers} workers · {spec.policy}

Generated by TaskScope ("show code"); it runs without TaskScope, on Python 3.11+.
Pattern: {pattern}. Work: {desc}.
Timeouts: asyncio.timeout for coroutines; threads and processes cannot be interrupted from
outside, so their work checks a deadline between chunks. Failures are reported, not raised:
the script exits 0 and its last line is the wall time.
"""

from __future__ import annotations

{chr(10).join(std + frm)}

TASKS = {spec.tasks}
WORKERS = {workers}
TIMEOUT = {timeout}  # seconds per task, or None
''' + (
        f"SCHEDULER = {spec.options['scheduler']!r}\n" if spec.options.get("scheduler") else "")
    main_call = "    start_server()\n    main()\n" if server else "    main()\n"
    return (header + "\n" + code.strip("\n") + "\n\n" + _COMMON + _REPORT + runner
            + '\n\nif __name__ == "__main__":  # required: worker processes re-import this file\n'
            + main_call)
