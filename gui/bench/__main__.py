"""``python -m gui.bench``: the same as ``taskscope bench``."""

from __future__ import annotations

import sys

from gui.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
