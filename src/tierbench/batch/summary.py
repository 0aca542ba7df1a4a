"""`batch_summary.json`: its models, its single writer, and what its entries say (resume, exit code).

The summary is the batch's only state. Worker threads never write it: they hand each finished test
to the one `SummaryWriter`, which serialises the updates under a lock and rewrites the file
atomically, so a crash at any instant leaves the previous or the next complete summary on disk.

A test has an entry only once an attempt of it has ended; a test that is running, or that a crash
cut short, has none (its previous entry is dropped when it is launched again), so a resumed batch
simply runs every test without a pass/fail entry.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tierbench.ratelimit import local_reset_time
from tierbench.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_RATE_LIMITED, print_error
from tierbench.errors import TierbenchError
from tierbench.models import RunStatus
from tierbench.options import GivenOptions, describe_ignored
from tierbench.store.atomic import atomic_write_json

SUMMARY_FILE = "batch_summary.json"


class EntryStatus(str, Enum):
    """How the latest attempt of a test ended (`status` of its batch_summary.json entry)."""

    PASS = "pass"  # the experiment completed and its best tier has a passing run
    FAIL = "fail"  # the experiment completed otherwise
    ERROR = "error"
    RATE_LIMITED = "rate_limited"
    INTERRUPTED = "interrupted"
    BUDGET_REACHED = "budget_reached"  # --budget-usd stopped its run; a rerun with more continues

    @property
    def completed(self) -> bool:
        """The experiment finished: a resumed batch never reruns it."""
        return self in (EntryStatus.PASS, EntryStatus.FAIL)

    @property
    def run_status(self) -> RunStatus:
        """The same outcome in the run side's terms (what a progress sink takes)."""
        return _AS_RUN_STATUS[self]


_AS_RUN_STATUS = {EntryStatus.PASS: RunStatus.PASSED, EntryStatus.FAIL: RunStatus.FAILED,
                  EntryStatus.ERROR: RunStatus.ERROR, EntryStatus.RATE_LIMITED: RunStatus.RATE_LIMITED,
                  EntryStatus.INTERRUPTED: RunStatus.INTERRUPTED,
                  # Stopped before finishing, resumed by a rerun; its line names the budget.
                  EntryStatus.BUDGET_REACHED: RunStatus.INTERRUPTED}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TestResult(BaseModel):
    """How the latest attempt of one test ended. Metrics come from the experiment's report.json
    and are null unless the experiment completed (status pass or fail)."""

    __test__ = False  # not a pytest test class

    test_id: str
    thread_id: int | None = None  # None: never reached a worker (the test directory is invalid)
    status: EntryStatus
    exit_code: int | None = None  # of the `tierbench run` child; None when none ran
    result_dir: str | None = None  # the experiment directory
    error: str | None = None  # error / rate_limited / interrupted: what happened (child stderr tail)
    best_tier: str | None = None
    best_score: float | None = None
    frontier_cop: float | None = None
    total_cost: float | None = None
    total_duration: float | None = None
    test_dir: str | None = None
    finished_at: datetime = Field(default_factory=utcnow)
    wall_seconds: float | None = None  # how long this attempt's child ran


class ThreadSummary(BaseModel):
    """One worker of the latest invocation: its tests (in order), how many of them completed
    (pass or fail) and how many ended otherwise (error, rate_limited, interrupted)."""

    thread_id: int
    tests: list[str] = Field(default_factory=list)
    completed: int = 0
    failed: int = 0


class BatchSummary(BaseModel):
    started_at: datetime = Field(default_factory=utcnow)  # the first invocation
    completed_at: datetime | None = None  # the end of the latest invocation; null while one runs
    config: GivenOptions = Field(default_factory=GivenOptions)  # the options the batch was started with
    threads: list[ThreadSummary] = Field(default_factory=list)
    results: list[TestResult] = Field(default_factory=list)

    def entry(self, test_id: str, test_dir: str | None = None) -> TestResult | None:
        for result in self.results:
            if result.test_id == test_id or (test_dir is not None and result.test_dir == test_dir):
                return result
        return None


