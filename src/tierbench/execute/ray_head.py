"""One local Ray head for a whole `tierbench batch --executor ray` (when no cluster address is given).

Without it every batch child would start a Ray instance of its own: N clusters on one machine,
each sized for one test. The batch starts one head on 127.0.0.1 with a run slot per run the batch
may have in flight (threads x parallel), passes its address to every child (`--ray-address`), and
stops it when the batch ends.

The head is `ray start --head --block` in a session of its own. Every process of it (the CLI,
GCS, raylet, workers) carries a `TIERBENCH_SESSION` marker of a `ProcessRegistry` whose reaper
(reaper.py) holds the other end of a pipe only the batch has open: if the batch dies by any
signal, SIGKILL included, the reaper kills every marked process, so no Ray process outlives it.

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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tierbench.execute.executor import ExecutorUnavailable
from tierbench.execute.ray import SLOT_RESOURCE
from tierbench.process import ProcessRegistry
from tierbench.reaper import MARKER_ENV, new_session

_STARTED = b"Ray runtime started"


class LocalRayHead:
    def __init__(self, *, cpus: int, slots: int) -> None:
        self.cpus, self.slots = max(1, cpus), max(1, slots)
        self.address = ""
        self.child_env: dict[str, str] = {}  # what a child needs to join (auth), besides --ray-address
        self._registry = ProcessRegistry(session=new_session(None))
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        # Short and private, under /tmp: Ray's socket paths must stay under 107 bytes.
        self._dir = Path(tempfile.mkdtemp(prefix="tbray-", dir="/tmp"))
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", MARKER_ENV)}
        if env.get("RAY_AUTH_MODE", "").lower() != "disabled" and not (
                env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH")):
            token = self._dir / "auth_token"
            token.write_text(secrets.token_hex(32))
            token.chmod(0o600)
            self.child_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
            env.update(self.child_env)
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        self._registry.ensure_reaper()
        env[MARKER_ENV] = self._registry.next_marker()  # inherited by everything the head starts
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
        deadline = time.monotonic() + timeout
        while _STARTED not in log_path.read_bytes():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                self.stop()
                raise ExecutorUnavailable("could not start a local Ray head for the batch: "
                                          + (" / ".join(tail) or "no output")
                                          + ". Start a cluster yourself and pass --ray-address")
            time.sleep(0.1)

    def stop(self) -> None:
        """Kill every process of the head (all carry its marker) and remove its files. Safe twice."""
        self._registry.kill_all()
        self._registry.shutdown()
        if self._proc is not None:
            self._proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
