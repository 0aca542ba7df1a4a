"""`tierbench run --agent gemini` with the real pinned Gemini CLI against the fake Gemini API
(streamGenerateContent SSE), inside a loopback-only network namespace."""

from __future__ import annotations

import json

import pytest

from tests.e2e.agent_runs import (FIX_COMMAND, SECRET, assert_auth_error, assert_graded_and_fixed, assert_no_secret,
                                  assert_rate_limited_exit_2, calc_test, run_agent, run_dir, transcript,
                                  write_notes_and_skill_subtest)
from tests.support.fake_gemini import FakeGemini, Usage, auth_error, rate_limited, text_turn, tool_turn

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("offline")]
MODEL = "gemini-2.5-flash"  # priced in prices.toml: $0.30 in / $0.075 cached / $2.50 out per MTok


def _env(api: FakeGemini) -> dict[str, str]:
    return {"GEMINI_API_KEY": SECRET, "GOOGLE_GEMINI_BASE_URL": api.url}


def test_gemini_edits_workspace_and_is_graded(tmp_path):
    usage = Usage(input_tokens=1000, output_tokens=60, cached_tokens=400, reasoning_tokens=20)
    script = [tool_turn("run_shell_command", {"command": FIX_COMMAND, "is_background": False}, usage=usage),
              text_turn("Fixed.", usage=usage)]
    test_dir = calc_test(tmp_path)
    write_notes_and_skill_subtest(test_dir, "notes and a smaller toolbox",
                                  "tools:\n  disabled: [google_web_search, web_fetch]\n")
    with FakeGemini(script, model_version=MODEL) as api:
        proc, exp = run_agent(tmp_path, "gemini", MODEL, env=_env(api), test_dir=test_dir)
        main = api.main_requests()
    result = assert_graded_and_fixed(proc, exp)
    # GEMINI.md (from the subtest's CLAUDE.md) and the tool restriction reached the model
    assert "NOTES-MARKER-7" in json.dumps(main[0].body)
    assert "SKILL-MARKER-3" in json.dumps(main[0].body), "the .claude/skills skill was offered"
    offered = {d["name"] for t in main[0].body["tools"] for d in t.get("functionDeclarations", [])}
    assert "run_shell_command" in offered and not offered & {"google_web_search", "web_fetch"}
    assert result["token_stats"] == {"input_tokens": 1200, "cache_read_tokens": 800, "cache_creation_tokens": 0,
                                     "output_tokens": 120, "reasoning_tokens": 40}
    expected_cost = (1200 * 0.30 + 800 * 0.075 + 120 * 2.50) / 1e6
    assert result["agent_cost_source"] == "price_table"
    assert result["agent_cost_usd"] == pytest.approx(expected_cost)
    assert result["agent"] == "gemini"
    assert result["usage"]["tool_calls"] == {"run_shell_command": 1}
    events = transcript(exp)
    assert [e["type"] for e in events if e["type"] in ("tool_use", "result")] == ["tool_use", "result"]
    command = json.loads((run_dir(exp) / "agent" / "command.json").read_text())
    assert "--output-format" in command["argv"] and "stream-json" in command["argv"]
    assert_no_secret(exp)


def test_gemini_429_is_rate_limited_and_exits_2(tmp_path):
    with FakeGemini([text_turn("unused")], error=rate_limited(retry_after=1)) as api:
        proc, exp = run_agent(tmp_path, "gemini", MODEL, "--on-rate-limit", "exit", env=_env(api))
        hits = len(api.error_requests())
    assert_rate_limited_exit_2(proc, exp)
    assert hits == 2, "general.maxAttempts (max_retries 1 + 1) bounds Gemini CLI's own retries"


def test_gemini_401_is_an_infrastructure_error_naming_the_key(tmp_path):
    with FakeGemini([text_turn("unused")], error=auth_error()) as api:
        proc, exp = run_agent(tmp_path, "gemini", MODEL, env=_env(api))
    assert_auth_error(proc, exp, "GEMINI_API_KEY")
    assert_no_secret(exp)
