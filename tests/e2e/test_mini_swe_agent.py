"""`tierbench run --agent mini-swe-agent` with the real pinned mini-swe-agent against the fake Chat
Completions API (non-streaming, a `bash` tool), inside a loopback-only network namespace."""

from __future__ import annotations

import json

import pytest

from tests.e2e.agent_runs import (FIX_COMMAND, SECRET, assert_auth_error, assert_graded_and_fixed, assert_no_secret,
                                  assert_rate_limited_exit_2, calc_test, run_agent, run_dir, transcript)
from tests.support.fake_chat import FakeChat, Usage, auth_error, rate_limited, tool_turn

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("offline")]
MODEL = "gpt-4o-mini"  # litellm (inside mini-swe-agent) prices it itself: cost_source "agent"
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


def _env(api: FakeChat) -> dict[str, str]:
    return {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": f"{api.url}/v1"}


def test_mini_swe_agent_edits_workspace_and_is_graded(tmp_path):
    usage = Usage(input_tokens=1000, output_tokens=60, cached_tokens=400, reasoning_tokens=20)
    script = [tool_turn("bash", {"command": FIX_COMMAND}, usage=usage), tool_turn("bash", {"command": SUBMIT},
                                                                                  usage=usage)]
    test_dir = calc_test(tmp_path)
    (test_dir / "tiers" / "T0" / "00-variant0.yaml").write_text(
        "description: notes, few steps\nmax_turns: 5\nfiles:\n  AGENTS.md: 'Always run the checks: NOTES-MARKER-7'\n")
    with FakeChat(script) as api:
        proc, exp = run_agent(tmp_path, "mini-swe-agent", MODEL, env=_env(api), test_dir=test_dir)
        main = api.main_requests()
    result = assert_graded_and_fixed(proc, exp)
    system = main[0].body["messages"][0]
    assert system["role"] == "system" and "NOTES-MARKER-7" in system["content"], "instructions in the system template"
    assert not main[0].body.get("stream")
    assert result["token_stats"] == {"input_tokens": 1200, "cache_read_tokens": 800, "cache_creation_tokens": 0,
                                     "output_tokens": 120, "reasoning_tokens": 40}
    assert result["agent_cost_source"] == "agent"
    assert result["agent_cost_usd"] == pytest.approx((1200 * 0.15 + 800 * 0.075 + 120 * 0.60) / 1e6)
    assert result["agent"] == "mini-swe-agent"
    assert result["usage"]["tool_calls"] == {"bash": 2} and result["num_turns"] == 2
    roles = [m["role"] for m in transcript(exp)]
    assert roles[:2] == ["system", "user"] and roles[-1] == "exit"
    command = json.loads((run_dir(exp) / "agent" / "command.json").read_text())
    assert "--exit-immediately" in command["argv"]
    assert command["env_overrides"]["MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT"] == "2"
    assert_no_secret(exp)


def test_mini_swe_agent_429_is_rate_limited_and_exits_2(tmp_path):
    with FakeChat([], error=rate_limited(retry_after=1)) as api:
        proc, exp = run_agent(tmp_path, "mini-swe-agent", MODEL, "--on-rate-limit", "exit", env=_env(api))
        hits = len(api.error_requests())
    assert_rate_limited_exit_2(proc, exp)
    assert hits == 2, "MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT (max_retries 1 + 1) bounds its retries"


def test_mini_swe_agent_401_is_an_infrastructure_error_naming_the_key(tmp_path):
    with FakeChat([], error=auth_error()) as api:
        proc, exp = run_agent(tmp_path, "mini-swe-agent", MODEL, env=_env(api))
    assert_auth_error(proc, exp, "OPENAI_API_KEY")
    assert_no_secret(exp)
