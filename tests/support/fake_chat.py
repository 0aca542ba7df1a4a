"""A fake OpenAI Chat Completions API on 127.0.0.1, streaming (SSE) or not, as the request asks.
Enough to drive OpenCode (SSE, tools), Aider (non-streaming, edits in the reply text) and
mini-swe-agent (non-streaming, a `bash` tool).

    with FakeChat([tool_turn("bash", {"command": "echo hi > x"}), text_turn("done")]) as api:
        ... base URL f"{api.url}/v1" ...

Serves `POST .../chat/completions`. Which requests advance the script is set by `main_when`:
"tools" (default: a request offering tools; OpenCode's title request offers none) or "all"
(Aider never offers tools). A main request's turn is the number of assistant messages in its
`messages`, or, with `turns_by="requests"`, the number of main requests answered before it (Aider
puts example exchanges with assistant messages into every prompt). Streaming answers end with a usage chunk (`stream_options.include_usage` or not) and
`data: [DONE]`. Errors use OpenAI's body (see fake_responses.openai_error).
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from tests.support.fake_responses import openai_error
from tests.support.fake_scripted import (ScriptedHandler, ScriptedServer, Turn, Usage, auth_error,
                                         new_id, rate_limited, text_turn, tool_turn)

__all__ = ["FakeChat", "Usage", "auth_error", "rate_limited", "text_turn", "tool_turn"]


def usage_body(usage: Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def _turn_index(body: dict[str, Any]) -> int:
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


class FakeChat(ScriptedServer):
    def __init__(self, script: list[Turn], *, main_when: Literal["tools", "all"] = "tools",
                 turns_by: Literal["assistant_messages", "requests"] = "assistant_messages", **kwargs: Any):
        super().__init__(script, **kwargs)
        self.main_when = main_when
        self.turns_by = turns_by

    def handle_post(self, handler: ScriptedHandler, path: str, body: Any) -> None:
        if not path.split("?")[0].endswith("/chat/completions"):
            self.not_found(handler, path, body, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        self.answer_model_request(
            handler, path, body, error_body=openai_error,
            is_main=lambda request: self.main_when != "tools" or bool(request.get("tools")),
            turn_index=lambda request: (_turn_index(request) if self.turns_by == "assistant_messages"
                                        else len(self.main_requests())),
            answer=lambda request, turn: self._answer(handler, request, turn),
            side_turn=text_turn(self.side_text, usage=Usage(0, 0)))

    def _answer(self, handler: ScriptedHandler, body: dict[str, Any], turn: Turn) -> None:
        completion_id, created = new_id("chatcmpl"), int(time.time())
        model = body.get("model") or self.model_version
        calls = [{"id": new_id("call"), "type": "function",
                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in turn.calls]
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": turn.text}
            if calls:
                message["tool_calls"] = calls
            handler.send_json(200, {"id": completion_id, "object": "chat.completion", "created": created,
                                    "model": model, "choices": [{"index": 0, "message": message,
                                                                 "finish_reason": finish}],
                                    "usage": usage_body(turn.usage)})
            return
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        chunks: list[tuple[str | None, Any]] = [
            (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]})]
        if turn.text:
            chunks.append((None, {**base, "choices": [{"index": 0, "delta": {"content": turn.text},
                                                       "finish_reason": None}]}))
        for index, call in enumerate(calls):
            chunks.append((None, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{**call, "index": index}]},
                                                       "finish_reason": None}]}))
        chunks.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
        chunks.append((None, {**base, "choices": [], "usage": usage_body(turn.usage)}))
        chunks.append((None, "[DONE]"))
        handler.send_sse(chunks)
