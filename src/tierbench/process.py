"""Child processes that can always be killed as a whole.

Every agent or check command runs in its own session (process group), registered in a
`ProcessRegistry`. On timeout the whole group is killed; on SIGINT/SIGTERM the coordinator kills
every registered group, so an interrupted experiment leaves no orphan agents behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ProcessOutcome:
    exit_code: int | None  # None if the command could not be started
    timed_out: bool
    cancelled: bool  # killed because the registry was shut down (interrupt)
    duration_seconds: float
    start_error: str | None = None


class ProcessRegistry:
    """The set of live process groups; `kill_all` also refuses any later start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _add(self, pgid: int) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._groups.add(pgid)
            return True

    def _remove(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)

    def kill_all(self, sig: int = signal.SIGKILL) -> int:
        """Close the registry and signal every live group. Returns how many groups were signalled."""
        with self._lock:
            self._closed = True
            groups = list(self._groups)
        for pgid in groups:
            _kill_group(pgid, sig)
        return len(groups)


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_process(
    cmd: list[str] | str,
    *,
    cwd: Path,
    env: dict[str, str] | None,
    timeout: float | None,
    stdout_path: Path,
    stderr_path: Path,
    registry: ProcessRegistry | None = None,
    stdin_text: str | None = None,
    shell: bool = False,
) -> ProcessOutcome:
    """Run `cmd` in a new process group, streaming output to files, killing the group on timeout."""
    started = time.monotonic()
    if registry is not None and registry.closed:
        return ProcessOutcome(None, False, True, 0.0, "interrupted before start")
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                start_new_session=True,
                shell=shell,
            )
        except OSError as exc:
            return ProcessOutcome(None, False, False, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
        pgid = proc.pid  # start_new_session makes the child its own group leader
        registered = registry is None or registry._add(pgid)
        if not registered:  # an interrupt raced with the start
            _kill_group(pgid)
        try:
            if stdin_text is not None and proc.stdin is not None:
                try:
                    proc.stdin.write(stdin_text.encode())
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            try:
                exit_code = proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(pgid)
                exit_code = proc.wait()
                timed_out = True
            # Reap helpers the command left in its group (e.g. a shell's background jobs).
            _kill_group(pgid)
        finally:
            if registry is not None:
                registry._remove(pgid)
    cancelled = (registry is not None and registry.closed and not timed_out and exit_code is not None
                 and exit_code < 0) or not registered
    return ProcessOutcome(exit_code, timed_out, cancelled, time.monotonic() - started)
