"""The engine's floors hold: the layers contract in pyproject.toml is checked, and it would
catch an import that runs back up a floor."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run([exe], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(cwd), "PATH": str(Path(sys.executable).parent)})


def test_the_floors_contract_is_kept() -> None:
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "The engine's floors KEPT" in r.stdout


def test_an_import_back_up_a_floor_breaks_it(tmp_path: Path) -> None:
    """A copy of the tree where the store imports the session (a floor above it)."""
    shutil.copytree(ROOT / "engine", tmp_path / "engine",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "gui", tmp_path / "gui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    store = tmp_path / "engine" / "store.py"
    store.write_text(store.read_text() + "\nfrom . import session  # noqa: E402,F401\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "The engine's floors BROKEN" in r.stdout
    assert "engine.store is not allowed to import engine.session" in r.stdout
