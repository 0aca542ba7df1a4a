"""A real MCP server with the real Claude Code CLI: `tierbench run` on a test whose T2 subtest takes
an MCP server from the resource library.

The server is tests/support/mcp_probe_server.py (the `mcp` Python SDK, stdio). The fake API calls
its `whoami` tool by name; the server answers with a digest of the secret it got through
`${PROBE_TOKEN}` in its library definition. A user-level server in the home directory must not
be offered, and the secret's value must reach no file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from tests.e2e.test_claude_code import claude_bin
from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.fake_anthropic import FakeAnthropic, mcp_tool_name, mcp_tool_turn, offered_mcp_tools, text_turn
from tests.support.testdirs import make_test_dir

pytestmark = pytest.mark.e2e
PROBE = Path(__file__).resolve().parents[1] / "support" / "mcp_probe_server.py"
MCP_SECRET = "mcp-secret-value-DO-NOT-PERSIST-91c2"


def _server(name: str, **env: str) -> dict:
    return {"command": sys.executable, "args": [str(PROBE), name], "env": env}


def test_subtest_mcp_server_is_called_and_nothing_else_is_offered(tmp_path: Path) -> None:
    pytest.importorskip("mcp.server.mcpserver", reason="the mcp SDK (dev extra) runs the probe server")
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T2",), subtests=1)
    library = test_dir / "resources" / "mcp"
    library.mkdir(parents=True)
    (library / "probe.json").write_text(json.dumps(_server("probe", PROBE_SECRET="${PROBE_TOKEN}")))
    (test_dir / "tiers" / "T2" / "00-variant0.yaml").write_text(
        "description: one MCP server from the library\nresources:\n  mcp_servers: [{name: probe}]\n")
    # A server that must stay invisible: the user's own.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"mcpServers": {"userlevel": _server("userlevel")}}))

    script = [mcp_tool_turn("probe", "whoami"), text_turn("The probe answered.")]
    results = tmp_path / "results"
    with FakeAnthropic(script) as api:
        env = cli_env(HOME=str(home), ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY="dummy",
                      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", IS_SANDBOX="1", PROBE_TOKEN=MCP_SECRET)
        proc = run_cli("run", test_dir, "--results-dir", results, "--agent", "claude-code",
                       "--agent-opt", f"bin={claude_bin()}", "--agent-opt", "max_retries=0",
                       "--model", "claude-sonnet-4-5", "--runs", 1, "--timeout", 120, "--no-preflight",
                       env=env, timeout=240)
        main = api.main_requests
    assert proc.returncode == 0, proc.stderr
    exp = results / "calc"
    assert set(completed_runs(exp)) == {"T2/00/run_01"}

    offered = offered_mcp_tools(main[0].body)
    assert mcp_tool_name("probe", "whoami") in offered
    assert not {t for t in offered if "userlevel" in t}, offered
    # The tool really ran, in the server, with the secret expanded from the environment by name.
    digest = hashlib.sha256(MCP_SECRET.encode()).hexdigest()[:12]
    results_sent = [block for block in main[-1].body["messages"][-1]["content"] if block.get("type") == "tool_result"]
    assert results_sent and f"probe probe answering; secret sha256 {digest}" in json.dumps(results_sent)

    run_dir = exp / "T2" / "00" / "run_01"
    written = json.loads((run_dir / "agent" / "mcp.json").read_text())
    assert written["mcpServers"]["probe"]["env"]["PROBE_SECRET"] == "${PROBE_TOKEN}"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["provenance"]["mcp_servers/probe"] == "T2/00 resources.mcp_servers: library mcp/probe.json"
    assert config["config_size"]["mcp_servers"] == 1
    # The transcript shows the MCP tool call and its result.
    events = [json.loads(line) for line in (run_dir / "agent" / "transcript.jsonl").read_text().splitlines()]
    calls = [b for e in events if e.get("type") == "assistant" for b in e["message"]["content"]
             if b.get("type") == "tool_use" and b.get("name") == mcp_tool_name("probe", "whoami")]
    answers = [b for e in events if e.get("type") == "user" for b in e["message"]["content"]
               if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("tool_use_id") == calls[0]["id"]]
    assert len(calls) == 1 and f"secret sha256 {digest}" in json.dumps(answers)
    result = json.loads((run_dir / "run_result.json").read_text())
    assert result["usage"]["mcp_tools"] == {"probe/whoami": 1}, result["usage"]  # the manipulation check
    assert "PROBE_TOKEN" in result["isolation"]["carried_env"]  # carried by name for the server
    for path in [*exp.rglob("*"), *test_dir.rglob("*")]:
        if path.is_file():
            assert MCP_SECRET not in path.read_text(errors="ignore"), f"MCP secret written to {path}"


def test_composed_claude_md_skills_and_agents_reach_claude_code(tmp_path: Path) -> None:
    """What the library composes is what the CLI loads: the CLAUDE.md text, the skill and the
    sub-agent appear in the request the model gets (a setting-sources choice that drops the
    project's .claude/ would make every T0/T1/T3 subtest identical)."""
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T3",), subtests=1)
    library = test_dir / "resources"
    (library / "blocks").mkdir(parents=True)
    (library / "blocks" / "B01-giraffe.md").write_text("Giraffe rules apply to every change.\n")
    (library / "skills" / "zoo" / "zebra-skill").mkdir(parents=True)
    (library / "skills" / "zoo" / "zebra-skill" / "SKILL.md").write_text(
        "---\nname: zebra-skill\ndescription: Stripes for every diff.\n---\nDo stripes.\n")
    (library / "agents" / "L3").mkdir(parents=True)
    (library / "agents" / "L3" / "okapi-agent.md").write_text(
        "---\nname: okapi-agent\ndescription: A shy reviewer.\n---\nReview shyly.\n")
    (test_dir / "tiers" / "T3" / "00-variant0.yaml").write_text(
        "resources:\n  claude_md: {blocks: [B01]}\n  skills: {categories: [zoo]}\n  agents: {levels: [3]}\n")
    home = tmp_path / "home"
    home.mkdir()
    with FakeAnthropic([text_turn("Nothing to do.")]) as api:
        env = cli_env(HOME=str(home), ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY="dummy",
                      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", IS_SANDBOX="1")
        proc = run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--agent", "claude-code",
                       "--agent-opt", f"bin={claude_bin()}", "--agent-opt", "max_retries=0",
                       "--model", "claude-sonnet-4-5", "--runs", 1, "--timeout", 120, "--no-preflight",
                       env=env, timeout=240)
        sent = json.dumps([r.body for r in api.main_requests])
    assert proc.returncode == 0, proc.stderr
    for offered in ("Giraffe rules apply to every change.", "zebra-skill", "okapi-agent"):
        assert offered in sent, f"{offered!r} never reached the model"
