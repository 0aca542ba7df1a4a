"""A fake Gemini API (streamGenerateContent SSE) on 127.0.0.1, enough to drive the real Gemini CLI.

    script = [tool_turn("run_shell_command", {"command": "echo hi > hello.txt"}), text_turn("done")]
    with FakeGemini(script) as api:
        env["GOOGLE_GEMINI_BASE_URL"] = api.url

Serves `POST /v1beta/models/MODEL:streamGenerateContent?alt=sse` from the script (a main request
offers tools; its turn is the number of `role: model` entries in `contents`), and answers any
other model call (`:generateContent` classifiers and checks, `:countTokens`) as a side request.
Each chunk carries `usageMetadata` (promptTokenCount, candidatesTokenCount, cachedContentTokenCount,
thoughtsTokenCount) and `modelVersion`. Errors use Google's body:
`{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_scripted import (ErrorMode, RecordedRequest, ScriptedHandler, ScriptedServer, Turn,
                                         Usage, auth_error, rate_limited, text_turn, tool_turn)

__all__ = ["FakeGemini", "Usage", "auth_error", "rate_limited", "text_turn", "tool_turn"]


def google_error(mode: ErrorMode) -> dict[str, Any]:
    if mode.status == 429:
        return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                          "message": mode.message or "Resource has been exhausted (e.g. check quota)."}}
    if mode.status == 401:
        return {"error": {"code": 401, "status": "UNAUTHENTICATED",
                          "message": mode.message or "API key not valid. Please pass a valid API key."}}
    return {"error": {"code": mode.status, "status": "INTERNAL", "message": mode.message or "internal error"}}


def usage_metadata(usage: Usage) -> dict[str, Any]:
    # Gemini counts thoughts apart from candidates; promptTokenCount includes the cached part.
    return {"promptTokenCount": usage.input_tokens, "cachedContentTokenCount": usage.cached_tokens,
            "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
            "thoughtsTokenCount": usage.reasoning_tokens,
            "totalTokenCount": usage.input_tokens + usage.output_tokens}


def _turn_index(body: dict[str, Any]) -> int:
    contents = body.get("contents") if isinstance(body.get("contents"), list) else []
    return sum(1 for c in contents if isinstance(c, dict) and c.get("role") == "model")


class FakeGemini(ScriptedServer):
    # Side requests ask for JSON (next-speaker checks, model routing); this answer satisfies both.
    side_json = ('{"reasoning": "The task is done.", "next_speaker": "user", "model_choice": "flash", '
                 '"complexity_reasoning": "simple", "complexity_score": 1}')

    def handle_post(self, handler: ScriptedHandler, path: str, body: Any) -> None:
        route = path.split("?")[0]
        if ":countTokens" in route:
            self.record(RecordedRequest("POST", path, dict(handler.headers), body, "other"))
            handler.send_json(200, {"totalTokens": 100})
            return
        if ":streamGenerateContent" not in route and ":generateContent" not in route:
            self.not_found(handler, path, body,
                           {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})
            return
        stream = ":streamGenerateContent" in route
        self.answer_model_request(
            handler, path, body, error_body=google_error, is_main=lambda request: bool(request.get("tools")),
            turn_index=_turn_index, answer=lambda request, turn: self._answer(handler, turn, stream),
            side_turn=text_turn(self.side_json, usage=Usage(0, 0)))

    def _answer(self, handler: ScriptedHandler, turn: Turn, stream: bool) -> None:
        parts: list[dict[str, Any]] = []
        if turn.text:
            parts.append({"text": turn.text})
        for call in turn.calls:
            parts.append({"functionCall": {"name": call.name, "args": call.arguments}})
        chunk = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                 "usageMetadata": usage_metadata(turn.usage), "modelVersion": self.model_version}
        if stream:
            handler.send_sse([(None, chunk)])
        else:
            handler.send_json(200, chunk)
