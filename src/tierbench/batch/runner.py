"""The batch's worker threads: each runs its tests one after another as `tierbench run` children;
the launch gate holds new launches while a rate limit is waited out; each attempt becomes one entry."""

from __future__ import annotations

import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from tierbench.batch.children import INTERRUPTED_CODES, Children, budget_args, child_command, run_child
from tierbench.batch.selection import BatchTest
from tierbench.batch.summary import EntryStatus, SummaryWriter, TestResult, completed_result
from tierbench.exitcodes import EXIT_ERROR, EXIT_OK, EXIT_RATE_LIMITED
from tierbench.models import ExperimentStatus
from tierbench.options import GivenOptions, should_wait
from tierbench.progress import ProgressSink
from tierbench.ratelimit import local_reset_time
from tierbench.store.layout import ExperimentLayout
from tierbench.store.results import load_state

INTERRUPT_GRACE = 60.0  # after a first signal, children get this long to checkpoint before SIGKILL
_POLL = 0.2


def rate_limit_until(exp_dir: Path) -> datetime | None:
    """The reset an experiment records (aware UTC), None if none: read through the store's loader,
    which a running child may be writing (so a best-effort read, never an error)."""
    moment = load_state(ExperimentLayout(Path(exp_dir)), strict=False).rate_limit_until
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def batch_should_wait(options: GivenOptions, until: datetime | None) -> bool:
    """The experiments' own wait policy, with the batch's saved options."""
    return should_wait(options.get("on_rate_limit"), options.get("max_wait_seconds"), until,
                       default_wait=options.get("default_rate_limit_wait_seconds"))


