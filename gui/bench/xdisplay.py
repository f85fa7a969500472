"""A real X display for the window figures: a private Xvfb when one can start, else ``$DISPLAY``.

Offscreen, Qt paints into memory and never talks to a display server; on a real X display
every frame goes through xcb to the server. The window's cost and its GUI loop's lag differ
between the two (issue 17: 29-32% of a core offscreen, 40-45% on Xvfb), so the bench measures
on a real display when it can get one, and says which:

* ``Xvfb`` on ``PATH`` (Debian: ``apt-get install xvfb``): the bench starts its own on a free
  display number (``-displayfd``: the server picks it and says when it accepts connections)
  and stops it afterwards. Preferred: it is the same everywhere and never opens windows on the
  user's desktop;
* else ``$DISPLAY``, the display the bench was started on;
* else none: the figures are measured offscreen only, and the bench says why.

Importing this module is Qt-free.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

#: The virtual screen: the size the window opens at on a desktop (gui.app caps it there).
SCREEN = "1600x1000x24"


@dataclass
class XDisplay:
    """An X display to open windows on; :meth:`close` stops the server if the bench started it."""

    name: str  # ":523"
    #: What the figures say about it: "Xvfb :523 (started by the bench)", "X display :0".
    description: str
    #: The same for a label: "on Xvfb", "on X display :0".
    short: str
    #: The X server's process, when the bench started it (its CPU is reported beside the
    #: window's: every frame's drawing is done there).
    proc: subprocess.Popen[bytes] | None = None
    #: Where that server writes its warnings (a file: a server writing into a pipe nobody
    #: reads any more dies of SIGPIPE).
    log: Any = None

    @property
    def server_pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) set up to open windows here."""
        env = dict(os.environ if base is None else base)
        env["DISPLAY"] = self.name
        env["QT_QPA_PLATFORM"] = "xcb"
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def state(self) -> str:
        """For an error message: whether the server the bench started still runs, and the
        last lines it wrote."""
        if self.proc is None:
            return f"{self.description}: not started by the bench"
        code = self.proc.poll()
        said = ""
        if self.log is not None:
            self.log.seek(0)
            said = " | ".join(self.log.read().decode(errors="replace").strip().splitlines()[-3:])
        return (f"{self.description}: " + ("running" if code is None else f"exited {code}")
                + (f"; it said: {said}" if said else ""))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.log is not None:
            self.log.close()
            self.log = None


def _missing_libs() -> str | None:
    from ..app import missing_xcb_libs  # Qt-free: it only tries to load the libraries

    missing = missing_xcb_libs()
    if missing:
        return f"Qt's xcb plugin lacks libraries here (install {' '.join(missing)})"
    return None


def start_xvfb(timeout: float = 10.0) -> XDisplay:
    """Start a private Xvfb on a display number it picks; return once it accepts connections.
    Raises RuntimeError (with Xvfb's own words) if it does not."""
    exe = shutil.which("Xvfb")
    if exe is None:
        raise RuntimeError("Xvfb is not on PATH")
    r, w = os.pipe()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the display closes it
    try:
        proc = subprocess.Popen(
            [exe, "-displayfd", str(w), "-screen", "0", SCREEN, "-nolisten", "tcp"],
            pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True)
    except OSError:
        log.close()
        raise
    finally:
        os.close(w)
    try:
        num = _read_line(r, timeout)
    finally:
        os.close(r)
    d = XDisplay(f":{num}", f"Xvfb :{num} (started by the bench)", "on Xvfb", proc, log)
    if not num.isdigit():
        proc.kill()
        proc.wait(5)
        why = d.state()
        d.close()
        raise RuntimeError(f"Xvfb did not start within {timeout:g} s: {why}")
    return d


def _read_line(fd: int, timeout: float) -> str:
    """A line from ``fd`` (the display number), read to its newline: the server may write the
    number and the newline apart, and closing the pipe before the newline kills it (EPIPE:
    "Cannot write display number")."""
    deadline = time.monotonic() + timeout
    got = b""
    while not got.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 64)
        if not chunk:  # the server closed it: died, or wrote all it will
            break
        got += chunk
    return got.decode(errors="replace").strip()


def open_x_display() -> tuple[XDisplay | None, str]:
    """``(display, "")``, or ``(None, why not)``: a private Xvfb if ``Xvfb`` is on PATH, else
    ``$DISPLAY`` if set. The caller closes the display."""
    missing = _missing_libs()
    if missing:
        return None, missing
    if shutil.which("Xvfb"):
        try:
            return start_xvfb(), ""
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            why = f"Xvfb would not start: {e}"
            if not os.environ.get("DISPLAY"):
                return None, why
    if os.environ.get("DISPLAY"):
        d = os.environ["DISPLAY"]
        return XDisplay(d, f"X display {d} ($DISPLAY)", f"on X display {d}"), ""
    return None, "no X display: Xvfb is not on PATH (Debian: apt-get install xvfb) and DISPLAY " \
                 "is not set"
