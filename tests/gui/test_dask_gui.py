"""The dask model in the window (issue 15): a Scheduler field while dask is ticked, validated
at the field; the cancel note said where the model is chosen; the cluster's address and
dashboard once a run reports them; workers named by their addresses in the task table and
on the timeline's lanes.

One test runs a real embedded LocalCluster (2 workers, started by the engine process as for a
user who leaves the field empty, closed with the window's session); the others need none.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

import engine
from engine.models.dask.cluster import CONNECT_S
from gui.controls import Controls
from gui.model_options import NO_DASHBOARD
from gui.task_table import TaskTableModel

from .helpers import fill

WAIT = 60_000
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="taskscope[dask] is not installed")


@pytest.fixture
def form(qapp: Any, qtbot: Any) -> Controls:
    c = Controls()
    qtbot.addWidget(c)
    c.show()
    return c


@needs_dask
def test_the_scheduler_field_shows_with_dask_and_is_checked_at_the_field(
        form: Controls, qtbot: Any) -> None:
    box = form.cluster
    assert not box.isVisible()  # threads only: no cluster to choose
    form.model_boxes["dask"].setChecked(True)
    assert box.isVisible() and box.scheduler.isVisible()
    # Cancel on Dask, said where it is chosen: it cannot stop a running task by itself.
    note = box.cancel.text()
    assert "Dask cannot stop a running task" in note and "Kill restarts" in note
    assert "the task's flag" in note  # rich text with its quotes as they are
    # Empty: the model's default, an embedded LocalCluster (no option given).
    specs = form.build_specs()
    assert specs is not None and all(not s.options for s in specs)
    # A bad address: one line at the field, the form's line under Start, nothing built.
    box.scheduler.setText("http://127.0.0.1:8786")
    assert form.build_specs() is None
    assert box.field.error.isVisible() and "tcp://HOST:PORT" in box.field.error.text()
    assert form.summary.text().startswith("Not started: scheduler: ")
    # A good one goes to the models that take it, and only to them.
    box.scheduler.setText("127.0.0.1:8786")
    specs = form.build_specs()
    assert specs is not None
    assert {s.model: dict(s.options) for s in specs} == {
        "threads": {}, "dask": {"scheduler": "tcp://127.0.0.1:8786"}}
    assert not box.field.error.isVisible()
    form.model_boxes["dask"].setChecked(False)
    assert not box.isVisible()


def test_the_dashboard_is_a_link_or_says_why_there_is_none(form: Controls) -> None:
    box = form.cluster
    box.show_cluster({"scheduler": "tcp://127.0.0.1:40397", "started_by": "engine",
                      "dashboard": "http://127.0.0.1:8787/status", "workers": [{}, {}]})
    text = box.cluster.text()
    assert '<a href="http://127.0.0.1:8787/status">' in text
    assert "tcp://127.0.0.1:40397 (started by TaskScope, 2 workers)" in text
    assert box.cluster.openExternalLinks()
    box.show_cluster({"scheduler": "tcp://10.0.0.5:8786", "started_by": "existing",
                      "dashboard": None, "workers": [{}]})
    assert "(existing, 1 worker)" in box.cluster.text() and NO_DASHBOARD in box.cluster.text()


@needs_dask
def test_a_dask_run_names_its_workers_by_address(window: Any, qtbot: Any) -> None:
    c = window.controls
    fill(window, ("dask",), "sleep", 4, "150ms", workers="2")
    # A scheduler nobody listens on: refused at the field before anything starts.
    c.cluster.scheduler.setText("tcp://127.0.0.1:1")
    c.request_start()
    qtbot.waitUntil(lambda: not c.cluster.busy, timeout=5000)  # tried off the GUI thread
    assert window.store.runs() == []
    assert c.cluster.field.error.isVisible(), c.summary.text()
    assert c.summary.text().startswith("Not started: scheduler: ")
    # Empty: the engine starts its LocalCluster.
    c.cluster.scheduler.setText("")
    c.request_start()
    qtbot.waitUntil(lambda: window.store.runs() and window.store.runs()[0].done, timeout=WAIT)
    run = window.store.runs()[0]
    tasks = window.store.tasks(run.run_id)
    assert all(t.state is engine.State.FINISHED for t in tasks), [t.state for t in tasks]
    cluster = run.info["cluster"]
    addresses = {w["address"].partition("://")[2]: w["pid"] for w in cluster["workers"]}
    qtbot.waitUntil(lambda: c.cluster.cluster.isVisible(), timeout=3000)
    assert cluster["scheduler"] in c.cluster.cluster.text()
    if cluster["dashboard"] is None:
        assert NO_DASHBOARD in c.cluster.cluster.text()
    else:
        assert f'<a href="{cluster["dashboard"]}">' in c.cluster.cluster.text()
    # The task table's Worker column: the worker's address and pid (it said "process PID").
    QApplication.processEvents()
    m = window.tasks
    for row in range(m.rowCount()):
        text = m.index(row, TaskTableModel.C_WORKER).data()
        addr = text.removeprefix("worker ").split(" · ")[0]
        assert addr in addresses and text == f"worker {addr} · pid {addresses[addr]}", text
        assert addresses[addr] != os.getpid()
    # The timeline's lanes, by address too.
    labels = [w.label for w in window.tl_data.workers]
    assert labels and all(any(a in lab for a in addresses) for lab in labels), labels
    # Kill's tooltip says what it does on Dask, in the model's words.
    tip = m.index(0, TaskTableModel.C_FORCE).data(Qt.ItemDataRole.ToolTipRole)
    assert "nanny" in tip and "Dask cannot stop a running task" in tip, tip


@contextlib.contextmanager
def silent_port() -> Iterator[str]:
    """A port whose host does not answer: a listener with a backlog of one, filled by one
    connection, drops every other SYN (Linux), so a connect waits out its timeout as against
    a black-holed host. A TEST-NET address is no such host everywhere: here 192.0.2.1 is the
    gateway (refused at once) and other unroutable addresses are accepted by a proxy."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"


