"""Show code: the standalone script for the configuration on screen, one tab per model.

The text is exactly what :func:`engine.scriptgen.generate` returns for each validated spec: a
script that runs with a plain ``python``, without TaskScope. Read-only, monospace, with Copy
and Save…. A spec that has no standalone equivalent shows the engine's :class:`ScriptError`
message in its tab instead.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import RunSpec
from engine.scriptgen import ScriptError, generate

from . import theme


class CodeDialog(QDialog):
    """One tab per spec; ``scripts[model]`` is the text (None where generation failed)."""

    def __init__(self, specs: list[RunSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Show code: the same runs as standalone Python")
        self.resize(900, 720)
        self.specs = list(specs)
        self.scripts: dict[str, str | None] = {}
        self.errors: dict[str, str] = {}
        self.last_saved: Path | None = None

        lay = QVBoxLayout(self)
        s0 = self.specs[0] if self.specs else None
        if s0 is not None:
            what = (f"{s0.workload} · {s0.tasks} tasks"
                    + ("" if s0.workload == "custom" else f" × {s0.size_s * 1e3:g} ms")
                    + f" · {s0.policy}")
            head = QLabel(f"Standalone scripts for <b>{what}</b>, one per model: copy one and "
                          "run it with <code>python script.py</code>; TaskScope is not needed.")
            head.setWordWrap(True)
            lay.addWidget(head)
        self.tabs = QTabWidget()
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setFamilies([mono.family(), "DejaVu Sans Mono", "Noto Mono", "Liberation Mono",
                          "monospace"])
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        mono.setFixedPitch(True)
        for spec in self.specs:
            try:
                text: str | None = generate(spec)
            except ScriptError as e:
                text = None
                self.errors[spec.model] = str(e)
            self.scripts[spec.model] = text
            if text is None:
                page = QLabel(f"No standalone script for {spec.model}: {self.errors[spec.model]}")
                page.setObjectName("fieldError")
                page.setStyleSheet(f"color: {theme.ERROR}; padding: 12px;")
                page.setWordWrap(True)
            else:
                page = QPlainTextEdit()
                page.setReadOnly(True)
                page.setFont(mono)
                page.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
                page.setPlainText(text)
            self.tabs.addTab(page, spec.model)
        lay.addWidget(self.tabs, 1)

        row = QHBoxLayout()
        self.message = QLabel("")
        self.message.setObjectName("hint")
        row.addWidget(self.message, 1)
        self.copy_btn = QPushButton("Copy")
        self.copy_btn.setToolTip("Copy this tab's script to the clipboard")
        self.copy_btn.clicked.connect(self.copy)
        self.save_btn = QPushButton("Save…")
        self.save_btn.setToolTip("Save this tab's script as a .py file")
        self.save_btn.clicked.connect(lambda: self.save())
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for b in (self.copy_btn, self.save_btn, close):
            row.addWidget(b)
        lay.addLayout(row)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Copy), self, activated=self._copy_key)
        self.tabs.currentChanged.connect(self._tab_changed)
        self._tab_changed(self.tabs.currentIndex())

    def current_model(self) -> str | None:
        i = self.tabs.currentIndex()
        return self.specs[i].model if 0 <= i < len(self.specs) else None

    def current_script(self) -> str | None:
        m = self.current_model()
        return None if m is None else self.scripts.get(m)

    def _tab_changed(self, _i: int) -> None:
        ok = self.current_script() is not None
        self.copy_btn.setEnabled(ok)
        self.save_btn.setEnabled(ok)
        self.message.setText("")

    def _copy_key(self) -> None:
        page = self.tabs.currentWidget()
        if isinstance(page, QPlainTextEdit) and page.textCursor().hasSelection():
            page.copy()  # a selection copies the selection, as everywhere
        else:
            self.copy()

    def copy(self) -> None:
        text = self.current_script()
        if text is None:
            return
        QGuiApplication.clipboard().setText(text)
        self.message.setText(f"Copied the {self.current_model()} script ({len(text):,} chars).")

    def default_name(self) -> str:
        m = self.current_model() or "script"
        wl = self.specs[0].workload if self.specs else "run"
        return f"taskscope_{wl}_{m.replace('-', '_')}.py"

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write this tab's script to ``path`` (asks with a file dialog when None)."""
        text = self.current_script()
        if text is None:
            return None
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save script", self.default_name(),
                                                    "Python files (*.py)")
            if not chosen:
                return None
            path = chosen
        p = Path(path)
        try:
            p.write_text(text, encoding="utf-8")
        except OSError as e:
            self.message.setText(f"Could not save: {e}")
            return None
        self.last_saved = p
        self.message.setText(f"Saved {p}")
        return p
