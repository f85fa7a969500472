"""Start and stop the desktop app.

Order matters:

1. Check that Qt can open a window here *before* Qt is imported. A missing xcb library makes
   Qt print a page of text and abort the process; we print one line naming the Debian packages.
2. Create the engine's :class:`~engine.Session` (it starts its forkserver) before Qt starts:
   nothing forks after Qt is up (the forkserver itself is a fresh interpreter).
3. Run the qasync loop with ``asyncio.Runner(loop_factory=qasync.QEventLoop)``: it works on 3.11
   (where ``asyncio.run`` has no ``loop_factory``) and on 3.12+ alike.
4. Closing the window cancels every run, shuts the session down (within about 2 s) and returns.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .main_window import MainWindow

#: Shared libraries Qt's xcb platform plugin needs beyond a bare X client, and their packages.
XCB_LIBS: dict[str, str] = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
}
DEBIAN_PACKAGES = " ".join(XCB_LIBS.values())


def missing_xcb_libs() -> list[str]:
    """Debian packages whose libraries the xcb plugin needs and that cannot be loaded here."""
    missing = []
    for lib, pkg in XCB_LIBS.items():
        try:
            ctypes.CDLL(lib)
        except OSError:
            missing.append(pkg)
    return missing


def platform_problem(env: dict[str, str] | None = None) -> str | None:
    """One line explaining why Qt cannot open a window here, or None if it should work."""
    env = dict(os.environ if env is None else env)
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if platform and platform != "xcb":
        return None  # offscreen, wayland, vnc... Qt reports on its own
    if not platform and env.get("WAYLAND_DISPLAY"):
        return None
    missing = missing_xcb_libs()
    if missing:
        return ("taskscope: Qt cannot open a window: the xcb platform plugin needs libraries "
                f"that are missing. Install them with: sudo apt-get install {DEBIAN_PACKAGES}"
                f" (missing here: {' '.join(missing)})")
    if not env.get("DISPLAY"):
        return ("taskscope: no display to open a window on (DISPLAY is not set). Run it on a "
                "desktop, with ssh -X, or under xvfb-run; `taskscope run ...` works headless.")
    return None


def subcommands_help() -> str:
    """The headless subcommands, one a line, for ``taskscope --help``: the engine's own (from
    its parser) and ``bench``, which lives with the GUI."""
    from engine.cli import build_parser

    lines = ["subcommands (headless; `taskscope COMMAND --help` for each):"]
    for action in build_parser()._subparsers._group_actions:  # type: ignore[union-attr]
        for choice in action._choices_actions:  # type: ignore[attr-defined]
            lines.append(f"  {choice.dest:<10} {choice.help}")
    lines.append("  bench      measure speed and responsiveness against the targets "
                 "(opens windows offscreen)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    wants_help = any(a in ("-h", "--help") for a in argv)
    ap = argparse.ArgumentParser(
        prog="taskscope",
        usage="taskscope [--preset N] [--start] [--replay PATH] [--quit-after SECONDS]\n"
              "       taskscope {run,compare,bench,models,workloads,pythons} ...",
        description="See Python concurrency as it happens. With no subcommand, open the "
                    "TaskScope window.",
        epilog=subcommands_help() if wants_help else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                    help="close the window after this many seconds (for demos and smoke tests)")
    ap.add_argument("--preset", type=int, default=None, metavar="N",
                    help="fill the form with preset story N (1-5) first")
    ap.add_argument("--start", action="store_true",
                    help="start a run with the form's values at once")
    ap.add_argument("--replay", default=None, metavar="PATH",
                    help="open a saved trace (taskscope run ... --trace PATH, or File > Export) "
                         "in a read-only replay window at start")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv))


def paint_on_gui_thread() -> None:
    """Qt's raster engine paints on the GUI thread alone, never through its GUI thread pool.

    By default Qt hands every fill of more than about 64 spans (a vertical grid line, the
    timeline's cached background, a tall bar) to a pool of threads and waits on a latch for
    them: a thread wake-up and a futex wait per fill, several per frame, which cost more than
    the fills at this window's sizes and spend the time on two cores instead of one. A user's
    own ``QT_NO_GUI_THREADPOOL`` is kept (any value disables the pool; Qt reads it once, at the
    first paint). Measured (issue 17): the window's CPU while preset 5 runs live, offscreen,
    four alternating pairs at load 3-5, 9.56-10.87% of a core with the pool, 9.29-9.47% without.
    """
    os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")


def run(args: argparse.Namespace, on_shown: Callable[[MainWindow], None] | None = None) -> int:
    """Open the window with these options and run until it closes; the exit code.

    ``on_shown(window)`` is called once the window is shown and the options are applied, on the
    main thread before the GUI loop runs: the start-up probe of ``taskscope bench``
    (``gui/bench/startup_probe.py``) starts the app through here, so it times exactly this.
    """
    problem = platform_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2

    from .sampling import make_session

    session = make_session()  # the engine process starts (spawned, Qt-free) while Qt loads

    paint_on_gui_thread()
    import qasync
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from . import theme
    from .main_window import MainWindow
    from .settings import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication(["taskscope"])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setQuitOnLastWindowClosed(False)  # the window's close handler ends the loop itself
    theme.apply(app)

    code = 0
    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        loop = runner.get_loop()
        # It remembers its form, size and pane sizes (QSettings, under the names above).
        win = MainWindow(session, loop, settings=QSettings())
        win.show()
        win.raise_()
        win.activateWindow()  # without a window manager nothing else gives it keyboard focus
        if args.preset is not None:
            from .controls import PRESETS

            if not 1 <= args.preset <= len(PRESETS):
                print(f"taskscope: --preset takes 1 to {len(PRESETS)}", file=sys.stderr)
                return 2
            win.controls.preset.setCurrentIndex(args.preset)
        if args.start:
            QTimer.singleShot(300, win.controls.request_start)
        if args.replay:
            win.files.open_trace(args.replay)  # loads off the GUI thread; errors in a box
        if on_shown is not None:
            on_shown(win)
        if args.quit_after is not None:
            QTimer.singleShot(int(args.quit_after * 1000), win.close)
        try:
            runner.run(win.wait_closed())
        except KeyboardInterrupt:
            code = 130
    report = win.shutdown_report or session.shutdown(timeout=2.0)
    if not report.clean:
        print(f"taskscope: {len(report.stuck_tasks)} thread task(s) never checked for "
              "cancellation and were still running at exit", file=sys.stderr)
    return code
