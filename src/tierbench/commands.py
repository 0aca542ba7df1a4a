"""What each CLI command does, wired from the library modules. Messages go to stderr; the
final answer of a command (report path, status table) goes to stdout."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import IO, Any, cast

from tierbench.errors import TierbenchError
from tierbench.exitcodes import EXIT_ERROR, EXIT_OK
from tierbench.experiment import (ExperimentError, OpenedExperiment, backup_aside, experiment_root,
                                  new_config, record_budget_change, reopen_experiment,
                                  start_experiment)
from tierbench.spec import load_test
from tierbench.store.layout import ExperimentLayout
from tierbench.signals import ignore_late_signals, install_stop_handlers
from tierbench.store.lock import ExperimentLock, LockHeld


class _TolerantStream:
    """Output whose reader may vanish (a crashed batch, `| head`): a failed write is dropped, so
    it can never stop the coordinator from saving state and exiting with the right code."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _open_locked(args: argparse.Namespace, requested: dict[str, Any]) -> tuple[OpenedExperiment, ExperimentLock]:
    """Validate, take the experiment's OS lock, then create or reopen it. The lock comes before
    anything is created, so two racing coordinators can never both set up one directory."""
    if args.command == "resume":
        if args.fresh:
            raise ExperimentError("--fresh starts anew from a test directory: tierbench run TEST_DIR --fresh")
        root = Path(args.exp_dir).resolve()
        if not (root / "config" / "experiment.json").exists():
            raise ExperimentError(f"{root} is not an experiment directory (no config/experiment.json). "
                                  "Start one with: tierbench run TEST_DIR")
        lock = _acquire(root)
        try:
            return reopen_experiment(root, requested, extend=args.extend), lock
        except BaseException:
            lock.release()
            raise
    test = load_test(args.test_dir)  # validation happens before anything is created
    root = experiment_root(args.results_dir or Path("results"), test)
    if args.fresh or not (root / "config" / "experiment.json").exists():
        new_config(test, requested)  # a bad agent option or judge is refused before anything exists
    notes = []
    if args.fresh and root.exists():
        _acquire(root).release()  # refuse to move a directory another process is running
        notes.append(f"--fresh: moved the previous experiment aside to {backup_aside(root)}")
    root.mkdir(parents=True, exist_ok=True)
    lock = _acquire(root)
    try:
        opened = start_experiment(test, root, requested, extend=args.extend)
    except BaseException:
        lock.release()
        raise
    opened.notes[:0] = notes
    return opened, lock


def _acquire(root: Path) -> ExperimentLock:
    lock = ExperimentLock(ExperimentLayout(root).lock_file)
    lock.acquire()
    return lock


def cmd_run(args: argparse.Namespace, requested: dict[str, Any]) -> int:
    sys.stdout, sys.stderr = _TolerantStream(sys.stdout), _TolerantStream(sys.stderr)
    from tierbench.execute.coordinator import Coordinator
    from tierbench.plan import plan_runs
    from tierbench.progress import make_progress
    from tierbench.store.state import StateStore

    opened, lock = _open_locked(args, requested)
    layout, config = opened.layout, opened.config
    progress = make_progress(quiet=args.quiet, stream=cast(IO[str], sys.stderr), parallel=config.parallel)
    try:
        for note in opened.notes:
            progress.message(note)
        store, load_notes = StateStore.open(layout, experiment_id=config.experiment_id,
                                            config_hash=config.config_hash(), planned=plan_runs(config, opened.test))
        for fixed in load_notes.fixed:
            progress.message(f"fixed on load: {fixed}")
        budget, scope = args.budget_usd, getattr(args, "budget_scope", None)  # scope: run only (batch children)
        if budget is None:  # a rerun keeps the budget (and the batch it covers) in the checkpoint
            budget = store.checkpoint.budget_usd
            scope = scope or store.checkpoint.budget_scope
        elif store.checkpoint.budget_usd is not None and budget != store.checkpoint.budget_usd:
            config = record_budget_change(layout, config, store.checkpoint.budget_usd, budget)
            progress.message(f"--budget-usd {budget:g}: changed from {store.checkpoint.budget_usd:g} "
                             "(recorded in the config's extensions)")
        coordinator = Coordinator(layout, config, opened.test, store, progress, budget_usd=budget,
                                  budget_scope=Path(scope) if scope else None)
        install_stop_handlers(coordinator.request_stop, coordinator.registry.kill_all,
                              stopping="in-flight runs go back to pending")
        _stop_with_parent_batch()
        try:
            outcome = coordinator.run()
        finally:
            progress.stop()
    finally:
        lock.release()
    if outcome.exit_code == EXIT_OK and not getattr(args, "no_report", False):
        from tierbench.report.render import write_report_or_warn  # matplotlib and scipy: only when needed

        write_report_or_warn(layout.root)
    stream = sys.stdout if outcome.exit_code == EXIT_OK else sys.stderr
    print(outcome.message, file=stream, flush=True)
    if outcome.exit_code == EXIT_OK and (layout.root / "report.md").exists():
        print(f"Report: {layout.root / 'report.md'}", flush=True)
    ignore_late_signals()
    return outcome.exit_code


