"""Reading each agent CLI's own output into tokens, usage and errors, on the shapes the pinned
versions print (the e2e tests run the real CLIs; these pin the parsing rules)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tierbench.agents import aider, cli_base, codex, gemini, mini_swe_agent, opencode
from tierbench.agents import transcripts  # noqa: F401  (registers the readers)
from tierbench.spec import Subtest
from tierbench.transcript import count_usage, parse_events


def _usage(fmt: str, events: list[dict]):
    return count_usage(parse_events(events, fmt))


def test_codex_usage_tools_and_a_harmless_metadata_error():
    events = [
        {"type": "thread.started", "thread_id": "t"},
        {"type": "item.completed", "item": {"type": "error", "message": "Model metadata for `x` not found."}},
        {"type": "item.completed", "item": {"type": "command_execution", "exit_code": 0}},
        {"type": "item.completed", "item": {"type": "mcp_tool_call", "server": "docs", "tool": "search"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "Fixed."}},
        {"type": "turn.completed", "usage": {"input_tokens": 1100, "cached_input_tokens": 200,
                                             "output_tokens": 70, "reasoning_output_tokens": 10}},
    ]
    tokens, final, failed = codex.parse_events(events)
    assert (tokens.input_tokens, tokens.cache_read_tokens, tokens.output_tokens, tokens.reasoning_tokens) == \
        (900, 200, 70, 10)
    usage = _usage("codex-exec", events)
    assert usage.tool_calls == {"command_execution": 1, "mcp__docs__search": 1} and usage.mcp_tools == {"docs/search": 1}
    assert final == "Fixed." and failed is None
    _, _, failed = codex.parse_events([{"type": "turn.failed", "error": {"message": "boom"}}])
    assert failed == "boom"


def test_gemini_stream_json_and_thoughts_from_the_session_file(tmp_path):
    events = [{"type": "tool_use", "tool_name": "run_shell_command", "parameters": {"command": "ls"}},
              {"type": "tool_use", "tool_name": "activate_skill", "parameters": {"name": "debug"}},
              {"type": "message", "role": "assistant", "content": "All ", "delta": True},
              {"type": "message", "role": "assistant", "content": "done.", "delta": True},
              {"type": "result", "status": "success",
               "stats": {"input_tokens": 1100, "cached": 200, "output_tokens": 60}}]
    tokens, final, error = gemini.parse_events(events)
    assert (tokens.input_tokens, tokens.cache_read_tokens, tokens.output_tokens) == (900, 200, 60)
    usage = _usage("gemini-stream", events)
    assert usage.tool_calls == {"run_shell_command": 1, "activate_skill": 1} and usage.skills == {"debug": 1}
    assert final == "All done." and error is None
    chats = tmp_path / ".gemini" / "tmp" / "ws" / "chats"
    chats.mkdir(parents=True)
    records = [{"id": "a", "type": "gemini", "tokens": {"thoughts": 10}},
               {"id": "a", "type": "gemini", "tokens": {"thoughts": 10}},  # the same message, rewritten
               {"id": "b", "type": "gemini", "tokens": {"thoughts": 5}}, {"id": "c", "type": "user"}]
    (chats / "session-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert gemini.session_thoughts(tmp_path) == 15


def test_opencode_sums_steps_and_names_skills_and_subagents():
    step = {"type": "step_finish", "part": {"tokens": {"input": 800, "output": 40, "reasoning": 10,
                                                       "cache": {"read": 200, "write": 5}}, "cost": 0.01}}
    events = [{"type": "tool_use", "part": {"tool": "skill", "state": {"input": {"name": "careful-fix"}}}},
              {"type": "tool_use", "part": {"tool": "task", "state": {"input": {"subagent_type": "tester"}}}},
              step, {"type": "text", "part": {"text": "Fixed."}}, step]
    tokens, steps, cost, text, error = opencode.parse_events(events)
    assert (tokens.input_tokens, tokens.output_tokens, tokens.reasoning_tokens, tokens.cache_read_tokens,
            tokens.cache_creation_tokens) == (1600, 100, 20, 400, 10)
    usage = _usage("opencode-run", events)
    assert usage.skills == {"careful-fix": 1} and usage.subagents == {"tester": 1} and steps == 2
    assert cost == 0.02 and text == "Fixed." and error is None


def test_aider_analytics_and_mini_trajectory():
    analytics = [{"event": "message_send_starting"},
                 {"event": "message_send", "properties": {"prompt_tokens": 1500, "completion_tokens": 90, "cost": 0.0003}}]
    tokens, cost, sends = aider.parse_analytics(analytics)
    assert (tokens.input_tokens, tokens.output_tokens, sends, _usage("aider-analytics", analytics).turns) == \
        (1500, 90, 1, 1)
    assert cost == 0.0003
    traj = {"info": {"exit_status": "Submitted", "model_stats": {"instance_cost": 0.0002, "api_calls": 1}},
            "messages": [{"role": "system"}, {"role": "assistant", "tool_calls": [{"function": {"name": "bash"}}],
                          "extra": {"response": {"usage": {"prompt_tokens": 1000, "completion_tokens": 50,
                                                           "prompt_tokens_details": {"cached_tokens": 200},
                                                           "completion_tokens_details": {"reasoning_tokens": 10}}}}},
                         {"role": "exit", "content": ""}]}
    tokens, calls, cost, status, message = mini_swe_agent.parse_trajectory(traj)
    assert (tokens.input_tokens, tokens.cache_read_tokens, tokens.output_tokens, tokens.reasoning_tokens) == \
        (800, 200, 50, 10)
    usage = _usage("mini-trajectory", traj["messages"])
    assert usage.tool_calls == {"bash": 1} and usage.turns == 1 and calls == 1 and cost == 0.0002
    assert status == "Submitted"


def test_binary_lookup_order(tmp_path, monkeypatch):
    spec = codex.SPEC
    exe = tmp_path / "codex-copy"
    exe.write_text("#!/bin/sh\n")
    os.chmod(exe, 0o755)
    assert cli_base.resolve_binary(spec, {"bin": str(exe)}, {}) == (str(exe), True)
    assert cli_base.resolve_binary(spec, {}, {"TIERBENCH_CODEX_BIN": str(exe)}) == (str(exe), True)
    monkeypatch.setattr(cli_base, "TOOLS_DIR", tmp_path / "no-tools")
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    (path_dir / "codex").symlink_to(exe)
    assert cli_base.resolve_binary(spec, {}, {"PATH": str(path_dir)}) == (str(path_dir / "codex"), True)
    assert cli_base.resolve_binary(spec, {"bin": str(tmp_path / "missing")}, {})[1] is False


def test_instruction_text_goes_to_the_agents_own_file_only_when_needed():
    class Ctx:
        subtest = Subtest(files={"CLAUDE.md": "notes"})

    assert cli_base.instructions(Ctx(), "AGENTS.md") == "notes"  # codex: copy into $CODEX_HOME/AGENTS.md
    Ctx.subtest = Subtest(files={"./AGENTS.md": "mine", "CLAUDE.md": "notes"})
    assert cli_base.instructions(Ctx(), "AGENTS.md") is None  # the agent reads its own file itself
    assert cli_base.instructions(Ctx(), None) == "notes"
    Ctx.subtest = Subtest()
    assert cli_base.instructions(Ctx(), None) is None


def _ctx(subtest: Subtest, **options: str):
    from types import SimpleNamespace

    return SimpleNamespace(subtest=subtest, options=dict(options), base_env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
                           model="m", thinking="None")


def test_tool_restriction_reaches_each_agents_own_setting():
    from tierbench.spec import ToolsSpec

    only = _ctx(Subtest(tools=ToolsSpec(enabled=["bash", "apply_patch"], disabled=["webfetch"])))
    assert opencode.config(only)["permission"] == {"*": "deny", "bash": "allow", "edit": "allow", "webfetch": "deny"}
    fewer = _ctx(Subtest(tools=ToolsSpec(disabled=["write"])))
    assert opencode.config(fewer)["permission"]["edit"] == "deny"
    assert opencode.config(fewer)["provider"]["tierbench"]["options"]["apiKey"] == "{env:OPENAI_API_KEY}"
    settings = gemini.settings(_ctx(Subtest(tools=ToolsSpec(enabled=["read_file"], disabled=["web_fetch"]),
                                            max_turns=7), max_retries="3"))
    assert settings["tools"] == {"core": ["read_file"], "exclude": ["web_fetch"]}
    assert settings["model"] == {"maxSessionTurns": 7} and settings["general"]["maxAttempts"] == 4
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"
