"""Close the window in the middle of a run, once for each model (issue 8, storms).

CPU tasks of 5 s are running when the window is closed. Each time: the window closes and the
session shuts down quickly (the promise is about 2 s; asserted < 4 s for a loaded 2-core machine,
and the figure is recorded), every task has exactly one terminal state, and no engine worker
process and no non-daemon thread remains. The ``window`` fixture's ``leak_check`` checks the
last two again on teardown.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt

import engine
from engine import State
from tests.conftest import alive_pids, engine_children, non_daemon_threads

from .helpers import fill

MODELS = [i.name for i in engine.all_models()
          if i.name in ("sequential", "asyncio", "threads", "processes", "asyncio-processes")]



@pytest.mark.timeout(90)
@pytest.mark.parametrize("model", MODELS)
def test_close_mid_run_shuts_down_quickly_and_accounts_for_every_task(
        window: Any, qtbot: Any, model: str, record_property: Callable[[str, object], None]
) -> None:
    if not engine.model_info(model).available:
        pytest.skip(f"{model} is not available here")
    threads_before = non_daemon_threads()
    workers = "" if model == "sequential" else "2"
    fill(window, (model,), "cpu", 4, "5s", workers=workers)
    qtbot.mouseClick(window.controls.start_btn, Qt.MouseButton.LeftButton)
    runs = window.store.runs()
    assert len(runs) == 1, "the run did not start"
    run_id = runs[0].run_id
    qtbot.waitUntil(lambda: any(t.state is State.RUNNING for t in window.store.tasks(run_id)),
                    timeout=30_000)
    qtbot.wait(300)  # well into the 5 s tasks
    assert not window.store.run(run_id).done
    pids = set(window.session.worker_pids()) - {os.getpid()}
    if engine.model_info(model).isolated:
        assert pids, "a process model with no worker process?"

    t0 = time.monotonic()
    window.close()
    assert not window.isVisible()  # hidden at once; the shutdown finishes off the GUI thread
    qtbot.waitUntil(lambda: window._closed, timeout=10_000)
    took = time.monotonic() - t0
    record_property(f"close_s[{model}]", round(took, 3))
    print(f"\nclose mid-run, {model}: {took:.2f} s")
    assert took < 4.0, f"{model}: closing took {took:.2f} s (promise: about 2 s)"

    report = window.shutdown_report
    assert report is not None and report.clean, report
    # Every task has exactly one terminal state: none left running or queued, none ended twice.
    recs = window.store.tasks(run_id)
    assert len(recs) == 4
    assert all(r.state.terminal for r in recs), [r.state for r in recs]
    assert window.store.duplicate_terminals == 0
    assert window.store.run(run_id).done
    # A task that was running when the window closed was cancelled, not reported finished.
    assert any(r.state is State.CANCELLED for r in recs), [r.state for r in recs]
    # No engine worker process, no non-daemon thread.
    assert not alive_pids(pids), f"{model}: workers alive after close: {alive_pids(pids)}"
    assert not engine_children(), engine_children()
    extra = non_daemon_threads() - threads_before
    assert not extra, f"{model}: non-daemon threads left: {extra}"
    assert not [t for t in threading.enumerate() if t.name.startswith("taskscope-close")
                and t.is_alive()]
