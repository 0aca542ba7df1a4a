"""A fake OpenAI Responses API (streaming SSE) on 127.0.0.1, enough to drive the real Codex CLI.

    script = [tool_turn("exec_command", {"cmd": "echo hi > hello.txt"}), text_turn("done")]
    with FakeResponses(script) as api:
        ... codex with a [model_providers] base_url of f"{api.url}/v1" ...

Serves `POST .../responses` (SSE: response.created, response.output_item.added/done for each
message or function_call, response.completed with usage). A main request is one that offers
tools; its turn is the number of assistant messages and function calls already in its `input`.
Errors use OpenAI's body: `{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.fake_scripted import (ErrorMode, ScriptedHandler, ScriptedServer, Turn,
                                         Usage, auth_error, new_id, rate_limited, text_turn, tool_turn)

__all__ = ["FakeResponses", "Usage", "auth_error", "rate_limited", "text_turn", "tool_turn", "openai_error"]


def openai_error(mode: ErrorMode) -> dict[str, Any]:
    if mode.status == 429:
        return {"error": {"message": mode.message or "Rate limit reached for requests. Please try again later.",
                          "type": "requests", "code": "rate_limit_exceeded"}}
    if mode.status == 401:
        return {"error": {"message": mode.message or "Incorrect API key provided.",
                          "type": "invalid_request_error", "code": "invalid_api_key"}}
    return {"error": {"message": mode.message or f"error {mode.status}", "type": "server_error", "code": None}}


def usage_body(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens}


def _turn_index(body: dict[str, Any]) -> int:
    items = body.get("input") if isinstance(body.get("input"), list) else []
    return sum(1 for item in items if isinstance(item, dict) and (
        item.get("type") == "function_call" or (item.get("type") in ("message", None)
                                                and item.get("role") == "assistant")))


class FakeResponses(ScriptedServer):
    def handle_post(self, handler: ScriptedHandler, path: str, body: Any) -> None:
        if not path.split("?")[0].endswith("/responses"):
            self.not_found(handler, path, body, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        self.answer_model_request(
            handler, path, body, error_body=openai_error, is_main=lambda request: bool(request.get("tools")),
            turn_index=_turn_index, answer=lambda request, turn: self._stream(handler, request, turn),
            side_turn=text_turn(self.side_text))

    def _stream(self, handler: ScriptedHandler, body: dict[str, Any], turn: Turn) -> None:
        response_id = new_id("resp")
        model = body.get("model") or self.model_version
        base = {"id": response_id, "object": "response", "model": model, "status": "in_progress", "output": []}
        events: list[tuple[str | None, Any]] = [
            ("response.created", {"type": "response.created", "response": base}),
        ]
        output = []
        if turn.text:
            output.append({"type": "message", "id": new_id("msg"), "role": "assistant", "status": "completed",
                           "content": [{"type": "output_text", "text": turn.text, "annotations": []}]})
        for call in turn.calls:
            output.append({"type": "function_call", "id": new_id("fc"), "call_id": new_id("call"),
                           "name": call.name, "arguments": json.dumps(call.arguments), "status": "completed"})
        for index, item in enumerate(output):
            events.append(("response.output_item.added",
                           {"type": "response.output_item.added", "output_index": index, "item": item}))
            if item["type"] == "message":
                events.append(("response.output_text.delta",
                               {"type": "response.output_text.delta", "item_id": item["id"], "output_index": index,
                                "content_index": 0, "delta": turn.text}))
            events.append(("response.output_item.done",
                           {"type": "response.output_item.done", "output_index": index, "item": item}))
        done = {**base, "status": "completed", "output": output, "usage": usage_body(turn.usage)}
        events.append(("response.completed", {"type": "response.completed", "response": done}))
        handler.send_sse(events)
