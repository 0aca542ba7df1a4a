"""The local executor prepares the next run while an agent works, and a prepared run is not started.

Real CLI, a `command` agent that looks at its neighbour's directory: with --parallel 1, the next
run's worktree must already exist while the current agent runs (it was prepared ahead), no two
agents may ever run at once, and a rate limit must withdraw the prepared run without a trace.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.cli import completed_runs, run_cli
from tests.support.testdirs import FIXED

# Argument 1: a state directory outside the experiment; 2: how many leading calls hit a rate limit.
AGENT = '''
import json, os, pathlib, sys, time
state = pathlib.Path(sys.argv[1]); limited_calls = int(sys.argv[2])
state.mkdir(exist_ok=True)
run = pathlib.Path.cwd().parent.name  # <exp>/T0/00/run_NN/workspace
try:
    os.mkdir(state / "running")  # fails while another agent runs
except FileExistsError:
    (state / f"overlap-{run}").write_text("two agents at once")
number = int(run.split("_")[1])
neighbour = pathlib.Path.cwd().parent.parent / f"run_{number + 1:02d}" / "workspace" / ".git"
if number < int(os.environ.get("RUNS", "3")):
    deadline = time.monotonic() + 20
    while not neighbour.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    (state / f"next-of-{run}").write_text("prepared" if neighbour.exists() else "absent")
with (state / "calls").open("a") as f:
    f.write(run + "\\n")
calls = len((state / "calls").read_text().splitlines())
os.rmdir(state / "running")
if calls <= limited_calls:
    print(json.dumps({"type": "result", "subtype": "success", "is_error": True,
                      "result": "Claude AI usage limit reached|%d" % int(time.time() + 60)}))
    sys.exit(1)
pathlib.Path("calc.py").write_text(@FIXED@)
print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "fixed"}))
'''.replace("@FIXED@", repr(FIXED))


def _run(tmp_path: Path, calc_test: Path, limited_calls: int, *extra: object) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "neighbour_agent.py"
    script.write_text(AGENT)
    cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(tmp_path / 'state'))} " \
          f"{limited_calls}"
    # --sandbox none: the agent keeps its notes in the test's tmp dir, which the sandbox would hide.
    return run_cli("run", calc_test, "--results-dir", tmp_path / "results", "--agent", "command",
                   "--agent-opt", f"cmd={cmd}", "--tiers", "T0", "--max-subtests", 1, "--runs", 3,
                   "--parallel", 1, "--no-report", "--sandbox", "none", *extra)


def _leftovers(exp: Path) -> list[str]:
    """Workspaces, private spaces and git worktree registrations still on disk."""
    found = [str(p.relative_to(exp)) for p in exp.glob("T*/*/run_*/workspace")]
    found += [str(p.relative_to(exp)) for p in (exp / ".private").glob("*")]
    found += [str(p.relative_to(exp)) for p in (exp / "repo" / ".git" / "worktrees").glob("*")]
    return found


def test_the_next_run_is_prepared_while_an_agent_works_and_never_runs_alongside_it(tmp_path, calc_test):
    proc = _run(tmp_path, calc_test, 0)
    assert proc.returncode == 0, proc.stderr
    exp, state = tmp_path / "results" / "calc", tmp_path / "state"
    assert completed_runs(exp) == {f"T0/00/run_{n:02d}": "passed" for n in (1, 2, 3)}
    assert (state / "next-of-run_01").read_text() == "prepared", "run_02 was not checked out ahead"
    assert (state / "next-of-run_02").read_text() == "prepared", "run_03 was not checked out ahead"
    assert not list(state.glob("overlap-*")), "a prepared run started its agent beyond --parallel 1"
    assert (state / "calls").read_text().split() == ["run_01", "run_02", "run_03"], "runs start in plan order"
    for n in (1, 2, 3):  # the wait for a free slot is not part of a run's recorded duration
        result = json.loads((exp / f"T0/00/run_{n:02d}/run_result.json").read_text())
        assert result["duration_seconds"] < result["agent_duration_seconds"] + 10
    assert _leftovers(exp) == []
    check = run_cli("check", exp)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_rate_limit_withdraws_the_prepared_run_and_removes_what_was_prepared(tmp_path, calc_test):
    proc = _run(tmp_path, calc_test, 1, "--on-rate-limit", "exit")
    assert proc.returncode == 2, proc.stderr
    exp, state = tmp_path / "results" / "calc", tmp_path / "state"
    assert (state / "next-of-run_01").read_text() == "prepared", "run_02 must have been prepared to be withdrawn"
    assert (state / "calls").read_text().split() == ["run_01"], "the prepared run's agent never started"
    assert completed_runs(exp) == {}
    withdrawn = exp / "T0/00/run_02"
    assert not withdrawn.exists(), f"a withdrawn run left {sorted(p.name for p in withdrawn.rglob('*'))}"
    assert _leftovers(exp) == []
    journal = (exp / "journal.jsonl").read_text()
    assert '"run": 2' not in journal, "a withdrawn run is not an attempt"
    check = run_cli("check", exp)
    assert check.returncode == 0, check.stdout + check.stderr
