"""--budget-usd with a real command agent that reports a known cost per run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.support.cli import completed_runs, result_files, run_cli, start_cli
from tests.support.testdirs import make_test_dir

COST = 1.25  # USD each run reports, like Claude Code's total_cost_usd
# The stand-in agent (and the killed test's marker) live in the test's tmp dir, which the
# sandbox's private /tmp hides: what these tests measure is the budget, so they run unsandboxed.
UNSANDBOXED = ("--sandbox", "none")


def _agent(tmp_path: Path) -> str:
    script = tmp_path / "paid_agent.sh"
    script.write_text("#!/bin/sh\n"
                      f"printf '{{\"type\":\"result\",\"is_error\":false,\"result\":\"done\","
                      f"\"total_cost_usd\":{COST},\"num_turns\":1}}\\n'\n")
    script.chmod(0o755)
    return str(script)


def _args(tmp_path: Path, test_dir: Path, budget: float, parallel: int = 2,
          agent: str | None = None) -> list[object]:
    return ["run", test_dir, "--results-dir", tmp_path / "results", "--agent", "command",
            "--agent-opt", f"cmd={agent or _agent(tmp_path)}", "--runs", 3,
            "--parallel", parallel, "--budget-usd", budget, "--no-report", *UNSANDBOXED]


def _start_with_a_slow_run(tmp_path: Path, test_dir: Path, run: int, seconds: int,
                           **popen: object) -> tuple[subprocess.Popen[str], Path, Path]:
    """Start the 3 runs of `test_dir` at --parallel 1 under a budget of 10 runs, with an agent that
    sleeps `seconds` in run `run` (once); return (process, pid file of that agent, agent script)
    once that agent has started."""
    marker = tmp_path / f"run{run}.pid"
    agent = tmp_path / f"slow_run{run}.sh"
    agent.write_text("#!/bin/sh\n"
                     f'if [ "$TIERBENCH_RUN" = {run} ] && [ ! -e {marker} ]; then echo $$ > {marker}; sleep {seconds}; fi\n'
                     f"exec {_agent(tmp_path)}\n")
    agent.chmod(0o755)
    proc = start_cli(*_args(tmp_path, test_dir, 10 * COST, parallel=1, agent=str(agent)), **popen)
    deadline = time.monotonic() + 120
    while not (marker.exists() and marker.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"run {run} never started"
        time.sleep(0.05)
    return proc, marker, agent


def test_budget_allows_exactly_five_runs_then_a_higher_budget_completes(tmp_path: Path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)  # 12 runs
    exp = tmp_path / "results" / "calc"
    first = run_cli(*_args(tmp_path, test_dir, 5 * COST))
    assert first.returncode == 1, first.stderr
    assert len(result_files(exp)) == 5 and len(completed_runs(exp)) == 5
    lines = [line for line in first.stderr.splitlines() if line.startswith("Budget reached")]
    assert lines == ["Budget reached: spent $6.25 of --budget-usd $6.25; the next run would bring the "
                     "forecast to $7.50. 7 run(s) not started. Run the same command with a higher "
                     "--budget-usd to continue; it resumes where it left off."]
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["status"] == "budget_reached"
    assert checkpoint["spent_usd"] == 5 * COST and checkpoint["budget_commitments"] == {}

    status = run_cli("status", exp, "--json")
    view = json.loads(status.stdout)
    assert (view["budget_usd"], view["spent_usd"], view["committed_usd"]) == (5 * COST, 5 * COST, 0.0)
    assert view["forecast_usd"] == 12 * COST
    assert "budget $6.25: spent $6.25, committed $0.00, forecast $15.00" in run_cli("status", exp).stdout

    again = run_cli(*_args(tmp_path, test_dir, 5 * COST))  # the same budget: nothing new starts
    assert again.returncode == 1 and len(result_files(exp)) == 5
    assert "Budget reached: spent $6.25" in again.stderr

    more = run_cli("resume", exp, "--budget-usd", 20.0, "--no-report")  # resume takes it too
    assert more.returncode == 0, more.stderr
    assert len(completed_runs(exp)) == 12
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["status"] == "completed" and checkpoint["spent_usd"] == 12 * COST
    assert [h["usd"] for h in checkpoint["budget_history"]] == [5 * COST, 20.0]
    assert [h["previous"] for h in checkpoint["budget_history"]] == [None, 5 * COST]
    extensions = json.loads((exp / "config" / "experiment.json").read_text())["extensions"]
    assert [e["changes"] for e in extensions] == [{"budget_usd": [5 * COST, 20.0]}]
    assert "--budget-usd 20: changed from 6.25 (recorded in the config's extensions)" in more.stderr


def test_a_run_killed_in_flight_counts_as_spent(tmp_path: Path):
    """SIGKILL the coordinator while run 3 is in flight: its commitment survives in the journal,
    and the next process counts it as spent (its money may be gone) before launching anything."""
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)  # 3 runs
    exp = tmp_path / "results" / "calc"
    proc, marker, agent = _start_with_a_slow_run(tmp_path, test_dir, run=3, seconds=120, start_new_session=True)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.kill(int(marker.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    assert len(result_files(exp)) == 2  # the snapshot may lag; the files and journal do not
    rerun = run_cli(*_args(tmp_path, test_dir, 3 * COST, parallel=1, agent=str(agent)))
    # Spent: two runs + the killed run's forecast = 3 x COST, so run 3 may not start again.
    assert rerun.returncode == 1, rerun.stderr
    assert "Budget reached: spent $3.75 of --budget-usd $3.75" in rerun.stderr
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["unrecorded_spend_usd"] == COST and checkpoint["budget_commitments"] == {}
    assert len(completed_runs(exp)) == 2
    final = run_cli(*_args(tmp_path, test_dir, 5 * COST, parallel=1, agent=str(agent)))
    assert final.returncode == 0, final.stderr
    assert json.loads((exp / "checkpoint.json").read_text())["spent_usd"] == 4 * COST


def test_under_a_budget_no_run_is_committed_before_it_can_start(tmp_path: Path):
    """Locally, runs are normally prepared ahead of a free slot; a launch under a budget journals a
    commitment that a killed process's successor counts as spent, so nothing is queued ahead there:
    while run 2 of 3 runs at --parallel 1, run 3 has no commitment and no workspace."""
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)  # 3 runs
    exp = tmp_path / "results" / "calc"
    proc, _, _ = _start_with_a_slow_run(tmp_path, test_dir, run=2, seconds=2)
    try:
        time.sleep(0.5)  # time enough to prepare run 3, were it queued ahead
        committed = [e["run"] for e in map(json.loads, (exp / "journal.jsonl").read_text().splitlines())
                     if e["ev"] == "commit"]
        assert committed == [1, 2], f"commitments while run 2 runs: {committed}"
        assert not (exp / "T0/00/run_03/workspace").exists(), "run 3 was prepared under a budget"
    finally:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(completed_runs(exp)) == 3


def test_one_budget_covers_a_whole_batch(tmp_path: Path):
    """Three tests (3 runs each) under one budget of 5 runs, two tests at a time: 5 runs in all,
    exit 1 with the budget line; a higher budget finishes the batch."""
    tests = tmp_path / "tests"
    for name in ("alpha", "beta", "gamma"):
        make_test_dir(tests, name, tiers=("T0",), subtests=1)
    results = tmp_path / "results"

    def batch(budget: float):
        return run_cli("batch", tests, "--results-dir", results, "--agent", "command",
                       "--agent-opt", f"cmd={_agent(tmp_path)}", "--runs", 3, "--threads", 2,
                       "--budget-usd", budget, *UNSANDBOXED)

    first = batch(5 * COST)
    assert first.returncode == 1, first.stderr
    runs = sum(len(result_files(results / name)) for name in ("alpha", "beta", "gamma"))
    assert runs == 5
    summary = json.loads((results / "batch_summary.json").read_text())
    statuses = sorted(r["status"] for r in summary["results"])
    assert "budget_reached" in statuses and "error" not in statuses
    assert "The batch's budget stopped it" in first.stderr
    # Another test's run may still have been in flight when a child stopped: then it says so.
    assert re.search(r"Budget reached: spent \$\d+\.\d\d( and \$\d+\.\d\d committed to runs in flight)? "
                     r"of --budget-usd \$6\.25", first.stderr), first.stderr
    more = batch(20.0)
    assert more.returncode == 0, more.stderr
    assert sum(len(result_files(results / name)) for name in ("alpha", "beta", "gamma")) == 9
    summary = json.loads((results / "batch_summary.json").read_text())
    assert sorted(r["status"] for r in summary["results"]) == ["fail", "fail", "fail"]
