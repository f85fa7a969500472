"""Other Pythons: find the interpreters here, prepare one to run the engine, say which ran it.

* :mod:`.discovery` lists the interpreters (PATH, pyenv, the current one) and whether each can
  run the engine now;
* :mod:`.prepare` makes an environment for one in TaskScope's cache (``taskscope pythons add``);
* :mod:`engine.build` says which interpreter this is (the ``python`` block every run carries);
* :mod:`.probe` asks an interpreter what it is; :mod:`.envs` says where environments live;
  :mod:`.requirements` what goes in them; :mod:`.command` is the ``taskscope pythons`` CLI.
"""

from __future__ import annotations

from ..build import python_block
from .discovery import Interpreter, assess, describe, discover

__all__ = ["Interpreter", "assess", "describe", "discover", "python_block"]
