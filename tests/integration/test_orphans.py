"""No orphans: SIGKILL the coordinator (what the OOM killer does) while two long agents run.

Each agent starts a helper in its process group and one that leaves it with setsid. Within 5 s of
the kill none of them may be alive, with and without the sandbox; the same command then resumes
and completes the experiment. The processes are found by a variable the test puts in the
subtest's env (inherited by everything the agent starts), not by anything tierbench records.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.cli import cli_env, completed_runs, run_cli, start_cli
from tests.support.testdirs import FIXED, make_test_dir
from tierbench.reaper import experiment_prefix
from tierbench.sandbox import find_bwrap, probe_bwrap

AGENT = r'''
import os, subprocess, sys, time
release = os.environ["ORPHAN_RELEASE"]
if os.path.exists(release):
    open("calc.py", "w").write(sys.argv[1])
    sys.exit(0)
subprocess.Popen(["sleep", "300"])                            # stays in the agent's process group
subprocess.Popen(["sleep", "301"], start_new_session=True)    # leaves it
print("started", flush=True)
time.sleep(300)
'''

KILL_DEADLINE_SECONDS = 5.0


def _probe_processes(token: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds ORPHAN_PROBE=<token>."""
    wanted = f"ORPHAN_PROBE={token}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X"):
            found.append(int(name))
    return found


def _reapers(exp: Path) -> list[int]:
    """Reaper processes of this experiment's coordinators (their argv names the session)."""
    prefix = experiment_prefix(exp).encode()
    found = []
    for name in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"tierbench.reaper" in argv and any(arg.startswith(prefix) for arg in argv):
            found.append(int(name))
    return found


def _launched(exp: Path) -> set[str]:
    """Runs with a `launch` event (a process group started for them) in the journal."""
    try:
        lines = (exp / "journal.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return set()
    events = [json.loads(line) for line in lines if line.endswith("}")]
    return {e["run_key"] for e in events if e.get("ev") == "launch"}


def _wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_sigkill_of_coordinator_leaves_no_process_and_resume_completes(tmp_path, sandbox):
    if sandbox == "bwrap" and (problem := probe_bwrap(find_bwrap())) is not None:
        pytest.skip(f"bubblewrap cannot run here: {problem}")
    token = uuid.uuid4().hex
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=2)
    (test_dir / "repo" / "long_agent.py").write_text(AGENT)
    results = tmp_path / "results"
    exp = results / "calc"
    release = exp / "release-agents"  # inside the experiment dir: readable in the sandbox
    for path in (test_dir / "tiers" / "T0").iterdir():
        body = yaml.safe_load(path.read_text()) or {}
        body["env"] = {"ORPHAN_PROBE": token, "ORPHAN_RELEASE": str(release)}
        path.write_text(yaml.safe_dump(body))
    cmd = f"{shlex.quote(sys.executable)} long_agent.py {shlex.quote(FIXED)}"
    args = ["run", test_dir, "--results-dir", results, "--agent", "command", "--agent-opt", f"cmd={cmd}",
            "--tiers", "T0", "--runs", 1, "--parallel", 2, "--no-report", "--sandbox", sandbox]

    coordinator = start_cli(*args, env=cli_env())
    try:
        # Two agents, each with its two helpers, and their process groups recorded in the journal.
        assert _wait_until(lambda: len(_probe_processes(token)) >= 6, 90), \
            f"agents did not start: {_probe_processes(token)}"
        assert _wait_until(lambda: {"T0/00/run_01", "T0/01/run_01"} <= _launched(exp), 10)
    finally:
        coordinator.kill()  # SIGKILL: no handler runs
        coordinator.communicate(timeout=30)
    killed_at = time.monotonic()
    gone = _wait_until(lambda: not _probe_processes(token), KILL_DEADLINE_SECONDS, interval=0.05)
    survivors = _probe_processes(token)
    for pid in survivors:  # never leave them behind, even when the test fails
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    assert gone, f"still alive {time.monotonic() - killed_at:.1f}s after the SIGKILL: {survivors}"
    # The reaper did its job and left too.
    assert _wait_until(lambda: not _reapers(exp), KILL_DEADLINE_SECONDS), _reapers(exp)

    release.write_text("go\n")
    resumed = run_cli(*args, env=cli_env(), timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert completed_runs(exp) == {"T0/00/run_01": "passed", "T0/01/run_01": "passed"}
    assert not _probe_processes(token)
