"""GUI test fixtures: offscreen Qt, a qasync loop that is never stopped, a window per test.

The qasync lessons (../shared/DESIGN.md, facts table):

* The loop is created with ``already_running=True``: Qt's own event processing (pytest-qt's
  waits) runs its callbacks, exactly as in the app where the Qt loop drives asyncio.
* Teardown NEVER calls ``loop.stop()`` or ``app.exit()`` on it: on an already-running qasync
  loop that makes every later ``QEventLoop.exec()`` return at once, and pytest-qt's waits then
  silently stop waiting. Instead: cancel the loop's tasks, process events so they finish, mark
  the loop as not running (what ``stop()`` does minus ``app.exit()``) and close it.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt

import asyncio  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """QSettings of any format and scope go to a temporary folder: no test reads or writes
    the user's own (a window given settings remembers its form and layout in them)."""
    from PySide6.QtCore import QSettings

    folder = str(tmp_path_factory.mktemp("qsettings"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, folder)


@pytest.fixture(autouse=True)
def _delete_windows(qapp: object) -> Iterator[None]:
    """Delete the main windows a test closed (a closed window is only hidden): each kept
    ~800 widgets alive for the rest of the suite."""
    yield
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication, QMainWindow

    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMainWindow) and not w.isVisible():
            w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def qloop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        deadline = time.monotonic() + 1.0
        while asyncio.all_tasks(loop) and time.monotonic() < deadline:
            qapp.processEvents()  # type: ignore[attr-defined]
            time.sleep(0.005)
        qapp.processEvents()  # type: ignore[attr-defined]
        # What QEventLoop.stop() does, minus app.exit() (see the module docstring).
        loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
        asyncio.events._set_running_loop(None)
        try:
            qapp.aboutToQuit.disconnect(loop._after_run_forever)  # type: ignore[attr-defined]
        except (RuntimeError, TypeError):
            pass
        loop._after_run_forever()  # type: ignore[attr-defined]
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def window(qapp: object, qloop: asyncio.AbstractEventLoop, qtbot: object,
           leak_check: None) -> Iterator[object]:
    """A main window on a fresh session; closed (and the session shut down) on teardown."""
    from gui import theme
    from gui.main_window import MainWindow
    from gui.sampling import make_session

    theme.apply(qapp)  # type: ignore[arg-type]
    session = make_session()
    win = MainWindow(session, qloop)
    win.show()
    try:
        yield win
    finally:
        if not win._closed:
            win.close()
            qtbot.waitUntil(lambda: win._closed, timeout=6000)  # type: ignore[attr-defined]
        # leak_check (tests/conftest.py) then asserts no worker process or thread is left.
        win.shutdown_report or session.shutdown()
