"""`tierbench run --agent opencode` with the real pinned OpenCode against the fake Chat Completions
API (SSE), inside a loopback-only network namespace."""

from __future__ import annotations

import json

import pytest

from tests.e2e.agent_runs import (FIX_COMMAND, SECRET, assert_auth_error, assert_graded_and_fixed, assert_no_secret,
                                  assert_rate_limited_exit_2, calc_test, run_agent, run_dir, transcript,
                                  write_notes_and_skill_subtest)
from tests.support.fake_chat import FakeChat, Usage, auth_error, rate_limited, text_turn, tool_turn

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("offline")]
MODEL = "gpt-4.1-mini"  # priced in prices.toml: $0.40 in / $0.10 cached / $1.60 out per MTok

def _env(api: FakeChat) -> dict[str, str]:
    return {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": f"{api.url}/v1"}


def test_opencode_edits_workspace_and_is_graded(tmp_path):
    usage = Usage(input_tokens=1000, output_tokens=60, cached_tokens=400, reasoning_tokens=20)
    script = [tool_turn("bash", {"command": FIX_COMMAND, "description": "fix calc.py"}, usage=usage),
              text_turn("Fixed.", usage=usage)]
    test_dir = calc_test(tmp_path)
    write_notes_and_skill_subtest(test_dir, "project notes, a skill, a smaller toolbox",
                                  "tools:\n  disabled: [webfetch, apply_patch]\n")
    with FakeChat(script) as api:
        proc, exp = run_agent(tmp_path, "opencode", MODEL, env=_env(api), test_dir=test_dir)
        main = api.main_requests()
    result = assert_graded_and_fixed(proc, exp)
    first = json.dumps(main[0].body)
    assert "NOTES-MARKER-7" in first, "CLAUDE.md reached the model"
    assert "SKILL-MARKER-3" in first, "the .claude/skills skill was offered"
    offered = {tool["function"]["name"] for tool in main[0].body["tools"]}
    assert {"bash", "skill"} <= offered and not offered & {"webfetch", "apply_patch"}, offered
    assert result["token_stats"] == {"input_tokens": 1200, "cache_read_tokens": 800, "cache_creation_tokens": 0,
                                     "output_tokens": 120, "reasoning_tokens": 40}
    expected_cost = (1200 * 0.40 + 800 * 0.10 + 120 * 1.60) / 1e6
    assert result["agent_cost_source"] == "price_table"
    assert result["agent_cost_usd"] == pytest.approx(expected_cost)
    assert result["agent"] == "opencode"
    assert result["usage"]["tool_calls"] == {"bash": 1}
    assert result["num_turns"] == 2
    events = transcript(exp)
    assert [e["type"] for e in events].count("step_finish") == 2
    command = json.loads((run_dir(exp) / "agent" / "command.json").read_text())
    assert command["argv"][1:4] == ["run", "--format", "json"]
    assert_no_secret(exp)


def test_opencode_429_is_rate_limited_and_exits_2(tmp_path):
    with FakeChat([text_turn("unused")], error=rate_limited(retry_after=1)) as api:
        proc, exp = run_agent(tmp_path, "opencode", MODEL, "--on-rate-limit", "exit", env=_env(api))
    attempt = assert_rate_limited_exit_2(proc, exp)
    assert attempt["rate_limit"]["reset_known"] is True, "the Retry-After header in OpenCode's error event"
    assert "rate limit" in attempt["rate_limit"]["message"].lower()


def test_opencode_401_is_an_infrastructure_error_naming_the_key(tmp_path):
    with FakeChat([text_turn("unused")], error=auth_error()) as api:
        proc, exp = run_agent(tmp_path, "opencode", MODEL, env=_env(api))
    assert_auth_error(proc, exp, "OPENAI_API_KEY")
    assert_no_secret(exp)
