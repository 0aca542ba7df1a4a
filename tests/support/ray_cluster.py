"""A real multi-node Ray cluster on 127.0.0.1, inside a private network namespace.

Every node is a `ray start --block` process in its own process group (Ray's daemons and workers stay
in that group), so stopping the cluster is a SIGKILL per group and nothing it started survives. The
namespace is held by a `sleep` started with `unshare -n`; the cluster and every command that must
reach it run through `nsenter -n -t <holder>`, so no packet can leave loopback: Ray would otherwise
advertise the machine's external address. Token auth (Ray's default) is on, with a token file of
the test's own (RAY_AUTH_TOKEN_PATH), never the user's ~/.ray.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY_PORT = 6379


def namespaces_available() -> str | None:
    """None when a private network namespace can be made here, else the reason."""
    if not shutil.which("unshare") or not shutil.which("nsenter") or not shutil.which("ip"):
        return "unshare, nsenter and ip (util-linux, iproute2) are needed for a private network namespace"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.strip()}"
    return None


def processes_under(path: Path) -> list[int]:
    """Live PIDs whose working directory lies inside `path`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(str(path)) and state != "Z":
            found.append(int(entry))
    return found


class LocalRayCluster:
    def __init__(self, root: Path, workers: dict[str, dict[str, float]], cpus_per_worker: int = 2,
                 worker_env: dict[str, str] | None = None):
        self.worker_env = dict(worker_env or {})  # extra environment of every worker node (e.g. a fake API key)
        self.root = Path(root)
        self.workers = workers  # name -> custom resources of that worker node
        self.cpus_per_worker = cpus_per_worker
        self.address = f"127.0.0.1:{RAY_PORT}"
        self._holder: subprocess.Popen[bytes] | None = None
        self._nodes: dict[str, subprocess.Popen[bytes]] = {}
        self.token_path = self.root / "ray_token"
        self.temp_dir: Path | None = None  # short, under /tmp: Ray's socket paths must stay under 107 bytes

    # -- environment -------------------------------------------------------------------------
    @property
    def prefix(self) -> list[str]:
        """Run a command inside the cluster's network namespace: prefix + argv."""
        assert self._holder is not None
        return ["nsenter", "-n", "-t", str(self._holder.pid), "--"]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path),
                    "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": self.address,
                    "RAY_SCHEDULER_EVENTS": "0", "PYTHONUNBUFFERED": "1"})
        return env

    # -- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 240.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="tbray-", dir="/tmp"))
        self._holder = subprocess.Popen(["unshare", "-n", "--", "sleep", "infinity"], start_new_session=True)
        deadline = time.monotonic() + 10
        while True:  # the namespace exists once the holder has exec'd sleep
            try:
                if os.readlink(f"/proc/{self._holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the network namespace holder did not start")
            time.sleep(0.02)
        subprocess.run([*self.prefix, "ip", "link", "set", "lo", "up"], check=True)
        try:
            self._start_node("head", ["--head", f"--port={RAY_PORT}", "--num-cpus=0",
                                      "--include-dashboard=false", f"--temp-dir={self.temp_dir}",
                                      '--resources={"tierbench_head": 1}'], timeout)
            for name, resources in self.workers.items():
                self._start_node(name, [f"--address={self.address}", f"--num-cpus={self.cpus_per_worker}",
                                        f"--resources={json.dumps(resources)}"], timeout,
                                 {**self.worker_env, "TIERBENCH_RAY_WORKDIR": str(self.node_workdir(name))})
        except BaseException:
            self.stop()
            raise

    def node_workdir(self, name: str) -> Path:
        """Where node `name` keeps its copy of an experiment: one per node, as on separate machines."""
        return self.root / "nodes" / name

    def _start_node(self, name: str, args: list[str], timeout: float, extra_env: dict[str, str] | None = None) -> None:
        ray_bin = str(Path(sys.executable).with_name("ray"))
        log = open(self.root / f"{name}.log", "wb")
        self._nodes[name] = subprocess.Popen(
            [*self.prefix, ray_bin, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
             "--object-store-memory=80000000", *args],
            env={**self.env(), **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while b"Ray runtime started" not in (self.root / f"{name}.log").read_bytes():
            if self._nodes[name].poll() is not None:
                raise RuntimeError(f"ray node {name} exited during start-up:\n"
                                   + (self.root / f"{name}.log").read_text(errors="replace")[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not start within {timeout:.0f}s")
            time.sleep(0.2)

    def node_group(self, name: str) -> int:
        return self._nodes[name].pid

    def pids(self, name: str | None = None) -> list[int]:
        """Live processes of one node (or of all nodes), found by process group."""
        groups = {p.pid for n, p in self._nodes.items() if name is None or n == name}
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) in groups:
                found.append(int(entry))
        return found

    def raylet_pid(self, name: str) -> int:
        for pid in self.pids(name):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet":
                    return pid
            except OSError:
                continue
        raise LookupError(f"no raylet found for node {name}")

    def descendants(self) -> list[int]:
        """Every live process descending from a node (Ray workers have process groups of their own)."""
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if fields[0] != "Z":
                    parents[int(entry)] = int(fields[1])
        roots = {p.pid for p in self._nodes.values()} | set(self.pids())
        found = []
        for pid in parents:
            current = pid
            while current in parents and current not in roots and current > 1:
                current = parents[current]
            if current in roots and pid not in roots:
                found.append(pid)
        return found

    def stop(self) -> None:
        """SIGKILL every node's process group, everything descending from the nodes (workers and
        what they started) and the namespace holder, then reap."""
        strays = self.descendants()
        for pid in strays:
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self._nodes.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self._nodes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self._holder is not None:
            try:
                os.killpg(self._holder.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._holder.wait(timeout=10)
        # Agents whose worker died first were orphaned before the snapshot: find them by where they run.
        for _ in range(20):
            strays = processes_under(self.root)
            if not strays:
                break
            for pid in strays:
                try:
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.1)
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> "LocalRayCluster":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
