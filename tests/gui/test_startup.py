"""Starting the app: the missing-platform message, and `python -m gui` opening and closing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gui import app

ENV_NO_QT = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY",
                                                               "WAYLAND_DISPLAY")}


def test_missing_xcb_libraries_give_one_line_naming_the_debian_packages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.XCB_LIBS, "libtaskscope-no-such-lib.so.0", "libxcb-cursor0")
    msg = app.platform_problem({"DISPLAY": ":0"})
    assert msg is not None and "\n" not in msg
    for pkg in ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
                "libxcb-shape0", "libxcb-xkb1", "libxkbcommon-x11-0", "libxcb-cursor0"):
        assert pkg in msg
    assert app.platform_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


def test_no_display_is_one_clear_line_not_a_qt_abort() -> None:
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "gui"], env=ENV_NO_QT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("taskscope:") and "Aborted" not in p.stderr
    assert time.monotonic() - t < 30


@pytest.mark.timeout(90)
def test_python_m_gui_opens_runs_and_closes_cleanly(tmp_path: Path) -> None:
    # Its settings in a folder of the test's: never the user's own remembered window.
    env = dict(ENV_NO_QT, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    env.pop("QT_NO_GUI_THREADPOOL", None)
    p = subprocess.Popen([sys.executable, "-m", "gui", "--start", "--quit-after", "4"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # While its run is live: Qt's GUI thread pool, which the raster engine would hand fills
    # to, never started (its threads are named "Thread (pooled)"); the window paints on its
    # own thread (gui.app.paint_on_gui_thread).
    time.sleep(3.0)
    threads = [t.read_text().strip() for t in Path(f"/proc/{p.pid}/task").glob("*/comm")]
    _out, err = p.communicate(timeout=80)
    assert p.returncode == 0, err
    assert "Traceback" not in err
    assert (tmp_path / "TaskScope").is_dir()  # it remembered itself, there
    assert threads and "Thread (pooled)" not in threads, threads
