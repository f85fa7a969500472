"""The task table's filter: by state group and by free text, as one regular expression.

A QSortFilterProxyModel over :class:`~gui.task_table.TaskTableModel` that only filters: a
header click is handed to the model, which sorts its own rows (see its docstring for why).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelRoleDataSpan,
    QRegularExpression,
    QSortFilterProxyModel,
    Qt,
)

from engine import State

from .task_table import FILTER_ROLE, SORT_ROLE, Index, TaskTableModel


class TaskFilter(QSortFilterProxyModel):
    """Filter by state group and by free text (id, worker, run); sorting is the source's.

    The proxy only filters. A header click (``sort``) is handed to the source
    :class:`TaskTableModel`, which reorders its own rows; the proxy shows them in that order
    (its own sort column stays -1). ``sortColumn``/``sortOrder`` answer the source's.
    """

    GROUPS: dict[str, tuple[State, ...]] = {
        "all states": (),
        "active (queued / running)": (State.QUEUED, State.RUNNING, State.CANCEL_REQUESTED),
        "running": (State.RUNNING, State.CANCEL_REQUESTED),
        "finished": (State.FINISHED,),
        "failed / timed out": (State.FAILED, State.TIMED_OUT),
        "cancelled": (State.CANCELLED, State.CANCEL_REQUESTED),
    }

    def __init__(self) -> None:
        super().__init__()
        self.states: tuple[State, ...] = ()
        self.text = ""
        self.setSortRole(SORT_ROLE)
        # Filtering is a regular expression over FILTER_ROLE, not a Python filterAcceptsRow:
        # Qt calls an override once per inserted row even with no filter set (10k rows: 30-40 ms
        # in one frame, measured by `taskscope bench`), while an empty pattern accepts every
        # row in C++ without asking the model.
        self.setFilterRole(FILTER_ROLE)
        self.setFilterKeyColumn(0)
        # Re-sorting and re-filtering on every dataChanged costs a Python call per row per
        # frame (seconds with 20k tasks). The window re-applies an active filter or sort a few
        # times per second instead (see refresh()).
        self.setDynamicSortFilter(False)
        self._fill: Callable[[int, int, QModelRoleDataSpan], None] | None = None
        self._filtered = -1  # the source's data_version the filter last saw

    def _tasks(self) -> TaskTableModel | None:
        src = self.sourceModel()
        return src if isinstance(src, TaskTableModel) else None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        tasks = self._tasks()
        if tasks is None:
            super().sort(column, order)
        else:
            tasks.sort(column, order)

    def sortColumn(self) -> int:
        tasks = self._tasks()
        return super().sortColumn() if tasks is None else tasks.sort_column

    def sortOrder(self) -> Qt.SortOrder:
        tasks = self._tasks()
        return super().sortOrder() if tasks is None else tasks.sort_order

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        super().setSourceModel(model)
        self._fill = getattr(model, "fill_roles", None)

    def multiData(self, index: Index, span: QModelRoleDataSpan) -> None:
        """All the roles a cell's paint asks for in one Python call, not one per role.

        Qt's proxy answers ``multiData`` with one ``data()`` per role, and each of those maps
        the index to the source and calls the source's Python ``data``: a paint of the task
        table made about 50 Python calls per row. Views call this once per cell.
        """
        if self._fill is None:
            super().multiData(index, span)
            return
        src = self.mapToSource(index)
        self._fill(src.row(), src.column(), span)

    @property
    def active(self) -> bool:
        return bool(self.states or self.text) or self.sortColumn() > 0

    def refresh(self) -> None:
        """Re-apply the sort and the filter to the rows' current states, if any changed.

        A sort that moves rows is a layout change of the source, after which this proxy
        filters every row again anyway; otherwise the filter is re-applied only when rows
        changed since it last ran. Nothing changed: nothing is done.
        """
        tasks = self._tasks()
        if tasks is None:
            if self.states or self.text:
                self._refilter()
            if self.sortColumn() > 0:
                super().sort(self.sortColumn(), self.sortOrder())
            return
        moved = tasks.resort() if tasks.sort_column > 0 else False
        if (self.states or self.text) and not moved and tasks.data_version != self._filtered:
            self._refilter()
        self._filtered = tasks.data_version

    def _refilter(self) -> None:
        """Filter every row again (their data changed, not the filter)."""
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+, where invalidateFilter is deprecated
            self.beginFilterChange()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def set_group(self, name: str) -> None:
        self.states = self.GROUPS.get(name, ())
        self._apply()

    def set_text(self, text: str) -> None:
        self.text = text.strip().lower()
        self._apply()

    def _apply(self) -> None:
        """One pattern over "state|haystack": the state among the group's, then the text
        anywhere in the haystack (task id, run, worker, state, reason). Empty: no filter."""
        if not self.states and not self.text:
            pattern = ""
        else:
            states = ("(?:" + "|".join(s.value for s in self.states) + ")" if self.states
                      else "[^|]*")
            pattern = f"^{states}\\|"
            if self.text:
                pattern += ".*" + QRegularExpression.escape(self.text)
        self.setFilterRegularExpression(QRegularExpression(
            pattern, QRegularExpression.PatternOption.DotMatchesEverythingOption))
        tasks = self._tasks()
        if tasks is not None:
            self._filtered = tasks.data_version  # every row was just filtered
