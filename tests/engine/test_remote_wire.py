"""The pipe between a front end and its engine process (engine.remote.wire, .server, .client):
every operation has its one handler and its client method, a task record crosses field for
field, errors come back as themselves, and an unknown command is one line, not a crash."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Iterator

import pytest

from engine import SpecError, State
from engine.remote import RemoteError, RemoteSession, client
from engine.remote.server import HANDLERS
from engine.remote.wire import (
    TASK_STATIC_FIELDS,
    TASK_UPDATE_FIELDS,
    Op,
    Raised,
    UpdatePickler,
    encode_tasks,
    fold_tasks,
)
from engine.store import TASK_FIELDS, TaskRecord


def test_every_op_has_one_handler_and_a_client_method_that_sends_it() -> None:
    assert set(HANDLERS) == set(Op)
    source = inspect.getsource(client)
    for op in Op:
        assert f"Op.{op.name}" in source, f"no client method sends {op}"


def test_a_task_record_crosses_the_pipe_field_for_field() -> None:
    """Every field of TaskRecord crosses, except those the run's registration fixes (the front
    end makes them from the run's id range): a field added to TaskRecord crosses too."""
    assert set(TASK_UPDATE_FIELDS) | set(TASK_STATIC_FIELDS) == set(TASK_FIELDS)
    rec = TaskRecord(7, 2, 3, State.CANCEL_REQUESTED, 11, 12, 13, 14, 15, 16, "thr", "coro",
                     1, 0.5, {"type": "E", "message": "m"}, "why")
    assert len({repr(getattr(rec, f)) for f in TASK_FIELDS}) == len(TASK_FIELDS)  # all differ
    rows = pickle.loads(UpdatePickler.dumps(encode_tasks([rec])))
    mirror = {7: TaskRecord(7, 2, 3, queued_ns=11)}
    assert fold_tasks(mirror, rows) == {7}
    assert mirror[7] == rec
    assert mirror[7].state is State.CANCEL_REQUESTED
    assert fold_tasks({}, rows) == set()  # a task the front end does not know is skipped


@pytest.mark.parametrize(("raised", "expect", "text"), [
    (SpecError("tasks", "expected a whole number"), SpecError, "tasks: expected a whole number"),
    (RuntimeError("the session is shutting down"), RuntimeError, "the session is shutting down"),
    (NotImplementedError("not here"), RuntimeError, "not here"),  # as its base
    (TypeError("start takes a RunSpec"), TypeError, "start takes a RunSpec"),
    (KeyError("x"), RemoteError, "KeyError: 'x'"),
])
def test_an_error_in_the_engine_is_raised_again_as_itself(
        raised: Exception, expect: type, text: str) -> None:
    e = pickle.loads(pickle.dumps(Raised.of(raised))).exception()
    assert type(e) is expect and str(e) == text
    if isinstance(e, SpecError):
        assert e.field == "tasks"


@pytest.fixture
def rs(leak_check: None) -> Iterator[RemoteSession]:
    s = RemoteSession(None)
    try:
        yield s
    finally:
        assert s.shutdown(2.0).clean


def test_an_unknown_command_gets_one_line_and_the_engine_serves_on(rs: RemoteSession) -> None:
    with pytest.raises(RemoteError) as info:
        rs._call("no_such_op")  # type: ignore[arg-type]
    assert str(info.value) == "ValueError: unknown command 'no_such_op'"
    with pytest.raises(TypeError):
        rs._call(Op.CANCEL_TASK)  # a known op, its arguments missing
    assert rs.alive and rs.worker_pids() == []
    assert rs.cancel_run(12345) is False
