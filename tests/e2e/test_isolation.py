"""The researcher's own Claude Code set-up never reaches the model; the subtest's does.

`tierbench run --agent claude-code` with the real CLI against a fake API that logs every request
body. The researcher's HOME holds a CLAUDE.md, a skill, an agent, settings with a prompt hook and
an MCP server; a directory above the results dir holds a CLAUDE.md and an .mcp.json. None of their
markers may appear in any request; the subtest's CLAUDE.md, skill and agent must. The run keeps its
transcript (the scripted Skill and Bash calls and their results), counts them in its record, and
the report shows the usage table.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_claude_code import claude_bin
from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.fake_anthropic import FakeAnthropic, text_turn, tool_turn
from tests.support.testdirs import FIXED, make_test_dir

pytestmark = pytest.mark.e2e
SECRET = "sk-ant-test-isolation-DO-NOT-PERSIST-41c9"

LEAKS = {
    "LEAK_USER_CLAUDE_MD": ".claude/CLAUDE.md",
    "LEAK_USER_SKILL": ".claude/skills/user-skill/SKILL.md",
    "LEAK_USER_AGENT": ".claude/agents/user-agent.md",
    "LEAK_USER_SETTINGS_HOOK": ".claude/settings.json",
    "LEAK_ABOVE_CLAUDE_MD": "(above)/CLAUDE.md",
}
WANTED = ("WANT_SUBTEST_CLAUDE_MD", "WANT_SUBTEST_SKILL", "WANT_SUBTEST_AGENT")


def _researcher_home(home: Path) -> None:
    claude = home / ".claude"
    (claude / "skills" / "user-skill").mkdir(parents=True)
    (claude / "agents").mkdir()
    (claude / "CLAUDE.md").write_text("Always mention LEAK_USER_CLAUDE_MD.\n")
    (claude / "skills" / "user-skill" / "SKILL.md").write_text(
        "---\nname: user-skill\ndescription: LEAK_USER_SKILL helps with everything\n---\nBody.\n")
    (claude / "agents" / "user-agent.md").write_text(
        "---\nname: user-agent\ndescription: LEAK_USER_AGENT reviews code\n---\nYou review.\n")
    # A prompt hook's output is added to the model's context: the most direct way settings leak.
    (claude / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [
        {"hooks": [{"type": "command", "command": "echo LEAK_USER_SETTINGS_HOOK"}]}]}}))
    (home / ".claude.json").write_text(json.dumps({"mcpServers": {"user-mcp": {"command": "true"}}}))


def _subtest_files() -> dict[str, str]:
    return {
        "CLAUDE.md": "Project rule: WANT_SUBTEST_CLAUDE_MD.\n",
        ".claude/skills/calc-fixer/SKILL.md":
            "---\nname: calc-fixer\ndescription: WANT_SUBTEST_SKILL fixes calc.py\n---\nRun the checks.\n",
        ".claude/agents/calc-reviewer.md":
            "---\nname: calc-reviewer\ndescription: WANT_SUBTEST_AGENT reviews calc.py\n---\nReview.\n",
    }


# Under the sandbox, a results dir below /tmp has its parents hidden by the private /tmp, which
# would stop the CLAUDE.md walk by itself; `none` checks that the CLI-level isolation holds alone.
@pytest.mark.parametrize("sandbox", ["none", "auto"])
def test_user_setup_never_reaches_the_model_and_the_run_keeps_its_transcript(tmp_path, sandbox):
    home = tmp_path / "researcher"
    _researcher_home(home)
    above = tmp_path / "projects"
    above.mkdir()
    (above / "CLAUDE.md").write_text("Parent directory rule: LEAK_ABOVE_CLAUDE_MD.\n")
    (above / ".mcp.json").write_text(json.dumps({"mcpServers": {"above-mcp": {"command": "true"}}}))
    results = above / "results"

    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    subtest = test_dir / "tiers" / "T0" / "00-variant0.yaml"
    subtest.write_text(yaml.safe_dump({"description": "CLAUDE.md, a skill and an agent",
                                       "files": _subtest_files()}))
    fix = f"printf %s {shlex.quote(FIXED)} > calc.py"
    script = [tool_turn("Skill", {"skill": "calc-fixer"}),
              tool_turn("Bash", {"command": fix, "description": "fix calc.py"}),
              text_turn("Fixed add and mul.")]
    log = tmp_path / "api-requests.jsonl"
    with FakeAnthropic(script, log_path=log) as api:
        env = cli_env(HOME=str(home), ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY=SECRET,
                      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
        proc = run_cli("run", test_dir, "--results-dir", results, "--agent", "claude-code",
                       "--agent-opt", f"bin={claude_bin()}", "--agent-opt", "max_retries=0",
                       "--model", "claude-sonnet-4-5", "--tiers", "T0", "--runs", 1, "--timeout", 120,
                       "--sandbox", sandbox, env=env, timeout=300)
        main_requests = len(api.main_requests)
    assert proc.returncode == 0, proc.stderr
    exp = results / "calc"
    assert completed_runs(exp) == {"T0/00/run_01": "passed"}

    # Every request body the CLI sent, as the fake API logged it.
    sent = log.read_text()
    assert main_requests >= 3 and sent.count("\n") >= main_requests
    leaked = {marker: source for marker, source in LEAKS.items() if marker in sent}
    assert not leaked, f"the researcher's set-up reached the model: {leaked}"
    missing = [marker for marker in WANTED if marker not in sent]
    assert not missing, f"the subtest's own configuration did not reach the model: {missing}"

    run_dir = exp / "T0" / "00" / "run_01"
    events = [json.loads(line) for line in (run_dir / "agent" / "transcript.jsonl").read_text().splitlines()]
    init = next(e for e in events if e.get("type") == "system" and e.get("subtype") == "init")
    servers = {s.get("name") for s in init.get("mcp_servers") or []}
    assert not servers & {"user-mcp", "above-mcp"}, f"MCP servers from outside the worktree: {servers}"
    assert "user-skill" not in json.dumps(init) and "user-agent" not in json.dumps(init)
    calls = [b for e in events if e.get("type") == "assistant" for b in e["message"]["content"]
             if b.get("type") == "tool_use"]
    bash = next(b for b in calls if b["name"] == "Bash")
    assert bash["input"]["command"] == fix
    outputs = [b for e in events if e.get("type") == "user" and isinstance(e["message"].get("content"), list)
               for b in e["message"]["content"] if b.get("type") == "tool_result"]
    assert any(r["tool_use_id"] == bash["id"] and not r.get("is_error") for r in outputs)
    assert events[-1]["type"] == "result" and events[-1]["result"] == "Fixed add and mul."

    result = json.loads((run_dir / "run_result.json").read_text())
    assert result["usage"]["tool_calls"] == {"Skill": 1, "Bash": 1}
    assert result["usage"]["skills"] == {"calc-fixer": 1}
    assert result["usage"]["turns"] == 3
    isolation = result["isolation"]
    assert isolation["private_home"] is True
    assert "ANTHROPIC_API_KEY" in isolation["carried_env"] and isolation["carried_files"] == []
    report = (exp / "report.md").read_text()
    section = report[report.index("## What the agents used"):]
    assert re.search(r"\| T0 \| 00 \| skill \| calc-fixer \| yes \| 1 of 1 \| 100% \| 1 \|", section), section
    assert re.search(r"\| T0 \| 00 \| sub-agent \| calc-reviewer \| yes \| 0 of 1 \| 0% \| 0 \|", section)

    for path in exp.rglob("*"):
        if path.is_file() and "repo" not in path.parts:
            assert SECRET not in path.read_text(errors="ignore"), f"API key written to {path}"
    assert not (exp / ".private").exists() or not any((exp / ".private").iterdir())
    assert not list(home.rglob("projects")), "the CLI must not write into the researcher's ~/.claude"
