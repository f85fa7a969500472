"""TaskScope's desktop front end (PySide6 + pyqtgraph + qasync) on top of :mod:`engine`.

Importing this package is cheap and Qt-free; Qt is imported by :mod:`gui.app` only when the
window is opened.
"""
