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
from typing import Any

from tierbench.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, print_error
from tierbench.config import ExtensionError
from tierbench.experiment import (ExperimentError, OpenedExperiment, backup_aside, experiment_root,
                                  new_config, reopen_experiment, start_experiment)
from tierbench.spec import SpecError, load_test
from tierbench.store.layout import ExperimentLayout
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
    from tierbench.store.state import StateStore, StoreWriteError

    try:
        opened, lock = _open_locked(args, requested)
    except LockHeld as exc:
        print_error(f"this experiment is already being run by another tierbench process (PID {exc.pid}). "
             "Wait for it to finish, or stop it first.")
        return EXIT_ERROR
    except (SpecError, ExperimentError, ExtensionError) as exc:
        print_error(str(exc))
        return EXIT_ERROR
    layout, config = opened.layout, opened.config
    progress = make_progress(quiet=args.quiet, stream=sys.stderr, parallel=config.parallel)
    try:
        for note in opened.notes:
            progress.message(note)
        store, load_notes = StateStore.open(layout, experiment_id=config.experiment_id,
                                            config_hash=config.config_hash(), planned=plan_runs(config, opened.test))
        for fixed in load_notes.fixed:
            progress.message(f"fixed on load: {fixed}")
        coordinator = Coordinator(layout, config, opened.test, store, progress,
                                  executor_factory=_executor_factory(config, getattr(args, "ray_address", None)))
        _install_signal_handlers(coordinator)
        _stop_with_parent_batch()
        try:
            outcome = coordinator.run()
        finally:
            progress.stop()
    except StoreWriteError as exc:
        print_error(str(exc))
        return EXIT_ERROR
    finally:
        lock.release()
    if outcome.exit_code == EXIT_OK and not getattr(args, "no_report", False):
        _write_report_quietly(layout.root)
    stream = sys.stdout if outcome.exit_code == EXIT_OK else sys.stderr
    print(outcome.message, file=stream, flush=True)
    if outcome.exit_code == EXIT_OK and (layout.root / "report.md").exists():
        print(f"Report: {layout.root / 'report.md'}", flush=True)
    # Everything is saved. Python restores the default handlers while it shuts down, so a late
    # Ctrl+C would turn exit 130 into death-by-signal; ignore signals for these last moments.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return outcome.exit_code


def _executor_factory(config: Any, ray_address: str | None) -> Any:
    """None for the local executor (the coordinator's default); a Ray executor maker for --executor ray."""
    if config.executor != "ray":
        return None

    def make(coordinator: Any, base_commit: str) -> Any:
        from tierbench.execute.ray import RayExecutor

        return RayExecutor(layout=coordinator.layout, experiment_key=f"{config.experiment_id}-{config.config_hash()}",
                           base_commit=base_commit, address=ray_address, run_cpus=config.run_cpus,
                           parallel=config.parallel)
    return make


def _install_signal_handlers(coordinator: Any) -> None:
    """First SIGINT/SIGTERM: stop cleanly (exit 130). A second: exit at once. Completed runs are
    already durable in the fsync'd journal, so the hard exit loses nothing that finished."""
    hits = {"count": 0}

    def handle(signum: int, _frame: Any) -> None:
        hits["count"] += 1
        if hits["count"] == 1:
            print_error(f"{signal.Signals(signum).name}: stopping; in-flight runs go back to pending "
                 "(press Ctrl+C again to exit at once)")
            coordinator.request_stop()
        else:
            coordinator.registry.kill_all()
            os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


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


def _write_report_quietly(root: Path) -> None:
    try:
        from tierbench.report.render import write_report

        write_report(root)
    except Exception as exc:  # the experiment itself succeeded; say what went wrong with the report
        print_error(f"report failed ({type(exc).__name__}: {exc}); rerun with: tierbench report {root}")


def cmd_status(exp_dir: Path, *, as_json: bool) -> int:
    from tierbench.status import experiment_status, format_status

    try:
        status = experiment_status(ExperimentLayout(Path(exp_dir).resolve()))
    except ExperimentError as exc:
        print_error(str(exc))
        return EXIT_ERROR
    print(json.dumps(status, indent=2, default=str) if as_json else format_status(status))
    return EXIT_OK


def cmd_check(exp_dir: Path) -> int:
    from tierbench.store.repair import check_experiment

    layout = ExperimentLayout(Path(exp_dir).resolve())
    if not layout.config_file.exists() and not layout.checkpoint.exists():
        print_error(f"{layout.root} is not an experiment directory (no config/experiment.json)")
        return EXIT_ERROR
    problems = check_experiment(layout)
    if not problems:
        print(f"OK: {layout.root}: the checkpoint and the files agree")
        return EXIT_OK
    for problem in problems:
        print(f"{problem.kind}: {problem.path}: {problem.detail}")
    print(f"{len(problems)} discrepancies. Fix them with: tierbench repair {layout.root}")
    return EXIT_ERROR


def cmd_repair(path: Path) -> int:
    from tierbench.store.repair import format_repair_report, repair_experiment

    try:
        report = repair_experiment(Path(path))
    except LockHeld as exc:
        print_error(f"a tierbench process (PID {exc.pid}) is running this experiment; repair it after that ends")
        return EXIT_ERROR
    except (OSError, ValueError) as exc:
        print_error(f"repair failed: {exc}")
        return EXIT_ERROR
    print(format_repair_report(report))
    return EXIT_OK


def cmd_report(path: Path, out: Path | None, formats: str) -> int:
    from tierbench.report.render import write_report

    wanted = {f.strip() for f in formats.split(",") if f.strip()}
    unknown = wanted - {"md", "html", "json", "csv"}
    if unknown:
        print_error(f"--format: unknown format(s) {sorted(unknown)}; use md,html,json,csv")
        return EXIT_ERROR
    if not Path(path).is_dir():
        print_error(f"{path}: not a directory (pass an experiment or batch results directory)")
        return EXIT_ERROR
    try:
        written = write_report(Path(path), out, wanted)
    except (OSError, ValueError) as exc:
        print_error(f"report failed: {exc}")
        return EXIT_ERROR
    for file in written:
        print(file)
    return EXIT_OK