def _stop_with_parent_batch() -> None:
    """Under `tierbench batch`, ask the kernel for SIGTERM when the batch dies (Linux
    PR_SET_PDEATHSIG), so a crashed batch leaves no experiment running unseen."""
    parent = os.environ.get("TIERBENCH_BATCH_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the batch died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def cmd_status(exp_dir: Path, *, as_json: bool) -> int:
    from tierbench.status import experiment_status, format_status

    status = experiment_status(ExperimentLayout(Path(exp_dir).resolve()))
    print(json.dumps(status, indent=2, default=str) if as_json else format_status(status))
    return EXIT_OK


def cmd_check(exp_dir: Path) -> int:
    from tierbench.store.repair import check_experiment

    layout = ExperimentLayout(Path(exp_dir).resolve())
    if not layout.config_file.exists() and not layout.checkpoint.exists():
        raise ExperimentError(f"{layout.root} is not an experiment directory (no config/experiment.json)",
                              "Pass the experiment directory (the one holding config/ and checkpoint.json)")
    problems = check_experiment(layout)
    if not problems:
        print(f"OK: {layout.root}: the checkpoint and the files agree")
        return EXIT_OK
    for problem in problems:
        print(f"{problem.kind}: {problem.path}: {problem.detail}")
    repairable = sum(p.repairable for p in problems)
    advice = f" Fix {'them' if repairable == len(problems) else f'{repairable} of them'} with: tierbench repair {layout.root}" \
        if repairable else ""
    print(f"{len(problems)} discrepancies.{advice}")
    return EXIT_ERROR


def cmd_repair(path: Path) -> int:
    from tierbench.store.repair import format_repair_report, repair_experiment

    try:
        report = repair_experiment(Path(path))
    except LockHeld as exc:
        raise ExperimentError(f"a tierbench process (PID {exc.pid}) is running this experiment",
                              "Repair it after that ends") from None
    print(format_repair_report(report))
    return EXIT_OK


def cmd_report(path: Path, out: Path | None, formats: str) -> int:
    from tierbench.report.render import KNOWN_FORMATS, write_report

    wanted = {f.strip() for f in formats.split(",") if f.strip()}
    unknown = wanted - KNOWN_FORMATS
    if unknown:
        raise TierbenchError(f"--format: unknown format(s) {sorted(unknown)}",
                             f"Use a comma-separated list of {','.join(sorted(KNOWN_FORMATS))}")
    if not Path(path).is_dir():
        raise TierbenchError(f"{path}: not a directory", "Pass an experiment or batch results directory")
    layout = ExperimentLayout(Path(path).resolve())
    if layout.config_file.exists():  # an experiment: its config and state must be readable
        from tierbench.config import load_config
        from tierbench.store.results import load_state

        load_config(layout.config_file)
        load_state(layout, strict=not ExperimentLock(layout.lock_file).is_held())
    try:
        written = write_report(Path(path), out, wanted)
    except ValueError as exc:
        raise TierbenchError(f"report failed: {exc}", f"Check the files named above, then rerun: tierbench report {path}") from None
    for file in written:
        print(file)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """`tierbench plan`: read-only; prints the plan (text or JSON) and exits 0, or 1 on bad input."""
    from tierbench.report.planning import make_plan, render_plan

    plan = make_plan(args.path, half_width=args.half_width, uplift=args.uplift, pilot=args.pilot,
                     prior_pass_rate=args.prior_pass_rate, tiers=args.tiers,
                     max_subtests=args.max_subtests, parallel=args.parallel, alpha=args.alpha,
                     power=args.power, cost_per_run=args.cost_per_run,
                     seconds_per_run=args.seconds_per_run)  # bad input: TierbenchError, exit 1
    print(plan.model_dump_json(indent=2) if args.json else render_plan(plan), end="" if not args.json else "\n")
    return EXIT_OK


def cmd_import(source: Path, out_dir: Path, tests: list[str] | None, judge: str) -> int:
    """`tierbench import scylla`: convert, then say what was not mapped, per test and field."""
    from tierbench.errors import TierbenchError
    from tierbench.judgespec import validate_judge_spec
    from tierbench.scylla_import import import_scylla

    try:
        validate_judge_spec(judge)
    except ValueError as exc:
        raise TierbenchError(f"--judge {judge}: {exc}", "use command, anthropic:<model> or "
                             "openai:<model>[@base_url]") from None
    summary = import_scylla(source, out_dir, tests=tests, judge=judge)  # a TierbenchError says what to fix
    for test_id, entry in summary["tests"].items():
        print(f"{test_id}: {entry['mapped']} field(s) mapped, {len(entry['unmapped'])} not mapped")
        for item in entry["unmapped"]:
            print(f"  not mapped: {item['source']}: {item['field']}: {item['reason']}")
    for item in summary["shared"]:
        if item["status"] == "unmapped":
            print(f"not mapped: {item['source']}: {item['field']}: {item['reason']}")
    print(f"Imported {len(summary['tests'])} test(s) into {Path(out_dir).resolve()}; "
          f"details in {Path(out_dir).resolve() / 'import_report.json'}")
    return EXIT_OK