@needs_dask
def test_a_silent_scheduler_is_tried_off_the_gui_thread(window: Any, qtbot: Any) -> None:
    """Start with a scheduler whose host does not answer: the GUI loop keeps running while
    the engine's connect timeout runs out (it sat 2 s in Start, in the engine process's
    answer), Start waits disabled with "checking scheduler…" at the field, then the one-line
    refusal is at the field and no run started."""
    c = window.controls
    fill(window, ("dask",), "sleep", 2, "10ms", workers="1")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    with silent_port() as address:
        c.cluster.scheduler.setText(address)
        timer.start()
        t0 = time.monotonic()
        c.request_start()
        handler_s = time.monotonic() - t0
        assert handler_s < 0.5, f"Start took {handler_s:.2f} s on the GUI thread"
        assert c.cluster.check_note.isVisible() and not c.start_btn.isEnabled()
        assert not window.act_start.isEnabled()
        qtbot.waitUntil(lambda: c.cluster.field.error.isVisible(),
                        timeout=int((CONNECT_S + 3) * 1000))
        took = time.monotonic() - t0
        timer.stop()
    gaps = [b - a for a, b in zip([t0, *ticks], ticks, strict=False)]
    assert len(ticks) > 10 and max(gaps) < 1.0, f"GUI loop stalled {max(gaps):.2f} s"
    assert took < CONNECT_S + 2.0, took
    assert "cannot reach the Dask scheduler" in c.cluster.field.error.text()
    assert c.summary.text().startswith("Not started: scheduler: ")
    assert not c.cluster.check_note.isVisible() and c.start_btn.isEnabled()
    assert window.act_start.isEnabled()
    assert window.store.runs() == []
