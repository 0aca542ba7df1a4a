"""`tierbench run --agent aider` with the real pinned Aider against the fake Chat Completions API
(non-streaming; the edit comes in the reply text), inside a loopback-only network namespace."""

from __future__ import annotations

import json

import pytest

from tests.e2e.agent_runs import (SECRET, assert_auth_error, assert_graded_and_fixed, assert_no_secret,
                                  assert_rate_limited_exit_2, calc_test, run_agent, run_dir, transcript)
from tests.support.fake_chat import FakeChat, Usage, auth_error, rate_limited, text_turn
from tests.support.testdirs import FIXED

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("offline")]
MODEL = "gpt-4o-mini"  # litellm (inside Aider) prices it itself: cost_source "agent"
REPLY = f"calc.py\n```python\n{FIXED}```\n"  # Aider's "whole" edit format


def _env(api: FakeChat) -> dict[str, str]:
    return {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": f"{api.url}/v1"}


def _fake(**kwargs) -> FakeChat:
    return FakeChat([text_turn(REPLY, usage=Usage(input_tokens=1500, output_tokens=90))], main_when="all",
                    turns_by="requests", **kwargs)


def test_aider_edits_workspace_and_is_graded(tmp_path):
    test_dir = calc_test(tmp_path)
    (test_dir / "tiers" / "T0" / "00-variant0.yaml").write_text(
        "description: conventions\nfiles:\n  CLAUDE.md: 'Always run the checks: NOTES-MARKER-7'\n")
    with _fake() as api:
        proc, exp = run_agent(tmp_path, "aider", MODEL, "--agent-opt", "edit_format=whole", env=_env(api),
                              test_dir=test_dir)
        main = api.main_requests()
    result = assert_graded_and_fixed(proc, exp)
    assert "NOTES-MARKER-7" in json.dumps(main[0].body), "the conventions file reached the model"
    diff = (run_dir(exp) / "agent" / "diff.patch").read_text()
    assert ".aider" not in diff, "Aider's histories and tags cache stay out of the diff"
    assert "[user]" not in (exp / "repo" / ".git" / "config").read_text(), "the shared base repo is untouched"
    assert result["token_stats"]["input_tokens"] == 1500 and result["token_stats"]["output_tokens"] == 90
    assert result["agent_cost_source"] == "agent"
    assert result["agent_cost_usd"] == pytest.approx((1500 * 0.15 + 90 * 0.60) / 1e6)
    assert result["agent"] == "aider" and result["num_turns"] == 1
    events = transcript(exp)
    assert [e["event"] for e in events].count("message_send") == 1 and events[-1]["event"] == "chat_history"
    command = json.loads((run_dir(exp) / "agent" / "command.json").read_text())
    assert "--message" in command["argv"] and SECRET not in json.dumps(command)
    assert_no_secret(exp)


def test_aider_429_exits_0_yet_is_rate_limited_and_exits_2(tmp_path):
    # Aider retries a 429 for about a minute with no knob to bound it: the run timeout is the
    # backstop, and a run cut off while retrying is rate limited, never failed.
    with _fake(error=rate_limited(retry_after=1)) as api:
        proc, exp = run_agent(tmp_path, "aider", MODEL, "--on-rate-limit", "exit", "--timeout", 25, env=_env(api))
    attempt = assert_rate_limited_exit_2(proc, exp)
    assert "RateLimitError" in attempt["rate_limit"]["message"]


def test_aider_401_exits_0_yet_is_an_infrastructure_error_naming_the_key(tmp_path):
    with _fake(error=auth_error()) as api:
        proc, exp = run_agent(tmp_path, "aider", MODEL, env=_env(api))
    assert_auth_error(proc, exp, "OPENAI_API_KEY")
    assert_no_secret(exp)
