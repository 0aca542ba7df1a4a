"""Whole experiments with the real Claude Code CLI as the agent, against the local fake API.

`tierbench run --agent claude-code` as a user runs it: the CLI really executes a scripted Bash
tool call in the run's git worktree, and a 429 from the API becomes a rate-limited attempt and a
paused experiment, never a failed run.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.e2e.test_claude_code import claude_bin
from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.fake_anthropic import FakeAnthropic, Usage, rate_limited, text_turn, tool_turn
from tests.support.testdirs import FIXED, make_test_dir

pytestmark = pytest.mark.e2e
SECRET = "sk-ant-test-DO-NOT-PERSIST-7f3a"


def _env(tmp_path: Path, api: FakeAnthropic) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return cli_env(HOME=str(home), ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY=SECRET,
                   CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", IS_SANDBOX="1")


def _args(test_dir: Path, results: Path, *extra: object) -> list[object]:
    return ["run", test_dir, "--results-dir", results, "--agent", "claude-code",
            "--agent-opt", f"bin={claude_bin()}", "--agent-opt", "max_retries=0",
            "--model", "claude-sonnet-4-5", "--tiers", "T0", "--max-subtests", 1, "--runs", 1,
            "--timeout", 120, *extra]


def test_claude_code_run_edits_workspace_and_is_graded(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    fix = f"printf %s {shlex.quote(FIXED)} > calc.py"
    usage = Usage(input_tokens=1200, output_tokens=80, cache_creation_input_tokens=300,
                  cache_read_input_tokens=50)
    script = [tool_turn("Bash", {"command": fix}, usage=usage), text_turn("Fixed add and mul.", usage=usage)]
    with FakeAnthropic(script) as api:
        proc = run_cli(*_args(test_dir, tmp_path / "results"), env=_env(tmp_path, api), timeout=240)
        reported = api.reported_usage()
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "results" / "calc"
    assert completed_runs(exp) == {"T0/00/run_01": "passed"}
    run_dir = exp / "T0" / "00" / "run_01"
    result = json.loads((run_dir / "run_result.json").read_text())
    assert result["judge_score"] == 1.0 and result["judge_grade"] == "S"
    tokens = result["token_stats"]
    assert tokens["input_tokens"] == reported.input_tokens
    assert tokens["output_tokens"] == reported.output_tokens
    assert tokens["cache_creation_tokens"] == reported.cache_creation_input_tokens
    assert tokens["cache_read_tokens"] == reported.cache_read_input_tokens
    assert result["cost_usd"] > 0 and result["num_turns"] == 2
    diff = (run_dir / "agent" / "diff.patch").read_text()
    assert "+    return a + b" in diff and "+    return a * b" in diff
    command = json.loads((run_dir / "agent" / "command.json").read_text())
    assert "--print" in command["argv"] and "--output-format" in command["argv"]
    for path in exp.rglob("*"):
        if path.is_file() and "repo" not in path.parts:
            assert SECRET not in path.read_text(errors="ignore"), f"API key written to {path}"


def test_claude_code_429_is_rate_limited_never_failed(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    results = tmp_path / "results"
    with FakeAnthropic([text_turn("unused")], error=rate_limited(retry_after=3)) as api:
        proc = run_cli(*_args(test_dir, results, "--no-preflight", "--on-rate-limit", "exit"),
                       env=_env(tmp_path, api), timeout=240)
    assert proc.returncode == 2, proc.stderr
    assert "Rate limited until" in proc.stderr and "(agent)" in proc.stderr
    exp = results / "calc"
    assert completed_runs(exp) == {}, "a rate-limited run is never passed or failed"
    attempt = json.loads((exp / "T0/00/run_01/attempts/01/run_result.json").read_text())
    assert attempt["status"] == "rate_limited"
    assert attempt["rate_limit"]["kind"] == "transient"
    assert not (exp / "T0/00/run_01/run_result.json").exists()
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["status"] == "paused_rate_limit" and checkpoint["pause_count"] == 1


def test_claude_code_preflight_spends_no_run_when_rate_limited(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    results = tmp_path / "results"
    with FakeAnthropic([text_turn("unused")], error=rate_limited(retry_after=30)) as api:
        proc = run_cli(*_args(test_dir, results, "--on-rate-limit", "exit"), env=_env(tmp_path, api),
                       timeout=240)
    assert proc.returncode == 2, proc.stderr
    exp = results / "calc"
    assert not (exp / "T0").exists(), "the probe found the limit before any run was launched"
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["rate_limit_source"] == "preflight"
