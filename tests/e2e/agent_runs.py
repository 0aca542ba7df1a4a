"""Helpers for the e2e tests of the other agents (codex, gemini, opencode, aider, mini-swe-agent):
find the pinned CLI, run `tierbench run --agent NAME` as a user would, and check what every
agent's run must show."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.testdirs import FIXED, make_test_dir

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-DO-NOT-PERSIST-51c9e0"
FIX_COMMAND = f"printf %s {shlex.quote(FIXED)} > calc.py"

# agent -> (env var naming an installed copy, where `make agents` puts it)
BINARIES = {
    "codex": ("TIERBENCH_CODEX_BIN", ".tools/codex/node_modules/.bin/codex"),
    "gemini": ("TIERBENCH_GEMINI_BIN", ".tools/gemini/node_modules/.bin/gemini"),
    "opencode": ("TIERBENCH_OPENCODE_BIN", ".tools/opencode/node_modules/.bin/opencode"),
    "aider": ("TIERBENCH_AIDER_BIN", ".tools/aider/bin/aider"),
    "mini-swe-agent": ("TIERBENCH_MINI_SWE_AGENT_BIN", ".tools/mini-swe-agent/bin/mini"),
}


def agent_bin(agent: str) -> str:
    env_name, default = BINARIES[agent]
    path = Path(os.environ.get(env_name) or ROOT / default)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"the pinned {agent} CLI is not installed at {path}: run `make agents` (or set {env_name})")
    return str(path)


# What the native-agent tests give their T0 subtest: an instruction file and a skill, each carrying
# a marker the test then looks for in the model's request.
NOTES_AND_SKILL_FILES = """\
files:
  CLAUDE.md: 'Always run the checks: NOTES-MARKER-7'
  .claude/skills/careful-fix/SKILL.md: |
    ---
    name: careful-fix
    description: SKILL-MARKER-3 a disciplined loop for fixing small bugs
    ---
    Reproduce, fix, verify.
"""


def write_notes_and_skill_subtest(test_dir: Path, description: str, extra_yaml: str = "") -> None:
    """The calc test's T0 subtest with NOTES_AND_SKILL_FILES, plus `extra_yaml` (e.g. a tools: block)."""
    (test_dir / "tiers" / "T0" / "00-variant0.yaml").write_text(
        f"description: {description}\n{extra_yaml}{NOTES_AND_SKILL_FILES}")


def calc_test(tmp_path: Path) -> Path:
    return make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)


def run_agent(tmp_path: Path, agent: str, model: str, *extra: object, env: dict[str, str] | None = None,
              test_dir: Path | None = None, timeout: float = 240):
    """`tierbench run` with one T0 run of the calc test; returns (process, experiment dir)."""
    test_dir = test_dir or calc_test(tmp_path)
    results = tmp_path / "results"
    args = ["run", test_dir, "--results-dir", results, "--agent", agent, "--agent-opt", f"bin={agent_bin(agent)}",
            "--model", model, "--tiers", "T0", "--max-subtests", 1, "--runs", 1, "--timeout", 120, *extra]
    home = tmp_path / "user-home"  # the researcher's own home: nothing in it may reach the agent
    home.mkdir(exist_ok=True)
    proc = run_cli(*args, env=cli_env(HOME=str(home), **(env or {})), timeout=timeout)
    return proc, results / "calc"


def run_dir(exp: Path) -> Path:
    return exp / "T0" / "00" / "run_01"


def assert_graded_and_fixed(proc, exp: Path) -> dict:
    """The run passed the command judge with the scripted fix, and diff.patch shows it."""
    assert proc.returncode == 0, proc.stderr
    assert completed_runs(exp) == {"T0/00/run_01": "passed"}
    result = json.loads((run_dir(exp) / "run_result.json").read_text())
    assert result["judge_score"] == 1.0 and result["judge_grade"] == "S"
    assert result["judges"][0]["spec"] == "command"
    diff = (run_dir(exp) / "agent" / "diff.patch").read_text()
    assert "+    return a + b" in diff and "+    return a * b" in diff
    return result


def transcript(exp: Path) -> list[dict]:
    path = run_dir(exp) / "agent" / "transcript.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_no_secret(exp: Path) -> None:
    for path in exp.rglob("*"):
        if path.is_file() and "repo" not in path.parts:
            assert SECRET not in path.read_text(errors="ignore"), f"API key written to {path}"


def assert_rate_limited_exit_2(proc, exp: Path) -> dict:
    assert proc.returncode == 2, proc.stderr
    assert "Rate limited until" in proc.stderr and "(agent)" in proc.stderr
    assert completed_runs(exp) == {}, "a rate-limited run is never passed or failed"
    attempt = json.loads((run_dir(exp) / "attempts" / "01" / "run_result.json").read_text())
    assert attempt["status"] == "rate_limited"
    assert not (run_dir(exp) / "run_result.json").exists()
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["status"] == "paused_rate_limit"
    return attempt


def assert_auth_error(proc, exp: Path, key_name: str) -> dict:
    assert proc.returncode == 1, proc.stderr
    assert completed_runs(exp) == {}, "an auth failure is never a result"
    attempt = json.loads((run_dir(exp) / "attempts" / "01" / "run_result.json").read_text())
    assert attempt["status"] == "error", attempt
    assert key_name in attempt["error"], attempt["error"]
    assert "authentication" in attempt["error"].lower(), attempt["error"]
    return attempt
