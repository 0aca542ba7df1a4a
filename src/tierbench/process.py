"""Child processes that can always be killed as a whole.

Every agent or check command runs in its own session (process group), registered in a
`ProcessRegistry`. On timeout the whole group is killed; on SIGINT/SIGTERM the coordinator kills
every registered group, so an interrupted experiment leaves no orphan agents behind. If the
coordinator itself dies (SIGKILL, OOM), the registry's reaper process kills them (see reaper.py).

The one way to start an agent or check process is `run_process(...)`; pass the run's
`sandbox=ctx.sandbox` (a `tierbench.sandbox.SandboxPolicy`) and the command runs confined by it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from tierbench.reaper import MARKER_ENV, kill_marked, new_session
from tierbench.sandbox import SandboxPolicy


@dataclass
class ProcessOutcome:
    exit_code: int | None  # None if the command could not be started
    timed_out: bool
    cancelled: bool  # killed because the registry was shut down (interrupt)
    duration_seconds: float
    start_error: str | None = None


class ProcessRegistry:
    """The set of live process groups; `kill_all` also refuses any later start.

    `session` marks every process started through this registry (env TIERBENCH_SESSION); the
    reaper, started with the first process, kills them all if this process dies. A worker thread
    can name what it runs with `with registry.label("T0/00/run_01"):`; `drain_started()` then
    returns (label, pgid) for each process group started since the last call (for the journal).
    """

    def __init__(self, session: str | None = None, *, reaper: bool = True) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._closed = False
        self.session = session or new_session(None)
        self._use_reaper = reaper
        self._reaper: subprocess.Popen[bytes] | None = None
        self._reaper_in: IO[bytes] | None = None
        self._counter = itertools.count(1)
        self._started: list[tuple[str | None, int]] = []
        self._local = threading.local()

    @property
    def closed(self) -> bool:
        return self._closed

    @contextmanager
    def label(self, text: str) -> Iterator[None]:
        previous = getattr(self._local, "label", None)
        self._local.label = text
        try:
            yield
        finally:
            self._local.label = previous

    def drain_started(self) -> list[tuple[str | None, int]]:
        with self._lock:
            started, self._started = self._started, []
        return started

    def next_marker(self) -> str:
        return f"{self.session}.{next(self._counter)}"

    def ensure_reaper(self) -> None:
        """Start the reaper once (before the first process), unless disabled."""
        with self._lock:
            if not self._use_reaper or self._reaper is not None or self._closed:
                return
            env = {k: v for k, v in os.environ.items() if k != MARKER_ENV}
            try:
                self._reaper = subprocess.Popen([sys.executable, "-m", "tierbench.reaper", self.session],
                                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL, start_new_session=True, env=env)
                self._reaper_in = self._reaper.stdin
            except OSError:
                self._use_reaper = False  # still safe: groups are killed on exit and at the next start

    def _tell_reaper(self, line: str) -> None:
        if self._reaper_in is None:
            return
        try:
            self._reaper_in.write(line.encode() + b"\n")
            self._reaper_in.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._reaper_in = None

    def _add(self, pgid: int) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._groups.add(pgid)
            self._tell_reaper(f"+{pgid}")
            self._started.append((getattr(self._local, "label", None), pgid))
            return True

    def _remove(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)
            self._tell_reaper(f"-{pgid}")

    def kill_all(self, sig: int = signal.SIGKILL) -> int:
        """Close the registry and signal every live group. Returns how many groups were signalled."""
        with self._lock:
            self._closed = True
            groups = list(self._groups)
        for pgid in groups:
            _kill_group(pgid, sig)
        if sig == signal.SIGKILL:
            kill_marked(self.session)
        return len(groups)

    def shutdown(self) -> None:
        """Normal end: the reaper kills whatever is left (nothing, normally) and exits."""
        with self._lock:
            reaper_in, self._reaper_in = self._reaper_in, None
            reaper = self._reaper
        if reaper_in is not None:
            try:
                reaper_in.close()
            except OSError:
                pass
        if reaper is not None:
            try:
                reaper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                reaper.kill()
                reaper.wait()


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


NAMESPACE_EXIT_SECONDS = 5.0  # how long the end of a sandbox's PID namespace may take before the scan
NAMESPACE_START_SECONDS = 10.0  # how long bwrap may take to report its namespace


class SandboxNamespace:
    """Knows when the PID namespace of one bwrap sandbox has ended, so no process of it is left.

    bwrap (not `--as-pid-1`) runs an init as PID 1 of the namespace and exits as soon as the
    command ends, while that init may still wait for helpers the command left behind; bwrap's
    `--die-with-parent` then kills the init, and the kernel kills every process of the namespace
    before the init's own exit completes. So the namespace is empty exactly when its init has
    exited. bwrap reports the init's host pid and the namespace on `--json-status-fd`; a pidfd on
    that pid, checked to be in that namespace (a pid can be reused), becomes readable at its exit.
    If the init is already gone when it is looked up, the namespace ended before. Anything unknown
    (no report, an old bwrap) leaves the decision to the /proc scan.
    """

    def __init__(self) -> None:
        self._read_fd, self.status_fd = os.pipe()
        self._pidfd: int | None = None
        self._state = "unknown"  # unknown | watching | gone

    def attach(self, bwrap_pid: int) -> None:
        """Read bwrap's first status report and open a pidfd on the namespace's init."""
        os.close(self.status_fd)  # only bwrap writes; EOF means it exited before reporting
        self.status_fd = -1
        report = self._first_report()
        if report is None:
            return
        try:
            init_pid, namespace = int(report["child-pid"]), int(report["pid-namespace"])
        except (KeyError, TypeError, ValueError):
            return
        try:
            pidfd = os.pidfd_open(init_pid)
        except ProcessLookupError:
            self._state = "gone"  # exited and reaped: its namespace ended first
            return
        except (AttributeError, OSError):
            return
        try:
            same = os.readlink(f"/proc/{init_pid}/ns/pid") == f"pid:[{namespace}]"
        except OSError:
            same = False  # reaped between the two calls: ended as well
        if same:
            self._pidfd, self._state = pidfd, "watching"
        else:
            os.close(pidfd)
            self._state = "gone"

    def _first_report(self) -> dict | None:
        deadline = time.monotonic() + NAMESPACE_START_SECONDS
        data = b""
        while b"\n" not in data:
            if not _readable(self._read_fd, deadline - time.monotonic()):
                return None
            chunk = os.read(self._read_fd, 4096)
            if not chunk:
                if not data:
                    self._state = "gone"  # bwrap exited before making the namespace
                break
            data += chunk
        try:
            report = json.loads(data.split(b"\n", 1)[0])
        except ValueError:
            return None
        return report if isinstance(report, dict) else None

    def wait_gone(self, timeout: float) -> bool:
        """True once the namespace is known to be empty (waiting up to `timeout` for its init)."""
        if self._state == "watching" and self._pidfd is not None and _readable(self._pidfd, timeout):
            self._state = "gone"
        return self._state == "gone"

    def close(self) -> None:
        for fd in (self._read_fd, self.status_fd, self._pidfd):
            if fd is not None and fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._read_fd = self.status_fd = -1
        self._pidfd = None


_MAX_POLL_MS = 86_400_000  # poll(2) takes a C int of milliseconds; wait a day at a time


def _readable(fd: int, timeout: float) -> bool:
    """Whether `fd` becomes readable within `timeout` seconds (0 or less: only if it is already)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:  # poll retries itself on EINTR (PEP 475); the loop only splits waits over a day
        if poller.poll(min(math.ceil(max(deadline - time.monotonic(), 0.0) * 1000), _MAX_POLL_MS)):
            return True
        if time.monotonic() >= deadline:
            return False


