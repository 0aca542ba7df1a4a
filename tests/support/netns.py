"""A loopback-only network namespace for tests that run real agent CLIs.

    with loopback_only_network():       # or the `offline` fixture in tests/e2e/conftest.py
        with FakeResponses(script) as api:
            run_cli(...)                  # the CLI, the agent and the fake server share one `lo`

The calling thread leaves the host's network namespace for a fresh one where only `lo` exists
(`unshare(CLONE_NEWNET)` + `ip link set lo up`, the same as `unshare -n`). Threads it starts and
processes it spawns inherit that namespace, so the fake server, `tierbench run` and every agent
it launches can reach 127.0.0.1 and nothing else: a telemetry ping or an update check fails at
once instead of reaching the internet. On exit the thread returns to the namespace it came from.

Where the machine cannot do this (no CAP_SYS_ADMIN, no `ip`), `NetnsUnavailable` says why, and
the fixture skips the test with that reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000


class NetnsUnavailable(RuntimeError):
    pass


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def loopback_only_network() -> Iterator[None]:
    if not Path("/proc/thread-self/ns/net").exists():
        raise NetnsUnavailable("no /proc/thread-self/ns/net: not Linux, or /proc is not mounted")
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.access(p, os.X_OK)), None)
    if ip is None:
        raise NetnsUnavailable("the `ip` command (iproute2) is not installed, so `lo` cannot be brought up")
    libc = _libc()
    home_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsUnavailable(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)} "
                                   "(needs root or CAP_SYS_ADMIN; in a container, --privileged or a user namespace)")
        try:
            up = subprocess.run([ip, "link", "set", "lo", "up"], capture_output=True, text=True)
            if up.returncode != 0:
                raise NetnsUnavailable(f"`ip link set lo up` failed: {up.stderr.strip()}")
            yield
        finally:
            if libc.setns(home_ns, CLONE_NEWNET) != 0:  # back to the host's namespace
                raise OSError(ctypes.get_errno(), "setns back to the original network namespace failed")
    finally:
        os.close(home_ns)


def interfaces() -> list[str]:
    """The network interfaces of this thread's namespace (only `lo` inside loopback_only_network)."""
    lines = Path("/proc/thread-self/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":")[0].strip() for line in lines)