def ignored_options(saved: GivenOptions, requested: dict[str, Any]) -> list[str]:
    """'--runs 5, batch uses 3' for each option given now that differs from the saved one. The
    saved options win: a resumed batch builds every child from them, so all tests share them."""
    saved_values = saved.values()
    asked = GivenOptions(**requested).values()
    return describe_ignored({name: (value, saved_values.get(name)) for name, value in asked.items()
                             if value != saved_values.get(name)}, owner="batch")


class SummaryUnreadable(TierbenchError):
    """batch_summary.json exists but cannot be read."""


def load_summary(path: Path) -> BatchSummary | None:
    """The saved summary, None if there is none; SummaryUnreadable if it cannot be read."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        return BatchSummary.model_validate_json(text)
    except ValueError as exc:
        raise SummaryUnreadable(f"{path}: unreadable batch summary ({exc.__class__.__name__})",
                                "Move it aside or start anew with --fresh") from None


class SummaryWriter:
    """The single writer of batch_summary.json. Every method is safe to call from any thread."""

    def __init__(self, path: Path, summary: BatchSummary):
        self.path = Path(path)
        self._summary = summary
        self._lock = threading.Lock()

    def snapshot(self) -> BatchSummary:
        with self._lock:
            return self._summary.model_copy(deep=True)

    def start(self, assignment: dict[int, list[str]]) -> None:
        """A new invocation: it is running (no completed_at) with these workers (an invocation
        with nothing to run keeps the previous workers' record)."""
        with self._lock:
            self._summary.completed_at = None
            if assignment:
                self._summary.threads = [ThreadSummary(thread_id=t, tests=list(ids)) for t, ids in assignment.items()]
            self._write()

    def record(self, result: TestResult) -> None:
        """Make `result` the one entry of its test (replacing any earlier one) and save."""
        with self._lock:
            self._drop(result.test_id, result.test_dir)
            self._summary.results.append(result)
            self._write()

    def forget(self, test_id: str, test_dir: str | None) -> None:
        """The test is being run again: until it ends it has no entry (so a crash reruns it)."""
        with self._lock:
            if self._drop(test_id, test_dir):
                self._write()

    def finish(self) -> None:
        with self._lock:
            self._summary.completed_at = utcnow()
            self._write()

    def _drop(self, test_id: str, test_dir: str | None) -> bool:
        before = len(self._summary.results)
        self._summary.results = [r for r in self._summary.results if not (
            r.test_id == test_id or (test_dir is not None and r.test_dir == test_dir))]
        return len(self._summary.results) != before

    def _write(self) -> None:
        by_id = {r.test_id: r for r in self._summary.results}
        for thread in self._summary.threads:
            statuses = [by_id[t].status for t in thread.tests if t in by_id]
            thread.completed = sum(s.completed for s in statuses)
            thread.failed = len(statuses) - thread.completed
        atomic_write_json(self.path, self._summary)


# -- what an entry says, and what the batch as a whole says ---------------------------------------



def needs_run(entry: TestResult | None, retry_errors: bool) -> bool:
    """Resume rule: pass/fail never rerun, error only with --retry-errors, the rest always."""
    if entry is None or entry.status in (EntryStatus.RATE_LIMITED, EntryStatus.INTERRUPTED,
                                         EntryStatus.BUDGET_REACHED):
        return True
    return entry.status is EntryStatus.ERROR and retry_errors


def completed_result(exp_dir: Path, base: TestResult) -> TestResult:
    """pass/fail and metrics of a completed experiment (its `run` exited 0), from its report.json.

    pass: the report's best tier has at least one passing run (n_passed > 0, i.e. its pass rate is
    above zero; a run passes when its score reaches the rubric's pass threshold). fail: otherwise."""
    from tierbench.report.schema import ExperimentReport

    try:
        report = ExperimentReport.model_validate_json((exp_dir / "report.json").read_text())
    except FileNotFoundError:
        try:  # the child's report step failed; the numbers can still be computed from the runs
            from tierbench.report.aggregate import load_experiment_runs, summarize_experiment

            report = summarize_experiment(load_experiment_runs(exp_dir))
        except Exception as exc:
            return base.model_copy(update={"status": EntryStatus.ERROR,
                                           "error": f"completed, but no report: {type(exc).__name__}: {exc}"})
    except ValueError as exc:
        return base.model_copy(update={"status": EntryStatus.ERROR,
                                       "error": f"{exp_dir / 'report.json'}: unreadable ({exc})"})
    best = next((t for t in report.tiers if t.tier == report.best_tier), None)
    passed = (best.n_passed if best is not None else report.n_passed) > 0
    return base.model_copy(update=dict(
        status=EntryStatus.PASS if passed else EntryStatus.FAIL, best_tier=report.best_tier,
        best_score=report.best_score, frontier_cop=report.frontier_cop, total_cost=report.total_cost,
        total_duration=report.total_duration))


def exit_code(entries: list[TestResult | None], *, interrupted: bool, rate_limited: bool,
              budget_reached: bool = False) -> int:
    """130 interrupted, else 2 rate limited (a rerun later finishes those tests; an error would stay
    put, so 2 comes first), else 1 for any error or a reached budget, else 0. `None`: a test that
    has no entry (not started: rate limited, unless the budget stopped the batch)."""
    if interrupted:
        return EXIT_INTERRUPTED
    statuses = [e.status if e is not None else None for e in entries]
    if not rate_limited and (budget_reached or EntryStatus.BUDGET_REACHED in statuses):
        return EXIT_ERROR
    if rate_limited or EntryStatus.RATE_LIMITED in statuses or None in statuses:
        return EXIT_RATE_LIMITED
    if EntryStatus.ERROR in statuses:
        return EXIT_ERROR
    if EntryStatus.INTERRUPTED in statuses:
        return EXIT_INTERRUPTED
    return EXIT_OK


def print_outcome(code: int, entries: list[TestResult | None], rate_limit: tuple[datetime | None, str] | None,
                  summary_path: Path, report: Path | None) -> None:
    """The final word: counts and paths on stdout; what to do next on stderr."""
    done = [e for e in entries if e is not None]
    counts = {s: sum(e.status is s for e in done) for s in EntryStatus}
    cost = sum(e.total_cost or 0.0 for e in done)
    pending = len(entries) - len(done)
    line = ", ".join(f"{n} {s.value.replace('_', ' ')}" for s, n in counts.items() if n)
    print(f"Batch: {len(entries)} tests: {line or 'none finished'}" + (f", {pending} not started" if pending else "")
          + f"; cost ${cost:.2f}", flush=True)
    if code == EXIT_INTERRUPTED:
        print_error("Interrupted. Run the same command again; it resumes where it left off.")
    elif code == EXIT_RATE_LIMITED:
        until, test_id = rate_limit or (None, "")
        when = f" until {local_reset_time(until)}" if until else ""
        print_error(f"Rate limited{when}{f' ({test_id})' if test_id else ''}. Run the same command again after that; "
             "it resumes where it left off.")
    stopped = counts[EntryStatus.BUDGET_REACHED]
    if code == EXIT_ERROR and (stopped or pending):
        said = next((e.error.strip().splitlines()[-1] for e in done
                     if e.status is EntryStatus.BUDGET_REACHED and e.error), None)
        if said:
            print_error(said.removeprefix("tierbench: "))
        print_error(f"The batch's budget stopped it: {stopped + pending} test(s) not finished. Run the "
                    "same command with a higher --budget-usd to continue; it resumes where it left off.")
    if counts[EntryStatus.ERROR]:
        failed = " ".join(e.test_id for e in done if e.status is EntryStatus.ERROR)
        print_error(f"{counts[EntryStatus.ERROR]} test(s) ended in error: {failed}. Read their entries in {summary_path.name} "
             "and the thread logs; after fixing, rerun with --retry-errors.")
    print(f"Summary: {summary_path}", flush=True)
    if report is not None and report.exists():
        print(f"Report: {report}", flush=True)
