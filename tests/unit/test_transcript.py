"""Transcripts: Claude Code's stream-json read into normalised entries, and ToolUsage counted from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierbench.transcript import (TranscriptEntry, count_usage, known_formats, parse_events, read_events,
                                  read_transcript, register_reader, run_transcript)


def _assistant(message_id: str, *blocks: dict, parent: str | None = None, usage: dict | None = None) -> dict:
    return {"type": "assistant", "parent_tool_use_id": parent,
            "message": {"id": message_id, "role": "assistant", "content": list(blocks),
                        "usage": usage or {"input_tokens": 10, "output_tokens": 2}}}


def _tool_use(call_id: str, name: str, **tool_input: object) -> dict:
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def _result(call_id: str, content: object, is_error: bool = False, parent: str | None = None) -> dict:
    return {"type": "user", "parent_tool_use_id": parent,
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id,
                                                     "content": content, "is_error": is_error}]}}


STREAM = [
    {"type": "system", "subtype": "init", "tools": ["Bash", "Skill", "Agent"]},
    # One model message split over two events (text, then its tool call): one turn.
    _assistant("m1", {"type": "text", "text": "Let me look."}),
    _assistant("m1", _tool_use("t1", "Skill", skill="debug-small-bug")),
    _result("t1", "Launching skill: debug-small-bug"),
    _assistant("m2", _tool_use("t2", "Agent", subagent_type="reviewer", prompt="review", description="r")),
    # The sub-agent's own messages carry the Agent call's id as parent: its calls count, its turns do not.
    _assistant("s1", _tool_use("t3", "Bash", command="git diff"), parent="t2"),
    _result("t3", [{"type": "text", "text": "diff output"}], parent="t2"),
    _result("t2", "Looks right."),
    _assistant("m3", _tool_use("t4", "mcp__github__create_issue", title="x"),
               _tool_use("t5", "Task", prompt="p", description="d")),
    _result("t4", "denied", is_error=True),
    _result("t5", "done"),
    _assistant("m4", {"type": "text", "text": "Done."}),
    {"type": "result", "subtype": "success", "is_error": False, "result": "Done.", "num_turns": 4,
     "usage": {"input_tokens": 40, "output_tokens": 8, "output_tokens_details": {"thinking_tokens": 3}}},
]


def test_claude_stream_entries_keep_calls_results_and_usage():
    entries = parse_events(STREAM, "claude-code")
    calls = [e for e in entries if e.kind == "tool_call"]
    assert [(c.tool_name, c.tool_id) for c in calls] == [
        ("Skill", "t1"), ("Agent", "t2"), ("Bash", "t3"), ("mcp__github__create_issue", "t4"), ("Task", "t5")]
    assert calls[0].tool_input == {"skill": "debug-small-bug"}
    assert calls[2].parent_id == "t2" and calls[0].parent_id is None
    results = {e.tool_id: e for e in entries if e.kind == "tool_result"}
    assert results["t3"].text == "diff output" and results["t3"].parent_id == "t2"
    assert results["t4"].is_error and not results["t5"].is_error
    # A message's usage is on its first entry only, so summing entries never double counts.
    m1 = [e for e in entries if e.message_id == "m1"]
    assert m1[0].usage is not None and m1[1].usage is None
    final = entries[-1]
    assert final.kind == "result" and final.text == "Done." and final.usage.reasoning_tokens == 3


def test_count_usage_rules():
    usage = count_usage(parse_events(STREAM, "claude-code"))
    assert usage.tool_calls == {"Skill": 1, "Agent": 1, "Bash": 1, "mcp__github__create_issue": 1, "Task": 1}
    assert usage.skills == {"debug-small-bug": 1}
    assert usage.subagents == {"reviewer": 1, "general-purpose": 1}  # Task without subagent_type
    assert usage.mcp_tools == {"github/create_issue": 1}
    assert usage.turns == 4  # m1..m4; the sub-agent's message s1 is not a turn of the main agent


def test_read_events_skips_torn_and_non_json_lines(tmp_path: Path):
    path = tmp_path / "transcript.jsonl"
    lines = [json.dumps(e) for e in STREAM[:4]]
    path.write_text("noise before the stream\n" + "\n".join(lines) + '\n{"type": "assistant", "mess')
    assert len(read_events(path)) == 4
    assert count_usage(read_transcript(path, "claude-code")).skills == {"debug-small-bug": 1}
    assert read_transcript(tmp_path / "missing.jsonl", "claude-code") == []
    for agent in ("claude-code", "command", "demo"):
        assert len(run_transcript(tmp_path, agent)) == 3  # text, Skill call, its result


def test_reader_registry():
    assert "claude-code" in known_formats()
    with pytest.raises(ValueError, match="no transcript reader"):
        parse_events([], "no-such-agent")

    def reader(events):
        return [TranscriptEntry(kind="tool_call", role="assistant", tool_name=e["tool"]) for e in events]

    register_reader("test-format", reader, agents=("test-agent",))
    with pytest.raises(ValueError, match="no transcript reader for agent"):
        run_transcript(Path("."), "unknown-agent")
    usage = count_usage(parse_events([{"tool": "Skill"}, {"tool": "shell"}], "test-format"))
    assert usage.tool_calls == {"Skill": 1, "shell": 1} and usage.skills == {"?": 1}
