"""The engine is Qt-free: statically (import-linter), in a fresh interpreter, and in its worker
processes, even when the parent process has Qt loaded (as the GUI does)."""

from __future__ import annotations

import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import engine
from engine.models.procpool import ProcPool

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "qasync", "gui")


def _forbidden(modules) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)


def worker_modules() -> list[str]:
    """Runs in a worker process: what it has imported."""
    return sorted(sys.modules)


def engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))


def test_lint_imports_contract_holds() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    p = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "KEPT" in p.stdout and "BROKEN" not in p.stdout


def test_lint_imports_catches_a_qt_import_in_the_engine(tmp_path: Path) -> None:
    """The contract bites: a copy of the project whose engine imports Qt is refused."""
    import shutil

    for d in ("engine", "gui"):
        shutil.copytree(ROOT / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "engine" / "_qt_leak.py").write_text("import PySide6.QtCore  # noqa\n")
    exe = Path(sys.executable).with_name("lint-imports")
    p = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       check=False, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert p.returncode != 0, p.stdout
    assert "BROKEN" in p.stdout and "engine._qt_leak" in p.stdout


def test_every_engine_module_imports_without_qt_in_a_fresh_interpreter() -> None:
    mods = engine_modules()
    assert "engine.session" in mods and "engine.models.procpool" in mods
    code = textwrap.dedent(f"""
        import importlib, json, sys
        for m in {mods!r}:
            importlib.import_module(m)
        print(json.dumps(sorted(sys.modules)))
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    loaded = json.loads(p.stdout)
    assert set(mods) <= set(loaded)
    assert _forbidden(loaded) == []


def test_a_process_worker_has_no_qt(leak_check) -> None:
    pool = ProcPool(1, lambda batch: None, name="modules-test")
    try:
        mods = pool.submit(worker_modules).result(timeout=30)
    finally:
        pool.shutdown()
    assert "engine.models._procworker" in mods
    assert _forbidden(mods) == []


@pytest.mark.skipif(importlib.util.find_spec("PySide6") is None, reason="PySide6 not installed")
def test_workers_stay_qt_free_when_the_parent_has_qt(tmp_path: Path) -> None:
    """The GUI's situation: Qt is loaded in the parent, then a process run starts."""
    script = tmp_path / "parent_with_qt.py"
    script.write_text(textwrap.dedent("""
        import json, sys, time

        if __name__ == "__main__":
            import PySide6.QtCore  # noqa: F401  (the parent has Qt, as the GUI does)
            import engine
            from engine.models.procpool import ProcPool

            assert "PySide6.QtCore" in sys.modules
            pool = ProcPool(1, lambda batch: None, name="qt-parent")
            t0 = time.monotonic()
            mods = pool.submit(eval, "sorted(__import__('sys').modules)").result(timeout=60)
            first = time.monotonic() - t0
            pool.shutdown()
            with engine.Session() as s:
                run = s.start(engine.make_spec("processes", "cpu", tasks=2, size="20ms"))
                assert run.wait(60)
                states = sorted(t.state.value for t in s.store.tasks(run.run_id))
            print(json.dumps({"mods": mods, "first_s": first, "states": states}))
    """))
    p = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert _forbidden(out["mods"]) == []
    assert out["states"] == ["finished", "finished"]
