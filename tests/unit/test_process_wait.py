"""`run_process` waits on a pidfd and, under the sandbox, relies on bwrap's PID namespace instead of
the /proc scan: both must keep the old promises (exit codes, timeouts, no process left behind)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tierbench.process import ProcessRegistry, run_process, wait_for_exit
from tierbench.sandbox import SandboxPolicy, find_bwrap, probe_bwrap

BWRAP = find_bwrap()
BWRAP_PROBLEM = probe_bwrap(BWRAP)


def _processes_naming(token: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if token.encode() in handle.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def test_wait_for_exit_returns_the_exit_code():
    proc = subprocess.Popen(["sh", "-c", "exit 3"])
    assert wait_for_exit(proc, 30) == 3
    assert wait_for_exit(subprocess.Popen(["true"]), None) == 0


def test_wait_for_exit_raises_on_timeout_and_leaves_the_child_to_the_caller():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_for_exit(proc, 0.2)
        assert proc.poll() is None  # still running: the caller kills its group
    finally:
        proc.kill()
        proc.wait()


def test_run_process_timeout_kills_the_group(tmp_path):
    outcome = run_process("sleep 30", cwd=tmp_path, env=dict(os.environ), timeout=0.3, shell=True,
                          stdout_path=tmp_path / "out", stderr_path=tmp_path / "err", registry=ProcessRegistry())
    assert outcome.timed_out and not outcome.cancelled


@pytest.mark.parametrize("sandboxed", [False, True], ids=["no-sandbox", "bwrap"])
def test_a_helper_that_left_the_group_is_gone_when_the_command_returns(tmp_path, sandboxed):
    # setsid takes the helper out of the command's process group: without the sandbox the marker scan
    # finds it; under bwrap the PID namespace must take it down before run_process returns.
    if sandboxed and BWRAP_PROBLEM is not None:
        pytest.skip(f"bubblewrap: {BWRAP_PROBLEM}")
    token = f"tierbench-probe-{uuid.uuid4().hex}"
    policy = SandboxPolicy(kind="bwrap", bwrap=BWRAP, writable=(tmp_path,)) if sandboxed else None
    registry = ProcessRegistry()
    try:
        outcome = run_process(f"setsid sh -c 'sleep 300; :' {token} & sleep 0.3; echo started",
                              cwd=tmp_path, env=dict(os.environ), timeout=30, shell=True, sandbox=policy,
                              stdout_path=tmp_path / "out", stderr_path=tmp_path / "err", registry=registry)
        assert outcome.exit_code == 0, (tmp_path / "err").read_text()
        assert (tmp_path / "out").read_text() == "started\n"
        assert _processes_naming(token) == [], "a helper outlived its command"
    finally:
        for pid in _processes_naming(token):
            os.kill(pid, 9)
        registry.shutdown()
