"""`batch_summary.json`: its models, its single writer, and the live view of a batch.

The summary is the batch's only state. Worker threads never write it: they hand each finished test
to the one `SummaryWriter`, which serialises the updates under a lock and rewrites the file
atomically, so a crash at any instant leaves the previous or the next complete summary on disk.

A test has an entry only once an attempt of it has ended; a test that is running, or that a crash
cut short, has none (its previous entry is dropped when it is launched again), so a resumed batch
simply runs every test without a pass/fail entry.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, Field

from tierbench.ratelimit import local_reset_time
from tierbench.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_RATE_LIMITED, print_error
from tierbench.config import CLI_FIELDS
from tierbench.store.atomic import atomic_write_json

SUMMARY_FILE = "batch_summary.json"
Status = Literal["pass", "fail", "error", "rate_limited", "interrupted", "budget_reached"]
RESULT_STATUSES: tuple[str, ...] = ("pass", "fail")  # the experiment completed: never rerun


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class BatchOptions(BaseModel):
    """The experiment options a batch was started with; None = not given (the `run` default).

    Saved in the summary; a resumed batch builds every child command from these, not from the
    command line, so all tests of a batch share one configuration."""

    tiers: list[str] | None = None
    runs_per_subtest: int | None = None
    max_subtests: int | None = None
    agent: str | None = None
    agent_options: dict[str, str] | None = None
    model: str | None = None
    judges: list[str] | None = None
    timeout_seconds: int | None = None
    thinking: str | None = None
    seed: int | None = None
    on_rate_limit: Literal["wait", "exit"] | None = None
    max_wait_seconds: float | None = None
    default_rate_limit_wait_seconds: float | None = None

    @classmethod
    def from_requested(cls, requested: dict[str, Any]) -> "BatchOptions":
        return cls(**{name: requested.get(name) for name in cls.model_fields})

    def ignored(self, requested: dict[str, Any]) -> list[str]:
        """'--runs 5, batch uses 3' for each option given now that differs from the saved one."""
        asked_opts = BatchOptions.from_requested(requested)
        lines = []
        for name in type(self).model_fields:
            asked, saved = getattr(asked_opts, name), getattr(self, name)
            if asked is not None and asked != saved:
                lines.append(f"{CLI_FIELDS.get(name, name)} {_show(asked)}, batch uses "
                             f"{_show(saved) if saved is not None else 'the default'}")
        return lines


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


class TestResult(BaseModel):
    """How the latest attempt of one test ended. Metrics come from the experiment's report.json
    and are null unless the experiment completed (status pass or fail)."""

    __test__ = False  # not a pytest test class

    test_id: str
    thread_id: int | None = None  # None: never reached a worker (the test directory is invalid)
    status: Status
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
    config: BatchOptions = Field(default_factory=BatchOptions)
    threads: list[ThreadSummary] = Field(default_factory=list)
    results: list[TestResult] = Field(default_factory=list)

    def entry(self, test_id: str, test_dir: str | None = None) -> TestResult | None:
        for result in self.results:
            if result.test_id == test_id or (test_dir is not None and result.test_dir == test_dir):
                return result
        return None


def load_summary(path: Path) -> BatchSummary | None:
    """The saved summary, None if there is none; ValueError if it cannot be read."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        return BatchSummary.model_validate_json(text)
    except ValueError as exc:
        raise ValueError(f"{path}: unreadable batch summary ({exc.__class__.__name__}). "
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
            thread.completed = sum(s in RESULT_STATUSES for s in statuses)
            thread.failed = len(statuses) - thread.completed
        atomic_write_json(self.path, self._summary)


# -- what an entry says, and what the batch as a whole says ---------------------------------------



def needs_run(entry: TestResult | None, retry_errors: bool) -> bool:
    """Resume rule: pass/fail never rerun, error only with --retry-errors, the rest always."""
    if entry is None or entry.status in ("rate_limited", "interrupted", "budget_reached"):
        return True
    return entry.status == "error" and retry_errors


def completed_result(exp_dir: Path, base: dict[str, Any]) -> TestResult:
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
            return TestResult(status="error", error=f"completed, but no report: {type(exc).__name__}: {exc}", **base)
    except ValueError as exc:
        return TestResult(status="error", error=f"{exp_dir / 'report.json'}: unreadable ({exc})", **base)
    best = next((t for t in report.tiers if t.tier == report.best_tier), None)
    passed = (best.n_passed if best is not None else report.n_passed) > 0
    return TestResult(status="pass" if passed else "fail", best_tier=report.best_tier,
                      best_score=report.best_score, frontier_cop=report.frontier_cop,
                      total_cost=report.total_cost, total_duration=report.total_duration, **base)


def exit_code(entries: list[TestResult | None], *, interrupted: bool, rate_limited: bool,
              budget_reached: bool = False) -> int:
    """130 interrupted, else 2 rate limited (a rerun later finishes those tests; an error would stay
    put, so 2 comes first), else 1 for any error or a reached budget, else 0. `None`: a test that
    has no entry (not started: rate limited, unless the budget stopped the batch)."""
    if interrupted:
        return EXIT_INTERRUPTED
    statuses = [e.status if e is not None else None for e in entries]
    if not rate_limited and (budget_reached or "budget_reached" in statuses):
        return EXIT_ERROR
    if rate_limited or "rate_limited" in statuses or None in statuses:
        return EXIT_RATE_LIMITED
    if "error" in statuses:
        return EXIT_ERROR
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return EXIT_OK


def print_outcome(code: int, entries: list[TestResult | None], rate_limit: tuple[datetime | None, str] | None,
                  summary_path: Path, report: Path | None) -> None:
    """The final word: counts and paths on stdout; what to do next on stderr."""
    done = [e for e in entries if e is not None]
    counts = {s: sum(e.status == s for e in done)
              for s in ("pass", "fail", "error", "rate_limited", "interrupted", "budget_reached")}
    cost = sum(e.total_cost or 0.0 for e in done)
    pending = len(entries) - len(done)
    line = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items() if n)
    print(f"Batch: {len(entries)} tests: {line or 'none finished'}" + (f", {pending} not started" if pending else "")
          + f"; cost ${cost:.2f}", flush=True)
    if code == EXIT_INTERRUPTED:
        print_error("Interrupted. Run the same command again; it resumes where it left off.")
    elif code == EXIT_RATE_LIMITED:
        until, test_id = rate_limit or (None, "")
        when = f" until {local_reset_time(until)}" if until else ""
        print_error(f"Rate limited{when}{f' ({test_id})' if test_id else ''}. Run the same command again after that; "
             "it resumes where it left off.")
    if code == EXIT_ERROR and (counts["budget_reached"] or pending):
        if budget_line := next((e.error.strip().splitlines()[-1] for e in done
                                if e.status == "budget_reached" and e.error), None):
            print_error(budget_line.removeprefix("tierbench: "))
        print_error(f"The batch's budget stopped it: {counts['budget_reached'] + pending} test(s) not "
                    "finished. Run the same command with a higher --budget-usd to continue; it resumes "
                    "where it left off.")
    if counts["error"]:
        failed = " ".join(e.test_id for e in done if e.status == "error")
        print_error(f"{counts['error']} test(s) ended in error: {failed}. Read their entries in {summary_path.name} "
             "and the thread logs; after fixing, rerun with --retry-errors.")
    print(f"Summary: {summary_path}", flush=True)
    if report is not None and report.exists():
        print(f"Report: {report}", flush=True)



