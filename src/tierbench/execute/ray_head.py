"""One local Ray head for a whole `tierbench batch --executor ray` (when no cluster address is given).

Without it every batch child would start a Ray instance of its own: N clusters on one machine,
each sized for one test. The batch starts one head on 127.0.0.1 with a run slot per run the batch
may have in flight (threads x parallel), passes its address to every child (`--ray-address`), and
stops it when the batch ends.

The head is `ray start --head --block` in a session (process group) of its own, which its GCS,
raylet and agents share. A reaper (`python -m tierbench.reaper`, reaper.py) is told that group and
holds the other end of a pipe only the batch has open: if the batch dies by any signal, SIGKILL
included, the reaper kills the group and every process carrying the head's `TIERBENCH_SESSION`
marker. Ray's workers, in groups of their own, exit when their raylet dies. (The marker alone is
not enough: Ray's Python processes rename themselves with setproctitle, which overwrites the
environment that /proc shows.) A normal stop kills the head's whole process tree and removes its directory (logs, sockets, token);
the directory of a head whose batch was SIGKILLed is named in `<results>/.ray_head` and removed by
the next batch of the same results directory (which holds the batch lock, so that head is dead).

Token auth (Ray's default) stays on: unless the environment already names a token
(`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`) or turns auth off (`RAY_AUTH_MODE=disabled`), the head
gets a fresh token in a private file of its own (never the user's ~/.ray), and `child_env` names
that file for the children. The token never appears on a command line or in a log.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tierbench.execute.executor import ExecutorUnavailable
from tierbench.execute.ray import SLOT_RESOURCE
from tierbench.reaper import MARKER_ENV, kill_marked, new_session, proc_files
from tierbench.store.atomic import atomic_write_text

_STARTED = b"Ray runtime started"
_PREFIX = "tierbench-head-"


class LocalRayHead:
    def __init__(self, *, cpus: int, slots: int, record: Path) -> None:
        self.cpus, self.slots = max(1, cpus), max(1, slots)
        self._record = record  # names this head's directory while it runs
        self.address = ""
        self.child_env: dict[str, str] = {}  # what a child needs to join (auth), besides --ray-address
        self._session = new_session(None)
        self._reaper: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        _remove_stale(self._record)
        # Short and private, under /tmp: Ray's socket paths must stay under 107 bytes.
        self._dir = Path(tempfile.mkdtemp(prefix=_PREFIX, dir="/tmp"))
        atomic_write_text(self._record, str(self._dir) + "\n")
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", MARKER_ENV)}
        if env.get("RAY_AUTH_MODE", "").lower() != "disabled" and not (
                env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH")):
            token = self._dir / "auth_token"
            token.write_text(secrets.token_hex(32))
            token.chmod(0o600)
            self.child_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
            env.update(self.child_env)
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        self._reaper = subprocess.Popen([sys.executable, "-m", "tierbench.reaper", self._session],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, env={k: v for k, v in env.items() if k != MARKER_ENV})
        env[MARKER_ENV] = f"{self._session}.1"  # inherited by everything the head starts
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        log_path = self._dir / "head.log"
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
               f"--port={port}", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}",
               f"--resources={json.dumps({SLOT_RESOURCE: self.slots})}", "--include-dashboard=false",
               "--disable-usage-stats", f"--temp-dir={self._dir / 'ray'}"]
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True)
        self._tell_reaper(f"+{self._proc.pid}")  # its process group: the head's PID
        deadline = time.monotonic() + timeout
        while _STARTED not in log_path.read_bytes():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                self.stop()
                raise ExecutorUnavailable("could not start a local Ray head for the batch: "
                                          + (" / ".join(tail) or "no output")
                                          + ". Start a cluster yourself and pass --ray-address")
            time.sleep(0.1)

    def _tell_reaper(self, line: str) -> None:
        if self._reaper is not None and self._reaper.stdin is not None:
            self._reaper.stdin.write(line.encode() + b"\n")
            self._reaper.stdin.flush()

    def stop(self) -> None:
        """Kill every process of the head (its process tree, its group, its marked processes) and
        remove its files. Safe to call twice."""
        if self._proc is not None:
            tree = _descendants(self._proc.pid)
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            kill_marked(self._session)
            self._proc.wait()
        if self._reaper is not None:
            if self._reaper.stdin is not None:
                self._reaper.stdin.close()  # the reaper has nothing left to kill, and exits
            self._reaper.wait()
            self._reaper = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._record.unlink(missing_ok=True)


def _remove_stale(record: Path) -> None:
    """Remove the directory of an earlier head of this results directory that was never stopped."""
    try:
        stale = Path(record.read_text().strip())
    except OSError:
        return
    if stale.parent == Path("/tmp") and stale.name.startswith(_PREFIX):
        shutil.rmtree(stale, ignore_errors=True)
    record.unlink(missing_ok=True)


def _descendants(root: int) -> list[int]:
    """Every live process descending from `root` (a snapshot of /proc)."""
    children: dict[int, list[int]] = {}
    for pid, stat in proc_files("stat"):
        parent = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(parent, []).append(pid)
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
