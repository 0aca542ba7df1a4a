"""The batch's `tierbench run` children: the argv that carries the batch's options to each, and the
registry of running ones (each the leader of its own process group, so a signal reaches all of it)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from tierbench.exitcodes import EXIT_INTERRUPTED
from tierbench.options import GivenOptions, child_argv

INTERRUPTED_CODES = (EXIT_INTERRUPTED, -signal.SIGINT, -signal.SIGTERM)
STDERR_TAIL_LINES = 6


def child_command(test_dir: Path, results_dir: Path, options: GivenOptions) -> list[str]:
    """`tierbench run` for one test with only the options the batch was given."""
    return [sys.executable, "-m", "tierbench.cli", "run", str(test_dir), "--results-dir", str(results_dir),
            *child_argv(options.values()), "--quiet"]


def budget_args(budget_usd: float | None, results_dir: Path) -> list[str]:
    """A batch budget covers every test together: each child gets it with the batch dir as its
    scope (where the children's spend is shared). Not a saved option: each invocation gives its own."""
    if budget_usd is None:
        return []
    return [f"--budget-usd={budget_usd!r}", f"--budget-scope={results_dir}"]


class Children:
    """The running `tierbench run` children, each the leader of its own process group."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(env or {})  # added to every child's environment (e.g. the batch's Ray head's auth)
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
                                    env={**os.environ, **self.env, "TIERBENCH_BATCH_PID": str(os.getpid())})
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


def run_child(children: Children, cmd: list[str], exp_dir: Path, log: BinaryIO, label: str) -> tuple[int | None, str]:
    """Run one child to its end, its stderr into `log`; (exit code, the last lines of its stderr).
    (None, "") when the batch is stopping and it was not started."""
    stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    log.write(f"\n===== {stamp} {label}\n$ {shlex.join(cmd)}\n".encode())
    log.flush()
    proc = children.start(cmd, exp_dir, log)
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
        children.finished(proc)
    log.write(f"===== exit {code}\n".encode())
    log.flush()
    return code, "\n".join(tail)
