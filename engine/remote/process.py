"""The engine process's life: starting it, watching for its death, and ending all of it.

The front end's side: :func:`spawn_engine` starts ``python -m engine._engine_proc`` with two
socket pairs as its pipes, and returns an :class:`EngineProcess` that says whether it runs and,
once it does not, why (:attr:`EngineProcess.exit_text`), and kills what it left behind
(:meth:`EngineProcess.reap`).

The engine process's side: :func:`become_engine_process` sets it up the way the front end
relies on: a process group of its own (so the front end can end it and every worker under it
with one ``killpg``), SIGTERM when its parent dies (Linux), SIGTERM turned into
:class:`Terminated` for an orderly shutdown, Ctrl+C left to the front end, and the niceness
its workers inherit.

The command line between the two is :class:`EngineArgs`, both ways. The interpreter that runs
the engine is one parameter of :func:`spawn_engine` (default: this one's).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

#: The engine process's entry point: a thin module that imports no Qt (see engine/_engine_proc.py).
ENTRY_MODULE = "engine._engine_proc"


class EngineArgs(NamedTuple):
    """The engine process's command line:
    ``CMD_FD UPD_FD HZ FRONT_PID [MAX_EVENTS [NICE [ID_BASE]]]``."""

    cmd_fd: int
    upd_fd: int
    sample_hz: float | None
    front_pid: int
    max_events: int | None = None
    nice: int = 0
    #: Where its run and task ids start (see :class:`engine.Session`): engine processes of
    #: one front end on several interpreters number their runs apart.
    id_base: int = 0

    def argv(self) -> list[str]:
        return [str(self.cmd_fd), str(self.upd_fd),
                "" if self.sample_hz is None else repr(self.sample_hz), str(self.front_pid),
                str(self.max_events or ""), str(self.nice), str(self.id_base)]

    @classmethod
    def parse(cls, argv: list[str]) -> EngineArgs:
        def opt(i: int) -> str:
            return argv[i] if len(argv) > i else ""

        return cls(int(argv[0]), int(argv[1]), float(argv[2]) if argv[2] else None, int(argv[3]),
                   int(opt(4)) if opt(4) else None, int(opt(5) or 0), int(opt(6) or 0))


# == the front end's side ============================================================================
def exit_text(code: int | None) -> str:
    """How a process ended, in a few words ("" while it runs)."""
    if code is None:
        return ""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class EngineProcess:
    """The engine process, seen from the front end: the few calls of multiprocessing.Process
    that we use, how it ended, and the ending of everything it started."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self._p = popen
        self.pid = popen.pid

    def is_alive(self) -> bool:
        return self._p.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._p.poll()

    @property
    def exit_text(self) -> str:
        """How it ended ("killed by SIGKILL", "exit code 1"); "" while it runs."""
        return exit_text(self._p.poll())

    def join(self, timeout: float | None = None) -> None:
        try:
            self._p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        if self.is_alive():
            self._p.terminate()

    def kill(self) -> None:
        if self.is_alive():
            self._p.kill()

    def stop(self, grace_s: float = 1.0) -> None:
        """SIGTERM (it shuts its session down in order), SIGKILL after ``grace_s``, then
        :meth:`reap`."""
        if self.is_alive():
            self.terminate()
            self.join(grace_s)
            if self.is_alive():
                self.kill()
                self.join(grace_s)
        self.reap()

    def reap(self) -> None:
        """Once the engine process is gone: kill whatever is left in its process group (its
        workers, if it was killed before it could stop them)."""
        if self.is_alive() or not self.pid:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


def engine_dir() -> str:
    """The real folder of the engine package this process runs."""
    return os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def engine_env(python: str | None) -> dict[str, str]:
    """The environment of an engine process on ``python`` (None: this interpreter).

    On this interpreter, the folder that holds this engine goes first on ``PYTHONPATH``. On
    another one, the engine comes from its prepared environment (``taskscope pythons add``
    links this very engine there), and the inherited ``PYTHONPATH`` keeps only what belongs to
    no interpreter: not a ``site-packages`` folder (a package compiled for this Python would
    load there, or fail to), nor a folder with another ``engine`` package in it (it would
    shadow this one). A folder with this very engine stays (a checkout run from source)."""
    env = dict(os.environ)
    inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if python is None or python == sys.executable:
        root = os.path.dirname(engine_dir())
        env["PYTHONPATH"] = os.pathsep.join([root, *inherited])
        return env
    mine = engine_dir()

    def keep(p: str) -> bool:
        parts = os.path.normpath(p).split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts:
            return False
        theirs = os.path.join(p, "engine")
        return not os.path.isdir(theirs) or os.path.realpath(theirs) == mine

    kept = [p for p in inherited if keep(p)]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)  # this interpreter's home is not that one's
    return env


def spawn_engine(sample_hz: float | None, max_events: int | None = None, nice: int = 0, *,
                 python: str | None = None,
                 id_base: int = 0) -> tuple[Connection, Connection, EngineProcess]:
    """Start the engine process; return its command pipe, its update pipe and the process.

    A fresh interpreter (fork + exec right away: safe in a process that already runs GUI
    threads), which imports the engine only: not the front end's ``__main__`` (as
    multiprocessing's spawn would), and never Qt. ``python``: the interpreter to run it on
    (default: this one, ``sys.executable``; another one runs it from its prepared environment,
    see :func:`engine_env`). ``id_base``: see :class:`EngineArgs`."""
    cmd_parent, cmd_child = socket.socketpair()
    upd_parent, upd_child = socket.socketpair()
    env = engine_env(python)
    args = EngineArgs(cmd_child.fileno(), upd_child.fileno(), sample_hz, os.getpid(),
                      max_events, nice, id_base)
    try:
        popen = subprocess.Popen([python or sys.executable, "-m", ENTRY_MODULE, *args.argv()],
                                 pass_fds=(cmd_child.fileno(), upd_child.fileno()),
                                 env=env, stdin=subprocess.DEVNULL, close_fds=True)
    finally:
        cmd_child.close()
        upd_child.close()
    return (Connection(cmd_parent.detach()), Connection(upd_parent.detach()),
            EngineProcess(popen))


# == the engine process's side =======================================================================
class Terminated(BaseException):
    """SIGTERM arrived: the main thread unwinds and the session shuts down in order."""


def _on_sigterm(_sig: int, _frame: Any) -> None:
    raise Terminated()


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies (any way, even SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def become_engine_process(front_pid: int, nice: int = 0) -> bool:
    """Set this process up as the engine process (see the module docstring); False if its
    front end (``front_pid``, its parent) has died already."""
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the front end's to handle
    # A process group of our own: every process under us (forkserver, resource tracker,
    # workers) joins it, so if this process is killed outright the front end can still end
    # them all with one killpg (EngineProcess.reap). It also keeps a terminal's Ctrl+C,
    # which the front end handles by shutting us down in order, away from the workers.
    try:
        os.setpgrp()
    except OSError:
        pass
    _die_with_parent()
    return os.getppid() == front_pid  # else the parent died before we asked
