"""The run and task tables' models: QAbstractTableModels over the store's live records.

The models hold references to the store's live :class:`~engine.TaskRecord` objects and read
their fields when a view asks; each frame the window tells them which rows changed and they emit
one ``dataChanged`` for the whole changed range (never one signal per event). The task model
sorts its own rows (:meth:`TaskTableModel.sort`); :mod:`gui.task_filter` filters them and
:mod:`gui.table_delegates` paints their buttons and progress bars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QModelRoleDataSpan,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

import engine
from engine import RunRecord, State, TaskRecord
from engine.build import python_block, python_label
from engine.spec import workload_label

from . import theme
from .task_text import fmt_s, worker_text
from .worker_kind import worker_kind

Index = QModelIndex | QPersistentModelIndex
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1
ENABLED_ROLE = Qt.ItemDataRole.UserRole + 2
SORT_ROLE = Qt.ItemDataRole.UserRole + 3
ID_ROLE = Qt.ItemDataRole.UserRole + 4
#: "state|haystack" for the task filter's regular expression (see gui.task_filter).
FILTER_ROLE = Qt.ItemDataRole.UserRole + 5
#: What a delegate paints, in one call: (text, enabled) in a button column, (fraction, text)
#: in a progress column.
CELL_ROLE = Qt.ItemDataRole.UserRole + 6

# Roles as plain ints: data() runs tens of thousands of times a second under load, and an
# enum member's attribute lookup costs more than the comparison it feeds.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_PROGRESS, _ENABLED, _SORT, _ID, _FILTER, _CELL = (int(r) for r in (
    PROGRESS_ROLE, ENABLED_ROLE, SORT_ROLE, ID_ROLE, FILTER_ROLE, CELL_ROLE))
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_ROOT = QModelIndex()
# The layout signals' overload that carries a hint (PySide's plain emit() takes no arguments).
_PERSISTENT_LIST = "QList<QPersistentModelIndex>"
_HINT = QAbstractItemModel.LayoutChangeHint


class _RecordTableModel(QAbstractTableModel):
    """What both tables share: one record per row in a list (``_items``, the subclass's own
    list under another name), found by id through ``row_of``, under fixed columns ``COLS``.

    ``index()`` is Qt's: it calls ``rowCount`` and ``columnCount`` for its bounds check, so
    those two stay short (a Python ``index`` override measured no faster).
    """

    COLS: tuple[str, ...] = ()
    row_of: dict[int, int]
    _items: list[Any]

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self.row_of.clear()
        self.endResetModel()

    def rowCount(self, parent: Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.COLS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLS[section]
        return None


class TaskTableModel(_RecordTableModel):
    """One row per task of every run: in the order they were added (task-id order) until the
    table is sorted, then in the sort's order.

    The model sorts its own rows (:meth:`sort`, which the view's :class:`TaskFilter` hands
    header clicks to): the keys of every row in one Python pass, one Python ``sorted``, one
    layout change. A QSortFilterProxyModel sort asks the model for two keys per comparison,
    ~280k Python ``data`` calls for 10k rows: 0.5-1 s of GUI thread at a time, three times a
    second while a live table was sorted. Here it is a few ms (10k rows) to a few tens of ms
    (50k); :meth:`resort` does nothing at all when nothing the order depends on changed.
    """

    COLS = ("Task", "Run", "State", "Worker", "Core", "Duration", "Progress", "Cancel", "Force")
    C_STATE, C_WORKER, C_DUR, C_PROG, C_CANCEL, C_FORCE = 2, 3, 5, 6, 7, 8

    def __init__(self, now_ns: Callable[[], int], model_of: Callable[[int], str],
                 can_force: Callable[[int], bool]) -> None:
        super().__init__()
        self.recs: list[TaskRecord] = []
        self._items = self.recs
        self.row_of: dict[int, int] = {}
        self.now_ns = now_ns
        self.model_of = model_of
        self.can_force = can_force
        self._brushes = {s: QBrush(QColor(c)) for s, c in theme.STATE_COLORS.items()}
        #: The rows' order: by SORT_ROLE of this column, or -1: unsorted (the order rows were
        #: added in, which is task-id order).
        self.sort_column = -1
        self.sort_order = Qt.SortOrder.AscendingOrder
        self.rows_version = 0  # + 1 whenever rows come or go
        self.data_version = 0  # + 1 whenever changed() reports changed rows
        #: What the last sort saw: (column, order, rows_version, data_version or 0).
        self._sorted: tuple[int, Qt.SortOrder, int, int] | None = None
        #: The clock the last Duration sort read, when a row was running (its key grows).
        self._sorted_now: int | None = None
        self.sorts = 0  # how many times the rows were sorted (tests and benchmarks count them)
        #: task id -> the look last announced (see changed), for rows that can still change.
        self._looks: dict[int, tuple[Any, ...]] = {}

    # -- updates from the frame tick ---------------------------------------------------------
    def add(self, recs: list[TaskRecord]) -> None:
        if not recs:
            return
        first = len(self.recs)
        self.beginInsertRows(QModelIndex(), first, first + len(recs) - 1)
        for r in recs:
            self.row_of[r.task_id] = len(self.recs)
            self.recs.append(r)
        self.endInsertRows()
        self.rows_version += 1
        if self.sort_column >= 0:
            self.resort()  # new rows go to their place at once, as in a sorted proxy

    def clear(self) -> None:
        super().clear()
        self._looks.clear()
        self.rows_version += 1

    def changed(self, task_ids: Iterable[int], running_too: bool = True,
                progress: bool = True) -> set[int]:
        """Announce changed rows: each with only the cells whose look changed (up to
        TIGHT_ROWS rows), or one dataChanged over them all. With ``progress`` False, a row
        whose only change is its progress is not announced: its id is returned (the window
        announces it again at its next table tick, with the running durations), and its
        progress still counts as changed then.

        A view repaints what dataChanged covers, and the task table's cells are the dearest
        part of the window to paint (Qt's item delegate lays out each cell's text again, and
        every cell is a Python ``multiData`` call: ~60-200 us per cell on a busy 2-core
        machine). One range from the first to the last changed row, every column, repainted
        rows that had not changed and, for a running task whose progress moved, eight cells
        that had not either: the table was a third of the window's CPU during a live run
        (issue 17). A row's look (:meth:`_look`) is kept while it can still change; a row
        seen for the first time announces every column.
        """
        row_of, recs = self.row_of, self.recs
        rows = sorted(row_of[t] for t in task_ids if t in row_of)
        held: set[int] = set()
        if not rows:
            return held
        self.data_version += 1
        if len(rows) > self.TIGHT_ROWS:
            self._looks.clear()  # a flood: one range, as cheap as any; looks start again
            self.dataChanged.emit(self.index(rows[0], 0),
                                  self.index(rows[-1], len(self.COLS) - 1))
            return held
        looks, index, emit = self._looks, self.index, self.dataChanged.emit
        last = len(self.COLS) - 1
        for row in rows:
            r = recs[row]
            look = self._look(r)
            old = looks.get(r.task_id)
            if old is not None and not progress and old[:-1] == look[:-1] and old != look:
                held.add(r.task_id)  # only its progress moved: at the next tick (its old
                continue  # look is kept, so the move is still seen then)
            if r.state.terminal:
                looks.pop(r.task_id, None)  # it ends here: no further look to compare
            else:
                looks[r.task_id] = look
            if old is None:
                lo, hi = 0, last
            else:
                cols = [c for part, was, now in zip(self._LOOK_COLS, old, look, strict=True)
                        if was != now for c in part]
                if not cols:
                    continue
                lo, hi = min(cols), max(cols)
            emit(index(row, lo), index(row, hi))
        return held

    #: Changed rows announced one by one, each with its changed cells; more: one range.
    TIGHT_ROWS = 64
    #: The columns each part of a row's look (:meth:`_look`) shows: state (its text and
    #: colour, and whether Cancel and Kill are live), worker, core, duration, progress.
    _LOOK_COLS = ((2, 7, 8), (3,), (4,), (5,), (6,))

    @staticmethod
    def _look(r: TaskRecord) -> tuple[Any, ...]:
        """What a row's changing cells are drawn from, part by part (see _LOOK_COLS): the
        record's own fields, not the cells' texts (a running task's Duration moves with the
        clock; the window repaints those cells itself, see MainWindow._table_paint)."""
        return (r.state, (r.pid, r.tid, r.thread, r.task_name), r.core,
                (r.start_ns, r.end_ns), int(r.progress * 1000))

    # -- sorting -----------------------------------------------------------------------------
    #: Columns whose key is the task id (-1: unsorted, task-id order) or the same for every
    #: row: only new rows can change their order, not changed ones.
    _FIXED_KEYS = frozenset((-1, 0, 1, 7))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows by ``column``'s SORT_ROLE, as a header click asks (through
        :meth:`gui.task_filter.TaskFilter.sort`). Column -1: back to task-id order."""
        self.sort_column, self.sort_order = column, order
        self._sort_rows()

    def order_stale(self) -> bool:
        """Whether something the rows' order depends on changed since the last sort: rows
        came or went, a row changed (unless the column's key is the task id), or the clock
        moved under a Duration sort with running rows."""
        c = self.sort_column
        seen = (c, self.sort_order, self.rows_version,
                0 if c in self._FIXED_KEYS else self.data_version)
        if seen != self._sorted:
            return True
        return self._sorted_now is not None and self.now_ns() != self._sorted_now

    def resort(self) -> bool:
        """Sort again by the current column if the order may have changed (see
        :meth:`order_stale`); True if rows moved (the layout changed)."""
        if self.sort_column < 0 or not self.order_stale():
            return False
        return self._sort_rows()

    def sort_keys(self, c: int) -> list[Any]:
        """``value(r, c, SORT_ROLE)`` of every row, in row order, in one pass."""
        recs = self.recs
        self._sorted_now = None
        if c < 0 or c in (0, 1):
            return [r.task_id for r in recs]
        if c == self.C_STATE:
            # The member, not ``.value`` (an enum property, 5x slower): State is a str enum,
            # so members compare exactly as their values do.
            return [r.state for r in recs]
        if c == 4:
            return [r.core for r in recs]
        if c == self.C_PROG:
            return [r.progress for r in recs]
        if c == self.C_DUR:
            # One clock reading for all rows (a proxy sort read it once per comparison).
            now = self.now_ns()
            keys: list[Any] = []
            running = False
            for r in recs:
                start = r.start_ns
                if start is None:
                    keys.append(0.0)
                    continue
                end = r.end_ns
                if end is None:
                    end = now
                    running = True
                keys.append(max(0, end - start) / 1e9)
            if running:
                self._sorted_now = now
            return keys
        if c == self.C_WORKER:
            models: dict[int, str] = {}
            model_of = self.model_of
            keys = []
            for r in recs:
                model = models.get(r.run_id)
                if model is None:
                    model = models[r.run_id] = model_of(r.run_id)
                keys.append(worker_text(r, model))
            return keys
        value = self.value
        if c in (self.C_CANCEL, self.C_FORCE):  # the same for every task of a run
            per_run: dict[int, Any] = {}
            keys = []
            for r in recs:
                key = per_run.get(r.run_id, per_run)
                if key is per_run:
                    key = per_run[r.run_id] = value(r, c, _SORT)
                keys.append(key)
            return keys
        return [value(r, c, _SORT) for r in recs]

    def _sort_rows(self) -> bool:
        """Reorder ``recs`` by the current sort; True if any row moved.

        Stable, like the proxy sort it replaces: rows with equal keys keep their current
        order, ascending and descending (``sorted(..., reverse=True)`` is stable too).
        Persistent indexes (the view's selection, current row) move with their rows.
        """
        c, desc = self.sort_column, self.sort_order == Qt.SortOrder.DescendingOrder
        recs = self.recs
        n = len(recs)
        keys = self.sort_keys(c)
        order = sorted(range(n), key=keys.__getitem__, reverse=desc)
        self._sorted = (c, self.sort_order, self.rows_version,
                        0 if c in self._FIXED_KEYS else self.data_version)
        self.sorts += 1
        if order == list(range(n)):
            return False  # nothing moved: no layout change, the views redo nothing
        hint = _HINT.VerticalSortHint
        self.layoutAboutToBeChanged[_PERSISTENT_LIST, _HINT].emit([], hint)
        old = [p for p in self.persistentIndexList() if p.row() >= 0]
        if old:
            new_row = [0] * n
            for new, was in enumerate(order):
                new_row[was] = new
            index = self.index
            self.changePersistentIndexList(
                old, [index(new_row[p.row()], p.column()) for p in old])
        recs[:] = [recs[i] for i in order]
        self.row_of.update(zip([r.task_id for r in recs], range(n), strict=True))
        self.layoutChanged[_PERSISTENT_LIST, _HINT].emit([], hint)
        return True

    # -- Qt model ----------------------------------------------------------------------------
    def duration_s(self, r: TaskRecord) -> float | None:
        if r.start_ns is None:
            return None
        end = r.end_ns if r.end_ns is not None else self.now_ns()
        return max(0, end - r.start_ns) / 1e9

    #: The roles this model answers; any other role is None without further work. A view
    #: asks each cell for seven roles per paint (font, alignment, colour, check state,
    #: decoration, text, background), most of which no task cell sets.
    ROLES = frozenset((_DISPLAY, _CELL, _SORT, _ID, _FILTER, _PROGRESS, _ENABLED, _FOREGROUND,
                       _TOOLTIP, _ALIGN))

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        if role not in self.ROLES:
            return None
        row = index.row()  # -1 for an invalid index
        if not 0 <= row < len(self.recs):
            return None
        return self.value(self.recs[row], index.column(), role)

    def fill_roles(self, row: int, column: int, span: QModelRoleDataSpan) -> None:
        """``multiData`` for source row ``row``: every role of ``span`` from one lookup (see
        :meth:`gui.task_filter.TaskFilter.multiData`)."""
        if not 0 <= row < len(self.recs):
            for rd in span:
                rd.clearData()
            return
        r = self.recs[row]
        roles = self.ROLES
        value = self.value
        for rd in span:
            role = rd.role()
            v = value(r, column, role) if role in roles else None
            if v is None:
                rd.clearData()
            else:
                rd.setData(v)

    def value(self, r: TaskRecord, c: int, role: int) -> Any:
        """What :meth:`data` answers for record ``r`` in column ``c``."""
        if role == _DISPLAY:
            if c == 0:
                return str(r.task_id)
            if c == 1:
                return f"{r.run_id} · #{r.index}"
            if c == self.C_STATE:
                return theme.STATE_LABELS[r.state]
            if c == self.C_WORKER:
                return worker_text(r, self.model_of(r.run_id))
            if c == 4:
                return "" if r.core < 0 else str(r.core)
            if c == self.C_DUR:
                return fmt_s(self.duration_s(r))
            if c == self.C_PROG:
                return f"{r.progress * 100:.0f}%"
            if c == self.C_CANCEL:
                return "Cancel"
            if c == self.C_FORCE:
                return "Kill" if self.can_force(r.run_id) else ""
            return None
        if role == _CELL:
            if c == self.C_PROG:
                return (r.progress, f"{r.progress * 100:.0f}%")
            if c == self.C_CANCEL:
                return ("Cancel", not r.state.terminal)
            if c == self.C_FORCE:
                force = self.can_force(r.run_id)
                return ("Kill" if force else "", force and not r.state.terminal)
            return None
        if role == _ALIGN:
            return _RIGHT if c in (0, 4, self.C_DUR, self.C_PROG) else None
        if role == _FOREGROUND:
            return self._brushes[r.state] if c == self.C_STATE else None
        if role == _SORT:
            if c == 0:
                return r.task_id
            if c == 1:
                return r.task_id  # run, then index: task ids are allocated in that order
            if c == self.C_STATE:
                return r.state.value
            if c == 4:
                return r.core
            if c == self.C_DUR:
                return self.duration_s(r) or 0.0
            if c == self.C_PROG:
                return r.progress
            return self.value(r, c, _DISPLAY) or ""
        if role == _ID:
            return r.task_id
        if role == _FILTER:
            return (f"{r.state.value}|{r.task_id} run{r.run_id} "
                    f"{worker_text(r, self.model_of(r.run_id))} {r.state.value} "
                    f"{r.reason}").lower()
        if role == _PROGRESS:
            return r.progress
        if role == _ENABLED:
            if c == self.C_FORCE:
                return not r.state.terminal and self.can_force(r.run_id)
            return not r.state.terminal
        if role == _TOOLTIP:
            if c == self.C_CANCEL:
                if r.state.terminal:
                    return f"task {r.task_id} already {theme.STATE_LABELS[r.state]}"
                return f"Cancel task {r.task_id} (cooperative: it stops at its next check)"
            if c == self.C_FORCE:
                if self.can_force(r.run_id):
                    model = self.model_of(r.run_id)
                    if worker_kind(model) == "cluster":  # in the model's own words
                        return f"Kill ({model}). Cancel: {engine.model_info(model).cancel_note}"
                    return "Force cancel: kill this task's worker process (the pool replaces it)"
                return _no_kill(self.model_of(r.run_id), "This task")
            if r.error:
                return f"{r.error.get('type', 'error')}: {r.error.get('message', '')}"
            if r.reason:
                return r.reason
        return None