class BatchRunner:
    def __init__(self, results_dir: Path, options: GivenOptions, writer: SummaryWriter,
                 progress: ProgressSink, budget_usd: float | None = None):
        self.results_dir, self.options, self.writer, self.progress = results_dir, options, writer, progress
        self.budget_usd = budget_usd
        self.child_args: list[str] = []  # added to every child's command line (e.g. the batch's --ray-address)
        self.budget_reached: str | None = None  # a test id: the budget stopped it, launch nothing more
        self.children = Children()
        self.interrupted = threading.Event()
        self.rate_limited: tuple[datetime | None, str] | None = None  # set: launch nothing more
        self._hold_until: datetime | None = None  # no launches before this (waiting for a reset)
        self._lock = threading.Lock()

    # -- threads ---------------------------------------------------------------------------------
    def run(self, plan: dict[int, list[BatchTest]]) -> None:
        workers = [threading.Thread(target=self._worker, args=(n, tests), name=f"batch worker {n}", daemon=True)
                   for n, tests in plan.items()]
        for worker in workers:
            worker.start()
        interrupted_at: float | None = None
        while any(w.is_alive() for w in workers):
            for worker in workers:
                worker.join(_POLL / len(workers))
            self.progress.tick()
            if self.interrupted.is_set():
                interrupted_at = interrupted_at or time.monotonic()
                if time.monotonic() - interrupted_at > INTERRUPT_GRACE:
                    self.children.signal_all(signal.SIGKILL)

    def interrupt(self) -> None:
        """First SIGINT/SIGTERM: launch nothing more; every child checkpoints and exits 130."""
        self.interrupted.set()
        self.children.signal_all(signal.SIGINT)

    def kill(self) -> None:
        self.interrupted.set()
        self.children.signal_all(signal.SIGKILL)

    def _worker(self, thread_id: int, tests: list[BatchTest]) -> None:
        log_path = self.results_dir / "thread_logs" / f"thread_{thread_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            for test in tests:
                try:
                    result = self._run_test(thread_id, test, log)
                except Exception as exc:  # a bug here must not take the other tests down with it
                    result = TestResult(test_id=test.test_id, thread_id=thread_id, status=EntryStatus.ERROR,
                                        test_dir=str(test.test_dir), error=f"batch worker: {type(exc).__name__}: {exc}")
                if result is None:
                    return  # interrupted or rate limited before it started: it keeps no entry
                self.writer.record(result)
                report_entry(self.progress, result)

    def _run_test(self, thread_id: int, test: BatchTest, log: BinaryIO) -> TestResult | None:
        exp_dir = self.results_dir / test.test_id
        attempt = 0
        while True:
            if not self._wait_for_launch():
                return None
            attempt += 1
            self.writer.forget(test.test_id, str(test.test_dir))
            cmd = child_command(test.test_dir, self.results_dir, self.options) + budget_args(
                self.budget_usd, self.results_dir) + self.child_args
            self.progress.run_started(test.test_id)
            started = time.monotonic()
            code, tail = run_child(self.children, cmd, exp_dir, log, f"{test.test_id} (attempt {attempt})")
            if code is None:
                return None
            wall = time.monotonic() - started
            if code == EXIT_RATE_LIMITED:
                until = rate_limit_until(exp_dir)
                if batch_should_wait(self.options, until) and not self.interrupted.is_set():
                    fallback = timedelta(seconds=self.options.get("default_rate_limit_wait_seconds"))
                    self.hold(until or datetime.now(timezone.utc) + fallback, test.test_id)
                    continue  # rerun the child once the reset has passed: it resumes its experiment
                with self._lock:  # remember the latest reset: that is when a rerun can go on
                    old = self.rate_limited
                    if old is None or (until is not None and (old[0] is None or until > old[0])):
                        self.rate_limited = (until, test.test_id)
            return self._result(thread_id, test, exp_dir, code, tail, wall)

    def _result(self, thread_id: int, test: BatchTest, exp_dir: Path, code: int, tail: str,
                wall: float) -> TestResult:
        base = TestResult(test_id=test.test_id, thread_id=thread_id, status=EntryStatus.ERROR, exit_code=code,
                          result_dir=str(exp_dir), test_dir=str(test.test_dir), wall_seconds=round(wall, 3))
        if code == EXIT_OK:
            return completed_result(exp_dir, base)
        if code == EXIT_RATE_LIMITED:
            until = rate_limit_until(exp_dir)
            note = f"rate limited until {local_reset_time(until)}" if until else "rate limited"
            return base.model_copy(update={"status": EntryStatus.RATE_LIMITED, "error": tail or note})
        if code in INTERRUPTED_CODES or (code < 0 and self.interrupted.is_set()):  # < 0: killed after the grace
            return base.model_copy(update={"status": EntryStatus.INTERRUPTED, "error": tail or "interrupted"})
        if code == EXIT_ERROR and load_state(ExperimentLayout(exp_dir), strict=False).status \
                is ExperimentStatus.BUDGET_REACHED:
            self.budget_reached = test.test_id
            return base.model_copy(update={"status": EntryStatus.BUDGET_REACHED, "error": tail or "budget reached"})
        if code < 0:
            tail = (tail + "\n" if tail else "") + f"killed by {signal.Signals(-code).name}"
        return base.model_copy(update={"error": tail or f"tierbench run exited {code}"})

    # -- the launch gate -------------------------------------------------------------------------
    def apply_recorded_limits(self, test_ids: list[str]) -> None:
        """A rate limit recorded by an earlier invocation applies before any child starts."""
        now = datetime.now(timezone.utc)
        limits = [(until, test_id) for test_id in test_ids
                  if (until := rate_limit_until(self.results_dir / test_id)) is not None and until > now]
        if not limits:
            return
        until, test_id = max(limits)
        if batch_should_wait(self.options, until):
            self.hold(until, test_id)
        else:
            self.rate_limited = (until, test_id)

    def hold(self, until: datetime, test_id: str) -> None:
        with self._lock:
            if self._hold_until is None or until > self._hold_until:
                self._hold_until = until
        self.progress.message(f"{test_id}: rate limited; no test starts before {local_reset_time(until)}, "
                              "then it resumes")

    def _wait_for_launch(self) -> bool:
        """Block while a rate limit is being waited out; False when nothing may launch any more."""
        shown = False
        while True:
            if self.interrupted.is_set() or self.rate_limited is not None or self.budget_reached:
                return False
            until = self._gate()
            if until is None:
                if shown:
                    self.progress.resumed()
                return True
            if not batch_should_wait(self.options, until):
                with self._lock:
                    self.rate_limited = self.rate_limited or (until, "a running test")
                return False
            if not shown:
                self.progress.paused(until, "a test of this batch", "rate limited")
                shown = True
            time.sleep(_POLL)

    def _gate(self) -> datetime | None:
        """The latest reset still ahead: one this batch is waiting out, or one a running child is
        waiting out itself (the account is shared, so starting another test now would only hit it)."""
        now = datetime.now(timezone.utc)
        candidates = [self._hold_until] + [rate_limit_until(d) for d in self.children.exp_dirs()]
        ahead = [c for c in candidates if c is not None and c > now]
        return max(ahead) if ahead else None


def report_entry(progress: ProgressSink, entry: TestResult) -> None:
    """Tell the view a test's entry: its line, and what went wrong when it did not complete."""
    progress.run_finished(entry.test_id, entry.status.run_status, entry.best_score, entry.total_cost or 0.0,
                          entry.wall_seconds or 0.0)
    if not entry.status.completed and entry.error:
        progress.message(f"{entry.test_id}: {entry.error.strip().splitlines()[-1]}",
                         error=entry.status is EntryStatus.ERROR)
