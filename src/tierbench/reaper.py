"""No orphans: every process tierbench starts dies with it, whatever kills tierbench.

Each process a `ProcessRegistry` starts carries `TIERBENCH_SESSION=<session>.<n>` in its
environment (inherited by everything it forks, including processes that leave its process group
with setsid). The session token starts with a hash of the experiment directory, so a later
coordinator of the same experiment recognises what an earlier one left behind.

Three mechanisms, in order of when they act:

1. The reaper process (`python -m tierbench.reaper SESSION`), started once per registry in its own
   session. It reads "+PGID" / "-PGID" lines on stdin, whose write end only the coordinator holds.
   When the coordinator dies by any signal (SIGKILL and the OOM killer included) the kernel closes
   that pipe; the reaper sees EOF, SIGKILLs every group it knows and every process whose
   environment carries the session, then exits. (PR_SET_PDEATHSIG is not used: it fires when the
   *thread* that forked exits, and runs are started from worker threads.)
2. `kill_marked(marker)` after each process ends: helpers that escaped the group die with it.
3. At coordinator start, holding the experiment lock, `kill_marked(experiment prefix)`: anything
   an earlier coordinator of this experiment left running is killed before a run is relaunched.

Under the bubblewrap sandbox the agent also lives in its own PID namespace, and `bwrap
--die-with-parent` takes the whole namespace down with it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

MARKER_ENV = "TIERBENCH_SESSION"
_MARKER_BYTES = MARKER_ENV.encode() + b"="
SCAN_ROUNDS = 20


def experiment_prefix(root: Path) -> str:
    """The part of every session token that names one experiment directory."""
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]


def new_session(root: Path | None) -> str:
    prefix = experiment_prefix(root) if root is not None else "adhoc"
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def proc_files(name: str) -> Iterator[tuple[int, bytes]]:
    """(pid, contents of /proc/<pid>/<name>) for every process that can be read now."""
    try:
        pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                yield pid, handle.read()
        except OSError:
            continue


def marked_pids(prefix: str, *, exact: bool = False) -> list[int]:
    """Live processes (not zombies, not this one) whose TIERBENCH_SESSION starts with `prefix`
    (equals it, with `exact`)."""
    wanted = _MARKER_BYTES + prefix.encode()
    me = os.getpid()
    found = []
    for pid, environ in proc_files("environ"):
        if pid == me:
            continue
        items = environ.split(b"\0")
        if any(item == wanted if exact else item.startswith(wanted) for item in items) and not _is_zombie(pid):
            found.append(pid)
    return found


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] in (b"Z", b"X")
    except (OSError, ValueError):
        return True


def kill_marked(prefix: str, rounds: int = SCAN_ROUNDS, *, exact: bool = False) -> list[int]:
    """SIGKILL every process marked with `prefix`, rescanning until none is left (a process may fork
    while it is being killed). Returns the pids killed."""
    killed: list[int] = []
    for _ in range(rounds):
        pids = marked_pids(prefix, exact=exact)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    return killed


def _kill_groups(groups: set[int]) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0]:
        print("usage: python -m tierbench.reaper SESSION", file=sys.stderr)
        return 1
    session = argv[0]
    # A terminal Ctrl+C or a hang-up must not take the reaper down before it has done its job.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:  # EOF: the coordinator closed the pipe or died
            break
        text = line.strip().decode(errors="replace")
        if len(text) > 1 and text[1:].isdigit():
            if text[0] == "+":
                groups.add(int(text[1:]))
            elif text[0] == "-":
                groups.discard(int(text[1:]))
    _kill_groups(groups)
    kill_marked(session)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
