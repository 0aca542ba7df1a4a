"""No completed run is ever lost or run twice: real SIGKILL/SIGINT/SIGTERM against the real CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.cli import completed_runs, result_files, run_cli, start_cli
from tierbench.models import RunResult

TIERS = ("T0", "T1")


def _plan(subtests=2, runs=3) -> set[str]:
    return {f"{t}/{s:02d}/run_{r:02d}" for t in TIERS for s in range(subtests) for r in range(1, runs + 1)}


def _run_args(test_dir: Path, results: Path, delay: float, runs: int = 3) -> list[object]:
    return ["run", test_dir, "--results-dir", results, "--tiers", *TIERS, "--runs", runs, "--agent", "demo",
            "--agent-opt", f"delay={delay}", "--seed", 11, "--parallel", 2, "--no-report"]


def _pass_counts(exp: Path) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    for key, status in completed_runs(exp).items():
        counts.setdefault(key.split("/")[0], Counter())[status] += 1
    return counts


def _processes_under(path: Path) -> list[int]:
    """PIDs whose working directory lies inside `path` (agents run in workspaces there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(path)):
            found.append(int(entry.name))
    return found


def _journal_run_events(exp: Path) -> Counter:
    """How often each run was recorded as a result: by the coordinator (`run`) or adopted from
    disk on load after a crash (`reconcile` with action `adopt`)."""
    events: Counter = Counter()
    for line in (exp / "journal.jsonl").read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("ev") == "run" or (event.get("ev") == "reconcile" and event.get("action") == "adopt"):
            events[f"{event['tier']}/{event['subtest']}/run_{int(event['run']):02d}"] += 1
    return events


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path, calc_test):
    results = tmp_path / "results"
    exp = results / "calc"
    runs = 6  # 24 runs of ~1 s on 2 workers: enough work that 15 kills land mid-experiment
    rng = random.Random(2026)
    kills = 0
    deadline = time.monotonic() + 180
    while kills < 15 and time.monotonic() < deadline:
        proc = start_cli(*_run_args(calc_test, results, delay=0.5, runs=runs), start_new_session=True)
        time.sleep(rng.uniform(0.3, 2.0))
        if proc.poll() is not None:  # finished before the kill: the test needs more work per run
            break
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator's whole group, as a crash would
        proc.communicate()
        kills += 1
    assert kills >= 15, f"only {kills} kills landed before the experiment finished"
    final = run_cli(*_run_args(calc_test, results, delay=0.5, runs=runs), timeout=180)
    assert final.returncode == 0, final.stderr
    assert set(completed_runs(exp)) == _plan(runs=runs)
    results_on_disk = result_files(exp)
    assert set(results_on_disk) == _plan(runs=runs)
    for key, data in results_on_disk.items():
        RunResult.model_validate(data)
        assert data["status"] == completed_runs(exp)[key]
    recorded = _journal_run_events(exp)
    assert set(recorded) == _plan(runs=runs) and set(recorded.values()) == {1}, f"recorded other than once: {recorded}"
    check = run_cli("check", exp)
    assert check.returncode == 0, check.stdout + check.stderr

    reference = tmp_path / "reference"
    clean = run_cli(*_run_args(calc_test, reference, delay=0, runs=runs))
    assert clean.returncode == 0, clean.stderr
    assert _pass_counts(exp) == _pass_counts(reference / "calc")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_kills_agents_and_resumes(tmp_path, calc_test, sig):
    results = tmp_path / "results"
    exp = results / "calc"
    proc = start_cli(*_run_args(calc_test, results, delay=4, runs=1))
    _wait_for(lambda: len(list(exp.glob("T0/*/run_01/agent/stdout.log"))) >= 2, 60)
    time.sleep(0.5)
    assert _processes_under(exp), "agents should be running"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert json.loads((exp / "checkpoint.json").read_text())["status"] == "interrupted"
    time.sleep(0.3)
    assert _processes_under(exp) == [], "no agent may survive an interrupt"
    assert completed_runs(exp) == {}, "interrupted runs are pending, never passed or failed"
    assert result_files(exp) == {}
    resumed = run_cli("resume", exp, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert set(completed_runs(exp)) == _plan(runs=1)


def test_second_ctrl_c_exits_at_once_and_keeps_completed(tmp_path, calc_test):
    results = tmp_path / "results"
    exp = results / "calc"
    proc = start_cli(*_run_args(calc_test, results, delay=1.5, runs=2))
    _wait_for(lambda: (exp / "journal.jsonl").exists() and _journal_run_events(exp), 90)
    done_before = set(_journal_run_events(exp))
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 130
    resumed = run_cli("resume", exp, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert done_before <= set(completed_runs(exp))
    assert set(completed_runs(exp)) == _plan(runs=2)


def test_two_coordinators_race_exactly_one_proceeds(tmp_path, calc_test):
    results = tmp_path / "results"
    procs = [start_cli(*_run_args(calc_test, results, delay=0.5, runs=1)) for _ in range(2)]
    outcomes = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    codes = sorted(code for _, _, code in outcomes)
    assert codes == [0, 1], outcomes
    loser = next(err for _, err, code in outcomes if code == 1)
    assert "PID" in loser and "already being run" in loser


def test_truncated_checkpoint_resumes(tmp_path, calc_test):
    exp = _completed_experiment(tmp_path, calc_test)
    text = (exp / "checkpoint.json").read_text()
    (exp / "checkpoint.json").write_text(text[: len(text) // 2])
    resumed = run_cli("resume", exp, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert "fixed on load" in resumed.stderr
    assert set(completed_runs(exp)) == _plan(runs=1)


def test_torn_journal_and_deleted_checkpoint_resume(tmp_path, calc_test):
    exp = _completed_experiment(tmp_path, calc_test)
    (exp / "checkpoint.json").unlink()
    with open(exp / "journal.jsonl", "a") as journal:
        journal.write('{"ev": "run", "key": "T0/00/ru')  # a write torn by a crash
    before = {k: (exp / k / "run_result.json").stat().st_mtime_ns for k in result_files(exp)}
    resumed = run_cli("resume", exp, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert "fixed on load" in resumed.stderr
    assert set(completed_runs(exp)) == _plan(runs=1)
    after = {k: (exp / k / "run_result.json").stat().st_mtime_ns for k in result_files(exp)}
    assert before == after, "nothing completed may run again"


def test_result_missing_from_checkpoint_is_adopted_and_missing_result_reruns(tmp_path, calc_test):
    exp = _completed_experiment(tmp_path, calc_test)
    lost = exp / "T1" / "01" / "run_01" / "run_result.json"
    lost.unlink()
    check = run_cli("check", exp)
    assert check.returncode == 1 and "missing" in check.stdout
    resumed = run_cli("resume", exp, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert lost.exists(), "the run whose result vanished goes back to pending and runs again"
    assert run_cli("check", exp).returncode == 0


def test_repair_rebuilds_from_files_with_a_backup(tmp_path, calc_test):
    exp = _completed_experiment(tmp_path, calc_test)
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    checkpoint["completed_runs"] = {}
    (exp / "checkpoint.json").write_text(json.dumps(checkpoint))
    first = run_cli("repair", exp)
    assert first.returncode == 0, first.stderr
    assert "4" in first.stdout and "T0" in first.stdout
    second = run_cli("repair", exp / "checkpoint.json")
    assert second.returncode == 0, second.stderr
    assert len(list(exp.glob("checkpoint.json.bak*"))) == 2, "an earlier backup is never overwritten"
    assert set(completed_runs(exp)) == _plan(runs=1)


def test_write_failure_keeps_previous_checkpoint(tmp_path, calc_test):
    exp = _completed_experiment(tmp_path, calc_test)
    before = (exp / "checkpoint.json").read_text()
    # A tiny file-size limit makes every larger write fail with EFBIG, like a full disk.
    script = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64)); "
              "from tierbench.cli import main; sys.exit(main(sys.argv[1:]))")
    from tests.support.cli import cli_env

    proc = subprocess.run([os.sys.executable, "-c", script, "resume", str(exp), "--no-report"],
                          capture_output=True, text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "intact" in proc.stderr or "write" in proc.stderr.lower()
    json.loads((exp / "checkpoint.json").read_text())  # still valid JSON
    assert (exp / "checkpoint.json").read_text() == before


def _completed_experiment(tmp_path: Path, test_dir: Path) -> Path:
    results = tmp_path / "results"
    proc = run_cli(*_run_args(test_dir, results, delay=0, runs=1))
    assert proc.returncode == 0, proc.stderr
    return results / "calc"


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