# -- the live view ----------------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    from tierbench.progress import format_duration

    return format_duration(seconds)


def result_line(done: int, total: int, result: TestResult) -> str:
    """`[3/8] thread 1: py-fizzbuzz pass cost=$0.02 12.3s`"""
    thread = f"thread {result.thread_id}: " if result.thread_id is not None else ""
    line = f"[{done}/{total}] {thread}{result.test_id} {result.status}"
    if result.total_cost is not None:
        line += f" cost=${result.total_cost:.2f}"
    if result.wall_seconds is not None:
        line += f" {result.wall_seconds:.1f}s"
    if result.status not in RESULT_STATUSES and result.error:
        line += f" ({result.error.strip().splitlines()[-1]})"
    return line


class BatchProgress:
    """What the batch shows while it runs: a rich live view on a terminal, plain lines otherwise,
    only errors with `quiet`. Called from worker threads, so every method takes a lock."""

    def __init__(self, total: int, threads: int, *, quiet: bool = False, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total, self.threads = total, threads
        self.done = self.passed = 0
        self.cost = 0.0
        self.current: dict[int, tuple[str, float]] = {}  # thread -> (test id, monotonic start)
        self.walls: list[float] = []
        self.paused_until: datetime | None = None
        self._started = time.monotonic()
        self._lock = threading.RLock()
        self._live: Any = None
        if not quiet and self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(file=self.stream), auto_refresh=False, transient=True)

    def start(self) -> None:
        if self._live is not None:
            self._live.start()
            self.tick()

    def message(self, text: str, error: bool = False) -> None:
        with self._lock:
            if self.quiet and not error:
                return
            if self._live is not None:
                self._live.console.print(text, markup=False, highlight=False)
                self._refresh()
            else:
                print(("tierbench: " if error else "") + text, file=self.stream, flush=True)

    def test_started(self, thread_id: int, test_id: str) -> None:
        with self._lock:
            self.current[thread_id] = (test_id, time.monotonic())
            self._refresh()

    def test_finished(self, result: TestResult) -> None:
        with self._lock:
            if result.thread_id is not None:
                self.current.pop(result.thread_id, None)
            self.done += 1
            self.passed += result.status == "pass"
            self.cost += result.total_cost or 0.0
            if result.wall_seconds is not None and result.status in RESULT_STATUSES:
                self.walls.append(result.wall_seconds)
            line = result_line(self.done, self.total, result)
        self.message(line, error=result.status == "error")

    def paused(self, until: datetime | None) -> None:
        with self._lock:
            self.paused_until = until
            self._refresh()

    def eta_seconds(self) -> float | None:
        remaining = self.total - self.done
        if not self.walls or remaining <= 0:
            return None
        mean = sum(self.walls) / len(self.walls)
        return mean * remaining / max(1, min(self.threads, remaining))

    def tick(self) -> None:
        with self._lock:
            self._refresh()

    def stop(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        eta = self.eta_seconds()
        head = (f"Batch: {self.done}/{self.total} tests done · {self.passed} pass · "
                f"cost ${self.cost:.2f} · elapsed {_duration(time.monotonic() - self._started)}"
                + (f" · ETA {_duration(eta)}" if eta is not None else ""))
        if self.paused_until is not None:
            left = (self.paused_until - utcnow()).total_seconds()
            head += f"\nRate limited: no new test starts for {_duration(left)}"
        table = Table(box=None, show_header=True, header_style="dim")
        table.add_column("thread")
        table.add_column("running")
        table.add_column("for", justify="right")
        now = time.monotonic()
        for thread_id in range(1, self.threads + 1):
            test_id, since = self.current.get(thread_id, ("-", now))
            table.add_row(str(thread_id), test_id, _duration(now - since) if test_id != "-" else "")
        return Group(Text(head, style="bold"), table)
