"""`tierbench run --agent codex` with the real pinned Codex CLI against the fake Responses API,
inside a loopback-only network namespace."""

from __future__ import annotations

import json

import pytest

from tests.e2e.agent_runs import (FIX_COMMAND, SECRET, assert_auth_error, assert_graded_and_fixed, assert_no_secret,
                                  assert_rate_limited_exit_2, calc_test, run_agent, run_dir, transcript,
                                  write_notes_and_skill_subtest)
from tests.support.fake_responses import FakeResponses, Usage, auth_error, rate_limited, text_turn, tool_turn

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("offline")]
MODEL = "gpt-5-mini"  # priced in prices.toml: $0.25 in / $0.025 cached / $2 out per MTok


def _env(api: FakeResponses) -> dict[str, str]:
    return {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": f"{api.url}/v1"}


def test_codex_edits_workspace_and_is_graded(tmp_path):
    usage = Usage(input_tokens=1000, output_tokens=60, cached_tokens=400, reasoning_tokens=20)
    script = [tool_turn("exec_command", {"cmd": FIX_COMMAND}, usage=usage), text_turn("Fixed.", usage=usage)]
    test_dir = calc_test(tmp_path)
    write_notes_and_skill_subtest(test_dir, "with project notes")
    with FakeResponses(script) as api:
        proc, exp = run_agent(tmp_path, "codex", MODEL, env=_env(api), test_dir=test_dir)
        main = api.main_requests()
    result = assert_graded_and_fixed(proc, exp)
    # the instruction file reached the model through Codex's own AGENTS.md convention
    assert "NOTES-MARKER-7" in json.dumps(main[0].body)
    assert "SKILL-MARKER-3" in json.dumps(main[0].body), "the .claude/skills skill was offered"
    tokens = result["token_stats"]
    assert tokens == {"input_tokens": 1200, "cache_read_tokens": 800, "cache_creation_tokens": 0,
                      "output_tokens": 120, "reasoning_tokens": 40}
    expected_cost = (1200 * 0.25 + 800 * 0.025 + 120 * 2.0) / 1e6
    assert result["agent_cost_source"] == "price_table"
    assert result["agent_cost_usd"] == pytest.approx(expected_cost)
    assert result["agent"] == "codex"
    assert result["usage"]["tool_calls"] == {"command_execution": 1}
    events = transcript(exp)
    assert any(e.get("type") == "turn.completed" for e in events)
    assert any((e.get("item") or {}).get("type") == "command_execution" for e in events)
    command = json.loads((run_dir(exp) / "agent" / "command.json").read_text())
    assert command["argv"][1:3] == ["exec", "--json"]
    report = (exp / "report.md").read_text()  # the agent is in the run's identity; costs say their source
    assert "| T0 | 00 * | codex |" in report
    assert "Agent cost source (runs): tierbench price table 1" in report
    assert_no_secret(exp)


def test_codex_429_is_rate_limited_and_exits_2(tmp_path):
    with FakeResponses([text_turn("unused")], error=rate_limited(retry_after=1)) as api:
        proc, exp = run_agent(tmp_path, "codex", MODEL, "--on-rate-limit", "exit", env=_env(api))
        hits = len(api.error_requests())
    attempt = assert_rate_limited_exit_2(proc, exp)
    assert "429" in attempt["rate_limit"]["message"]
    assert hits == 2, "max_retries (default 1) bounds Codex's own retries: one request, one retry"


def test_codex_401_is_an_infrastructure_error_naming_the_key(tmp_path):
    with FakeResponses([text_turn("unused")], error=auth_error()) as api:
        proc, exp = run_agent(tmp_path, "codex", MODEL, env=_env(api))
    assert_auth_error(proc, exp, "OPENAI_API_KEY")
    assert_no_secret(exp)
