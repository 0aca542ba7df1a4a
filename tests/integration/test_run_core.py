"""`tierbench run` end to end with the offline demo agent, real git worktrees and real checks."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.cli import completed_runs, result_files, run_cli
from tests.support.testdirs import make_test_dir, write_yaml


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("core")
    test_dir = make_test_dir(root / "tests", "calc", tiers=("T0", "T1", "T2"), subtests=3)
    results = root / "results"
    proc = run_cli("run", test_dir, "--results-dir", results, "--tiers", "T0", "T1", "--runs", 2,
                   "--max-subtests", 2, "--agent", "demo", "--parallel", 2, "--seed", 7)
    return proc, results / "calc", test_dir


def test_run_completes_every_planned_run(experiment):
    proc, exp, _ = experiment
    assert proc.returncode == 0, proc.stderr
    expected = {f"{t}/{s}/run_{r:02d}" for t in ("T0", "T1") for s in ("00", "01") for r in (1, 2)}
    assert set(completed_runs(exp)) == expected
    assert set(result_files(exp)) == expected
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["status"] == "completed"
    assert checkpoint["pid"] is None
    assert "Report:" in proc.stdout


def test_run_results_have_consistent_judge_fields(experiment):
    _, exp, _ = experiment
    for key, result in result_files(exp).items():
        assert result["status"] in ("passed", "failed")
        assert result["status"] == ("passed" if result["judge_passed"] else "failed"), key
        valid = [j for j in result["judges"] if j["is_valid"]]
        assert valid, key
        mean = sum(j["score"] for j in valid) / len(valid)
        assert result["judge_score"] == pytest.approx(mean)
        assert result["judge_passed"] == (result["judge_score"] >= 0.6)
        grade = result["judge_grade"]
        score = result["judge_score"]
        assert grade == ("S" if score >= 1 else "A" if score >= .8 else "B" if score >= .6 else "C"
                         if score >= .4 else "D" if score >= .2 else "F")
        for field in ("run_number", "exit_code", "token_stats", "cost_usd", "duration_seconds",
                      "agent_duration_seconds", "judge_duration_seconds", "judge_reasoning"):
            assert field in result
        assert result["token_stats"]["input_tokens"] > 0
        run_dir = exp / key
        assert (run_dir / "judge" / "judge_01" / "judgment.json").exists()
        for name in ("prompt.md", "stdout.log", "stderr.log", "command.json", "diff.patch"):
            assert (run_dir / "agent" / name).exists(), f"{key}: agent/{name}"
        assert not (run_dir / "workspace").exists(), "worktree must be removed after judging"


def test_diff_excludes_subtest_files_and_passes_match_checks(experiment):
    _, exp, _ = experiment
    for key, result in result_files(exp).items():
        diff = (exp / key / "agent" / "diff.patch").read_text()
        assert "CLAUDE.md" not in diff, "subtest files are committed before the agent starts"
        if result["status"] == "passed":
            assert "calc.py" in diff


def test_best_subtest_recorded_and_status_command(experiment):
    _, exp, _ = experiment
    for tier in ("T0", "T1"):
        best = json.loads((exp / tier / "best_subtest.json").read_text())
        assert best["subtest"] in ("00", "01")
    proc = run_cli("status", exp, "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["done"] == status["total"] == 8
    assert status["running"] is False
    text = run_cli("status", exp).stdout
    assert "T0" in text and "8/8" in text


def test_worktrees_are_real_and_pruned(experiment):
    _, exp, _ = experiment
    listing = subprocess.run(["git", "-C", str(exp / "repo"), "worktree", "list"], capture_output=True,
                             text=True, check=True).stdout.strip().splitlines()
    assert len(listing) == 1, listing  # only the base clone remains


def test_rerun_is_a_no_op_and_lists_ignored_arguments(experiment):
    proc, exp, test_dir = experiment
    before = {k: (exp / k / "run_result.json").stat().st_mtime_ns for k in result_files(exp)}
    again = run_cli("run", test_dir, "--results-dir", exp.parent, "--runs", 5, "--agent", "demo")
    assert again.returncode == 0, again.stderr
    assert "ignored on resume: --runs 5, experiment uses 2" in again.stderr
    after = {k: (exp / k / "run_result.json").stat().st_mtime_ns for k in result_files(exp)}
    assert before == after


@pytest.mark.parametrize("mutate, expect", [
    (lambda d: (d / "test.yaml").write_text("id: [unclosed\n"), ["test.yaml:", "malformed YAML"]),
    (lambda d: _edit(d / "test.yaml", lambda s: s.pop("task")), ["test.yaml", "'task'", "add the field"]),
    (lambda d: _edit(d / "test.yaml", lambda s: s.update(tiers=["T0", "T9"])), ["test.yaml", "tiers", "T9"]),
    (lambda d: (d / "tiers" / "T0" / "00-dup.yaml").write_text("{}\n"), ["duplicate subtest id 00"]),
    (lambda d: _edit(d / "test.yaml", lambda s: s["task"].update(prompt_file="../../etc/passwd")),
     ["task.prompt_file", "escapes the test directory"]),
    (lambda d: _edit(d / "tiers" / "T0" / "00-variant0.yaml", lambda s: s.update(tols=[])),
     ["00-variant0.yaml", "tols", "spelling"]),
])
def test_invalid_tests_are_rejected_before_anything_runs(tmp_path, mutate, expect):
    test_dir = make_test_dir(tmp_path / "tests", "bad", tiers=("T0",), subtests=1)
    mutate(test_dir)
    proc = run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--agent", "demo", "--runs", 1)
    assert proc.returncode == 1
    for fragment in expect:
        assert fragment in proc.stderr, proc.stderr
    assert "Fix:" in proc.stderr
    assert not (tmp_path / "results").exists(), "nothing may be created for an invalid test"


def _edit(path, change):
    import yaml

    data = yaml.safe_load(path.read_text())
    change(data)
    write_yaml(path, data)
