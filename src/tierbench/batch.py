"""`tierbench batch`: run many tests, each as its own `tierbench run` child, on N worker threads.

Every test is an ordinary experiment in `<results-dir>/<test id>`, so everything `run` promises
(resume, rate-limit pauses, no run lost or run twice) holds per test; the batch adds scheduling and
one crash-safe `batch_summary.json` (see `batch_summary`).

- Scheduling: tests are assigned longest `task.timeout_seconds` first, each to the worker with the
  least total timeout so far; a worker runs its tests one after another.
- Resume (the default): tests whose entry is pass/fail are skipped, `error` ones too unless
  `--retry-errors`; rate_limited and interrupted tests (and tests without an entry) are run again,
  and their child `run` resumes the experiment directory. The saved batch options win over the
  command line. `--fresh` moves the summary, the thread logs and the experiment dirs aside first.
- pass / fail: the child exited 0 and its report.json says that the best tier had at least one
  passing run (`n_passed > 0` for `best_tier`, i.e. a pass rate above zero; a run passes when its
  score reaches the rubric's pass threshold) -> `pass`; otherwise `fail`.
- Exit codes: 130 interrupted, else 2 if rate limited (rerunning later resumes), else 1 if any
  selected test is an `error`, else 0.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

from tierbench.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_RATE_LIMITED, print_error
from tierbench.batch_summary import (SUMMARY_FILE,
                                     BatchOptions, BatchProgress, BatchSummary, SummaryWriter, TestResult,
                                     completed_result, exit_code, load_summary, needs_run, print_outcome)
from tierbench.ratelimit import local_reset_time
from tierbench.experiment import backup_aside
from tierbench.store.layout import ExperimentLayout
from tierbench.store.lock import ExperimentLock, LockHeld

INTERRUPTED_CODES = (EXIT_INTERRUPTED, -signal.SIGINT, -signal.SIGTERM)
DEFAULT_MAX_WAIT = 6 * 3600.0
DEFAULT_RATE_LIMIT_WAIT = 60.0  # a child exited 2 but its checkpoint names no reset time
INTERRUPT_GRACE = 60.0  # after a first signal, children get this long to checkpoint before SIGKILL
STDERR_TAIL_LINES = 6
_POLL = 0.2


class BatchError(Exception):
    """The batch cannot start as asked; the message says why."""



# -- tests ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchTest:
    test_id: str
    test_dir: Path
    timeout: int
    error: str | None = None  # the test directory is invalid: recorded as an `error`, never run


def discover_tests(tests_dir: Path) -> list[BatchTest]:
    """Subdirectories holding test.yaml, validated; an invalid one keeps its error (not raised)."""
    from tierbench.spec import load_test

    tests_dir = Path(tests_dir)
    if not tests_dir.is_dir():
        raise BatchError(f"{tests_dir}: not a directory of tests")
    tests, seen = [], {}
    for test_dir in sorted(p.resolve() for p in tests_dir.iterdir() if (p / "test.yaml").is_file()):
        try:
            loaded = load_test(test_dir)
            test = BatchTest(loaded.spec.id, test_dir, loaded.spec.task.timeout_seconds)
        except Exception as exc:  # SpecError names file, field and fix; anything else is still this test's
            text = str(exc) if exc.__class__.__name__ == "SpecError" else f"{type(exc).__name__}: {exc}"
            test = BatchTest(_raw_id(test_dir), test_dir, 0, error=text)
        if test.test_id in seen:
            test = BatchTest(test.test_id, test_dir, 0, error=(
                f"{test_dir}: test id {test.test_id!r} is also used by {seen[test.test_id]}; "
                "give each test its own id"))
        else:
            seen[test.test_id] = test_dir
        tests.append(test)
    if not tests:
        raise BatchError(f"{tests_dir}: no tests found (subdirectories holding test.yaml)")
    return tests


def _raw_id(test_dir: Path) -> str:
    """The id an invalid test.yaml claims, if it is readable; else the directory name."""
    import yaml

    try:
        data = yaml.safe_load((test_dir / "test.yaml").read_text())
        if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"].strip():
            return data["id"].strip()
    except Exception:
        pass
    return test_dir.name


def select_tests(tests: list[BatchTest], wanted: list[str] | None) -> list[BatchTest]:
    if not wanted:
        return tests
    by_name = {t.test_id: t for t in tests} | {t.test_dir.name: t for t in tests}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise BatchError(f"--tests: unknown test id(s) {' '.join(unknown)}; available: "
                         f"{' '.join(sorted(t.test_id for t in tests))}")
    chosen = {by_name[w].test_dir for w in wanted}
    return [t for t in tests if t.test_dir in chosen]


def assign_threads(tests: list[BatchTest], threads: int) -> dict[int, list[BatchTest]]:
    """Longest timeout first, each to the least-loaded worker (ties: lower thread id)."""
    workers = min(threads, len(tests))
    plan: dict[int, list[BatchTest]] = {n: [] for n in range(1, workers + 1)}
    load = dict.fromkeys(plan, 0)
    for test in sorted(tests, key=lambda t: (-t.timeout, t.test_id)):
        thread_id = min(load, key=lambda n: (load[n], n))
        plan[thread_id].append(test)
        load[thread_id] += test.timeout
    return plan


def child_command(test_dir: Path, results_dir: Path, options: BatchOptions) -> list[str]:
    """`tierbench run` for one test with only the options the batch was given."""
    cmd = [sys.executable, "-m", "tierbench.cli", "run", str(test_dir), "--results-dir", str(results_dir)]
    if options.tiers:
        cmd += ["--tiers", *options.tiers]
    singles = {"--runs": options.runs_per_subtest, "--max-subtests": options.max_subtests,
               "--agent": options.agent, "--model": options.model, "--timeout": options.timeout_seconds,
               "--thinking": options.thinking, "--seed": options.seed,
               "--on-rate-limit": options.on_rate_limit, "--max-wait": options.max_wait_seconds,
               "--rate-limit-wait": options.default_rate_limit_wait_seconds}
    for flag, value in singles.items():
        if value is not None and value != "":
            cmd.append(f"{flag}={value}")  # '=' so a value starting with '-' is not read as a flag
    for key, value in (options.agent_options or {}).items():
        cmd.append(f"--agent-opt={key}={value}")
    for judge in options.judges or []:
        if judge:
            cmd.append(f"--judge={judge}")
    return cmd + ["--quiet"]


# -- rate limits ------------------------------------------------------------------------------------

def budget_args(budget_usd: float | None, results_dir: Path) -> list[str]:
    """A batch budget covers every test together: each child gets it with the batch dir as its
    scope (where the children's spend is shared). Not a saved option: each invocation gives its own."""
    if budget_usd is None:
        return []
    return [f"--budget-usd={budget_usd!r}", f"--budget-scope={results_dir}"]


def rate_limit_until(exp_dir: Path) -> datetime | None:
    """`rate_limit_until` of an experiment's checkpoint.json (aware UTC), None if absent."""
    import json

    try:
        value = json.loads((Path(exp_dir) / "checkpoint.json").read_text()).get("rate_limit_until")
        moment = datetime.fromisoformat(value) if value else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def should_wait(options: BatchOptions, until: datetime | None) -> bool:
    policy = options.on_rate_limit
    if policy is not None:
        return policy == "wait"
    left = (until - datetime.now(timezone.utc)).total_seconds() if until else DEFAULT_RATE_LIMIT_WAIT
    return left <= (options.max_wait_seconds if options.max_wait_seconds is not None else DEFAULT_MAX_WAIT)


# -- children ---------------------------------------------------------------------------------------

class Children:
    """The running `tierbench run` children, each the leader of its own process group."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: the signal handler may interrupt the main thread in here
        self._running: dict[subprocess.Popen[bytes], Path] = {}  # child -> its experiment dir
        self.closed = False

    def start(self, cmd: list[str], exp_dir: Path, log: BinaryIO) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self.closed:
                return None
            # TIERBENCH_BATCH_PID: the child stops cleanly (exit 130, state saved) if the batch dies,
            # even by SIGKILL, instead of running on unseen and holding its experiment's lock.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.PIPE,
                                    start_new_session=True,
                                    env={**os.environ, "TIERBENCH_BATCH_PID": str(os.getpid())})
            self._running[proc] = exp_dir
            return proc

    def finished(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.pop(proc, None)

    def exp_dirs(self) -> list[Path]:
        with self._lock:
            return list(self._running.values())

    def signal_all(self, sig: int) -> None:
        """Refuse new children and send `sig` to every running child's process group."""
        with self._lock:
            self.closed = True
            for proc in self._running:
                if proc.returncode is None:  # not reaped yet, so its PID (= group id) is still its own
                    try:
                        os.killpg(proc.pid, sig)
                    except (ProcessLookupError, PermissionError):
                        pass


class BatchRunner:
    def __init__(self, results_dir: Path, options: BatchOptions, writer: SummaryWriter,
                 progress: BatchProgress, budget_usd: float | None = None):
        self.results_dir, self.options, self.writer, self.progress = results_dir, options, writer, progress
        self.budget_usd = budget_usd
        self.budget_reached: str | None = None  # set (a test id): the budget stopped a child, launch nothing more
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
                    result = TestResult(test_id=test.test_id, thread_id=thread_id, status="error",
                                        test_dir=str(test.test_dir), error=f"batch worker: {type(exc).__name__}: {exc}")
                if result is None:
                    return  # interrupted or rate limited before it started: it keeps no entry
                self.writer.record(result)
                self.progress.test_finished(result)

    def _run_test(self, thread_id: int, test: BatchTest, log: BinaryIO) -> TestResult | None:
        exp_dir = self.results_dir / test.test_id
        attempt = 0
        while True:
            if not self._wait_for_launch():
                return None
            attempt += 1
            self.writer.forget(test.test_id, str(test.test_dir))
            cmd = child_command(test.test_dir, self.results_dir, self.options) + budget_args(
                self.budget_usd, self.results_dir)
            self.progress.test_started(thread_id, test.test_id)
            started = time.monotonic()
            code, tail = self._run_child(cmd, exp_dir, log, f"{test.test_id} (attempt {attempt})")
            if code is None:
                return None
            wall = time.monotonic() - started
            if code == EXIT_RATE_LIMITED:
                until = rate_limit_until(exp_dir)
                if should_wait(self.options, until) and not self.interrupted.is_set():
                    self.hold(until or datetime.now(timezone.utc) + timedelta(seconds=DEFAULT_RATE_LIMIT_WAIT),
                               test.test_id)
                    continue  # rerun the child once the reset has passed: it resumes its experiment
                with self._lock:  # remember the latest reset: that is when a rerun can go on
                    old = self.rate_limited
                    if old is None or (until is not None and (old[0] is None or until > old[0])):
                        self.rate_limited = (until, test.test_id)
            return self._result(thread_id, test, exp_dir, code, tail, wall)

    def _run_child(self, cmd: list[str], exp_dir: Path, log: BinaryIO, label: str) -> tuple[int | None, str]:
        stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        log.write(f"\n===== {stamp} {label}\n$ {shlex.join(cmd)}\n".encode())
        log.flush()
        proc = self.children.start(cmd, exp_dir, log)
        if proc is None:
            log.write(b"(not started: the batch is stopping)\n")
            log.flush()
            return None, ""
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        try:
            assert proc.stderr is not None
            for line in proc.stderr:  # child stderr goes to the log, and its tail into the result
                log.write(line)
                log.flush()
                if line.strip():
                    tail.append(line.decode(errors="replace").rstrip())
            code = proc.wait()
        finally:
            self.children.finished(proc)
        log.write(f"===== exit {code}\n".encode())
        log.flush()
        return code, "\n".join(tail)

    def _result(self, thread_id: int, test: BatchTest, exp_dir: Path, code: int, tail: str,
                wall: float) -> TestResult:
        base = dict(test_id=test.test_id, thread_id=thread_id, exit_code=code, result_dir=str(exp_dir),
                    test_dir=str(test.test_dir), wall_seconds=round(wall, 3))
        if code == EXIT_OK:
            return completed_result(exp_dir, base)
        if code == EXIT_RATE_LIMITED:
            until = rate_limit_until(exp_dir)
            note = f"rate limited until {local_reset_time(until)}" if until else "rate limited"
            return TestResult(status="rate_limited", error=tail or note, **base)
        if code in INTERRUPTED_CODES or (code < 0 and self.interrupted.is_set()):  # < 0: killed after the grace
            return TestResult(status="interrupted", error=tail or "interrupted", **base)
        if code == EXIT_ERROR and _checkpoint_status(exp_dir) == "budget_reached":
            self.budget_reached = test.test_id
            return TestResult(status="budget_reached", error=tail or "budget reached", **base)
        if code < 0:
            tail = (tail + "\n" if tail else "") + f"killed by {signal.Signals(-code).name}"
        return TestResult(status="error", error=tail or f"tierbench run exited {code}", **base)

    # -- the launch gate -------------------------------------------------------------------------
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
                    self.progress.paused(None)
                return True
            if not should_wait(self.options, until):
                with self._lock:
                    self.rate_limited = self.rate_limited or (until, "a running test")
                return False
            if not shown:
                self.progress.paused(until)
                shown = True
            time.sleep(_POLL)

    def _gate(self) -> datetime | None:
        """The latest reset still ahead: one this batch is waiting out, or one a running child is
        waiting out itself (the account is shared, so starting another test now would only hit it)."""
        now = datetime.now(timezone.utc)
        candidates = [self._hold_until] + [rate_limit_until(d) for d in self.children.exp_dirs()]
        ahead = [c for c in candidates if c is not None and c > now]
        return max(ahead) if ahead else None


# -- the command ------------------------------------------------------------------------------------

def cmd_batch(args: argparse.Namespace, requested: dict[str, Any]) -> int:
    results_dir = Path(args.results_dir or "results").resolve()
    try:
        tests = select_tests(discover_tests(args.tests_dir), args.tests)
    except BatchError as exc:
        print_error(str(exc))
        return EXIT_ERROR
    lock = ExperimentLock(results_dir / ".batch.lock")
    try:
        lock.acquire()
    except LockHeld as exc:
        holder = f"PID {exc.pid}" if exc.pid is not None else "another process (PID unknown)"
        print_error(f"{results_dir} is already used by another tierbench batch ({holder}). "
             "Wait for it to finish, or stop it first.")
        return EXIT_ERROR
    try:
        return _run_batch(args, requested, results_dir, tests)
    finally:
        lock.release()


def _run_batch(args: argparse.Namespace, requested: dict[str, Any], results_dir: Path,
               tests: list[BatchTest]) -> int:
    summary_path = results_dir / SUMMARY_FILE
    notes: list[str] = []
    if args.fresh:  # never delete: the old summary, logs and experiments are moved aside
        for path in [summary_path, results_dir / "thread_logs", *(results_dir / t.test_id for t in tests)]:
            if path.exists():
                notes.append(f"--fresh: moved {path} aside to {backup_aside(path)}")
    try:
        summary = load_summary(summary_path)
    except ValueError as exc:
        print_error(str(exc))
        return EXIT_ERROR
    if summary is None:
        summary = BatchSummary(config=BatchOptions.from_requested(requested))
    elif ignored := summary.config.ignored(requested):
        notes += [f"ignored on resume: {line}" for line in ignored]
        notes.append("(the batch's saved options win; use --fresh to start anew with new ones)")
    to_run = [t for t in tests if needs_run(_entry(summary, t), args.retry_errors)]
    runnable = [t for t in to_run if t.error is None]
    plan = assign_threads(runnable, args.threads) if runnable else {}
    writer = SummaryWriter(summary_path, summary)
    writer.start({n: [t.test_id for t in batch] for n, batch in plan.items()})
    progress = BatchProgress(len(to_run), len(plan), quiet=args.quiet)
    for note in notes:
        progress.message(note)
    if len(to_run) < len(tests):
        errors_kept = sum(getattr(_entry(summary, t), "status", None) == "error" for t in tests)
        progress.message(f"{len(tests) - len(to_run)} of {len(tests)} tests already have results and are "
                         "skipped" + (f" ({errors_kept} errors: rerun them with --retry-errors)"
                                      if errors_kept and not args.retry_errors else ""))
    for test in to_run:
        if test.error is not None:
            invalid = TestResult(test_id=test.test_id, status="error", error=test.error, test_dir=str(test.test_dir))
            writer.record(invalid)
            progress.test_finished(invalid)
    runner = BatchRunner(results_dir, summary.config, writer, progress,
                         budget_usd=getattr(args, "budget_usd", None))
    if runnable:
        _preflight(runner, runnable)
        restore = _install_signal_handlers(runner, progress)
        progress.start()
        try:
            if runner.rate_limited is None:
                runner.run(plan)
        finally:
            progress.stop()
            restore()
    writer.finish()
    final = writer.snapshot()
    entries = [_entry(final, t) for t in tests]
    code = exit_code(entries, interrupted=runner.interrupted.is_set(), rate_limited=runner.rate_limited is not None,
                     budget_reached=runner.budget_reached is not None)
    if runnable or not (results_dir / "report.md").exists():
        _write_report_quietly(results_dir)
    print_outcome(code, entries, runner.rate_limited, summary_path, results_dir / "report.md")
    return code


def _checkpoint_status(exp_dir: Path) -> str | None:
    from tierbench.store.state import peek_state

    state = peek_state(ExperimentLayout(exp_dir))
    return state.status if state is not None else None


def _entry(summary: BatchSummary, test: BatchTest) -> TestResult | None:
    return summary.entry(test.test_id, str(test.test_dir))


def _preflight(runner: BatchRunner, tests: list[BatchTest]) -> None:
    """A rate limit recorded by an earlier invocation applies before any child starts."""
    now = datetime.now(timezone.utc)
    limits = [(until, t.test_id) for t in tests
              if (until := rate_limit_until(runner.results_dir / t.test_id)) is not None and until > now]
    if not limits:
        return
    until, test_id = max(limits)
    if should_wait(runner.options, until):
        runner.hold(until, test_id)
    else:
        runner.rate_limited = (until, test_id)


def _install_signal_handlers(runner: BatchRunner, progress: BatchProgress) -> Any:
    """First SIGINT/SIGTERM: every child gets SIGINT, checkpoints and exits 130; the batch records
    them as interrupted and exits 130. A second signal kills the children and exits at once (their
    completed runs are already durable; the tests keep no new entry, so a rerun resumes them)."""
    hits = {"count": 0}

    def handle(signum: int, _frame: Any) -> None:
        hits["count"] += 1
        if hits["count"] == 1:
            print_error(f"{signal.Signals(signum).name}: stopping; running tests checkpoint and stop "
                 "(press Ctrl+C again to exit at once)")
            runner.interrupt()
            return
        runner.kill()
        if progress.stream.isatty():
            progress.stream.write("\x1b[?25h\n")  # the live view hid the cursor
        os._exit(EXIT_INTERRUPTED)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]


def _write_report_quietly(results_dir: Path) -> None:
    try:
        from tierbench.report.render import write_report

        write_report(results_dir)
    except Exception as exc:  # the tests themselves are recorded; say what went wrong with the report
        print_error(f"warning: the batch report failed ({type(exc).__name__}: {exc}); "
             f"retry with: tierbench report {results_dir}")
