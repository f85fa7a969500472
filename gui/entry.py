"""The ``taskscope`` console script: a subcommand runs headless, no subcommand opens the window.

Kept tiny and Qt-free: worker processes started by the engine re-import the console script
as their ``__main__``, and a worker must never import Qt.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

SUBCOMMANDS = {"run", "compare", "bench", "models", "workloads", "pythons"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # Ctrl+C while it imports, before any handler of its own
        print("\ntaskscope: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "bench":
        # The bench opens a window (offscreen), so it lives on the GUI side: gui/bench/.
        from gui.bench.cli import main as bench_main

        return bench_main(args[1:])
    if args and (args[0] in SUBCOMMANDS or not args[0].startswith("-")):
        # Ctrl+C while the engine imports is held until the import is whole: a
        # KeyboardInterrupt inside an import can leave its lock taken, and the process then
        # hangs on its way out. The commands set their own handling from here on.
        hit: list[int] = []
        old = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
        try:
            from engine.cli import main as cli_main
        finally:
            signal.signal(signal.SIGINT, old)
        if hit:
            raise KeyboardInterrupt
        return cli_main(args)
    from gui.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
