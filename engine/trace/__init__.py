"""Traces out and in: Chrome/Perfetto trace export, CSV export, and replay of a trace.

One format per module, over a shared floor:

* :mod:`.errors` - :class:`TraceError`, the one exception callers catch (one line, names what
  is wrong).
* :mod:`.files` - output paths checked before any work starts; files replaced whole.
* :mod:`.records` - the ``"taskscope"`` section: exact JSON encodings of runs, task records and
  samples, and their strict decoders. Every format below uses it.
* :mod:`.chrome` - :func:`export_session` / :func:`export_run`: the Trace Event Format file
  Perfetto and ``chrome://tracing`` open, with the TaskScope section inside, and
  :func:`validate_trace_events`, the checker of what the viewers read.
* :mod:`.csv` - :func:`export_csv`: tasks and samples as spreadsheet rows.
* :mod:`.replay` - :func:`load_trace`: a trace file validated and rebuilt into a fresh store.

Imports only go down these floors (an import-linter contract in pyproject.toml keeps it so):
``replay | csv``, then ``chrome``, then ``records | files``, then ``errors``. The replay is above
``chrome`` because it checks the file's Chrome part with that module's checker.
"""

from __future__ import annotations

from ..store import TASK_FIELDS
from .chrome import (
    CAT_CANCEL,
    CAT_RUN,
    CAT_TASK,
    COROUTINE_TRACK_LIMIT,
    RUN_TID_BASE,
    SYNTH_TID_BASE,
    SYSTEM_PID,
    ExportSummary,
    build_trace,
    dumps_trace,
    export_run,
    export_session,
    validate_trace_events,
)
from .csv import TASK_CSV_COLUMNS, csv_paths, export_csv, export_samples_csv, export_tasks_csv
from .errors import TraceError
from .files import check_output_path, write_bytes_atomic
from .records import FORMAT_VERSION, SAMPLE_FIELDS
from .replay import MAX_TRACE_BYTES, Replay, load_trace

__all__ = [
    "CAT_CANCEL",
    "CAT_RUN",
    "CAT_TASK",
    "COROUTINE_TRACK_LIMIT",
    "FORMAT_VERSION",
    "MAX_TRACE_BYTES",
    "RUN_TID_BASE",
    "SAMPLE_FIELDS",
    "SYNTH_TID_BASE",
    "SYSTEM_PID",
    "TASK_CSV_COLUMNS",
    "TASK_FIELDS",
    "ExportSummary",
    "Replay",
    "TraceError",
    "build_trace",
    "check_output_path",
    "csv_paths",
    "dumps_trace",
    "export_csv",
    "export_run",
    "export_samples_csv",
    "export_session",
    "export_tasks_csv",
    "load_trace",
    "validate_trace_events",
    "write_bytes_atomic",
]
