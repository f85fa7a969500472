"""The engine process's command loop: one Session, one reply per command, commands by table.

:data:`HANDLERS` maps every :class:`~engine.remote.wire.Op` to one method of
:class:`CommandServer` (a test checks that it covers them all). A handler takes the command's
arguments and returns the reply's value; what it raises goes back as
:class:`~engine.remote.wire.Raised`, and the loop serves on. A command the table does not know
gets a one-line error, never a crash.

:func:`child_main` is the engine process's main (``python -m engine._engine_proc``): it sets the
process up (:mod:`~engine.remote.process`), builds the session and its publisher
(:mod:`~engine.remote.publisher`), says :class:`~engine.remote.wire.Ready`, and serves until
the front end says shutdown, its pipe closes (the front end died) or SIGTERM arrives; then the
session shuts down, workers and all.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ..api import CompareJobAPI, ShutdownReport
from .process import EngineArgs, Terminated, become_engine_process
from .publisher import EngineStore, Publisher, start_publisher
from .wire import Command, CompareDone, CompareProgressed, Fatal, Ok, Op, Raised, Ready

if TYPE_CHECKING:
    from ..compare import CompareRequest
    from ..session import Run, Session
    from ..spec import RunSpec

#: Op -> its handler, filled by :func:`handles` as :class:`CommandServer` is defined.
HANDLERS: dict[Op, Callable[..., Any]] = {}

#: A handler's result when it has sent its reply itself.
REPLIED = object()


def handles(op: Op) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated method as ``op``'s handler (one handler per op)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        assert op not in HANDLERS, f"{op} has two handlers"
        HANDLERS[op] = fn
        return fn

    return register


class CommandServer:
    """Serves one front end's commands on ``conn`` with ``session``; ``pub`` sends its state."""

    def __init__(self, session: Session, pub: Publisher, conn: Connection) -> None:
        self.session = session
        self.pub = pub
        self.conn = conn
        self.job: CompareJobAPI | None = None
        self.reporter: threading.Thread | None = None
        self.stopped = False

    def serve(self) -> None:
        """Answer commands until :attr:`stopped` (after shutdown); EOFError/OSError if the
        front end goes away."""
        while not self.stopped:
            reply = self.answer(self.conn.recv())
            if reply is not REPLIED:
                self.conn.send(reply)

    def answer(self, msg: Any) -> Any:
        """The reply to one message: Ok(value), Raised, or REPLIED (already sent)."""
        op = msg.op if isinstance(msg, Command) else msg
        handler = HANDLERS.get(op) if isinstance(op, Op) else None
        if handler is None:
            return Raised("ValueError", f"unknown command {op!r}"[:200])
        try:
            result = handler(self, *msg.args)
        except Exception as e:  # noqa: BLE001 - the front end raises it again; we serve on
            return Raised.of(e)
        return result if result is REPLIED else Ok(result)

    # -- runs ------------------------------------------------------------------------------------
    @handles(Op.START)
    def start(self, spec: RunSpec) -> Any:
        if spec.workload == "custom":
            from ..custom import refresh

            refresh(str(spec.params.get("function", "")))
        replied: list[bool] = []

        def admitted(run: Run, t_ns: int) -> None:
            # Answer now, before the tasks are registered and the workers start (see
            # Session.start): the front end's thread is waiting for this.
            self.conn.send(Ok((run.run_id, run.first_task_id, t_ns)))
            replied.append(True)

        try:
            self.session.start(spec, admitted=admitted)
        except Exception as e:
            if not replied:
                raise
            # Answered already: a failure to launch the workers is recorded as the tasks'
            # failure by Session.start; anything else can only be reported.
            print(f"taskscope engine: run {spec.model} after its start: "
                  f"{type(e).__name__}: {e}", file=sys.stderr)
        return REPLIED

    @handles(Op.RESERVE)
    def reserve(self, n_tasks: int) -> tuple[int, int]:
        return self.session.reserve_ids(int(n_tasks))

    @handles(Op.CANCEL_TASK)
    def cancel_task(self, task_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        return self.session.cancel_task(task_id, force, reason)

    @handles(Op.CANCEL_RUN)
    def cancel_run(self, run_id: int, force: bool = False, reason: str = "cancelled") -> bool:
        return self.session.cancel_run(run_id, force, reason)

    @handles(Op.CANCEL_ALL)
    def cancel_all(self, force: bool = False, reason: str = "cancel all") -> int:
        return self.session.cancel_all(force, reason)

    @handles(Op.WORKER_PIDS)
    def worker_pids(self) -> list[int]:
        return self.session.worker_pids()

    # -- comparisons -----------------------------------------------------------------------------
    @handles(Op.COMPARE)
    def compare(self, request: CompareRequest, how: dict[str, Any]) -> None:
        """Start a comparison here; its progress and its end go out with the updates."""
        if self.job is not None and not self.job.done:
            raise RuntimeError("a comparison is already running")
        pub = self.pub
        self.job = job = self.session.start_compare(
            request, lambda p: pub.push_compare(CompareProgressed(p)), **how)
        self.reporter = threading.Thread(target=_report_done, args=(job, pub), daemon=True,
                                         name="taskscope-compare-done")
        self.reporter.start()

    @handles(Op.COMPARE_CANCEL)
    def compare_cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    # -- the end ---------------------------------------------------------------------------------
    @handles(Op.SHUTDOWN)
    def shutdown(self, timeout: float) -> Any:
        """Shut the session down, send every task's last state, then the report; stop."""
        timeout = float(timeout)
        if self.job is not None:
            self.job.cancel()
            self.job.wait(timeout)
        if self.reporter is not None:  # its CompareDone goes out with the final update
            self.reporter.join(0.5)
        report: ShutdownReport = self.session.shutdown(timeout=timeout)
        self.pub.close()
        self.pub.thread.join(1.0)
        self.pub.final()  # every task's last state, before the reply
        self.conn.send(Ok(report))
        self.stopped = True
        return REPLIED


def _report_done(job: CompareJobAPI, pub: Publisher) -> None:
    job.wait()
    err = None if job.error is None else (type(job.error).__name__, str(job.error))
    pub.push_compare(CompareDone(job.result, err))


# == the engine process's main =======================================================================
def child_main(argv: list[str]) -> None:
    """``python -m engine._engine_proc ARGS`` (see :class:`~engine.remote.process.EngineArgs`)."""
    args = EngineArgs.parse(argv)
    cmd, upd = Connection(args.cmd_fd), Connection(args.upd_fd)
    if not become_engine_process(args.front_pid, args.nice):
        return
    engine_main(cmd, upd, args.sample_hz, args.front_pid, args.max_events, args.id_base)


def engine_main(cmd: Connection, upd: Connection, sample_hz: float | None, front_pid: int,
                max_events: int | None = None, id_base: int = 0) -> None:
    """The engine process: one Session, commands on ``cmd``, updates on ``upd``; its ids
    start at ``id_base`` (see :class:`engine.Session`)."""
    session = None
    try:
        from ..session import Session  # here: an engine that cannot import says why (Fatal)

        store = EngineStore(max_events)
        # The window's process is TaskScope too: "this app's CPU" counts both processes.
        session = Session(store, sample_hz=sample_hz, own_pids=lambda: (front_pid,),
                          id_base=id_base)
        pub = start_publisher(session, upd)
        from ..build import python_block
        from ..models import all_models

        engine_dir = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
        cmd.send(Ready(os.getpid(), python_block(), all_models(), engine_dir))
        CommandServer(session, pub, cmd).serve()
    except Terminated:
        pass
    except (EOFError, OSError):
        pass  # the front end went away
    except BaseException as e:  # noqa: BLE001 - told to the front end, then we exit
        try:
            cmd.send(Fatal(f"{type(e).__name__}: {e}"))
        except OSError:
            pass
    finally:
        if session is not None:
            try:
                session.shutdown(timeout=1.5)
            except BaseException:  # noqa: BLE001 - exiting anyway
                pass
