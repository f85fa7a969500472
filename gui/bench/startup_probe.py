"""The start-up probe: ``python -m gui.bench.startup_probe`` opens the app and reports its start.

The app starts exactly as ``taskscope`` starts it (:func:`gui.app.run`, default options); the
probe, handed the shown window, prints one line tagged :data:`STARTUP_TAG` when the window is
first painted, then starts one process run on the window's cold pool, prints when its first
result is back and whether its workers imported Qt, and closes the window.
:mod:`gui.bench.startup` launches it and reads the lines.

Importing this module is Qt-free (Qt comes with the app, inside :func:`main`): it is the
``__main__`` of its process, which the engine's processes may import again.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from engine import State, make_spec
from engine.bench import qt_check
from engine.clock import now_ns

#: The probe's report lines start with this (``key=value`` pairs follow).
STARTUP_TAG = "TASKSCOPE_BENCH"

_alive: list[Any] = []


def probe(win: Any) -> None:
    """Handed the just-shown window: print when it is first painted, then start one process run
    on its cold pool, print when the first result is back and whether its workers imported Qt,
    and close the window."""
    from PySide6.QtCore import QEvent, QObject

    session = win.session
    loop = win.loop

    def say(**kv: Any) -> None:
        print(STARTUP_TAG, " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)

    def after_paint() -> None:
        ncpu = os.cpu_count() or 1
        spec = make_spec("processes", "custom", ncpu, 0, ncpu,
                         params={"function": f"{qt_check.__name__}:worker_qt_check"})
        req = now_ns()
        ids = win.start_runs([spec])
        if not ids:
            loop.call_soon(win.close)
            return
        run = session.run(ids[0])
        rid = ids[0]

        def watch() -> None:
            store = session.store  # the window's mirror, filled by its frame tick
            tids = list(run.task_ids)
            first = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if first is None and any(
                        (r := store.task(t)) is not None and r.end_ns is not None
                        for t in tids):
                    first = now_ns()
                rec = store.run(rid)
                if rec is not None and rec.done:
                    break
                time.sleep(0.0005)
            recs = [store.task(t) for t in tids]
            qt = [r for r in recs if r is not None and r.state is State.FAILED and r.error
                  and "Qt imported" in str(r.error.get("message", ""))]
            bad = [r for r in recs if r is None or r.state is not State.FINISHED]
            kv: dict[str, Any] = {"request_ns": req, "workers": len(recs),
                                  "qt_workers": len(qt) if len(bad) == len(qt) else -1}
            if first is not None:
                kv["result_ns"] = first
            if qt:
                kv["qt_error"] = str(qt[0].error.get("message", "")).replace(" ", "_")
            say(**kv)
            loop.call_soon_threadsafe(win.close)

        threading.Thread(target=watch, name="bench-startup-watch", daemon=True).start()

    class FirstPaint(QObject):
        done = False

        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt API
            if not self.done and ev.type() == QEvent.Type.Paint:
                self.done = True
                say(shown_ns=now_ns())
                loop.call_soon(after_paint)
            return False

    filt = FirstPaint(win)
    _alive.append(filt)  # the filter's Python side must live as long as the window
    win.installEventFilter(filt)


def main() -> int:
    """Start the app with its default options and :func:`probe` on the shown window, its
    settings in a temporary folder (:func:`~gui.bench.common.settings_elsewhere`)."""
    from gui.app import parse_args, run

    from .common import settings_elsewhere

    with settings_elsewhere():
        return run(parse_args([]), on_shown=probe)


if __name__ == "__main__":
    sys.exit(main())
