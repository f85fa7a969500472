"""Entry point of the engine process (see :mod:`engine.remote`): ``python -m engine._engine_proc``.

A module of its own, kept thin: the engine process imports the engine only, never Qt, and
``engine.remote.server`` is imported once, under its own name.
"""

import sys

from engine.remote.server import child_main

if __name__ == "__main__":
    child_main(sys.argv[1:])
