"""The local executor's hand-out rules, with preparation and runs held by events (no git, no agent).

What is replaced is only the work inside an attempt (`prepare_run`, `finish_run`); the threads,
queues and the coordinator's side of the protocol (`submit`, `poll`, `cancel_queued`) are real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import tierbench.execute.local as local
from tierbench.models import RunKey, RunResult, RunStatus
from tierbench.process import ProcessRegistry
from tierbench.run.attempt import PreparedRun


class HeldWork:
    """prepare_run / finish_run stand-ins that block until the test releases each run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.preparing: set[int] = set()
        self.most_preparing = 0
        self.started: list[int] = []
        self.prepare_gate: dict[int, threading.Event] = {}
        self.finish_gate: dict[int, threading.Event] = {}
        self.discarded: list[int] = []

    def gate(self, gates: dict[int, threading.Event], run: int) -> threading.Event:
        with self.lock:
            return gates.setdefault(run, threading.Event())

    def prepare_run(self, req):
        run = req.key.run
        with self.lock:
            self.preparing.add(run)
            self.most_preparing = max(self.most_preparing, len(self.preparing))
        assert self.gate(self.prepare_gate, run).wait(60), f"run {run}'s preparation was never released"
        with self.lock:
            self.preparing.discard(run)
        return PreparedRun(req, Path("/nonexistent/workspace"), Path("/nonexistent/private"))

    def finish_run(self, prepared):
        run = prepared.req.key.run
        with self.lock:
            self.started.append(run)
        assert self.gate(self.finish_gate, run).wait(60), f"run {run} was never released"
        return RunResult(tier="T0", subtest="00", run_number=run, status=RunStatus.PASSED)

    def wait_preparing(self, *runs: int) -> None:
        deadline = time.monotonic() + 5  # well before a held preparation gives up (60 s)
        while not set(runs) <= self.preparing:
            assert time.monotonic() < deadline, f"never preparing {runs} at once (preparing {self.preparing})"
            time.sleep(0.01)


@pytest.fixture
def held(monkeypatch):
    work = HeldWork()
    monkeypatch.setattr(local, "prepare_run", work.prepare_run)
    monkeypatch.setattr(local, "finish_run", work.finish_run)
    monkeypatch.setattr(local, "discard_prepared", lambda prepared: work.discarded.append(prepared.req.key.run))
    return work


@pytest.fixture
def start_executor(held):
    """Start a LocalExecutor with `workers` run threads; on the way out nothing stays held and every
    executor started is shut down."""
    started: list[local.LocalExecutor] = []

    def start(workers: int) -> local.LocalExecutor:
        started.append(local.LocalExecutor(workers, ProcessRegistry(reaper=False)))
        return started[-1]

    yield start
    for gates in (held.prepare_gate, held.finish_gate):
        for event in gates.values():
            event.set()
    for executor in started:
        executor.shutdown()


def _request(run: int):
    return SimpleNamespace(key=RunKey(tier="T0", subtest="00", run=run))


def _finish(executor, held: HeldWork, run: int) -> None:
    """Let `run` end, and absorb its completion as the coordinator does (poll)."""
    held.gate(held.finish_gate, run).set()
    deadline = time.monotonic() + 10
    while True:
        ended = executor.poll(0.1)
        if ended:
            assert [c.key.run for c in ended] == [run]
            executor.poll(0)  # the coordinator polls again only after absorbing: that releases the thread
            return
        assert time.monotonic() < deadline, f"run {run} never completed"


def _next_handed_out(executor) -> list[int]:
    """The runs handed to threads next (what the live view is told), waiting up to 5 s for one."""
    deadline = time.monotonic() + 5
    while not (started := executor.take_started()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [key.run for key in started]


def test_slow_checkouts_do_not_queue_behind_the_one_preparer(held, start_executor):
    executor = start_executor(3)
    for run in (1, 2, 3):  # what the coordinator submits: --parallel 3 ...
        executor.submit(_request(run))
    held.wait_preparing(1, 2, 3)  # each run thread prepares its own
    for run in (4, 5, 6):  # ... plus 3 ahead
        executor.submit(_request(run))
    held.wait_preparing(1, 2, 3, 4)  # the preparer takes run 4
    for run in (1, 2, 3):
        held.gate(held.prepare_gate, run).set()
    _finish(executor, held, 1)  # this thread waits for run 4, still being prepared
    _finish(executor, held, 2)  # this one must not queue behind it: it prepares run 5 itself
    held.wait_preparing(4, 5)
    assert held.most_preparing >= 2
    handed_out = [key.run for key in executor.take_started()]
    # The waiting thread took nothing past run 4 (the order of 1-3 is the threads' race).
    assert sorted(handed_out[:3]) == [1, 2, 3] and handed_out[3:] == [5], handed_out
    held.gate(held.prepare_gate, 4).set()
    assert _next_handed_out(executor) == [4], "run 4 did not go to the thread that waited for it"
    for run in (5, 6):
        held.gate(held.prepare_gate, run).set()
    for run in (3, 4, 5, 6):
        _finish(executor, held, run)
    assert sorted(held.started) == [1, 2, 3, 4, 5, 6]


def test_at_parallel_1_runs_start_in_submission_order(held, start_executor):
    executor = start_executor(1)
    executor.submit(_request(1))
    held.wait_preparing(1)  # the run thread prepares run 1
    executor.submit(_request(2))
    held.wait_preparing(1, 2)  # the preparer prepares run 2
    held.gate(held.prepare_gate, 1).set()
    executor.submit(_request(3))  # the coordinator refills once run 1 is under way
    _finish(executor, held, 1)  # run 2 is still being prepared: the thread must wait for it
    time.sleep(0.2)
    assert [key.run for key in executor.take_started()] == [1], "the free thread took run 3 ahead of run 2"
    held.gate(held.prepare_gate, 2).set()
    held.gate(held.prepare_gate, 3).set()
    _finish(executor, held, 2)
    _finish(executor, held, 3)
    assert [key.run for key in executor.take_started()] == [2, 3]
    assert held.started == [1, 2, 3]


def test_withdrawn_runs_come_back_in_submission_order_and_prepared_ones_are_discarded(held, start_executor):
    """The coordinator puts withdrawn runs back at the front of their queue in the order it gets
    them, so a prepared run (submitted earlier) must come before a merely queued one."""
    executor = start_executor(1)
    executor.submit(_request(1))
    held.wait_preparing(1)
    held.gate(held.prepare_gate, 1).set()
    executor.submit(_request(2))  # prepared ahead (the one slot ahead) ...
    held.gate(held.prepare_gate, 2).set()
    deadline = time.monotonic() + 5
    while not executor._prepared:
        assert time.monotonic() < deadline, "run 2 was never prepared"
        time.sleep(0.01)
    executor.submit(_request(3))  # ... and this one only queued
    assert executor.cancel_queued() == [_request(2).key, _request(3).key]
    assert held.discarded == [2], "what was prepared for a withdrawn run must be removed"
    _finish(executor, held, 1)
    assert [key.run for key in executor.take_started()] == [1]
