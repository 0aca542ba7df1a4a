"""Tier features per agent: what a subtest asks for, the refusal before anything runs, and the
README table kept equal to the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierbench.agents import AGENT_NAMES, get_agent
from tierbench.agents.features import PINNED_VERSIONS, SUPPORT, readme_table, requested_features
from tierbench.spec import Subtest, ToolsSpec
from tests.support.cli import run_cli
from tests.support.testdirs import make_test_dir

ROOT = Path(__file__).resolve().parents[2]


def test_requested_features_from_fields_and_files():
    sub = Subtest(files={"CLAUDE.md": "x", ".claude/skills/a/SKILL.md": "x", ".claude/agents/b.md": "x",
                         ".mcp.json": "{}"}, tools=ToolsSpec(enabled=["Bash"]), system_prompt_mode="none",
                  max_turns=3)
    assert requested_features(sub) == ["instructions", "skills", "subagents", "mcp", "tool_restriction",
                                       "system_prompt", "max_turns"]
    assert requested_features(Subtest(files={"./AGENTS.md": "x", "src/CLAUDE.md": "x"})) == ["instructions"]
    assert requested_features(Subtest()) == []


def test_every_agent_has_a_row_and_an_adapter():
    assert set(SUPPORT) == set(AGENT_NAMES)
    for name in AGENT_NAMES:
        assert get_agent(name).name == name


def test_readme_table_is_generated_from_the_feature_table():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- agent-features:start -->\n") + len("<!-- agent-features:start -->\n")
    end = readme.index("\n<!-- agent-features:end -->")
    assert readme[start:end] == readme_table(), "regenerate the README table from features.readme_table()"


def test_pinned_versions_match_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    for agent, variable in [("claude-code", "CLAUDE_CODE_VERSION"), ("codex", "CODEX_VERSION"),
                            ("gemini", "GEMINI_CLI_VERSION"), ("opencode", "OPENCODE_VERSION"),
                            ("aider", "AIDER_VERSION"), ("mini-swe-agent", "MINI_SWE_AGENT_VERSION")]:
        assert f"{variable} := {PINNED_VERSIONS[agent]}\n" in makefile, agent


def _subtest(test_dir: Path, body: str) -> None:
    (test_dir / "tiers" / "T0" / "00-variant0.yaml").write_text(body)


@pytest.mark.parametrize("agent, body, feature", [
    ("aider", "files:\n  .claude/skills/x/SKILL.md: 'skill'\n", "skills (the agent has none)"),
    ("codex", "max_turns: 3\n", "max_turns (the agent has none)"),
    ("mini-swe-agent", "tools:\n  enabled: [bash]\n", "tool_restriction (the agent has none)"),
    ("gemini", "files:\n  .claude/agents/x.md: 'agent'\n", "subagents (not mapped by tierbench yet)"),
])
def test_a_subtest_asking_for_a_missing_feature_is_refused_before_anything_runs(tmp_path, agent, body, feature):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    _subtest(test_dir, body)
    results = tmp_path / "results"
    proc = run_cli("run", test_dir, "--results-dir", results, "--agent", agent, "--agent-opt", "bin=/nonexistent")
    assert proc.returncode == 1, proc.stderr
    assert "subtest T0/00" in proc.stderr and feature in proc.stderr and f"the {agent} agent" in proc.stderr
    assert not (results / "calc").exists(), "nothing was created"


def test_a_subtests_own_agent_is_checked_too(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    _subtest(test_dir, "agent: aider\nfiles:\n  .mcp.json: '{}'\n")
    proc = run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--agent", "demo")
    assert proc.returncode == 1
    assert "subtest T0/00" in proc.stderr and "mcp" in proc.stderr and "the aider agent" in proc.stderr


def test_a_supported_feature_passes_the_check(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    _subtest(test_dir, "agent: gemini\ntools:\n  disabled: [web_fetch]\nmax_turns: 4\nfiles:\n  CLAUDE.md: x\n")
    proc = run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--agent", "demo", "--runs", 1,
                   "--no-preflight", env=None)
    assert "does not support" not in proc.stderr


def test_a_thinking_level_the_agent_cannot_set_is_refused(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    proc = run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--agent", "aider", "--thinking", "High")
    assert proc.returncode == 1
    assert "subtest T0/00" in proc.stderr and "--thinking High" in proc.stderr and "the aider agent" in proc.stderr
    assert not (tmp_path / "results" / "calc").exists()
