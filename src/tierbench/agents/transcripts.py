"""Transcript readers for the other agent CLIs: each agent's raw `agent/transcript.jsonl` (its own
event stream or trajectory, kept unchanged by its adapter) into `tierbench.transcript` entries,
from which the run's ToolUsage is counted by the one shared `count_usage`.

    format            agent            raw events
    codex-exec        codex            `codex exec --json` JSONL (item.completed, turn.completed/failed)
    gemini-stream     gemini           `gemini --output-format stream-json` (message, tool_use, tool_result, result)
    opencode-run      opencode         `opencode run --format json` (text, tool_use, step_finish, error)
    aider-analytics   aider            `--analytics-log` events, then {"event": "chat_history", "text"}
    mini-trajectory   mini-swe-agent   the trajectory's messages, one a line

Tool names stay each agent's own (Codex items are named by type: command_execution, file_change,
...; an MCP call becomes `mcp__<server>__<tool>` so it is counted as an MCP tool).
"""

from __future__ import annotations

import json
from typing import Any

from tierbench.models import TokenStats
from tierbench.transcript import TranscriptEntry, register_reader

_CODEX_NOT_TOOLS = {"agent_message", "reasoning", "error", "todo_list", "user_message"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def read_codex(events: list[dict[str, Any]]) -> list[TranscriptEntry]:
    entries: list[TranscriptEntry] = []
    for event in events:
        kind = event.get("type")
        if kind == "item.completed":
            item = _dict(event.get("item"))
            item_type, item_id = str(item.get("type") or ""), str(item.get("id") or "") or None
            if item_type == "agent_message":
                entries.append(TranscriptEntry(kind="text", role="assistant", text=str(item.get("text") or ""),
                                               message_id=item_id))
            elif item_type == "mcp_tool_call":
                name = f"mcp__{item.get('server')}__{item.get('tool')}"
                entries.append(TranscriptEntry(kind="tool_call", role="assistant", tool_name=name, tool_id=item_id,
                                               tool_input=_dict(item.get("arguments")), message_id=item_id))
                entries.append(TranscriptEntry(kind="tool_result", role="tool", tool_id=item_id,
                                               text=json.dumps(item.get("result"))[:10000],
                                               is_error=item.get("status") == "failed"))
            elif item_type and item_type not in _CODEX_NOT_TOOLS:
                tool_input = {k: v for k, v in item.items() if k not in ("id", "type", "aggregated_output", "status")}
                entries.append(TranscriptEntry(kind="tool_call", role="assistant", tool_name=item_type,
                                               tool_id=item_id, tool_input=tool_input, message_id=item_id))
                exit_code = item.get("exit_code")
                entries.append(TranscriptEntry(kind="tool_result", role="tool", tool_id=item_id,
                                               text=str(item.get("aggregated_output") or ""),
                                               is_error=item.get("status") == "failed" or (
                                                   isinstance(exit_code, int) and exit_code != 0)))
        elif kind == "turn.completed":
            u = _dict(event.get("usage"))
            cached = _int(u.get("cached_input_tokens"))
            usage = TokenStats(input_tokens=max(_int(u.get("input_tokens")) - cached, 0), cache_read_tokens=cached,
                               output_tokens=_int(u.get("output_tokens")),
                               reasoning_tokens=_int(u.get("reasoning_output_tokens")))
            entries.append(TranscriptEntry(kind="result", role="system", usage=usage))
        elif kind == "turn.failed":
            entries.append(TranscriptEntry(kind="result", role="system", is_error=True,
                                           text=str(_dict(event.get("error")).get("message") or "")))
    return entries


def read_gemini(events: list[dict[str, Any]]) -> list[TranscriptEntry]:
    entries: list[TranscriptEntry] = []
    for event in events:
        kind = event.get("type")
        if kind == "message":
            role = "assistant" if event.get("role") == "assistant" else "user"
            text = str(event.get("content") or "")
            if role == "assistant" and entries and entries[-1].kind == "text" and entries[-1].role == "assistant":
                entries[-1].text += text  # stream deltas of one message
            else:
                entries.append(TranscriptEntry(kind="text", role=role, text=text))
        elif kind == "tool_use":
            entries.append(TranscriptEntry(kind="tool_call", role="assistant", tool_name=str(event.get("tool_name")),
                                           tool_id=event.get("tool_id"), tool_input=_dict(event.get("parameters"))))
        elif kind == "tool_result":
            entries.append(TranscriptEntry(kind="tool_result", role="tool", tool_id=event.get("tool_id"),
                                           text=str(event.get("output") or ""),
                                           is_error=event.get("status") not in (None, "success")))
        elif kind == "result":
            stats = _dict(event.get("stats"))
            cached = _int(stats.get("cached"))
            usage = TokenStats(input_tokens=max(_int(stats.get("input_tokens")) - cached, 0),
                               cache_read_tokens=cached, output_tokens=_int(stats.get("output_tokens")))
            error = _dict(event.get("error"))
            entries.append(TranscriptEntry(kind="result", role="system", usage=usage,
                                           is_error=event.get("status") == "error",
                                           text=str(error.get("message") or "")))
    return entries


def read_opencode(events: list[dict[str, Any]]) -> list[TranscriptEntry]:
    entries: list[TranscriptEntry] = []
    for event in events:
        kind, part = event.get("type"), _dict(event.get("part"))
        message_id = part.get("messageID")
        if kind == "text":
            entries.append(TranscriptEntry(kind="text", role="assistant", text=str(part.get("text") or ""),
                                           message_id=message_id))
        elif kind == "tool_use":
            state = _dict(part.get("state"))
            call_id = part.get("callID")
            entries.append(TranscriptEntry(kind="tool_call", role="assistant", tool_name=str(part.get("tool")),
                                           tool_id=call_id, tool_input=_dict(state.get("input")),
                                           message_id=message_id))
            entries.append(TranscriptEntry(kind="tool_result", role="tool", tool_id=call_id,
                                           text=str(state.get("output") or state.get("error") or ""),
                                           is_error=state.get("status") == "error"))
        elif kind == "step_finish":
            t = _dict(part.get("tokens"))
            cache = _dict(t.get("cache"))
            reasoning = _int(t.get("reasoning"))
            entries.append(TranscriptEntry(kind="result", role="system", message_id=message_id, usage=TokenStats(
                input_tokens=_int(t.get("input")), output_tokens=_int(t.get("output")) + reasoning,
                reasoning_tokens=reasoning, cache_read_tokens=_int(cache.get("read")),
                cache_creation_tokens=_int(cache.get("write")))))
        elif kind == "error":
            error = _dict(event.get("error"))
            entries.append(TranscriptEntry(kind="result", role="system", is_error=True,
                                           text=str(_dict(error.get("data")).get("message") or error.get("name"))))
    return entries


def read_aider(events: list[dict[str, Any]]) -> list[TranscriptEntry]:
    entries: list[TranscriptEntry] = []
    for event in events:
        name, props = event.get("event"), _dict(event.get("properties"))
        if name == "message_send":
            entries.append(TranscriptEntry(kind="text", role="assistant", usage=TokenStats(
                input_tokens=_int(props.get("prompt_tokens")), output_tokens=_int(props.get("completion_tokens")))))
        elif name == "chat_history":
            entries.append(TranscriptEntry(kind="result", role="system", text=str(event.get("text") or "")))
    return entries


def read_mini(events: list[dict[str, Any]]) -> list[TranscriptEntry]:
    entries: list[TranscriptEntry] = []
    for index, message in enumerate(events):
        role = message.get("role")
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content) if content else ""
        if role in ("system", "user"):
            entries.append(TranscriptEntry(kind="text", role=role, text=text))
        elif role == "assistant":
            message_id = f"m{index}"
            u = _dict(_dict(_dict(message.get("extra")).get("response")).get("usage"))
            cached = _int(_dict(u.get("prompt_tokens_details")).get("cached_tokens"))
            usage = TokenStats(input_tokens=max(_int(u.get("prompt_tokens")) - cached, 0), cache_read_tokens=cached,
                               output_tokens=_int(u.get("completion_tokens")),
                               reasoning_tokens=_int(_dict(u.get("completion_tokens_details")).get("reasoning_tokens")))
            entries.append(TranscriptEntry(kind="text", role="assistant", text=text, usage=usage,
                                           message_id=message_id))
            for call in message.get("tool_calls") or []:
                function = _dict(_dict(call).get("function"))
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {"raw": function.get("arguments")}
                entries.append(TranscriptEntry(kind="tool_call", role="assistant", tool_name=str(function.get("name")),
                                               tool_id=_dict(call).get("id"), tool_input=_dict(arguments),
                                               message_id=message_id))
        elif role == "tool":
            entries.append(TranscriptEntry(kind="tool_result", role="tool", tool_id=message.get("tool_call_id"),
                                           text=text))
        elif role == "exit":
            status = str(_dict(message.get("extra")).get("exit_status") or "")
            entries.append(TranscriptEntry(kind="result", role="system", text=text or status,
                                           is_error=status not in ("Submitted", "LimitsExceeded")))
    return entries


def register() -> None:
    """Register every reader here with tierbench.transcript (idempotent)."""
    register_reader("codex-exec", read_codex, agents=("codex",))
    register_reader("gemini-stream", read_gemini, agents=("gemini",))
    register_reader("opencode-run", read_opencode, agents=("opencode",))
    register_reader("aider-analytics", read_aider, agents=("aider",))
    register_reader("mini-trajectory", read_mini, agents=("mini-swe-agent",))


register()
