"""Command checks run real shell commands in a git workspace; the command judge grades from them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tierbench.process import ProcessRegistry
from tierbench.judges.base import CommandCheckResult, JudgeContext
from tierbench.judges.command import OUTPUT_TAIL_BYTES, CommandJudge, run_command_checks
from tierbench.models import RunKey
from tierbench.spec import Rubric


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    work = tmp_path / "ws"
    work.mkdir()
    (work / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                    "commit", "-qam", "base", "--allow-empty"], cwd=work, check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    return work


def rubric(*items: dict, threshold: float = 0.6) -> Rubric:
    return Rubric.model_validate({"categories": {"checks": {"items": list(items)}},
                                  "grading": {"pass_threshold": threshold}})


def context(ws: Path, rub: Rubric, results: list[CommandCheckResult]) -> JudgeContext:
    return JudgeContext(key=RunKey(tier="T0", subtest="00", run=1), workspace=ws, judge_dir=ws.parent / "judge",
                        judge_id="judge_01", task_prompt="fix it", rubric=rub, diff="", command_results=results,
                        registry=ProcessRegistry())


def test_pass_fail_and_logs(workspace: Path, tmp_path: Path):
    rub = rubric(
        {"id": "imports", "check": "module imports", "command": "python3 -c 'import calc; assert calc.add(2, 2) == 4'"},
        {"id": "fails", "check": "a failing check", "command": "echo to-out; echo to-err >&2; exit 3"},
        {"id": "manual", "check": "readable code"},
    )
    results = run_command_checks(rub, workspace, tmp_path / "checks", ProcessRegistry())
    by_id = {r.item_id: r for r in results}
    assert set(by_id) == {"imports", "fails"}  # items without a command are not checks
    assert by_id["imports"].passed and by_id["imports"].exit_code == 0
    assert not by_id["fails"].passed and by_id["fails"].exit_code == 3
    assert by_id["fails"].output_tail == "to-out\nto-err\n"  # stdout and stderr, in order
    assert (tmp_path / "checks" / "fails.log").read_text() == "to-out\nto-err\n"
    assert not list((tmp_path / "checks").glob("*.stderr.log"))


def test_runs_in_the_workspace_and_sees_git(workspace: Path, tmp_path: Path):
    rub = rubric({"id": "git", "check": "is a repo", "command": "test -f calc.py && git rev-parse --git-dir"})
    [result] = run_command_checks(rub, workspace, tmp_path / "checks", None)
    assert result.passed, result.output_tail


def test_timeout_kills_the_whole_group(workspace: Path, tmp_path: Path):
    marker = tmp_path / "survived"
    rub = rubric({"id": "slow", "check": "hangs", "timeout_seconds": 30,
                  "command": f"(sleep 2; touch {marker}) & sleep 30"})
    started = time.monotonic()
    [result] = run_command_checks(rub, workspace, tmp_path / "checks", ProcessRegistry(), timeout_cap=0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.passed
    time.sleep(2.5)
    assert not marker.exists()  # the background child died with its group


def test_output_tail_keeps_the_last_4kb(workspace: Path, tmp_path: Path):
    rub = rubric({"id": "noisy", "check": "prints a lot",
                  "command": "python3 -c \"print('x' * 20000); print('THE END')\""})
    [result] = run_command_checks(rub, workspace, tmp_path / "checks", None)
    assert result.output_tail.endswith("THE END\n")
    assert len(result.output_tail.encode()) < OUTPUT_TAIL_BYTES + 100
    assert (tmp_path / "checks" / "noisy.log").stat().st_size > 20000


def test_item_ids_cannot_escape_the_log_directory(workspace: Path, tmp_path: Path):
    rub = rubric({"id": "../../evil id", "check": "odd id", "command": "true"})
    [result] = run_command_checks(rub, workspace, tmp_path / "out" / "checks", None)
    assert result.passed
    assert [p.name for p in (tmp_path / "out" / "checks").iterdir()] == ["_.._evil_id.log"]


def test_judge_api_keys_are_not_passed_to_checks(workspace: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-never-in-logs")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-oai-never-in-logs")
    rub = rubric({"id": "env", "check": "prints env", "command": "env"})
    [result] = run_command_checks(rub, workspace, tmp_path / "checks", None)
    assert "never-in-logs" not in (tmp_path / "checks" / "env.log").read_text()
    assert "PATH=" in result.output_tail


def test_closed_registry_runs_nothing(workspace: Path, tmp_path: Path):
    registry = ProcessRegistry()
    registry.kill_all()
    rub = rubric({"id": "a", "check": "x", "command": "true"})
    [result] = run_command_checks(rub, workspace, tmp_path / "checks", registry)
    assert result.exit_code is None and not result.passed


# -- CommandJudge -------------------------------------------------------------------------------


def check(item_id: str, passed: bool, exit_code: int | None = None, timed_out: bool = False) -> CommandCheckResult:
    code = exit_code if exit_code is not None or timed_out else (0 if passed else 1)
    return CommandCheckResult(item_id=item_id, command=f"check {item_id}", exit_code=code, passed=passed,
                              timed_out=timed_out)


def test_command_judge_scores_only_command_items(workspace: Path):
    rub = rubric({"id": "a", "check": "x", "command": "true", "points": 3},
                 {"id": "b", "check": "y", "command": "false"},
                 {"id": "manual", "check": "no command", "points": 10})
    result = CommandJudge().judge(context(workspace, rub, [check("a", True), check("b", False)]))
    assert result.is_valid and result.spec == "command"
    assert result.score == pytest.approx(0.75)
    assert result.passed is True and result.grade == "B"
    assert [(i.id, i.score, i.passed) for i in result.items] == [("a", 1.0, True), ("b", 0.0, False)]
    assert "PASS a" in result.reasoning and "FAIL b" in result.reasoning


def test_command_judge_threshold_comes_from_the_rubric(workspace: Path):
    rub = rubric({"id": "a", "check": "x", "command": "true"}, {"id": "b", "check": "y", "command": "true"},
                 threshold=0.9)
    result = CommandJudge().judge(context(workspace, rub, [check("a", True), check("b", False)]))
    assert result.score == pytest.approx(0.5) and result.passed is False and result.grade == "C"


def test_command_judge_timeout_is_a_fail(workspace: Path):
    rub = rubric({"id": "a", "check": "x", "command": "sleep 99"})
    result = CommandJudge().judge(context(workspace, rub, [check("a", False, exit_code=-9, timed_out=True)]))
    assert result.is_valid and result.score == 0.0 and result.passed is False and result.grade == "F"
    assert "timed out" in result.reasoning


def test_command_judge_without_command_items_is_invalid(workspace: Path):
    rub = rubric({"id": "manual", "check": "no command"})
    result = CommandJudge().judge(context(workspace, rub, []))
    assert not result.is_valid and result.score is None
    assert "command" in (result.error or "")


def test_command_judge_with_a_check_that_never_ran_is_invalid_not_zero(workspace: Path):
    rub = rubric({"id": "a", "check": "x", "command": "true"}, {"id": "b", "check": "y", "command": "true"})
    never_started = CommandCheckResult(item_id="b", command="true", exit_code=None, passed=False)
    for results in ([check("a", True)], [check("a", True), never_started]):
        result = CommandJudge().judge(context(workspace, rub, results))
        assert not result.is_valid and result.score is None and "b" in (result.error or "")


def test_end_to_end_checks_then_judge(workspace: Path, tmp_path: Path):
    rub = rubric({"id": "ok", "check": "x", "command": "grep -q 'a + b' calc.py"},
                 {"id": "bad", "check": "y", "command": "grep -q 'a * b' calc.py"})
    checks = run_command_checks(rub, workspace, tmp_path / "checks", ProcessRegistry())
    result = CommandJudge().judge(context(workspace, rub, checks))
    assert result.is_valid and result.score == pytest.approx(0.5) and result.passed is False
