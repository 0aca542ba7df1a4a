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
    # finds it; under bwrap, run_process must wait for the end of the PID namespace. bwrap itself
    # exits before its namespace's init has killed the helper, so a check right after the command
    # would see the helper if that wait were missing (repeated: the window is short).
    if sandboxed and BWRAP_PROBLEM is not None:
        pytest.skip(f"bubblewrap: {BWRAP_PROBLEM}")
    policy = SandboxPolicy(kind="bwrap", bwrap=BWRAP, writable=(tmp_path,)) if sandboxed else None
    registry = ProcessRegistry()
    tokens = [f"tierbench-probe-{uuid.uuid4().hex}" for _ in range(30 if sandboxed else 2)]
    try:
        for token in tokens:
            outcome = run_process(f"setsid sh -c 'sleep 300; :' {token} & sleep 0.05; echo started",
                                  cwd=tmp_path, env=dict(os.environ), timeout=30, shell=True, sandbox=policy,
                                  stdout_path=tmp_path / "out", stderr_path=tmp_path / "err", registry=registry)
            assert outcome.exit_code == 0, (tmp_path / "err").read_text()
            assert (tmp_path / "out").read_text() == "started\n"
            assert _processes_naming(token) == [], "a helper outlived its command"
    finally:
        for token in tokens:
            for pid in _processes_naming(token):
                os.kill(pid, 9)
        registry.shutdown()


@pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"bubblewrap: {BWRAP_PROBLEM}")
def test_under_bwrap_the_namespace_replaces_the_proc_scan(tmp_path, monkeypatch):
    # The point of watching the namespace: no /proc scan per sandboxed process.
    import tierbench.process as process

    def scan(*args, **kwargs):
        raise AssertionError("the /proc scan ran for a sandboxed process")

    monkeypatch.setattr(process, "kill_marked", scan)
    policy = SandboxPolicy(kind="bwrap", bwrap=BWRAP, writable=(tmp_path,))
    for command in ("true", "sleep 0.2", "exit 4"):
        outcome = run_process(command, cwd=tmp_path, env=dict(os.environ), timeout=30, shell=True, sandbox=policy,
                              stdout_path=tmp_path / "out", stderr_path=tmp_path / "out", registry=ProcessRegistry())
        assert outcome.exit_code == (4 if command == "exit 4" else 0)
