"""Show code's work: each built-in workload as a small standalone function, and custom ones.

The inlined functions do the same work the engine's workloads do (the cpu workload is a sum of
squares sized by this machine's calibration) and check a deadline between chunks, the way the
engine's tasks check their context.
"""

from __future__ import annotations

import json

from ..models import registry
from ..spec import RunSpec


class ScriptError(ValueError):
    """The spec has no standalone equivalent (one line for the user)."""


CHUNK_S = 0.001

COMMON = '''
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


def workload_code(spec: RunSpec, calib: dict[str, float]) -> tuple[str, list[str], str]:
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
