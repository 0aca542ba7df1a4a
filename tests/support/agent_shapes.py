"""Each agent's own output shapes around an error message, as its adapter hands them to
`tierbench.ratelimit.detect_agent` (an `AgentOutput`).

The shapes follow what each CLI prints (docs and issue threads, and the measured notes in the
team's agent-clis notes): Claude Code JSON / stream-json / text mode, Codex `exec --json` JSONL or
plain stderr, Gemini CLI JSON / stream-json / stderr with exit code = HTTP status & 0xFF, OpenCode
`run --format json` error events, Aider's litellm lines on stdout (exit 0) and its analytics
events, mini-swe-agent's traj.json `info`. An adapter test can build the same output with these
helpers and check that its own parsing reaches the detector unchanged.

`shape(agent, channel, text, ...)` wraps a message; `success=True` adds the agent's own
"finished" marker (a success result, turn.completed, a message_send event, exit_status
Submitted), which must win over any earlier retried error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tierbench.ratelimit import AgentOutput


def _lines(*events: Mapping[str, Any]) -> str:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events)


def claude_result(text: str, *, status: int | None = None, is_error: bool = True, **extra: Any) -> dict[str, Any]:
    return {"type": "result", "subtype": "success", "is_error": is_error, "api_error_status": status,
            "terminal_reason": "api_error" if is_error else "completed", "num_turns": 1, "result": text,
            "usage": {"input_tokens": 0, "output_tokens": 0}, **extra}


def claude_synthetic(text: str) -> dict[str, Any]:
    """The synthetic assistant message Claude Code emits for an API error (stream-json)."""
    return {"type": "assistant", "message": {"model": "<synthetic>", "role": "assistant",
                                             "content": [{"type": "text", "text": text}]},
            "error": "rate_limit", "is_api_error_message": True}


def _claude(agent: str, channel: str, text: str, status: int | None, success: bool,
            exit_code: int | None) -> AgentOutput:
    if channel == "result":  # --output-format json: one object on stdout
        result = claude_result(text, status=status, is_error=not success)
        stdout, stderr = json.dumps(result), ""
    elif channel == "events":  # --output-format stream-json
        final = claude_result("done" if success else text, status=None if success else status, is_error=not success)
        middle = [] if success else [claude_synthetic(text)]
        if success:  # the CLI retried an API error and then finished
            middle = [{"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 2,
                       "retry_delay_ms": 1000, "error_status": status or 429, "error": text}]
        stdout = _lines({"type": "system", "subtype": "init", "session_id": "s"}, *middle, final)
        stderr, result = "", final
    elif channel == "stdout":  # text mode (`claude -p`): the error message is the output
        stdout, stderr, result = text + "\n", "", None
    elif channel == "stderr":
        result = claude_result("done", is_error=False) if success else None
        stdout, stderr = (json.dumps(result) if result else ""), text
    else:
        raise ValueError(f"no {channel} shape for {agent}")
    code = exit_code if exit_code is not None else (0 if success else 1)
    return AgentOutput.from_streams(agent, exit_code=code, stdout=stdout, stderr=stderr, result=result)


def _codex(channel: str, text: str, success: bool, exit_code: int | None) -> AgentOutput:
    start = [{"type": "thread.started", "thread_id": "t"}, {"type": "turn.started"}]
    end = ({"type": "turn.completed", "usage": {"input_tokens": 1, "cached_input_tokens": 0, "output_tokens": 1}}
           if success else None)
    if channel == "events":  # codex exec --json
        events: list[dict[str, Any]] = [*start, {"type": "error", "message": text}]
        events.append(end or {"type": "turn.failed", "error": {"message": text}})
        stdout, stderr = _lines(*events), ""
    elif channel == "stderr":  # plain `codex exec`: progress and errors on stderr
        stdout, stderr = (_lines(*start, end) if end else ""), text + "\n"
    else:
        raise ValueError(f"no {channel} shape for codex")
    code = exit_code if exit_code is not None else (0 if success else 1)
    return AgentOutput.from_streams("codex", exit_code=code, stdout=stdout, stderr=stderr)


def _gemini(channel: str, text: str, status: int | None, success: bool, exit_code: int | None) -> AgentOutput:
    error = {"type": "Error", "message": text, "code": status or 1}
    code = exit_code if exit_code is not None else (0 if success else (status & 0xFF if status else 1))
    if channel == "result":  # --output-format json
        result: dict[str, Any] = {"response": "done", "stats": {}} if success else {"error": error}
        return AgentOutput.from_streams("gemini", exit_code=code, stdout=json.dumps(result), stderr="", result=result)
    if channel == "events":  # --output-format stream-json
        final = ({"type": "result", "status": "success", "stats": {"total_tokens": 2}} if success
                 else {"type": "result", "status": "error", "error": error, "stats": {}})
        return AgentOutput.from_streams("gemini", exit_code=code, stdout=_lines({"type": "init"}, final), stderr="")
    if channel == "stderr":
        stdout = _lines({"type": "init"}, {"type": "result", "status": "success", "stats": {}}) if success else ""
        return AgentOutput.from_streams("gemini", exit_code=code, stdout=stdout, stderr=text + "\n")
    raise ValueError(f"no {channel} shape for gemini")


def _opencode(channel: str, text: str, status: int | None, headers: Mapping[str, str] | None, success: bool,
              exit_code: int | None) -> AgentOutput:
    code = exit_code if exit_code is not None else (0 if success else 1)
    if channel == "events":  # opencode run --format json
        events: list[dict[str, Any]] = [{"type": "step_start", "part": {}}]
        if not success:
            events.append({"type": "error", "error": {"name": "APIError", "data": {
                "message": text, "statusCode": status, "isRetryable": status in (429, 500, 503, 529),
                "responseHeaders": dict(headers or {})}}})
        else:
            events.append({"type": "step_finish", "part": {"tokens": {"input": 1, "output": 1}, "cost": 0}})
        return AgentOutput.from_streams("opencode", exit_code=code, stdout=_lines(*events), stderr="")
    if channel == "stderr":
        return AgentOutput.from_streams("opencode", exit_code=code, stdout="", stderr=text + "\n")
    raise ValueError(f"no {channel} shape for opencode")


def _aider(channel: str, text: str, success: bool, exit_code: int | None) -> AgentOutput:
    # Aider exits 0 even on 429 and 401; its analytics log has a message_send event per reply.
    events = [{"event": "launched"}] + ([{"event": "message_send", "properties": {"prompt_tokens": 10,
                                                                                   "completion_tokens": 5}}]
                                         if success else [])
    stdout, stderr = (text + "\n", "") if channel == "stdout" else ("", text + "\n")
    if channel not in ("stdout", "stderr"):
        raise ValueError(f"no {channel} shape for aider")
    return AgentOutput.from_streams("aider", exit_code=0 if exit_code is None else exit_code, stdout=stdout,
                                    stderr=stderr, events=events)


def _mini(channel: str, text: str, exit_status: str | None, success: bool, exit_code: int | None) -> AgentOutput:
    code = exit_code if exit_code is not None else (0 if success else 1)
    if channel == "result":  # traj.json
        info = {"exit_status": "Submitted" if success else (exit_status or "RateLimitError"), "submission": text,
                "model_stats": {"instance_cost": 0.0, "api_calls": 1}}
        return AgentOutput.from_streams("mini-swe-agent", exit_code=code, stdout="", stderr="",
                                        result={"info": info, "messages": []})
    if channel == "stderr":
        info = {"exit_status": "Submitted" if success else (exit_status or "LimitsExceeded"), "submission": ""}
        return AgentOutput.from_streams("mini-swe-agent", exit_code=code, stdout="", stderr=text + "\n",
                                        result={"info": info})
    raise ValueError(f"no {channel} shape for mini-swe-agent")


def shape(agent: str, channel: str, text: str, *, status: int | None = None, headers: Mapping[str, str] | None = None,
          success: bool = False, exit_code: int | None = None, exit_status: str | None = None) -> AgentOutput:
    """`text` as `agent` prints it on `channel` (result, events, stdout, stderr)."""
    if agent in ("claude-code", "command"):
        return _claude(agent, channel, text, status, success, exit_code)
    if agent == "codex":
        return _codex(channel, text, success, exit_code)
    if agent == "gemini":
        return _gemini(channel, text, status, success, exit_code)
    if agent == "opencode":
        return _opencode(channel, text, status, headers, success, exit_code)
    if agent == "aider":
        return _aider(channel, text, success, exit_code)
    if agent == "mini-swe-agent":
        return _mini(channel, text, exit_status, success, exit_code)
    raise ValueError(f"no shapes for agent {agent!r}")
