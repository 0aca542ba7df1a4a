"""Transcripts: what an agent did during a run, in one shape for every agent.

Each adapter keeps the agent's raw event stream, unchanged, as `agent/transcript.jsonl` (one JSON
object per line, in the agent's own format). A reader registered for that format turns the raw
events into a list of `TranscriptEntry`, and `count_usage` turns entries into the run's
`ToolUsage`. The counting rules live only here, so every agent is counted the same way.

API (small on purpose; the viewer and every adapter use only this):

    TRANSCRIPT_NAME                      "transcript.jsonl", inside the run's agent/ directory
    TranscriptEntry                      one normalised entry (see the fields below)
    register_reader(fmt, reader, agents=())   reader(events: list[dict]) -> list[TranscriptEntry];
                                         `agents` names the agents whose transcripts use `fmt`
    run_transcript(agent_dir, agent)     the entries of one run (agent = RunResult.agent); what a
                                         viewer calls ([] when the run kept no transcript)
    read_events(path) -> list[dict]      the raw events; a torn or non-JSON line is skipped
    read_transcript(path, fmt)           the entries of a transcript file ([] when it is missing)
    parse_events(events, fmt)            the entries of raw events already in memory
    count_usage(entries) -> ToolUsage    tool calls, skills, sub-agents, MCP tools, turns
    known_formats()                      the registered format names

Formats registered here: "claude-code" (Claude Code `--output-format stream-json --verbose`;
also what the `command` agent keeps when its command prints that stream, and what the `demo`
agent writes). Another adapter registers its own reader next to its adapter code.

Counting rules (`count_usage`):
  * tool_calls: every tool call by tool name, including calls made inside sub-agents;
  * skills: Claude Code's `Skill` tool calls, by the `skill` input (the skill's name);
  * subagents: `Task` / `Agent` tool calls, by `subagent_type` ("general-purpose" when absent);
  * mcp_tools: tool names `mcp__<server>__<tool>`, counted as "<server>/<tool>";
  * turns: assistant messages of the main conversation (not of sub-agents), one per message id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, Field

from tierbench.models import TokenStats, ToolUsage

TRANSCRIPT_NAME = "transcript.jsonl"
# Claude Code's names, then Gemini CLI's (activate_skill, invoke_agent) and OpenCode's (skill, task).
SKILL_TOOLS = frozenset({"Skill", "activate_skill", "skill"})
SUBAGENT_TOOLS = frozenset({"Task", "Agent", "invoke_agent", "task"})
DEFAULT_SUBAGENT = "general-purpose"
MCP_PREFIX = "mcp__"


class TranscriptEntry(BaseModel):
    """One normalised step of a transcript.

    kind "text":        role assistant|user|system, `text`
    kind "tool_call":   role assistant, `tool_name`, `tool_id`, `tool_input`
    kind "tool_result": role tool, `tool_id` (the call it answers), `text` (its output), `is_error`
    kind "result":      role system, `text` (the agent's final answer), `is_error`, `usage` (whole run)
    `message_id` groups the entries of one model message; `parent_id` is the tool call of the
    sub-agent an entry belongs to (None in the main conversation); `usage` on a message's first
    entry is that message's token usage.
    """

    kind: Literal["text", "tool_call", "tool_result", "result"]
    role: Literal["assistant", "user", "system", "tool"]
    text: str = ""
    tool_name: str | None = None
    tool_id: str | None = None
    tool_input: dict[str, Any] | None = None
    is_error: bool = False
    usage: TokenStats | None = None
    message_id: str | None = None
    parent_id: str | None = None


Reader = Callable[[list[dict[str, Any]]], list[TranscriptEntry]]
_READERS: dict[str, Reader] = {}
_AGENT_FORMATS: dict[str, str] = {}


def register_reader(fmt: str, reader: Reader, agents: tuple[str, ...] = ()) -> None:
    _READERS[fmt] = reader
    for agent in agents:
        _AGENT_FORMATS[agent] = fmt


def run_transcript(agent_dir: Path, agent: str) -> list[TranscriptEntry]:
    """The normalised transcript a run kept in `agent_dir`, read with its agent's format."""
    fmt = _AGENT_FORMATS.get(agent)
    if fmt is None:
        raise ValueError(f"no transcript reader for agent {agent!r}; known: {', '.join(sorted(_AGENT_FORMATS))}")
    return read_transcript(Path(agent_dir) / TRANSCRIPT_NAME, fmt)


def agent_format(agent: str) -> str | None:
    """The transcript format registered for an agent, None when it has no reader (the viewer)."""
    return _AGENT_FORMATS.get(agent)


def known_formats() -> list[str]:
    return sorted(_READERS)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a .jsonl file, in order. Lines that are not JSON objects are skipped."""
    try:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return jsonl_objects(raw)


def jsonl_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL stream, in order, skipping anything else (banners, warnings)."""
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def parse_events(events: list[dict[str, Any]], fmt: str) -> list[TranscriptEntry]:
    if fmt not in _READERS:
        raise ValueError(f"no transcript reader for format {fmt!r}; known: {', '.join(known_formats())}")
    return _READERS[fmt](events)


def read_transcript(path: Path, fmt: str) -> list[TranscriptEntry]:
    return parse_events(read_events(path), fmt)


def count_usage(entries: list[TranscriptEntry]) -> ToolUsage:
    """What the agent used, counted from normalised entries (the rules are in the module docstring)."""
    usage = ToolUsage()
    turns: set[str] = set()
    anonymous_turns = 0
    for entry in entries:
        if entry.role == "assistant" and entry.parent_id is None and entry.kind in ("text", "tool_call"):
            if entry.message_id:
                turns.add(entry.message_id)
            elif entry.usage is not None or entry.kind == "text":
                anonymous_turns += 1
        if entry.kind != "tool_call" or not entry.tool_name:
            continue
        name = entry.tool_name
        _bump(usage.tool_calls, name)
        arguments = entry.tool_input or {}
        if name in SKILL_TOOLS:
            _bump(usage.skills, str(arguments.get("skill") or arguments.get("name") or "?"))
        elif name in SUBAGENT_TOOLS:
            _bump(usage.subagents, str(arguments.get("subagent_type") or DEFAULT_SUBAGENT))
        elif name.startswith(MCP_PREFIX):
            server, _, tool = name[len(MCP_PREFIX):].partition("__")
            _bump(usage.mcp_tools, f"{server}/{tool}" if tool else server)
    if turns or anonymous_turns:
        usage.turns = len(turns) + anonymous_turns
    return usage


def _bump(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


# -- Claude Code stream-json ------------------------------------------------------------------------
#
# `claude --print --output-format stream-json --verbose` (checked with CLI 2.1.330) prints:
#   {"type":"system","subtype":"init", "tools":[...], "skills":[...], "agents":[...], "mcp_servers":[...]}
#   {"type":"assistant","message":{"id","content":[text|tool_use|thinking blocks],"usage"},
#    "parent_tool_use_id": null | "<Agent tool call id>"}       one event per content block or message
#   {"type":"user","message":{"content":[{"type":"tool_result","tool_use_id","content","is_error"}]}}
#   {"type":"result","subtype":"success"|"error_...","result","usage","total_cost_usd","num_turns",...}


def _token_stats(usage: Any) -> TokenStats | None:
    if not isinstance(usage, dict):
        return None

    def number(name: str) -> int:
        try:
            return int(usage.get(name) or 0)
        except (TypeError, ValueError):
            return 0

    details = usage.get("output_tokens_details")
    reasoning = 0
    if isinstance(details, dict):
        try:
            reasoning = int(details.get("thinking_tokens") or details.get("reasoning_tokens") or 0)
        except (TypeError, ValueError):
            reasoning = 0
    return TokenStats(input_tokens=number("input_tokens"), output_tokens=number("output_tokens"),
                      cache_creation_tokens=number("cache_creation_input_tokens"),
                      cache_read_tokens=number("cache_read_input_tokens"), reasoning_tokens=reasoning)


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text") or ""))
            elif isinstance(block, dict):
                parts.append(f"[{block.get('type', 'block')}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content)


def read_claude_stream(events: list[dict[str, Any]]) -> list[TranscriptEntry]:
    entries: list[TranscriptEntry] = []
    usage_seen: set[str] = set()
    for event in events:
        kind = event.get("type")
        parent = event.get("parent_tool_use_id") or None
        raw_message = event.get("message")
        message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
        content = message.get("content")
        if kind == "assistant":
            message_id = message.get("id")
            usage = None
            if message_id not in usage_seen:
                usage = _token_stats(message.get("usage"))
                if message_id:
                    usage_seen.add(message_id)
            blocks = content if isinstance(content, list) else [{"type": "text", "text": _result_text(content)}]
            for block in blocks:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    tool_input = block.get("input")
                    entries.append(TranscriptEntry(
                        kind="tool_call", role="assistant", tool_name=str(block.get("name") or ""),
                        tool_id=block.get("id"), tool_input=tool_input if isinstance(tool_input, dict) else {},
                        usage=usage, message_id=message_id, parent_id=parent))
                elif block.get("type") in ("text", "thinking"):
                    text = block.get("text") if block.get("type") == "text" else block.get("thinking")
                    entries.append(TranscriptEntry(kind="text", role="assistant", text=str(text or ""),
                                                   usage=usage, message_id=message_id, parent_id=parent))
                else:
                    continue
                usage = None  # a message's usage goes on its first entry only
        elif kind == "user":
            if isinstance(content, str):
                entries.append(TranscriptEntry(kind="text", role="user", text=content, parent_id=parent))
                continue
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_result":
                    entries.append(TranscriptEntry(kind="tool_result", role="tool", tool_id=block.get("tool_use_id"),
                                                   text=_result_text(block.get("content")),
                                                   is_error=bool(block.get("is_error")), parent_id=parent))
                elif block.get("type") == "text":
                    entries.append(TranscriptEntry(kind="text", role="user", text=str(block.get("text") or ""),
                                                   parent_id=parent))
        elif kind == "result":
            entries.append(TranscriptEntry(kind="result", role="system", text=str(event.get("result") or ""),
                                           is_error=bool(event.get("is_error")), usage=_token_stats(event.get("usage"))))
    return entries


def is_claude_stream(events: list[dict[str, Any]]) -> bool:
    """Whether raw events look like Claude Code's stream-json (used to adopt a command agent's output)."""
    return any(e.get("type") in ("assistant", "user") and isinstance(e.get("message"), dict) for e in events)


# The command agent keeps a transcript only when its command prints this stream; demo writes it.
register_reader("claude-code", read_claude_stream, agents=("claude-code", "command", "demo"))