def wait_for_exit(proc: subprocess.Popen[bytes], timeout: float | None) -> int:
    """`proc.wait(timeout)`, woken the moment the child exits.

    Popen.wait with a timeout polls in sleeps that grow to 50 ms, which added milliseconds to every
    short agent or check process. A pidfd (Linux 5.3+) becomes readable at exit, so poll(2) on it
    waits exactly; where pidfds are unavailable this falls back to Popen.wait.
    Raises subprocess.TimeoutExpired like Popen.wait.
    """
    if timeout is None:
        return proc.wait()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here, or the child is already reaped
        return proc.wait(timeout=timeout)
    try:
        if not _readable(pidfd, timeout):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    return proc.wait()


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
    sandbox: SandboxPolicy | None = None,
) -> ProcessOutcome:
    """Run `cmd` in a new process group, streaming output to files, killing the group on timeout.

    `sandbox`: the run's `SandboxPolicy` (agents and command checks pass `ctx.sandbox`); None or
    kind "none" runs the command as it is. With a registry, the process and everything it starts
    carry the registry's session marker and die with tierbench (see reaper.py); any of them still
    alive when the command ends (e.g. a daemon that left the group) is killed then.
    """
    started = time.monotonic()
    if registry is not None and registry.closed:
        return ProcessOutcome(None, False, True, 0.0, "interrupted before start")
    marker = None
    if registry is not None:
        registry.ensure_reaper()
        marker = registry.next_marker()
        env = {**(os.environ if env is None else env), MARKER_ENV: marker}
    namespace: SandboxNamespace | None = None
    if sandbox is not None and sandbox.active:
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        namespace = SandboxNamespace()
        cmd, shell = sandbox.wrap(argv, cwd, status_fd=namespace.status_fd), False
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    # The same path for both streams interleaves them in one file, in the order they were written.
    with open(stdout_path, "wb") as out, (contextlib.nullcontext(out) if stderr_path == stdout_path
                                          else open(stderr_path, "wb")) as err:
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
                pass_fds=(namespace.status_fd,) if namespace is not None else (),
            )
        except OSError as exc:
            if namespace is not None:
                namespace.close()
            return ProcessOutcome(None, False, False, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
        pgid = proc.pid  # start_new_session makes the child its own group leader
        registered = registry is None or registry._add(pgid)
        if not registered:  # an interrupt raced with the start
            _kill_group(pgid)
        try:
            if namespace is not None:
                namespace.attach(proc.pid)
            if stdin_text is not None and proc.stdin is not None:
                try:
                    proc.stdin.write(stdin_text.encode())
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            try:
                exit_code = wait_for_exit(proc, timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(pgid)
                exit_code = proc.wait()
                timed_out = True
            # Reap helpers the command left in its group (e.g. a shell's background jobs), and any
            # that left the group but still carry its marker. Under the sandbox, waiting for the end
            # of its PID namespace proves the same without scanning /proc (about 2 ms a process).
            _kill_group(pgid)
            namespace_gone = namespace is not None and namespace.wait_gone(NAMESPACE_EXIT_SECONDS)
            if marker is not None and not namespace_gone:
                kill_marked(marker, exact=True)
        finally:
            if namespace is not None:
                namespace.close()
            if registry is not None:
                registry._remove(pgid)
    cancelled = (registry is not None and registry.closed and not timed_out and exit_code is not None
                 and exit_code < 0) or not registered
    return ProcessOutcome(exit_code, timed_out, cancelled, time.monotonic() - started)