def _no_kill(model: str, what: str) -> str:
    """Why ``what`` has no Kill, in the model's own words: a thread's, a coroutine's or a
    sub-interpreter's cancel is cooperative (issue 14: the UI says so for interpreters)."""
    try:
        note = engine.model_info(model).cancel_note
    except engine.SpecError:  # a replayed run of a model this version does not know
        note = "cooperative"
    return f"{what} cannot be killed ({model}). Cancel: {note}"


#: How a run's tasks can end, in the order its progress bar shows them.
ENDINGS = ("finished", "failed", "timed_out", "cancelled")
_ENDING_COLOURS = {k: theme.STATE_COLORS[State(k)] for k in ENDINGS}
#: This window's own interpreter: a run elsewhere says where in its Model cell.
_HERE = python_label(python_block())


class RunTableModel(_RecordTableModel):
    """One row per run: what it is, its progress, its counts, and Cancel run."""

    COLS = ("Run", "Model", "Workload", "Progress", "Counts", "Wall", "Cancel", "Force")
    C_PROG, C_WALL, C_CANCEL, C_FORCE = 3, 5, 6, 7

    def __init__(self, now_ns: Callable[[], int], can_force: Callable[[int], bool],
                 on_gui_loop: Callable[[int], bool]) -> None:
        super().__init__()
        self.runs: list[RunRecord] = []
        self._items = self.runs
        self.row_of: dict[int, int] = {}
        self.now_ns = now_ns
        self.can_force = can_force
        self.on_gui_loop = on_gui_loop

    def add(self, run: RunRecord) -> None:
        n = len(self.runs)
        self.beginInsertRows(QModelIndex(), n, n)
        self.row_of[run.run_id] = n
        self.runs.append(run)
        self.endInsertRows()

    def refresh(self) -> None:
        if self.runs:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self.runs) - 1, len(self.COLS) - 1))

    @staticmethod
    def ended(run: RunRecord) -> int:
        c = run.counts
        return sum(c.get(k, 0) for k in ENDINGS)

    @staticmethod
    def progress(run: RunRecord) -> tuple[tuple[tuple[float, str], ...], str]:
        """The run's progress cell: one segment per way its tasks ended, ``(fraction of the
        run, colour)`` in :data:`ENDINGS` order, and the text, which counts finished tasks
        only: "8 cancelled" is an empty "0/8" bar, all grey, never a full "8/8"."""
        n = len(run.task_ids)
        c = run.counts
        segs = tuple((c.get(k, 0) / n, _ENDING_COLOURS[k]) for k in ENDINGS
                     if n and c.get(k, 0) > 0)
        return segs, f"{c.get('finished', 0)}/{n}"

    @staticmethod
    def progress_tip(run: RunRecord) -> str:
        c = run.counts
        parts = [f"{c.get(k, 0)} {k.replace('_', ' ')}" for k in ENDINGS if c.get(k, 0) > 0]
        return (f"{', '.join(parts) or 'none ended'} of {len(run.task_ids)} tasks"
                " (the bar: green finished, red failed, purple timed out, grey cancelled)")

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self.runs[index.row()]
        spec = run.spec
        c = index.column()
        n = len(run.task_ids)
        if role == Qt.ItemDataRole.DisplayRole:
            if c == 0:
                return f"run {run.run_id}"
            if c == 1:
                # Another interpreter than the window's own ran it: say which (issue 14).
                py = python_label(run.info.get("python"))
                return (spec.model + (" (GUI loop)" if self.on_gui_loop(run.run_id) else "")
                        + ("" if py in (_HERE, "?") else f" · {py}"))
            if c == 2:  # a custom run by its call: the size means nothing to it
                return workload_label(spec.workload, spec.tasks, spec.size_s, spec.params,
                                      compact=True)
            if c == self.C_PROG:
                return self.progress(run)[1]
            if c == 4:
                order = ("running", "finished", "failed", "cancelled", "timed_out", "queued")
                parts = [f"{run.counts.get(k, 0)} {k.replace('_', ' ')}" for k in order
                         if run.counts.get(k, 0) > 0]
                return ", ".join(parts)
            if c == self.C_WALL:
                end = run.end_ns if run.end_ns is not None else self.now_ns()
                return fmt_s((end - run.start_ns) / 1e9)
            if c == self.C_CANCEL:
                return "Cancel run"
            if c == self.C_FORCE:
                return "Kill all" if self.can_force(run.run_id) else ""
            return None
        if role == CELL_ROLE:
            if c == self.C_PROG:
                return self.progress(run)
            if c == self.C_CANCEL:
                return ("Cancel run", not run.done)
            if c == self.C_FORCE:
                force = self.can_force(run.run_id)
                return ("Kill all" if force else "", force and not run.done)
            return None
        if role == ID_ROLE:
            return run.run_id
        if role == PROGRESS_ROLE:  # the share that finished
            return run.counts.get("finished", 0) / n if n else 1.0
        if role == ENABLED_ROLE:
            if c == self.C_FORCE:
                return not run.done and self.can_force(run.run_id)
            return not run.done
        if role == Qt.ItemDataRole.ToolTipRole:
            if c == self.C_PROG:
                return self.progress_tip(run)
            if c == 2:
                return spec.label
            if c == 1:
                py = run.info.get("python")
                return (f"Ran on Python {python_label(py)}"
                        f"{' (free-threaded build)' if py.get('free_threaded') else ''}: "
                        f"{py.get('executable', '?')}") if py else None
            if c == self.C_CANCEL:
                return "Cancel every task of this run that has not ended"
            if c == self.C_FORCE:
                return ("Force: kill the run's busy worker processes" if self.can_force(run.run_id)
                        else _no_kill(spec.model, "This run's tasks"))
        return None
