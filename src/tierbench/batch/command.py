"""`tierbench batch`: select the tests, resume or start the summary, run the workers, report."""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tierbench.batch.runner import BatchRunner, report_entry
from tierbench.batch.selection import BatchError, BatchTest, assign_threads, discover_tests, select_tests
from tierbench.batch.summary import (SUMMARY_FILE, BatchSummary, EntryStatus, SummaryWriter, TestResult,
                                     exit_code, ignored_options, load_summary, needs_run, print_outcome)
from tierbench.batch.view import BatchProgress
from tierbench.experiment import backup_aside
from tierbench.options import GivenOptions
from tierbench.signals import install_stop_handlers
from tierbench.store.lock import ExperimentLock, LockHeld


def cmd_batch(args: argparse.Namespace, requested: dict[str, Any]) -> int:
    results_dir = Path(args.results_dir or "results").resolve()
    tests = select_tests(discover_tests(args.tests_dir), args.tests)
    lock = ExperimentLock(results_dir / ".batch.lock")
    try:
        lock.acquire()
    except LockHeld as exc:
        holder = f"PID {exc.pid}" if exc.pid is not None else "another process (PID unknown)"
        raise BatchError(f"{results_dir} is already used by another tierbench batch ({holder})",
                         "Wait for it to finish, or stop it first.") from None
    try:
        with ExitStack() as cleanup:  # e.g. the batch's Ray head: stopped however the batch ends
            return _run_batch(args, requested, results_dir, tests, cleanup)
    finally:
        lock.release()


def _run_batch(args: argparse.Namespace, requested: dict[str, Any], results_dir: Path,
               tests: list[BatchTest], cleanup: ExitStack) -> int:
    summary_path = results_dir / SUMMARY_FILE
    notes: list[str] = []
    if args.fresh:  # never delete: the old summary, logs and experiments are moved aside
        for path in [summary_path, results_dir / "thread_logs", *(results_dir / t.test_id for t in tests)]:
            if path.exists():
                notes.append(f"--fresh: moved {path} aside to {backup_aside(path)}")
    summary = load_summary(summary_path)
    if summary is None:
        summary = BatchSummary(config=GivenOptions(**requested))
    elif ignored := ignored_options(summary.config, requested):
        notes += [f"ignored on resume: {line}" for line in ignored]
        notes.append("(the batch's saved options win; use --fresh to start anew with new ones)")
    to_run = [t for t in tests if needs_run(_entry(summary, t), args.retry_errors)]
    runnable = [t for t in to_run if t.error is None]
    plan = assign_threads(runnable, args.threads) if runnable else {}
    child_args, child_env = _ray_cluster(args, summary.config, len(plan), results_dir, cleanup) if plan else ([], {})
    writer = SummaryWriter(summary_path, summary)
    writer.start({n: [t.test_id for t in batch] for n, batch in plan.items()})
    progress = BatchProgress({t.test_id: n for n, batch in plan.items() for t in batch}, len(plan),
                             quiet=args.quiet)
    progress.total = len(to_run)
    for note in notes:
        progress.message(note)
    if len(to_run) < len(tests):
        errors_kept = sum(getattr(_entry(summary, t), "status", None) is EntryStatus.ERROR for t in tests)
        progress.message(f"{len(tests) - len(to_run)} of {len(tests)} tests already have results and are "
                         "skipped" + (f" ({errors_kept} errors: rerun them with --retry-errors)"
                                      if errors_kept and not args.retry_errors else ""))
    for test in to_run:
        if test.error is not None:
            invalid = TestResult(test_id=test.test_id, status=EntryStatus.ERROR, error=test.error,
                                 test_dir=str(test.test_dir))
            writer.record(invalid)
            report_entry(progress, invalid)
    runner = BatchRunner(results_dir, summary.config, writer, progress, budget_usd=args.budget_usd)
    runner.child_args, runner.children.env = child_args, child_env
    if runnable:
        runner.apply_recorded_limits([t.test_id for t in runnable])
        restore = install_stop_handlers(runner.interrupt, lambda: _kill(runner, progress),
                                        stopping="running tests checkpoint and stop")
        progress.start("Batch", {"tests": len(to_run)}, {"tests": progress.done}, progress.passed, progress.cost)
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
        from tierbench.report.render import write_report_or_warn  # matplotlib and scipy: only when needed

        write_report_or_warn(results_dir)
    print_outcome(code, entries, runner.rate_limited, summary_path, results_dir / "report.md")
    return code


def _ray_cluster(args: argparse.Namespace, options: GivenOptions, threads: int, results_dir: Path,
                 cleanup: ExitStack) -> tuple[list[str], dict[str, str]]:
    """With --executor ray every child runs on one cluster: the one --ray-address (or RAY_ADDRESS)
    names, else one local head the batch starts now and stops when it ends (children's argv, env)."""
    if options.get("executor") != "ray":
        return [], {}
    address = getattr(args, "ray_address", None) or os.environ.get("RAY_ADDRESS")
    if address:
        return [f"--ray-address={address}"], {}
    from tierbench.execute.executor import ExecutorUnavailable
    from tierbench.execute.ray_head import LocalRayHead

    parallel, run_cpus = options.get("parallel"), options.get("run_cpus")
    head = LocalRayHead(cpus=int(threads * parallel * run_cpus + 0.999), slots=threads * parallel,
                        record=results_dir / ".ray_head")
    cleanup.callback(head.stop)
    try:
        head.start()
    except ExecutorUnavailable as exc:
        raise BatchError(str(exc)) from None
    return [f"--ray-address={head.address}"], head.child_env


def _entry(summary: BatchSummary, test: BatchTest) -> TestResult | None:
    return summary.entry(test.test_id, str(test.test_dir))


def _kill(runner: BatchRunner, progress: BatchProgress) -> None:
    """A second signal: kill the children (their completed runs are durable already; the tests keep
    no new entry, so a rerun resumes them) and give the terminal its cursor back."""
    runner.kill()
    if progress.stream.isatty():
        progress.stream.write("\x1b[?25h\n")  # the live view hid the cursor
