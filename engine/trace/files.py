"""Writing export files safely: output paths checked up front, files replaced whole.

Every export (trace JSON, CSV, and the GUI's plot images) writes through here, so a typo in a
path fails before any work starts and an interrupted write never leaves half a file behind.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from .errors import TraceError


def check_output_path(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Check that ``path`` can be written, without leaving anything behind.

    Callers use this *before* starting a run, so a typo in an output path fails at once
    instead of after minutes of work. Raises :class:`TraceError` (one line).
    """
    p = Path(os.fspath(path)).expanduser()
    if str(path) == "" or str(path) == "-":
        raise TraceError(f"{what}: expected a file path, got {str(path)!r}")
    if p.is_dir():
        raise TraceError(f"{what}: {p} is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise TraceError(f"{what}: cannot write {p}: directory {parent} does not exist")
    if not parent.is_dir():
        raise TraceError(f"{what}: cannot write {p}: {parent} is not a directory")
    if p.exists() and not os.access(p, os.W_OK):
        raise TraceError(f"{what}: cannot write {p}: permission denied")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".check", dir=parent)
    except OSError as e:
        raise TraceError(f"{what}: cannot write {p}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)
    return p


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    A failed or interrupted export never leaves a half-written file where a good one was.
    """
    p = check_output_path(path)
    tmp = p.parent / f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        # os.open with 0o666 (not mkstemp's 0o600), so the file gets the user's usual umask.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise TraceError(f"cannot write {p}: {e.strerror or e}") from None
    return p
