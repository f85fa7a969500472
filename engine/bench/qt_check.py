"""Run inside TaskScope's worker processes: fail if Qt was imported there.

A custom-workload function (``engine.bench.qt_check:worker_qt_check``) that the start-up figure
of :mod:`gui.bench` runs on a fresh window's process pool. It imports only ``sys``: it must not
load anything into the worker that the worker would not load anyway.
"""

from __future__ import annotations

import sys

#: Modules a TaskScope worker process must never have imported (see :func:`worker_qt_check`).
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "qasync")


def worker_qt_check() -> None:
    """Run as a custom-workload task in a worker process: fail if Qt was imported there.

    A worker whose ``__main__`` pulls in Qt takes about ten times as long to start (see
    DESIGN.md), so ``taskscope bench`` checks it: the task finishes when the worker is Qt-free
    and fails naming the modules when it is not.
    """
    loaded = [m for m in QT_MODULES if m in sys.modules]
    if loaded:
        raise RuntimeError(f"Qt imported in a worker process: {', '.join(loaded)}")
