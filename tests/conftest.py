"""Shared fixtures. Nothing here imports Qt: the engine tests must run without it.

The ``session`` fixture is the heart of the engine tests: every test that runs work gets a fresh
:class:`engine.Session`, and on teardown the fixture shuts it down and asserts what the issue
promises of a shutdown: it was clean (no stuck task), quick, and it left no engine worker
process and no non-daemon thread behind.

Multiprocessing's forkserver and its resource tracker are legitimate long-lived children of the
test process (started once, shared by every session). They are told apart from engine workers
by being *direct* children whose command line runs ``multiprocessing.forkserver`` or
``multiprocessing.resource_tracker``. Engine workers are forked *by* the forkserver, so they
share its command line but not its parent: they are grandchildren, and always count as leaks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator

import psutil
import pytest

_MP_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


def _is_mp_helper(proc: psutil.Process, me: int) -> bool:
    try:
        if proc.ppid() != me:
            return False
        cmd = proc.cmdline()
        if cmd == psutil.Process(me).cmdline():
            # Forked by us but not exec'd yet: a forkserver being started at this very moment
            # (the session warms one up in the background) still shows our own command line.
            # Give it a moment to become what it is; a real leak never looks like this.
            for _ in range(50):
                time.sleep(0.01)
                cmd = proc.cmdline()
                if cmd != psutil.Process(me).cmdline():
                    break
        return any(h in " ".join(cmd) for h in _MP_HELPERS)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def engine_children() -> dict[int, str]:
    """Descendants of this process that are not multiprocessing's own helpers:
    pid -> status and command line (a zombie counts: it is a worker nobody reaped)."""
    me = os.getpid()
    out: dict[int, str] = {}
    for p in psutil.Process(me).children(recursive=True):
        if _is_mp_helper(p, me):
            continue
        try:
            out[p.pid] = f"{p.status()} {' '.join(p.cmdline())[:120]}"
        except psutil.NoSuchProcess:
            continue
        except (psutil.ZombieProcess, psutil.AccessDenied):
            out[p.pid] = "zombie/unreadable"
    return out


def alive_pids(pids: Iterable[int]) -> list[int]:
    """The pids that still run (a zombie counts as gone: it has exited)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def non_daemon_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()}


@pytest.fixture
def leak_check() -> Iterator[None]:
    """Fail the test if it leaves a child process or a non-daemon thread behind."""
    threads_before = non_daemon_threads()
    children_before = engine_children()
    yield
    left = {pid: cmd for pid, cmd in engine_children().items() if pid not in children_before}
    assert not left, f"child processes left behind: {left}"
    extra = non_daemon_threads() - threads_before
    assert not extra, f"non-daemon threads left behind: {extra}"


@pytest.fixture
def session(leak_check: None) -> Iterator[object]:
    """A fresh :class:`engine.Session`. On teardown it is shut down, and the shutdown must be
    clean (no stuck task) and quick, and leave no worker process and no non-daemon thread."""
    import engine

    s = engine.Session()
    try:
        yield s
    finally:
        report = s.shutdown()
    assert report.clean, f"tasks still running after shutdown: {report.stuck_tasks}"
    assert report.seconds < 3.0, report
    # Every pid the session's runners reported (other than ours) must be gone, not a zombie.
    reported = {t.pid for t in s.store.tasks() if t.pid and t.pid != os.getpid()}
    alive = alive_pids(reported)
    assert not alive, f"worker processes still alive after shutdown: {alive}"


@pytest.fixture(scope="session")
def prepared_pythons(tmp_path_factory: pytest.TempPathFactory) -> object:
    """pyenv's 3.12/3.13, each prepared by the real ``taskscope pythons add`` at most once per
    session (on first ``.get("3.13")``), in a cache folder of the session's own; see
    tests/engine/pythonskit.py. A version pyenv lacks here skips the test that asks for it."""
    from tests.engine.pythonskit import PreparedPythons

    return PreparedPythons(tmp_path_factory.mktemp("taskscope-cache"))
